// Cached results at submit (issue 16, core/result-cache.ts, docs/caching.md): only a spec
// with a `cacheKey` comes here, so a plain submit costs nothing (no read, no column checked).

import type { TaskSpec } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import type { Principal } from '../core/permissions.ts';
import { cacheScopeOf, cachedCopy, DEFAULT_CACHE_TTL_MS, isCacheRunOpen } from '../core/result-cache.ts';
import type { Millis, NewTask, TaskRecord } from '../core/types.ts';
import type { EngineContext } from './context.ts';

/**
 * The task as it will be created: with its cache key and scope (a miss: it runs, and a
 * concurrent submit of the key shares it), or completed from a result finished within the
 * TTL (a hit: it never runs). One indexed read per cached spec.
 */
export async function withCachedResult(ctx: EngineContext, principal: Principal, spec: TaskSpec, task: NewTask, now: Millis): Promise<NewTask> {
  if (spec.cacheKey === undefined) {
    if (spec.cacheTtlMs !== undefined) throw new FlotillaError('VALIDATION_FAILED', '"cacheTtlMs" needs a "cacheKey"');
    return task;
  }
  // The cache is per agent: a capability-routed task has none until it runs.
  if (task.agent === null) throw new FlotillaError('VALIDATION_FAILED', 'a task with a "cacheKey" must name its "agent" (results are cached per agent)');
  const keyed: NewTask = { ...task, cacheKey: spec.cacheKey, cacheScope: cacheScopeOf(principal, task) };
  const source = await ctx.store.taskCacheLookup({
    agent: task.agent, cacheKey: spec.cacheKey, scope: keyed.cacheScope!, finishedAfter: now - (spec.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS),
  });
  return source === null ? keyed : cachedCopy(keyed, source, now);
}

/**
 * A failed run of a cached key requeued while another run of the key is open would be a
 * second open run (the stores' unique index refuses it): 409, naming the open one, whose
 * result the caller can share by submitting the key. (A requeue racing a submit past this
 * read is refused by the index itself, which the stores answer as a 409: namingOpenRun.)
 */
export async function refuseSecondOpenRun(ctx: EngineContext, task: TaskRecord): Promise<void> {
  if (task.cacheKey == null || task.cachedFrom != null || task.agent === null || task.status !== 'failed') return;
  const open = await ctx.store.taskCacheOpenRun({ agent: task.agent, cacheKey: task.cacheKey, scope: task.cacheScope ?? '', parentId: task.parentId });
  if (open !== null && open.id !== task.id) {
    throw new FlotillaError('INVALID_TRANSITION', `task ${open.id} is an open run of cache key "${task.cacheKey}"; submit the key to share it instead of requeueing ${task.id}`, { openRun: open.id });
  }
}

/**
 * Rethrows a requeue's error; the stores' 409 for a run that became open after the check
 * (a submit of the key in between) becomes the same 409 as the check's, naming that run.
 */
export async function namingOpenRun(ctx: EngineContext, id: string, err: unknown): Promise<never> {
  if (isCacheRunOpen(err)) {
    const task = await ctx.store.taskGet({ id });
    if (task !== null) await refuseSecondOpenRun(ctx, task);
  }
  throw err;
}
