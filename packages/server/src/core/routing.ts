// Routing: which replica runs which pending task. Pure; the dispatcher feeds it the pending
// tasks in dispatch order (compareDispatchOrder: priority high→low, then the earlier SLA
// deadline, then FIFO) and the replicas that can take work right now.
//
// For each task, in the order given:
//   1. eligible replicas: of the named agent, or of any agent whose capabilities contain all
//      the required ones; with a free slot;
//   2. a pinned replica (`task.replica`) is a hard constraint; a site is a soft preference:
//      replicas in that site are chosen when one is eligible, any other otherwise;
//   3. the task's concurrency key must be under its limit;
//   4. among the rest: healthy before degraded (an unhealthy replica is never a candidate),
//      then least loaded (inFlight / maxConcurrency), then most reliable, then least
//      recently assigned.
// A task no replica can take now is skipped, not blocking the ones behind it: a lower-
// priority task for an idle agent should not wait behind a high-priority one for a busy agent.

import type { Millis, ReplicaHealth, TaskHead } from './types.ts';

export interface ReplicaCandidate {
  id: string;
  agent: string;
  site: string | null;
  maxConcurrency: number;
  inFlight: number;
  /** Slots this replica accepts in this pass (what it asked for, bounded by its free capacity). */
  offered: number;
  completed: number;
  failed: number;
  lastAssignedAt: Millis | null;
  /** An unhealthy replica is never offered work (the dispatcher leaves it out); a degraded one only after the healthy ones. */
  health: ReplicaHealth;
}

export interface AgentRoute {
  name: string;
  capabilities: readonly string[];
  concurrencyLimits: Readonly<Record<string, number>>;
}

export interface RoutingInput {
  tasks: readonly TaskHead[];
  replicas: readonly ReplicaCandidate[];
  agents: ReadonlyMap<string, AgentRoute>;
  /** Live assignments per concurrency key right now. */
  keyInFlight: ReadonlyMap<string, number>;
  /** Server-wide limits, used when the agent declares none for a key. */
  serverKeyLimits: Readonly<Record<string, number>>;
  /**
   * Per task id, agents whose replicas must not take it (a tool domain of theirs is down and
   * the task does not allow running degraded: core/tool-domains.ts). Absent: none.
   */
  excluded?: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface Route {
  task: TaskHead;
  replicaId: string;
  agent: string;
  concurrencyLimit: number | null;
}

/** A task's place in the dispatch order (the claim index's columns after the agent). */
export type DispatchPosition = Pick<TaskHead, 'priority' | 'slaDeadline' | 'seq'>;

/**
 * Dispatch order: priority high to low; within a priority the earlier SLA deadline first, and
 * tasks without one after every task with one; then submission order. With the band policies
 * every task of a priority gets the same SLA, so its deadlines follow submission and FIFO
 * holds; only a task with a deadline or slaMs of its own moves within its priority.
 */
export function compareDispatchOrder(a: DispatchPosition, b: DispatchPosition): number {
  return b.priority - a.priority || (a.slaDeadline ?? Infinity) - (b.slaDeadline ?? Infinity) || a.seq - b.seq;
}

export function agentServes(agent: Pick<AgentRoute, 'name' | 'capabilities'>, task: Pick<TaskHead, 'agent' | 'capabilities'>): boolean {
  if (task.agent !== null) return agent.name === task.agent;
  return task.capabilities.every((c) => agent.capabilities.includes(c));
}

/** Own properties only: a key named `constructor` or `__proto__` is a key like any other. */
export function keyLimit(agent: AgentRoute | undefined, serverKeyLimits: Readonly<Record<string, number>>, key: string): number | null {
  if (agent && Object.hasOwn(agent.concurrencyLimits, key)) return agent.concurrencyLimits[key]!;
  if (Object.hasOwn(serverKeyLimits, key)) return serverKeyLimits[key]!;
  return null;
}

/** Smoothed success rate: a new replica starts at 0.5 rather than at a perfect or a zero score. */
export function reliability(r: Pick<ReplicaCandidate, 'completed' | 'failed'>): number {
  return (r.completed + 1) / (r.completed + r.failed + 2);
}

/** Lower sorts first: healthy before degraded, then least loaded, then most reliable, then least recently assigned. */
export function compareReplicas(a: ReplicaCandidate, b: ReplicaCandidate): number {
  const health = Number(a.health !== 'healthy') - Number(b.health !== 'healthy');
  if (health !== 0) return health;
  const load = a.inFlight / a.maxConcurrency - b.inFlight / b.maxConcurrency;
  if (load !== 0) return load;
  const rel = reliability(b) - reliability(a);
  if (rel !== 0) return rel;
  return (a.lastAssignedAt ?? -Infinity) - (b.lastAssignedAt ?? -Infinity);
}

export function planRoutes(input: RoutingInput): Route[] {
  // Working copies: each route taken changes the load seen by the next decision.
  const replicas = input.replicas.filter((r) => r.offered > 0).map((r) => ({ ...r }));
  const keyInFlight = new Map(input.keyInFlight);
  const routes: Route[] = [];
  for (const task of input.tasks) {
    if (replicas.length === 0) break;
    const excluded = input.excluded?.get(task.id);
    let eligible = replicas.filter((r) => {
      if (r.offered <= 0) return false;
      if (task.replica !== null && r.id !== task.replica) return false;
      if (excluded !== undefined && excluded.has(r.agent)) return false;
      const agent = input.agents.get(r.agent);
      return agent !== undefined && agentServes(agent, task);
    });
    if (task.concurrencyKey !== null) {
      const key = task.concurrencyKey;
      const used = keyInFlight.get(key) ?? 0;
      eligible = eligible.filter((r) => {
        const limit = keyLimit(input.agents.get(r.agent), input.serverKeyLimits, key);
        return limit === null || used < limit;
      });
    }
    if (eligible.length === 0) continue;
    if (task.site !== null) {
      const inSite = eligible.filter((r) => r.site === task.site);
      if (inSite.length > 0) eligible = inSite;
    }
    eligible.sort(compareReplicas);
    const chosen = eligible[0]!;
    chosen.offered -= 1;
    chosen.inFlight += 1;
    chosen.lastAssignedAt = Number.MAX_SAFE_INTEGER; // just used: last in the LRU order for this pass
    const limit = task.concurrencyKey === null ? null : keyLimit(input.agents.get(chosen.agent), input.serverKeyLimits, task.concurrencyKey);
    if (task.concurrencyKey !== null) keyInFlight.set(task.concurrencyKey, (keyInFlight.get(task.concurrencyKey) ?? 0) + 1);
    routes.push({ task, replicaId: chosen.id, agent: chosen.agent, concurrencyLimit: limit });
  }
  return routes;
}

// -- an operator's assignment (POST /tasks/{id}/assign) --------------------------------------

/** Why nothing can take a task an operator assigns now (409 NOT_ASSIGNABLE, `details.reason`). */
export type AssignRefusalReason =
  | 'not_pending' | 'pinned_elsewhere' | 'agent_does_not_serve' | 'replica_not_live' | 'no_live_replica'
  | 'agent_paused' | 'replica_unhealthy' | 'not_waiting' | 'no_free_slot' | 'concurrency_key_full' | 'replica_gone'
  | 'tool_domain_down'
  | 'rate_limited';

export interface AssignRefusal {
  reason: AssignRefusalReason;
  message: string;
}

export interface AssignInput {
  task: TaskHead;
  /** What the operator named: an agent, a replica (with its record), both or neither. */
  target: { agent: string | null; replica: { id: string; agent: string; status: string } | null };
  /** `pausedAt`: an operator's pause (decision 57): an assign does not overrule it. */
  agents: ReadonlyMap<string, AgentRoute & { pausedAt?: number | null }>;
  /** The live replicas, with their current load. */
  live: readonly Omit<ReplicaCandidate, 'offered'>[];
  /** Replicas with an open lease request on this node, and how many tasks each asks for. */
  waiting: ReadonlyMap<string, number>;
  keyInFlight: ReadonlyMap<string, number>;
  serverKeyLimits: Readonly<Record<string, number>>;
  /** Agents with a tool domain down, and those domains (core/tool-domains.ts); absent: none. */
  gated?: ReadonlyMap<string, readonly string[]>;
  /** The task may run while a tool domain of its agent is down. */
  allowDegraded?: boolean;
}

/**
 * The replicas that could take the task now, narrowed step by step (the target, liveness, an
 * open request, a free slot, the concurrency key); when a step leaves none, the refusal names
 * that step, so an operator learns what to fix. planRoutes then chooses among them.
 */
export function assignCandidates(input: AssignInput): { candidates: ReplicaCandidate[] } | { refusal: AssignRefusal } {
  const { task, target, agents } = input;
  const refuse = (reason: AssignRefusalReason, message: string) => ({ refusal: { reason, message } });
  const serves = (name: string) => {
    const agent = agents.get(name);
    return agent !== undefined && agentServes(agent, task);
  };
  const wanted = task.agent !== null ? `agent "${task.agent}"` : `capabilities [${task.capabilities.join(', ')}]`;
  if (target.replica !== null && task.replica !== null && task.replica !== target.replica.id) {
    return refuse('pinned_elsewhere', `task ${task.id} is pinned to replica ${task.replica}, not ${target.replica.id}`);
  }
  for (const name of [target.agent, target.replica?.agent ?? null]) {
    if (name !== null && !serves(name)) return refuse('agent_does_not_serve', `agent "${name}" does not serve task ${task.id} (it asks for ${wanted})`);
  }
  if (target.replica !== null && target.replica.status !== 'live') {
    return refuse('replica_not_live', `replica ${target.replica.id} is ${target.replica.status}, not live`);
  }
  const pinned = target.replica?.id ?? task.replica;
  const pool = input.live.filter((r) => serves(r.agent) && (target.agent === null || r.agent === target.agent) && (pinned === null || r.id === pinned));
  const which = pinned !== null ? `replica ${pinned}` : target.agent !== null ? `agent "${target.agent}"` : `a replica serving ${wanted}`;
  if (pool.length === 0) {
    const none = pinned !== null ? `replica ${pinned} is not live` : target.agent !== null ? `agent "${target.agent}" has no live replica` : `no live replica serves ${wanted}`;
    return refuse('no_live_replica', none);
  }
  // An operator's pause and a replica's own report of being unhealthy hold for an assign too:
  // resume the agent, or wait for the replica's health, first.
  const unpaused = pool.filter((r) => (agents.get(r.agent)?.pausedAt ?? null) === null);
  if (unpaused.length === 0) return refuse('agent_paused', `${which} belongs to a paused agent; resume it first`);
  // A tool domain down holds too, unless the task allows running degraded (core/tool-domains.ts).
  const gated = input.allowDegraded === true ? undefined : input.gated;
  const working = gated === undefined ? unpaused : unpaused.filter((r) => !gated.has(r.agent));
  if (working.length === 0) {
    const domains = [...new Set(unpaused.flatMap((r) => gated!.get(r.agent) ?? []))].sort();
    return refuse('tool_domain_down', `${which} belongs to an agent whose tool domain ${domains.map((d) => `"${d}"`).join(', ')} is down, and task ${task.id} does not allow running degraded`);
  }
  const healthy = working.filter((r) => r.health !== 'unhealthy');
  if (healthy.length === 0) return refuse('replica_unhealthy', `${which} reports itself unhealthy`);
  const waiting = healthy.filter((r) => input.waiting.has(r.id));
  if (waiting.length === 0) {
    return refuse('not_waiting', `${which} is live but has no open lease request on this server (not connected here, or between two polls)`);
  }
  const free = waiting.map((r) => ({ ...r, offered: Math.min(input.waiting.get(r.id)!, r.maxConcurrency - r.inFlight) })).filter((r) => r.offered > 0);
  if (free.length === 0) return refuse('no_free_slot', `every slot of ${which} is taken`);
  const key = task.concurrencyKey;
  if (key === null) return { candidates: free };
  const used = input.keyInFlight.get(key) ?? 0;
  const underLimit = free.filter((r) => {
    const limit = keyLimit(agents.get(r.agent), input.serverKeyLimits, key);
    return limit === null || used < limit;
  });
  if (underLimit.length === 0) return refuse('concurrency_key_full', `concurrency key "${key}" is at its limit (${used} running)`);
  return { candidates: underLimit };
}
