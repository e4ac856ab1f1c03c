// Provider rate limits (issue 16, docs/flow-control.md): the window math the dispatcher and
// the stores share. Pure: the store keeps a log of the requests admitted under each key (one
// row per dispatched attempt, with its tokens: the estimate, corrected by the reported usage)
// and the key's pause; this file decides, from that state, how many of a key's candidate tasks
// may go now and when the key has room again.
//
// The window is sliding and exact (decisions.md 103): a key with `rpm` N admits a request only
// while fewer than N were admitted in the last RATE_WINDOW_MS, and one with `tpm` T only while
// the tokens of those requests plus this one's estimate stay within T. A request whose estimate
// alone is larger than T is admitted when the window is empty (it could never be otherwise),
// so a wrong estimate delays a task but never strands it.

import { FlotillaError } from './errors.ts';
import type { Millis } from './types.ts';

/** The window both limits are counted over: one minute. */
export const RATE_WINDOW_MS: Millis = 60_000;

/** The largest rpm / tpm a key may declare, and the largest token count one task may estimate. */
export const MAX_RATE_REQUESTS = 1_000_000;
export const MAX_RATE_TOKENS = 1_000_000_000;
/** The longest pause a worker's `retryAfterMs` may ask for (a provider asking for more is clamped). */
export const MAX_RETRY_AFTER_MS: Millis = 3_600_000;
/**
 * The shortest: a worker answering every attempt with `retryAfterMs: 0` would otherwise cycle
 * its task at dispatch speed without ever spending an attempt.
 */
export const MIN_RETRY_AFTER_MS: Millis = 1_000;
/** A rate key as a task or the API names it (`openai:gpt-4o`). */
export const RATE_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/;

/** What a key allows per minute; null: that dimension is not limited. */
export interface RateLimitSpec {
  rpm: number | null;
  tpm: number | null;
}

/** A key as the store holds it: its limits (null for a key that is only paused) and its pause. */
export interface RateLimitRecord extends RateLimitSpec {
  key: string;
  /** Where the limits came from: the config file (re-declared at every start) or the API. */
  source: 'config' | 'api' | 'pause';
  /** Until when no request of this key is admitted (a provider's 429); null: not paused. */
  pausedUntil: Millis | null;
  updatedAt: Millis;
}

/** The key's window now: what was admitted in the last RATE_WINDOW_MS, as the store counted it. */
export interface RateWindow {
  requests: number;
  tokens: number;
  /** When the oldest request of the window leaves it; null: the window is empty. */
  oldestAt: Millis | null;
}

/** A key with its window: what GET /rate-limits shows. */
export interface RateLimitState extends RateLimitRecord {
  window: RateWindow;
}

/** A candidate of the key: its estimated tokens (null: 0). */
export interface RateRequest {
  tokens: number;
}

export interface Admission {
  /** How many of the requests, in order, may go now (a prefix: FIFO within the key). */
  admitted: number;
  /** When the key may admit the next one; null when all were admitted. */
  retryAt: Millis | null;
  /** Why the first request not admitted waits. */
  reason: 'paused' | 'rpm' | 'tpm' | null;
}

/**
 * How many of `requests` (in dispatch order) the key admits now. A key that is paused admits
 * none until the pause ends; otherwise requests are admitted while the window has room for one
 * more request and its tokens.
 */
export function admit(limit: RateLimitSpec & { pausedUntil: Millis | null }, window: RateWindow, requests: readonly RateRequest[], now: Millis): Admission {
  if (requests.length === 0) return { admitted: 0, retryAt: null, reason: null };
  if (limit.pausedUntil !== null && limit.pausedUntil > now) return { admitted: 0, retryAt: limit.pausedUntil, reason: 'paused' };
  let used = window.requests;
  let tokens = window.tokens;
  let admitted = 0;
  for (const r of requests) {
    if (limit.rpm !== null && used + 1 > limit.rpm) break;
    if (limit.tpm !== null && tokens + r.tokens > limit.tpm && !(used === 0 && tokens === 0)) break;
    used += 1;
    tokens += r.tokens;
    admitted += 1;
  }
  if (admitted === requests.length) return { admitted, retryAt: null, reason: null };
  const reason = limit.rpm !== null && used + 1 > limit.rpm ? 'rpm' : 'tpm';
  // Room comes back as the oldest request of the window leaves it (requests admitted now are
  // younger). With none in the window before this pass, the next pass's window is this one's.
  const oldest = window.oldestAt ?? now;
  return { admitted, retryAt: Math.max(now + 1, oldest + RATE_WINDOW_MS), reason };
}

/** The problems of a declared limit (API body or config entry), as a 400's message; null: fine. */
export function rateLimitProblem(key: string, spec: { rpm?: unknown; tpm?: unknown }): string | null {
  if (!RATE_KEY_PATTERN.test(key)) return `rate key "${key}" must be 1-128 characters of letters, digits and ._:/@- (starting with a letter or digit)`;
  const rpm = spec.rpm ?? null;
  const tpm = spec.tpm ?? null;
  if (rpm === null && tpm === null) return `rate key "${key}" needs rpm, tpm or both`;
  for (const [name, value, max] of [['rpm', rpm, MAX_RATE_REQUESTS], ['tpm', tpm, MAX_RATE_TOKENS]] as const) {
    if (value !== null && (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max)) return `${name} of "${key}" must be an integer 1..${max}`;
  }
  return null;
}

/** Checks a task's rate fields at submit. */
export function checkTaskRate(rateKey: string | null, estimatedTokens: number | null): void {
  if (rateKey !== null && !RATE_KEY_PATTERN.test(rateKey)) {
    throw new FlotillaError('VALIDATION_FAILED', `rateKey "${rateKey}" must be 1-128 characters of letters, digits and ._:/@- (starting with a letter or digit)`);
  }
  if (estimatedTokens !== null && rateKey === null) throw new FlotillaError('VALIDATION_FAILED', 'estimatedTokens needs a rateKey (the key whose tokens per minute it counts against)');
}

/** A worker's `retryAfterMs`, clamped to what a pause may be. */
export function pauseUntil(now: Millis, retryAfterMs: number): Millis {
  return now + Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, Math.floor(retryAfterMs)));
}
