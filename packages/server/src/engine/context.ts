// What every engine component shares: the store, settings, clock, ids, the in-process
// event bus, and the one path by which decided transitions are written and announced.

import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import type { ServerConfig } from '../config/config.ts';
import type { EventRecord, Millis, Transition, TransitionResult } from '../core/types.ts';
import type { Store } from '../store/store.ts';
import type { EventBus } from './event-bus.ts';

export interface EngineContext {
  store: Store;
  config: ServerConfig;
  log: Logger;
  bus: EventBus;
  now(): Millis;
  random(): number;
  newId(): string;
  /** Ask the dispatcher for a pass soon (coalesced). Wired once the dispatcher exists. */
  wakeDispatcher(): void;
}

export function systemClock(): Pick<EngineContext, 'now' | 'random' | 'newId'> {
  return { now: () => Date.now(), random: () => Math.random(), newId: () => uuidv7() };
}

/**
 * Writes transitions, then announces what changed: their events go to live subscribers
 * (only after the commit, so nobody hears of a change that could still roll back), and
 * the dispatcher is woken when a slot was freed or a task became pending again.
 */
/**
 * Hands committed events to live listeners. With a multi-node store the event relay does
 * that for every node's events, in sequence order, so the writer publishes nothing itself
 * (publishing locally too would deliver an event twice, or out of order with other nodes').
 */
export function announce(ctx: EngineContext, events: readonly EventRecord[]): void {
  if (events.length > 0 && !ctx.store.capabilities.crossNodeNotify) ctx.bus.publish(events);
}

export async function commit(ctx: EngineContext, transitions: Transition[]): Promise<TransitionResult[]> {
  if (transitions.length === 0) return [];
  const results = await ctx.store.taskTransition({ transitions });
  let wake = false;
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (!result.ok) continue;
    announce(ctx, result.events);
    const t = transitions[i]!;
    if (t.slotRelease || t.set.status === 'pending') wake = true;
  }
  if (wake) ctx.wakeDispatcher();
  return results;
}
