// API keys, scoped tokens and the audit log (who may call each: http/route-actions.ts).

import type { FastifyInstance } from 'fastify';
import type { TokenAction } from '../../core/permissions.ts';
import type { AuditOutcome } from '../../store/store.ts';
import type { Engine } from '../../engine/engine.ts';
import { auditQuerySchema, idParams, jtiParams, keyCreateSchema, keyListQuerySchema, tokenIssueSchema } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { apiKeyView, auditView, issuedTokenView } from '../views.ts';

export function securityRoutes(app: FastifyInstance, engine: Engine): void {
  const now = () => engine.ctx.now();

  app.post<{ Body: { name: string; role: string; agents?: string[]; expiresAt?: string } }>('/keys', {
    schema: { summary: 'Create an API key; its secret is in this answer only', tags: ['security'], body: keyCreateSchema, response: answers({ 201: 'CreatedApiKey' }) },
  }, async (request, reply) => {
    const { key, token } = await engine.keys.create(principalOf(request), request.body);
    return reply.code(201).send({ key: apiKeyView(key, now()), token });
  });

  app.get<{ Querystring: { includeRevoked?: boolean } }>('/keys', {
    schema: { summary: 'List API keys (never their secrets)', tags: ['security'], querystring: keyListQuerySchema, response: answers({ 200: 'ApiKeyList' }) },
  }, async (request) => ({
    items: (await engine.keys.list(principalOf(request), { includeRevoked: request.query.includeRevoked ?? false })).map((k) => apiKeyView(k, now())),
  }));

  app.get<{ Params: { id: string } }>('/keys/:id', {
    schema: { summary: 'One API key', tags: ['security'], params: idParams, response: answers({ 200: 'ApiKeyView' }) },
  }, async (request) => apiKeyView(await engine.keys.get(principalOf(request), request.params.id), now()));

  app.post<{ Params: { id: string } }>('/keys/:id/revoke', {
    schema: { summary: 'Revoke an API key (every node refuses it within seconds); idempotent', tags: ['security'], params: idParams, response: answers({ 200: 'ApiKeyView' }) },
  }, async (request) => apiKeyView(await engine.keys.revoke(principalOf(request), request.params.id), now()));

  app.post<{ Body: { scopes: TokenAction[]; agents?: string[]; rootTaskId?: string; ttlSeconds?: number; maxLifetimeSeconds?: number; name?: string } }>('/tokens', {
    schema: { summary: 'Issue a scoped, short-lived token (never more than the caller may do)', tags: ['security'], body: tokenIssueSchema, response: answers({ 201: 'IssuedToken' }) },
  }, async (request, reply) => reply.code(201).send(issuedTokenView(await engine.tokenService.issue(principalOf(request), request.body))));

  app.post('/tokens/renew', {
    schema: { summary: 'Renew the calling scoped token (same grant, up to its maximum lifetime)', tags: ['security'], response: answers({ 201: 'IssuedToken' }) },
  }, async (request, reply) => reply.code(201).send(issuedTokenView(await engine.tokenService.renew(principalOf(request)))));

  app.post<{ Params: { jti: string } }>('/tokens/:jti/revoke', {
    schema: { summary: 'Revoke a scoped token and all its renewals (every node within about a second)', tags: ['security'], params: jtiParams, response: answers({ 200: 'Ok' }) },
  }, async (request) => {
    await engine.tokenService.revoke(principalOf(request), request.params.jti);
    return { ok: true };
  });

  app.get<{ Querystring: { principalId?: string; action?: string; outcome?: AuditOutcome; since?: string; until?: string; before?: number; limit?: number } }>('/audit', {
    schema: { summary: 'The audit log, newest first (filters combine with AND)', tags: ['security'], querystring: auditQuerySchema, response: answers({ 200: 'AuditPage' }) },
  }, async (request) => {
    const q = request.query;
    const page = await engine.audit.list(principalOf(request), {
      limit: q.limit ?? 100,
      ...(q.before !== undefined ? { before: q.before } : {}),
      ...(q.principalId !== undefined ? { principalId: q.principalId } : {}),
      ...(q.action !== undefined ? { action: q.action } : {}),
      ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
      ...(q.since !== undefined ? { since: Date.parse(q.since) } : {}),
      ...(q.until !== undefined ? { until: Date.parse(q.until) } : {}),
    });
    return { items: page.items.map(auditView), nextBefore: page.nextBefore };
  });
}
