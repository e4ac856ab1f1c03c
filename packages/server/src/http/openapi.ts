// The OpenAPI 3.1 document is generated from the routes as registered: their JSON schemas
// are the ones Fastify validates requests with and serializes answers with, so the document
// cannot drift from the behaviour. Answers are named schemas (schemas/responses.ts), listed
// under #/components/schemas and referenced by `$ref`.

import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERROR_STATUS } from '@flotilla/sdk';
import { responseSchemas, type ResponseName } from '../schemas/responses.ts';
import { requirementOf } from './route-actions.ts';

/** An answer Fastify does not serialize, described for the document only. */
export interface DocumentedResponse {
  description: string;
  content?: Record<string, Record<string, unknown>>;
}

declare module 'fastify' {
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
    tags?: string[];
    /**
     * Answers that do not go through a response schema, by status: a 204 without a body, an
     * event stream, a WebSocket upgrade. In the OpenAPI document only.
     */
    documentedResponses?: Record<string, DocumentedResponse>;
  }
}

interface Collected { method: string; url: string; schema: Record<string, unknown>; public: boolean }

const COMPONENT_REF = /^([A-Za-z][A-Za-z0-9]*)#$/;

/**
 * Collects the routes for the document as they are registered, and refuses to register a
 * route without a documented success answer (so no route can ship without its schema).
 */
export function collectRoutes(app: FastifyInstance): Collected[] {
  const routes: Collected[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || route.url.endsWith('*')) continue;
      const schema = (route.schema ?? {}) as Record<string, unknown>;
      const statuses = [...Object.keys((schema.response ?? {}) as object), ...Object.keys((schema.documentedResponses ?? {}) as object)];
      if (!statuses.some((s) => /^[12](\d\d|xx)$/.test(s))) {
        throw new Error(`route ${method} ${route.url} has no schema for its success answer (schemas/responses.ts, \`answers\`)`);
      }
      routes.push({ method: method.toLowerCase(), url: route.url, schema, public: requirementOf(method, route.url) === 'public' });
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

/** A copy with Fastify's references (`Name#`) rewritten to the document's, and `$id` dropped. */
function documented(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(documented);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$id') continue;
    const named = k === '$ref' && typeof v === 'string' ? COMPONENT_REF.exec(v) : null;
    out[k] = named ? `#/components/schemas/${named[1]}` : documented(v);
  }
  return out;
}

const STATUS_TEXT: Record<string, string> = { 200: 'OK', 201: 'Created', 204: 'No Content' };

function describe(status: string, schema: Record<string, unknown>): string {
  const named = typeof schema.$ref === 'string' ? COMPONENT_REF.exec(schema.$ref) : null;
  const description = named ? responseSchemas[named[1] as ResponseName]?.description : schema.description;
  return typeof description === 'string' ? description : STATUS_TEXT[status] ?? `HTTP ${status}`;
}

function responses(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, s] of Object.entries((schema.response ?? {}) as Record<string, Record<string, unknown>>)) {
    out[/^\dxx$/.test(status) ? status.toUpperCase() : status] = { description: describe(status, s), content: { 'application/json': { schema: documented(s) } } };
  }
  for (const [status, r] of Object.entries(schema.documentedResponses ?? {})) out[status] = documented(r);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export function openApiDocument(routes: Collected[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: r.schema.summary,
      tags: r.schema.tags,
      parameters: [...parameters(r.schema, 'path'), ...parameters(r.schema, 'query')],
      responses: responses(r.schema),
    };
    if (r.schema.body) op.requestBody = { required: false, content: { 'application/json': { schema: r.schema.body } } };
    if (r.public) op.security = [];
    (paths[path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Flotilla API', version, description: 'Durable task orchestration for fleets of AI agents. Error codes and their HTTP statuses: see x-error-codes.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: Object.fromEntries(Object.entries(responseSchemas).map(([name, s]) => [name, documented(s)])),
    },
    'x-error-codes': ERROR_STATUS,
    paths,
  };
}
