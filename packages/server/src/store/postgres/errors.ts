// Classifying database errors. Two families matter to callers:
// - the database cannot be reached or cannot serve now (refused, reset, timed out, shutting
//   down, not accepting connections, out of connections or other resources, read-only after a
//   failover, a lock held far too long): every store method rejects with FlotillaError
//   STORE_UNAVAILABLE, which the HTTP layer answers with 503 and Retry-After, and the
//   connection involved is discarded rather than reused;
// - a transaction lost a race the database resolved by aborting it (deadlock, serialization
//   failure): the write batch retries it, since nothing of it was committed.
// Everything else (constraint violations, bugs) propagates unchanged, as in the SQLite store.
//
// This is the one place that decides. Every path to the database ends here: reads (the
// store's #read), the write batch (a failed connect, BEGIN, statement or COMMIT), the
// audit-log transaction, migrations, and the leadership session. The LISTEN session
// (notifier.ts) retries whatever its failure, as it has nobody to answer.

import { FlotillaError } from '../../core/errors.ts';
import { cacheRunOpenError } from '../../core/result-cache.ts';

/** Socket-level failures reported by Node (`err.code`). */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH',
  'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT' /* a Unix socket path that does not exist */,
]);

/**
 * SQLSTATEs that mean "not available right now" rather than "your statement is wrong":
 * - 55000 object_not_in_prerequisite_state: what a connection gets from a database that does
 *   not accept connections (`ALTER DATABASE ... ALLOW_CONNECTIONS false`, during maintenance;
 *   the few statement-level uses of 55000, like currval before nextval, are none of ours);
 * - 57P01 admin_shutdown (also pg_terminate_backend), 57P02 crash_shutdown, 57P03
 *   cannot_connect_now (starting up, recovering), 57P04 database_dropped, 57P05
 *   idle_session_timeout;
 * - 25006 read_only_sql_transaction: a write sent to a standby, e.g. the old primary's address
 *   right after a failover;
 * - 58000 system_error, 58030 io_error: the database server's own disk or OS failed;
 * - 55P03 lock_not_available (the lock timeout: something holds our rows for far too long),
 *   57014 query_canceled (a statement timeout).
 * Class 08 (connection exception) and class 53 (insufficient resources: 53000, disk_full
 * 53100, out_of_memory 53200, too_many_connections 53300, configuration_limit_exceeded
 * 53400) are matched as classes.
 */
const UNAVAILABLE_SQLSTATES: ReadonlySet<string> = new Set([
  '55000', '57P01', '57P02', '57P03', '57P04', '57P05', '25006', '58000', '58030', '55P03', '57014',
]);
const UNAVAILABLE_CLASSES: readonly string[] = ['08', '53'];

/** Messages node-postgres and its pool use for a connection that is gone or never came. */
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /is not queryable/,
  /^Query read timeout/,
  /Cannot use a pool after calling end/,
];

/** deadlock_detected, serialization_failure: the transaction was aborted and may simply be run again. */
const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set(['40P01', '40001']);

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The database could not be reached, dropped the connection (the statement's fate is then
 * unknown), or cannot serve right now.
 */
export function isUnavailableError(err: unknown): boolean {
  if (err instanceof FlotillaError) return err.code === 'STORE_UNAVAILABLE';
  const code = codeOf(err);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || (code.length === 5 && UNAVAILABLE_CLASSES.includes(code.slice(0, 2)))) return true;
  }
  // AggregateError: a host name that resolved to several addresses, all of which failed.
  if (err instanceof AggregateError && err.errors.length > 0 && err.errors.every(isUnavailableError)) return true;
  const message = messageOf(err);
  return UNAVAILABLE_MESSAGES.some((re) => re.test(message));
}

/** Aborted by the database to resolve a conflict between transactions; safe to run again. */
export function isRetryableError(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && RETRYABLE_SQLSTATES.has(code);
}

/**
 * What a store method rejects with: STORE_UNAVAILABLE for connection failures, a validation
 * error for text PostgreSQL cannot store (a NUL character, which jsonb and text both refuse,
 * unlike SQLite), the original error otherwise.
 */
export function toStoreError(err: unknown): unknown {
  if (err instanceof FlotillaError) return err;
  if (isUnavailableError(err)) {
    return new FlotillaError('STORE_UNAVAILABLE', `the database is unavailable: ${messageOf(err)}`);
  }
  const code = codeOf(err);
  // A write that would make a second open run of a cached key (core/result-cache.ts).
  if (code === '23505' && (err as { constraint?: unknown }).constraint === 'tasks_cache_open') return cacheRunOpenError();
  if (code === '22P05' || code === '22021') {
    return new FlotillaError('VALIDATION_FAILED', `the database cannot store this text: ${messageOf(err)}`);
  }
  return err;
}

export function storeClosed(): FlotillaError {
  return new FlotillaError('STORE_UNAVAILABLE', 'the store is closed');
}
