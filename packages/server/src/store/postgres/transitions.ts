// Applying a Transition: the guarded writes the state machine decided, as one unit. The store
// does not interpret a transition; it checks the guards and writes what it is told.
//
// One statement per transition, for the transitions the set statements of transition-set.ts
// cannot express (those take one statement per shape for a whole batch: `applyAll` below
// decides). The statement's first CTEs are the guards, checked in the same order as
// the SQLite store (sqlite/transitions.ts) and each only if the previous one held:
//   1. g_task: the task row, still in fromStatus with the expected live assignment -> 'task'
//   2. g_asg:  the assignment to update, still in one of fromStatuses           -> 'assignment'
//   3. g_rep:  the replica taking a slot: live and under maxConcurrency           -> 'replica_slot'
//   4. w_key:  the concurrency key taking a slot, under its limit                 -> 'concurrency_key'
// Guards 1-3 are `SELECT ... FOR NO KEY UPDATE`: they lock the row, and under READ COMMITTED a
// row changed by a transaction that committed meanwhile is re-read and the condition checked
// again on its newest version, so a guard is never decided on stale data. Holding the lock,
// the guard stays true until this transaction ends. Guard 4 is the only one that is also a
// write (an upsert whose DO UPDATE has the limit as its WHERE), and it runs only after 1-3
// held. Every other write runs only if all guards held (`ok`). So a transition that conflicts
// writes nothing at all, and needs no savepoint to be undone.
//
// The counters (replica rows, and concurrency keys through their advisory locks) were locked
// by the write batch before any operation ran (transitionLocks, write-batch.ts): guards 3-4 and
// the slot releases never wait for another transaction, and counters are always taken in one
// global order, so they cannot deadlock.
//
// A dispatch (the claim: from 'pending' with a new assignment) locks its task with SKIP
// LOCKED: a task another process is claiming right now is reported as conflict 'task' at once
// instead of waiting for that transaction. Only claims do that: a completion racing a
// cancellation request, say, must wait and re-check, or it would be refused for nothing.
//
// Within one statement no row may be written twice, so a slot release sits in the same
// statement unless the transition also acquires a slot (no decision of the state machine does
// both); then it is a second statement. A concurrency key whose count drops to 0 is deleted by
// a follow-up statement (this transaction holds its row lock, so the count cannot change).

import type { ConflictReason, Transition, TransitionResult } from '../../core/types.ts';
import { stamp, type PendingEvent, type SignalKind } from './events.ts';
import { applyClaimSet, applyTransitionSet, claimEligible, setEligible, shapeOf, type AppliedTransition } from './transition-set.ts';
import { toJsonOrNull } from './rows.ts';
import { ASSIGNMENT_PATCH_COLUMNS, PAYLOAD_PATCH_COLUMNS, TASK_PATCH_COLUMNS, type Column } from './transition-columns.ts';
import { Params, run, type Queryable } from './sql.ts';
import { withEvents, type LockSet, type WriteOp, type WriteOutcome } from './write-batch.ts';

/**
 * `col = $n::type, ...` for the keys of `patch` that are present (undefined = unchanged,
 * null = NULL), restricted to `columns`. Keys are visited in the whitelist's order, so equal
 * shapes produce identical SQL and share one prepared statement.
 */
function setClause(p: Params, patch: object, columns: Readonly<Record<string, Column>>): string {
  const parts: string[] = [];
  const values = patch as Record<string, unknown>;
  for (const [key, [column, type]] of Object.entries(columns)) {
    const v = values[key];
    if (v === undefined) continue;
    const param = type === 'jsonb' ? toJsonOrNull(v as Parameters<typeof toJsonOrNull>[0]) : v;
    parts.push(`${column} = ${p.add(param, type)}`);
  }
  return parts.join(', ');
}

function assertKnownKeys(patch: object, ...allowed: Array<Readonly<Record<string, Column>>>): void {
  for (const key of Object.keys(patch)) {
    if (!allowed.some((cols) => Object.hasOwn(cols, key))) {
      throw new Error(`patch field ${key} is not stored by the PostgreSQL store`);
    }
  }
}

const ASSIGNMENT_INSERT_COLUMNS: readonly Column[] = [
  ['id', 'text'], ['task_id', 'text'], ['agent', 'text'], ['replica_id', 'text'], ['attempt', 'integer'], ['status', 'text'],
  ['dispatched_at', 'bigint'], ['started_at', 'bigint'], ['finished_at', 'bigint'], ['lease_expires_at', 'bigint'],
  ['deadline_at', 'bigint'], ['progress_percent', 'double precision'], ['progress_message', 'text'], ['progress_at', 'bigint'],
  ['error', 'jsonb'],
];

interface TransitionStatement {
  text: string;
  values: unknown[];
  /** Guards in the order their conflicts are reported: the CTE, the flag selected for it, its conflict. */
  guards: Array<{ cte: string; flag: string; conflict: ConflictReason }>;
  /** The release must run as a second statement (the transition also acquires a slot). */
  separateRelease: boolean;
  /** The statement returns `key_left` (the released key's remaining count). */
  releasesKey: boolean;
}

/** The guarded statement for one transition (see the file comment). */
export function transitionStatement(t: Transition): TransitionStatement {
  assertKnownKeys(t.set, TASK_PATCH_COLUMNS, PAYLOAD_PATCH_COLUMNS);
  if (t.assignmentUpdate) assertKnownKeys(t.assignmentUpdate.set, ASSIGNMENT_PATCH_COLUMNS);
  const p = new Params();
  const ctes: string[] = [];
  const guards: TransitionStatement['guards'] = [];
  const taskId = p.add(t.taskId, 'text');
  // A claim never waits on a task another node is claiming: it reports the conflict at once.
  const claim = t.kind === 'dispatch';

  ctes.push(`g_task AS MATERIALIZED (
    SELECT id FROM tasks
    WHERE id = ${taskId} AND status = ${p.add(t.fromStatus, 'text')}
      AND assignment_id IS NOT DISTINCT FROM ${p.add(t.expectAssignmentId, 'text')}
    FOR NO KEY UPDATE${claim ? ' SKIP LOCKED' : ''})`);
  guards.push({ cte: 'g_task', flag: 'task_ok', conflict: 'task' });
  let last = 'g_task';

  const u = t.assignmentUpdate;
  const assignmentId = u ? p.add(u.id, 'text') : null;
  if (u) {
    ctes.push(`g_asg AS MATERIALIZED (
    SELECT id FROM assignments
    WHERE id = ${assignmentId} AND status = ANY(${p.add([...u.fromStatuses], 'text[]')}) AND EXISTS (SELECT 1 FROM ${last})
    FOR NO KEY UPDATE)`);
    guards.push({ cte: 'g_asg', flag: 'assignment_ok', conflict: 'assignment' });
    last = 'g_asg';
  }

  const a = t.slotAcquire;
  const acquireReplica = a ? p.add(a.replicaId, 'text') : null;
  if (a) {
    ctes.push(`g_rep AS MATERIALIZED (
    SELECT id FROM replicas
    WHERE id = ${acquireReplica} AND status = 'live' AND in_flight < max_concurrency AND EXISTS (SELECT 1 FROM ${last})
    FOR NO KEY UPDATE)`);
    guards.push({ cte: 'g_rep', flag: 'replica_ok', conflict: 'replica_slot' });
    last = 'g_rep';
    last = capGuards(p, ctes, guards, a.caps, last);
    if (a.concurrencyKey !== null) {
      // No limit: the key is still counted, so a limit configured later sees what runs under it.
      const limit = a.concurrencyLimit === null ? null : p.add(a.concurrencyLimit, 'integer');
      ctes.push(`w_key AS (
    INSERT INTO concurrency_keys AS k (key, in_flight)
    SELECT ${p.add(a.concurrencyKey, 'text')}, 1 WHERE EXISTS (SELECT 1 FROM g_rep)${limit === null ? '' : ` AND ${limit} > 0`}
    ON CONFLICT (key) DO UPDATE SET in_flight = k.in_flight + 1${limit === null ? '' : ` WHERE k.in_flight < ${limit}`}
    RETURNING k.key)`);
      guards.push({ cte: 'w_key', flag: 'key_ok', conflict: 'concurrency_key' });
      last = 'w_key';
    }
  }
  ctes.push(`ok AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM ${last}) AS ok)`);
  const OK = '(SELECT ok FROM ok)';

  // -- writes, all conditional on every guard ---------------------------------------------
  // A transition that ends the task reads its has_dependents back (the row written, not the
  // head it was decided from, which may predate the mark: a dependent submitted while it ran).
  ctes.push(`w_task AS (UPDATE tasks SET ${setClause(p, t.set, TASK_PATCH_COLUMNS)} WHERE id = ${taskId} AND ${OK}${t.endsTask ? ' RETURNING has_dependents' : ''})`);
  const payload = setClause(p, t.set, PAYLOAD_PATCH_COLUMNS);
  if (payload !== '') ctes.push(`w_payload AS (UPDATE task_payloads SET ${payload} WHERE task_id = ${taskId} AND ${OK})`);
  const ins = t.assignmentInsert;
  if (ins) {
    const values: Record<string, unknown> = {
      id: ins.id, task_id: ins.taskId, agent: ins.agent, replica_id: ins.replicaId, attempt: ins.attempt, status: ins.status,
      dispatched_at: ins.dispatchedAt, started_at: ins.startedAt, finished_at: ins.finishedAt, lease_expires_at: ins.leaseExpiresAt,
      deadline_at: ins.deadlineAt, progress_percent: ins.progressPercent, progress_message: ins.progressMessage,
      progress_at: ins.progressAt, error: toJsonOrNull(ins.error),
    };
    const cols = ASSIGNMENT_INSERT_COLUMNS.map(([c]) => c).join(', ');
    const vals = ASSIGNMENT_INSERT_COLUMNS.map(([c, type]) => p.add(values[c], type)).join(', ');
    ctes.push(`w_asg_insert AS (INSERT INTO assignments (${cols}) SELECT ${vals} WHERE ${OK})`);
  }
  if (u) {
    // An empty patch changes nothing: the guard (g_asg) was all it asked for.
    const set = setClause(p, u.set, ASSIGNMENT_PATCH_COLUMNS);
    if (set !== '') ctes.push(`w_asg_update AS (UPDATE assignments SET ${set} WHERE id = ${assignmentId} AND ${OK})`);
  }
  if (a) {
    ctes.push(`w_replica AS (
    UPDATE replicas SET in_flight = in_flight + 1, last_assigned_at = ${p.add(a.at, 'bigint')}
    WHERE id = ${acquireReplica} AND ${OK})`);
  }
  const r = t.slotRelease;
  const inlineRelease = r !== undefined && a === undefined;
  if (inlineRelease) ctes.push(...releaseCtes(p, r, OK));

  const flags = guards.map((g) => `EXISTS (SELECT 1 FROM ${g.cte}) AS ${g.flag}`);
  const releasesKey = inlineRelease && r.concurrencyKey !== null;
  const text = `WITH ${ctes.join(',\n  ')}
SELECT ${flags.join(', ')}, ${OK} AS ok${releasesKey ? ', (SELECT in_flight FROM w_key_release) AS key_left' : ''}${t.endsTask ? ', (SELECT has_dependents FROM w_task) AS has_dependents' : ''}`;
  return { text, values: p.values, guards, separateRelease: r !== undefined && a !== undefined, releasesKey };
}

/**
 * The fleet and agent caps (issue 16, decisions.md 105): live assignments (the replicas'
 * in_flight, summed) stay under each cap. This statement's snapshot does not hold its own
 * replica increment, so `<` admits exactly up to the cap. Exact across nodes: every claim that
 * carries caps holds the batch's caps lock (CAPS_LOCK, transitionLocks), so no two such claims
 * count at once; a release racing it only lowers the count.
 */
function capGuards(p: Params, ctes: string[], guards: TransitionStatement['guards'], caps: NonNullable<Transition['slotAcquire']>['caps'], last: string): string {
  if (caps === undefined) return last;
  if (caps.fleet !== null) {
    ctes.push(`g_fleet AS MATERIALIZED (
    SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM ${last}) AND (SELECT COALESCE(SUM(in_flight), 0) FROM replicas) < ${p.add(caps.fleet, 'integer')})`);
    guards.push({ cte: 'g_fleet', flag: 'fleet_ok', conflict: 'fleet_cap' });
    last = 'g_fleet';
  }
  if (caps.agent !== null) {
    ctes.push(`g_agent_cap AS MATERIALIZED (
    SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM ${last})
      AND (SELECT COALESCE(SUM(in_flight), 0) FROM replicas WHERE agent = ${p.add(caps.agent.name, 'text')}) < ${p.add(caps.agent.limit, 'integer')})`);
    guards.push({ cte: 'g_agent_cap', flag: 'agent_cap_ok', conflict: 'agent_cap' });
    last = 'g_agent_cap';
  }
  return last;
}

/** The batch lock every claim with caps holds (a concurrency-key lock of a name no task can have: NUL). */
export const CAPS_LOCK = '\0caps';

/**
 * Gives a slot back. No status guard: a lost or gone replica still gets its slot (and its
 * record) back. `in_flight > 0` keeps a counter from going negative should it ever drift.
 */
function releaseCtes(p: Params, r: NonNullable<Transition['slotRelease']>, condition: string): string[] {
  const ctes = [`w_replica_release AS (
    UPDATE replicas SET in_flight = in_flight - 1,
      completed = completed + ${p.add(r.outcome === 'completed' ? 1 : 0, 'integer')},
      failed = failed + ${p.add(r.outcome === 'failed' ? 1 : 0, 'integer')}
    WHERE id = ${p.add(r.replicaId, 'text')} AND in_flight > 0 AND ${condition})`];
  if (r.concurrencyKey !== null) {
    ctes.push(`w_key_release AS (
    UPDATE concurrency_keys SET in_flight = in_flight - 1
    WHERE key = ${p.add(r.concurrencyKey, 'text')} AND in_flight > 0 AND ${condition}
    RETURNING in_flight)`);
  }
  return ctes;
}

async function deleteIdleKey(tx: Queryable, key: string): Promise<void> {
  await run(tx, 'DELETE FROM concurrency_keys WHERE key = $1::text AND in_flight = 0', [key]);
}

export type { AppliedTransition };

/**
 * Applies one transition inside the caller's transaction. A failed guard is returned as a
 * conflict and wrote nothing; any other error (a constraint violation, which means a bug
 * upstream) propagates, and the caller's transaction must be rolled back.
 */
export async function applyTransition(tx: Queryable, t: Transition): Promise<AppliedTransition> {
  const stmt = transitionStatement(t);
  const [row] = await run(tx, stmt.text, stmt.values);
  if (!row) throw new Error('a transition statement returned no row');
  if (row.ok !== true) {
    const failed = stmt.guards.find((g) => row[g.flag] !== true);
    return { ok: false, conflict: failed?.conflict ?? 'task' };
  }
  const r = t.slotRelease;
  if (r && stmt.separateRelease) {
    const p = new Params();
    const ctes = releaseCtes(p, r, 'true');
    const [released] = await run(tx, `WITH ${ctes.join(',\n  ')}
SELECT ${r.concurrencyKey === null ? 'NULL::integer' : '(SELECT in_flight FROM w_key_release)'} AS key_left`, p.values);
    if (r.concurrencyKey !== null && released?.key_left === 0) await deleteIdleKey(tx, r.concurrencyKey);
  } else if (r && stmt.releasesKey && r.concurrencyKey !== null && row.key_left === 0) {
    await deleteIdleKey(tx, r.concurrencyKey);
  }
  return { ok: true, events: stamp(t.events, t.set.updatedAt), ...(Number(row.has_dependents ?? 0) !== 0 ? { hasDependents: true as const } : {}) };
}

/**
 * A taskTransition call as one write-batch operation. Each transition either applies
 * entirely or, on a conflict, writes nothing, so no savepoint is needed between them; an
 * unexpected error rejects the call and undoes all of it (the batch isolates it from the
 * other operations). Dispatchers of every process are woken when a slot was freed or a task
 * became dispatchable again.
 */
export function applyTransitions(transitions: readonly Transition[]): WriteOp<TransitionResult[]> {
  return async (tx) => (await applyTransitionLists([transitions])(tx))[0]!;
}

/**
 * Several taskTransition calls queued together, as one run (write-batch.ts `Mergeable`): their
 * transitions share the set statements, and each call gets its own outcome and events.
 */
export function applyTransitionLists(lists: ReadonlyArray<readonly Transition[]>): (tx: Queryable) => Promise<Array<WriteOutcome<TransitionResult[]>>> {
  return async (tx) => {
    const applied = await applyAll(tx, lists.flat());
    let offset = 0;
    return lists.map((transitions) => {
      const mine = applied.slice(offset, offset + transitions.length);
      offset += transitions.length;
      const pending: PendingEvent[] = [];
      let wake: SignalKind | null = null;
      transitions.forEach((t, i) => {
        const result = mine[i]!;
        if (!result.ok) return;
        pending.push(...result.events);
        // A concurrency key given back can unblock a pending task (as in engine/context.ts).
        if (t.queuesTask || (t.slotRelease !== undefined && t.slotRelease.concurrencyKey !== null)) wake = 'wake';
        else if (t.wakesDispatcher) wake ??= 'capacity';
      });
      return withEvents(pending, wake ? [wake] : [], (records) => {
        let next = 0;
        return mine.map((result): TransitionResult => {
          if (!result.ok) return result;
          const events = records.slice(next, next + result.events.length);
          next += result.events.length;
          return result.hasDependents === true ? { ok: true, events, hasDependents: true } : { ok: true, events };
        });
      });
    });
  };
}

/**
 * Applies a call's transitions in call order: each run of consecutive transitions of one
 * shape that a set statement can express (transition-set.ts) as one statement, every other
 * transition (and every transition on a task that appears twice) as a statement of its own.
 * Runs follow the order of the calls, so claims and releases on one replica meet in the order
 * they were queued, exactly as one at a time.
 */
/** Applies transitions in order, runs of one shape as one set statement; one result per transition. */
export async function applyAll(tx: Queryable, transitions: readonly Transition[]): Promise<AppliedTransition[]> {
  const perTask = new Map<string, number>();
  for (const t of transitions) perTask.set(t.taskId, (perTask.get(t.taskId) ?? 0) + 1);
  const shape = (t: Transition): string | null => (perTask.get(t.taskId) === 1 && (claimEligible(t) || setEligible(t)) ? shapeOf(t) : null);
  const applied: AppliedTransition[] = [];
  for (let i = 0; i < transitions.length;) {
    const first = transitions[i]!;
    const s = shape(first);
    let end = i + 1;
    if (s !== null) while (end < transitions.length && shape(transitions[end]!) === s) end++;
    if (s === null) {
      applied.push(await applyTransition(tx, first));
    } else {
      const run = transitions.slice(i, end);
      applied.push(...(claimEligible(first) ? await applyClaimSet(tx, run) : await applyTransitionSet(tx, run)));
    }
    i = end;
  }
  return applied;
}

/** The replicas and concurrency keys the transitions take or give back slots on (see write-batch.ts). */
export function transitionLocks(transitions: readonly Transition[]): LockSet {
  const replicas: string[] = [];
  const keys: string[] = [];
  for (const t of transitions) {
    for (const slot of [t.slotAcquire, t.slotRelease]) {
      if (!slot) continue;
      replicas.push(slot.replicaId);
      if (slot.concurrencyKey !== null) keys.push(slot.concurrencyKey);
    }
    if (t.slotAcquire?.caps !== undefined) keys.push(CAPS_LOCK);
  }
  return { replicas, keys };
}
