// fetch + URL failover + error mapping. Only web-standard APIs (fetch, AbortSignal, crypto),
// so the client runs in browsers as well as in Node.
//
// Failover rule: a network error or a 503 moves the client to the next URL (and it stays
// there: the next call does not go back to a node that just failed). The failed call itself
// is retried on the next URL only when repeating it is harmless: idempotent calls, or a
// request that provably never left (connection refused). A non-idempotent POST that may
// have been applied surfaces its error instead of running twice.

import { apiErrorFrom, FlotillaApiError, FlotillaNetworkError, parseRetryAfter } from './errors.ts';

export type QueryValue = string | number | boolean | undefined | null | readonly (string | number)[];

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** Safe to send again after a failure that may have been applied. */
  idempotent: boolean;
  signal?: AbortSignal | undefined;
  /** Overrides the client's default per-request timeout (long-polls need more). */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface TransportOptions {
  urls: string[];
  token: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

const API_PREFIX = '/api/v1';

/** Accepts `http://host:port` or `http://host:port/api/v1` (with or without a trailing slash). */
export function apiBase(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.endsWith(API_PREFIX) ? trimmed : trimmed + API_PREFIX;
}

/** The WebSocket URL of a path under an API base (`http://h/api/v1` → `ws://h/api/v1/path`). */
export function socketUrl(base: string, path: string): string {
  return `${apiBase(base).replace(/^http/, 'ws')}${path}`;
}

export function buildQuery(query: Record<string, QueryValue> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    // Arrays are repeated keys (?status=a&status=b): what the server's schemas expect.
    if (Array.isArray(value)) for (const v of value) params.append(key, String(v));
    else params.append(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

function newRequestId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
}

/** True when the request certainly did not reach a server (so even a POST may be resent). */
function neverSent(err: unknown): boolean {
  // Node's fetch (undici) puts the socket error in `cause`; browsers give no detail, and
  // then we must assume the request may have been sent.
  const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

export class Transport {
  readonly #urls: string[];
  readonly #token: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  #current = 0;

  constructor(opts: TransportOptions) {
    if (opts.urls.length === 0) throw new TypeError('Flotilla: at least one URL is required');
    this.#urls = opts.urls.map(apiBase);
    this.#token = opts.token;
    // Bound to globalThis: browsers throw "Illegal invocation" for an unbound fetch.
    this.#fetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** A JSON call; resolves to the parsed body (undefined for 204). */
  async request<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    const res = await this.#send(method, path, opts, false);
    return res.json as T;
  }

  /**
   * Opens a streaming GET (SSE): the timeout covers only the wait for response headers;
   * the body stays open until the caller cancels it or `signal` aborts.
   */
  async open(path: string, opts: Omit<RequestOptions, 'body' | 'idempotent'>): Promise<Response> {
    const res = await this.#send('GET', path, { ...opts, idempotent: true }, true);
    return res.response;
  }

  async #send(method: string, path: string, opts: RequestOptions, stream: boolean): Promise<{ response: Response; json: unknown }> {
    const n = this.#urls.length;
    let lastError: unknown;
    for (let attempt = 0; attempt < n; attempt++) {
      opts.signal?.throwIfAborted();
      const index = this.#current;
      const base = this.#urls[index]!;
      const requestId = newRequestId();
      const controller = new AbortController();
      const onAbort = () => controller.abort(opts.signal?.reason);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
      let timedOut = false;
      let streaming = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      try {
        const headers: Record<string, string> = {
          authorization: `Bearer ${this.#token}`,
          accept: stream ? 'text/event-stream' : 'application/json',
          'x-request-id': requestId,
          ...opts.headers,
        };
        const init: RequestInit = { method, headers, signal: controller.signal };
        if (opts.body !== undefined) {
          headers['content-type'] = 'application/json';
          init.body = JSON.stringify(opts.body);
        }
        const response = await this.#fetch(`${base}${path}${buildQuery(opts.query)}`, init);
        if (response.status === 503) {
          const text = await response.text();
          this.#advance(index);
          lastError = apiErrorFrom(503, text, requestId, parseRetryAfter(response.headers.get('retry-after')));
          // A 503 (shutting down, store unavailable) is retried elsewhere only if that is safe.
          if (opts.idempotent) continue;
          throw lastError;
        }
        if (!response.ok) throw apiErrorFrom(response.status, await response.text(), requestId, parseRetryAfter(response.headers.get('retry-after')));
        if (stream) {
          // The caller's signal keeps cancelling the body (the listener stays); only the
          // header timeout ends here.
          clearTimeout(timer);
          streaming = true;
          return { response, json: undefined };
        }
        const text = response.status === 204 ? '' : await response.text();
        return { response, json: text === '' ? undefined : JSON.parse(text) };
      } catch (err) {
        if (err instanceof FlotillaApiError) throw err;
        // The caller's own abort is not a transport failure: rethrow it as is.
        if (opts.signal?.aborted) throw opts.signal.reason ?? err;
        const message = timedOut
          ? `request ${method} ${path} to ${base} timed out after ${timeoutMs} ms`
          : `request ${method} ${path} to ${base} failed: ${err instanceof Error ? err.message : String(err)}`;
        lastError = new FlotillaNetworkError(message, { url: base, cause: err });
        this.#advance(index);
        if (opts.idempotent || (!isAbort(err) && neverSent(err))) continue;
        throw lastError;
      } finally {
        if (!streaming) cleanup();
      }
    }
    throw lastError;
  }

  /** Moves to the next URL, unless a concurrent call already moved past the failed one. */
  #advance(failed: number): void {
    if (this.#current === failed) this.#current = (failed + 1) % this.#urls.length;
  }
}
