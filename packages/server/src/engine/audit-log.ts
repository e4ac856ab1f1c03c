// The audit log: every mutating request and every refused one, appended (never updated) by
// the HTTP layer after the answer is sent. Entries are buffered and written in batches, so
// auditing costs one multi-row insert per batch rather than a commit per request; `flush()`
// on shutdown writes what is buffered. Entries reach the table within FLUSH_DELAY_MS. Reading is for admins (GET /api/v1/audit).

import { FlotillaError } from '../core/errors.ts';
import { storableJson, storableText } from '../core/json-limits.ts';
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
/** After a failed write (the database is down), the buffer is tried again this soon even if nothing new is recorded. */
const RETRY_DELAY_MS = 1_000;
/** A target or name longer than this is cut: a path parameter may be up to 1 KiB, and the log is no place for more. */
const MAX_TEXT = 1_024;

/** Text made storable; anything else (null, or undefined where a caller had no value) is null. */
function storable(text: string | null | undefined): string | null {
  return typeof text === 'string' ? storableText(text, MAX_TEXT) : null;
}

/**
 * An entry every store can hold, whatever the request carried: the audit log records refused
 * requests too, before any validation (a 401's path may hold a NUL or an unpaired surrogate),
 * and one such entry must neither be lost nor fail the batch it is written with.
 */
function storableEntry(entry: NewAuditRecord): NewAuditRecord {
  return {
    ...entry,
    principalId: storable(entry.principalId), principalName: storable(entry.principalName), role: storable(entry.role),
    action: storableText(entry.action, MAX_TEXT), target: storable(entry.target), requestId: storable(entry.requestId),
    source: storable(entry.source), details: entry.details === null ? null : storableJson(entry.details),
  };
}

function unavailable(err: unknown): boolean {
  return err instanceof FlotillaError && (err.code === 'STORE_UNAVAILABLE' || err.code === 'SHUTTING_DOWN');
}

export class AuditLog {
  readonly #ctx: EngineContext;
  #buffer: NewAuditRecord[] = [];
  #flushing: Promise<void> | null = null;
  #scheduled = false;
  #dropped = 0;
  #failing = false;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  record(entry: Omit<NewAuditRecord, 'at'> & { at?: number }): void {
    if (this.#buffer.length >= MAX_BUFFERED) {
      this.#dropped++;
      return;
    }
    this.#buffer.push(storableEntry({ ...entry, at: entry.at ?? this.#ctx.now() }));
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

  /**
   * Writes everything buffered so far (in order); resolves when it is committed, or when the
   * database is unavailable (the entries stay buffered and are tried again RETRY_DELAY_MS
   * later). A batch the store refuses for another reason is written entry by entry, so one
   * entry it cannot take never holds up the others: that entry alone is dropped and logged.
   */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#buffer.length === 0) return;
    this.#flushing = (async () => {
      while (this.#buffer.length > 0) {
        const batch = this.#buffer.splice(0, MAX_BATCH);
        const left = await this.#append(batch);
        if (left.length > 0) {
          // Put what is not written back and stop: tried again soon, or by the next record or flush.
          this.#buffer.unshift(...left);
          this.#retrySoon();
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

  /** Appends `batch`; returns the entries still to be written because the database is unavailable. */
  async #append(batch: NewAuditRecord[]): Promise<NewAuditRecord[]> {
    try {
      await this.#ctx.store.auditAppend({ entries: batch });
      if (this.#failing) this.#ctx.log.info({ written: batch.length }, 'audit log writes resumed');
      this.#failing = false;
      return [];
    } catch (err) {
      if (unavailable(err)) {
        // Once per outage, not once per retry.
        if (!this.#failing) this.#ctx.log.error({ err, buffered: this.#buffer.length + batch.length }, 'audit log write failed; will retry');
        this.#failing = true;
        return batch;
      }
      if (batch.length === 1) {
        // Only what identifies the entry: its content is what the store refused.
        const [entry] = batch as [NewAuditRecord];
        this.#ctx.log.error({ err, action: entry.action, principalId: entry.principalId, requestId: entry.requestId }, 'audit entry refused by the store; dropped');
        return [];
      }
      for (let i = 0; i < batch.length; i++) {
        const left = await this.#append([batch[i]!]);
        if (left.length > 0) return batch.slice(i);
      }
      return [];
    }
  }

  #retrySoon(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      void this.flush();
    }, RETRY_DELAY_MS).unref();
  }

  async list(_principal: Principal, params: AuditListParams): Promise<{ items: AuditRecord[]; nextBefore: number | null }> {
    await this.flush();
    return this.#ctx.store.auditList(params);
  }
}
