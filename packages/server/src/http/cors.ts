// CORS: off unless `corsOrigins` lists the exact origins of web front-ends allowed to call
// the API from a browser (docs/decisions.md, "No wildcard CORS"). An allowed origin gets
// `Access-Control-Allow-Origin` echoed back (with `Vary: Origin`); any other origin, and
// any request without an `Origin` header, gets no CORS header at all, so the browser keeps
// the response from the page.
//
// Installed before the auth hook: a browser sends its preflight (OPTIONS) without the
// `Authorization` header, so the preflight is answered here, before a token is asked for,
// and the API's own 401s and 429s carry the CORS headers a page needs to read them.
// A preflight from an origin not on the list goes on like any request (and is refused
// without a token).

import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { ServerConfig } from '../config/config.ts';

export const CORS_ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Last-Event-ID', 'X-Request-Id'];
export const CORS_EXPOSED_HEADERS = ['X-Request-Id', 'Retry-After'];
export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'];

export async function installCors(app: FastifyInstance, config: Pick<ServerConfig, 'corsOrigins'>): Promise<void> {
  if (config.corsOrigins.length === 0) return;
  const allowed = new Set(config.corsOrigins);
  await app.register(cors, {
    // A function rather than the list itself: @fastify/cors treats a `*` anywhere in a list
    // as "every origin", and `false` (not allowed) skips CORS handling entirely.
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: CORS_METHODS,
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    // Bearer tokens, never cookies: no credentialed requests.
    credentials: false,
    // Browsers cap this (Chromium at 2 hours); it saves a preflight per request.
    maxAge: 600,
    strictPreflight: true,
  });
}
