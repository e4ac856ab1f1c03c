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

/** What one pass of #append did: the entries still to write, whether any write succeeded, whether the store is unavailable. */
interface AppendPass {
  left: NewAuditRecord[];
  written: boolean;
  down: boolean;
  /** Why the entries left could not be written, when the store is not known to be down. */
  err?: unknown;
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
    // While the database is failing, the retry timer alone writes: a full batch must not
    // turn every further record into another attempt against it.
    if (this.#buffer.length >= MAX_BATCH && !this.#failing) void this.flush();
    else this.#flushIn(this.#failing ? RETRY_DELAY_MS : FLUSH_DELAY_MS);
  }

  /**
   * Writes everything buffered so far (in order); resolves when it is committed, or when the
   * database is unavailable (the entries stay buffered and are tried again RETRY_DELAY_MS
   * later). Calls made while a flush runs share it, and one more pass after it, so there is
   * one writer and one attempt at a time.
   */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => (this.#buffer.length > 0 && !this.#failing ? this.flush() : undefined));
    if (this.#buffer.length === 0) return Promise.resolve();
    this.#flushing = this.#drain().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, MAX_BATCH);
      const pass = await this.#append(batch, false);
      const { left } = pass.left.length > 0 && !pass.down ? this.#failed(pass.err, pass.left, false) : pass;
      if (left.length === 0 && this.#failing) {
        this.#ctx.log.info({ written: batch.length }, 'audit log writes resumed');
        this.#failing = false;
      }
      if (left.length > 0) {
        // Put what is not written back and stop: the retry timer tries again.
        this.#buffer.unshift(...left);
        this.#flushIn(RETRY_DELAY_MS);
        break;
      }
    }
    if (this.#dropped > 0) {
      this.#ctx.log.error({ dropped: this.#dropped }, 'audit entries dropped: the buffer was full while the database was unavailable');
      this.#dropped = 0;
    }
  }

  /**
   * Appends `batch`. A batch the store refuses for a reason other than being unavailable is
   * halved until the entries it refuses are alone; such an entry is dropped (and logged) only
   * once another write of this pass has succeeded (`written`). When nothing at all can be
   * written (a failure the store does not classify, such as an unknown disk error), the
   * entries are kept and retried like an outage, not thrown away one by one.
   */
  async #append(batch: NewAuditRecord[], written: boolean): Promise<AppendPass> {
    try {
      await this.#ctx.store.auditAppend({ entries: batch });
      return { left: [], written: true, down: false };
    } catch (err) {
      if (unavailable(err)) return this.#failed(err, batch, true);
      if (batch.length === 1) {
        if (!written) return { left: batch, written: false, down: false, err };
        // Only what identifies the entry: its content is what the store refused.
        const [entry] = batch as [NewAuditRecord];
        this.#ctx.log.error({ err, action: entry.action, principalId: entry.principalId, requestId: entry.requestId }, 'audit entry refused by the store; dropped');
        return { left: [], written: true, down: false };
      }
      const half = Math.ceil(batch.length / 2);
      const rest = batch.slice(half);
      const first = await this.#append(batch.slice(0, half), written);
      if (first.down) return { ...first, left: first.left.concat(rest) };
      if (first.left.length === 0) {
        const second = await this.#append(rest, true);
        return { ...second, written: true };
      }
      // Nothing of the first half could be written: whether that is its entries or the store
      // is known once the second half has been tried.
      const second = await this.#append(rest, false);
      if (second.down || !second.written) return { ...second, left: first.left.concat(second.left), written: false };
      const again = await this.#append(first.left, true);
      return { ...again, left: again.left.concat(second.left), written: true };
    }
  }

  #failed(err: unknown, batch: NewAuditRecord[], down: boolean): AppendPass {
    // Once per outage, not once per retry.
    if (!this.#failing) this.#ctx.log.error({ err, buffered: this.#buffer.length + batch.length }, 'audit log write failed; will retry');
    this.#failing = true;
    return { left: batch, written: false, down };
  }

  #flushIn(ms: number): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      void this.flush();
    }, ms).unref();
  }

  async list(_principal: Principal, params: AuditListParams): Promise<{ items: AuditRecord[]; nextBefore: number | null }> {
    await this.flush();
    return this.#ctx.store.auditList(params);
  }
}
