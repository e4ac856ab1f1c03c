// The client entry point: `new Flotilla({ url, token })`. One transport (and so one failover
// position) is shared by every call of a client.

import type { Overview } from './types.ts';
import type { EventStreamOptions } from './sse.ts';
import type { EventView } from '../wire.ts';
import { AgentsApi } from './agents.ts';
import { SchedulesApi } from './schedules.ts';
import { AuditApi } from './audit.ts';
import { KeysApi } from './keys.ts';
import { ReportsApi } from './reports.ts';
import { RateLimitsApi, UsageApi } from './flow.ts';
import { listEvents, type EventListOptions, streamEvents } from './sse.ts';
import { TasksApi } from './tasks.ts';
import { TokensApi } from './tokens.ts';
import { WebhooksApi } from './webhooks.ts';
import { SocketClient, type WebSocketLike } from './socket.ts';
import { Transport } from './transport.ts';

export interface FlotillaOptions {
  /** Base URL(s) of Flotilla nodes, e.g. `http://localhost:8080`; several fail over in order. */
  url: string | string[];
  token: string;
  /** A fetch implementation (tests, proxies, older runtimes). Default: the global fetch. */
  fetch?: typeof fetch;
  /** Per-request timeout in ms (default 30 s); long-polls add their wait to it. */
  timeoutMs?: number;
  /**
   * `http` (default): one HTTP request per call. `websocket`: submits (`tasks.submit`,
   * `tasks.submitMany`) are pipelined over one WebSocket (many in flight, a frame each) and
   * answer exactly what they answer over HTTP; everything else, reads included, stays on
   * HTTP. Call `close()` when done, or the open socket keeps the process alive.
   */
  transport?: 'http' | 'websocket';
  /** A WebSocket constructor for `transport: 'websocket'` (default: the global one). */
  WebSocket?: WebSocketLike;
}

export class Flotilla {
  readonly tasks: TasksApi;
  readonly agents: AgentsApi;
  /** API keys (admins). */
  readonly keys: KeysApi;
  /** Scoped tokens: issue (admins, operators), renew (the token itself), revoke. */
  readonly tokens: TokensApi;
  /** The audit log (admins). */
  readonly audit: AuditApi;
  /** Reports over the fleet (readers of every task). */
  readonly reports: ReportsApi;
  /** Webhook subscriptions and their deliveries (docs/webhooks.md). */
  readonly webhooks: WebhooksApi;
  /** Schedules: recurring tasks by cron or interval (admins and operators manage, readers read). */
  readonly schedules: SchedulesApi;
  /** Provider rate limits: read (agent.read), set and removed (rate_limit.manage). */
  readonly rateLimits: RateLimitsApi;
  /** Reported usage and cost, summed (readers of every task). */
  readonly usage: UsageApi;
  readonly events: {
    /** Live events (SSE), resuming across reconnects. */
    stream(opts?: EventStreamOptions): AsyncGenerator<EventView, void, undefined>;
    /** Stored events after `after`, in order, page by page; ends at the newest stored event. */
    list(opts?: EventListOptions): AsyncGenerator<EventView, void, undefined>;
  };
  readonly #transport: Transport;
  readonly #options: FlotillaOptions;
  readonly #socket: SocketClient | null;

  constructor(opts: FlotillaOptions) {
    this.#options = { ...opts };
    this.#transport = new Transport({
      urls: Array.isArray(opts.url) ? opts.url : [opts.url],
      token: opts.token,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    this.#socket = opts.transport === 'websocket'
      ? new SocketClient({ urls: Array.isArray(opts.url) ? opts.url : [opts.url], token: opts.token, ...(opts.WebSocket ? { WebSocket: opts.WebSocket } : {}) })
      : null;
    this.tasks = new TasksApi(this.#transport, this.#socket);
    this.agents = new AgentsApi(this.#transport);
    this.keys = new KeysApi(this.#transport);
    this.tokens = new TokensApi(this.#transport);
    this.audit = new AuditApi(this.#transport);
    this.reports = new ReportsApi(this.#transport);
    this.webhooks = new WebhooksApi(this.#transport);
    this.schedules = new SchedulesApi(this.#transport);
    this.rateLimits = new RateLimitsApi(this.#transport);
    this.usage = new UsageApi(this.#transport);
    const transport = this.#transport;
    this.events = {
      stream: (streamOpts = {}) => streamEvents(transport, streamOpts),
      list: (listOpts = {}) => listEvents(transport, listOpts),
    };
  }

  /**
   * A client with the same URLs and options but another token: after `tokens.renew()`,
   * `flotilla = flotilla.withToken(renewed.token)`. (A client's token is fixed, so calls
   * already under way, and any other holder of this client, keep the one they have.)
   */
  withToken(token: string): Flotilla {
    // A new client opens its own socket (if any) when it first needs one.
    return new Flotilla({ ...this.#options, token });
  }

  /** Closes the WebSocket of `transport: 'websocket'` (a no-op over HTTP). */
  close(): void {
    this.#socket?.close();
  }

  /** System-wide counts: tasks by status, agents, live/total replicas. */
  overview(opts: { signal?: AbortSignal } = {}): Promise<Overview> {
    return this.#transport.request('GET', '/overview', { idempotent: true, signal: opts.signal });
  }
}
