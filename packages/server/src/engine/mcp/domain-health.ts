// Tool domains' health: the maintenance node checks every domain (connect, ping, list tools)
// and stores the result, so every node agrees; every node keeps a snapshot of the stored
// health (refreshed each interval, and at once from the mcp.domain_down / mcp.domain_up
// events), which the dispatcher, the gateway and the views read without a store read.
//
// Invariant: an event is written only when a domain's status changes (the store guards it),
// and a domain coming back up wakes the dispatcher on every node (its waiting tasks dispatch).

import { performance } from 'node:perf_hooks';
import { UNKNOWN_HEALTH, type ToolDomainHealth, type ToolDomainRecord } from '../../core/tool-domains.ts';
import type { EventRecord } from '../../core/types.ts';
import { announce, type EngineContext } from '../context.ts';
import type { DomainClients } from './domain-clients.ts';

const MAX_ERROR = 1_000;

export class DomainHealth {
  readonly #ctx: EngineContext;
  readonly #clients: DomainClients;
  #domains = new Map<string, ToolDomainRecord>();
  #down = new Set<string>();

  constructor(params: { ctx: EngineContext; clients: DomainClients }) {
    this.#ctx = params.ctx;
    this.#clients = params.clients;
    // Another node's check (through the event relay) or this node's: the snapshot follows at once.
    params.ctx.bus.subscribe((event) => this.#onEvent(event));
  }

  /** Declared domains as last read, by name. */
  domains(): ReadonlyMap<string, ToolDomainRecord> {
    return this.#domains;
  }

  /** Names of the domains down now (empty in the usual case). */
  down(): ReadonlySet<string> {
    return this.#down;
  }

  /**
   * Reads every domain's stored health into the snapshot, and closes this node's clients of
   * domains removed meanwhile (on another node: a stdio server it started is stopped here too).
   */
  async refresh(): Promise<void> {
    const read = await this.#ctx.store.toolDomainList();
    // A read that began before an mcp.domain_up/down event may end after it: the snapshot
    // keeps whichever health of the same declaration is newer by checkedAt, so a stale read
    // cannot set a domain back down (or up).
    const list = read.map((d) => {
      const mine = this.#domains.get(d.spec.name);
      return mine !== undefined && mine.updatedAt === d.updatedAt && (mine.health.checkedAt ?? -1) > (d.health.checkedAt ?? -1) ? { ...d, health: mine.health } : d;
    });
    this.#domains = new Map(list.map((d) => [d.spec.name, d]));
    this.#setDown(new Set(list.filter((d) => d.health.status === 'down').map((d) => d.spec.name)));
    await Promise.all(this.#clients.names().filter((name) => !this.#domains.has(name)).map((name) => this.#clients.drop(name)));
  }

  /**
   * The maintenance node's check of every domain, all at once (a sweep takes about one
   * timeout however many domains are down); returns the events written.
   */
  async sweep(): Promise<EventRecord[]> {
    await this.refresh();
    const results = await Promise.all([...this.#domains.values()].map((domain) => this.check(domain)));
    await this.refresh();
    return results.flat();
  }

  /** Checks one domain and records the result (with its event when the status changed). */
  async check(domain: ToolDomainRecord): Promise<EventRecord[]> {
    const { config } = this.#ctx;
    const started = performance.now();
    let health: ToolDomainHealth;
    const now = this.#ctx.now();
    try {
      const timeout = config.mcpHealthTimeoutMs;
      const client = await this.#clients.client(domain.spec, timeout);
      await client.ping({ timeout });
      const tools = await this.#clients.listTools(domain.spec, timeout);
      health = { status: 'up', checkedAt: now, latencyMs: Math.round(performance.now() - started), toolCount: tools.length, lastError: null, changedAt: now };
    } catch (err) {
      // The next check (or call) connects afresh: a restarted server has forgotten the session.
      await this.#clients.drop(domain.spec.name);
      const message = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR);
      health = { status: 'down', checkedAt: now, latencyMs: Math.round(performance.now() - started), toolCount: null, lastError: message, changedAt: now };
    }
    const up = health.status === 'up';
    const result = await this.#ctx.store.toolDomainSetHealth({
      // Guarded on the declaration checked: a check of a spec replaced meanwhile writes nothing.
      name: domain.spec.name, health, updatedAt: domain.updatedAt,
      event: {
        type: up ? 'mcp.domain_up' : 'mcp.domain_down', taskId: null, agent: null, replicaId: null, assignmentId: null,
        data: { domain: domain.spec.name, from: domain.health.status, latencyMs: health.latencyMs, toolCount: health.toolCount, error: health.lastError },
      },
    });
    announce(this.#ctx, result.events);
    return result.events;
  }

  #onEvent(event: EventRecord): void {
    if (event.type !== 'mcp.domain_down' && event.type !== 'mcp.domain_up') return;
    const name = String(event.data.domain);
    const down = new Set(this.#down);
    if (event.type === 'mcp.domain_down') down.add(name);
    else down.delete(name);
    const known = this.#domains.get(name);
    if (known !== undefined) {
      // The event is at least as new as the check it reports (written after it): its time
      // stands for that check's, for refresh's newer-wins rule.
      const checkedAt = Math.max(known.health.checkedAt ?? -1, event.at);
      this.#domains.set(name, { ...known, health: { ...known.health, status: event.type === 'mcp.domain_down' ? 'down' : 'up', checkedAt } });
    }
    this.#setDown(down);
  }

  /** Replaces the set of down domains; a domain back up wakes the dispatcher (its tasks may run now). */
  #setDown(down: Set<string>): void {
    const before = this.#down;
    this.#down = down;
    if ([...before].some((d) => !down.has(d))) this.#ctx.wakeDispatcher('work');
    else if ([...down].some((d) => !before.has(d))) this.#ctx.wakeDispatcher('view');
  }

  /** After a domain is declared or removed over the API (this node; others at their next refresh). */
  forget(name: string): void {
    this.#domains.delete(name);
    if (this.#down.has(name)) {
      const down = new Set(this.#down);
      down.delete(name);
      this.#setDown(down);
    }
  }

  static unknown(): ToolDomainHealth {
    return { ...UNKNOWN_HEALTH };
  }
}
