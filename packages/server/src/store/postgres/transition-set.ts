// Many transitions of one shape as one statement. On PostgreSQL a write batch's cost is its
// round trips: one statement per transition made a batch of 50 worker reports 50 round trips
// (about 40 ms here) while it held the replica's counter row, so batches queued behind each
// other. Here every transition of a shape (the same patch keys, the same allowed assignment
// statuses, a slot release or not) is one row of `unnest` arrays, and one statement checks
// the guards and writes all the rows that passed: a few round trips per batch, not one per task.
//
// Same guards, same meaning as transitions.ts, checked per row:
//   g_task  the task is still in fromStatus with the expected live assignment   -> 'task'
//   g_asg   the assignment is still in one of fromStatuses (and g_task held)    -> 'assignment'
// Rows are locked FOR NO KEY UPDATE in id order (under READ COMMITTED a row changed by a
// transaction that committed meanwhile is re-checked on its newest version); a row whose guards
// fail writes nothing. Slot releases are summed per replica, so a replica row is written once
// per statement (a row updated twice in one statement would keep only one of the updates).
// Per row, a release applies only while `in_flight > 0` (a drifted counter never goes
// negative); here the releases are ranked per replica in call order and the first
// `in_flight` of them apply, with their completed/failed counts: the same result.
//
// Claims (dispatches: pending -> dispatched with a new assignment and a replica slot) have a
// set statement of their own (`applyClaimSet`), with the claim's guards per row:
//   g_task  still pending with no assignment, locked SKIP LOCKED (a task another process is
//           claiming right now is a conflict at once, as in transitions.ts)          -> 'task'
//   slot    the replica is live and has a free slot for this row: rows are ranked per
//           replica in call order, and row k of a replica passes while in_flight + k <=
//           max_concurrency; exactly what applying them one by one would accept  -> 'replica_slot'
//
// Only transitions these statements can express take this path (`setEligible`,
// `claimEligible`): no concurrency key, and no other transition of the same call on the same
// task. Everything else (keyed slots, cancellations of pending tasks, releases that also
// acquire) runs one statement at a time. The caller keeps call order (transitions.ts
// `applyAll`): a set statement takes only a run of consecutive transitions of one shape, so
// a claim still sees every release queued before it, and none queued after.

import type { ConflictReason, Transition } from '../../core/types.ts';
import { stamp, type PendingEvent } from './events.ts';
import { toJsonOrNull } from './rows.ts';
import { Params, run, type Queryable } from './sql.ts';
import { ASSIGNMENT_PATCH_COLUMNS, PAYLOAD_PATCH_COLUMNS, TASK_PATCH_COLUMNS, type Column } from './transition-columns.ts';

/** A transition's outcome, its events still waiting for their seqs (the batch appends them). */
export type AppliedTransition = { ok: true; events: PendingEvent[]; hasDependents?: true } | { ok: false; conflict: ConflictReason };

const TASK_COLUMNS: Readonly<Record<string, Column>> = TASK_PATCH_COLUMNS;
const PAYLOAD_COLUMNS: Readonly<Record<string, Column>> = PAYLOAD_PATCH_COLUMNS;
const ASSIGNMENT_COLUMNS: Readonly<Record<string, Column>> = ASSIGNMENT_PATCH_COLUMNS;

/**
 * The `unnest(...)` input of a set statement: one array parameter per column, one element per
 * transition (jsonb travels as text and is cast where it is written).
 */
class UnnestInput {
  readonly p = new Params();
  readonly #arrays: string[] = [];
  readonly #names: string[] = [];

  column(name: string, type: string, values: unknown[]): void {
    this.#arrays.push(this.p.add(values, type === 'jsonb' ? 'text[]' : `${type}[]`));
    this.#names.push(name);
  }

  /** The CTE `i`: the rows, numbered in call order (`ord`). */
  cte(): string {
    return `i AS MATERIALIZED (SELECT * FROM unnest(${this.#arrays.join(', ')}) WITH ORDINALITY AS i (${this.#names.join(', ')}, ord))`;
  }
}

/** Whether a transition is a claim a claim set statement can apply (see the file comment). */
export function claimEligible(t: Transition): boolean {
  return t.kind === 'dispatch' && t.fromStatus === 'pending' && t.expectAssignmentId === null && t.assignmentInsert !== undefined
    && t.slotAcquire !== undefined && t.slotAcquire.concurrencyKey === null && t.slotAcquire.caps === undefined && t.slotRelease === undefined
    && t.assignmentUpdate === undefined && t.assignmentInsert.taskId === t.taskId
    && Object.keys(t.set).every((k) => k in TASK_COLUMNS);
}

/** Whether a transition can be applied as a row of a set statement (see the file comment). */
export function setEligible(t: Transition): boolean {
  return t.assignmentUpdate !== undefined && t.assignmentInsert === undefined && t.slotAcquire === undefined
    && (t.slotRelease === undefined || t.slotRelease.concurrencyKey === null)
    && Object.keys(t.set).every((k) => k in TASK_COLUMNS || k in PAYLOAD_COLUMNS)
    && Object.keys(t.assignmentUpdate.set).every((k) => k in ASSIGNMENT_COLUMNS);
}

/** Transitions with the same shape share one statement text (and one prepared statement). */
export function shapeOf(t: Transition): string {
  if (claimEligible(t)) return `claim|${Object.keys(TASK_COLUMNS).filter((k) => t.set[k as keyof typeof t.set] !== undefined).join(',')}`;
  const u = t.assignmentUpdate!;
  return [
    Object.keys(TASK_COLUMNS).filter((k) => t.set[k as keyof typeof t.set] !== undefined).join(','),
    Object.keys(PAYLOAD_COLUMNS).filter((k) => t.set[k as keyof typeof t.set] !== undefined).join(','),
    Object.keys(ASSIGNMENT_COLUMNS).filter((k) => u.set[k as keyof typeof u.set] !== undefined).join(','),
    [...u.fromStatuses].sort().join(','),
    t.slotRelease ? 'release' : '',
  ].join('|');
}

function value(v: unknown, type: string): unknown {
  return type === 'jsonb' ? toJsonOrNull(v as Parameters<typeof toJsonOrNull>[0]) : v;
}

/** Applies transitions of one shape (all `setEligible`, distinct tasks) with one statement. */
export async function applyTransitionSet(tx: Queryable, transitions: readonly Transition[]): Promise<AppliedTransition[]> {
  const first = transitions[0]!;
  const u0 = first.assignmentUpdate!;
  const input = new UnnestInput();
  const { p } = input;
  const column = input.column.bind(input);
  column('task_id', 'text', transitions.map((t) => t.taskId));
  column('from_status', 'text', transitions.map((t) => t.fromStatus));
  column('expect_asg', 'text', transitions.map((t) => t.expectAssignmentId));
  column('asg_id', 'text', transitions.map((t) => t.assignmentUpdate!.id));
  const taskIds = p.add(transitions.map((t) => t.taskId), 'text[]');
  const asgIds = p.add(transitions.map((t) => t.assignmentUpdate!.id), 'text[]');
  const sets = (columns: Record<string, Column>, patch: (t: Transition) => Record<string, unknown>, prefix: string, source: object) =>
    Object.entries(columns).filter(([key]) => (source as Record<string, unknown>)[key] !== undefined).map(([key, [col, type]]) => {
      column(`${prefix}${col}`, type, transitions.map((t) => value(patch(t)[key], type)));
      return `${col} = ok.${prefix}${col}${type === 'jsonb' ? '::jsonb' : ''}`;
    });
  const taskSet = sets(TASK_COLUMNS, (t) => t.set as unknown as Record<string, unknown>, 't_', first.set);
  const payloadSet = sets(PAYLOAD_COLUMNS, (t) => t.set as unknown as Record<string, unknown>, 'p_', first.set);
  const asgSet = sets(ASSIGNMENT_COLUMNS, (t) => t.assignmentUpdate!.set as Record<string, unknown>, 'a_', u0.set);
  const release = first.slotRelease !== undefined;
  if (release) {
    column('rel_replica', 'text', transitions.map((t) => t.slotRelease!.replicaId));
    column('rel_completed', 'integer', transitions.map((t) => (t.slotRelease!.outcome === 'completed' ? 1 : 0)));
    column('rel_failed', 'integer', transitions.map((t) => (t.slotRelease!.outcome === 'failed' ? 1 : 0)));
  }
  const fromStatuses = p.add([...u0.fromStatuses], 'text[]');

  const ctes = [
    input.cte(),
    // A seek per id (`id = ANY(array)`). Joined to `i` instead, the planner hashed every row
    // of the status (a bitmap scan of the whole queue per statement); and a status compared
    // as written would let it prove a partial index (pending tasks, live assignments) and
    // scan all of it with stale statistics: `status || ''` keeps those indexes out.
    `g_task AS MATERIALIZED (
    SELECT t.id FROM tasks t
    WHERE t.id = ANY(${taskIds})
      AND EXISTS (SELECT 1 FROM i WHERE i.task_id = t.id AND t.status = i.from_status AND t.assignment_id IS NOT DISTINCT FROM i.expect_asg)
    ORDER BY t.id FOR NO KEY UPDATE OF t)`,
    `g_asg AS MATERIALIZED (
    SELECT a.id FROM assignments a
    WHERE a.id = ANY(${asgIds}) AND (a.status || '') = ANY(${fromStatuses})
      AND EXISTS (SELECT 1 FROM i WHERE i.asg_id = a.id AND i.task_id IN (SELECT id FROM g_task))
    ORDER BY a.id FOR NO KEY UPDATE OF a)`,
    `ok AS MATERIALIZED (SELECT * FROM i WHERE i.asg_id IN (SELECT id FROM g_asg))`,
    // has_dependents as written: an ending transition looks at the dependents of a task marked
    // after the head it was decided from was read (transitions.ts).
    `w_task AS (UPDATE tasks t SET ${taskSet.join(', ')} FROM ok WHERE t.id = ok.task_id RETURNING t.id, t.has_dependents)`,
  ];
  if (payloadSet.length > 0) ctes.push(`w_payload AS (UPDATE task_payloads p SET ${payloadSet.join(', ')} FROM ok WHERE p.task_id = ok.task_id)`);
  if (asgSet.length > 0) ctes.push(`w_asg AS (UPDATE assignments a SET ${asgSet.join(', ')} FROM ok WHERE a.id = ok.asg_id)`);
  if (release) {
    ctes.push(`w_release AS (
    UPDATE replicas r SET in_flight = r.in_flight - d.n, completed = r.completed + d.c, failed = r.failed + d.f
    FROM (SELECT x.rel_replica, count(*)::integer AS n, sum(x.rel_completed)::integer AS c, sum(x.rel_failed)::integer AS f
          FROM (SELECT ok.*, row_number() OVER (PARTITION BY ok.rel_replica ORDER BY ok.ord) AS rk FROM ok) x
          JOIN replicas cur ON cur.id = x.rel_replica
          WHERE x.rk <= cur.in_flight
          GROUP BY x.rel_replica) d
    WHERE r.id = d.rel_replica)`);
  }
  const text = `WITH ${ctes.join(',\n  ')}
SELECT i.ord, i.task_id IN (SELECT id FROM g_task) AS task_ok, i.asg_id IN (SELECT id FROM g_asg) AS asg_ok, w.has_dependents
FROM i LEFT JOIN w_task w ON w.id = i.task_id ORDER BY i.ord`;
  const rows = await run(tx, text, p.values);
  if (rows.length !== transitions.length) throw new Error(`a transition set statement returned ${rows.length} rows for ${transitions.length}`);
  return rows.map((row, i): AppliedTransition => {
    const t = transitions[i]!;
    if (row.task_ok !== true) return { ok: false, conflict: 'task' };
    if (row.asg_ok !== true) return { ok: false, conflict: 'assignment' };
    const marked = t.endsTask && Number(row.has_dependents ?? 0) !== 0;
    return { ok: true, events: stamp(t.events, t.set.updatedAt), ...(marked ? { hasDependents: true as const } : {}) };
  });
}

/** The assignment columns a claim inserts, and how to read them off the new assignment. */
const INSERT_COLUMNS: ReadonlyArray<readonly [column: string, type: string, get: (a: NonNullable<Transition['assignmentInsert']>) => unknown]> = [
  ['id', 'text', (a) => a.id], ['task_id', 'text', (a) => a.taskId], ['agent', 'text', (a) => a.agent],
  ['replica_id', 'text', (a) => a.replicaId], ['attempt', 'integer', (a) => a.attempt], ['status', 'text', (a) => a.status],
  ['dispatched_at', 'bigint', (a) => a.dispatchedAt], ['started_at', 'bigint', (a) => a.startedAt],
  ['finished_at', 'bigint', (a) => a.finishedAt], ['lease_expires_at', 'bigint', (a) => a.leaseExpiresAt],
  ['deadline_at', 'bigint', (a) => a.deadlineAt], ['progress_percent', 'double precision', (a) => a.progressPercent],
  ['progress_message', 'text', (a) => a.progressMessage], ['progress_at', 'bigint', (a) => a.progressAt],
  ['error', 'jsonb', (a) => toJsonOrNull(a.error)],
];

/** Applies claims of one shape (all `claimEligible`, distinct tasks) with one statement. */
export async function applyClaimSet(tx: Queryable, transitions: readonly Transition[]): Promise<AppliedTransition[]> {
  const first = transitions[0]!;
  const input = new UnnestInput();
  const { p } = input;
  const column = input.column.bind(input);
  column('task_id', 'text', transitions.map((t) => t.taskId));
  column('replica', 'text', transitions.map((t) => t.slotAcquire!.replicaId));
  const taskIds = p.add(transitions.map((t) => t.taskId), 'text[]');
  column('acquired_at', 'bigint', transitions.map((t) => t.slotAcquire!.at));
  const taskSet = Object.entries(TASK_COLUMNS).filter(([key]) => first.set[key as keyof typeof first.set] !== undefined).map(([key, [col, type]]) => {
    column(`t_${col}`, type, transitions.map((t) => (t.set as unknown as Record<string, unknown>)[key]));
    return `${col} = ok.t_${col}`;
  });
  for (const [col, type, get] of INSERT_COLUMNS) column(`a_${col}`, type, transitions.map((t) => get(t.assignmentInsert!)));

  const text = `WITH ${input.cte()},
  g_task AS MATERIALIZED (
    SELECT t.id FROM tasks t
    WHERE t.id = ANY(${taskIds}) AND (t.status || '') = 'pending' AND t.assignment_id IS NULL
    ORDER BY t.id FOR NO KEY UPDATE OF t SKIP LOCKED),
  ranked AS MATERIALIZED (
    SELECT i.*, row_number() OVER (PARTITION BY i.replica ORDER BY i.ord) AS rank
    FROM i WHERE i.task_id IN (SELECT id FROM g_task)),
  ok AS MATERIALIZED (
    SELECT ranked.* FROM ranked JOIN replicas r ON r.id = ranked.replica
    WHERE r.status = 'live' AND r.in_flight + ranked.rank <= r.max_concurrency),
  w_task AS (UPDATE tasks t SET ${taskSet.join(', ')} FROM ok WHERE t.id = ok.task_id),
  w_asg AS (
    INSERT INTO assignments (${INSERT_COLUMNS.map(([c]) => c).join(', ')})
    SELECT ${INSERT_COLUMNS.map(([c, type]) => `ok.a_${c}${type === 'jsonb' ? '::jsonb' : ''}`).join(', ')} FROM ok),
  w_replica AS (
    UPDATE replicas r SET in_flight = r.in_flight + d.n, last_assigned_at = d.at
    FROM (SELECT replica, count(*)::integer AS n, (array_agg(acquired_at ORDER BY rank DESC))[1] AS at FROM ok GROUP BY replica) d
    WHERE r.id = d.replica)
SELECT i.ord, i.task_id IN (SELECT id FROM g_task) AS task_ok, i.task_id IN (SELECT task_id FROM ok) AS slot_ok FROM i ORDER BY i.ord`;
  const rows = await run(tx, text, p.values);
  if (rows.length !== transitions.length) throw new Error(`a claim set statement returned ${rows.length} rows for ${transitions.length}`);
  return rows.map((row, i): AppliedTransition => {
    const t = transitions[i]!;
    if (row.task_ok !== true) return { ok: false, conflict: 'task' };
    if (row.slot_ok !== true) return { ok: false, conflict: 'replica_slot' };
    return { ok: true, events: stamp(t.events, t.set.updatedAt) };
  });
}
