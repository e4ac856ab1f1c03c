// Appending events and announcing changes, the last step of every write transaction.
//
// Why the events lock. A reader follows the log with `eventList({ after: lastSeenSeq })`. Seqs
// come from a sequence: they are handed out when a row is inserted, but the row becomes
// visible only when its transaction commits. With two concurrent writers, T1 may take seq 10,
// T2 seq 11, and T2 commit first: a reader then sees 11, moves its position past 10, and
// misses event 10 forever once T1 commits. To make visibility follow seq order, every
// transaction that inserts events takes a transaction-level advisory lock (one key per
// schema) immediately before inserting them, and holds it until it commits or rolls back.
// Seqs are therefore allocated by one transaction at a time, and a transaction allocates only
// after the previous holder has finished: whenever seq N is visible, every seq below N is
// either visible too or will never exist (rolled back). Inserting the events as the very last
// statement keeps the lock hold short (that statement plus COMMIT) and means the holder never
// waits for a row lock, so the lock cannot take part in a deadlock.
//
// The cost: commits that append events are serialized per schema, including their WAL flush.
// The write batch (write-batch.ts) amortizes it by committing many operations at once. NOTIFY
// has the same property anyway: PostgreSQL serializes the commits of notifying transactions.
//
// Signals (LISTEN/NOTIFY) are sent in the same statement; PostgreSQL delivers them only if and
// when the transaction commits, so no process hears of a change that could still roll back.

import type { EventRecord, Millis, NewEvent } from '../../core/types.ts';
import { toJson } from './rows.ts';
import { run, type Queryable } from './sql.ts';

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

const APPEND_SQL = `
WITH events_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($1::bigint)),
inserted AS (
  INSERT INTO events (type, at, task_id, agent, replica_id, assignment_id, data)
  SELECT e.type, e.at, e.task_id, e.agent, e.replica_id, e.assignment_id, e.data
  FROM events_lock
  CROSS JOIN unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[])
    WITH ORDINALITY AS e (type, at, task_id, agent, replica_id, assignment_id, data, ord)
  ORDER BY e.ord
  RETURNING seq
),
notified AS MATERIALIZED (SELECT pg_notify($9::text, kind) FROM unnest($10::text[]) AS kind)
SELECT array(SELECT seq FROM inserted ORDER BY seq) AS seqs, (SELECT count(*) FROM notified) AS notified`;
// How the lock precedes the seqs: the inserted rows come out of a join with `events_lock`, so
// no row (and no nextval() for its seq, evaluated as the row is inserted) exists before the
// lock is held. Rows are inserted in `ord` order, so seqs follow the order of `events`.

const NOTIFY_SQL = 'SELECT pg_notify($1::text, kind) FROM unnest($2::text[]) AS kind';

/**
 * Appends `events` in order and sends `signals` (plus 'events' when there are events) on
 * `channel`. Must run inside the transaction that made the changes, as its last statement
 * before COMMIT. Returns the records, with their seqs, in the order given.
 */
export async function appendEvents(
  tx: Queryable,
  params: { lockKey: string; channel: string; events: readonly PendingEvent[]; signals: ReadonlySet<SignalKind> },
): Promise<EventRecord[]> {
  const { events } = params;
  const kinds = new Set(params.signals);
  if (events.length > 0) kinds.add('events');
  if (events.length === 0) {
    if (kinds.size > 0) await run(tx, NOTIFY_SQL, [params.channel, [...kinds]]);
    return [];
  }
  const [row] = await run(tx, APPEND_SQL, [
    params.lockKey,
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
  const seqs = row?.seqs;
  if (!Array.isArray(seqs) || seqs.length !== events.length) {
    throw new Error(`appending ${events.length} events returned ${Array.isArray(seqs) ? seqs.length : 'no'} seqs`);
  }
  return events.map((p, i) => ({ ...p.event, seq: Number(seqs[i]), at: p.at }));
}
