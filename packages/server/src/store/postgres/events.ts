// Appending events and announcing changes, the last step of every write transaction.
//
// Why events are numbered after they commit (docs/decisions.md 47). A reader follows the log
// with `eventList({ after: lastSeenSeq })`, so a seq must become visible only after every
// lower seq is visible (or will never exist). Had a writer taken its seqs from a sequence as
// it inserted, two concurrent writers could commit out of seq order (T1 takes 10, T2 takes 11,
// T2 commits first) and a reader would move past 10 before it appeared. The first design
// serialized every writer on one advisory lock from the insert to the end of COMMIT, WAL flush
// included: with three nodes writing, they queued on it and were 2.4× slower than one node.
//
// Now writers do not number. A write batch appends its events to `event_queue` (an identity
// id gives the order of insertion; no lock) and signals `events`. The numbering step
// (EventNumbering below) moves committed queue rows into `events`, giving them consecutive seqs
// in queue order from `event_counter`. Numbering runs are serialized by the schema's events
// advisory lock, which only numbering runs take, and each commits before the next starts, so:
// - seqs become visible in order and without gaps: one run's rows all commit at once, above
//   every seq of earlier runs;
// - a row still uncommitted when a run starts is not visible to it and is numbered by a later
//   run, above everything numbered before (it is never skipped);
// - an event caused by another (its transaction waited for the other's row lock, or read what
//   it committed) was inserted after the other committed, so its id, and its seq, is higher.
// Every eventList and eventLastSeq runs a numbering step first (coalesced per process), so a
// reader sees every event committed before its call. The relays of all nodes read on every
// `events` signal, so events are numbered within a read of their commit.
//
// Signals (LISTEN/NOTIFY) are sent in the writer's statement; PostgreSQL delivers them only if
// and when the transaction commits, so no process hears of a change that could still roll back.

import type { EventRecord, Millis, NewEvent } from '../../core/types.ts';
import { toJson } from './rows.ts';
import { run, runOnce, type Queryable } from './sql.ts';

/** What a store write may announce on the schema's channel (see StoreSignal). */
export type SignalKind = 'wake' | 'capacity' | 'events' | 'agents';

/** An event to append, with its time. */
export interface PendingEvent {
  event: NewEvent;
  at: Millis;
}

export function stamp(events: readonly NewEvent[], at: Millis): PendingEvent[] {
  return events.map((event) => ({ event, at }));
}

/**
 * The seq a written event carries until it is numbered. Writes return their events with it
 * (StoreCapabilities.eventSeqsOnWrite is false); readers only ever see numbered events.
 */
export const UNNUMBERED = 0;

const QUEUE_SQL = `
WITH queued AS (
  INSERT INTO event_queue (type, at, task_id, agent, replica_id, assignment_id, data)
  SELECT e.type, e.at, e.task_id, e.agent, e.replica_id, e.assignment_id, e.data
  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
    WITH ORDINALITY AS e (type, at, task_id, agent, replica_id, assignment_id, data, ord)
  ORDER BY e.ord
  RETURNING 1
),
notified AS MATERIALIZED (SELECT pg_notify($8::text, kind) FROM unnest($9::text[]) AS kind)
SELECT (SELECT count(*) FROM queued) AS queued, (SELECT count(*) FROM notified) AS notified`;
// Rows are inserted in `ord` order, so their ids (and later their seqs) follow the order of `events`.

const NOTIFY_SQL = 'SELECT pg_notify($1::text, kind) FROM unnest($2::text[]) AS kind';

/**
 * Queues `events` in order and sends `signals` (plus 'events' when there are events) on
 * `channel`, inside the transaction that made the changes. The statement is sent at once
 * (`sent`: false when there is nothing to send) and not awaited here, so the caller can
 * pipeline its COMMIT behind it; `done` settles with its answer. `records` are the events in
 * the order given, with seq UNNUMBERED. (The insert takes one row per array element by
 * construction: arrays of unequal length would pad with NULLs, which the columns refuse.)
 */
export function appendEvents(
  tx: Queryable,
  params: { channel: string; events: readonly PendingEvent[]; signals: ReadonlySet<SignalKind> },
): { sent: boolean; done: Promise<unknown>; records: EventRecord[] } {
  const { events } = params;
  const kinds = new Set(params.signals);
  if (events.length > 0) kinds.add('events');
  if (events.length === 0) {
    if (kinds.size === 0) return { sent: false, done: Promise.resolve(), records: [] };
    return { sent: true, done: run(tx, NOTIFY_SQL, [params.channel, [...kinds]]), records: [] };
  }
  const done = run(tx, QUEUE_SQL, [
    events.map((p) => p.event.type),
    events.map((p) => p.at),
    events.map((p) => p.event.taskId),
    events.map((p) => p.event.agent),
    events.map((p) => p.event.replicaId),
    events.map((p) => p.event.assignmentId),
    events.map((p) => toJson(p.event.data)),
    params.channel,
    [...kinds],
  ]);
  return { sent: true, done, records: events.map((p) => ({ ...p.event, seq: UNNUMBERED, at: p.at })) };
}

/** Rows one numbering statement moves; a step repeats while a statement moves this many. */
export const NUMBERING_PAGE = 5_000;

/**
 * A numbering step followed by a read, in one round trip: the step (the function
 * `event_numbering_step`, migration 8) waits for the events lock, moves up to NUMBERING_PAGE
 * committed queue rows into `events` in id order with the next seqs, and commits; then `read`
 * runs and sees what the step committed and everything committed before it. Each statement of
 * the function takes a new snapshot (volatile, READ COMMITTED), so the move sees everything
 * the previous step committed. A text of several statements cannot take parameters:
 * `lockKey` is a bigint the store computed and `read` is assembled by the caller from checked
 * numbers and quoted literals. The function's plans are cached per connection; only the
 * short read is planned on every call. The read runs in a read-only transaction of its own
 * with sequential scans off: `events` is read by seq (or task and seq) through its indexes,
 * and a planner without statistics (a new schema, autovacuum off) chose a scan of the whole
 * log.
 * - The commit is flushed: a seq a follower has read is never given to another event, even
 *   after a crash of the database (a relaxed step lost in a crash would hand its seqs out
 *   again, mixed with later writers' events). It also flushes relaxed writers' commits.
 * - Isolation READ COMMITTED whatever the database's default: each statement must see what
 *   committed before it (under REPEATABLE READ the snapshot predates the lock). The function
 *   refuses any other level.
 * - The loop goes on while a step *picked* a full page: retention may delete picked rows
 *   at the same moment, so fewer may move.
 */
function numberingSql(lockKey: string, read: string): string {
  if (!/^-?\d+$/.test(lockKey)) throw new Error(`not an advisory-lock key: ${lockKey}`);
  return `BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT picked, moved, numbered FROM event_numbering_step(${lockKey}::bigint, ${NUMBERING_PAGE});
COMMIT;
BEGIN READ ONLY;
SET LOCAL enable_seqscan = off;
${read};
COMMIT;`;
}

type Result = { command: string; rows: Array<Record<string, unknown>> };

/**
 * Numbers committed events (see the top of this file) before each read of the log. Steps of
 * all processes are serialized by the events lock; each read comes after its own step, so it
 * sees every event committed before it was called.
 */
export class EventNumbering {
  readonly #lockKey: string;
  readonly #connect: () => Promise<{ db: Queryable; release: (broken?: Error) => void }>;
  readonly #committed: () => void;

  constructor(params: {
    lockKey: string;
    connect: () => Promise<{ db: Queryable; release: (broken?: Error) => void }>;
    /** Counts each step's COMMIT (the store's counters). */
    committed: () => void;
  }) {
    this.#lockKey = params.lockKey;
    this.#connect = params.connect;
    this.#committed = params.committed;
  }

  /** Numbers what is committed, then runs `read` (one statement, no parameters) and returns its rows. */
  async read(read: string): Promise<Array<Record<string, unknown>>> {
    const sql = numberingSql(this.#lockKey, read);
    for (;;) {
      const { picked, rows } = await this.#step(sql);
      // A full page may have left more behind: number again before answering.
      if (picked < NUMBERING_PAGE) return rows;
    }
  }

  async #step(sql: string): Promise<{ picked: number; rows: Array<Record<string, unknown>> }> {
    const { db, release } = await this.#connect();
    let broken: Error | undefined;
    try {
      const results = (await db.query({ text: sql })) as unknown as Result[];
      const commit = results[2];
      // COMMIT of a transaction that failed reports ROLLBACK instead of raising an error.
      if (commit?.command !== 'COMMIT') throw new Error(`event numbering was rolled back (${String(commit?.command)})`);
      this.#committed();
      // The function itself refuses to commit a step that moved rows it did not number.
      const counts = results[1]?.rows[0] ?? {};
      return { picked: Number(counts.picked ?? 0), rows: results[5]?.rows ?? [] };
    } catch (err) {
      broken = err instanceof Error ? err : new Error(String(err));
      // A text of several statements stops at the first error; if that was inside the
      // transaction it began, end it (a no-op warning otherwise).
      await runOnce(db, 'ROLLBACK').then(() => { broken = undefined; }, () => {});
      throw err;
    } finally {
      release(broken);
    }
  }
}
