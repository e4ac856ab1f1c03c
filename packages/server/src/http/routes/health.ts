import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../engine/engine.ts';

export function healthRoutes(app: FastifyInstance, engine: Engine, state: { shuttingDown: boolean }): void {
  app.get('/healthz', { schema: { summary: 'Liveness: the process is up', tags: ['health'] } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { summary: 'Readiness: the database answers and the server is not shutting down', tags: ['health'] } }, async (_request, reply) => {
    if (state.shuttingDown) return reply.code(503).send({ status: 'shutting_down' });
    try {
      await engine.ctx.store.ping();
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'database_unavailable' });
    }
  });
}
