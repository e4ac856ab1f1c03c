// Applying a Transition: the guarded writes the state machine decided, as one unit. The store
// does not interpret a transition; it checks the guards and writes what it is told. Every
// guard is part of a write's WHERE clause, so checking and writing are one step and no other
// writer can slip in between (and SQLite has a single writer anyway).
//
// Order inside the transition's savepoint:
//   1. task row (guard: status and live assignment)          -> conflict 'task'
//   2. assignment insert, or guarded assignment update       -> conflict 'assignment'
//   3. slot acquire: replica (live, under max), then key      -> 'replica_slot' / 'concurrency_key'
//   4. slot release: replica and key
//   5. events
// Steps 1-3 return the conflict of a failed guard; the savepoint is then rolled back, so
// nothing of the transition persists (not even the task update of step 1).

import type {
  AssignmentPatch, ConflictReason, EventRecord, Millis, NewEvent, TaskPatch, Transition, TransitionResult,
} from '../../core/types.ts';
import type { SQLInputValue } from 'node:sqlite';
import { ASSIGNMENT_INSERT_COLUMNS, assignmentParams, changes, insertSql, toJson, toJsonOrNull, valuesOf } from './rows.ts';
import type { StatementCache } from './statement-cache.ts';

/** TaskPatch keys stored on the hot `tasks` row, and their columns. */
const TASK_PATCH_COLUMNS = {
  status: 'status',
  assignmentId: 'assignment_id',
  attempt: 'attempt',
  maxAttempts: 'max_attempts',
  runAt: 'run_at',
  finishedAt: 'finished_at',
  cancelRequestedAt: 'cancel_requested_at',
  waitingFor: 'waiting_for',
  inputExpiresAt: 'input_expires_at',
  updatedAt: 'updated_at',
} as const satisfies Partial<Record<keyof TaskPatch, string>>;

/** TaskPatch keys stored in `task_payloads` (JSON). */
const PAYLOAD_PATCH_COLUMNS = {
  result: 'result',
  error: 'error',
  inputRequest: 'input_request',
  resumed: 'resumed',
  input: 'input',
  dependencies: 'dependencies',
} as const satisfies Partial<Record<keyof TaskPatch, string>>;

// Compile-time check: a field added to TaskPatch must be given a column here.
type UnmappedTaskPatchKey = Exclude<keyof TaskPatch, keyof typeof TASK_PATCH_COLUMNS | keyof typeof PAYLOAD_PATCH_COLUMNS>;
const _everyTaskPatchKeyMapped: [UnmappedTaskPatchKey] extends [never] ? true : UnmappedTaskPatchKey = true;
void _everyTaskPatchKeyMapped;

const ASSIGNMENT_PATCH_COLUMNS = {
  status: 'status',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  leaseExpiresAt: 'lease_expires_at',
  deadlineAt: 'deadline_at',
  error: 'error',
  counted: 'counted',
} as const satisfies Record<keyof AssignmentPatch, string>;

const JSON_PATCH_KEYS: ReadonlySet<string> = new Set(['result', 'error', 'waitingFor', 'inputRequest', 'resumed', 'input', 'dependencies']);

/**
 * `SET col = ?, ...` for the keys of `patch` that are present (undefined = unchanged, null =
 * NULL), restricted to `columns`, and their values in the same order (positional binding:
 * see rows.ts). Keys are visited in the whitelist's order, so equal shapes produce identical
 * SQL and share one prepared statement.
 */
function setClause(patch: object, columns: Readonly<Record<string, string>>): { sql: string; values: SQLInputValue[] } {
  const parts: string[] = [];
  const values: SQLInputValue[] = [];
  const p = patch as Record<string, unknown>;
  for (const [key, column] of Object.entries(columns)) {
    const v = p[key];
    if (v === undefined) continue;
    parts.push(`${column} = ?`);
    values.push(JSON_PATCH_KEYS.has(key) ? toJsonOrNull(v as Parameters<typeof toJsonOrNull>[0]) : typeof v === 'boolean' ? (v ? 1 : 0) : (v as SQLInputValue));
  }
  return { sql: parts.join(', '), values };
}

function assertKnownKeys(patch: object, ...allowed: Array<Readonly<Record<string, string>>>): void {
  for (const key of Object.keys(patch)) {
    if (!allowed.some((cols) => Object.hasOwn(cols, key))) {
      throw new Error(`patch field ${key} is not stored by the SQLite store`);
    }
  }
}

export function insertEvents(cache: StatementCache, events: readonly NewEvent[], at: Millis): EventRecord[] {
  const stmt = cache.sql('INSERT INTO events (type, at, task_id, agent, replica_id, assignment_id, data) VALUES (?, ?, ?, ?, ?, ?, ?)');
  return events.map((e) => {
    const r = stmt.run(e.type, at, e.taskId, e.agent, e.replicaId, e.assignmentId, toJson(e.data));
    return { ...e, seq: Number(r.lastInsertRowid), at };
  });
}

/** What step 1 wrote: whether the task is marked as having dependents (read back only when the transition ends it). */
export interface TaskWritten {
  hasDependents: boolean;
}

/**
 * Step 1: the task row, guarded by its status and live assignment; nothing is written on a
 * conflict. A transition that ends the task reads its has_dependents back in the same
 * statement (RETURNING): the mark may have been set after the head it was decided from.
 */
export function taskWrite(cache: StatementCache, t: Transition): ConflictReason | TaskWritten {
  assertKnownKeys(t.set, TASK_PATCH_COLUMNS, PAYLOAD_PATCH_COLUMNS);
  const hot = setClause(t.set, TASK_PATCH_COLUMNS);
  const guard = `UPDATE tasks SET ${hot.sql} WHERE id = ? AND status = ? AND assignment_id IS ?`;
  let hasDependents = false;
  if (t.endsTask) {
    const row = cache.sql(`${guard} RETURNING has_dependents`).get(...hot.values, t.taskId, t.fromStatus, t.expectAssignmentId);
    if (row === undefined) return 'task';
    hasDependents = Number(row.has_dependents) !== 0;
  } else if (changes(cache.sql(guard).run(...hot.values, t.taskId, t.fromStatus, t.expectAssignmentId)) === 0) {
    return 'task';
  }
  const payload = setClause(t.set, PAYLOAD_PATCH_COLUMNS);
  if (payload.sql !== '') {
    cache.sql(`UPDATE task_payloads SET ${payload.sql} WHERE task_id = ?`).run(...payload.values, t.taskId);
  }
  return { hasDependents };
}

/** Step 2: the assignment insert, or its guarded update. */
export function assignmentWrite(cache: StatementCache, t: Transition): ConflictReason | null {
  if (t.assignmentInsert) {
    cache.sql(insertSql('assignments', ASSIGNMENT_INSERT_COLUMNS)).run(...valuesOf(assignmentParams(t.assignmentInsert), ASSIGNMENT_INSERT_COLUMNS));
  }
  const u = t.assignmentUpdate;
  if (u) {
    assertKnownKeys(u.set, ASSIGNMENT_PATCH_COLUMNS);
    const set = setClause(u.set, ASSIGNMENT_PATCH_COLUMNS);
    // An empty patch still checks the guard: `SET id = id` changes nothing but counts the row.
    // One bound parameter per allowed status (the SQL text depends only on how many): a
    // json_each subquery here cost a virtual-table scan and a bloom filter per execution.
    const stmt = cache.sql(
      `UPDATE assignments SET ${set.sql === '' ? 'id = id' : set.sql}
       WHERE id = ? AND status IN (${u.fromStatuses.map(() => '?').join(', ')})`,
    );
    const r = stmt.run(...set.values, u.id, ...u.fromStatuses);
    if (changes(r) === 0) return 'assignment';
  }
  return null;
}

function acquireSlot(cache: StatementCache, t: Transition): ConflictReason | null {
  const a = t.slotAcquire;
  if (!a) return null;
  const replica = cache.sql(
    `UPDATE replicas SET in_flight = in_flight + 1, last_assigned_at = ?
     WHERE id = ? AND status = 'live' AND in_flight < max_concurrency`,
  ).run(a.at, a.replicaId);
  if (changes(replica) === 0) return 'replica_slot';
  const capped = capConflict(cache, a.caps);
  if (capped !== null) return capped;
  if (a.concurrencyKey === null) return null;
  if (a.concurrencyLimit === null) {
    // No limit applies, but the key is still counted: a limit configured later must see
    // the assignments already running under it.
    cache.sql(
      `INSERT INTO concurrency_keys (key, in_flight) VALUES (:key, 1)
       ON CONFLICT (key) DO UPDATE SET in_flight = in_flight + 1`,
    ).run({ key: a.concurrencyKey });
    return null;
  }
  // Insert (first holder, allowed when the limit is positive) or increment under the limit.
  // The SELECT needs its WHERE clause for SQLite to parse the upsert unambiguously.
  const key = cache.sql(
    `INSERT INTO concurrency_keys (key, in_flight) SELECT :key, 1 WHERE :limit > 0
     ON CONFLICT (key) DO UPDATE SET in_flight = in_flight + 1 WHERE in_flight < :limit`,
  ).run({ key: a.concurrencyKey, limit: a.concurrencyLimit });
  return changes(key) === 0 ? 'concurrency_key' : null;
}

/**
 * The fleet and agent caps (decisions.md 105): the replicas' in_flight, summed, now holding
 * this claim's increment, may not exceed a cap. Exact: SQLite has one writer.
 */
function capConflict(cache: StatementCache, caps: NonNullable<Transition['slotAcquire']>['caps']): ConflictReason | null {
  if (caps === undefined) return null;
  if (caps.fleet !== null && Number(cache.sql('SELECT COALESCE(SUM(in_flight), 0) AS n FROM replicas').get()!.n) > caps.fleet) return 'fleet_cap';
  if (caps.agent !== null && Number(cache.sql('SELECT COALESCE(SUM(in_flight), 0) AS n FROM replicas WHERE agent = ?').get(caps.agent.name)!.n) > caps.agent.limit) return 'agent_cap';
  return null;
}

function releaseSlot(cache: StatementCache, t: Transition): void {
  const r = t.slotRelease;
  if (!r) return;
  // No status guard: a lost or gone replica still gets its slot (and its record) back.
  // `in_flight > 0` keeps the counter from going negative should it ever have drifted.
  cache.sql(
    `UPDATE replicas SET in_flight = in_flight - 1, completed = completed + ?, failed = failed + ?
     WHERE id = ? AND in_flight > 0`,
  ).run(r.outcome === 'completed' ? 1 : 0, r.outcome === 'failed' ? 1 : 0, r.replicaId);
  if (r.concurrencyKey === null) return;
  cache.sql('UPDATE concurrency_keys SET in_flight = in_flight - 1 WHERE key = :key AND in_flight > 0').run({ key: r.concurrencyKey });
  cache.sql('DELETE FROM concurrency_keys WHERE key = :key AND in_flight = 0').run({ key: r.concurrencyKey });
}

/**
 * Applies one transition inside its own savepoint (nested in the batch operation's). A failed
 * guard rolls the savepoint back and is returned as a conflict; any other error (a
 * constraint violation, which means a bug upstream) rolls it back and propagates.
 */
export function applyTransition(cache: StatementCache, t: Transition): TransitionResult {
  cache.sql('SAVEPOINT transition').run();
  try {
    const written = taskWrite(cache, t);
    const conflict = typeof written === 'string' ? written : assignmentWrite(cache, t) ?? acquireSlot(cache, t);
    if (conflict !== null) {
      rollback(cache);
      return { ok: false, conflict };
    }
    releaseSlot(cache, t);
    const events = insertEvents(cache, t.events, t.set.updatedAt);
    cache.sql('RELEASE transition').run();
    return withDependents({ ok: true, events }, written);
  } catch (error) {
    // Some errors roll back the whole transaction; then there is no savepoint to return to.
    if (cache.db.isTransaction) rollback(cache);
    throw error;
  }
}

function rollback(cache: StatementCache): void {
  cache.sql('ROLLBACK TO transition').run();
  cache.sql('RELEASE transition').run();
}

/** The result of an applied transition, saying whether its ended task has dependents (TransitionResult). */
export function withDependents(result: { ok: true; events: EventRecord[] }, written: ConflictReason | TaskWritten): TransitionResult {
  return typeof written !== 'string' && written.hasDependents ? { ...result, hasDependents: true } : result;
}
