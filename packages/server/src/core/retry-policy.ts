import type { Millis } from './types.ts';

export interface RetryPolicy {
  /** Delay before the second attempt; doubles for each further attempt. */
  baseDelayMs: Millis;
  /** Cap on the delay. */
  maxDelayMs: Millis;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseDelayMs: 1_000, maxDelayMs: 300_000 };

/**
 * Exponential backoff with "equal jitter": half of the exponential delay is fixed and half is
 * random. The fixed half guarantees a failing task really backs off; the random half spreads
 * a burst of failures (say, a model server that restarted) so retries do not arrive in lockstep.
 *
 * @param attempt the attempt that just failed, 1-based
 * @param random a number in [0, 1): injected so the policy stays pure and testable
 */
export function retryDelay(policy: RetryPolicy, attempt: number, random: number): Millis {
  const exp = policy.baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxDelayMs, exp);
  const half = capped / 2;
  return Math.round(half + half * random);
}
