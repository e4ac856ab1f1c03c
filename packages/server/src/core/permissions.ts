// Who may do what: roles, the actions they grant, and the scoping rules for task trees.
// Pure (no I/O): the HTTP layer maps each route to one action (http/route-actions.ts), and
// the services apply the resource rules below with the caller's principal.
//
// Glossary:
// - principal: who is calling: an API key (a role), a scoped token (issued by a key, with a
//   subset of its issuer's actions), or the server itself (system).
// - action: one thing a route does (`task.submit`); a role grants a set of actions.
// - tree: a root task and every task spawned under it; tasks record their tree's root
//   (rootId) and owner (ownerId: the principal that submitted the root).
//
// Invariants:
// - A scoped token never grants more than its issuer's role did when it was issued.
// - A principal without `task.read.all` sees only the trees it owns, or, for a token bound to
//   one tree, that tree.
// - An `agent` key acts only on replicas and assignments of the agents it lists.

import { ROLES, TOKEN_SCOPES, type Role } from '@flotilla/sdk';

export { ROLES, type Role };

export const ACTIONS = [
  'task.submit', 'task.read', 'task.read.all', 'task.cancel', 'task.retry', 'task.assign', 'task.fail', 'task.answer',
  'agent.read', 'agent.manage', 'agent.assign',
  'event.read',
  'worker.work',
  'key.manage', 'token.issue', 'token.revoke', 'audit.read',
  // Tool domains (issue 15): a declaration names a server URL or a command the server runs and
  // secrets it sends, so declaring is the admin's alone, and reading the declarations (URLs,
  // commands, arguments) is not for workers (the `agent` role) either.
  'tool_domain.read', 'tool_domain.manage',
  // Webhooks (docs/webhooks.md, decision 112): `webhook.read` subscribes and manages one's own
  // subscriptions (events reach them only for tasks their owner may read); `webhook.manage`
  // sees and manages every subscription and the notify secret.
  'webhook.read', 'webhook.manage',
  // Schedules (issue 16): a schedule submits tasks as its owner, again and again, so managing
  // them is the admin's and the operator's; readers see them (their templates hold inputs).
  'schedule.read', 'schedule.manage',
  // Provider rate limits (issue 16): declaring and removing them steers the whole fleet.
  'rate_limit.manage',
] as const;
export type Action = (typeof ACTIONS)[number];

const READ: Action[] = ['task.read', 'task.read.all', 'agent.read', 'event.read', 'schedule.read'];

/** The one table of what each role grants. */
export const ROLE_ACTIONS: Record<Role, readonly Action[]> = {
  admin: ACTIONS,
  // Runs the fleet: sees and steers every task, manages agents, issues pipeline tokens.
  operator: [...READ, 'task.submit', 'task.cancel', 'task.retry', 'task.assign', 'task.fail', 'task.answer', 'agent.manage', 'agent.assign', 'token.issue', 'token.revoke', 'tool_domain.read', 'schedule.manage',
    'webhook.read', 'webhook.manage', 'rate_limit.manage'],
  viewer: [...READ,
    'webhook.read'],
  // A worker: the worker protocol for its agents, and reading its agents. Child tasks are
  // submitted with the token each assignment carries, as the parent's tree, never as itself.
  agent: ['worker.work', 'agent.read'],
};

/** What a scoped token may carry: the actions that make sense bound to trees. */
export const TOKEN_ACTIONS = TOKEN_SCOPES satisfies readonly Action[];
export type TokenAction = (typeof TOKEN_ACTIONS)[number];

export interface TokenScope {
  /** The token's id (`jti`): revoking it revokes every renewal of it. */
  jti: string;
  actions: readonly TokenAction[];
  /** Agents it may submit to (null: any). */
  agents: readonly string[] | null;
  /** The one tree it is bound to (its submissions must be children in it), or null. */
  root: string | null;
  /** The latest time any renewal may expire (ms since the epoch). */
  maxExpiresAt: number;
  /**
   * Assignment tokens: the attempt's effective tool set (core/tools.ts), for a gateway to check
   * every tool call against; null for other tokens.
   */
  tools: readonly string[] | null;
  /**
   * Assignment tokens of a task at its depth limit: `task.submit` was left out for this reason
   * (its task's depth, and the limit), so a spawn is refused as DEPTH_LIMIT, not FORBIDDEN.
   */
  spawnWithheld: { depth: number; maxDepth: number } | null;
}

export interface Principal {
  /** The API key id, `token:<jti>` for a scoped token, or `system`. */
  id: string;
  name: string;
  /** For a token: its issuer's role (the token narrows it). */
  role: Role;
  kind: 'key' | 'token' | 'system';
  /** Role `agent`: the agents this key may serve. */
  agents: readonly string[] | null;
  /** Scoped tokens only. */
  scope: TokenScope | null;
}

/** The server itself (config-file declarations, maintenance). */
export const SYSTEM_PRINCIPAL: Principal = { id: 'system', name: 'system', role: 'admin', kind: 'system', agents: null, scope: null };

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function roleAllows(role: Role, action: Action): boolean {
  return ROLE_ACTIONS[role].includes(action);
}

/** Whether the principal may perform the action at all (resource rules come after). */
export function allows(principal: Principal, action: Action): boolean {
  if (!roleAllows(principal.role, action)) return false;
  if (principal.scope === null) return true;
  return (principal.scope.actions as readonly Action[]).includes(action);
}

export interface ActionRefusal {
  code: 'FORBIDDEN' | 'DEPTH_LIMIT';
  message: string;
  details: Record<string, unknown>;
}

/** Why the principal may not perform the action at all, or null when it may (both transports answer this). */
export function actionRefusal(principal: Principal, action: Action): ActionRefusal | null {
  if (allows(principal, action)) return null;
  const withheld = principal.scope?.spawnWithheld;
  if (action === 'task.submit' && withheld && roleAllows(principal.role, action)) {
    return {
      code: 'DEPTH_LIMIT',
      message: `this token's task is at depth ${withheld.depth} and the deepest a task may be is ${withheld.maxDepth}: it cannot spawn children (the token carries no spawn right)`,
      details: { depth: withheld.depth + 1, maxDepth: withheld.maxDepth },
    };
  }
  const who = principal.kind === 'token' ? `this token (scopes: ${principal.scope?.actions.join(', ') || 'none'})` : `role "${principal.role}"`;
  return { code: 'FORBIDDEN', message: `${who} may not ${action}`, details: { action } };
}

/** The owner recorded on a root task this principal submits. */
export function ownerIdOf(principal: Principal): string {
  return principal.id;
}

/** Which tasks a principal may see: all, one tree, or the trees it owns. */
export type TaskVisibility = { all: true } | { all: false; rootId: string } | { all: false; ownerId: string };

export function taskVisibility(principal: Principal): TaskVisibility {
  if (allows(principal, 'task.read.all')) return { all: true };
  if (principal.scope?.root) return { all: false, rootId: principal.scope.root };
  return { all: false, ownerId: ownerIdOf(principal) };
}

export function canSeeTask(principal: Principal, task: { rootId: string; ownerId: string | null }): boolean {
  const v = taskVisibility(principal);
  if (v.all) return true;
  return 'rootId' in v ? task.rootId === v.rootId : task.ownerId === v.ownerId;
}

/** Role `agent` keys act only for their agents; every other principal is not limited here. */
export function servesAgent(principal: Principal, agent: string): boolean {
  return principal.agents === null || principal.agents.includes(agent);
}

/**
 * Whether a submission is within a scoped token's limits: the target agent is allowed, and a
 * token bound to a tree only adds children inside it (so spawned work stays in the tree and
 * belongs to its owner). Keys are not limited here.
 */
export function submitWithinScope(principal: Principal, spec: { agent: string | null; parent: { rootId: string } | null }): string | null {
  const scope = principal.scope;
  if (scope === null) return null;
  if (scope.agents !== null && (spec.agent === null || !scope.agents.includes(spec.agent))) {
    return `this token may submit only to the agents ${scope.agents.join(', ') || '(none)'}`;
  }
  if (scope.root !== null && (spec.parent === null || spec.parent.rootId !== scope.root)) {
    return `this token may only submit child tasks within the tree of task ${scope.root} (set parentId to a task of that tree)`;
  }
  return null;
}

/**
 * Whether a task is one `visibility` sees (a webhook subscription's owner's, recorded when it
 * was created): the same rule as canSeeTask, for a principal that is not calling now.
 */
export function visibilitySees(v: TaskVisibility, task: { rootId: string; ownerId: string | null }): boolean {
  if (v.all) return true;
  return 'rootId' in v ? task.rootId === v.rootId : task.ownerId === v.ownerId;
}
