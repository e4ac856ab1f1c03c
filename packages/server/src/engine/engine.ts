// Wires the engine together and runs its background loops (lease reaper, resumes, SLA checks, retention).
// Everything time-driven is one loop per concern, never a timer per task.

import type { Logger } from 'pino';
import type { ServerConfig } from '../config/config.ts';
import type { Store, StoreSignal } from '../store/store.ts';
import { AgentRegistry } from './agent-registry.ts';
import { AgentService } from './agent-service.ts';
import { Authenticator, ensureConfiguredAdminKey } from './api-keys.ts';
import { AuditLog } from './audit-log.ts';
import { KeyService } from './key-service.ts';
import { RevocationWatcher, ScopedTokens } from './scoped-tokens.ts';
import { TokenService } from './token-service.ts';
import { type EngineContext, systemClock } from './context.ts';
import { Dispatcher } from './dispatcher.ts';
import { LiveAttempts } from './live-attempts.ts';
import { EventBus } from './event-bus.ts';
import { EventRelay } from './event-relay.ts';
import { LeaseReaper } from './lease-reaper.ts';
import { ReplicaLiveness } from './replica-liveness.ts';
import { Resumer } from './resumer.ts';
import { Unblocker } from './unblocker.ts';
import { SlaWatch } from './sla-watch.ts';
import { pruneExpired } from './retention.ts';
import { TaskService } from './task-service.ts';
import { WorkerService } from './worker-service.ts';
import { A2aRuntime } from './a2a/a2a-runtime.ts';
import { A2aService } from './a2a-server/a2a-service.ts';
import { PushNotifications } from './push-notifications.ts';
import { McpService } from './mcp/service.ts';
import { WebhookOutbox } from './webhook-outbox.ts';
import { WebhookSecrets } from './webhook-secrets.ts';
import { WebhookService } from './webhook-service.ts';
import { ScheduleService } from './schedule-service.ts';
import { RateLimits } from './rate-limits.ts';
import { UsageService } from './usage-service.ts';
import { FlowDetails } from './flow-detail.ts';

/** How often the maintenance node looks for agents becoming (or no longer) overloaded. */
const OVERLOAD_SWEEP_MS = 2_000;

export interface EngineParams {
  store: Store;
  config: ServerConfig;
  log: Logger;
  clock?: Partial<Pick<EngineContext, 'now' | 'random' | 'newId'>>;
  /** How long a worker's `start` waits to be written (DeferredStarts); tests widen it. */
  startWriteDelayMs?: number;
}

export class Engine {
  readonly ctx: EngineContext;
  readonly registry: AgentRegistry;
  readonly dispatcher: Dispatcher;
  readonly liveness: ReplicaLiveness;
  readonly reaper: LeaseReaper;
  readonly resumer: Resumer;
  /** Blocked tasks, unblocked (or failed) as their dependencies end (docs/workflows.md). */
  readonly unblocker: Unblocker;
  readonly sla: SlaWatch;
  readonly tasks: TaskService;
  readonly agents: AgentService;
  readonly workers: WorkerService;
  readonly auth: Authenticator;
  readonly tokens: ScopedTokens;
  readonly revocations: RevocationWatcher;
  readonly keys: KeyService;
  readonly tokenService: TokenService;
  readonly audit: AuditLog;
  readonly relay: EventRelay;
  /** Workers for the agents with runtime "a2a", on the maintenance leader only (engine/a2a/): Flotilla as an A2A client. */
  readonly a2aRuntime: A2aRuntime;
  /** Flotilla as an A2A agent (http/a2a/ is its transport) and its push notifications. */
  readonly a2a: A2aService;
  readonly push: PushNotifications;
  /** MCP tool domains, their health, the gateway and its audit (issue 15). */
  readonly mcp: McpService;
  /** Webhook subscriptions and the outbox the maintenance node feeds and sends (docs/webhooks.md). */
  readonly webhooks: WebhookService;
  readonly webhookOutbox: WebhookOutbox;
  /** Schedules (issue 16): managed on any node, fired by the maintenance node (docs/schedules.md). */
  readonly schedules: ScheduleService;
  /** Provider rate limits and usage (issue 16, docs/flow-control.md, docs/usage.md). */
  readonly rateLimits: RateLimits;
  readonly usage: UsageService;
  #loops: Array<{ stop: () => Promise<void> }> = [];
  #unsubscribe: (() => Promise<void>) | null = null;
  #leading = new Map<string, boolean>();
  #started = false;
  #overloadSweptAt = -Infinity;

  constructor(params: EngineParams) {
    const bus = new EventBus();
    let dispatcher: Dispatcher | null = null;
    let resumer: Resumer | null = null;
    let unblocker: Unblocker | null = null;
    this.ctx = {
      store: params.store,
      config: params.config,
      log: params.log,
      bus,
      ...systemClock(),
      ...params.clock,
      wakeDispatcher: (reason) => dispatcher?.wake(reason),
      resumeWaiting: (taskIds) => resumer?.look(taskIds),
      unblockDependents: (taskIds) => unblocker?.dependentsOf(taskIds),
      attempts: new LiveAttempts(),
    };
    this.registry = new AgentRegistry({ store: params.store, now: () => this.ctx.now() });
    this.mcp = new McpService({ ctx: this.ctx });
    this.rateLimits = new RateLimits({ ctx: this.ctx });
    this.usage = new UsageService({ ctx: this.ctx });
    this.dispatcher = dispatcher = new Dispatcher({
      ctx: this.ctx, registry: this.registry,
      toolDomains: { down: () => this.mcp.health.down(), gatewayUrl: () => this.mcp.gatewayUrl() },
      rateLimits: this.rateLimits,
    });
    this.liveness = new ReplicaLiveness({ ctx: this.ctx, waiting: () => this.dispatcher.waitingReplicaIds() });
    this.reaper = new LeaseReaper({ ctx: this.ctx, liveness: this.liveness, registry: this.registry });
    this.resumer = resumer = new Resumer({ ctx: this.ctx });
    this.unblocker = unblocker = new Unblocker({ ctx: this.ctx });
    this.sla = new SlaWatch({ ctx: this.ctx });
    this.tasks = new TaskService({
      ctx: this.ctx, registry: this.registry, dispatcher: this.dispatcher, toolDomains: this.mcp.health, unblocker: this.unblocker,
      flow: new FlowDetails({ ctx: this.ctx, registry: this.registry, rateLimits: this.rateLimits, usage: this.usage }),
    });
    this.agents = new AgentService({ ctx: this.ctx, registry: this.registry, tasks: this.tasks, toolDomains: this.mcp.health, usage: this.usage });
    const now = () => this.ctx.now();
    this.tokens = new ScopedTokens({ store: params.store, now, limits: { defaultTtlMs: params.config.tokenTtlMs, maxLifetimeMs: params.config.tokenMaxLifetimeMs } });
    this.workers = new WorkerService({
      ctx: this.ctx, registry: this.registry, dispatcher: this.dispatcher, liveness: this.liveness, tokens: this.tokens,
      ...(params.startWriteDelayMs === undefined ? {} : { startWriteDelayMs: params.startWriteDelayMs }),
      flow: { rateLimits: this.rateLimits, usage: this.usage },
    });
    this.revocations = new RevocationWatcher({ store: params.store, now });
    this.auth = new Authenticator({ store: params.store, now, tokens: this.tokens, revocations: this.revocations });
    this.keys = new KeyService({ ctx: this.ctx, auth: this.auth });
    this.tokenService = new TokenService({ ctx: this.ctx, tokens: this.tokens, revocations: this.revocations });
    this.audit = new AuditLog({ ctx: this.ctx });
    this.relay = new EventRelay({ ctx: this.ctx });
    this.a2aRuntime = new A2aRuntime({ ctx: this.ctx, workers: this.workers, registry: this.registry, env: process.env });
    this.a2a = new A2aService({ ctx: this.ctx, registry: this.registry, tasks: this.tasks });
    this.push = new PushNotifications({ ctx: this.ctx });
    const webhookSecrets = new WebhookSecrets({ store: params.store, now });
    this.webhookOutbox = new WebhookOutbox({ ctx: this.ctx, secrets: webhookSecrets, revocations: this.revocations });
    this.webhooks = new WebhookService({ ctx: this.ctx, secrets: webhookSecrets, outbox: this.webhookOutbox });
    this.schedules = new ScheduleService({ ctx: this.ctx, tasks: this.tasks });
  }

  /** What other server processes (or this one, through the database) changed. */
  #onSignal(signal: StoreSignal): void {
    this.relay.onSignal(signal);
    // This process's own work or capacity: the code that wrote it woke the dispatcher when the
    // write returned (context.commit, TaskService, WorkerService). A second wake would make a
    // pass that finds nothing, and a 'work' wake would also drop the hand-off slots
    // (Dispatcher.wake), sending the next submits through passes. (Own 'agents' signals are
    // rare and still invalidate: a read racing the write may have cached the old registry.)
    if ((signal.kind === 'wake' || signal.kind === 'capacity') && signal.own === true) return;
    if (signal.kind === 'agents' || signal.kind === 'reconnected') {
      this.registry.invalidate();
      this.dispatcher.wake('view');
    }
    if (signal.kind === 'capacity') this.dispatcher.wake('capacity');
    else if (signal.kind === 'wake' || signal.kind === 'reconnected') this.dispatcher.wake();
  }

  /** Maintenance runs on one process at a time; the others only record their replicas' liveness. */
  async #maintain(name: string, work: () => Promise<unknown>): Promise<void> {
    const leading = await this.ctx.store.leadershipAcquire({ name });
    if (leading !== (this.#leading.get(name) ?? false)) {
      this.#leading.set(name, leading);
      this.ctx.log.info({ duty: name, leading }, leading ? `this node now runs ${name}` : `this node no longer runs ${name}`);
    }
    if (leading) await work();
  }

  /**
   * Prepares the store (declared agents, FLOTILLA_ADMIN_TOKEN's key) and starts the loops.
   * An admin key for a first start without FLOTILLA_ADMIN_TOKEN is not made here: startServer
   * generates it once the server listens (generateFirstAdminKey), so that the start cannot
   * fail after its secret was stored and before anyone saw it.
   */
  async start(): Promise<void> {
    const { store, config } = this.ctx;
    // Events a write returns without seqs cannot be announced by the writer: the bus must be fed from the store.
    if (!store.capabilities.eventSeqsOnWrite && !store.capabilities.crossNodeNotify) {
      throw new Error('a store that numbers events after commit must announce changes across nodes (crossNodeNotify)');
    }
    if (config.agents.length > 0) await this.agents.declare(config.agents);
    await this.mcp.start();
    await this.rateLimits.declareConfigured();
    if (config.adminToken !== null) await ensureConfiguredAdminKey({ store, configured: config.adminToken, now: this.ctx.now(), newId: this.ctx.newId });
    await this.tokens.start();
    await this.revocations.start();
    if (store.capabilities.crossNodeNotify) await this.relay.start();
    this.#unsubscribe = await store.signalSubscribe({ listener: (signal) => this.#onSignal(signal) });
    this.#started = true;
    this.#loops.push(loop(this.ctx, 'lease reaper', config.reaperIntervalMs, async () => {
      await this.liveness.flush();
      if (store.capabilities.crossNodeNotify) {
        // Safety net under LISTEN/NOTIFY: a notification lost without a reconnect would
        // otherwise leave work (or events) unnoticed here until the next signal; with this
        // it waits at most one tick. Cheap: one indexed read each when nothing is new.
        this.dispatcher.wake();
        this.relay.pump();
      }
      await this.#maintain('maintenance', async () => {
        // First, so that after a restart the a2a replicas are back (and their attempts taken
        // over) before the reaper judges them; starting a worker waits for no remote agent.
        await this.a2aRuntime.sync();
        await this.reaper.sweep();
        await this.resumer.sweep();
        await this.unblocker.sweep();
        await this.sla.sweep();
        // Agents' load changes slowly and reading it costs a scan of the queue: every few ticks.
        const now = this.ctx.now();
        if (now - this.#overloadSweptAt >= OVERLOAD_SWEEP_MS) {
          this.#overloadSweptAt = now;
          await this.agents.sweepOverload();
        }
      });
      // One node talks to each a2a agent: one that no longer leads lets the leader take over.
      if (!(this.#leading.get('maintenance') ?? false)) this.a2aRuntime.stopAll();
    }));
    this.push.start();
    // The maintenance node's duty, in its own loop: a slow receiver delays the next
    // notifications, never the reaper.
    this.#loops.push(loop(this.ctx, 'a2a push', config.a2aPushIntervalMs, async () => {
      await this.#maintain('maintenance', () => this.push.sweep());
      if (this.#leading.get('maintenance') !== true) this.push.notLeading();
    }));
    // Tool domains: the maintenance node checks them; every node reads what was found.
    this.#loops.push(loop(this.ctx, 'mcp health', config.mcpHealthIntervalMs, async () => {
      let checked = false;
      await this.#maintain('mcp-health', async () => {
        checked = true;
        await this.mcp.health.sweep();
      });
      if (!checked) await this.mcp.health.refresh();
    }));
    // Webhooks: the maintenance node's duty in its own loop (a slow receiver delays only them).
    this.#loops.push(loop(this.ctx, 'webhooks', config.webhookIntervalMs, async () => {
      await this.#maintain('maintenance', () => this.webhookOutbox.sweep());
      if (this.#leading.get('maintenance') !== true) this.webhookOutbox.notLeading();
    }));
    this.#loops.push(loop(this.ctx, 'retention', config.retentionIntervalMs, () => this.#maintain('retention', () => pruneExpired(this.ctx))));
    // Schedules: config-declared ones first (their agents are declared above), then the
    // maintenance node's timer and sweep.
    if (config.schedules.length > 0) await this.schedules.declare(config.schedules);
    this.#loops.push(this.schedules.start(async (work) => {
      await this.#maintain('maintenance', work);
      return this.#leading.get('maintenance') === true;
    }));
    // The rate log's rows past the window: every node counts only the last minute anyway.
    this.#loops.push(loop(this.ctx, 'rate log', config.retentionIntervalMs, () => this.#maintain('retention', () => this.rateLimits.prune())));
    this.dispatcher.wake();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.a2aRuntime.stop();
    this.revocations.stop();
    await Promise.all(this.#loops.map((l) => l.stop()));
    this.#loops = [];
    this.push.stop();
    await this.#unsubscribe?.().catch(() => {});
    this.#unsubscribe = null;
    await this.resumer.stop();
    await this.unblocker.stop();
    this.dispatcher.stop();
    await this.dispatcher.idle();
    await this.workers.flushStarts().catch(() => {});
    await this.relay.idle();
    await this.liveness.flush().catch(() => {});
    await this.audit.flush().catch(() => {});
    await this.mcp.stop();
  }
}

/** Runs `fn` every `intervalMs` after the previous run finished (never overlapping itself). */
function loop(ctx: EngineContext, name: string, intervalMs: number, fn: () => Promise<unknown>): { stop: () => Promise<void> } {
  let stopped = false;
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  const tick = () => {
    timer = null;
    running = fn()
      .then(() => undefined, (err: unknown) => ctx.log.error({ err }, `${name} failed; will retry`))
      .finally(() => {
        running = null;
        if (!stopped) schedule();
      });
  };
  const schedule = () => {
    timer = setTimeout(tick, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (running) await running;
    },
  };
}
