// Assignment lookups, the reaper's due list, heartbeats and agent statistics.

import type { AgentStats, DueAssignment, HeartbeatParams, HeartbeatResult, RemoteAttempt } from '../store.ts';
import type { AssignmentRecord, Millis } from '../../core/types.ts';
import {
  ASSIGNMENT_COLUMNS, TASK_HEAD_COLUMNS, addStatusCounts, assignmentFromRow, selectList, taskHeadFromRow, zeroStatusCounts,
} from './rows.ts';
import { run, type Queryable, type Row } from './sql.ts';
import { written, type WriteOp } from './write-batch.ts';

const LIVE = `('dispatched', 'running')`;
const ASSIGNMENT_SELECT = ASSIGNMENT_COLUMNS.join(', ');
/** Head columns of `tasks t` prefixed `t_`, and assignment columns of `assignments a` prefixed `a_`, for joins. */
const DUE_SELECT = `${selectList('t', TASK_HEAD_COLUMNS, 't_')}, ${selectList('a', ASSIGNMENT_COLUMNS, 'a_')}`;

function dueFromRow(row: Row): DueAssignment {
  return { task: taskHeadFromRow(row, 't_'), assignment: assignmentFromRow(row, 'a_') };
}

export async function getAssignment(db: Queryable, id: string): Promise<AssignmentRecord | null> {
  const [row] = await run(db, `SELECT ${ASSIGNMENT_SELECT} FROM assignments WHERE id = $1::text`, [id]);
  return row ? assignmentFromRow(row) : null;
}

/** A task's attempts, oldest first (`seq`: insertion order, what SQLite's rowid gives). */
export async function listAssignmentsByTask(db: Queryable, taskId: string): Promise<AssignmentRecord[]> {
  return (await run(db, `SELECT ${ASSIGNMENT_SELECT} FROM assignments WHERE task_id = $1::text ORDER BY seq`, [taskId]))
    .map((row) => assignmentFromRow(row));
}

/** Each task's latest attempt: one index walk (assignments_task) per task, in one statement. */
export async function listLatestAssignments(db: Queryable, taskIds: readonly string[]): Promise<AssignmentRecord[]> {
  if (taskIds.length === 0) return [];
  return (await run(db,
    `SELECT DISTINCT ON (task_id) ${ASSIGNMENT_SELECT} FROM assignments
     WHERE task_id = ANY($1::text[]) ORDER BY task_id, seq DESC`,
    [[...new Set(taskIds)]])).map((row) => assignmentFromRow(row));
}

/** Live assignments held by a replica, with their tasks. */
export async function listAssignmentsByReplica(db: Queryable, replicaId: string): Promise<DueAssignment[]> {
  return (await run(db,
    `SELECT ${DUE_SELECT} FROM assignments a JOIN tasks t ON t.id = a.task_id
     WHERE a.replica_id = $1::text AND a.status IN ${LIVE} ORDER BY a.seq`,
    [replicaId])).map(dueFromRow);
}

/**
 * Three range scans of partial indexes (lease, deadline, cancellations past their grace),
 * united: the reaper never walks every assignment. Oldest dispatch first, so a backlog of
 * expiries drains in a stable order.
 */
export async function listDueAssignments(db: Queryable, params: { now: Millis; cancelGraceMs: Millis; limit: number }): Promise<DueAssignment[]> {
  return (await run(db,
    `WITH due (id) AS (
       SELECT id FROM assignments WHERE status IN ${LIVE} AND lease_expires_at <= $1::bigint
       UNION
       SELECT id FROM assignments WHERE status IN ${LIVE} AND deadline_at <= $1::bigint
       UNION
       SELECT assignment_id FROM tasks
       WHERE status IN ${LIVE} AND cancel_requested_at IS NOT NULL AND cancel_requested_at <= $2::bigint
     )
     SELECT ${DUE_SELECT} FROM due JOIN assignments a ON a.id = due.id JOIN tasks t ON t.id = a.task_id
     WHERE a.status IN ${LIVE}
     ORDER BY a.seq LIMIT $3::integer`,
    [params.now, params.now - params.cancelGraceMs, Math.max(0, Math.floor(params.limit))])).map(dueFromRow);
}

const HEARTBEAT_GUARD = `FROM tasks t
  WHERE a.id = $1::text AND a.replica_id = $2::text AND a.status IN ${LIVE} AND t.id = a.task_id
  RETURNING ${selectList('a', ASSIGNMENT_COLUMNS)}, t.cancel_requested_at AS task_cancel_requested_at`;

/**
 * Renews the lease (and records progress) while the assignment is live and held by that
 * replica; the task's cancellation flag comes back from the same statement. Writes no event.
 */
export function heartbeat(params: HeartbeatParams): WriteOp<HeartbeatResult> {
  return async (tx) => {
    const p = params.progress ?? null;
    const [row] = p === null
      ? await run(tx, `UPDATE assignments a SET lease_expires_at = $3::bigint ${HEARTBEAT_GUARD}`,
        [params.assignmentId, params.replicaId, params.leaseExpiresAt])
      : await run(tx,
        `UPDATE assignments a SET lease_expires_at = $3::bigint, progress_percent = $4::double precision,
           progress_message = $5::text, progress_at = $6::bigint ${HEARTBEAT_GUARD}`,
        [params.assignmentId, params.replicaId, params.leaseExpiresAt, p.percent, p.message, p.at]);
    if (!row) return written<HeartbeatResult>({ ok: false, assignment: await getAssignment(tx, params.assignmentId) });
    return written<HeartbeatResult>({ ok: true, cancelRequested: row.task_cancel_requested_at !== null, assignment: assignmentFromRow(row) });
  };
}

/** Guarded: live, held by the replica, and naming no other remote task yet (store.ts). */
export function setRemote(params: { assignmentId: string; replicaId: string; remoteTaskId: string; remoteContextId: string | null }): WriteOp<boolean> {
  return async (tx) => {
    const rows = await run(tx,
      `UPDATE assignments SET remote_task_id = $3::text, remote_context_id = $4::text
       WHERE id = $1::text AND replica_id = $2::text AND status IN ${LIVE} AND (remote_task_id IS NULL OR remote_task_id = $3::text)
       RETURNING id`,
      [params.assignmentId, params.replicaId, params.remoteTaskId, params.remoteContextId]);
    return written(rows.length > 0);
  };
}

export async function listRemoteAttempts(db: Queryable, taskId: string): Promise<RemoteAttempt[]> {
  const rows = await run(db,
    `SELECT id, attempt, remote_task_id, remote_context_id FROM assignments
     WHERE task_id = $1::text AND remote_task_id IS NOT NULL ORDER BY attempt`, [taskId]);
  return rows.map((row) => ({
    assignmentId: String(row.id), attempt: Number(row.attempt), remoteTaskId: String(row.remote_task_id),
    remoteContextId: row.remote_context_id === null ? null : String(row.remote_context_id),
  }));
}

/**
 * byStatus counts the agent's tasks: those addressed to it by name, plus capability-routed
 * tasks whose most recent attempt ran on it (an addressed task can only ever run on its
 * agent, so nothing is counted twice). Attempt counts cover the retained history; dispatch
 * failures are not counted as failed attempts, as the state machine does not count them.
 */
export async function agentStats(db: Queryable, params: { agent: string; sample: number }): Promise<AgentStats> {
  const [addressed, routed, durations, outcomes] = await Promise.all([
    run(db, 'SELECT status, count(*) AS n FROM tasks WHERE agent = $1::text GROUP BY status', [params.agent]),
    run(db,
      `SELECT t.status AS status, count(*) AS n
       FROM (SELECT DISTINCT task_id FROM assignments WHERE agent = $1::text) mine
       JOIN tasks t ON t.id = mine.task_id
       WHERE t.agent IS NULL
         AND (SELECT a.agent FROM assignments a WHERE a.task_id = t.id ORDER BY a.seq DESC LIMIT 1) = $1::text
       GROUP BY t.status`,
      [params.agent]),
    run(db,
      `SELECT finished_at - started_at AS d FROM assignments
       WHERE agent = $1::text AND status = 'completed' AND started_at IS NOT NULL
       ORDER BY finished_at DESC, seq DESC LIMIT $2::integer`,
      [params.agent, Math.max(0, Math.floor(params.sample))]),
    run(db,
      `SELECT
         count(*) FILTER (WHERE status = 'completed') AS completed,
         count(*) FILTER (WHERE status IN ('failed', 'timed_out', 'lost') AND counted) AS failed
       FROM assignments WHERE agent = $1::text`,
      [params.agent]),
  ]);
  return {
    byStatus: addStatusCounts(addStatusCounts(zeroStatusCounts(), addressed), routed),
    recentDurationsMs: durations.map((r) => Number(r.d)),
    attemptsCompleted: Number(outcomes[0]?.completed ?? 0),
    attemptsFailed: Number(outcomes[0]?.failed ?? 0),
  };
}
