// The worker runtime: run a handler for an agent's tasks, with heartbeats, progress,
// cancellation and timeouts delivered through an AbortSignal, child tasks, reconnection and
// a graceful drain. This version speaks the HTTP lease protocol (docs/protocol.md): one
// long-poll lease request open while there are free slots, so work arrives as soon as it is
// dispatched, without polling. Web-standard APIs only.

import { isFlotillaError, type FlotillaApiError } from '../client/errors.ts';
import { Flotilla } from '../client/flotilla.ts';
import { Transport } from '../client/transport.ts';
import type { WaitOptions } from '../client/types.ts';
import type { Json, LeasedTask, TaskSpec, TaskView } from '../wire.ts';
import { NonRetryableError, TaskAbortedError, type AbortKind } from './errors.ts';

export type WorkerTask = LeasedTask['task'];

export interface ChildTask {
  id: string;
  task: TaskView;
  /** Resolves with the child once it is terminal (or as last seen when `timeoutMs` passes). */
  wait(options?: WaitOptions): Promise<TaskView>;
}

export interface TaskContext {
  assignmentId: string;
  replicaId: string;
  /** Aborted on cancellation, timeout, lease loss or shutdown; `signal.reason` is a TaskAbortedError. */
  signal: AbortSignal;
  /** Reports progress 0..100 (also renews the lease). */
  progress(percent: number, message?: string): Promise<void>;
  log(message: string, data?: Record<string, unknown>): void;
  /** Submits a child task (its parentId is this task). */
  spawn(spec: Omit<TaskSpec, 'parentId'>): Promise<ChildTask>;
}

export type Handler = (task: WorkerTask, ctx: TaskContext) => Promise<Json | void> | Json | void;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string, data?: Record<string, unknown>) => void;

export interface WorkerOptions {
  url: string | string[];
  token: string;
  agent: string;
  handler: Handler;
  /** Tasks run at once by this replica (default 1). */
  concurrency?: number;
  /** Keep a stable replica id across restarts; default: the server assigns one. */
  replica?: string;
  site?: string;
  /** How long one lease request waits for work (default 20 s). */
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

/** What a refused report or heartbeat says became of the attempt (see details.assignmentStatus). */
function endedAs(err: FlotillaApiError): AbortKind {
  const status = (err.details as { assignmentStatus?: unknown } | undefined)?.assignmentStatus;
  if (status === 'timed_out') return 'timeout';
  if (status === 'cancelled') return 'cancelled';
  return 'lease_lost';
}

function kindOf(signal: AbortSignal): AbortKind | null {
  return signal.aborted && signal.reason instanceof TaskAbortedError ? signal.reason.kind : null;
}

export class FlotillaWorker {
  readonly #opts: WorkerOptions;
  readonly #transport: Transport;
  readonly #client: Flotilla;
  readonly #log: Logger;
  readonly #concurrency: number;
  readonly #running = new Map<string, Running>();
  #replicaId: string | null;
  #heartbeatMs = 10_000;
  #heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  #loop: Promise<void> | null = null;
  #stopping = false;
  #leaseAbort: AbortController | null = null;
  #slotFreed: (() => void) | null = null;
  #tasks = new Set<Promise<void>>();
  /** Attempts completed / failed by this process (observability). */
  readonly stats = { completed: 0, failed: 0, cancelled: 0, dropped: 0 };

  constructor(opts: WorkerOptions) {
    this.#opts = opts;
    const urls = Array.isArray(opts.url) ? opts.url : [opts.url];
    this.#transport = new Transport({ urls, token: opts.token, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
    this.#client = new Flotilla({ url: urls, token: opts.token, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
    this.#log = opts.log ?? defaultLog;
    this.#concurrency = Math.max(1, opts.concurrency ?? 1);
    this.#replicaId = opts.replica ?? null;
  }

  get replicaId(): string | null {
    return this.#replicaId;
  }

  get activeCount(): number {
    return this.#running.size;
  }

  /** Registers and starts taking work. Resolves once registered. */
  async start(): Promise<void> {
    if (this.#loop) return;
    await this.#register();
    this.#heartbeatTimer = setInterval(() => void this.#heartbeatAll(), this.#heartbeatMs);
    this.#loop = this.#run();
  }

  /**
   * Stops taking work, lets running tasks finish for up to `drainTimeoutMs`, then aborts the
   * rest and fails them as retryable so they move to another replica at once; deregisters.
   */
  async stop(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#stopping) return this.#loop ?? undefined;
    this.#stopping = true;
    this.#leaseAbort?.abort();
    this.#slotFreed?.();
    const drain = options.drainTimeoutMs ?? this.#opts.drainTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, drain)));
    await Promise.race([Promise.all([...this.#tasks]), deadline]);
    // The deadline must not outlive the drain: a pending timer keeps a process alive.
    clearTimeout(timer);
    for (const r of this.#running.values()) abort(r.controller, 'shutdown', 'the worker is shutting down');
    await Promise.all([...this.#tasks]);
    await this.#loop;
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    if (this.#replicaId) {
      await this.#transport.request('POST', `/workers/${this.#replicaId}/deregister`, { idempotent: true }).catch(() => {});
    }
  }

  async #register(): Promise<void> {
    const body = {
      agent: this.#opts.agent,
      maxConcurrency: this.#concurrency,
      ...(this.#replicaId ? { replicaId: this.#replicaId } : {}),
      ...(this.#opts.site ? { site: this.#opts.site } : {}),
    };
    // Re-registering with the same id is harmless, so it may be resent after a failure.
    const res = await this.#transport.request<{ replica: { id: string }; heartbeatIntervalMs: number }>('POST', '/workers/register', { body, idempotent: this.#replicaId !== null });
    this.#replicaId = res.replica.id;
    this.#heartbeatMs = Math.max(100, res.heartbeatIntervalMs);
    this.#log('info', 'registered', { replicaId: this.#replicaId, agent: this.#opts.agent });
  }

  async #run(): Promise<void> {
    let backoff = 100;
    while (!this.#stopping) {
      const free = this.#concurrency - this.#running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        this.#slotFreed = null;
        continue;
      }
      try {
        this.#leaseAbort = new AbortController();
        const waitMs = this.#opts.leaseWaitMs ?? 20_000;
        const res = await this.#transport.request<{ assignments: LeasedTask[] }>('POST', `/workers/${this.#replicaId}/lease`, {
          body: { max: free, waitMs },
          idempotent: false,
          timeoutMs: waitMs + 10_000,
          signal: this.#leaseAbort.signal,
        });
        backoff = 100;
        for (const leased of res.assignments) this.#execute(leased);
      } catch (err) {
        if (this.#stopping) break;
        if (isFlotillaError(err, 'REPLICA_NOT_LIVE') || isFlotillaError(err, 'REPLICA_NOT_FOUND')) {
          await this.#register().catch((e: unknown) => this.#log('warn', 're-registration failed', { error: String(e) }));
          continue;
        }
        if (isFlotillaError(err, 'UNKNOWN_AGENT') || isFlotillaError(err, 'UNAUTHENTICATED') || isFlotillaError(err, 'FORBIDDEN')) {
          this.#log('error', 'the server refuses this worker; stopping', { code: (err as FlotillaApiError).code });
          this.#stopping = true;
          break;
        }
        this.#log('warn', 'lease failed; retrying', { error: String(err), inMs: backoff });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(5_000, backoff * 2);
      }
    }
  }

  #execute(leased: LeasedTask): void {
    const controller = new AbortController();
    const running: Running = { leased, controller };
    this.#running.set(leased.assignmentId, running);
    const done = this.#runOne(running).finally(() => {
      this.#running.delete(leased.assignmentId);
      this.#tasks.delete(done);
      this.#slotFreed?.();
    });
    this.#tasks.add(done);
  }

  async #report(path: string, body: Record<string, unknown>): Promise<boolean> {
    try {
      await this.#transport.request('POST', path, { body: { replicaId: this.#replicaId, ...body }, idempotent: false });
      return true;
    } catch (err) {
      if (isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED')) {
        this.#log('info', 'report not applied: the attempt was already ended', { path, details: err.details });
        return false;
      }
      this.#log('warn', 'report failed', { path, error: String(err) });
      return false;
    }
  }

  async #runOne(r: Running): Promise<void> {
    const { leased, controller } = r;
    const base = `/assignments/${leased.assignmentId}`;
    if (!(await this.#report(`${base}/start`, {}))) {
      abort(controller, 'lease_lost', 'the attempt was taken back before it started');
    }
    const ctx: TaskContext = {
      assignmentId: leased.assignmentId,
      replicaId: this.#replicaId!,
      signal: controller.signal,
      progress: async (percent, message) => {
        const res = await this.#transport.request<{ cancelRequested: boolean }>('POST', `${base}/progress`, {
          body: { replicaId: this.#replicaId, percent, ...(message !== undefined ? { message } : {}) }, idempotent: true,
        }).catch((err: unknown) => {
          if (isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED')) abort(controller, 'lease_lost', 'the attempt is no longer ours');
          return null;
        });
        if (res?.cancelRequested) abort(controller, 'cancelled', 'the task was cancelled');
      },
      log: (message, data) => this.#log('info', message, { taskId: leased.task.id, ...data }),
      spawn: async (spec) => {
        const task = await this.#client.tasks.submit({ ...spec, parentId: leased.task.id });
        return { id: task.id, task, wait: (options) => this.#client.tasks.wait(task.id, options) };
      },
    };

    let result: Json | void = undefined;
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
      if (await this.#report(`${base}/cancelled`, {})) this.stats.cancelled += 1;
      return;
    }
    if (error === null && kind === null) {
      if (await this.#report(`${base}/complete`, { result: result ?? null })) this.stats.completed += 1;
      return;
    }
    const retryable = kind !== null || !(error instanceof NonRetryableError);
    const e = error instanceof Error ? error : kind !== null ? (controller.signal.reason as Error) : new Error(String(error));
    const code = kind === 'timeout' ? 'TIMED_OUT' : kind === 'shutdown' ? 'WORKER_SHUTDOWN' : (e as { code?: unknown }).code;
    const details = error instanceof NonRetryableError ? error.details : undefined;
    if (await this.#report(`${base}/fail`, {
      retryable,
      error: { message: e.message || e.name, ...(typeof code === 'string' ? { code } : {}), ...(details !== undefined ? { details } : {}) },
    })) this.stats.failed += 1;
  }

  /** One loop for every running attempt: renew leases and learn of cancellations. */
  async #heartbeatAll(): Promise<void> {
    await Promise.all([...this.#running.values()].map(async (r) => {
      if (r.controller.signal.aborted) return;
      try {
        const res = await this.#transport.request<{ cancelRequested: boolean }>('POST', `/assignments/${r.leased.assignmentId}/heartbeat`, {
          body: { replicaId: this.#replicaId }, idempotent: true,
        });
        if (res.cancelRequested) abort(r.controller, 'cancelled', 'the task was cancelled');
      } catch (err) {
        if (isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED')) {
          const kind = endedAs(err);
          abort(r.controller, kind, kind === 'lease_lost' ? 'the server no longer considers this attempt ours' : `the server ended the attempt (${kind})`, true);
        } else if (isFlotillaError(err, 'ASSIGNMENT_NOT_FOUND')) {
          abort(r.controller, 'lease_lost', 'the attempt no longer exists');
        }
        // Network errors: keep working; the next beat may get through before the lease lapses.
      }
    }));
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
