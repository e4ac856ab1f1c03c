// `flotilla serve` processes on fresh stores: a SQLite file in a new temporary directory, or
// a new PostgreSQL database. Default server settings (durability on: SQLite WAL with
// synchronous=FULL, PostgreSQL synchronous_commit as configured), except that the rate
// limiters are off so they do not throttle the load.
//
// A store outlives its server processes when a workload needs it to (W3 seeds a store
// between two servers, and runs several servers on one PostgreSQL database): createStore()
// and startServerOn(); startServer() is both at once, for a run that needs one server.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup, trackProcess } from './cleanup.ts';
import { createDatabase } from './postgres.ts';
import { profileFlags } from './profile.ts';

export type Store = 'sqlite' | 'postgres';

export const TOKEN = 'bench-admin-token-0123456789';
const CLI = fileURLToPath(new URL('../../packages/server/src/cli/main.ts', import.meta.url));
/**
 * The Node flags `npm start` gives the server (package.json's start script, the same as the
 * `flotilla` command's shebang: docs/decisions.md 51), so the bench measures the server as it
 * is run.
 */
const SERVER_NODE_FLAGS: string[] = (() => {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  return words.slice(1, words.findIndex((w) => w.endsWith('.ts'))).filter((w) => w.startsWith('--'));
})();
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface BenchStore {
  kind: Store;
  /** What `flotilla serve --database` gets: the SQLite file's path, or the PostgreSQL URL. */
  database: string;
  /** The servers' working directory (so no flotilla.config.yaml is picked up). */
  dir: string;
  /** Drops the database and removes the directory (once). */
  dispose(): Promise<void>;
}

export interface BenchServer {
  url: string;
  /** The server's own process (its memory is read from /proc, see rss.ts). */
  pid: number;
  /** The last 20 kB the server wrote (its log), for a failure's report. */
  output(): string;
  /** Stops the server (SIGTERM, then SIGKILL); startServer()'s also disposes of its store. */
  stop(): Promise<void>;
}

/** The inherited environment without FLOTILLA_* settings: only ours apply. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOTILLA_')) env[k] = v;
  // BENCH_SERVER_NODE_OPTIONS: Node flags for the server process alone (a V8 setting measured
  // against the workloads, say), not for the bench's clients.
  if (process.env.BENCH_SERVER_NODE_OPTIONS) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} ${process.env.BENCH_SERVER_NODE_OPTIONS}`.trim();
  return {
    ...env,
    FLOTILLA_ADMIN_TOKEN: TOKEN,
    FLOTILLA_RATE_LIMIT_PER_SECOND: '0',
    FLOTILLA_RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
  };
}

export async function createStore(kind: Store): Promise<BenchStore> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
  const removeDir = onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  if (kind === 'sqlite') return { kind, database: join(dir, 'bench.db'), dir, dispose: removeDir };
  try {
    const db = await createDatabase();
    const dropDatabase = onCleanup(db.drop);
    return { kind, database: db.url, dir, dispose: async () => { await dropDatabase(); await removeDir(); } };
  } catch (err) {
    await removeDir();
    throw err;
  }
}

/** Starts a server on `store`; its stop() leaves the store as it is. */
export async function startServerOn(store: BenchStore, opts: { startTimeoutMs?: number } = {}): Promise<BenchServer> {
  const startTimeoutMs = opts.startTimeoutMs ?? START_TIMEOUT_MS;
  const proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...profileFlags('server'), CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--database', store.database], {
    cwd: store.dir, env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'],
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
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start in ${startTimeoutMs} ms:\n${tail}`)), startTimeoutMs);
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
    return { url, pid: proc.pid!, output: () => tail, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A server on a fresh store of its own; stop() also drops the store. */
export async function startServer(kind: Store): Promise<BenchServer> {
  const store = await createStore(kind);
  try {
    const server = await startServerOn(store);
    return { ...server, stop: async () => { await server.stop(); await store.dispose(); } };
  } catch (err) {
    await store.dispose();
    throw err;
  }
}
