// Delegation (issue 14): who a task may hand work to, how deep its agent lets it go, and what
// a child inherits. Pure (no I/O); TaskService applies it at every submit under a parent,
// whoever submits, and WorkerService when it issues an attempt's token.
//
// Glossary:
// - level: an agent's rank in the hierarchy (1 = top). A task may delegate only to agents of
//   a greater level (config `allowEqualLevel`: greater or equal).
// - candidates: the agents a task may run on: its named agent, or every agent that serves its
//   capabilities. A capability-routed task is held to the strictest of its candidates (the
//   highest level, the smallest depth limit, the intersection of the tool ceilings), so a rule
//   holds whichever of them runs it.
// - depth limit: the deepest a task may be when it runs on an agent: the server's `maxDepth`,
//   narrowed by the agent's own `maxDepth` when it declares one (an agent never widens it).
//
// Invariants:
// - every candidate of a child has a level greater than (or, allowed, equal to) every
//   candidate of its parent;
// - a task at or past its depth limit has no spawn right (no `task.submit` in its token).

import { agentServes } from './routing.ts';

export interface DelegationAgent {
  name: string;
  capabilities: readonly string[];
  level: number;
  maxDepth: number | null;
}

/** The agents `target` may run on, from the registry (by name, or all serving its capabilities). */
export function candidateAgents<A extends DelegationAgent>(target: { agent: string | null; capabilities: readonly string[] }, agents: Iterable<A>): A[] {
  const t = { agent: target.agent, capabilities: [...target.capabilities] };
  return [...agents].filter((a) => agentServes(a, t));
}

/** The depth limit of a task on these candidates: the server's, narrowed by the smallest override. */
export function depthLimit(serverMaxDepth: number, candidates: readonly Pick<DelegationAgent, 'maxDepth'>[]): number {
  let limit = serverMaxDepth;
  for (const a of candidates) if (a.maxDepth !== null && a.maxDepth < limit) limit = a.maxDepth;
  return limit;
}

/** A task at (or, after the limit was lowered, past) its depth limit: it may not spawn. */
export function atDepthLimit(task: { depth: number }, limit: number): boolean {
  return task.depth >= limit;
}

export interface LevelRefusal {
  message: string;
  details: { parentLevel: number; childLevel: number; allowEqualLevel: boolean };
}

/**
 * Why a child with these candidates may not be submitted under a parent with those, or null
 * when it may. A parent with no registered candidate (its agent was deleted since) has no
 * level to compare with, and is not limited here.
 */
export function levelRefusal(p: {
  parentId: string;
  parent: readonly Pick<DelegationAgent, 'name' | 'level'>[];
  child: readonly Pick<DelegationAgent, 'name' | 'level'>[];
  allowEqualLevel: boolean;
}): LevelRefusal | null {
  if (p.parent.length === 0 || p.child.length === 0) return null;
  const top = p.parent.reduce((a, b) => (b.level > a.level ? b : a));
  const low = p.child.reduce((a, b) => (b.level < a.level ? b : a));
  if (low.level > top.level || (p.allowEqualLevel && low.level === top.level)) return null;
  const rule = p.allowEqualLevel ? 'the same or a greater level' : 'a greater level (allowEqualLevel permits the same level)';
  return {
    message: `task ${p.parentId} runs at level ${top.level} (agent "${top.name}") and agent "${low.name}" is at level ${low.level}: a task may delegate only to agents of ${rule}`,
    details: { parentLevel: top.level, childLevel: low.level, allowEqualLevel: p.allowEqualLevel },
  };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * A child's traceparent: the parent's trace, a new span (`spanId`, 16 hex digits, not all
 * zero), the parent's flags; null when the parent has none (the server starts no trace).
 */
export function childTraceparent(parent: string | null, spanId: string): string | null {
  const m = parent === null ? null : TRACEPARENT.exec(parent);
  if (!m) return null;
  return `00-${m[2]}-${spanId}-${m[4]}`;
}

/** A child's correlation: its parent's, with the child's own keys winning. */
export function childCorrelation(parent: Readonly<Record<string, string>>, own: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return { ...parent, ...own };
}
