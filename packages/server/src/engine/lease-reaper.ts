// The lease reaper ends attempts that stopped being healthy: a lapsed lease (the worker
// stopped heartbeating) makes the attempt `lost`, a passed deadline makes it `timed_out`,
// and a cancellation whose grace period ran out ends the task `cancelled`. It also declares
// replicas lost when they have not been seen for `replicaTtlMs`, which loses their live
// attempts at once instead of waiting for each lease. One periodic sweep, indexed queries,
// no per-task timers. Decisions are core's (decideExpiry, decideReplicaLost). Retry
// policies come from the cached agent registry, not a store read per expired attempt.

import { decideExpiry, decideReplicaLost } from '../core/task-machine.ts';
import type { Transition } from '../core/types.ts';
import { announce, commit, type EngineContext } from './context.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { ReplicaLiveness } from './replica-liveness.ts';
import { toIso } from './time.ts';

const BATCH = 500;

export class LeaseReaper {
  #ctx: EngineContext;
  #liveness: ReplicaLiveness;
  #registry: AgentRegistry;

  constructor(params: { ctx: EngineContext; liveness: ReplicaLiveness; registry: AgentRegistry }) {
    this.#ctx = params.ctx;
    this.#liveness = params.liveness;
    this.#registry = params.registry;
  }

  /** One sweep. Returns how many attempts and replicas it ended. */
  async sweep(): Promise<{ attempts: number; replicas: number }> {
    const attempts = await this.#expireAttempts();
    const replicas = await this.#loseStaleReplicas();
    return { attempts, replicas };
  }

  async #expireAttempts(): Promise<number> {
    const { store, config } = this.#ctx;
    let ended = 0;
    // Bounded: a backlog larger than a few batches is finished on the next sweep.
    for (let round = 0; round < 10; round++) {
      const now = this.#ctx.now();
      const due = await store.assignmentListDue({ now, cancelGraceMs: config.cancelGraceMs, limit: BATCH });
      const transitions: Transition[] = [];
      for (const { task, assignment } of due) {
        const policy = await this.#retryPolicy(assignment.agent);
        const t = decideExpiry({ task, assignment, now, cancelGraceMs: config.cancelGraceMs, policy, random: this.#ctx.random() });
        if (t) transitions.push(t);
      }
      const results = await commit(this.#ctx, transitions);
      ended += results.filter((r) => r.ok).length;
      if (due.length < BATCH) break;
    }
    return ended;
  }

  async #loseStaleReplicas(): Promise<number> {
    const { store, config } = this.#ctx;
    await this.#liveness.flush();
    const now = this.#ctx.now();
    const stale = await store.replicaListStale({ seenBefore: now - config.replicaTtlMs });
    let lost = 0;
    for (const replica of stale) {
      const { changed, events } = await store.replicaSetStatus({
        id: replica.id, from: ['live', 'draining'], to: 'lost',
        event: { type: 'replica.lost', taskId: null, agent: replica.agent, replicaId: replica.id, assignmentId: null, data: { reason: 'not_seen', lastSeenAt: toIso(replica.lastSeenAt) } },
      });
      if (!changed) continue;
      announce(this.#ctx, events);
      lost++;
      await loseReplicaAssignments(this.#ctx, this.#registry, replica.id, `not seen for ${config.replicaTtlMs} ms`);
    }
    return lost;
  }

  async #retryPolicy(agent: string) {
    return retryPolicyFor(this.#ctx, (await this.#registry.get(agent)) ?? null);
  }
}

/** Ends every live attempt of a replica that vanished or left; the tasks retry elsewhere. */
export async function loseReplicaAssignments(ctx: EngineContext, registry: AgentRegistry, replicaId: string, reason: string): Promise<number> {
  const held = await ctx.store.assignmentListByReplica({ replicaId });
  const now = ctx.now();
  const transitions: Transition[] = [];
  for (const { task, assignment } of held) {
    const policy = retryPolicyFor(ctx, (await registry.get(assignment.agent)) ?? null);
    const t = decideReplicaLost({ task, assignment, now, policy, random: ctx.random(), reason });
    if (t) transitions.push(t);
  }
  const results = await commit(ctx, transitions);
  return results.filter((r) => r.ok).length;
}

export function retryPolicyFor(ctx: EngineContext, agent: { retryBaseDelayMs: number | null; retryMaxDelayMs: number | null } | null) {
  return {
    baseDelayMs: agent?.retryBaseDelayMs ?? ctx.config.retry.baseDelayMs,
    maxDelayMs: agent?.retryMaxDelayMs ?? ctx.config.retry.maxDelayMs,
  };
}
