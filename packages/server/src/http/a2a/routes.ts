// The A2A transport (decisions.md 79-84): the fleet's agent card, and JSON-RPC for A2A v1.0
// and v0.3, served by the SDK's own transport handlers over FlotillaA2aHandler. Everything
// protocol is the SDK's (method names, envelopes, error codes, the v0.3 translation, SSE
// frames); what is here is HTTP: authentication (the app's hook), the method's action, the
// version a request speaks, the stream's connection.

import { A2A_VERSION_HEADER, formatSSEErrorEvent, formatSSEEvent, SSE_HEADERS } from '@a2a-js/sdk';
import { A2A_ERROR_CODE, RequestMalformedError, VersionNotSupportedError } from '@a2a-js/sdk/errors';
import { LegacyJsonRpcTransportHandler } from '@a2a-js/sdk/compat/v0_3/server';
import { JsonRpcTransportHandler, ServerCallContext, validateVersion } from '@a2a-js/sdk/server';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { inadmissibleJson } from '../../core/json-limits.ts';
import { actionRefusal } from '../../core/permissions.ts';
import type { Engine } from '../../engine/engine.ts';
import { answers, responseRef } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { clientConnection } from '../connection.ts';
import { sendError } from '../error-handler.ts';
import { A2A_JSONRPC_PATH, A2A_LEGACY_JSONRPC_PATH, AGENT_CARD_URL, cardJson, fleetCard } from './card.ts';
import { actionOfRequest } from './method-actions.ts';
import { ABORT_KEY, FlotillaA2aHandler, PrincipalUser } from './request-handler.ts';

const LEGACY_VERSION = '0.3';
/** A comment line this often keeps an idle stream open through proxies (SSE clients skip it). */
const KEEPALIVE_MS = 15_000;
const JSON_RPC_TYPES = ['application/json', 'application/a2a+json'];

/** The version a request asks for: its A2A-Version header; none means v0.3 (A2A v1.0, §3.6.2). */
function requestedVersion(request: FastifyRequest): string {
  const header = request.headers[A2A_VERSION_HEADER.toLowerCase()];
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined || value.trim() === '' ? LEGACY_VERSION : value.trim();
}

function isLegacy(version: string): boolean {
  return /^0\.3(\.\d+)?$/.test(version);
}

export function a2aRoutes(app: FastifyInstance, engine: Engine, version: string): void {
  const baseUrl = (request: FastifyRequest) => engine.ctx.config.a2aPublicUrl ?? `${request.protocol}://${request.host}`;
  const card = async (request: FastifyRequest) => fleetCard({ baseUrl: baseUrl(request), version, skills: await engine.a2a.skills() });

  app.get(AGENT_CARD_URL, {
    schema: {
      summary: 'The A2A agent card of the fleet: a skill per published agent (a2aSkill), bearer auth, the JSON-RPC interfaces (docs/a2a.md). As A2A v1.0 with `A2A-Version: 1.0`, else as v0.3',
      tags: ['a2a'],
      response: answers({ 200: 'A2aAgentCard' }),
    },
  }, async (request, reply) => {
    const legacy = isLegacy(requestedVersion(request));
    reply.header('vary', A2A_VERSION_HEADER).header('cache-control', 'public, max-age=60');
    return cardJson(await card(request), legacy);
  });

  for (const [path, fixedLegacy] of [[A2A_JSONRPC_PATH, false], [A2A_LEGACY_JSONRPC_PATH, true]] as const) {
    app.post(path, {
      schema: {
        summary: fixedLegacy
          ? 'A2A v0.3 JSON-RPC (message/send, message/stream, tasks/get, tasks/cancel, tasks/resubscribe, tasks/pushNotificationConfig/*)'
          : 'A2A JSON-RPC: v1.0 with `A2A-Version: 1.0` (SendMessage, SendStreamingMessage, GetTask, CancelTask, SubscribeToTask, *TaskPushNotificationConfig), v0.3 without',
        tags: ['a2a'],
        response: answers({ 200: 'A2aJsonRpcResponse' }),
        documentedResponses: {
          200: {
            description: 'A JSON-RPC response; for the streaming methods a Server-Sent Events stream of JSON-RPC responses (docs/a2a.md). A2A errors are JSON-RPC errors with the spec\'s codes; authentication and authorization are HTTP 401 and 403',
            content: {
              'application/json': { schema: responseRef('A2aJsonRpcResponse') },
              'text/event-stream': { schema: { type: 'string' }, 'x-event-data': responseRef('A2aJsonRpcResponse') },
            },
          },
        },
      },
    }, async (request, reply) => jsonRpc(request, reply, fixedLegacy));
  }

  async function jsonRpc(request: FastifyRequest, reply: FastifyReply, fixedLegacy: boolean): Promise<FastifyReply | undefined> {
    const principal = principalOf(request);
    const version = fixedLegacy ? LEGACY_VERSION : requestedVersion(request);
    const legacy = isLegacy(version);
    const raw = request.body as string;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    const action = actionOfRequest(parsed, legacy);
    const refusal = action === null ? null : actionRefusal(principal, action);
    if (refusal !== null) return sendError(reply, refusal.code, refusal.message, refusal.details);

    const connection = clientConnection(reply);
    const context = new ServerCallContext({
      user: new PrincipalUser(principal), requestedVersion: legacy ? LEGACY_VERSION : version, state: new Map([[ABORT_KEY, connection.signal]]),
    });
    const handler = new FlotillaA2aHandler({ a2a: engine.a2a, card: () => card(request) });
    const mapError = legacy ? LegacyJsonRpcTransportHandler.mapToLegacyJSONRPCError : JsonRpcTransportHandler.mapToJSONRPCError;
    const id = (parsed as { id?: unknown } | undefined)?.id;
    const rpcId = typeof id === 'string' || typeof id === 'number' ? id : null;
    const answer = (body: unknown) => reply.code(200).send(body);

    // JSON-RPC's own code for a body that is not JSON (the SDK's v1.0 handler answers -32602).
    if (parsed === undefined) return answer({ jsonrpc: '2.0', id: null, error: { code: A2A_ERROR_CODE.PARSE_ERROR, message: 'the request body is not JSON' } });
    const problem = inadmissibleJson(parsed);
    if (problem !== null) return answer({ jsonrpc: '2.0', id: rpcId, error: mapError(new RequestMalformedError(`body: ${problem}`)) });
    if (!legacy) {
      try {
        validateVersion(version, await handler.getAgentCard(), 'JSONRPC');
      } catch (err) {
        return answer({ jsonrpc: '2.0', id: rpcId, error: mapError(err instanceof VersionNotSupportedError ? err : new VersionNotSupportedError(String(err))) });
      }
    }
    const transport = legacy ? new LegacyJsonRpcTransportHandler(handler) : new JsonRpcTransportHandler(handler);
    const result = await transport.handle(parsed as Record<string, unknown>, context);
    if (!isStream(result)) return answer(result);

    // A stream: the first event decides (an error before it is a plain JSON-RPC answer).
    const iterator = result[Symbol.asyncIterator]();
    let first: IteratorResult<unknown>;
    try {
      first = await iterator.next();
    } catch (err) {
      return answer({ jsonrpc: '2.0', id: rpcId, error: mapError(err) });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SSE_HEADERS });
    const keepalive = setInterval(() => {
      if (connection.isConnected()) res.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    keepalive.unref();
    try {
      if (!first.done) res.write(formatSSEEvent(first.value));
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        if (!connection.isConnected()) break;
        res.write(formatSSEEvent(next.value));
      }
    } catch (err) {
      request.log.warn({ err }, 'A2A stream failed');
      if (connection.isConnected()) res.write(formatSSEErrorEvent({ jsonrpc: '2.0', id: rpcId, error: mapError(err) }));
    } finally {
      clearInterval(keepalive);
      await iterator.return?.(undefined);
      res.end();
    }
    return undefined;
  }
}

function isStream(value: unknown): value is AsyncGenerator<unknown, void, undefined> {
  return value !== null && typeof value === 'object' && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function';
}

/** The JSON-RPC routes take the body as text: the SDK parses it, and answers bad JSON with -32700. */
export function installA2aBodyParser(scope: FastifyInstance): void {
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser(JSON_RPC_TYPES, { parseAs: 'string' }, (_request, body, done) => done(null, body));
}
