// The worker runtime: run a handler for an agent's tasks, with heartbeats, progress,
// cancellation and timeouts delivered through an AbortSignal, child tasks, reconnection and
// a graceful drain. It speaks the WebSocket worker protocol where the runtime has a
// WebSocket that can send headers (Node 22+), so assignments are pushed; otherwise, or when
// asked, the HTTP lease protocol (a long-poll kept open). Web-standard APIs only.

import { Flotilla } from '../client/flotilla.ts';
import { Transport } from '../client/transport.ts';
import type { WaitOptions } from '../client/types.ts';
import type { DependencyOutcome, Json, LeasedTask, TaskSpec, TaskView, UsageReportWire } from '../wire.ts';
import { isTooLarge, type HealthReport, type Logger, type ReportOp, type TooLarge, type WorkerChannel } from './channel.ts';

export type { Logger, LogLevel } from './channel.ts';
import { NonRetryableError, RateLimitedError, TaskAbortedError, type AbortKind } from './errors.ts';
import { HttpChannel } from './http-channel.ts';
import { SocketChannel, type WebSocketConstructor } from './socket-channel.ts';

export type WorkerTask = LeasedTask['task'];

export interface ChildTask {
  id: string;
  task: TaskView;
  /** Resolves with the child once it is terminal (or as last seen when `timeoutMs` passes). */
  wait(options?: WaitOptions): Promise<TaskView>;
}

/** A child's spec: its parent is the running task (the server adds its correlation and trace). */
export type ChildSpec = Omit<TaskSpec, 'parentId'>;

/** `ctx.spawn(spec, { wait: true })`: resolve with the child once it is terminal. */
export interface SpawnAndWait {
  wait: true;
  /** Give up waiting after this long and resolve with the child as last seen (default: wait until it ends). */
  timeoutMs?: number;
}

export interface TaskContext {
  assignmentId: string;
  replicaId: string;
  /** Aborted on cancellation, timeout, lease loss or shutdown; `signal.reason` is a TaskAbortedError. */
  signal: AbortSignal;
  /** Reports progress 0..100 (also renews the lease). */
  progress(percent: number, message?: string): Promise<void>;
  log(message: string, data?: Record<string, unknown>): void;
  /**
   * Submits a child task (its parentId is this task). Background: resolves at once with the
   * child's id and a `wait()`. With `{ wait: true }`: resolves with the child once it is
   * terminal (its slot stays held meanwhile; the wait ends with `signal`; to wait without
   * holding the slot, return `ctx.waitForChildren`). The server gives the child this task's
   * correlation and a span of its trace, and refuses the spawn at the depth limit
   * (DEPTH_LIMIT), for an agent not of a greater level (LEVEL_NOT_ALLOWED) or with
   * `tools.allow` wider than this task's tools (TOOL_NOT_ALLOWED).
   */
  spawn(spec: ChildSpec): Promise<ChildTask>;
  spawn(spec: ChildSpec, options: SpawnAndWait): Promise<TaskView>;
  /**
   * Ends this attempt waiting for children of this task, without holding a slot: return what
   * it gives from the handler (`return ctx.waitForChildren([a, b])`). When every one of them
   * has ended, the task runs again, from the start of the handler, with `task.resumed` =
   * `{ reason: 'children', children: [{ id, status, result, error }] }` in the order named.
   * Not a retry: the attempt is not counted. Returning it has no other effect; calling it
   * without returning it does nothing.
   */
  waitForChildren(children: ReadonlyArray<string | { id: string }>): Suspension;
  /**
   * Ends this attempt asking for input (task status `input_required`, no slot held): return
   * what it gives from the handler. `POST /tasks/:id/input` (`flotilla answer`, the SDK's
   * `tasks.answer`) answers, checked against `schema`; then the task runs again with
   * `task.resumed` = `{ reason: 'input', prompt, input }`. With `timeoutMs`, an unanswered
   * request fails the task (INPUT_TIMEOUT).
   */
  requestInput(request: { prompt: string; schema?: Json; timeoutMs?: number }): Suspension;
  /**
   * Where this attempt calls its tools: the server's MCP gateway (streamable HTTP), with the
   * attempt's own token to send as `Authorization: Bearer <token>` (docs/mcp.md). The gateway
   * lists only the tools the task may use, as `<domain>:<tool>`. `downDomains` names the tool
   * domains of the agent that were down at dispatch (a task submitted with `allowDegraded`).
   * Use any MCP client (the official SDK's `StreamableHTTPClientTransport`); the token dies
   * with the attempt.
   */
  mcp(): Promise<{ url: string; token: string; downDomains: string[] }>;
  /**
   * The outcomes of the tasks this one depended on (TaskSpec.dependsOn, docs/workflows.md),
   * by id and, where the workflow named them, by ref; empty for a task without dependencies.
   */
  dependencies: Dependencies;
  /**
   * What this attempt used (model, tokens, cost): sent with its complete or fail report
   * (docs/usage.md). Calls add up (tokens and cost summed, the last model kept). The tokens
   * correct the task's rate-key window (its estimate is replaced by what was used).
   */
  usage(report: UsageReportWire): void;
}

/** A task's dependency outcomes (`ctx.dependencies`): in the order named, and looked up by id or ref. */
export class Dependencies {
  readonly all: readonly DependencyOutcome[];
  constructor(all: readonly DependencyOutcome[]) {
    this.all = all;
  }
  /** The outcome of the dependency with this id, or this workflow ref (`fetch` or `#fetch`). */
  get(idOrRef: string): DependencyOutcome | undefined {
    const ref = idOrRef.startsWith('#') ? idOrRef.slice(1) : idOrRef;
    return this.all.find((d) => d.id === idOrRef) ?? this.all.find((d) => d.ref === ref);
  }
}

/**
 * What `ctx.waitForChildren` and `ctx.requestInput` give: returned from a handler, it ends the
 * attempt with that suspension instead of a result.
 */
export class Suspension {
  readonly op: 'wait' | 'ask';
  readonly body: Record<string, unknown>;
  constructor(op: 'wait' | 'ask', body: Record<string, unknown>) {
    this.op = op;
    this.body = body;
  }
}

export type Handler = (task: WorkerTask, ctx: TaskContext) => Promise<Json | void | Suspension> | Json | void | Suspension;


export interface WorkerOptions {
  url: string | string[];
  token: string;
  agent: string;
  handler: Handler;
  /** Tasks run at once by this replica (default 1). */
  concurrency?: number;
  /**
   * Called at every heartbeat: what this replica says of itself. `unhealthy` replicas get no
   * new tasks, `degraded` ones only after the healthy ones; `healthDetail` (cpu, memory, …) is
   * shown by the server. A check that throws reports `unhealthy` with its message.
   */
  health?: () => HealthReport | Promise<HealthReport>;
  /** Keep a stable replica id across restarts; default: the server assigns one. */
  replica?: string;
  site?: string;
  /**
   * Capabilities this worker implements. Routing by capability is per agent, so start()
   * checks that the agent declares every one of them and refuses to start otherwise: a
   * worker that believes it serves `gpu` while its agent does not would never be sent a
   * task that needs it.
   */
  capabilities?: string[];
  /**
   * `websocket` (default where available): assignments are pushed over one socket.
   * `http`: the HTTP lease protocol (long-poll), for runtimes without a WebSocket that can
   * send an Authorization header.
   */
  transport?: 'websocket' | 'http';
  /** A WebSocket constructor to use instead of the global one. */
  WebSocket?: WebSocketConstructor;
  /** HTTP transport: how long one lease request waits for work (default 20 s). */
  leaseWaitMs?: number;
  /** How long stop() lets running tasks finish (default 30 s). */
  drainTimeoutMs?: number;
  fetch?: typeof fetch;
  log?: Logger;
}

interface Running {
  leased: LeasedTask;
  controller: AbortController;
}

const defaultLog: Logger = (level, message, data) => {
  if (level === 'warn' || level === 'error') console.error(`[flotilla worker] ${level}: ${message}`, data ?? '');
};

function abort(controller: AbortController, kind: AbortKind, message: string, endedByServer = false): void {
  if (!controller.signal.aborted) controller.abort(new TaskAbortedError(kind, message, endedByServer));
}

/** The server ended the attempt itself (timeout, lost lease): abort, and report nothing. */
function endedByServer(controller: AbortController, kind: AbortKind): void {
  abort(controller, kind, kind === 'lease_lost' ? 'the server no longer considers this attempt ours' : `the server ended the attempt (${kind})`, true);
}

/** The error code of an attempt failed because its report was above the server's message limit. */
export const RESULT_TOO_LARGE = 'RESULT_TOO_LARGE';
/** How much of a handler's own error message is kept when its failure report was too large. */
const KEPT_MESSAGE_CHARS = 1_024;

function kindOf(signal: AbortSignal): AbortKind | null {
  return signal.aborted && signal.reason instanceof TaskAbortedError ? signal.reason.kind : null;
}

export class FlotillaWorker {
  readonly #opts: WorkerOptions;
  readonly #channel: WorkerChannel;
  readonly #urls: string[];
  readonly #log: Logger;
  readonly #concurrency: number;
  readonly #running = new Map<string, Running>();
  #replicaId: string | null;
  #heartbeatMs = 10_000;
  #heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  #started = false;
  #stopping: Promise<void> | null = null;
  #tasks = new Set<Promise<void>>();
  /** Attempts completed / failed by this process (observability). */
  readonly stats = { completed: 0, failed: 0, cancelled: 0, dropped: 0, suspended: 0 };

  constructor(opts: WorkerOptions) {
    this.#opts = opts;
    const urls = Array.isArray(opts.url) ? opts.url : [opts.url];
    const transport = new Transport({ urls, token: opts.token, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
    this.#urls = urls;
    this.#log = opts.log ?? defaultLog;
    this.#concurrency = Math.max(1, opts.concurrency ?? 1);
    this.#replicaId = opts.replica ?? null;
    const common = { transport, agent: opts.agent, concurrency: this.#concurrency, replicaId: this.#replicaId, site: opts.site, log: this.#log };
    const WebSocketImpl = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    const useSocket = opts.transport !== 'http' && WebSocketImpl !== undefined;
    if (opts.transport === 'websocket' && WebSocketImpl === undefined) throw new TypeError('Flotilla worker: no WebSocket in this runtime; pass `WebSocket` or use transport: "http"');
    this.#channel = useSocket
      ? new SocketChannel({ ...common, urls, token: opts.token, WebSocket: WebSocketImpl })
      : new HttpChannel({ ...common, leaseWaitMs: opts.leaseWaitMs ?? 20_000 });
  }

  /** Which protocol this worker speaks. */
  get transport(): 'websocket' | 'http' {
    return this.#channel.kind;
  }

  get replicaId(): string | null {
    return this.#replicaId;
  }

  get activeCount(): number {
    return this.#running.size;
  }

  /** Registers and starts taking work. Resolves once registered. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#opts.capabilities && this.#opts.capabilities.length > 0) {
      const agent = await new Flotilla({ url: this.#urls, token: this.#opts.token, ...(this.#opts.fetch ? { fetch: this.#opts.fetch } : {}) }).agents.get(this.#opts.agent);
      const missing = this.#opts.capabilities.filter((c) => !agent.capabilities.includes(c));
      if (missing.length > 0) {
        this.#started = false;
        throw new TypeError(`Flotilla worker: agent "${agent.name}" does not declare the capabilities ${missing.join(', ')}; add them to the agent (flotilla.config.yaml or PATCH /api/v1/agents/${agent.name}) so tasks that need them are routed here`);
      }
    }
    let registration: Awaited<ReturnType<WorkerChannel['open']>>;
    try {
      registration = await this.#channel.open({
        assign: (tasks) => {
          for (const leased of tasks) {
            // Pushed while stopping (before the server saw the drain): hand it back at once.
            if (this.#stopping) void this.#channel.report('fail', leased.assignmentId, { retryable: true, error: { message: 'the worker is shutting down', code: 'WORKER_SHUTDOWN' } });
            else this.#execute(leased);
          }
        },
        cancel: (assignmentId) => {
          const r = this.#running.get(assignmentId);
          if (r) abort(r.controller, 'cancelled', 'the task was cancelled');
        },
        revoke: (assignmentId, kind) => {
          const r = this.#running.get(assignmentId);
          if (r) endedByServer(r.controller, kind);
        },
        freeSlots: () => this.#concurrency - this.#running.size,
        held: () => [...this.#running.keys()],
        fatal: (code, message) => {
          this.#log('error', 'the server refuses this worker; stopping', { code, message });
          void this.stop({ drainTimeoutMs: 0 });
        },
      });
    } catch (err) {
      this.#started = false;
      throw err;
    }
    this.#replicaId = registration.replicaId;
    this.#heartbeatMs = Math.max(100, registration.heartbeatIntervalMs);
    this.#log('info', 'registered', { replicaId: this.#replicaId, agent: this.#opts.agent, transport: this.#channel.kind });
    this.#heartbeatTimer = setInterval(() => void this.#heartbeatAll(), this.#heartbeatMs);
  }

  /**
   * Stops taking work, lets running tasks finish for up to `drainTimeoutMs`, then aborts the
   * rest and fails them as retryable so they move to another replica at once; leaves.
   */
  stop(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(options);
    return this.#stopping;
  }

  async #stop(options: { drainTimeoutMs?: number }): Promise<void> {
    await this.#channel.drain();
    const drain = options.drainTimeoutMs ?? this.#opts.drainTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, drain)));
    await Promise.race([Promise.all([...this.#tasks]), deadline]);
    // The deadline must not outlive the drain: a pending timer keeps a process alive.
    clearTimeout(timer);
    // Out of time: reports still waiting for a reconnection give up, so the handlers that
    // finished can end, and those still running are failed (retryable) and end too.
    this.#channel.giveUp();
    for (const r of this.#running.values()) abort(r.controller, 'shutdown', 'the worker is shutting down');
    await Promise.all([...this.#tasks]);
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    await this.#channel.close();
  }

  #execute(leased: LeasedTask): void {
    const controller = new AbortController();
    const running: Running = { leased, controller };
    this.#running.set(leased.assignmentId, running);
    const done = this.#runOne(running).finally(() => {
      this.#running.delete(leased.assignmentId);
      this.#tasks.delete(done);
      this.#channel.slotFreed();
    });
    this.#tasks.add(done);
  }

  async #report(op: ReportOp, assignmentId: string, body: Record<string, unknown> = {}): Promise<boolean> {
    return (await this.#channel.report(op, assignmentId, body)) === 'ok';
  }

  async #runOne(r: Running): Promise<void> {
    const { leased, controller } = r;
    const id = leased.assignmentId;
    const started = this.#report('start', id).then((ok) => {
      if (!ok) abort(controller, 'lease_lost', 'the attempt was taken back before it started');
    });
    // Over a socket the server applies one assignment's reports in the order they were sent,
    // so the handler need not wait for `start` to be acknowledged (a round trip off every
    // task's latency). Over HTTP a later report could overtake it: wait.
    if (this.#channel.kind === 'http') await started;
    let client: Promise<Flotilla> | undefined;
    let attemptToken: Promise<string> | undefined;
    const token = () => (attemptToken ??= this.#channel.token(id));
    let usage: UsageReportWire | undefined;
    const ctx: TaskContext = {
      dependencies: new Dependencies(leased.task.dependencies ?? []),
      usage: (u) => {
        usage = addUsage(usage, u);
      },
      assignmentId: leased.assignmentId,
      replicaId: this.#replicaId!,
      signal: controller.signal,
      progress: async (percent, message) => {
        const res = await this.#channel.progress(id, percent, message);
        if (res === 'superseded') abort(controller, 'lease_lost', 'the attempt is no longer ours');
        else if (res?.cancelRequested) abort(controller, 'cancelled', 'the task was cancelled');
      },
      log: (message, data) => this.#log('info', message, { taskId: leased.task.id, ...data }),
      spawn: (async (spec: ChildSpec, options?: SpawnAndWait) => {
        // Children are submitted with the attempt's own token (its task tree, as the tree's
        // owner), never with the worker's key: a worker cannot create work outside the tree.
        // Inheritance (correlation, trace) is the server's, so every client gets the same.
        client ??= token().then((t) => new Flotilla({ url: this.#urls, token: t, ...(this.#opts.fetch ? { fetch: this.#opts.fetch } : {}) }));
        const c = await client;
        const task = await c.tasks.submit({ ...spec, parentId: leased.task.id });
        const child: ChildTask = { id: task.id, task, wait: (waitOptions) => c.tasks.wait(task.id, waitOptions) };
        if (!options?.wait) return child;
        return child.wait({ signal: controller.signal, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) });
      }) as TaskContext['spawn'],
      waitForChildren: (children) => new Suspension('wait', { children: children.map((c) => (typeof c === 'string' ? c : c.id)) }),
      mcp: async () => {
        // A server before the gateway sends no `mcp`: its path is still where a newer one serves it.
        const url = new URL(leased.mcp?.url ?? '/api/v1/mcp', this.#urls[0]).toString();
        return { url, token: await token(), downDomains: leased.mcp?.downDomains ?? [] };
      },
      requestInput: ({ prompt, schema, timeoutMs }) => new Suspension('ask', {
        prompt, ...(schema === undefined ? {} : { schema }), ...(timeoutMs === undefined ? {} : { timeoutMs }),
      }),
    };

    let result: Json | void | Suspension = undefined;
    let error: unknown = null;
    if (!controller.signal.aborted) {
      // The server counts the execution timeout from `start`, and so does this timer: the
      // handler is told at its deadline, not at the next heartbeat.
      const deadline = setTimeout(
        () => abort(controller, 'timeout', `the attempt passed its timeout (${leased.task.timeoutMs} ms)`),
        leased.task.timeoutMs,
      );
      try {
        result = await this.#opts.handler(leased.task, ctx);
      } catch (err) {
        error = err;
      } finally {
        clearTimeout(deadline);
      }
    }

    const kind = kindOf(controller.signal);
    const endedByServer = controller.signal.reason instanceof TaskAbortedError && controller.signal.reason.endedByServer;
    if (kind === 'lease_lost' || endedByServer) {
      this.stats.dropped += 1;
      return;
    }
    if (kind === 'cancelled') {
      if (await this.#report('cancelled', id)) this.stats.cancelled += 1;
      return;
    }
    if (error === null && kind === null && result instanceof Suspension) {
      const outcome = await this.#channel.report(result.op, id, result.body);
      if (outcome === 'ok') this.stats.suspended += 1;
      return;
    }
    if (error === null && kind === null) {
      const outcome = await this.#channel.report('complete', id, { result: (result as Json | undefined) ?? null, ...(usage === undefined ? {} : { usage }) });
      if (outcome === 'ok') this.stats.completed += 1;
      else if (isTooLarge(outcome)) await this.#failTooLarge(leased, 'result', outcome, null);
      return;
    }
    const retryable = kind !== null || !(error instanceof NonRetryableError);
    const e = error instanceof Error ? error : kind !== null ? (controller.signal.reason as Error) : new Error(String(error));
    const code = kind === 'timeout' ? 'TIMED_OUT' : kind === 'shutdown' ? 'WORKER_SHUTDOWN' : (e as { code?: unknown }).code;
    const details = error instanceof NonRetryableError ? error.details : undefined;
    const message = e.message || e.name;
    // A provider's 429: rescheduled without spending a retry (RateLimitedError).
    const limited = error instanceof RateLimitedError && kind === null
      ? { rateLimited: true, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: Math.min(3_600_000, Math.max(0, Math.round(error.retryAfterMs))) }) }
      : {};
    const outcome = await this.#channel.report('fail', id, {
      retryable,
      error: { message, ...(typeof code === 'string' ? { code } : {}), ...(details !== undefined ? { details } : {}) },
      ...limited,
      ...(usage === undefined ? {} : { usage }),
    });
    if (outcome === 'ok') this.stats.failed += 1;
    else if (isTooLarge(outcome)) await this.#failTooLarge(leased, 'failure', outcome, { message, code: typeof code === 'string' ? code : null, retryable });
  }

  /**
   * A report too large for the server fails the attempt with RESULT_TOO_LARGE instead. A
   * result too large fails it for good (not retryable): another run would return as much
   * again. A failure report too large (its error details, or message) keeps the handler's own
   * `retryable`, and the handler's message (shortened) and code.
   */
  async #failTooLarge(leased: LeasedTask, what: 'result' | 'failure', { tooLarge }: TooLarge, original: { message: string; code: string | null; retryable: boolean } | null): Promise<void> {
    const id = leased.assignmentId;
    const size = tooLarge.limit === null
      ? `the server refused it as too large (${tooLarge.bytes} bytes as sent)`
      : `it is ${tooLarge.bytes} bytes as sent, more than the server accepts (${tooLarge.limit} bytes per message)`;
    const details = { bytes: tooLarge.bytes, limit: tooLarge.limit, report: what === 'result' ? 'complete' : 'fail' };
    this.#log('error', `the ${what} report is too large; failing the attempt with ${RESULT_TOO_LARGE}`, { taskId: leased.task.id, assignmentId: id, ...details });
    const body = (keep: boolean) => ({
      retryable: original?.retryable ?? false,
      error: original === null
        ? { code: RESULT_TOO_LARGE, message: `the result could not be reported: ${size}; store large results elsewhere and return a reference`, details }
        : {
          code: RESULT_TOO_LARGE,
          message: `${keep ? `${original.message.slice(0, KEPT_MESSAGE_CHARS)} ` : ''}[the failure could not be reported with its details: ${size}]`,
          details: { ...details, error: { code: original.code } },
        },
    });
    let outcome = await this.#channel.report('fail', id, body(true));
    // Even the handler's shortened message does not fit (a very small limit): without it.
    if (isTooLarge(outcome) && original !== null) outcome = await this.#channel.report('fail', id, body(false));
    if (outcome === 'ok') this.stats.failed += 1;
  }

  /** What `options.health` says now; a health check that throws makes the replica unhealthy. */
  async #health(): Promise<HealthReport | null> {
    const check = this.#opts.health;
    if (!check) return null;
    try {
      return await check();
    } catch (err) {
      return { health: 'unhealthy', healthDetail: { error: err instanceof Error ? err.message : String(err) } };
    }
  }

  /** One beat for every running attempt: renew leases, learn of cancellations and ended attempts. */
  async #heartbeatAll(): Promise<void> {
    const ids = [...this.#running.entries()].filter(([, r]) => !r.controller.signal.aborted).map(([id]) => id);
    const beat = await this.#channel.heartbeat(ids, await this.#health());
    for (const id of beat.cancelRequested) {
      const r = this.#running.get(id);
      if (r) abort(r.controller, 'cancelled', 'the task was cancelled');
    }
    for (const { assignmentId, kind } of beat.ended) {
      const r = this.#running.get(assignmentId);
      if (r) endedByServer(r.controller, kind);
    }
  }
}

/** Creates a worker; call `start()` to begin and `stop()` to drain and leave. */
export function createWorker(options: WorkerOptions): FlotillaWorker {
  return new FlotillaWorker(options);
}

/**
 * Stops the worker gracefully on SIGTERM/SIGINT where the runtime has `process` (Node);
 * a no-op elsewhere. Returns a function that removes the handlers.
 */
export function stopOnSignals(worker: FlotillaWorker, options: { drainTimeoutMs?: number } = {}): () => void {
  const proc = (globalThis as { process?: { once(event: string, fn: () => void): void; off(event: string, fn: () => void): void } }).process;
  if (!proc) return () => {};
  const onSignal = () => void worker.stop(options);
  proc.once('SIGTERM', onSignal);
  proc.once('SIGINT', onSignal);
  return () => {
    proc.off('SIGTERM', onSignal);
    proc.off('SIGINT', onSignal);
  };
}

/** Two usage reports of one attempt as one: tokens and cost summed, the later model kept. */
function addUsage(a: UsageReportWire | undefined, b: UsageReportWire): UsageReportWire {
  const sum = (x: number | undefined, y: number | undefined) => (x === undefined && y === undefined ? undefined : (x ?? 0) + (y ?? 0));
  const model = b.model ?? a?.model;
  const inputTokens = sum(a?.inputTokens, b.inputTokens);
  const outputTokens = sum(a?.outputTokens, b.outputTokens);
  const costUsd = sum(a?.costUsd, b.costUsd);
  return {
    ...(model === undefined ? {} : { model }), ...(inputTokens === undefined ? {} : { inputTokens }),
    ...(outputTokens === undefined ? {} : { outputTokens }), ...(costUsd === undefined ? {} : { costUsd }),
  };
}
