// What the results were measured on: machine, runtime, SQLite and git state.

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { DatabaseSync } from 'node:sqlite';

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machineInfo() {
  const cpus = os.cpus();
  const db = new DatabaseSync(':memory:');
  const sqlite = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  db.close();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemoryBytes: os.totalmem(),
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    node: process.version,
    sqlite,
    loadAverageAtStart: os.loadavg(),
  };
}

export function gitInfo(): { commit: string | null; dirty: boolean | null } {
  const commit = git(['rev-parse', 'HEAD']);
  const status = git(['status', '--porcelain']);
  return { commit, dirty: status === null ? null : status.length > 0 };
}
