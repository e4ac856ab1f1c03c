// SQLite: cached results (issue 16, core/result-cache.ts). The writer is single, so the open
// run found here inside the create's write is the one the unique index would also name.

import type { Millis, NewTask, TaskRecord } from '../../core/types.ts';
import { TASK_RECORD_SELECT, taskRecordFromRow } from './rows.ts';
import type { StatementCache } from './statement-cache.ts';

/** The open (unfinished, not copied) run of the task's cached work under the same parent, if any; null for a task without a cacheKey. */
export function openCacheRun(cache: StatementCache, task: Pick<NewTask, 'agent' | 'cacheKey' | 'cacheScope' | 'cachedFrom' | 'parentId'>): TaskRecord | null {
  if (task.cacheKey == null || task.cachedFrom != null) return null;
  const row = cache.sql(`SELECT ${TASK_RECORD_SELECT} FROM tasks t INDEXED BY tasks_cache_open JOIN task_payloads p ON p.task_id = t.id
    WHERE t.agent = ? AND t.cache_key = ? AND t.cache_scope = ? AND coalesce(t.parent_id, '') = ? AND t.cached_from IS NULL AND t.finished_at IS NULL`)
    .get(task.agent, task.cacheKey, task.cacheScope ?? null, task.parentId ?? '');
  return row ? taskRecordFromRow(row) : null;
}

/** The latest completed run (not a copy) of the key finished at or after `finishedAfter`. */
export function lookupCachedResult(cache: StatementCache, p: { agent: string; cacheKey: string; scope: string; finishedAfter: Millis }): TaskRecord | null {
  const row = cache.sql(`SELECT ${TASK_RECORD_SELECT} FROM tasks t INDEXED BY tasks_cache_done JOIN task_payloads p ON p.task_id = t.id
    WHERE t.agent = ? AND t.cache_key = ? AND t.cache_scope = ? AND t.status = 'completed' AND t.cached_from IS NULL AND t.finished_at >= ?
    ORDER BY t.finished_at DESC LIMIT 1`).get(p.agent, p.cacheKey, p.scope, p.finishedAfter);
  return row ? taskRecordFromRow(row) : null;
}
