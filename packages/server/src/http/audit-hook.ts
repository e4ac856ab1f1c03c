// Feeds the audit log: every mutating request (any method but GET/HEAD/OPTIONS) and every
// refused one (401, 403), after its answer is sent (a report batch's items are audited by its
// route, one by one). Heartbeats are left out: they only move lease times, arrive every few
// seconds per task, and would drown the log. Secrets never reach it: the entry holds who,
// what, on which target, and the outcome, never a body.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditOutcome } from '../store/store.ts';
import type { AuditLog } from '../engine/audit-log.ts';
import { requirementOf } from './route-actions.ts';
import { REPORT_BATCH_ROUTE } from './reports.ts';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
// The MCP gateway has its own audit, of every tool call (GET /tool-calls).
const NOT_AUDITED = new Set(['/api/v1/assignments/:assignmentId/heartbeat', '/api/v1/workers/:replicaId/heartbeat', '/api/v1/mcp']);

export function outcomeOf(status: number): AuditOutcome {
  if (status === 401 || status === 403 || status === 429) return 'denied';
  return status < 400 ? 'allowed' : 'failed';
}

function targetOf(request: FastifyRequest): string | null {
  const p = (request.params ?? {}) as Record<string, unknown>;
  for (const key of ['id', 'name', 'assignmentId', 'replicaId', 'jti']) {
    if (typeof p[key] === 'string') return `${key === 'id' ? '' : `${key}:`}${p[key]}`;
  }
  return null;
}

export function installAuditHook(app: FastifyInstance, audit: AuditLog): void {
  // A refused WebSocket upgrade has its socket destroyed before onResponse, and its address
  // with it: taken while the socket is still there.
  const upgradeSources = new WeakMap<FastifyRequest, string>();
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.headers.upgrade !== undefined && request.ip !== undefined) upgradeSources.set(request, request.ip);
    done();
  });
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    // A rate-limited flood would otherwise cost a write per refused request: the limit exists
    // to make such floods cheap. Limits are not authorization decisions.
    if (status === 429) return;
    const outcome = outcomeOf(status);
    const url = request.routeOptions.url;
    if (READS.has(request.method) && outcome !== 'denied') return;
    if (url !== undefined && NOT_AUDITED.has(url) && outcome !== 'denied') return;
    // A report batch that was read is audited item by item, as its reports' own routes would be.
    if (url === REPORT_BATCH_ROUTE && status === 200) return;
    const requirement = url === undefined ? undefined : requirementOf(request.method, url);
    const principal = request.principal;
    audit.record({
      principalId: principal?.id ?? null,
      principalName: principal?.name ?? null,
      role: principal?.role ?? null,
      action: requirement === undefined || requirement === 'public' || requirement === 'authenticated' ? `${request.method} ${url ?? 'unknown route'}` : requirement,
      target: targetOf(request),
      outcome,
      status,
      requestId: request.id,
      source: request.ip ?? upgradeSources.get(request) ?? null,
      details: { route: `${request.method} ${url ?? request.url.split('?')[0]!.slice(0, 256)}` },
    });
  });
}
