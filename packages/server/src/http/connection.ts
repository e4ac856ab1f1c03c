// Whether the client of a long request is still there. Watch the response, never the
// request: Node destroys an IncomingMessage (and emits its 'close') as soon as its body has
// been read, long before the connection goes away.

import type { FastifyReply } from 'fastify';

export interface ClientConnection {
  /** Aborted when the connection closes before the response was sent. */
  signal: AbortSignal;
  isConnected(): boolean;
}

export function clientConnection(reply: FastifyReply): ClientConnection {
  const res = reply.raw;
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  // The client may have left while an earlier async step (auth) ran: 'close' will not fire again.
  if (res.destroyed || res.socket?.destroyed === true) controller.abort();
  return {
    signal: controller.signal,
    isConnected: () => !controller.signal.aborted && !res.destroyed && !res.writableEnded && res.socket?.destroyed !== true,
  };
}
