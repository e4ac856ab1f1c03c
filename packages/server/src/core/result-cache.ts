// Cached results (issue 16, docs/caching.md): a submit with a `cacheKey` is answered from a
// completed task with the same key, agent and cache scope that finished within `cacheTtlMs`,
// as a new task born completed (`cachedFrom`), or shares a run of that key still open. Pure.
//
// Invariants:
// - A cache hit is a new task (own id, idempotency key, parent, tree) whose result is a copy:
//   it never ran (no dispatch, no attempt), and it is never the source of another hit (its
//   finishedAt is not the result's age).
// - A hit never returns what the submitter could not read: the scope is the owner of the
//   tree the submitter sees (`owner:<id>`), or, for a token bound to one tree, that tree.
// - At most one open run (not finished, not a copy) per (agent, cacheKey, cacheScope, parent):
//   the stores hold a unique index on it, so racing submits on any nodes share one run. Per
//   parent: a shared run is always the submitter's parent's child (or, for a root submit, a
//   root task), so a parent never waits for a task that is not its child.
// - A failed or cancelled run is not a source: only `completed` ones are.

import type { Millis, NewEvent, NewTask, TaskRecord } from './types.ts';
import type { Principal } from './permissions.ts';
import { FlotillaError } from './errors.ts';

/** The TTL of a cached result when a submit gives a cacheKey without cacheTtlMs. */
export const DEFAULT_CACHE_TTL_MS = 3_600_000;

/** Whose cache a task is in (see the invariants). */
export function cacheScopeOf(principal: Principal, task: Pick<NewTask, 'rootId' | 'ownerId'>): string {
  return principal.scope?.root ? `tree:${task.rootId}` : `owner:${task.ownerId ?? principal.id}`;
}

/** The new task a cache hit creates: completed at once with the source's result, having never run. */
export function cachedCopy(task: NewTask, source: TaskRecord, now: Millis): NewTask {
  return { ...task, status: 'completed', result: source.result, finishedAt: now, updatedAt: now, cachedFrom: source.id, slaCheckAt: null };
}

/** Its events: created, then completed from the cache (naming the source), in one commit. */
export function cachedCopyEvents(task: NewTask, created: NewEvent): NewEvent[] {
  return [created, {
    type: 'task.completed', taskId: task.id, agent: task.agent, replicaId: null, assignmentId: null,
    data: { cachedFrom: task.cachedFrom ?? null },
  }];
}

/** Whether an answered task is another submit's open run that this one shares (not its own task, not an idempotent replay). */
export function sharesRun(mine: NewTask, answered: TaskRecord): boolean {
  if (mine.cacheKey == null || answered.id === mine.id || answered.cacheKey !== mine.cacheKey) return false;
  return mine.idempotencyKey === null || answered.idempotencyKey !== mine.idempotencyKey;
}

/** The `details.reason` of a write refused because its key already has an open run (the stores' unique index, translated). */
export const CACHE_RUN_OPEN = 'cache_run_open';

/**
 * What a store answers when a write would make a second open run of a key (a requeue of a
 * failed run racing a submit of the key past the engine's check): a 409, not the database's
 * constraint error. Nothing of the write is kept.
 */
export function cacheRunOpenError(): FlotillaError {
  return new FlotillaError('INVALID_TRANSITION', 'another run of this cache key is open; submit the key to share it', { reason: CACHE_RUN_OPEN });
}

export function isCacheRunOpen(err: unknown): err is FlotillaError {
  return err instanceof FlotillaError && err.code === 'INVALID_TRANSITION' && (err.details as { reason?: unknown } | undefined)?.reason === CACHE_RUN_OPEN;
}
