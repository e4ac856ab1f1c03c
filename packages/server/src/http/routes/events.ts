// Live events as Server-Sent Events. Resumable: a client passes the last seq it saw as
// `Last-Event-ID` (browsers' EventSource does so by itself) or `?after=`, and receives every
// later event exactly once, in order: first the backlog from the store, then live ones from
// the bus. Live events that arrive during the replay are buffered and de-duplicated by seq.
// A client too slow to keep up is disconnected (it resumes from its last seq) rather than
// letting its buffer grow without bound.

import type { FastifyInstance } from 'fastify';
import type { EventRecord } from '../../core/types.ts';
import type { Engine } from '../../engine/engine.ts';
import { eventsQuerySchema } from '../../schemas/schemas.ts';
import { answers, responseRef } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { sendError } from '../error-handler.ts';
import { eventView } from '../views.ts';

const REPLAY_PAGE = 500;
const MAX_BUFFERED = 10_000;

/**
 * The SSE frame of an event, made once however many streams send it: the bus hands the same
 * record to every subscriber, and serializing it per stream was most of the server's CPU with
 * 200 subscribers (bench W3, idle fleet).
 */
const frames = new WeakMap<EventRecord, string>();
function frameOf(e: EventRecord): string {
  let frame = frames.get(e);
  if (frame === undefined) {
    frame = `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(eventView(e))}\n\n`;
    frames.set(e, frame);
  }
  return frame;
}
const KEEPALIVE_MS = 15_000;
const REPLAY_DRAIN_MS = 30_000;

/** True once `res` drained, false if it closed or `ms` passed first. */
function drained(res: NodeJS.WritableStream & { destroyed: boolean }, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.removeListener('drain', onDrain);
      res.removeListener('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), ms);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

interface EventsQuery { after?: number; taskId?: string; agent?: string; type?: string[] }

export function eventRoutes(app: FastifyInstance, engine: Engine): void {
  app.get<{ Querystring: EventsQuery & { limit?: number } }>('/events/page', {
    schema: {
      summary: 'Stored events as JSON pages (the same filters as the stream); continue with ?after=lastSeq while more is true',
      tags: ['events'],
      querystring: { ...eventsQuerySchema, properties: { ...eventsQuerySchema.properties, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
      response: answers({ 200: 'EventPage' }),
    },
  }, async (request) => {
    principalOf(request);
    const { after = 0, taskId, agent, type, limit = 500 } = request.query;
    const types = type ? new Set(type) : null;
    const page = await engine.ctx.store.eventList({ after, limit, ...(taskId !== undefined ? { taskId } : {}) });
    // Filters the store cannot apply are applied to the page: a page may hold fewer than
    // `limit` items, and `lastSeq` (the last event scanned) is where the next page starts.
    const items = page.filter((e) => (agent === undefined || e.agent === agent) && (types === null || types.has(e.type)));
    return { items: items.map(eventView), lastSeq: page.at(-1)?.seq ?? after, more: page.length === limit };
  });

  app.get<{ Querystring: EventsQuery }>('/events', {
    schema: {
      summary: 'Live events (Server-Sent Events), filterable, resumable with Last-Event-ID or ?after=', tags: ['events'], querystring: eventsQuerySchema,
      // Errors are answered before the stream starts; the stream itself is written by hand.
      response: answers({}),
      documentedResponses: {
        200: {
          description: 'A Server-Sent Events stream: per event `id: <seq>`, `event: <type>` and `data: <the event as JSON>` (x-event-data), and `: keepalive` comments (docs/protocol.md §9)',
          content: { 'text/event-stream': { schema: { type: 'string' }, 'x-event-data': responseRef('EventView') } },
        },
      },
    },
  }, async (request, reply) => {
    principalOf(request);
    const header = request.headers['last-event-id'];
    let after = request.query.after ?? 0;
    if (typeof header === 'string' && header !== '') {
      if (!/^\d{1,16}$/.test(header) || !Number.isSafeInteger(Number(header))) return sendError(reply, 'VALIDATION_FAILED', 'Last-Event-ID must be an event sequence number');
      after = Math.max(after, Number(header));
    }
    const { taskId, agent, type } = request.query;
    const types = type ? new Set(type) : null;
    const matches = (e: EventRecord) =>
      (taskId === undefined || e.taskId === taskId) && (agent === undefined || e.agent === agent) && (types === null || types.has(e.type));

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': flotilla event stream\nretry: 2000\n\n');

    let lastSent = after;
    let replaying = true;
    let closed = false;
    let corked = false;
    const buffered: EventRecord[] = [];
    const send = (e: EventRecord) => {
      if (e.seq <= lastSent) return;
      lastSent = e.seq;
      if (!matches(e)) return;
      res.write(frameOf(e));
    };
    const close = (destroy = false) => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(keepalive);
      // A stalled client holds its whole write buffer: drop the connection, do not wait on it.
      if (destroy) res.destroy();
      else res.end();
    };
    const unsubscribe = engine.ctx.bus.subscribe((e) => {
      if (closed || !matches(e)) return;
      if (replaying || res.writableNeedDrain) {
        buffered.push(e);
        if (buffered.length > MAX_BUFFERED) close(true);
        return;
      }
      // The events of one publish (a commit's) leave in one write, not one each.
      if (!corked) {
        corked = true;
        res.cork();
        process.nextTick(() => {
          corked = false;
          res.uncork();
        });
      }
      send(e);
    });
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    // The response's 'close', not the request's: see connection.ts.
    res.on('close', () => close());
    if (res.destroyed || res.socket?.destroyed === true) close();
    res.on('drain', () => {
      while (!closed && buffered.length > 0 && !res.writableNeedDrain && !replaying) send(buffered.shift()!);
    });

    try {
      for (;;) {
        const page = await engine.ctx.store.eventList({ after: lastSent, limit: REPLAY_PAGE, ...(taskId !== undefined ? { taskId } : {}) });
        for (const e of page) send(e);
        if (page.length < REPLAY_PAGE || closed) break;
        // Backpressure: wait for the client to take what was written, up to a bound; a client
        // that does not read is dropped (it resumes later with Last-Event-ID).
        if (res.writableNeedDrain && !(await drained(res, REPLAY_DRAIN_MS))) {
          close(true);
          return;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      request.log.error({ err }, 'event replay failed');
      close(true);
      return;
    }
    replaying = false;
    while (!closed && buffered.length > 0 && !res.writableNeedDrain) send(buffered.shift()!);
  });
}
