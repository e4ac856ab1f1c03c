// What an agent is doing, and why a task is not running yet. Pure: the engine reads the
// records (replicas, queue statistics, concurrency keys) and these functions decide.
//
// Agent states (one, in this order of precedence):
//   offline     no live or draining replica: nothing can run its tasks
//   degraded    a tool domain it uses is down (core/tool-domains.ts): only its tasks that
//               allow running degraded are dispatched
//   overloaded  every slot of its live replicas is taken and its oldest due task has waited
//               longer than `pendingAgeMs`, or more than `queueDepth` due tasks wait for it
//   active      work in flight
//   idle        replicas connected, nothing in flight
// Only tasks addressed to the agent by name count towards its queue: a capability-routed task
// may be taken by any of several agents, so it makes none of them overloaded.
//
// Waiting reasons (GET /tasks/:id), for a task that is not running, first match wins:
//   waiting_for_children, waiting_for_input   its status says it
//   dependencies         it is blocked: a task it names in dependsOn has not ended yet
//   scheduled            its runAt (a delay, or a retry's backoff) is still ahead
//   agent_paused         every agent that could run it is paused
//   tool_domain_down     every agent that could run it has a tool domain down, and it does
//                        not allow running degraded
//   no_live_replica      no live replica of such an agent (or its pinned replica is not live)
//   no_healthy_replica   its only live replicas report themselves unhealthy
//   concurrency_key_at_limit   its concurrency key has as many live tasks as its limit
//   all_slots_full       every live replica that could run it is busy
//   queued               it can run: it is behind others, or about to be dispatched

import type { ReplicaRecord, TaskRecord } from './types.ts';
import { agentServes, keyLimit, type AgentRoute } from './routing.ts';

import type { AgentState, WaitingReason } from '@flotilla/sdk';

export type { AgentState, WaitingReason };

export interface OverloadThresholds {
  pendingAgeMs: number;
  queueDepth: number;
}

export interface AgentLoad {
  /** Its replicas that are live or draining (connected). */
  replicas: ReadonlyArray<Pick<ReplicaRecord, 'status' | 'maxConcurrency' | 'inFlight'>>;
  /** Due pending tasks addressed to it, and the earliest runAt among them (null: none). */
  pending: number;
  oldestRunAt: number | null;
}

/** Whether the agent is overloaded now (the state's second rule). */
export function isOverloaded(load: AgentLoad, now: number, t: OverloadThresholds): boolean {
  const live = load.replicas.filter((r) => r.status === 'live');
  if (live.length === 0) return false;
  if (load.pending > t.queueDepth) return true;
  const full = live.every((r) => r.inFlight >= r.maxConcurrency);
  return full && load.oldestRunAt !== null && now - load.oldestRunAt > t.pendingAgeMs;
}

/** `downDomains`: the agent's tool domains that are down now (core/tool-domains.ts). */
export function agentState(load: AgentLoad, now: number, t: OverloadThresholds, downDomains: readonly string[] = []): AgentState {
  const connected = load.replicas.filter((r) => r.status === 'live' || r.status === 'draining');
  if (connected.length === 0) return 'offline';
  if (downDomains.length > 0) return 'degraded';
  if (isOverloaded(load, now, t)) return 'overloaded';
  return connected.some((r) => r.inFlight > 0) ? 'active' : 'idle';
}


export interface WaitingInput {
  task: Pick<TaskRecord, 'status' | 'runAt' | 'agent' | 'capabilities' | 'replica' | 'concurrencyKey' | 'allowDegraded'>;
  now: number;
  agents: ReadonlyArray<AgentRoute & { pausedAt: number | null }>;
  /** Every replica that is live (or draining) now. */
  replicas: ReadonlyArray<Pick<ReplicaRecord, 'id' | 'agent' | 'status' | 'maxConcurrency' | 'inFlight' | 'health'>>;
  /** Live tasks holding the task's concurrency key (0 without a key). */
  keyInFlight: number;
  serverKeyLimits: Readonly<Record<string, number>>;
  /** Agents with a tool domain down, and those domains (core/tool-domains.ts gatedAgents); absent: none. */
  gated?: ReadonlyMap<string, readonly string[]>;
}

/** Why a task is not running, or null when it is (dispatched, running) or has ended. */
export function waitingReason(input: WaitingInput): WaitingReason | null {
  const { task, now } = input;
  if (task.status === 'waiting') return 'waiting_for_children';
  if (task.status === 'input_required') return 'waiting_for_input';
  if (task.status === 'blocked') return 'dependencies';
  if (task.status !== 'pending') return null;
  if (task.runAt > now) return 'scheduled';
  const serving = input.agents.filter((a) => agentServes(a, task));
  const running = serving.filter((a) => a.pausedAt === null);
  if (serving.length > 0 && running.length === 0) return 'agent_paused';
  const gated = input.gated;
  if (gated !== undefined && task.allowDegraded !== true && running.length > 0 && running.every((a) => gated.has(a.name))) return 'tool_domain_down';
  const names = new Set(running.map((a) => a.name));
  const live = input.replicas.filter((r) => r.status === 'live' && names.has(r.agent) && (task.replica === null || r.id === task.replica));
  if (live.length === 0) return 'no_live_replica';
  const healthy = live.filter((r) => r.health !== 'unhealthy');
  if (healthy.length === 0) return 'no_healthy_replica';
  if (task.concurrencyKey !== null) {
    const limits = running.map((a) => keyLimit(a, input.serverKeyLimits, task.concurrencyKey!));
    if (limits.every((l) => l !== null && input.keyInFlight >= l)) return 'concurrency_key_at_limit';
  }
  if (healthy.every((r) => r.inFlight >= r.maxConcurrency)) return 'all_slots_full';
  return 'queued';
}
