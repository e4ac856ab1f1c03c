// Classifying database errors. Two families matter to callers:
// - the database cannot be reached or cannot serve now (refused, reset, timed out, shutting
//   down, out of connections, a lock held far too long): every store method rejects with
//   FlotillaError STORE_UNAVAILABLE, which the HTTP layer answers with 503, and the connection
//   involved is discarded rather than reused;
// - a transaction lost a race the database resolved by aborting it (deadlock, serialization
//   failure): the write batch retries it, since nothing of it was committed.
// Everything else (constraint violations, bugs) propagates unchanged, as in the SQLite store.

import { FlotillaError } from '../../core/errors.ts';

/** Socket-level failures reported by Node (`err.code`). */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH',
  'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT' /* a Unix socket path that does not exist */,
]);

/**
 * SQLSTATEs that mean "not available right now" rather than "your statement is wrong":
 * admin_shutdown, crash_shutdown, cannot_connect_now (starting up, recovering),
 * idle_session_timeout, too_many_connections, lock_not_available (the lock timeout: something
 * holds our rows for far too long), query_canceled (a statement timeout). Class 08 (connection
 * exception) is matched as a class.
 */
const UNAVAILABLE_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '57P05', '53300', '55P03', '57014']);

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
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08')) return true;
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
  if (code === '22P05' || code === '22021') {
    return new FlotillaError('VALIDATION_FAILED', `the database cannot store this text: ${messageOf(err)}`);
  }
  return err;
}

export function storeClosed(): FlotillaError {
  return new FlotillaError('STORE_UNAVAILABLE', 'the store is closed');
}
