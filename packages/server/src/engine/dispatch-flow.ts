// Flow control inside one dispatcher pass (issue 16, decisions.md 103-105): the fleet and agent
// caps and the provider rate keys, next to slots, concurrency keys, paused agents and domains
// down in the dispatcher's one decision. A pass whose tasks name no rate key, with no cap
// configured, reads and writes nothing more here (the hot-path budget).
//
// - caps: the offers are trimmed to what the caps leave (core/flow-caps.ts), and every claim
//   carries them as a guard; a claim refused by a cap zeroes the offers it covers (another
//   node filled the cap meanwhile), so the pass does not scan on for slots it cannot use.
// - rate keys: of a page's routed tasks, those their key has no room for are left out (and the
//   page routed again without them); the
//   routed tasks' requests are taken from their keys' windows in the store (exact fleet-wide)
//   before their claims commit; a request the store refused is not claimed, and one whose
//   claim conflicted is given back.

import type { Route, ReplicaCandidate } from '../core/routing.ts';
import { anyCaps, capsFor, trimOffers, type Caps } from '../core/flow-caps.ts';
import type { AgentRecord, Millis, ReplicaRecord, TaskHead, Transition, TransitionResult } from '../core/types.ts';
import type { RateLimits } from './rate-limits.ts';

export interface PassFlow {
  /** The caps a claim for `agent` carries, to spread into decideDispatch's input. */
  capsOf(agent: string): { caps?: Caps };
  /**
   * The page's routes (`plan` routes a list of tasks) without the tasks their rate key holds
   * back now. A key's room goes to the tasks routing can place, in dispatch order: one that no
   * replica can take now (its agent at its cap, pinned elsewhere, its concurrency key full)
   * does not spend it, else it would hold back the key's other tasks (another agent's) behind it.
   */
  admit(page: TaskHead[], plan: (tasks: TaskHead[]) => Route[]): Promise<Route[]>;
  /** Takes the routed tasks' requests from their keys; the routes (and transitions) to claim. */
  take(routes: Route[], transitions: Transition[]): Promise<{ routes: Route[]; transitions: Transition[] }>;
  /** After the claims: gives back what conflicted claims took, and honours a cap conflict. */
  settle(routes: readonly Route[], transitions: readonly Transition[], results: readonly TransitionResult[]): Promise<void>;
  /** When a key that held tasks back has room again (null: none held). */
  readonly retryAt: Millis | null;
}

export function passFlow(params: {
  rateLimits: RateLimits | null;
  candidates: ReplicaCandidate[];
  live: Iterable<ReplicaRecord>;
  agents: ReadonlyMap<string, AgentRecord>;
  fleetCap: number;
  now: Millis;
}): PassFlow {
  const { rateLimits, candidates, agents, fleetCap, now } = params;
  const capped = anyCaps(agents.values(), fleetCap);
  if (capped) trimOffers(candidates, params.live, agents, fleetCap);
  /** Keys with a limit, as the pages read them (only these are taken from the store). */
  const limited = new Set<string>();
  let retryAt: Millis | null = null;
  const taken = new Map<string, string>();

  return {
    get retryAt() {
      return retryAt;
    },
    capsOf(agent) {
      const caps = capped ? capsFor(agents.get(agent), fleetCap) : undefined;
      return caps === undefined ? {} : { caps };
    },
    async admit(page, plan) {
      const routes = plan(page);
      if (rateLimits === null) return routes;
      const admission = await rateLimits.admitPage(routes.map((r) => r.task), now);
      if (admission === null) return routes;
      for (const key of admission.limited) limited.add(key);
      if (admission.retryAt !== null) retryAt = Math.min(retryAt ?? Infinity, admission.retryAt);
      if (admission.held.size === 0) return routes;
      // Planned again without the held tasks (their places may go to others). A task of a
      // limited key that was not routed the first time was not admitted: it waits too.
      const routed = new Set(routes.map((r) => r.task.id));
      return plan(page.filter((t) => !admission.held.has(t.id) && (t.rateKey == null || !admission.limited.has(t.rateKey) || routed.has(t.id))));
    },
    async take(routes, transitions) {
      if (rateLimits === null || limited.size === 0) return { routes, transitions };
      const planned = routes.flatMap((route, i) => {
        const key = route.task.rateKey;
        return key != null && limited.has(key) ? [{ key, holder: transitions[i]!.assignmentInsert!.id, tokens: route.task.estimatedTokens ?? 0 }] : [];
      });
      if (planned.length === 0) return { routes, transitions };
      const refused = await rateLimits.take(planned, now);
      for (const p of planned) if (!refused.has(p.holder)) taken.set(p.holder, p.key);
      // Another node took the room meanwhile: look again a moment later (its window is full now).
      if (refused.size > 0) retryAt = Math.min(retryAt ?? Infinity, now + 1_000);
      const keep = transitions.map((t) => !refused.has(t.assignmentInsert!.id));
      return { routes: routes.filter((_, i) => keep[i]), transitions: transitions.filter((_, i) => keep[i]) };
    },
    async settle(routes, transitions, results) {
      const giveBack: string[] = [];
      results.forEach((result, i) => {
        if (result.ok) return;
        const holder = transitions[i]!.assignmentInsert!.id;
        if (taken.has(holder)) giveBack.push(holder);
        if (result.conflict === 'fleet_cap') for (const c of candidates) c.offered = 0;
        if (result.conflict === 'agent_cap') for (const c of candidates) if (c.agent === routes[i]!.agent) c.offered = 0;
      });
      if (giveBack.length > 0) await rateLimits!.giveBack(giveBack);
    },
  };
}
