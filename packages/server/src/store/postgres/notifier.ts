// Cross-process signals: one dedicated session per store LISTENs on the schema's channel and
// hands every notification to the store's subscribers (writes send them with pg_notify in
// their own transaction, see events.ts). Subscribers share the session; it is opened with the
// first subscription and closed with the last.
//
// When the session is lost (server restart, network, pg_terminate_backend) it is reopened
// with capped exponential backoff (100 ms doubling to 5 s, with jitter), and once it listens
// again every subscriber receives `{ kind: 'reconnected' }`: notifications sent meanwhile are
// gone, so subscribers act as if every kind of signal had arrived. A session that silently
// stopped answering (a half-open TCP connection) is found by a periodic round trip and
// replaced the same way.

import type pg from 'pg';
import type { StoreSignal } from '../store.ts';
import { quoteIdent } from './connection.ts';
import { storeClosed } from './errors.ts';

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
const HEALTH_INTERVAL_MS = 30_000;
const HEALTH_TIMEOUT_MS = 10_000;

const KINDS: ReadonlySet<string> = new Set(['wake', 'capacity', 'events', 'agents']);

type Listener = (signal: StoreSignal) => void;

export class Notifier {
  readonly #newClient: () => pg.Client;
  readonly #channel: string;
  readonly #isOwn: (processId: number) => boolean;
  readonly #listeners = new Set<Listener>();
  /** The listening session, when there is one. */
  #client: pg.Client | null = null;
  /** The attempt in progress (connect + LISTEN), if any. */
  #connecting: Promise<void> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #healthTimer: NodeJS.Timeout | null = null;
  #backoffMs = MIN_BACKOFF_MS;
  /** Signals may have been missed since the subscribers started listening: tell them once listening again. */
  #missed = false;
  /** Sessions that were replaced or stopped: their late notifications and events are ignored. */
  readonly #retired = new WeakSet<pg.Client>();
  #closed = false;

  constructor(params: {
    newClient: () => pg.Client;
    channel: string;
    /** Whether a backend process id is one of the store's own connections (see StoreSignal.own). */
    isOwn?: (processId: number) => boolean;
  }) {
    this.#newClient = params.newClient;
    this.#channel = params.channel;
    this.#isOwn = params.isOwn ?? (() => false);
  }

  /**
   * Resolves once the subscription is active: a signal committed after that reaches
   * `listener`. If the database cannot be reached, resolves anyway and keeps trying; the
   * listener then receives 'reconnected' when the channel is established.
   */
  async subscribe(listener: Listener): Promise<() => Promise<void>> {
    if (this.#closed) throw storeClosed();
    // A function subscribed twice gets two subscriptions, each with its own unsubscribe.
    const entry: Listener = (signal) => listener(signal);
    this.#listeners.add(entry);
    if (this.#client === null && this.#connecting === null && this.#retryTimer === null) this.#connect();
    if (this.#connecting !== null) await this.#connecting;
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      this.#listeners.delete(entry);
      if (this.#listeners.size === 0) await this.#stop();
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    await this.#stop();
  }

  /** Starts one attempt; on failure schedules the next. Never rejects. */
  #connect(): void {
    const client = this.#newClient();
    const attempt = (async () => {
      // Not `client === this.#client`: a notification may be parsed in the same chunk as the
      // LISTEN's answer, before the session is recorded as the current one.
      client.on('notification', (msg) => {
        if (!this.#retired.has(client) && msg.channel === this.#channel && msg.payload !== undefined) this.#deliver(msg.payload, msg.processId);
      });
      client.on('error', () => this.#lost(client));
      client.on('end', () => this.#lost(client));
      try {
        await client.connect();
        await client.query(`LISTEN ${quoteIdent(this.#channel)}`);
      } catch {
        this.#retire(client);
        this.#missed = true;
        this.#scheduleRetry();
        return;
      }
      if (this.#closed || this.#listeners.size === 0) {
        this.#retire(client);
        return;
      }
      this.#client = client;
      this.#backoffMs = MIN_BACKOFF_MS;
      this.#startHealthChecks(client);
      if (this.#missed) {
        this.#missed = false;
        this.#broadcast({ kind: 'reconnected' });
      }
    })();
    const tracked: Promise<void> = attempt.finally(() => {
      if (this.#connecting === tracked) this.#connecting = null;
    });
    this.#connecting = tracked;
  }

  #retire(client: pg.Client): void {
    this.#retired.add(client);
    void client.end().catch(() => {});
  }

  /** The session ended or failed: forget it and, while anyone listens, open another. */
  #lost(client: pg.Client): void {
    if (client !== this.#client) return;
    this.#client = null;
    this.#stopHealthChecks();
    this.#retire(client);
    this.#missed = true;
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#listeners.size === 0 || this.#retryTimer !== null) return;
    const delay = this.#backoffMs * (0.5 + Math.random() / 2);
    this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#closed || this.#listeners.size === 0 || this.#client !== null || this.#connecting !== null) return;
      this.#connect();
    }, delay);
    this.#retryTimer.unref();
  }

  /** A round trip now and then: a connection that stopped answering is replaced. */
  #startHealthChecks(client: pg.Client): void {
    this.#stopHealthChecks();
    this.#healthTimer = setInterval(() => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the LISTEN session did not answer')), HEALTH_TIMEOUT_MS);
      });
      Promise.race([client.query('SELECT 1'), timeout])
        .catch(() => this.#lost(client))
        .finally(() => clearTimeout(timer));
    }, HEALTH_INTERVAL_MS);
    this.#healthTimer.unref();
  }

  #stopHealthChecks(): void {
    if (this.#healthTimer !== null) clearInterval(this.#healthTimer);
    this.#healthTimer = null;
  }

  async #stop(): Promise<void> {
    // An attempt in progress sees that nobody listens any more and ends its session itself.
    if (this.#connecting !== null) await this.#connecting;
    // Someone subscribed again while we waited: the session is theirs now.
    if (!this.#closed && this.#listeners.size > 0) return;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#stopHealthChecks();
    this.#missed = false;
    const client = this.#client;
    this.#client = null;
    if (client !== null) {
      this.#retired.add(client);
      await client.end().catch(() => {});
    }
  }

  #deliver(payload: string, processId: number): void {
    if (KINDS.has(payload)) this.#broadcast({ kind: payload as 'wake' | 'capacity' | 'events' | 'agents', own: this.#isOwn(processId) });
  }

  #broadcast(signal: StoreSignal): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(signal);
      } catch {
        // A subscriber's failure is its own; the others still hear the signal.
      }
    }
  }
}
