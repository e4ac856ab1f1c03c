// What every engine component shares: the store, settings, clock, ids, the in-process
// event bus, and the one path by which decided transitions are written and announced.

import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import type { ServerConfig } from '../config/config.ts';
import type { EventRecord, Millis, Transition, TransitionResult } from '../core/types.ts';
import type { Store } from '../store/store.ts';
import type { EventBus } from './event-bus.ts';
import type { LiveAttempts } from './live-attempts.ts';

/** Why the dispatcher is woken: work may be pending, or only capacity was freed. */
export type WakeReason = 'work' | 'view' | 'capacity';

export interface EngineContext {
  store: Store;
  config: ServerConfig;
  log: Logger;
  bus: EventBus;
  now(): Millis;
  random(): number;
  newId(): string;
  /**
   * Ask the dispatcher for a pass soon (coalesced). Wired once the dispatcher exists.
   * `capacity`: only slots were freed, nothing new is pending; `view`: agents or waiting
   * replicas changed (see Dispatcher.wake).
   */
  wakeDispatcher(reason?: WakeReason): void;
  /**
   * Look soon at these tasks (coalesced): any that waits for children that have all ended is
   * resumed (engine/resumer.ts). Wired once the resumer exists.
   */
  resumeWaiting(taskIds: Iterable<string>): void;
  /**
   * Look soon at the blocked dependents of these tasks, which ended (engine/unblocker.ts):
   * each is unblocked or failed once its dependencies say so. Wired once the unblocker exists.
   */
  unblockDependents(taskIds: Iterable<string>): void;
  /** The live attempts this node dispatched (a hint for deciding reports without reads). */
  attempts: LiveAttempts;
}

export function systemClock(): Pick<EngineContext, 'now' | 'random' | 'newId'> {
  return { now: () => Date.now(), random: () => Math.random(), newId: () => uuidv7() };
}

/**
 * Hands committed events to live listeners. With a multi-node store the event relay does
 * that for every node's events, in sequence order, so the writer publishes nothing itself
 * (publishing locally too would deliver an event twice, or out of order with other nodes').
 */
export function announce(ctx: EngineContext, events: readonly EventRecord[]): void {
  if (events.length > 0 && !ctx.store.capabilities.crossNodeNotify) ctx.bus.publish(events);
}

/**
 * Writes transitions, then announces what changed: their events go to live subscribers
 * (only after the commit, so nobody hears of a change that could still roll back), the
 * dispatcher is woken when one of them says so (a slot freed, a task pending again), and the
 * parents of tasks that ended are looked at (one may be waiting for them).
 */
export async function commit(ctx: EngineContext, transitions: Transition[]): Promise<TransitionResult[]> {
  if (transitions.length === 0) return [];
  const results = await ctx.store.taskTransition({ transitions });
  let wake: WakeReason | null = null;
  let parents: Set<string> | null = null;
  let ended: Set<string> | null = null;
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (!result.ok) continue;
    announce(ctx, result.events);
    const t = transitions[i]!;
    ctx.attempts.applied(t);
    // A child ended: its parent may be waiting for it (and for nothing else any more).
    if (t.endsTask && t.parentId !== null) (parents ??= new Set()).add(t.parentId);
    // A dependency ended: its dependents may be ready. Only a task marked as having some is
    // looked at, so one without dependents costs nothing here. The store reads the mark back
    // with the ending write (result.hasDependents): the head this was decided from may predate
    // it (a dependent submitted while the task ran); the sweep covers a look that was lost.
    if (t.endsTask && (t.hasDependents === true || result.hasDependents === true)) (ended ??= new Set()).add(t.taskId);
    // A concurrency key given back can unblock a pending task: that is work, not only capacity.
    if (t.queuesTask || (t.slotRelease !== undefined && t.slotRelease.concurrencyKey !== null)) wake = 'work';
    else if (t.wakesDispatcher) wake ??= 'capacity';
  }
  if (wake !== null) ctx.wakeDispatcher(wake);
  if (parents !== null) ctx.resumeWaiting(parents);
  if (ended !== null) ctx.unblockDependents(ended);
  return results;
}
