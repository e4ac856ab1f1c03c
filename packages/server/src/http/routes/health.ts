import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../engine/engine.ts';
import { answers, responseRef } from '../../schemas/responses.ts';

export function healthRoutes(app: FastifyInstance, engine: Engine, state: { shuttingDown: boolean }): void {
  app.get('/healthz', { schema: { summary: 'Liveness: the process is up', tags: ['health'], response: answers({ 200: 'Health' }) } }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: {
      summary: 'Readiness: the database answers and the server is not shutting down', tags: ['health'],
      // A 503 is this route's own (`database_unavailable`), or the shutdown hook's SHUTTING_DOWN error.
      response: answers({ 200: 'Health', 503: { description: 'Not ready', anyOf: [responseRef('Health'), responseRef('Error')] } }),
    },
  }, async (_request, reply) => {
    if (state.shuttingDown) return reply.code(503).send({ status: 'shutting_down' });
    try {
      await engine.ctx.store.ping();
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'database_unavailable' });
    }
  });
}
