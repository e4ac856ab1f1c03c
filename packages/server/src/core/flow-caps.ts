// The fleet cap (`maxConcurrentTasks`) and the agent caps (`maxInFlight`), issue 16. Pure.
//
// A cap counts live assignments: the replicas' in_flight, summed over the fleet or over one
// agent's replicas. The claim's guarded write enforces it (store: slotAcquire.caps); the
// dispatcher only trims what it offers to what the caps leave, so that a pass does not plan
// claims that would conflict.

import type { AgentRecord, ReplicaRecord, Transition } from './types.ts';
import type { ReplicaCandidate } from './routing.ts';

export type Caps = NonNullable<NonNullable<Transition['slotAcquire']>['caps']>;

/** The caps a claim for `agent` carries; undefined (no guard, no cost) when neither is set. */
export function capsFor(agent: Pick<AgentRecord, 'name' | 'maxInFlight'> | undefined, fleetCap: number): Caps | undefined {
  const agentLimit = agent?.maxInFlight ?? null;
  if (fleetCap <= 0 && agentLimit === null) return undefined;
  return { fleet: fleetCap > 0 ? fleetCap : null, agent: agentLimit === null ? null : { name: agent!.name, limit: agentLimit } };
}

/** Whether any cap is configured (a pass only looks at them then). */
export function anyCaps(agents: Iterable<Pick<AgentRecord, 'maxInFlight'>>, fleetCap: number): boolean {
  if (fleetCap > 0) return true;
  for (const a of agents) if ((a.maxInFlight ?? null) !== null) return true;
  return false;
}

/**
 * Lowers the candidates' offers (in place, in their order) to what the caps leave, counted
 * from the replicas' in_flight as the pass read them. The guard has the last word; this only
 * keeps a pass from planning claims that would conflict.
 */
export function trimOffers(
  candidates: ReplicaCandidate[], replicas: Iterable<Pick<ReplicaRecord, 'agent' | 'inFlight'>>,
  agents: ReadonlyMap<string, Pick<AgentRecord, 'maxInFlight'>>, fleetCap: number,
): void {
  let fleet = 0;
  const perAgent = new Map<string, number>();
  for (const r of replicas) {
    fleet += r.inFlight;
    perAgent.set(r.agent, (perAgent.get(r.agent) ?? 0) + r.inFlight);
  }
  let fleetLeft = fleetCap > 0 ? Math.max(0, fleetCap - fleet) : Infinity;
  const agentLeft = new Map<string, number>();
  for (const c of candidates) {
    const limit = agents.get(c.agent)?.maxInFlight ?? null;
    if (limit !== null && !agentLeft.has(c.agent)) agentLeft.set(c.agent, Math.max(0, limit - (perAgent.get(c.agent) ?? 0)));
    const left = Math.min(fleetLeft, agentLeft.get(c.agent) ?? Infinity);
    c.offered = Math.min(c.offered, left);
    fleetLeft -= c.offered;
    if (agentLeft.has(c.agent)) agentLeft.set(c.agent, agentLeft.get(c.agent)! - c.offered);
  }
}

/** Why a dispatchable task waits on a cap, from the live counts; null: no cap is full. */
export function capWaitingReason(
  agent: Pick<AgentRecord, 'maxInFlight'> | null, agentInFlight: number, fleetInFlight: number, fleetCap: number,
): 'fleet_cap' | 'agent_cap' | null {
  if (fleetCap > 0 && fleetInFlight >= fleetCap) return 'fleet_cap';
  const limit = agent?.maxInFlight ?? null;
  if (limit !== null && agentInFlight >= limit) return 'agent_cap';
  return null;
}
