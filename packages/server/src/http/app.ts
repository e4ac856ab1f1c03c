// Builds the Fastify application: validation, authentication, error mapping, routes.
// Kept free of process concerns (ports, signals) so tests drive it with `app.inject`.

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Logger } from 'pino';
import type { Engine } from '../engine/engine.ts';
import { installAuth } from './auth.ts';
import { installCors } from './cors.ts';
import { inadmissibleJson } from '../core/json-limits.ts';
import { FlotillaError } from '../core/errors.ts';
import { installLingeringClose } from './lingering-close.ts';
import { installErrorHandling, sendError } from './error-handler.ts';
import { installRateLimit } from './rate-limit.ts';
import { installSecurityHeaders } from './security-headers.ts';
import { collectRoutes, openApiDocument } from './openapi.ts';
import { answers } from '../schemas/responses.ts';
import { responseSerializer } from './serializers.ts';
import { agentRoutes } from './routes/agents.ts';
import { eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { taskRoutes } from './routes/tasks.ts';
import { securityRoutes } from './routes/security.ts';
import { mcpRoutes } from './routes/mcp.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { flowRoutes } from './routes/flow.ts';
import { workerRoutes } from './routes/workers.ts';
import { reportBatchRoutes } from './routes/report-batch.ts';
import { installAuditHook } from './audit-hook.ts';
import { installWebSockets, workerSocketRoutes } from './socket/worker-socket.ts';
import { a2aRoutes, installA2aBodyParser } from './a2a/routes.ts';

export const API_PREFIX = '/api/v1';
export const VERSION = '0.1.0';

export interface AppState {
  shuttingDown: boolean;
}

/**
 * Two validators: bodies are validated strictly (no type coercion: `"priority": "5"` is an
 * error, not a 5), query strings and path parameters are coerced (they are always text) and
 * a single `?status=x` becomes a one-element array. Unknown properties are rejected, never
 * silently dropped.
 */
function validators(): { body: Ajv; query: Ajv } {
  const make = (coerce: boolean) => {
    const ajv = new Ajv({ allErrors: false, coerceTypes: coerce ? 'array' : false, removeAdditional: false, useDefaults: false, strict: false, strictNumbers: true });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    return ajv;
  };
  return { body: make(false), query: make(true) };
}

/**
 * A query or path validator that also refuses what coercion made of the text: `?after=1e400`
 * coerces to Infinity, which ajv's coerced integer and number types let through, `maximum`
 * included (hostile-input.test.ts shows it). Bodies are checked where they are parsed (see
 * the JSON parser below).
 */
function coercedPartValidator(validate: ValidateFunction): (data: unknown) => boolean {
  const check = (data: unknown): boolean => {
    if (!validate(data)) {
      check.errors = validate.errors;
      return false;
    }
    const problem = inadmissibleJson(data);
    check.errors = problem === null ? null : [{ instancePath: '', schemaPath: '#', keyword: 'inadmissible', params: {}, message: problem }];
    return problem === null;
  };
  check.errors = null as ValidateFunction['errors'];
  return check;
}

export async function buildApp(params: { engine: Engine; log: Logger; state?: AppState }): Promise<FastifyInstance> {
  const { engine } = params;
  const state = params.state ?? { shuttingDown: false };
  const app = Fastify({
    // pino's Logger and Fastify's FastifyBaseLogger differ only in typing details.
    loggerInstance: params.log as unknown as FastifyBaseLogger,
    bodyLimit: engine.ctx.config.bodyLimitBytes,
    // Per-request access logs cost more than the requests themselves on the hot path
    // (lease, complete); errors are still logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // Our own hook answers 503 SHUTTING_DOWN in the API's error shape (see below).
    return503OnClosing: false,
    forceCloseConnections: true,
    requestIdHeader: 'x-request-id',
    genReqId: () => engine.ctx.newId(),
    // Ids and names are at most 128 characters (schemas), which percent-encoding can triple.
    routerOptions: { maxParamLength: 1024 },
    // The router's own refusals (a malformed URL, an over-long path parameter) in the API's error shape.
    frameworkErrors: (err, _request, reply) => sendError(reply, 'VALIDATION_FAILED', err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? 'a path parameter is longer than the server accepts'
      : 'the request URL is malformed'),
  });
  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => httpPart === 'body' ? ajv.body.compile(schema) : coercedPartValidator(ajv.query.compile(schema)));
  // JSON only: other media types get 415 rather than being parsed as text and failing later.
  app.removeContentTypeParser('text/plain');
  // Where a request body's JSON enters, whatever the route (schema or not): parsed as Fastify
  // does (prototype poisoning refused), then held to the one rule of core/json-limits.ts.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    void parseJson(request, body as string, (err, parsed) => {
      if (err) return done(err, undefined);
      const problem = inadmissibleJson(parsed);
      if (problem !== null) return done(new FlotillaError('VALIDATION_FAILED', `body: ${problem}`), undefined);
      done(null, parsed);
    });
  });
  installLingeringClose(app);
  installErrorHandling(app);
  const sockets = await installWebSockets(app, engine);
  app.addHook('onRequest', async (_request, reply) => {
    if (state.shuttingDown) return sendError(reply.header('connection', 'close'), 'SHUTTING_DOWN', 'the server is shutting down; retry on another node or after it restarts');
  });
  await installCors(app, engine.ctx.config);
  await installRateLimit(app, engine.ctx);
  installAuth(app, engine.auth);
  installAuditHook(app, engine.audit);
  installSecurityHeaders(app, engine.ctx.config);
  // Path and query text, also on routes without a schema for them (bodies: the parser above).
  app.addHook('preValidation', async (request, reply) => {
    const problem = inadmissibleJson(request.query) ?? inadmissibleJson(request.params);
    if (problem !== null) return sendError(reply, 'VALIDATION_FAILED', problem);
  });
  const routes = collectRoutes(app);
  // Every answer is serialized through its route's response schema (schemas/responses.ts).
  app.setSerializerCompiler(responseSerializer);

  healthRoutes(app, engine, state);
  await app.register(async (api) => {
    taskRoutes(api, engine);
    agentRoutes(api, engine);
    workerRoutes(api, engine);
    reportBatchRoutes(api, engine, ajv.body);
    workerSocketRoutes(api, engine, ajv.body, sockets);
    eventRoutes(api, engine);
    securityRoutes(api, engine);
    mcpRoutes(api, engine);
    webhookRoutes(api, engine);
    scheduleRoutes(api, engine);
    flowRoutes(api, engine);
    api.get('/openapi.json', { schema: { summary: 'This document', tags: ['meta'], response: answers({ 200: 'OpenApiDocument' }) } }, async () => openApiDocument(routes, VERSION));
  }, { prefix: API_PREFIX });
  await app.register(async (scope) => {
    installA2aBodyParser(scope);
    a2aRoutes(scope, engine, VERSION);
  });
  return app;
}
