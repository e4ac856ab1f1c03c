// One `flotilla serve` process on a fresh store: a SQLite file in a new temporary directory,
// or a new PostgreSQL database. Default server settings (durability on: SQLite WAL with
// synchronous=FULL, PostgreSQL synchronous_commit as configured), except that the rate
// limiters are off so they do not throttle the load.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup, trackProcess } from './cleanup.ts';
import { createDatabase } from './postgres.ts';
import { profileFlags } from './profile.ts';

export type Store = 'sqlite' | 'postgres';

export const TOKEN = 'bench-admin-token-0123456789';
const CLI = fileURLToPath(new URL('../../packages/server/src/cli/main.ts', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface BenchServer {
  url: string;
  /** Stops the server (SIGTERM, then SIGKILL), drops its database, removes its directory. */
  stop(): Promise<void>;
}

/** The inherited environment without FLOTILLA_* settings: only ours apply. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOTILLA_')) env[k] = v;
  return {
    ...env,
    FLOTILLA_ADMIN_TOKEN: TOKEN,
    FLOTILLA_RATE_LIMIT_PER_SECOND: '0',
    FLOTILLA_RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
  };
}

export async function startServer(store: Store): Promise<BenchServer> {
  // The working directory is the temp dir too: no flotilla.config.yaml is picked up.
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
  const removeDir = onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  let dropDatabase = async () => {};
  let database = join(dir, 'bench.db');
  if (store === 'postgres') {
    const db = await createDatabase();
    database = db.url;
    dropDatabase = onCleanup(db.drop);
  }
  const proc = spawn(process.execPath, [...profileFlags('server'), CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--database', database], {
    cwd: dir, env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackProcess(proc);
  let tail = '';
  const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-20_000));
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    await dropDatabase();
    await removeDir();
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in ${START_TIMEOUT_MS} ms:\n${tail}`)), START_TIMEOUT_MS);
      const check = () => {
        const m = /flotilla listening on (http:\/\/[^"\s]+)/.exec(tail);
        if (m) {
          clearTimeout(timer);
          proc.stdout.off('data', check);
          resolve(m[1]!);
        }
      };
      proc.stdout.on('data', check);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`server exited (${proc.exitCode ?? proc.signalCode}) before listening:\n${tail}`));
      });
    });
    return { url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
