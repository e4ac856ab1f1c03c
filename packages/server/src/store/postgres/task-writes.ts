// Task writes other than transitions: creating tasks (with idempotency keys) and pruning
// finished ones. Both are write-batch operations (see write-batch.ts): repeatable, and run
// inside the batch's transaction.

import { FlotillaError } from '../../core/errors.ts';
import type { EventRecord, NewTask, TransitionResult } from '../../core/types.ts';
import type { TaskCreateResult, TaskToCreate } from '../store.ts';
import { stamp, type PendingEvent } from './events.ts';
import type { AppliedTransition } from './transition-set.ts';
import { applyAll } from './transitions.ts';
import { openCacheRuns } from './result-cache.ts';
import { TASK_RECORD_SELECT, slaDeadlineColumn, taskRecordFromRow, toJson, toJsonOrNull } from './rows.ts';
import { firstAhead, run, type Queryable } from './sql.ts';
import { refused, withEvents, type WriteOutcome } from './write-batch.ts';
import type { SlaMark } from '../../core/sla.ts';

type CreateColumn = readonly [column: string, type: string, value: (t: NewTask) => unknown];

/** Columns of a created task's `tasks` row, their SQL types, and how to read them off a NewTask. */
const ROW_COLUMNS: readonly CreateColumn[] = [
  ['id', 'text', (t) => t.id],
  ['status', 'text', (t) => t.status],
  ['priority', 'integer', (t) => t.priority],
  ['agent', 'text', (t) => t.agent],
  ['capabilities', 'jsonb', (t) => toJson(t.capabilities)],
  ['replica', 'text', (t) => t.replica],
  ['site', 'text', (t) => t.site],
  ['concurrency_key', 'text', (t) => t.concurrencyKey],
  ['attempt', 'integer', (t) => t.attempt],
  ['max_attempts', 'integer', (t) => t.maxAttempts],
  ['timeout_ms', 'bigint', (t) => t.timeoutMs],
  ['run_at', 'bigint', (t) => t.runAt],
  ['assignment_id', 'text', (t) => t.assignmentId],
  ['cancel_requested_at', 'bigint', (t) => t.cancelRequestedAt],
  ['created_at', 'bigint', (t) => t.createdAt],
  ['updated_at', 'bigint', (t) => t.updatedAt],
  ['finished_at', 'bigint', (t) => t.finishedAt],
  ['idempotency_key', 'text', (t) => t.idempotencyKey],
  ['parent_id', 'text', (t) => t.parentId],
  ['created_by', 'text', (t) => t.createdBy],
  ['root_id', 'text', (t) => t.rootId],
  ['depth', 'integer', (t) => t.depth],
  ['owner_id', 'text', (t) => t.ownerId],
  ['sla_deadline', 'bigint', (t) => slaDeadlineColumn(t.slaDeadline)],
  ['sla_state', 'text', (t) => t.slaState],
  ['sla_check_at', 'bigint', (t) => t.slaCheckAt],
  // Only a blocked task is created waiting (for its dependencies).
  ['waiting_for', 'jsonb', (t) => (t.status === 'blocked' ? toJson(t.waitingFor ?? []) : null)],
  ['has_dependents', 'integer', (t) => (t.hasDependents === true ? 1 : 0)],
  ['on_dependency_failure', 'text', (t) => t.onDependencyFailure ?? null],
  ['cache_key', 'text', (t) => t.cacheKey ?? null],
  ['cache_scope', 'text', (t) => t.cacheScope ?? null],
  ['cached_from', 'text', (t) => t.cachedFrom ?? null],
  ['rate_key', 'text', (t) => t.rateKey ?? null],
  ['estimated_tokens', 'bigint', (t) => t.estimatedTokens ?? null],
];

/** The same for its `task_payloads` row. */
const PAYLOAD_COLUMNS: readonly CreateColumn[] = [
  ['type', 'text', (t) => t.type],
  ['input', 'jsonb', (t) => toJson(t.input)],
  ['result', 'jsonb', (t) => toJsonOrNull(t.result)],
  ['error', 'jsonb', (t) => toJsonOrNull(t.error)],
  ['correlation', 'jsonb', (t) => toJson(t.correlation)],
  ['traceparent', 'text', (t) => t.traceparent],
  ['tools', 'jsonb', (t) => toJson(t.tools)],
  ['allow_degraded', 'integer', (t) => (t.allowDegraded === true ? 1 : 0)],
  ['depends_on', 'jsonb', (t) => toJson(t.dependsOn ?? [])],
  ['ref', 'text', (t) => t.ref ?? null],
  ['input_from', 'jsonb', (t) => toJsonOrNull(t.inputFrom ?? null)],
];

const CREATE_COLUMNS = [...ROW_COLUMNS, ...PAYLOAD_COLUMNS];
const TASK_COLUMNS = ROW_COLUMNS.map(([c]) => c).join(', ');

/**
 * All tasks of a call in one statement: the rows arrive as parallel arrays (`unnest`), are
 * inserted in call order (so their seqs follow it), and their payloads go in with them.
 *
 * Agents: every agent a task is addressed to must exist, checked in the same statement. The
 * agent rows are locked FOR KEY SHARE first (`agents_shared`) and nothing is inserted if one
 * is missing. agentDelete locks the agent row FOR UPDATE before it looks for unfinished tasks
 * (postgres-store.ts), so a delete and a create racing are ordered by that row lock: either
 * the create waits, finds the agent gone and is refused, or the delete waits and then sees
 * the committed tasks and refuses (in_use). Never a task left for an agent that is gone.
 *
 * Idempotency: `ON CONFLICT DO NOTHING` skips a task whose key exists,
 * whether committed earlier, committed by a concurrent transaction (the insert waits for it to
 * finish), or inserted earlier in this same call; the existing task is then read back. The
 * same for a cached task whose key has an open run (the unique index tasks_cache_open,
 * core/result-cache.ts): the open run is read back, and the submit shares it. A skipped task
 * that neither names (a duplicate id) fails the call; any other violation (a priority outside
 * 0..9) fails the statement, so a call with one invalid task writes none of them.
 */
const CREATE_SQL = `
WITH input AS MATERIALIZED (
  SELECT * FROM unnest(${CREATE_COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})
    WITH ORDINALITY AS i (${CREATE_COLUMNS.map(([c]) => c).join(', ')}, ord)
),
agents_shared AS MATERIALIZED (
  SELECT name FROM agents WHERE name IN (SELECT agent FROM input) FOR KEY SHARE
),
missing AS MATERIALIZED (
  SELECT DISTINCT i.agent FROM input i
  WHERE i.agent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agents_shared a WHERE a.name = i.agent)
),
inserted AS (
  INSERT INTO tasks (${TASK_COLUMNS})
  SELECT ${TASK_COLUMNS} FROM input
  WHERE NOT EXISTS (SELECT 1 FROM missing)
  ORDER BY ord
  ON CONFLICT DO NOTHING
  RETURNING seq, id
),
payloads AS (
  INSERT INTO task_payloads (task_id, type, input, result, error, correlation, traceparent, tools, allow_degraded, depends_on, ref, input_from)
  SELECT i.id, i.type, i.input, i.result, i.error, i.correlation, i.traceparent, i.tools, i.allow_degraded, i.depends_on, i.ref, i.input_from
  FROM input i JOIN inserted t ON t.id = i.id
),
-- The dependency edges of the created tasks (docs/workflows.md), and the mark on each
-- dependency that existed before this statement (one created by it is inserted marked: a
-- statement's parts do not see each other's rows). Driven from the edges, by the tasks' id
-- index: a call without dependencies joins nothing.
edges AS MATERIALIZED (
  SELECT DISTINCT e.dep, i.id FROM input i JOIN inserted t ON t.id = i.id
  CROSS JOIN LATERAL jsonb_array_elements_text(i.depends_on) AS e (dep)
),
edges_written AS (
  INSERT INTO task_dependencies (depends_on, task_id) SELECT dep, id FROM edges ON CONFLICT DO NOTHING
),
dependencies_marked AS (
  UPDATE tasks t SET has_dependents = 1 FROM (SELECT DISTINCT dep FROM edges) e
  WHERE t.id = e.dep AND t.has_dependents = 0
)
SELECT
  (SELECT coalesce(array_agg(agent ORDER BY agent), '{}') FROM missing) AS missing,
  (SELECT coalesce(array_agg(id ORDER BY seq), '{}') FROM inserted) AS ids,
  (SELECT coalesce(array_agg(seq ORDER BY seq), '{}') FROM inserted) AS seqs`;
// The uncorrelated NOT EXISTS (SELECT 1 FROM missing) runs once, before the first row is
// inserted, so the agent rows are locked and checked before anything is written.

const EXISTING_SQL = `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
  WHERE t.idempotency_key = ANY($1::text[])`;

function stringArray(v: unknown): string[] {
  if (!Array.isArray(v)) throw new Error('expected an array from the task insert');
  return v.map(String);
}

/** One taskCreate call: its tasks commit together or not at all. */
export function createTasks(tasks: readonly TaskToCreate[]) {
  return async (tx: Queryable): Promise<WriteOutcome<TaskCreateResult[]>> => {
    const [outcome] = await insertTaskLists(tx, [tasks]);
    return outcome!;
  };
}

/**
 * Several taskCreate calls queued together, as one run (write-batch.ts `Mergeable`): one insert
 * statement for all their tasks, one outcome per call.
 */
export function createTaskLists(lists: ReadonlyArray<readonly TaskToCreate[]>) {
  return (tx: Queryable): Promise<Array<WriteOutcome<TaskCreateResult[]>>> => insertTaskLists(tx, lists);
}

/**
 * The insert writes nothing when an agent is missing; then the calls naming a missing agent
 * are refused and the insert runs again for the others (nothing to roll back).
 */
async function insertTaskLists(tx: Queryable, lists: ReadonlyArray<readonly TaskToCreate[]>): Promise<Array<WriteOutcome<TaskCreateResult[]>>> {
  const refusals = new Map<number, WriteOutcome<TaskCreateResult[]>>();
  for (;;) {
    const remaining = lists.flatMap((list, i) => (refusals.has(i) ? [] : [{ list, i }]));
    if (remaining.length === 0) return lists.map((_, i) => refusals.get(i)!);
    const tasks = remaining.flatMap(({ list }) => list);
    const inserted = run(tx, CREATE_SQL, CREATE_COLUMNS.map(([, , value]) => tasks.map(({ task }) => value(task))));
    // The hand-offs' claims go in the insert's round trip (pipeline mode, connection.ts), before
    // its answer says which tasks it created: a claim of a task it did not create (its
    // idempotency key matched another; or the insert wrote nothing, an agent missing) finds no
    // row and changes nothing, and its outcome is ignored (createdOutcomes).
    const dispatches = tasks.flatMap(({ dispatch }) => (dispatch ? [dispatch] : []));
    const claimed = dispatches.length > 0 ? applyAll(firstAhead(tx), dispatches) : Promise.resolve([]);
    claimed.catch(() => {});
    let row: Record<string, unknown> | undefined;
    try {
      [row] = await inserted;
    } catch (error) {
      // The claims behind a failed insert fail with it ("current transaction is aborted").
      await claimed.catch(() => {});
      throw error;
    }
    const applied = new Map<string, AppliedTransition>();
    (await claimed).forEach((a, i) => applied.set(dispatches[i]!.taskId, a));
    const missing = new Set(stringArray(row?.missing));
    if (missing.size === 0) {
      const created = await createdOutcomes(tx, remaining.map(({ list }) => list), row, applied);
      return lists.map((_, i) => refusals.get(i) ?? created[remaining.findIndex((r) => r.i === i)]!);
    }
    let refusedNow = 0;
    for (const { list, i } of remaining) {
      const named = list.find(({ task }) => task.agent !== null && missing.has(task.agent));
      if (!named) continue;
      refusals.set(i, refused(new FlotillaError('UNKNOWN_AGENT', `no agent named "${named.task.agent}" is registered`)));
      refusedNow++;
    }
    if (refusedNow === 0) throw new Error(`the task insert reported missing agents no call names: ${[...missing].join(', ')}`);
  }
}

/** Outcomes of calls whose tasks the insert (its answer: `row`) created or matched by key. */
async function createdOutcomes(
  tx: Queryable,
  lists: ReadonlyArray<readonly TaskToCreate[]>,
  row: Record<string, unknown> | undefined,
  claims: ReadonlyMap<string, AppliedTransition>,
): Promise<Array<WriteOutcome<TaskCreateResult[]>>> {
  const tasks = lists.flat();
  const ids = stringArray(row?.ids);
  const seqs = new Map(stringArray(row?.seqs).map((seq, i) => [ids[i]!, Number(seq)]));
  const skippedKeys = tasks.flatMap(({ task }) => (seqs.has(task.id) || task.idempotencyKey === null ? [] : [task.idempotencyKey]));
  const existing = new Map<string, ReturnType<typeof taskRecordFromRow>>();
  if (skippedKeys.length > 0) {
    for (const found of await run(tx, EXISTING_SQL, [[...new Set(skippedKeys)]])) {
      const record = taskRecordFromRow(found);
      existing.set(record.idempotencyKey ?? '', record);
    }
  }
  // Skipped, yet matched by no idempotency key: a duplicate id, or a cached task whose key has
  // a run (tasks_cache_open). Decided here, inside the transaction, so that a call with a
  // duplicate id fails before COMMIT and writes none of its tasks, as a failed insert would.
  // (Statements only when something was skipped so: never for a plain create.)
  const unmatched = tasks.flatMap(({ task }) => (seqs.has(task.id) || (task.idempotencyKey !== null && existing.has(task.idempotencyKey)) ? [] : [task]));
  let openRuns = new Map<string, ReturnType<typeof taskRecordFromRow>>();
  if (unmatched.length > 0) {
    const [taken] = await run(tx, 'SELECT id FROM tasks WHERE id = ANY($1::text[]) LIMIT 1', [unmatched.map((t) => t.id)]);
    if (taken) throw new FlotillaError('INTERNAL', `a task with id ${String(taken.id)} exists already; the call creates none of its tasks`);
    openRuns = await openCacheRuns(tx, unmatched, { orJustFinished: true });
    const lost = unmatched.find((t) => !openRuns.has(t.id));
    if (lost) throw new FlotillaError('INTERNAL', `task ${lost.id} was neither created nor matched by its idempotency key or cache key`);
  }
  // Hand-offs (TaskToCreate.dispatch) of the tasks created: claimed in the insert's round trip,
  // one set statement for all of them, as a dispatch pass's claims are.
  const applied = new Map([...claims].filter(([taskId]) => seqs.has(taskId)));
  return lists.map((list): WriteOutcome<TaskCreateResult[]> => {
    const pending: PendingEvent[] = [];
    let undispatched = false;
    for (const { task, events } of list) {
      if (!seqs.has(task.id)) continue;
      pending.push(...stamp(events, task.createdAt));
      const handOff = applied.get(task.id);
      if (handOff?.ok) pending.push(...handOff.events);
      else undispatched = true;
    }
    return {
      ok: true,
      events: pending,
      // Other nodes' dispatchers look for work only when something is left pending.
      signals: undispatched ? ['wake'] : [],
      result: (records) => {
        let next = 0;
        return list.map(({ task, events }): TaskCreateResult => {
          const seq = seqs.get(task.id);
          if (seq !== undefined) {
            const mine = records.slice(next, next + events.length);
            next += events.length;
            const a = applied.get(task.id);
            let handOff: TransitionResult | null = null;
            if (a?.ok) {
              handOff = { ok: true, events: records.slice(next, next + a.events.length) };
              next += a.events.length;
            } else if (a) {
              handOff = { ok: false, conflict: a.conflict };
            }
            return { created: true, task: { ...task, seq }, events: mine, handOff };
          }
          const found = (task.idempotencyKey === null ? undefined : existing.get(task.idempotencyKey)) ?? openRuns.get(task.id);
          if (!found) throw new FlotillaError('INTERNAL', `task ${task.id} was neither created nor matched by its idempotency key`);
          return { created: false, task: found };
        });
      },
    };
  });
}

/**
 * Deletes terminal tasks finished before the horizon, oldest first, at most `limit`, with
 * their events, assignments and payloads (children first: the foreign keys have no cascade,
 * and are checked at the end of the statement). Rows another transaction has locked (a task
 * being requeued right now) are skipped, not waited for; the next sweep gets them. Events
 * about no task in particular (agents, replicas) age out with the same horizon. Events not
 * yet numbered (events.ts) go too: the queue is scanned, but it holds only the last
 * milliseconds' events. (One being numbered at this very moment would survive its task; only
 * possible if numbering stalled for the whole retention period.)
 */
const PRUNE_SQL = `
WITH doomed AS MATERIALIZED (
  SELECT id FROM tasks
  WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < $1::bigint
  ORDER BY finished_at LIMIT $2::integer
  FOR UPDATE SKIP LOCKED
),
gone_events AS (DELETE FROM events WHERE task_id IN (SELECT id FROM doomed)),
gone_queued AS (
  DELETE FROM event_queue WHERE task_id IN (SELECT id FROM doomed) OR (task_id IS NULL AND at < $1::bigint)
),
gone_assignments AS (DELETE FROM assignments WHERE task_id IN (SELECT id FROM doomed)),
gone_payloads AS (DELETE FROM task_payloads WHERE task_id IN (SELECT id FROM doomed)),
gone_edges AS (DELETE FROM task_dependencies WHERE task_id IN (SELECT id FROM doomed)),
gone_tasks AS (DELETE FROM tasks WHERE id IN (SELECT id FROM doomed) RETURNING id),
gone_untasked AS (
  DELETE FROM events WHERE seq IN (
    SELECT seq FROM events WHERE task_id IS NULL AND at < $1::bigint ORDER BY at LIMIT $2::integer)
)
SELECT count(*) AS deleted FROM gone_tasks`;

export function pruneTasks(params: { finishedBefore: number; limit: number }) {
  return async (tx: Queryable): Promise<WriteOutcome<number>> => {
    const limit = Math.max(0, Math.floor(params.limit));
    const [row] = await run(tx, PRUNE_SQL, [params.finishedBefore, limit]);
    const deleted = Number(row?.deleted ?? 0);
    return { ok: true, events: [], signals: [], result: () => deleted };
  };
}

/**
 * SLA marks (Store.taskSlaMark) as one set statement: each row changes only while the task is
 * still in the mark's state and status, and only the marks that changed a row have their
 * events appended, in the same transaction.
 */
export function markSla(marks: readonly SlaMark[], now: () => number) {
  return async (tx: Queryable): Promise<WriteOutcome<{ applied: boolean[]; events: EventRecord[] }>> => {
    const rows = await run(tx,
      `UPDATE tasks t SET sla_state = m.state, sla_check_at = m.check_at
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS m (id, from_state, from_status, state, check_at)
       WHERE t.id = m.id AND t.sla_state = m.from_state AND t.status = m.from_status
       RETURNING t.id`,
      [marks.map((m) => m.taskId), marks.map((m) => m.fromState), marks.map((m) => m.fromStatus), marks.map((m) => m.state), marks.map((m) => m.checkAt)]);
    const changed = new Set(rows.map((r) => String(r.id)));
    const applied = marks.map((m) => changed.has(m.taskId));
    const events = marks.filter((m, i) => applied[i] && m.event !== null).map((m) => m.event!);
    return withEvents(stamp(events, now()), [], (records) => ({ applied, events: records }));
  };
}
