// A body the server refuses before reading it (413: larger than the limit) is answered, and
// the connection closed, without the client losing the answer.
//
// Node closes such a connection as soon as the answer is written (`Connection: close`). The
// client is usually still sending the body then; bytes that arrive at a closed socket make
// the kernel answer with a reset, and a reset makes the client's kernel discard what it had
// received but not yet read: the 413 itself. So the close lingers, as web servers have long
// done: the answer and a FIN go out, what the client still sends is read and discarded, and
// the socket is destroyed when the client has closed its side, or after LINGER_MS at most.

import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** How long a refused client may go on sending before the connection is cut regardless. */
export const LINGER_MS = 3_000;

const lingering = new WeakSet<Socket>();

/** Replaces the close Node performs after the answer (`destroySoon`) with a lingering one. */
function lingerOnClose(socket: Socket): void {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  socket.destroySoon = function lingeringClose(this: Socket): void {
    if (this.destroyed) return;
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    // The client closed its side: it has read the answer (or given up on it).
    this.once('end', () => this.destroy());
    this.end();
    // Whatever still arrives is the refused body (Node's HTTP parser discards it).
    this.resume();
  };
}

/**
 * Must be installed before every other hook: a request that arrives on a lingering socket
 * (pipelined after the refused body) is never run. It would otherwise be executed with its
 * answer going nowhere, since the connection is already closing; it is dropped unanswered,
 * and the client, which got `Connection: close`, sends it again on a new connection.
 */
export function installLingeringClose(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    if (lingering.has(request.raw.socket)) {
      reply.hijack();
      return;
    }
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    // Only where the body was refused unread: every other answer closes as Node decides.
    if (reply.statusCode === 413 && !request.raw.complete) lingerOnClose(request.raw.socket);
    done(null, payload);
  });
}
