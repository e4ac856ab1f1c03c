// The one authorization table: every route and the action it requires (core/permissions.ts
// says which roles grant which actions). A route missing from this table makes the server
// refuse to start, so no endpoint can ship unguarded by accident. Resource rules (which
// tasks a principal may see, which agents an agent key serves) are applied by the services.
//
// - `public`: no token (health checks and the API description);
// - `authenticated`: any valid principal (the route checks what it needs itself: renewing a
//   token needs a token).

import type { Action } from '../core/permissions.ts';

export type RouteRequirement = Action | 'public' | 'authenticated';

const P = '/api/v1';

export const ROUTE_ACTIONS: Readonly<Record<string, RouteRequirement>> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  [`GET ${P}/openapi.json`]: 'public',

  [`POST ${P}/tasks`]: 'task.submit',
  [`POST ${P}/tasks/batch`]: 'task.submit',
  [`POST ${P}/workflows`]: 'task.submit',
  [`GET ${P}/tasks`]: 'task.read',
  [`GET ${P}/tasks/:id`]: 'task.read',
  [`GET ${P}/tasks/:id/events`]: 'task.read',
  [`GET ${P}/tasks/:id/assignment`]: 'task.read',
  [`POST ${P}/tasks/:id/cancel`]: 'task.cancel',
  [`POST ${P}/tasks/:id/retry`]: 'task.retry',
  [`POST ${P}/tasks/:id/assign`]: 'task.assign',
  [`POST ${P}/tasks/:id/fail`]: 'task.fail',
  [`GET ${P}/tasks/:id/tree`]: 'task.read',
  [`POST ${P}/tasks/:id/input`]: 'task.answer',

  [`GET ${P}/events`]: 'event.read',
  [`GET ${P}/events/page`]: 'event.read',

  [`GET ${P}/agents`]: 'agent.read',
  [`POST ${P}/agents`]: 'agent.manage',
  [`GET ${P}/agents/:name`]: 'agent.read',
  [`PATCH ${P}/agents/:name`]: 'agent.manage',
  [`DELETE ${P}/agents/:name`]: 'agent.manage',
  [`POST ${P}/agents/:name/assign`]: 'agent.assign',
  [`POST ${P}/agents/:name/pause`]: 'agent.manage',
  [`POST ${P}/agents/:name/resume`]: 'agent.manage',
  [`POST ${P}/agents/:name/drain`]: 'agent.manage',
  [`POST ${P}/replicas/:replicaId/drain`]: 'agent.manage',
  [`POST ${P}/replicas/:replicaId/resume`]: 'agent.manage',
  // A queue lists tasks with their inputs: readers of every task only.
  [`GET ${P}/agents/:name/queue`]: 'task.read.all',
  [`GET ${P}/agents/:name/replicas`]: 'agent.read',
  [`GET ${P}/agents/:name/stats`]: 'agent.read',
  [`GET ${P}/overview`]: 'agent.read',
  // Figures over every task (its SLAs, its outcomes): readers of every task only.
  [`GET ${P}/reports/delegation`]: 'task.read.all',

  [`POST ${P}/workers/register`]: 'worker.work',
  [`GET ${P}/workers/socket`]: 'worker.work',
  // Each message is authorized by its own action (http/socket/worker-session.ts).
  [`GET ${P}/socket`]: 'authenticated',
  [`POST ${P}/workers/:replicaId/lease`]: 'worker.work',
  [`POST ${P}/workers/:replicaId/heartbeat`]: 'worker.work',
  [`POST ${P}/workers/:replicaId/deregister`]: 'worker.work',
  [`POST ${P}/workers/:replicaId/reports`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/start`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/heartbeat`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/progress`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/complete`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/fail`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/wait`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/ask`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/cancelled`]: 'worker.work',
  [`POST ${P}/assignments/:assignmentId/token`]: 'worker.work',

  [`POST ${P}/keys`]: 'key.manage',
  [`GET ${P}/keys`]: 'key.manage',
  [`GET ${P}/keys/:id`]: 'key.manage',
  [`POST ${P}/keys/:id/revoke`]: 'key.manage',

  [`POST ${P}/tokens`]: 'token.issue',
  [`POST ${P}/tokens/renew`]: 'authenticated',
  [`POST ${P}/tokens/:jti/revoke`]: 'token.revoke',

  [`GET ${P}/audit`]: 'audit.read',

  // Flotilla as an A2A agent (http/a2a/): the card is public, as A2A cards are (decisions.md
  // 79); each JSON-RPC method is authorized by its own action (http/a2a/method-actions.ts).
  'GET /.well-known/agent-card.json': 'public',
  'POST /a2a/jsonrpc': 'authenticated',
  'POST /a2a/v0.3/jsonrpc': 'authenticated',
  // MCP tool domains (issue 15): declaring one is managing the fleet; the gateway checks the
  // attempt's token itself (engine/mcp/gateway.ts), so any authenticated caller reaches it.
  [`GET ${P}/tool-domains`]: 'tool_domain.read',
  [`GET ${P}/tool-domains/:name`]: 'tool_domain.read',
  [`PUT ${P}/tool-domains/:name`]: 'tool_domain.manage',
  [`DELETE ${P}/tool-domains/:name`]: 'tool_domain.manage',
  [`GET ${P}/mcp/health`]: 'tool_domain.read',
  [`GET ${P}/tool-calls`]: 'task.read.all',
  [`POST ${P}/mcp`]: 'authenticated',
  // Webhooks (decision 112): `webhook.read` acts on its own subscriptions, `webhook.manage` on
  // all (engine/webhook-service.ts); the notify secret signs every task's notify delivery.
  [`POST ${P}/webhooks`]: 'webhook.read',
  [`GET ${P}/webhooks`]: 'webhook.read',
  [`GET ${P}/webhooks/notify-secret`]: 'webhook.manage',
  [`GET ${P}/webhooks/:id`]: 'webhook.read',
  [`PATCH ${P}/webhooks/:id`]: 'webhook.read',
  [`DELETE ${P}/webhooks/:id`]: 'webhook.read',
  [`POST ${P}/webhooks/:id/rotate-secret`]: 'webhook.read',
  [`GET ${P}/webhooks/:id/deliveries`]: 'webhook.read',
  [`POST ${P}/webhooks/:id/deliveries/replay`]: 'webhook.read',

  // Schedules (issue 16, docs/schedules.md).
  [`GET ${P}/schedules`]: 'schedule.read',
  [`POST ${P}/schedules`]: 'schedule.manage',
  [`GET ${P}/schedules/:name`]: 'schedule.read',
  [`PATCH ${P}/schedules/:name`]: 'schedule.manage',
  [`DELETE ${P}/schedules/:name`]: 'schedule.manage',
  [`POST ${P}/schedules/:name/pause`]: 'schedule.manage',
  [`POST ${P}/schedules/:name/resume`]: 'schedule.manage',
  // Provider rate limits and usage (issue 16): the limits are read like agents, changed by
  // operators; usage covers every tree, as the delegation report does.
  [`GET ${P}/rate-limits`]: 'agent.read',
  [`PUT ${P}/rate-limits/:key`]: 'rate_limit.manage',
  [`DELETE ${P}/rate-limits/:key`]: 'rate_limit.manage',
  [`GET ${P}/usage`]: 'task.read.all',
};

/** The requirement of a route as Fastify names it (HEAD is served by the GET route). */
export function requirementOf(method: string, url: string): RouteRequirement | undefined {
  return ROUTE_ACTIONS[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}
