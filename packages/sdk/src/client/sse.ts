// Server-Sent Events over fetch streaming (EventSource cannot send an Authorization header),
// and a stream of EventView that survives dropped connections: it reconnects with backoff
// (the transport fails over to the next URL) and resumes with Last-Event-ID = the last seq
// it delivered, so a consumer sees every event once and in seq order.

import type { EventView } from '../wire.ts';
import { FlotillaApiError, FlotillaNetworkError } from './errors.ts';
import type { Transport } from './transport.ts';

export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/** Incremental SSE parser (the WHATWG event-stream format): feed text, get whole messages. */
export class SseParser {
  #buffer = '';
  #data: string[] = [];
  #event = '';
  #id: string | undefined;
  /** The last `retry:` value the server sent, in ms. */
  retryMs: number | undefined;

  push(chunk: string): SseMessage[] {
    this.#buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const nl = this.#buffer.search(/\r\n|\r|\n/);
      if (nl < 0) break;
      // A lone \r at the very end may be the first half of \r\n split across chunks: wait.
      if (this.#buffer[nl] === '\r' && nl === this.#buffer.length - 1) break;
      const width = this.#buffer.startsWith('\r\n', nl) ? 2 : 1;
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + width);
      const message = this.#line(line);
      if (message) out.push(message);
    }
    return out;
  }

  #line(line: string): SseMessage | null {
    if (line === '') {
      // A blank line dispatches the message; one without data lines is dropped (spec).
      if (this.#data.length === 0) {
        this.#event = '';
        return null;
      }
      const message = { id: this.#id, event: this.#event || 'message', data: this.#data.join('\n') };
      this.#data = [];
      this.#event = '';
      return message;
    }
    if (line.startsWith(':')) return null; // comment: the opening line, keepalives
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data': this.#data.push(value); break;
      case 'event': this.#event = value; break;
      case 'id': if (!value.includes('\0')) this.#id = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.retryMs = Number(value); break;
    }
    return null;
  }
}

export interface EventStreamOptions {
  /** Start after this seq (exclusive). Without it: from the oldest stored event. */
  after?: number;
  taskId?: string;
  agent?: string;
  types?: string[];
  signal?: AbortSignal;
  /** Reconnect when nothing (not even a keepalive) arrives for this long. Default 45 s (server keepalive: 15 s). */
  idleTimeoutMs?: number;
  /** First reconnect delay; doubles up to the server's `retry:` (or 5 s). Default 100 ms. */
  minBackoffMs?: number;
}

/** Waits `ms`, or less if `signal` aborts (then resolves, the caller checks the signal). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Worth reconnecting after: transport failures and server-side trouble, not client mistakes. */
function transient(err: unknown): boolean {
  if (err instanceof FlotillaNetworkError) return true;
  if (err instanceof FlotillaApiError) return err.status >= 500 || err.status === 429;
  // A stream that broke mid-body (socket reset) surfaces as a TypeError from the reader.
  return err instanceof TypeError;
}

export async function* streamEvents(transport: Transport, opts: EventStreamOptions = {}): AsyncGenerator<EventView, void, undefined> {
  // Our own controller: aborted when the consumer breaks out (finally) or the caller's
  // signal fires, so the open fetch is always released.
  const stop = new AbortController();
  const onAbort = () => stop.abort(opts.signal?.reason);
  if (opts.signal?.aborted) return;
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const minBackoff = opts.minBackoffMs ?? 100;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 45_000;
  let lastSeq: number | null = opts.after ?? null;
  let failures = 0;
  let serverRetryMs: number | undefined;
  try {
    while (!stop.signal.aborted) {
      const connection = new AbortController();
      const onStop = () => connection.abort();
      stop.signal.addEventListener('abort', onStop, { once: true });
      let idleTimer: ReturnType<typeof setTimeout> | undefined;
      const armIdle = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => connection.abort(), idleTimeoutMs);
      };
      try {
        const response = await transport.open('/events', {
          query: { taskId: opts.taskId, agent: opts.agent, type: opts.types },
          ...(lastSeq === null ? {} : { headers: { 'last-event-id': String(lastSeq) } }),
          signal: connection.signal,
        });
        if (!response.body) throw new FlotillaNetworkError('event stream response has no body', { url: response.url });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser();
        armIdle();
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            armIdle();
            // Connected and reading: the next drop starts again from the shortest backoff.
            failures = 0;
            if (parser.retryMs !== undefined) serverRetryMs = parser.retryMs;
            for (const message of parser.push(value)) {
              const event = JSON.parse(message.data) as EventView;
              // The server sends each seq once; this guards the resume boundary anyway.
              if (lastSeq !== null && event.seq <= lastSeq) continue;
              lastSeq = event.seq;
              yield event;
              if (stop.signal.aborted) return;
            }
          }
        } finally {
          clearTimeout(idleTimer);
          await reader.cancel().catch(() => undefined);
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        // An idle timeout aborts only this connection: reconnect like after a drop.
        if (!connection.signal.aborted && !transient(err)) throw err;
      } finally {
        clearTimeout(idleTimer);
        stop.signal.removeEventListener('abort', onStop);
        connection.abort();
      }
      if (stop.signal.aborted) return;
      // Dropped (server restart, node death, idle): back off, then resume from lastSeq.
      const cap = serverRetryMs ?? 5_000;
      const delay = Math.min(cap, minBackoff * 2 ** failures);
      failures += 1;
      await pause(delay * (0.5 + Math.random() / 2), stop.signal);
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    stop.abort();
  }
}

export interface EventListOptions {
  after?: number;
  taskId?: string;
  agent?: string;
  types?: string[];
  /** Events read per request (server: 1..1000, default 500). */
  pageSize?: number;
  signal?: AbortSignal;
}

/** Stored events as an async iterator over JSON pages (GET /events/page); no live tail. */
export async function* listEvents(transport: Transport, opts: EventListOptions): AsyncGenerator<EventView, void, undefined> {
  let after = opts.after ?? 0;
  for (;;) {
    const page = await transport.request<{ items: EventView[]; lastSeq: number; more: boolean }>('GET', '/events/page', {
      idempotent: true,
      signal: opts.signal,
      query: { after, limit: opts.pageSize, taskId: opts.taskId, agent: opts.agent, type: opts.types },
    });
    yield* page.items;
    if (!page.more) return;
    after = page.lastSeq;
  }
}
