// Typed errors of the client. An API error carries the server's stable code (ERROR_STATUS);
// a network error means no HTTP answer arrived, so the caller cannot know whether a
// non-idempotent call was applied — that is why the two are distinct classes.

import { ERROR_STATUS, isErrorCode, type ErrorCode } from '../errors.ts';

export class FlotillaApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  /** The x-request-id the client sent; the server logs under it. */
  readonly requestId: string | undefined;
  /** The answer's `Retry-After`, in ms, when it had one: do not try again sooner. */
  readonly retryAfterMs: number | undefined;

  constructor(params: { code: ErrorCode; message: string; status: number; details?: unknown; requestId?: string; retryAfterMs?: number }) {
    super(params.message);
    this.name = 'FlotillaApiError';
    this.code = params.code;
    this.status = params.status;
    this.details = params.details;
    this.requestId = params.requestId;
    this.retryAfterMs = params.retryAfterMs;
  }
}

export class FlotillaNetworkError extends Error {
  /** The base URL the request went to. */
  readonly url: string;

  constructor(message: string, params: { url: string; cause?: unknown }) {
    super(message, params.cause === undefined ? undefined : { cause: params.cause });
    this.name = 'FlotillaNetworkError';
    this.url = params.url;
  }
}

/**
 * The typed error for an error in a WebSocket reply; null when its code is not in the table.
 * Its status is the reply's (the HTTP twin's), or the code's from servers that send none.
 */
export function apiErrorFromReply(e: { code: string; message: string; details?: unknown }, status?: number): FlotillaApiError | null {
  if (!isErrorCode(e.code)) return null;
  return new FlotillaApiError({ code: e.code, status: typeof status === 'number' ? status : ERROR_STATUS[e.code], message: e.message, ...(e.details === undefined ? {} : { details: e.details }) });
}

/** True for an API error, and (when `code` is given) one with that code. */
export function isFlotillaError(err: unknown, code?: ErrorCode): err is FlotillaApiError {
  return err instanceof FlotillaApiError && (code === undefined || err.code === code);
}

/**
 * The error for a non-2xx answer. A body that is not a Flotilla error (a proxy's HTML page,
 * a truncated body) still becomes a typed error: code INTERNAL with the real HTTP status.
 */
export function apiErrorFrom(status: number, bodyText: string, requestId: string | undefined, retryAfterMs?: number): FlotillaApiError {
  let parsed: unknown = null;
  try {
    parsed = bodyText === '' ? null : JSON.parse(bodyText);
  } catch {
    parsed = null;
  }
  return apiErrorFromBody(status, parsed, requestId, retryAfterMs, bodyText);
}

/** The same, for a body already parsed (an item of a report batch's answer). */
export function apiErrorFromBody(status: number, parsed: unknown, requestId: string | undefined, retryAfterMs?: number, bodyText?: string): FlotillaApiError {
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  if (error && isErrorCode(error.code)) {
    return new FlotillaApiError({
      code: error.code,
      message: typeof error.message === 'string' ? error.message : error.code,
      status,
      ...(error.details === undefined ? {} : { details: error.details }),
      ...(requestId === undefined ? {} : { requestId }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  const text = bodyText ?? JSON.stringify(parsed) ?? '';
  return new FlotillaApiError({
    code: 'INTERNAL',
    message: `unexpected HTTP ${status} response${text ? `: ${text.slice(0, 200)}` : ''}`,
    status,
    ...(requestId === undefined ? {} : { requestId }),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/**
 * `Retry-After` in ms: delay-seconds (`2`) or an HTTP date; undefined when absent or
 * unreadable. A date in the past is 0.
 */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
