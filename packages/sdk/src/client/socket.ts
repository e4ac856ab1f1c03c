// Pipelined calls over one WebSocket (the client side of docs/protocol.md, section 11): with
// `transport: 'websocket'`, submits and reads are messages on one connection instead of one
// HTTP request each, so many can be in flight at the cost of a frame apiece.
//
// A call whose connection drops before its reply fails with FlotillaNetworkError (it may or
// may not have been applied, exactly as an HTTP request whose answer was lost); the next call
// reconnects, trying the configured URLs in turn.
//
// A reply carries the HTTP status its twin route answers with, and its result is that
// route's body (docs/decisions.md 36). Servers from before that sent no `status`, and
// their `submit` result was `{created, task}`: `call` gives the status as undefined then.

import { ERROR_STATUS } from '../errors.ts';
import { apiErrorFromReply, FlotillaApiError, FlotillaNetworkError } from './errors.ts';
import { apiBase, socketUrl } from './transport.ts';

/** A WHATWG WebSocket constructor; Node's global one accepts `{ headers }` (undici). */
export type WebSocketLike = new (url: string, init?: { headers?: Record<string, string> }) => WebSocket;

type Reply = { re: number | string | null; ok: boolean; status?: number; result?: unknown; error?: { code: string; message: string; details?: unknown } };

/** A successful reply: what the op's HTTP twin answers (status undefined from servers older than `status`). */
export interface SocketAnswer<T> {
  status: number | undefined;
  result: T;
}

interface Pending {
  resolve(value: SocketAnswer<unknown>): void;
  reject(err: Error): void;
}

export class SocketClient {
  readonly #urls: string[];
  readonly #token: string;
  readonly #WebSocket: WebSocketLike;
  #socket: WebSocket | null = null;
  #opening: Promise<WebSocket> | null = null;
  #current = 0;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #closed = false;

  constructor(opts: { urls: string[]; token: string; WebSocket?: WebSocketLike }) {
    const impl = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketLike }).WebSocket;
    if (!impl) throw new TypeError('Flotilla: no WebSocket in this runtime; pass `WebSocket` or use transport: "http"');
    this.#urls = opts.urls.map(apiBase);
    this.#token = opts.token;
    this.#WebSocket = impl;
  }

  /** The op's result (its HTTP twin's body). */
  async request<T>(op: string, fields: Record<string, unknown>): Promise<T> {
    return (await this.call<T>(op, fields)).result;
  }

  /** The op's status and result, as its HTTP twin would answer them. */
  async call<T>(op: string, fields: Record<string, unknown>): Promise<SocketAnswer<T>> {
    if (this.#closed) throw new FlotillaNetworkError('the client was closed', { url: this.#urls[this.#current]! });
    const socket = await this.#connected();
    const id = this.#nextId++;
    return new Promise<SocketAnswer<T>>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: SocketAnswer<unknown>) => void, reject });
      socket.send(JSON.stringify({ op, id, ...fields }));
    });
  }

  /** Closes the connection; calls still waiting fail with FlotillaNetworkError. */
  close(): void {
    this.#closed = true;
    this.#socket?.close(1000, 'client closed');
    this.#failAll('the client was closed');
  }

  #connected(): Promise<WebSocket> {
    if (this.#socket && this.#socket.readyState === this.#socket.OPEN) return Promise.resolve(this.#socket);
    this.#opening ??= this.#open().finally(() => (this.#opening = null));
    return this.#opening;
  }

  async #open(): Promise<WebSocket> {
    let lastError: unknown = null;
    for (let tried = 0; tried < this.#urls.length; tried++) {
      const base = this.#urls[this.#current]!;
      const socket = new this.#WebSocket(socketUrl(base, '/socket'), { headers: { authorization: `Bearer ${this.#token}` } });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.onopen = () => resolve();
          socket.onerror = () => reject(new FlotillaNetworkError(`could not open a WebSocket to ${base}`, { url: base }));
          socket.onclose = () => reject(new FlotillaNetworkError(`${base} closed the WebSocket before it opened (a refused token answers 401)`, { url: base }));
        });
      } catch (err) {
        lastError = err;
        this.#current = (this.#current + 1) % this.#urls.length;
        continue;
      }
      socket.onmessage = (e) => this.#onMessage(e.data);
      socket.onerror = () => {};
      socket.onclose = () => {
        if (this.#socket === socket) this.#socket = null;
        this.#failAll(`the connection to ${base} closed before the reply`);
      };
      this.#socket = socket;
      return socket;
    }
    throw lastError;
  }

  #onMessage(data: unknown): void {
    let frame: Reply;
    try {
      frame = JSON.parse(String(data)) as Reply;
    } catch {
      return;
    }
    if (typeof frame.re !== 'number') return;
    const pending = this.#pending.get(frame.re);
    if (!pending) return;
    this.#pending.delete(frame.re);
    if (frame.ok) return pending.resolve({ status: typeof frame.status === 'number' ? frame.status : undefined, result: frame.result });
    const e = frame.error ?? { code: 'INTERNAL', message: 'malformed reply' };
    pending.reject(apiErrorFromReply(e, frame.status) ?? new FlotillaApiError({ code: 'INTERNAL', status: frame.status ?? ERROR_STATUS.INTERNAL, message: e.message }));
  }

  #failAll(message: string): void {
    const url = this.#urls[this.#current]!;
    for (const pending of this.#pending.values()) pending.reject(new FlotillaNetworkError(message, { url }));
    this.#pending.clear();
  }
}
