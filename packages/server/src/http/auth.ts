// Authentication: every route but the health checks needs `Authorization: Bearer <token>`.
// The resolved principal is attached to the request and passed explicitly to every
// service call, so authorization by role (a later issue) slots in per action.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../engine/api-keys.ts';
import type { Principal } from '../engine/principal.ts';
import { sendError } from './error-handler.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Route is reachable without a token (health checks only). */
    public?: boolean;
  }
}

export function installAuth(app: FastifyInstance, auth: Authenticator): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.public) return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      return sendError(reply, 'UNAUTHENTICATED', 'send an API token as "Authorization: Bearer <token>"');
    }
    const principal = await auth.authenticate(match[1]!);
    if (!principal) return sendError(reply, 'UNAUTHENTICATED', 'the API token is not valid');
    request.principal = principal;
  });
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route reached without a principal: auth hook missing');
  return request.principal;
}
