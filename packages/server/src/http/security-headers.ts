// Security headers on every response, errors and 404s included (docs/decisions.md,
// "Security headers"). The API serves JSON to programs, never pages, so the headers say
// so as strictly as browsers allow:
//
// - `X-Content-Type-Options: nosniff`: JSON is never sniffed into HTML or script;
// - `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`: a response
//   opened in a browser runs, loads and embeds nothing, and is framed by no page;
// - `X-Frame-Options: DENY`: the same for browsers without `frame-ancestors`;
// - `Referrer-Policy: no-referrer`;
// - `Cross-Origin-Resource-Policy: same-origin`: other sites cannot embed responses
//   (`<script src>`, `<img src>`). It applies to no-cors requests only, so the `fetch`
//   calls of origins allowed by CORS (http/cors.ts) are unaffected;
// - `Cache-Control: no-store` unless the route set its own: answers carry tasks and
//   results, which no shared cache should keep;
// - `Strict-Transport-Security` only with `hsts: true`: the server speaks plain HTTP and
//   leaves TLS to a proxy, and only an operator knows whether every client reaches it over
//   HTTPS (HSTS sent over a connection the browser reached by plain HTTP is ignored anyway).
//
// Responses a route writes itself (the event stream hijacks its reply) get the same headers
// through the raw response, set once the request is authenticated.

import type { FastifyInstance } from 'fastify';
import type { ServerConfig } from '../config/config.ts';

export function securityHeaders(config: Pick<ServerConfig, 'hsts'>): Record<string, string> {
  return {
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'cross-origin-resource-policy': 'same-origin',
    ...(config.hsts ? { 'strict-transport-security': 'max-age=31536000' } : {}),
  };
}

export function installSecurityHeaders(app: FastifyInstance, config: Pick<ServerConfig, 'hsts'>): void {
  const headers = Object.entries(securityHeaders(config));
  app.addHook('onSend', async (_request, reply) => {
    for (const [name, value] of headers) reply.header(name, value);
    reply.header('cache-control', reply.getHeader('cache-control') ?? 'no-store');
  });
  // For replies a route writes to the raw response (reply.hijack): the headers set on the
  // reply so far (CORS) and the security headers. Headers the reply sets later win.
  app.addHook('onRequest', async (_request, reply) => {
    for (const [name, value] of headers) reply.raw.setHeader(name, value);
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined && (name.startsWith('access-control-') || name === 'vary')) reply.raw.setHeader(name, value);
    }
  });
}
