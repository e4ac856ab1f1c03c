// Group commit. With synchronous=FULL every COMMIT costs an fsync of the WAL, which is far
// slower than the writes themselves; committing every mutation separately would cap the
// store at a few hundred writes per second. Instead, mutations are queued and all the ones
// requested during one turn of the event loop are applied in a single transaction, with one
// fsync, flushed from `setImmediate`.
//
// Guarantees:
// - Each operation is atomic and independent: if it throws, nothing it wrote persists, only
//   its own promise rejects, and the others in the batch still commit. Operations first run
//   without savepoints: a savepoint makes SQLite copy every page the operation first touches
//   into a statement journal, which measured ~30% of a task create (bench/store-floor.ts). If
//   one throws, the transaction is rolled back and the batch runs again with a SAVEPOINT
//   around each operation, where a failure undoes only its own writes. Operations must
//   therefore be repeatable: they only read and write the database and compute their result
//   from it. An operation that detects a business error before writing anything returns
//   `refuse(error)` instead of throwing: it is rejected without a rollback or a rerun.
// - A promise settles only after the COMMIT that made its writes durable. If the COMMIT (or
//   the BEGIN) fails, every operation of the batch rejects: none of them was written.
// - Operations apply in the order they were enqueued.
// - The flush is synchronous (node:sqlite is a synchronous API), so no read issued from
//   JavaScript can observe the open transaction: reads run between flushes and see only
//   committed data. A read issued before a queued write has flushed does not see that write
//   (the write has not been acknowledged yet, either).
// - A batch holds at most `maxOps` operations, bounding how long one flush blocks the event
//   loop; the rest wait for the next flush, scheduled at once.
// - Consecutive operations of one `Mergeable` kind run as one (`runMany`, one result per
//   operation, decision 45): the transitions of many calls share their statements.
// - Durability per batch (docs/decisions.md 41): an operation is durable (the default) or
//   relaxed. A batch with a durable operation commits at synchronous=FULL (the WAL is fsynced
//   before any promise settles); a batch of relaxed operations only (claims, starts,
//   heartbeats, progress) commits at synchronous=NORMAL: written to the WAL, not fsynced, so
//   it survives a process kill, and the next FULL commit fsyncs it too (the WAL is one file,
//   appended in commit order). A store opened with synchronous=NORMAL never fsyncs a commit.

import { toStoreError } from './errors.ts';
import type { DatabaseSync } from 'node:sqlite';
import { FlotillaError } from '../../core/errors.ts';
import { counterZero, type StoreCounters } from '../counters.ts';
import { CountedStatement } from './statement-cache.ts';
import { mergeGroup } from '../merge-group.ts';

/**
 * An operation that can run together with its queued neighbours of the same kind: `runMany`
 * gets the items of consecutive operations of that kind and returns one result per item (as
 * each `run` would have, in order). Used without savepoints only; a batch rerun with a
 * savepoint per operation runs each alone.
 */
export interface Mergeable<I> {
  kind: string;
  item: I;
  runMany: (items: readonly I[]) => unknown[];
}

interface QueuedOp {
  run: () => unknown;
  durable: boolean;
  merge: Mergeable<unknown> | undefined;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** What an operation returns when it refuses before writing anything (see the file comment). */
export class Refusal {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

export function refuse(error: unknown): Refusal {
  return new Refusal(error);
}

export const DEFAULT_MAX_BATCH_OPS = 1000;

export class WriteBatch {
  readonly #db: DatabaseSync;
  readonly #maxOps: number;
  #queue: QueuedOp[] = [];
  #immediate: NodeJS.Immediate | null = null;
  #closed = false;
  #commits = 0;
  /** The store's counters (statements run here and commits; see counters.ts). */
  readonly #counters: StoreCounters;
  readonly #begin: CountedStatement;
  readonly #commit: CountedStatement;
  readonly #rollback: CountedStatement;
  readonly #savepoint: CountedStatement;
  readonly #release: CountedStatement;
  readonly #rollbackTo: CountedStatement;
  /** Whether durable batches fsync (the store's synchronous setting is FULL). */
  readonly #fsync: boolean;
  /** The connection's synchronous mode now: FULL while true. */
  #full: boolean;

  constructor(db: DatabaseSync, options: { maxOps?: number; counters?: StoreCounters; synchronous?: 'FULL' | 'NORMAL' } = {}) {
    this.#db = db;
    this.#fsync = (options.synchronous ?? 'FULL') === 'FULL';
    this.#full = this.#fsync;
    this.#maxOps = options.maxOps ?? DEFAULT_MAX_BATCH_OPS;
    this.#counters = options.counters ?? counterZero();
    const prepare = (sql: string): CountedStatement => new CountedStatement(db.prepare(sql), this.#counters);
    // IMMEDIATE takes the write lock up front, so a busy database fails (after busy_timeout)
    // at BEGIN, before any operation ran, instead of half way through the batch.
    this.#begin = prepare('BEGIN IMMEDIATE');
    this.#commit = prepare('COMMIT');
    this.#rollback = prepare('ROLLBACK');
    this.#savepoint = prepare('SAVEPOINT batch_op');
    this.#release = prepare('RELEASE batch_op');
    this.#rollbackTo = prepare('ROLLBACK TO batch_op');
  }

  /** Committed transactions so far (observability, and tests of the batching itself). */
  get commits(): number {
    return this.#commits;
  }

  /** Operations waiting for the next flush. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Queues `run` for the next batch. `run` executes synchronously inside the batch's
   * transaction and its own savepoint; the promise settles with its result (or error) once
   * the transaction is committed (and, unless `durable` is false, fsynced).
   */
  enqueue<T, I = never>(run: () => T | Refusal, options: { durable?: boolean; merge?: Mergeable<I> } = {}): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new FlotillaError('STORE_UNAVAILABLE', 'the store is closed'));
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        run, durable: options.durable ?? true, merge: options.merge as Mergeable<unknown> | undefined,
        resolve: resolve as (value: unknown) => void, reject,
      });
      this.#schedule();
    });
  }

  /** Applies every queued operation now, in as many batches as needed. */
  flushAll(): void {
    if (this.#immediate !== null) {
      clearImmediate(this.#immediate);
      this.#immediate = null;
    }
    while (this.#queue.length > 0) this.#flushOne();
  }

  /** Flushes what is queued and refuses further operations. */
  close(): void {
    this.flushAll();
    this.#closed = true;
  }

  #schedule(): void {
    if (this.#immediate !== null) return;
    this.#immediate = setImmediate(() => {
      this.#immediate = null;
      this.#flushOne();
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  #flushOne(): void {
    const ops = this.#queue.splice(0, this.#maxOps);
    if (ops.length === 0) return;
    if (this.#attempt(ops, false) === 'rerun') this.#attempt(ops, true);
  }

  /**
   * Runs the batch in one transaction and settles every operation, except when an operation
   * threw without savepoints (`isolate` false): then the transaction is rolled back, nothing
   * is settled, and the caller runs the batch again with `isolate`.
   */
  #attempt(ops: QueuedOp[], isolate: boolean): 'settled' | 'rerun' {
    const outcomes: Outcome[] = [];
    try {
      this.#setDurability(this.#fsync && ops.some((op) => op.durable));
      this.#begin.run();
    } catch (error) {
      for (const op of ops) op.reject(toStoreError(error));
      return 'settled';
    }
    try {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (isolate) {
          outcomes.push(this.#runOne(op));
          continue;
        }
        const group = mergeGroup(ops, i);
        let values: unknown[];
        try {
          values = group > 1 ? op.merge!.runMany(ops.slice(i, i + group).map((o) => o.merge!.item)) : [op.run()];
          if (values.length !== group) throw new Error(`a merged operation returned ${values.length} results for ${group}`);
          if (values.some((v) => v instanceof Promise)) throw new TypeError('a write batch operation must be synchronous');
        } catch (error) {
          // Lost the transaction (I/O error, disk full): the batch fails as a whole, below.
          if (!this.#db.isTransaction) throw error;
          this.#rollback.run();
          return 'rerun';
        }
        if (!this.#db.isTransaction) throw new Error('a write batch operation ended the transaction');
        for (const value of values) outcomes.push(value instanceof Refusal ? { ok: false, error: value.error } : { ok: true, value });
        i += group - 1;
      }
      this.#commit.run();
      this.#commits += 1;
      this.#counters.commits += 1;
    } catch (error) {
      // The transaction as a whole failed (COMMIT could not be written, or SQLite rolled the
      // transaction back under an operation, e.g. on an I/O error): nothing in it persisted.
      if (this.#db.isTransaction) {
        try {
          this.#rollback.run();
        } catch {
          // The connection is unusable; the callers learn that from `error`.
        }
      }
      for (const op of ops) op.reject(toStoreError(error));
      return 'settled';
    }
    ops.forEach((op, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) op.resolve(outcome.value);
      else op.reject(toStoreError(outcome.error));
    });
    return 'settled';
  }

  /**
   * The synchronous mode the next COMMIT runs at (it can change only outside a transaction).
   * Executed afresh each time, never prepared: SQLite applies this pragma when the statement
   * is compiled, so a prepared copy would switch the mode at preparation, not when run.
   */
  #setDurability(full: boolean): void {
    if (full === this.#full) return;
    this.#db.exec(`PRAGMA synchronous = ${full ? 'FULL' : 'NORMAL'}`);
    this.#counters.statements += 1;
    this.#full = full;
  }

  /** Runs one operation in its own savepoint. Throws only when the whole transaction is lost. */
  #runOne(op: QueuedOp): Outcome {
    this.#savepoint.run();
    try {
      const value = op.run();
      // An async operation would run its awaited part outside the transaction.
      if (value instanceof Promise) throw new TypeError('a write batch operation must be synchronous');
      this.#release.run();
      return value instanceof Refusal ? { ok: false, error: value.error } : { ok: true, value };
    } catch (error) {
      // Some errors (I/O, out of memory, disk full) make SQLite roll back the whole
      // transaction; then there is no savepoint left to return to and the batch is lost.
      if (!this.#db.isTransaction) throw error;
      this.#rollbackTo.run();
      this.#release.run();
      return { ok: false, error };
    }
  }
}
