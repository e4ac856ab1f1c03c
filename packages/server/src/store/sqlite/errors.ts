// Classifying SQLite's errors, as postgres/errors.ts does PostgreSQL's: a database that cannot
// serve now (busy or locked past the busy timeout, out of memory, read-only, an I/O error, a
// full disk, a file that cannot be opened) is STORE_UNAVAILABLE, answered 503 with
// Retry-After, and a caller that retries (the audit log, a worker's report) backs off instead
// of treating its own data as the cause. Everything else (constraints, bugs) is unchanged.

import { FlotillaError } from '../../core/errors.ts';
import { cacheRunOpenError } from '../../core/result-cache.ts';

const SQLITE_CONSTRAINT_UNIQUE = 2067;
/** How SQLite names the unique index tasks_cache_open in its error (an index with an expression: by its name). */
const CACHE_OPEN_COLUMNS = "index 'tasks_cache_open'";

/**
 * Primary result codes (the low byte of an extended code): SQLITE_BUSY 5, SQLITE_LOCKED 6,
 * SQLITE_NOMEM 7, SQLITE_READONLY 8, SQLITE_IOERR 10, SQLITE_FULL 13, SQLITE_CANTOPEN 14.
 */
const UNAVAILABLE_CODES: ReadonlySet<number> = new Set([5, 6, 7, 8, 10, 13, 14]);

export function toStoreError(err: unknown): unknown {
  if (err instanceof FlotillaError || typeof err !== 'object' || err === null) return err;
  const errcode = (err as { errcode?: unknown }).errcode;
  if (typeof errcode === 'number' && UNAVAILABLE_CODES.has(errcode & 0xff)) {
    return new FlotillaError('STORE_UNAVAILABLE', `the database is unavailable: ${(err as { message?: unknown }).message ?? String(err)}`);
  }
  // A write that would make a second open run of a cached key (the unique index tasks_cache_open, core/result-cache.ts).
  if (errcode === SQLITE_CONSTRAINT_UNIQUE && String((err as { message?: unknown }).message).includes(CACHE_OPEN_COLUMNS)) return cacheRunOpenError();
  return err;
}
