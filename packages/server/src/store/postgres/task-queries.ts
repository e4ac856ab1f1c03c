// The task read paths that need more than a lookup: the dispatcher's candidate query and the
// filtered, paginated listing. Each is one statement (one round trip), however many queues
// or statuses it covers.

import type { TaskHead, TaskRecord } from '../../core/types.ts';
import type { TaskCandidatesParams, TaskListParams } from '../store.ts';
import { TASK_HEAD_COLUMNS, TASK_RECORD_SELECT, selectList, slaDeadlineColumn, taskHeadFromRow, taskRecordFromRow } from './rows.ts';
import { Params, run, type Queryable } from './sql.ts';
import { decodeCursor, encodeCursor } from '../list-cursor.ts';

const HEAD_SELECT = selectList('t', TASK_HEAD_COLUMNS);
const HEAD_OUT = TASK_HEAD_COLUMNS.map((c) => `c.${c}`).join(', ');

type Range = 'all' | 'same_priority_after' | 'lower_priority';

/** One queue's seek: `target` selects the queue (an agent, or agent IS NULL). */
function seek(target: string, range: Range, p: { now: string; limit: string; priority: string | null; deadline: string | null; seq: string | null }): string {
  const keyset = range === 'all' ? '' : range === 'same_priority_after'
    ? `AND t.priority = ${p.priority} AND (t.sla_deadline, t.seq) > (${p.deadline}, ${p.seq})`
    : `AND t.priority < ${p.priority}`;
  const order = range === 'same_priority_after' ? 't.sla_deadline, t.seq' : 't.priority DESC, t.sla_deadline, t.seq';
  return `SELECT ${HEAD_SELECT} FROM tasks t
      WHERE t.status = 'pending' AND ${target} AND t.run_at <= ${p.now} ${keyset}
      ORDER BY ${order} LIMIT ${p.limit}`;
}

/**
 * The candidate statement. Each queue (one per agent, plus the capability-routed one) is read
 * separately, each an index seek into `tasks_pending_agent_order` that stops after `limit`
 * rows, and the results are merged and cut to `limit`. This never scans the backlog of agents
 * that are not asking: a million pending tasks for a busy agent cost nothing to the query of
 * an idle one. The agents are a parameter (`unnest($1)` joined LATERAL to the seek), so the
 * statement text depends only on the shape (routed queue or not, keyset or not): four
 * prepared statements in all.
 *
 * The keyset position is split into two seeks (the rest of the same priority, then the lower
 * priorities), because a (priority DESC, sla_deadline ASC, seq ASC) position is not one
 * contiguous range of a row comparison; one seek with `priority < p OR (priority = p AND ...)`
 * would walk past every task of priority p already seen. Within the priority it is one:
 * `(sla_deadline, seq) > (d, s)`, an index condition.
 *
 * No FOR UPDATE SKIP LOCKED here: this is a plain read (locking would turn every candidate
 * into a row write), and a candidate another process is claiming at this moment is reported
 * by the claim itself, at once, as conflict 'task' (see transitions.ts).
 */
export function candidateStatement(params: TaskCandidatesParams): { text: string; values: unknown[] } {
  const p = new Params();
  const agents = p.add([...new Set(params.agents)], 'text[]');
  const now = p.add(params.now, 'bigint');
  const limit = p.add(Math.max(0, Math.floor(params.limit)), 'integer');
  const after = params.after ?? null;
  const priority = after === null ? null : p.add(after.priority, 'integer');
  const deadline = after === null ? null : p.add(slaDeadlineColumn(after.slaDeadline), 'bigint');
  const seq = after === null ? null : p.add(after.seq, 'bigint');
  const ranges: Range[] = after === null ? ['all'] : ['same_priority_after', 'lower_priority'];
  const parts: string[] = [];
  for (const range of ranges) {
    const bound = { now, limit, priority, deadline, seq };
    parts.push(`SELECT s.* FROM unnest(${agents}) AS q (agent)
    CROSS JOIN LATERAL (${seek('t.agent = q.agent', range, bound)}) s`);
    if (params.includeCapabilityRouted) parts.push(`SELECT r.* FROM (${seek('t.agent IS NULL', range, bound)}) r`);
  }
  const text = `SELECT ${HEAD_OUT} FROM (
  ${parts.map((part) => `(${part})`).join('\n  UNION ALL\n  ')}
) c
ORDER BY c.priority DESC, c.sla_deadline, c.seq LIMIT ${limit}`;
  return { text, values: p.values };
}

/** Pending tasks whose runAt has come, in dispatch order (priority desc, SLA deadline asc, seq asc). */
export async function taskCandidates(db: Queryable, params: TaskCandidatesParams): Promise<TaskHead[]> {
  if (params.limit <= 0) return [];
  if (params.agents.length === 0 && !params.includeCapabilityRouted) return [];
  const stmt = candidateStatement(params);
  return (await run(db, stmt.text, stmt.values)).map((row) => taskHeadFromRow(row));
}

// -- listing ----------------------------------------------------------------------------

/**
 * Newest first (or oldest first). Fetches one row more than asked to know whether another page exists. Several
 * statuses are read as one index-ordered seek per status (tasks_status_seq, LATERAL over
 * `unnest($statuses)`), merged in the statement: `status = ANY(...)` would make PostgreSQL 15
 * collect every matching task and sort them all to return one page, which is ruinous for a
 * status like `completed`.
 */
export async function taskList(db: Queryable, params: TaskListParams): Promise<{ items: TaskRecord[]; nextCursor: string | null }> {
  const p = new Params();
  const where: string[] = [];
  const limit = Math.max(0, Math.floor(params.limit));
  // An empty status list is no filter, like an absent one.
  const statuses = [...new Set(params.statuses ?? [])];
  const statusParam = statuses.length > 0 ? p.add(statuses, 'text[]') : null;
  if (params.agent !== undefined) where.push(`t.agent = ${p.add(params.agent, 'text')}`);
  if (params.priority !== undefined) where.push(`t.priority = ${p.add(params.priority, 'integer')}`);
  if (params.parentId !== undefined) where.push(`t.parent_id = ${p.add(params.parentId, 'text')}`);
  if (params.rootId !== undefined) where.push(`t.root_id = ${p.add(params.rootId, 'text')}`);
  if (params.depth !== undefined) where.push(`t.depth = ${p.add(params.depth, 'integer')}`);
  if (params.ownerId !== undefined) where.push(`t.owner_id = ${p.add(params.ownerId, 'text')}`);
  // Literals, not parameters: the partial indexes tasks_sla_* are chosen only for a condition that implies their WHERE.
  if (params.slaState === 'violated') where.push(`t.sla_state = 'violated'`);
  if (params.slaState === 'at_risk') where.push(`t.sla_state = 'at_risk' AND t.status NOT IN ('completed', 'failed', 'cancelled')`);
  const oldestFirst = params.oldestFirst === true;
  const order = oldestFirst ? 'ASC' : 'DESC';
  if (params.cursor) where.push(`t.seq ${oldestFirst ? '>' : '<'} ${p.add(decodeCursor(params.cursor), 'bigint')}`);
  const fetch = p.add(limit + 1, 'integer');
  let text: string;
  if (statusParam === null) {
    text = `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY t.seq ${order} LIMIT ${fetch}`;
  } else {
    const inner = ['t.status = s.status', ...where];
    text = `SELECT x.* FROM unnest(${statusParam}) AS s (status)
      CROSS JOIN LATERAL (
        SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
        WHERE ${inner.join(' AND ')}
        ORDER BY t.seq ${order} LIMIT ${fetch}
      ) x
      ORDER BY x.seq ${order} LIMIT ${fetch}`;
  }
  const rows = await run(db, text, p.values);
  const items = rows.slice(0, limit).map(taskRecordFromRow);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.seq) : null };
}
