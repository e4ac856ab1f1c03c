// Many transitions applied as one (decision 45): the transitions of every taskTransition call
// queued in one write batch, with per-kind statements shared instead of repeated per row.
//
// What is shared, and why it is the same as applying the transitions one by one in order:
// - One savepoint for the whole set instead of one per transition. Each transition's guards
//   are checked by its task update (status and live assignment) before it writes anything,
//   so a transition whose guard fails there wrote nothing. Any later failure (an assignment
//   guard, a replica slot, a constraint) rolls the whole set back to its savepoint, and the
//   set is applied again one transition at a time (transitions.ts), which gives exactly the
//   sequential outcome.
// - Replica counters move once per replica: the slots the set's successful claims take are
//   acquired in one guarded update (`in_flight + n <= max_concurrency`, replica live); if
//   that guard fails, some of them would conflict one by one, so the set goes the slow way.
//   Slots given back are summed per replica (each clamped at zero as one by one).
// - Events are appended in multi-row inserts, in transition order; their seqs are
//   consecutive (rowids of one statement, no other writer), as one by one.
// Not set-applied (the set goes the slow way): a concurrency key (its limit is checked per
// slot), and two transitions of one task in the set (the second's guard depends on the
// first's write).

import type { EventRecord, Millis, NewEvent, Transition, TransitionResult } from '../../core/types.ts';
import type { SQLInputValue } from 'node:sqlite';
import { changes, toJson } from './rows.ts';
import type { StatementCache } from './statement-cache.ts';
import { applyTransition, assignmentWrite, taskWrite, withDependents, type TaskWritten } from './transitions.ts';

/** Events per insert statement: bounds the number of distinct statement texts (1..MAX). */
const EVENTS_PER_INSERT = 32;

class SlowPath extends Error {}

function setEligible(transitions: readonly Transition[]): boolean {
  const tasks = new Set<string>();
  for (const t of transitions) {
    if (tasks.has(t.taskId)) return false;
    tasks.add(t.taskId);
    if (t.slotAcquire && t.slotAcquire.concurrencyKey !== null) return false;
    if (t.slotAcquire?.caps !== undefined) return false;
    if (t.slotRelease && t.slotRelease.concurrencyKey !== null) return false;
  }
  return true;
}

/** Applies `transitions` in order, with the outcome of applying them one by one. */
export function applyTransitionSet(cache: StatementCache, transitions: readonly Transition[]): TransitionResult[] {
  if (transitions.length === 1 || !setEligible(transitions)) return transitions.map((t) => applyTransition(cache, t));
  cache.sql('SAVEPOINT transition_set').run();
  try {
    const results = applyFast(cache, transitions);
    cache.sql('RELEASE transition_set').run();
    return results;
  } catch (error) {
    // Some errors roll back the whole transaction; then there is no savepoint to return to.
    if (!cache.db.isTransaction) throw error;
    cache.sql('ROLLBACK TO transition_set').run();
    cache.sql('RELEASE transition_set').run();
    if (!(error instanceof SlowPath)) throw error;
    return transitions.map((t) => applyTransition(cache, t));
  }
}

function applyFast(cache: StatementCache, transitions: readonly Transition[]): TransitionResult[] {
  const applied: Array<TaskWritten | null> = [];
  const acquire = new Map<string, { n: number; at: Millis }>();
  const release = new Map<string, { n: number; completed: number; failed: number }>();
  const events: Array<{ event: NewEvent; at: Millis }> = [];
  for (const t of transitions) {
    const written = taskWrite(cache, t);
    if (typeof written === 'string') {
      applied.push(null);
      continue;
    }
    if (assignmentWrite(cache, t) !== null) throw new SlowPath();
    if (t.slotAcquire) {
      const a = acquire.get(t.slotAcquire.replicaId) ?? { n: 0, at: t.slotAcquire.at };
      a.n += 1;
      a.at = t.slotAcquire.at;
      acquire.set(t.slotAcquire.replicaId, a);
    }
    if (t.slotRelease) {
      const r = release.get(t.slotRelease.replicaId) ?? { n: 0, completed: 0, failed: 0 };
      r.n += 1;
      if (t.slotRelease.outcome === 'completed') r.completed += 1;
      if (t.slotRelease.outcome === 'failed') r.failed += 1;
      release.set(t.slotRelease.replicaId, r);
    }
    for (const event of t.events) events.push({ event, at: t.set.updatedAt });
    applied.push(written);
  }
  for (const [replicaId, a] of acquire) {
    const r = cache.sql(
      `UPDATE replicas SET in_flight = in_flight + ?, last_assigned_at = ?
       WHERE id = ? AND status = 'live' AND in_flight + ? <= max_concurrency`,
    ).run(a.n, a.at, replicaId, a.n);
    if (changes(r) === 0) throw new SlowPath();
  }
  for (const [replicaId, r] of release) {
    // One by one, each release is `in_flight - 1 WHERE in_flight > 0` and skips the outcome
    // counters at zero; this clamps the count the same way but always adds the outcomes. They
    // differ only for a counter that has already drifted below the live assignments.
    cache.sql(
      'UPDATE replicas SET in_flight = max(in_flight - ?, 0), completed = completed + ?, failed = failed + ? WHERE id = ?',
    ).run(r.n, r.completed, r.failed, replicaId);
  }
  const records = insertEventRows(cache, events);
  let next = 0;
  return transitions.map((t, i): TransitionResult => {
    const written = applied[i];
    if (!written) return { ok: false, conflict: 'task' };
    const mine = records.slice(next, next + t.events.length);
    next += t.events.length;
    return withDependents({ ok: true, events: mine }, written);
  });
}

/** Appends events in order, EVENTS_PER_INSERT rows per statement. */
export function insertEventRows(cache: StatementCache, rows: ReadonlyArray<{ event: NewEvent; at: Millis }>): EventRecord[] {
  const out: EventRecord[] = [];
  for (let i = 0; i < rows.length; i += EVENTS_PER_INSERT) {
    const chunk = rows.slice(i, i + EVENTS_PER_INSERT);
    const values: SQLInputValue[] = [];
    for (const { event: e, at } of chunk) values.push(e.type, at, e.taskId, e.agent, e.replicaId, e.assignmentId, toJson(e.data));
    const r = cache.sql(
      `INSERT INTO events (type, at, task_id, agent, replica_id, assignment_id, data) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    ).run(...values);
    // One statement, no other writer: its rows took consecutive seqs, in VALUES order.
    const last = Number(r.lastInsertRowid);
    chunk.forEach(({ event, at }, j) => out.push({ ...event, seq: last - chunk.length + 1 + j, at }));
  }
  return out;
}
