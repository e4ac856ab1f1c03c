// Audit log reads (admins only: `audit.read`): one page, or every matching entry newest
// first, fetching older pages with `before = nextBefore` as the consumer goes.

import type { AuditEntryView, AuditPage } from '../wire.ts';
import type { Transport } from './transport.ts';

export interface AuditFilters {
  /** An API key id, `token:<id>` for a scoped token, or `system`. */
  principalId?: string;
  /** e.g. `task.submit`, `key.manage`. */
  action?: string;
  outcome?: AuditEntryView['outcome'];
  /** Entries at or after this time. */
  since?: Date | string;
  /** Entries at or before this time. */
  until?: Date | string;
  /** Page size (server: 1..1000, default 100). */
  limit?: number;
  signal?: AbortSignal;
}

export interface AuditPageFilters extends AuditFilters {
  /** Only entries with a smaller seq: a page's `nextBefore`. */
  before?: number;
}

function iso(value: Date | string | undefined): string | undefined {
  return value instanceof Date ? value.toISOString() : value;
}

export class AuditApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  /** One page, newest first. */
  page(filters: AuditPageFilters = {}): Promise<AuditPage> {
    const { signal, since, until, ...rest } = filters;
    return this.#t.request('GET', '/audit', { query: { ...rest, since: iso(since), until: iso(until) }, idempotent: true, signal });
  }

  /** Every matching entry, newest first, fetching pages of `limit` as the consumer goes. */
  async *list(filters: AuditFilters = {}): AsyncGenerator<AuditEntryView, void, undefined> {
    let before: number | undefined;
    for (;;) {
      const page = await this.page({ ...filters, ...(before === undefined ? {} : { before }) });
      yield* page.items;
      if (page.nextBefore === null || page.items.length === 0) return;
      before = page.nextBefore;
    }
  }
}
