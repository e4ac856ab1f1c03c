// Group commit. Every mutating store method is an operation queued here; the operations
// requested during one turn of the event loop (up to `maxOps`) run one after another in a
// single transaction on one pooled connection, and commit together. Up to `lanes` batches run
// at once, each on its own connection: under load, operations queue while the lanes are busy
// and the next batch takes all of them, so batches grow with the load.
//
// Why not one transaction per call:
// - One commit for many operations amortizes the round trips and the fsync, as the SQLite
//   store's batch does.
// - Writes of one process issued together apply in the order they were issued, as in the
//   SQLite store (two racing creates of the same agent: the first call wins, deterministically).
//   With a transaction per call on a pool, the order would depend on which connection the
//   server happened to serve first.
//
// Deadlocks. The rows every process writes are the counters: replicas (in_flight) and
// concurrency keys. A batch holds each row it wrote until it commits, and its operations touch
// rows in call order, so two batches (of two processes, or two lanes of one) could take two
// counters in opposite orders and deadlock (PostgreSQL detects it after deadlock_timeout, 1 s by default,
// and aborts one). To rule that out, operations declare the counters they will write
// (`LockSet`), and the batch locks all of them first, in one global order: replica rows
// sorted by id, then one transaction-level advisory lock per concurrency key, sorted by lock
// id (a key's row may not exist yet, so it cannot be row-locked; every write of a key row
// happens under its advisory lock). Row waits that remain possible (two processes writing the
// same two tasks in opposite orders, say) are rare; such a batch is aborted by the database
// and run again.
//
// Guarantees:
// - Each operation is atomic and independent: if it throws, nothing it wrote persists, only
//   its own promise rejects, and the others still commit. Operations are first run without
//   savepoints (a subtransaction per operation would cost a round trip each, and more than 64
//   in one transaction make every other session's snapshots slower). If one throws, the
//   transaction is rolled back and the batch runs again with a savepoint around each
//   operation. An operation can also *refuse* (a business error detected before it wrote
//   anything, like AGENT_EXISTS), which needs no rollback.
// - Operations must therefore be repeatable: they only issue statements on the transaction
//   they are given and compute their result from what those return.
// - Durability per batch: a batch with one durable operation commits with the server's
//   `synchronous_commit`; a batch of relaxed operations only (claims, starts, heartbeats,
//   progress) sets it off for its transaction (see EnqueueOptions.durable).
// - A promise settles only after the COMMIT that made its writes durable (or, relaxed, committed). If BEGIN, COMMIT or
//   the connection fails, every operation of the batch rejects (with STORE_UNAVAILABLE for a
//   connection failure; the outcome of a COMMIT whose answer was lost is unknown).
// - A batch the database aborted to break a deadlock (another process held rows this batch
//   needed, and the reverse) or a serialization failure is run again, a few times.
// - Events of all operations are queued last, in operation order, with the batch's signals;
//   they are numbered after the commit (events.ts).
// - Consecutive operations of the same `Mergeable` kind run as one (`runMany`, one outcome
//   per operation), so many small calls cost the round trips of one: taskTransition calls
//   become one set statement per shape (transition-set.ts). If the merged run throws, the
//   batch runs again with each operation alone in its savepoint, as for any failure.

import type pg from 'pg';
import type { EventRecord } from '../../core/types.ts';
import { appendEvents, type PendingEvent, type SignalKind } from './events.ts';
import { isUnavailableError, isRetryableError, storeClosed, toStoreError } from './errors.ts';
import { countedQueryable, runAhead, runOnce, sendAhead, type Queryable } from './sql.ts';
import { counterZero, type StoreCounters } from '../counters.ts';
import { mergeGroup } from '../merge-group.ts';

/** What an operation did: its events and signals, and how to build its result once they have seqs. */
export type WriteOutcome<T> =
  | { ok: true; events: readonly PendingEvent[]; signals: readonly SignalKind[]; result: (events: EventRecord[]) => T }
  /** Nothing was written; the caller's promise rejects with `error`. */
  | { ok: false; error: unknown };

/** A repeatable unit of writes, run inside the batch's transaction. */
export type WriteOp<T> = (tx: Queryable) => Promise<WriteOutcome<T>>;

/** The shared counters an operation will write (see "Deadlocks" above). */
export interface LockSet {
  replicas?: ReadonlyArray<string>;
  keys?: ReadonlyArray<string>;
}

/** An outcome without events. */
export function written<T>(value: T, signals: readonly SignalKind[] = []): WriteOutcome<T> {
  return { ok: true, events: [], signals, result: () => value };
}

/** An outcome with events: the batch appends them and the caller gets `build(records)`. */
export function withEvents<T>(events: readonly PendingEvent[], signals: readonly SignalKind[], build: (records: EventRecord[]) => T): WriteOutcome<T> {
  return { ok: true, events, signals, result: build };
}

/** Nothing was written; the caller's promise rejects with `error`. */
export function refused(error: unknown): WriteOutcome<never> {
  return { ok: false, error };
}

/**
 * An operation that can run together with its neighbours of the same kind: `runMany` gets
 * the items of consecutive queued operations of that kind and returns one outcome per item.
 */
export interface Mergeable<I> {
  kind: string;
  item: I;
  runMany: (items: readonly I[]) => (tx: Queryable) => Promise<Array<WriteOutcome<unknown>>>;
}

/** How an operation is queued: its counters, how it merges, and whether it must be flushed. */
export interface EnqueueOptions<I> {
  locks?: LockSet | undefined;
  merge?: Mergeable<I> | undefined;
  /**
   * False for a relaxed write (docs/decisions.md 41): a batch of relaxed operations only
   * commits with `synchronous_commit` off (committed and visible at once, in the WAL
   * without waiting for its flush; a later durable commit flushes it too). Default true.
   */
  durable?: boolean;
}

interface QueuedOp {
  run: WriteOp<unknown>;
  durable: boolean;
  locks: LockSet | undefined;
  merge: Mergeable<unknown> | undefined;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

type Attempt =
  | { kind: 'committed'; outcomes: Array<WriteOutcome<unknown>>; events: EventRecord[] }
  /** An operation threw while running without savepoints; nothing was committed. */
  | { kind: 'op_failed'; index: number; error: unknown }
  | { kind: 'retry'; error: unknown }
  | { kind: 'failed'; error: unknown };

export const DEFAULT_MAX_BATCH_OPS = 256;
const MAX_ATTEMPTS = 4;

export class WriteBatch {
  readonly #pool: pg.Pool;
  readonly #keyLock: (key: string) => string;
  readonly #channel: string;
  readonly #maxOps: number;
  readonly #lanes: number;
  #queue: QueuedOp[] = [];
  /** Batches in flight, each on its own connection. */
  #running = 0;
  /** One of them writes counters (see #take). */
  #counterBatch = false;
  /** A turn-of-the-loop flush is pending. */
  #scheduled = false;
  /** close() waiting for the last batch. */
  #idle: Array<() => void> = [];
  #closed = false;
  #commits = 0;
  /** The store's counters: every statement of a batch goes through countedQueryable, and commits are counted here. */
  readonly #counters: StoreCounters;

  constructor(params: {
    pool: pg.Pool;
    keyLock: (key: string) => string;
    channel: string;
    maxOps?: number;
    /** Batches that may run at once (each takes a pooled connection). */
    lanes?: number;
    counters?: StoreCounters;
  }) {
    this.#counters = params.counters ?? counterZero();
    this.#pool = params.pool;
    this.#keyLock = params.keyLock;
    this.#channel = params.channel;
    this.#maxOps = Math.max(1, params.maxOps ?? DEFAULT_MAX_BATCH_OPS);
    this.#lanes = Math.max(1, params.lanes ?? 1);
  }

  /** Committed transactions so far (observability, and tests of the batching itself). */
  get commits(): number {
    return this.#commits;
  }

  enqueue<T, I = never>(run: WriteOp<T>, options: EnqueueOptions<I> = {}): Promise<T> {
    if (this.#closed) return Promise.reject(storeClosed());
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        run, durable: options.durable ?? true, locks: options.locks, merge: options.merge as Mergeable<unknown> | undefined,
        resolve: resolve as (value: unknown) => void, reject,
      });
      this.#schedule();
    });
  }

  /** Refuses new operations and resolves once everything queued has been committed (or failed). */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running > 0 || this.#scheduled || this.#queue.length > 0) {
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#running >= this.#lanes) return;
    this.#scheduled = true;
    // setImmediate: everything requested in this turn of the event loop joins one batch.
    setImmediate(() => {
      this.#scheduled = false;
      this.#startBatches();
    });
  }

  #startBatches(): void {
    while (this.#queue.length > 0 && this.#running < this.#lanes) {
      const ops = this.#take();
      if (ops.length === 0) return;
      const counters = ops.some(writesCounters);
      if (counters) this.#counterBatch = true;
      this.#running += 1;
      void this.#runBatch(ops).finally(() => {
        this.#running -= 1;
        if (counters) this.#counterBatch = false;
        // Operations queued meanwhile have waited for a lane already: start them at once.
        if (this.#queue.length > 0) this.#startBatches();
        else if (this.#running === 0 && !this.#scheduled) for (const resolve of this.#idle.splice(0)) resolve();
      });
    }
  }

  /**
   * The next batch's operations, in queue order. Batches that write counters (replica slots,
   * concurrency keys) serialize on those rows anyway, so while one runs, the others' counter
   * operations stay queued and go together into the next one: one large batch instead of
   * several small ones on other lanes, each holding a connection while it waits for the row
   * lock (measured: most of the W1 drain's database time was such waits). Operations without
   * counters still take the free lanes.
   */
  #take(): QueuedOp[] {
    if (!this.#counterBatch) return this.#queue.splice(0, this.#maxOps);
    const taken: QueuedOp[] = [];
    const kept: QueuedOp[] = [];
    for (const op of this.#queue) {
      if (taken.length < this.#maxOps && !writesCounters(op)) taken.push(op);
      else kept.push(op);
    }
    this.#queue = kept;
    return taken;
  }

  /** Never rejects: every operation's promise is settled one way or the other. */
  async #runBatch(ops: QueuedOp[]): Promise<void> {
    try {
      await this.#commitBatch(ops);
    } catch (error) {
      for (const op of ops) op.reject(error);
    }
  }

  async #commitBatch(ops: QueuedOp[]): Promise<void> {
    // A single operation needs no savepoint: the transaction itself isolates it.
    let isolate = false;
    for (let attempt = 1; ; attempt++) {
      const result = await this.#attempt(ops, isolate);
      if (result.kind === 'committed') {
        settle(ops, result.outcomes, result.events);
        return;
      }
      if (result.kind === 'op_failed') {
        if (ops.length === 1) {
          ops[0]!.reject(toStoreError(result.error));
          return;
        }
        isolate = true;
        continue;
      }
      if (result.kind === 'retry' && attempt < MAX_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, attempt * (5 + Math.random() * 20)));
        continue;
      }
      const error = toStoreError(result.error);
      for (const op of ops) op.reject(error);
      return;
    }
  }

  /**
   * Sends the lock of every counter the batch's operations declared, in the global order,
   * pipelined behind BEGIN (see #attempt); null when there is none.
   */
  #lockCounters(tx: Queryable, ops: readonly QueuedOp[]): Promise<unknown> | null {
    const replicas = new Set<string>();
    const keys = new Set<bigint>();
    for (const { locks } of ops) {
      for (const id of locks?.replicas ?? []) replicas.add(id);
      for (const key of locks?.keys ?? []) keys.add(BigInt(this.#keyLock(key)));
    }
    // Even a single counter is locked here, before the operations run: taken later, after a
    // task row, it would break the order (counters first, then everything else).
    if (keys.size === 0 && replicas.size === 0) return null;
    const sortedKeys = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
    return runAhead(tx, LOCK_COUNTERS_SQL, [[...replicas], sortedKeys]);
  }

  async #attempt(ops: readonly QueuedOp[], isolate: boolean): Promise<Attempt> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      return { kind: 'failed', error };
    }
    // A connection error while checked out is reported by the pending query; this listener only
    // keeps the 'error' event from being unhandled (which would crash the process).
    const onError = (): void => {};
    client.on('error', onError);
    let broken: Error | undefined;
    // BEGIN (with the SET of a relaxed batch) and the counter locks are sent without waiting
    // for their answers: they travel with the first operation's first statement, in one round
    // trip (pipeline mode, connection.ts). `opened` settles with their error, if any. If one
    // failed, the statements behind it fail too ("current transaction is aborted"), and its
    // error is the batch's (a deadlock on a counter lock is retried as before). BEGIN fails only
    // with its connection, and then nothing behind it runs.
    let opened: Promise<unknown> = Promise.resolve(null);
    // Whether a statement that waits for its answer was issued: if none was before the events,
    // the wait for BEGIN's answer is a round trip of its own (counted there).
    let waited = false;
    const counted = countedQueryable(client, this.#counters);
    const tx: Queryable = {
      query: (config) => {
        waited = true;
        return counted.query(config);
      },
      queryAhead: (config) => counted.queryAhead!(config),
    };
    try {
      const begun = sendAhead(tx, ops.some((op) => op.durable) ? 'BEGIN' : 'BEGIN; SET LOCAL synchronous_commit TO OFF');
      opened = begun.then(() => null, (error: unknown) => error);
      const locked = this.#lockCounters(tx, ops);
      if (locked) {
        const lockedError = locked.then(() => null, (error: unknown) => error);
        const beginError = opened;
        opened = Promise.all([beginError, lockedError]).then(([b, l]) => b ?? l);
      }
      const outcomes: Array<WriteOutcome<unknown>> = [];
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (!isolate) {
          try {
            const group = mergeGroup(ops, i);
            if (group > 1) {
              const merged = await op.merge!.runMany(ops.slice(i, i + group).map((o) => o.merge!.item))(tx);
              if (merged.length !== group) throw new Error(`a merged operation returned ${merged.length} outcomes for ${group}`);
              outcomes.push(...merged);
              i += group - 1;
              continue;
            }
            outcomes.push(await op.run(tx));
          } catch (error) {
            const openError = await opened;
            if (openError !== null) throw openError;
            if (isUnavailableError(error) || isRetryableError(error)) throw error;
            await runOnce(tx, 'ROLLBACK');
            return { kind: 'op_failed', index: i, error };
          }
          continue;
        }
        await runOnce(tx, 'SAVEPOINT batch_op');
        try {
          outcomes.push(await op.run(tx));
          await runOnce(tx, 'RELEASE SAVEPOINT batch_op');
        } catch (error) {
          if (isUnavailableError(error) || isRetryableError(error)) throw error;
          await runOnce(tx, 'ROLLBACK TO SAVEPOINT batch_op');
          await runOnce(tx, 'RELEASE SAVEPOINT batch_op');
          outcomes.push(refused(error));
        }
      }
      const pending: PendingEvent[] = [];
      const signals = new Set<SignalKind>();
      for (const outcome of outcomes) {
        if (!outcome.ok) continue;
        pending.push(...outcome.events);
        for (const s of outcome.signals) signals.add(s);
      }
      // Operations that all refused issued no statement: BEGIN's answer is checked here.
      if (!waited) this.#counters.roundTrips += 1;
      const openError = await opened;
      if (openError !== null) throw openError;
      // The events' insert and COMMIT in one round trip (pipelined). If the insert fails, the
      // transaction is aborted and the COMMIT behind it answers ROLLBACK: nothing commits.
      const appended = appendEvents(tx, { channel: this.#channel, events: pending, signals });
      const committed = appended.sent ? sendAhead(tx, 'COMMIT') : tx.query({ text: 'COMMIT' });
      committed.catch(() => {});
      await appended.done.catch(async (error: unknown) => {
        await committed.catch(() => {});
        throw error;
      });
      const commit = await committed;
      // COMMIT of a transaction that failed reports ROLLBACK instead of raising an error.
      if (commit.command !== 'COMMIT') throw new Error(`the write batch was rolled back (${commit.command})`);
      const events = appended.records;
      this.#commits += 1;
      this.#counters.commits += 1;
      return { kind: 'committed', outcomes, events };
    } catch (thrown) {
      // A failed BEGIN or counter lock is the cause of whatever failed behind it.
      const error = (await opened) ?? thrown;
      if (isUnavailableError(error)) {
        broken = error instanceof Error ? error : new Error(String(error));
        return { kind: 'failed', error };
      }
      try {
        await runOnce(tx, 'ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      return { kind: isRetryableError(error) ? 'retry' : 'failed', error };
    } finally {
      client.off('error', onError);
      // With an error, the pool discards the connection instead of reusing it.
      client.release(broken);
    }
  }
}

function writesCounters(op: QueuedOp): boolean {
  return (op.locks?.replicas?.length ?? 0) > 0 || (op.locks?.keys?.length ?? 0) > 0;
}


const LOCK_COUNTERS_SQL = `
WITH replicas_locked AS MATERIALIZED (
  SELECT id FROM replicas WHERE id = ANY($1::text[]) ORDER BY id COLLATE "C" FOR NO KEY UPDATE
),
keys_locked AS MATERIALIZED (
  SELECT pg_advisory_xact_lock(k) FROM unnest($2::bigint[]) AS k
  WHERE (SELECT count(*) FROM replicas_locked) >= 0
)
SELECT (SELECT count(*) FROM replicas_locked) AS replicas, (SELECT count(*) FROM keys_locked) AS keys`;
// Order: a key lock is taken only once replicas_locked is complete (the uncorrelated subquery
// in its WHERE runs before its first row); rows are locked after the sort (ORDER BY runs below
// the locking step); keys are locked in the order of the array, sorted by the caller.

/** Hands each operation its result, with its share of the batch's events (in operation order). */
function settle(ops: readonly QueuedOp[], outcomes: ReadonlyArray<WriteOutcome<unknown>>, events: readonly EventRecord[]): void {
  let next = 0;
  ops.forEach((op, i) => {
    const outcome = outcomes[i]!;
    if (!outcome.ok) {
      op.reject(toStoreError(outcome.error));
      return;
    }
    const mine = events.slice(next, next + outcome.events.length);
    next += outcome.events.length;
    try {
      op.resolve(outcome.result(mine));
    } catch (error) {
      op.reject(error);
    }
  });
}
