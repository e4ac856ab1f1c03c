// PostgreSQL: cached results (issue 16, core/result-cache.ts). The unique index
// tasks_cache_open makes a create of a second open run of a key skip (task-writes.ts); the
// open run is then read here, in the same transaction.

import type { Millis, NewTask, TaskRecord } from '../../core/types.ts';
import { TASK_RECORD_SELECT, taskRecordFromRow } from './rows.ts';
import { run, type Queryable } from './sql.ts';

const OPEN_SQL = `SELECT ${TASK_RECORD_SELECT}, k.id AS for_task FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS k (id, agent, cache_key, cache_scope, parent_id)
  JOIN tasks t ON t.agent = k.agent AND t.cache_key = k.cache_key AND t.cache_scope = k.cache_scope AND coalesce(t.parent_id, '') = coalesce(k.parent_id, '') AND t.cached_from IS NULL AND t.finished_at IS NULL
  JOIN task_payloads p ON p.task_id = t.id`;

// Read Committed: the run that made the insert skip may have finished (committed) between the
// insert and this read, which has a newer snapshot. Then the latest run of the key (open
// first) is the one shared: the submit gets its outcome, as it would have a moment later.
const OPEN_OR_JUST_FINISHED_SQL = `SELECT DISTINCT ON (k.id) ${TASK_RECORD_SELECT}, k.id AS for_task FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS k (id, agent, cache_key, cache_scope, parent_id)
  JOIN tasks t ON t.agent = k.agent AND t.cache_key = k.cache_key AND t.cache_scope = k.cache_scope AND coalesce(t.parent_id, '') = coalesce(k.parent_id, '') AND t.cached_from IS NULL
  JOIN task_payloads p ON p.task_id = t.id
  ORDER BY k.id, t.finished_at IS NULL DESC, t.finished_at DESC`;

/**
 * The open runs of these (skipped) tasks' cached work, by the skipped task's id; with
 * `orJustFinished`, a key whose open run finished meanwhile answers that run (see above).
 */
export async function openCacheRuns(tx: Queryable, tasks: ReadonlyArray<Pick<NewTask, 'id' | 'agent' | 'cacheKey' | 'cacheScope' | 'cachedFrom' | 'parentId'>>, options: { orJustFinished?: boolean } = {}): Promise<Map<string, TaskRecord>> {
  const cached = tasks.filter((t) => t.cacheKey != null && t.cachedFrom == null);
  if (cached.length === 0) return new Map();
  const rows = await run(tx, options.orJustFinished === true ? OPEN_OR_JUST_FINISHED_SQL : OPEN_SQL, [cached.map((t) => t.id), cached.map((t) => t.agent), cached.map((t) => t.cacheKey), cached.map((t) => t.cacheScope ?? null), cached.map((t) => t.parentId)]);
  return new Map(rows.map((row) => [String(row.for_task), taskRecordFromRow(row)]));
}

/** The latest completed run (not a copy) of the key finished at or after `finishedAfter`. */
export async function lookupCachedResult(db: Queryable, p: { agent: string; cacheKey: string; scope: string; finishedAfter: Millis }): Promise<TaskRecord | null> {
  const [row] = await run(db, `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
    WHERE t.agent = $1::text AND t.cache_key = $2::text AND t.cache_scope = $3::text AND t.status = 'completed' AND t.cached_from IS NULL
      AND t.finished_at >= $4::bigint
    ORDER BY t.finished_at DESC LIMIT 1`, [p.agent, p.cacheKey, p.scope, p.finishedAfter]);
  return row ? taskRecordFromRow(row) : null;
}
