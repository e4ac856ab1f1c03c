// The task read paths that need more than one statement: the dispatcher's candidate query
// and the filtered, paginated listing.

import type { TaskHead, TaskRecord } from '../../core/types.ts';
import type { TaskCandidatesParams, TaskListParams } from '../store.ts';
import { compareDispatchOrder } from '../../core/routing.ts';
import {
  TASK_HEAD_COLUMNS, TASK_RECORD_SELECT, slaDeadlineColumn, taskHeadFromRow, taskRecordFromRow, type Params, type Row,
} from './rows.ts';
import type { StatementCache } from './statement-cache.ts';
import { decodeCursor, encodeCursor } from '../list-cursor.ts';

const HEAD_SELECT = TASK_HEAD_COLUMNS.join(', ');

type Queue = { agent: string } | { capabilityRouted: true };
type Range = 'all' | 'same_deadline_after' | 'later_deadline' | 'lower_priority';

function candidateSql(queue: Queue, range: Range): string {
  const target = 'agent' in queue ? 'agent = :agent' : 'agent IS NULL';
  const order = { all: 'priority DESC, sla_deadline, seq', same_deadline_after: 'seq', later_deadline: 'sla_deadline, seq', lower_priority: 'priority DESC, sla_deadline, seq' }[range];
  const keyset = {
    all: '',
    same_deadline_after: 'AND priority = :priority AND sla_deadline = :deadline AND seq > :seq',
    later_deadline: 'AND priority = :priority AND sla_deadline > :deadline',
    lower_priority: 'AND priority < :priority',
  }[range];
  return `SELECT ${HEAD_SELECT} FROM tasks
    WHERE status = 'pending' AND ${target} AND run_at <= :now ${keyset}
    ORDER BY ${order} LIMIT :limit`;
}

/**
 * Each queue (one per agent, plus the capability-routed one) is read separately, each an
 * index seek into `tasks_pending_agent_order` that stops after `limit` rows, and the
 * results are merged. This never scans the backlog of agents that are not asking: a
 * million pending tasks for a busy agent cost nothing to the query of an idle one.
 * The keyset position is split into three seeks (the rest of the same priority and deadline,
 * the later deadlines of that priority, then the lower priorities) because a (priority DESC,
 * sla_deadline ASC, seq ASC) position is not one contiguous range condition SQLite can seek
 * to. Not a row value `(sla_deadline, seq) > (d, s)`: SQLite seeks on its first term only and
 * filters the second, so a page would walk again past every task of the same deadline already
 * seen, and every task without an SLA has the same one (NO_SLA_DEADLINE).
 */
export function taskCandidates(cache: StatementCache, params: TaskCandidatesParams): TaskHead[] {
  if (params.limit <= 0) return [];
  const queues: Queue[] = [...new Set(params.agents)].map((agent) => ({ agent }));
  if (params.includeCapabilityRouted) queues.push({ capabilityRouted: true });
  const after = params.after ?? null;
  const found: TaskHead[] = [];
  for (const queue of queues) {
    const base: Params = { now: params.now, limit: params.limit };
    if ('agent' in queue) base.agent = queue.agent;
    if (after === null) {
      found.push(...read(cache, candidateSql(queue, 'all'), base));
      continue;
    }
    const position = { priority: after.priority, deadline: slaDeadlineColumn(after.slaDeadline), seq: after.seq };
    let got = 0;
    for (const [range, keys] of [['same_deadline_after', ['priority', 'deadline', 'seq']], ['later_deadline', ['priority', 'deadline']], ['lower_priority', ['priority']]] as const) {
      if (got >= params.limit) break;
      const bound: Params = { ...base, limit: params.limit - got };
      for (const key of keys) bound[key] = position[key];
      const rows = read(cache, candidateSql(queue, range), bound);
      found.push(...rows);
      got += rows.length;
    }
  }
  if (queues.length > 1) found.sort(compareDispatchOrder);
  return found.slice(0, params.limit);
}

function read(cache: StatementCache, sql: string, params: Params): TaskHead[] {
  return cache.sql(sql).all(params).map((row) => taskHeadFromRow(row));
}

// -- listing ----------------------------------------------------------------------------

/**
 * Newest first (or oldest first). Fetches one row more than asked to know whether another page exists.
 * Several statuses are read as one index-ordered seek per status (tasks_status_seq), merged
 * here: an IN list would make SQLite collect every matching task and sort them all to
 * return one page, which is ruinous for a status like `completed`.
 */
export function taskList(cache: StatementCache, params: TaskListParams): { items: TaskRecord[]; nextCursor: string | null } {
  const where: string[] = [];
  const args: Params = {};
  if (params.agent !== undefined) {
    where.push('t.agent = :agent');
    args.agent = params.agent;
  }
  if (params.priority !== undefined) {
    where.push('t.priority = :priority');
    args.priority = params.priority;
  }
  if (params.parentId !== undefined) {
    where.push('t.parent_id = :parent_id');
    args.parent_id = params.parentId;
  }
  if (params.rootId !== undefined) {
    where.push('t.root_id = :root_id');
    args.root_id = params.rootId;
  }
  if (params.depth !== undefined) {
    where.push('t.depth = :depth');
    args.depth = params.depth;
  }
  if (params.ownerId !== undefined) {
    where.push('t.owner_id = :owner_id');
    args.owner_id = params.ownerId;
  }
  // Literals, not parameters: SQLite uses a partial index only for a condition it can see implies its WHERE.
  if (params.slaState === 'violated') where.push(`t.sla_state = 'violated'`);
  if (params.slaState === 'at_risk') where.push(`t.sla_state = 'at_risk' AND t.status NOT IN ('completed', 'failed', 'cancelled')`);
  const oldestFirst = params.oldestFirst === true;
  if (params.cursor) {
    where.push(oldestFirst ? 't.seq > :position' : 't.seq < :position');
    args.position = decodeCursor(params.cursor);
  }
  const limit = Math.max(0, Math.floor(params.limit));
  args.limit = limit + 1;
  // An empty status list is no filter, like an absent one.
  const statuses = [...new Set(params.statuses ?? [])];
  let rows: Row[];
  if (statuses.length === 0) {
    rows = cache.sql(listSql(where, oldestFirst)).all(args);
  } else {
    const sql = listSql(['t.status = :status', ...where], oldestFirst);
    rows = statuses.flatMap((status) => cache.sql(sql).all({ ...args, status }));
    const direction = oldestFirst ? 1 : -1;
    if (statuses.length > 1) rows.sort((a, b) => direction * (Number(a.seq) - Number(b.seq)));
  }
  const items = rows.slice(0, limit).map(taskRecordFromRow);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.seq) : null };
}

function listSql(where: readonly string[], oldestFirst: boolean): string {
  return `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
    ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY t.seq ${oldestFirst ? 'ASC' : 'DESC'} LIMIT :limit`;
}
