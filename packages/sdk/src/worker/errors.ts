// What a handler throws, and why its signal was aborted.

/** Throw from a handler to fail the attempt for good: the task is not retried. */
export class NonRetryableError extends Error {
  readonly code: string | undefined;
  readonly details: unknown;
  constructor(message: string, options: { code?: string; details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NonRetryableError';
    this.code = options.code;
    this.details = options.details;
  }
}

/**
 * Throw from a handler when the provider refused with a rate limit (a 429): the attempt ends
 * without spending a retry, the task runs again after `retryAfterMs` (default: one minute),
 * and the task's rate key pauses that long on every node (docs/flow-control.md).
 */
export class RateLimitedError extends Error {
  readonly retryAfterMs: number | undefined;
  readonly code: string | undefined;
  constructor(message: string, options: { retryAfterMs?: number; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RateLimitedError';
    this.retryAfterMs = options.retryAfterMs;
    this.code = options.code;
  }
}

/**
 * Why `ctx.signal` was aborted (it is the signal's `reason`):
 * - cancelled: someone cancelled the task; the worker acknowledges once the handler returns;
 * - timeout: the attempt passed its deadline;
 * - lease_lost: the server no longer considers this attempt ours (lease lapsed, or it was
 *   given to another replica): stop, nothing will be reported;
 * - shutdown: the worker is stopping and the drain deadline passed; the attempt is failed as
 *   retryable so it moves to another replica at once.
 */
export type AbortKind = 'cancelled' | 'timeout' | 'lease_lost' | 'shutdown';

export class TaskAbortedError extends Error {
  readonly kind: AbortKind;
  /** The server already ended the attempt (e.g. its reaper timed it out): nothing is reported. */
  readonly endedByServer: boolean;
  constructor(kind: AbortKind, message: string, endedByServer = false) {
    super(message);
    this.name = 'TaskAbortedError';
    this.kind = kind;
    this.endedByServer = endedByServer;
  }
}
