// Provider rate limits (`rate_limit.manage` to change them) and usage sums (readers of every
// task), issue 16: docs/flow-control.md, docs/usage.md.

import type { ItemList, RateLimitSpecWire, RateLimitView, UsageSummaryView } from '../wire.ts';
import type { Transport } from './transport.ts';

export interface UsageOptions {
  groupBy: 'agent' | 'root' | 'day';
  /** Attempts reported at or after this time. */
  since?: Date | string;
  /** Attempts reported before this time. */
  until?: Date | string;
  signal?: AbortSignal;
}

const iso = (v: Date | string | undefined): string | undefined => (v instanceof Date ? v.toISOString() : v);

export class RateLimitsApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  /** Every key, with its last minute (used, remaining) and its pause. */
  async list(opts: { signal?: AbortSignal } = {}): Promise<RateLimitView[]> {
    return (await this.#t.request<ItemList<RateLimitView>>('GET', '/rate-limits', { idempotent: true, signal: opts.signal })).items;
  }

  /** Declares or replaces a key's requests (rpm) and tokens (tpm) per minute. Idempotent. */
  set(key: string, spec: RateLimitSpecWire): Promise<RateLimitView> {
    return this.#t.request('PUT', `/rate-limits/${encodeURIComponent(key)}`, { body: spec, idempotent: true });
  }

  /** Removes a key's limits: its tasks dispatch unlimited. */
  async remove(key: string): Promise<void> {
    await this.#t.request('DELETE', `/rate-limits/${encodeURIComponent(key)}`, { idempotent: true });
  }
}

export class UsageApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  /** Reported usage (tokens, cost) summed per agent, tree (root task) or UTC day. */
  summary(opts: UsageOptions): Promise<UsageSummaryView> {
    const since = iso(opts.since);
    const until = iso(opts.until);
    return this.#t.request('GET', '/usage', {
      query: { groupBy: opts.groupBy, ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }) },
      idempotent: true, signal: opts.signal,
    });
  }
}
