// The HTTP worker's reports, coalesced (docs/protocol.md §4, Batch reports). To a server
// whose register answer announces `maxBatchItems`, the reports written in one event-loop turn
// (starts, heartbeats, progress, completions, failures, cancellations of several attempts) go
// as one `POST /workers/{replicaId}/reports` at its end (several when they exceed
// maxBatchItems or maxMessageBytes); a report alone goes to its own route. Each report still
// gets its own answer, or the error its own route would have thrown, so the channel's size
// checks, retries and judgement stay per report.
//
// A batch the server refuses as a whole with a 4xx that says it does not take it (no such
// route on that node, a body refused as too large or malformed) applied none of its reports:
// they are sent again each to its route, and no batch is sent until the next registration.

import { apiErrorFromBody, FlotillaApiError } from '../client/errors.ts';
import type { Transport } from '../client/transport.ts';
import type { BatchReportOp, ReportResults } from '../wire.ts';
import { afterThisTurn, utf8Length, type Logger, type SizeLimit } from './channel.ts';

interface Queued {
  op: BatchReportOp;
  assignmentId: string;
  body: Record<string, unknown>;
  idempotent: boolean;
  /** The size of the item as the batch carries it (its JSON), in bytes. */
  bytes: number;
  resolve(answer: unknown): void;
  reject(err: unknown): void;
}

/** The bytes of `{"items":[]}` around a batch's items. */
const ENVELOPE_BYTES = 12;

export class HttpReports {
  readonly #transport: Transport;
  readonly #size: SizeLimit;
  readonly #log: Logger;
  readonly #replicaId: () => string | null;
  /** The most reports per batch the server takes; 0: each report to its own route. */
  #batchItems = 0;
  #queue: Queued[] = [];
  #flushScheduled = false;

  constructor(o: { transport: Transport; size: SizeLimit; log: Logger; replicaId: () => string | null }) {
    this.#transport = o.transport;
    this.#size = o.size;
    this.#log = o.log;
    this.#replicaId = o.replicaId;
  }

  /** What a registration says (`maxBatchItems`, absent from servers older than batches). */
  announce(maxBatchItems: unknown): void {
    const n = maxBatchItems;
    this.#batchItems = this.#size.announced !== null && typeof n === 'number' && Number.isSafeInteger(n) && n > 1 ? n : 0;
  }

  /**
   * Sends one report (its route's body without `replicaId`); resolves with its route's answer,
   * or rejects with the error the route would have thrown.
   */
  post<T>(op: BatchReportOp, assignmentId: string, body: Record<string, unknown>, idempotent: boolean): Promise<T> {
    if (this.#batchItems === 0) return this.#alone(op, assignmentId, body, idempotent);
    const bytes = utf8Length(JSON.stringify({ op, assignmentId, ...body }));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, assignmentId, body, idempotent, bytes, resolve: resolve as (answer: unknown) => void, reject });
      if (this.#flushScheduled) return;
      this.#flushScheduled = true;
      afterThisTurn(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    });
  }

  #alone<T>(op: BatchReportOp, assignmentId: string, body: Record<string, unknown>, idempotent: boolean): Promise<T> {
    return this.#transport.request<T>('POST', `/assignments/${assignmentId}/${op}`, { body: { replicaId: this.#replicaId(), ...body }, idempotent });
  }

  /** Sends the queue in order, as few batches as the limits allow; a batch of one goes to its route. */
  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    const limit = this.#size.announced ?? Infinity;
    let batch: Queued[] = [];
    let bytes = ENVELOPE_BYTES;
    for (const q of queue) {
      // Each item after the first adds a comma.
      if (batch.length > 0 && (batch.length >= this.#batchItems || bytes + 1 + q.bytes > limit)) {
        void this.#send(batch);
        batch = [];
        bytes = ENVELOPE_BYTES;
      }
      bytes += (batch.length > 0 ? 1 : 0) + q.bytes;
      batch.push(q);
    }
    if (batch.length > 0) void this.#send(batch);
  }

  async #send(batch: Queued[]): Promise<void> {
    if (batch.length === 1 || this.#batchItems === 0) {
      for (const q of batch) this.#alone(q.op, q.assignmentId, q.body, q.idempotent).then(q.resolve, q.reject);
      return;
    }
    let res: ReportResults;
    try {
      res = await this.#transport.request<ReportResults>('POST', `/workers/${this.#replicaId()}/reports`, {
        // Each item serialized as it was measured (the same keys in the same order).
        body: { items: batch.map((q) => ({ op: q.op, assignmentId: q.assignmentId, ...q.body })) },
        idempotent: batch.every((q) => q.idempotent),
      });
    } catch (err) {
      if (err instanceof FlotillaApiError && (err.code === 'NOT_FOUND' || err.status === 400 || err.status === 413 || err.status === 415)) {
        this.#batchItems = 0;
        this.#log('warn', 'the server does not take report batches here; sending each report alone until the next registration', { error: `${err.status} ${err.code}: ${err.message}`, reports: batch.length });
        return this.#send(batch);
      }
      // The server or the way to it failed (5xx, 429, network): each report's own retries decide.
      for (const q of batch) q.reject(err);
      return;
    }
    batch.forEach((q, i) => {
      const answer = res.items[i];
      if (answer === undefined) q.reject(new FlotillaApiError({ code: 'INTERNAL', status: 500, message: `the server answered ${res.items.length} of ${batch.length} reports` }));
      else if (answer.status >= 200 && answer.status < 300) q.resolve(answer.body);
      else {
        // An item has no Retry-After header: the server puts the wait in its details.
        const wait = (answer.body as { error?: { details?: { retryAfterMs?: unknown } } } | null)?.error?.details?.retryAfterMs;
        q.reject(apiErrorFromBody(answer.status, answer.body, undefined, typeof wait === 'number' ? wait : undefined));
      }
    });
  }
}
