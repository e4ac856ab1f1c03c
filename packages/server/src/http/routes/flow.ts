// Provider rate limits and usage (issue 16, docs/flow-control.md, docs/usage.md); who may call
// each: http/route-actions.ts.

import type { FastifyInstance } from 'fastify';
import type { RateLimitSpecWire } from '@flotilla/sdk';
import type { Engine } from '../../engine/engine.ts';
import { rateLimitParams, rateLimitSpecSchema, usageQuerySchema } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { toIsoOrNull } from '../../engine/time.ts';
import { rateLimitView, usageGroupView } from '../flow-views.ts';

export function flowRoutes(app: FastifyInstance, engine: Engine): void {
  app.get('/rate-limits', {
    schema: { summary: 'Provider rate limits, each with the last minute (used, remaining) and its pause', tags: ['flow'], response: answers({ 200: 'RateLimitList' }) },
  }, async () => {
    const now = engine.ctx.now();
    return { items: (await engine.rateLimits.list()).map((s) => rateLimitView(s, now)) };
  });

  app.put<{ Params: { key: string }; Body: RateLimitSpecWire }>('/rate-limits/:key', {
    schema: { summary: 'Declare or replace a rate key: requests (rpm) and tokens (tpm) per minute, fleet-wide', tags: ['flow'], params: rateLimitParams, body: rateLimitSpecSchema, response: answers({ 200: 'RateLimitView', 201: 'RateLimitView' }) },
  }, async (request, reply) => {
    const { created, state } = await engine.rateLimits.put(request.params.key, request.body);
    return reply.code(created ? 201 : 200).send(rateLimitView(state, engine.ctx.now()));
  });

  app.delete<{ Params: { key: string } }>('/rate-limits/:key', {
    schema: { summary: "Remove a rate key's limits (its tasks dispatch unlimited)", tags: ['flow'], params: rateLimitParams, response: answers({ 200: 'Ok' }) },
  }, async (request) => {
    await engine.rateLimits.remove(request.params.key);
    return { ok: true };
  });

  app.get<{ Querystring: { groupBy: 'agent' | 'root' | 'day'; since?: string; until?: string } }>('/usage', {
    schema: { summary: 'Reported usage (tokens, cost) summed per agent, tree (root task) or UTC day', tags: ['flow'], querystring: usageQuerySchema, response: answers({ 200: 'UsageSummary' }) },
  }, async (request) => {
    const q = request.query;
    const since = q.since === undefined ? null : Date.parse(q.since);
    const until = q.until === undefined ? null : Date.parse(q.until);
    const groups = await engine.usage.summary(q.groupBy, since, until);
    return { groupBy: q.groupBy, since: toIsoOrNull(since), until: toIsoOrNull(until), groups: groups.map(usageGroupView) };
  });
}
