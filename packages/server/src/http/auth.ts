// Authentication and route authorization: every route but the health checks and the API
// description needs `Authorization: Bearer <token>` (an API key or a scoped token). The
// resolved principal is attached to the request and passed explicitly to every service
// call, which applies the resource rules (core/permissions.ts).

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../engine/api-keys.ts';
import { actionRefusal, type Principal } from '../core/permissions.ts';
import { requirementOf } from './route-actions.ts';
import { sendError } from './error-handler.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * Authentication and the route-level authorization check. Every route must be in the one
 * table (route-actions.ts): the server refuses to start otherwise. A request is then
 * authenticated (401 UNAUTHENTICATED) unless its route is public, and refused with
 * 403 FORBIDDEN when its principal's role (or token scope) does not grant the route's action.
 */
export function installAuth(app: FastifyInstance, auth: Authenticator): void {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (requirementOf(method, route.url) === undefined) {
        throw new Error(`route ${method} ${route.url} is not in the authorization table (http/route-actions.ts)`);
      }
    }
  });
  app.addHook('onRequest', async (request, reply) => {
    const url = request.routeOptions.url;
    const requirement = url === undefined ? undefined : requirementOf(request.method, url);
    if (requirement === 'public') return;
    const token = bearerToken(request.headers.authorization);
    if (token === null) {
      return sendError(reply, 'UNAUTHENTICATED', 'send an API token as "Authorization: Bearer <token>"');
    }
    const principal = await auth.authenticate(token);
    if (!principal) return sendError(reply, 'UNAUTHENTICATED', 'the API token is not valid (unknown, expired or revoked)');
    request.principal = principal;
    const refusal = requirement !== undefined && requirement !== 'authenticated' ? actionRefusal(principal, requirement) : null;
    if (refusal !== null) return sendError(reply, refusal.code, refusal.message, refusal.details);
  });
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: unknown): string | null {
  return typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? null : null;
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route reached without a principal: auth hook missing');
  return request.principal;
}
