// Every error leaves the server as {"error":{"code","message"}} with the status from the
// one table in @flotilla/sdk (ERROR_STATUS). Fastify's own errors (bad JSON, body too
// large, schema validation) are translated to stable codes here; anything unexpected is
// logged and answered as INTERNAL without leaking internals. Every 503 carries Retry-After.

import { ERROR_STATUS, type ErrorBody, type ErrorCode } from '@flotilla/sdk';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { FlotillaError } from '../core/errors.ts';

/**
 * `Retry-After` (seconds) of every 503 (STORE_UNAVAILABLE, SHUTTING_DOWN): long enough that a
 * fleet of clients does not hammer a database that is coming back, short enough that nobody
 * waits long once it is back (docs/protocol.md §5). Clients still back off on repeated 503s.
 */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

export function sendError(reply: FastifyReply, code: ErrorCode, message: string, details?: unknown): FastifyReply {
  const body: ErrorBody = { error: { code, message, ...(details === undefined ? {} : { details }) } };
  const status = ERROR_STATUS[code];
  if (status === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

function translate(err: FastifyError): { code: ErrorCode; message: string; details?: unknown } | null {
  if (err.validation) {
    const where = err.validationContext ?? 'request';
    const first = err.validation[0];
    const unknown = first?.keyword === 'additionalProperties' ? ` (${String((first.params as { additionalProperty?: string }).additionalProperty)})` : '';
    return {
      code: 'VALIDATION_FAILED',
      message: `${where}${err.message.startsWith(where) ? err.message.slice(where.length) : ` ${err.message}`}${unknown}`,
      details: err.validation.map((v) => ({ path: v.instancePath, message: v.message, ...(v.keyword === 'additionalProperties' ? { property: (v.params as { additionalProperty?: string }).additionalProperty } : {}) })),
    };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'INVALID_JSON', message: 'the request body is not valid JSON' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'PAYLOAD_TOO_LARGE', message: 'the request body is larger than the server accepts' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send JSON with Content-Type: application/json' };
  }
  if (err instanceof SyntaxError) return { code: 'INVALID_JSON', message: 'the request body is not valid JSON' };
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { code: err.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : err.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'VALIDATION_FAILED', message: err.message };
  }
  return null;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof FlotillaError) {
      if (err.code === 'INTERNAL' || err.code === 'STORE_UNAVAILABLE') request.log.error({ err }, err.message);
      return sendError(reply, err.code, err.message, err.details);
    }
    const known = translate(err);
    if (known) return sendError(reply, known.code, known.message, known.details);
    request.log.error({ err }, 'unhandled error');
    return sendError(reply, 'INTERNAL', 'internal error; see the server log for the request id ' + request.id);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 'NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`));
}
