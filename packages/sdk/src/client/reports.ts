// Reports over the fleet (readers of every task: `task.read.all`).

import type { DelegationReport } from '../wire.ts';
import type { Transport } from './transport.ts';

export interface DelegationOptions {
  /** The window's start (default: 24 hours ago); it ends now. */
  since?: Date | string;
  signal?: AbortSignal;
}

export class ReportsApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  /** Per agent: attempts assigned, completed, failed, in flight, median and p95 duration, SLAs met and violated, reliability. */
  delegation(opts: DelegationOptions = {}): Promise<DelegationReport> {
    const since = opts.since instanceof Date ? opts.since.toISOString() : opts.since;
    return this.#t.request('GET', '/reports/delegation', { query: since === undefined ? {} : { since }, idempotent: true, signal: opts.signal });
  }
}
