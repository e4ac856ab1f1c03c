// Opening and configuring the SQLite connection.

import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export type SynchronousMode = 'FULL' | 'NORMAL';

export const BUSY_TIMEOUT_MS = 5000;

export function openDatabase(params: { path: string; synchronous?: SynchronousMode }): DatabaseSync {
  if (params.path !== ':memory:' && !params.path.startsWith('file:')) {
    fs.mkdirSync(path.dirname(path.resolve(params.path)), { recursive: true });
  }
  const db = new DatabaseSync(params.path, { enableForeignKeyConstraints: true });
  try {
    // Wait for a lock held by another connection (a backup, the CLI) rather than fail at once.
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // WAL: readers never block the writer and a commit appends to the log instead of
    // rewriting pages in place, so a commit costs a single sequential write and fsync.
    const mode = db.prepare('PRAGMA journal_mode = WAL').get();
    const journal = String(mode?.journal_mode ?? '').toLowerCase();
    if (journal !== 'wal' && !(params.path === ':memory:' && journal === 'memory')) {
      throw new Error(`could not switch ${params.path} to WAL journal mode (got ${journal})`);
    }
    // FULL by default: in WAL mode it fsyncs the log on every commit, so a write that was
    // acknowledged to a client (a task accepted, a result recorded) survives a power cut or an
    // OS crash. NORMAL fsyncs only at checkpoints: it survives a process crash but may lose the
    // last commits on power loss. Group commit (write-batch.ts) amortizes the fsync.
    const synchronous = params.synchronous ?? 'FULL';
    if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new Error(`invalid synchronous mode ${String(synchronous)}`);
    db.exec(`PRAGMA synchronous = ${synchronous}`);
    db.exec('PRAGMA foreign_keys = ON');
    // 64 MiB page cache (the default is 2 MiB): the hot indexes of a large queue stay in memory.
    db.exec('PRAGMA cache_size = -65536');
    // Savepoints (one per batch operation, one per transition: write-batch.ts) keep the
    // original of every page they touch in a statement journal, by default a temporary file.
    // In memory, the store's own write floor (bench/store-floor.ts) went from ~180 to ~110 µs
    // per task created and from ~470 to ~300 µs per dispatch + completion. The journal holds
    // only the pages of one batch operation, so its memory is small and short-lived.
    db.exec('PRAGMA temp_store = MEMORY');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
