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

export function installLingeringClose(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    // Only where the body was refused unread: every other answer closes as Node decides.
    if (reply.statusCode === 413 && !request.raw.complete) lingerOnClose(request.raw.socket);
    return payload;
  });
}
