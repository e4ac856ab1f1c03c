// The audit log: every mutating request and every refused one, appended (never updated) by
// the HTTP layer after the answer is sent. Entries are buffered and written in batches, so
// auditing costs one multi-row insert per batch rather than a commit per request; `flush()`
// on shutdown writes what is buffered. Entries reach the table within FLUSH_DELAY_MS. Reading is for admins (GET /api/v1/audit).

import type { Principal } from '../core/permissions.ts';
import type { AuditListParams, AuditRecord, NewAuditRecord } from '../store/store.ts';
import type { EngineContext } from './context.ts';

const MAX_BATCH = 1_000;
/**
 * Entries wait this long to be written together: under load a flush per event-loop turn
 * was a transaction per few requests (on PostgreSQL, round trips and a commit each).
 */
const FLUSH_DELAY_MS = 25;
/** A burst larger than this while the database is slow is dropped (and logged), not kept in memory without bound. */
const MAX_BUFFERED = 100_000;

export class AuditLog {
  readonly #ctx: EngineContext;
  #buffer: NewAuditRecord[] = [];
  #flushing: Promise<void> | null = null;
  #scheduled = false;
  #dropped = 0;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  record(entry: Omit<NewAuditRecord, 'at'> & { at?: number }): void {
    if (this.#buffer.length >= MAX_BUFFERED) {
      this.#dropped++;
      return;
    }
    this.#buffer.push({ ...entry, at: entry.at ?? this.#ctx.now() });
    if (this.#buffer.length >= MAX_BATCH) {
      void this.flush();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => {
        this.#scheduled = false;
        void this.flush();
      }, FLUSH_DELAY_MS).unref();
    }
  }

  /** Writes everything buffered so far (in order); resolves when it is committed. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#buffer.length === 0) return;
    this.#flushing = (async () => {
      while (this.#buffer.length > 0) {
        const batch = this.#buffer.splice(0, MAX_BATCH);
        try {
          await this.#ctx.store.auditAppend({ entries: batch });
        } catch (err) {
          // Put the batch back and stop: the next record or flush tries again.
          this.#buffer.unshift(...batch);
          this.#ctx.log.error({ err, buffered: this.#buffer.length }, 'audit log write failed; will retry');
          break;
        }
      }
      if (this.#dropped > 0) {
        this.#ctx.log.error({ dropped: this.#dropped }, 'audit entries dropped: the buffer was full while the database was unavailable');
        this.#dropped = 0;
      }
    })();
    try {
      await this.#flushing;
    } finally {
      this.#flushing = null;
    }
  }

  async list(_principal: Principal, params: AuditListParams): Promise<{ items: AuditRecord[]; nextBefore: number | null }> {
    await this.flush();
    return this.#ctx.store.auditList(params);
  }
}
