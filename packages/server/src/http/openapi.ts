// The OpenAPI 3.1 document is generated from the routes as registered: their JSON schemas
// are the ones Fastify validates with, so the document cannot drift from the behaviour.

import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERROR_STATUS } from '@flotilla/sdk';
import { errorSchema } from '../schemas/schemas.ts';
import { requirementOf } from './route-actions.ts';

declare module 'fastify' {
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
    tags?: string[];
  }
}

interface Collected { method: string; url: string; schema: Record<string, unknown>; public: boolean }

export function collectRoutes(app: FastifyInstance): Collected[] {
  const routes: Collected[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || route.url.endsWith('*')) continue;
      routes.push({ method: method.toLowerCase(), url: route.url, schema: (route.schema ?? {}) as Record<string, unknown>, public: requirementOf(method, route.url) === 'public' });
    }
  });
  return routes;
}

function parameters(schema: Record<string, unknown>, where: 'path' | 'query'): unknown[] {
  const source = (where === 'path' ? schema.params : schema.querystring) as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  if (!source?.properties) return [];
  return Object.entries(source.properties).map(([name, s]) => ({
    name, in: where, required: where === 'path' || (source.required ?? []).includes(name), schema: s,
    ...((s as { type?: string }).type === 'array' ? { style: 'form', explode: true } : {}),
  }));
}

export function openApiDocument(routes: Collected[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: r.schema.summary,
      tags: r.schema.tags,
      parameters: [...parameters(r.schema, 'path'), ...parameters(r.schema, 'query')],
      responses: {
        default: { description: 'An error with a stable code', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        '2XX': { description: 'Success' },
      },
    };
    if (r.schema.body) op.requestBody = { required: false, content: { 'application/json': { schema: r.schema.body } } };
    if (r.public) op.security = [];
    (paths[path] ??= {})[r.method] = op;
  }
  const { $id: _id, ...error } = errorSchema;
  return {
    openapi: '3.1.0',
    info: { title: 'Flotilla API', version, description: 'Durable task orchestration for fleets of AI agents. Error codes and their HTTP statuses: see x-error-codes.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: error } },
    'x-error-codes': ERROR_STATUS,
    paths,
  };
}
