// The WebSocket worker endpoint, `GET /api/v1/workers/socket` (docs/protocol.md, part 2),
// and the hub that routes pushes to connected replicas. Authentication is the upgrade
// request's bearer token, checked by the same hook as every HTTP route.
//
// Pushes come from the event bus, which carries every committed event of every node (with
// a multi-node store the relay feeds it), so a cancel requested on another node reaches the
// worker connected here as soon as the event is committed.

import websocket from '@fastify/websocket';
import type { Ajv } from 'ajv';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from '../error-handler.ts';
import type { WebSocket } from 'ws';
import type { EventRecord } from '../../core/types.ts';
import type { Engine } from '../../engine/engine.ts';
import { socketMessageSchemas, type SocketOp } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { bearerToken, principalOf } from '../auth.ts';
import { CLOSE, WorkerSession, type SessionHub } from './worker-session.ts';

/** What an event means for the worker holding the attempt, if anything. */
function pushFor(event: EventRecord): Record<string, unknown> | null {
  if (event.assignmentId === null) return null;
  const base = { assignmentId: event.assignmentId, taskId: event.taskId };
  const data = (event.data ?? {}) as { outcome?: unknown; reason?: unknown };
  switch (event.type) {
    case 'task.cancel_requested':
      return { push: 'cancel', ...base };
    case 'task.retrying':
    case 'task.failed':
      // The worker's own `fail` needs no push; an expiry decided by the server does, and so
      // does an operator's fail (POST /tasks/{id}/fail): the handler stops and reports nothing.
      if (data.outcome === 'operator_failed') return { push: 'revoke', ...base, reason: 'failed' };
      return data.outcome === 'timed_out' || data.outcome === 'lost' ? { push: 'revoke', ...base, reason: data.outcome } : null;
    case 'task.cancelled':
      return data.reason === 'grace_expired' ? { push: 'revoke', ...base, reason: 'cancelled' } : null;
    default:
      return null;
  }
}

export class WorkerSocketHub implements SessionHub {
  readonly #sessions = new Map<string, WorkerSession>();
  #unsubscribe: (() => void) | null = null;

  constructor(engine: Engine) {
    this.#unsubscribe = engine.ctx.bus.subscribe((event) => this.#onEvent(event));
  }

  get size(): number {
    return this.#sessions.size;
  }

  attach(replicaId: string, session: WorkerSession): boolean {
    const previous = this.#sessions.get(replicaId);
    if (previous && previous !== session) {
      // Newer is the later registration (its replica.connected seq), not the later hello to finish.
      if (previous.connectedSeq > session.connectedSeq) return false;
      previous.close(CLOSE.replaced, 'a newer connection registered this replica');
    }
    this.#sessions.set(replicaId, session);
    return true;
  }

  detach(replicaId: string, session: WorkerSession): void {
    if (this.#sessions.get(replicaId) === session) this.#sessions.delete(replicaId);
  }

  #onEvent(event: EventRecord): void {
    if (event.replicaId === null) return;
    const session = this.#sessions.get(event.replicaId);
    if (!session) return;
    // Replica events from before this connection registered (relayed late from another node) are history.
    if (event.type.startsWith('replica.') && event.seq <= session.connectedSeq) return;
    if (event.type === 'replica.connected') {
      // Registered again by another connection (on any node, or over HTTP): that one is newer.
      session.close(CLOSE.replaced, 'a newer connection registered this replica');
      return;
    }
    if (event.type === 'replica.lost' || event.type === 'replica.disconnected') {
      session.close(CLOSE.replicaNotLive, 'the replica is no longer live; say hello again');
      return;
    }
    const push = pushFor(event);
    if (push) session.push(push);
  }

  /** Server shutdown: tell every worker to reconnect (elsewhere, or here after the restart). */
  closeAll(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    for (const session of [...this.#sessions.values()]) session.close(CLOSE.serviceRestart, 'the server is restarting; reconnect');
  }
}

/** At most one warning line per this interval for clients' protocol errors (the rest are counted). */
const CLIENT_ERROR_LOG_MS = 10_000;

/**
 * Errors of the WebSocket layer. A client's protocol error (ws's `WS_ERR_*` codes: a frame
 * over the size limit, a bad opcode, text that is not UTF-8) is the client's mistake: ws
 * has already closed the connection with the matching code (1009, 1002, 1007) and the
 * client is told that way; the server logs a warning without a stack, at most once per
 * CLIENT_ERROR_LOG_MS (with how many were not logged), so any client cannot fill the log.
 * Anything else is the server's and is logged as an error.
 */
function socketErrorHandler(): (error: Error, socket: WebSocket, request: FastifyRequest) => void {
  let lastLoggedAt = -Infinity;
  let notLogged = 0;
  return (error, socket, request) => {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
      const now = Date.now();
      if (now - lastLoggedAt < CLIENT_ERROR_LOG_MS) {
        notLogged++;
        return;
      }
      request.log.warn({ code, reason: error.message, source: request.ip, notLoggedSince: notLogged }, 'a WebSocket client broke the protocol; its connection was closed');
      lastLoggedAt = now;
      notLogged = 0;
      return;
    }
    request.log.error({ err: error }, 'WebSocket connection error');
    socket.terminate();
  };
}

/**
 * Registers WebSocket support on the root instance. It must come before the other hooks:
 * its own onRequest hook marks upgrade requests so that an upgrade refused by a later hook
 * (401, 503) gets its socket destroyed after the answer instead of left open.
 */
export async function installWebSockets(app: FastifyInstance, engine: Engine): Promise<WorkerSocketHub> {
  const hub = new WorkerSocketHub(engine);
  await app.register(websocket, {
    options: { maxPayload: engine.ctx.config.bodyLimitBytes },
    errorHandler: socketErrorHandler(),
    preClose(done) {
      hub.closeAll();
      // Connections that never said hello are not in the hub.
      for (const client of app.websocketServer.clients) client.close(CLOSE.serviceRestart, 'the server is restarting; reconnect');
      // ws emits the server's 'close' only once every client is gone; the HTTP server's
      // own close (forceCloseConnections) ends the sockets, so do not wait for it here.
      app.websocketServer.close();
      done();
    },
  });
  return hub;
}

export function workerSocketRoutes(app: FastifyInstance, engine: Engine, ajv: Ajv, hub: WorkerSocketHub): void {
  const validators = Object.fromEntries(
    Object.entries(socketMessageSchemas).map(([op, schema]) => [op, ajv.compile(schema)]),
  ) as Record<SocketOp, ReturnType<Ajv['compile']>>;
  const handler = (socket: WebSocket, request: FastifyRequest) => {
    const token = bearerToken(request.headers.authorization) ?? '';
    void new WorkerSession({
      socket, engine, principal: principalOf(request), validators, hub, log: request.log, source: request.ip,
      reauthenticate: () => engine.auth.authenticate(token), rateLimiter: request.server.rateLimiter,
    });
  };
  // A plain request (no upgrade) to a socket endpoint gets an answer in the API's shape.
  const notUpgraded = (_request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply.header('upgrade', 'websocket'), 'UPGRADE_REQUIRED', 'this endpoint speaks WebSocket: send a GET with Upgrade: websocket');
  const socketAnswers = {
    response: answers({ 426: 'Error' }),
    documentedResponses: { 101: { description: 'Switching Protocols: the connection speaks the WebSocket protocol of docs/protocol.md §11' } },
  };
  app.route({
    method: 'GET', url: '/workers/socket', wsHandler: handler, handler: notUpgraded,
    schema: { summary: 'The WebSocket worker protocol: assignments are pushed, reports are messages (docs/protocol.md)', tags: ['workers'], ...socketAnswers },
  });
  // The same protocol for any principal: clients pipeline submits and reads over it; each op
  // is authorized by its own action (a worker op still needs worker.work).
  app.route({
    method: 'GET', url: '/socket', wsHandler: handler, handler: notUpgraded,
    schema: { summary: 'WebSocket API: pipelined submits and reads, and the worker protocol (docs/protocol.md)', tags: ['tasks'], ...socketAnswers },
  });
}
