// Task calls. Which ones are retried on another node after a failure follows from whether
// repeating them is harmless: reads, cancel and retry always; a submit only with an
// idempotency key (the server then answers the same task instead of creating a second).

import type { EventView, Json, Page, TaskSpec, TaskTreeView, TaskView, WorkflowSpec, WorkflowView } from '../wire.ts';
import { TERMINAL_TASK_STATUSES } from '../wire.ts';
import type { SocketClient } from './socket.ts';
import type { Transport } from './transport.ts';
import type { CallOptions, CancelOptions, SubmitResult, TaskAssignments, TaskListFilters, WaitOptions } from './types.ts';

/** Per long-poll round; the server allows up to 120 s, but proxies often cut idle requests sooner. */
const WAIT_ROUND_MS = 30_000;
/** Headroom over `waitMs` before the request itself counts as timed out. */
const WAIT_SLACK_MS = 10_000;

const enc = encodeURIComponent;

export class TasksApi {
  readonly #t: Transport;
  readonly #socket: SocketClient | null;

  constructor(transport: Transport, socket: SocketClient | null = null) {
    this.#t = transport;
    this.#socket = socket;
  }

  /**
   * The task as created, or the existing one its idempotency key matched: the body of
   * `POST /tasks`, over either transport.
   */
  async submit(spec: TaskSpec, opts: CallOptions = {}): Promise<TaskView> {
    if (this.#socket) {
      const { status, result } = await this.#socket.call<TaskView | SubmitResult>('submit', { task: spec });
      // A server without reply statuses answered `{created, task}` (docs/decisions.md 36).
      return status === undefined ? (result as SubmitResult).task : result as TaskView;
    }
    return this.#t.request('POST', '/tasks', { body: spec, idempotent: spec.idempotencyKey !== undefined, signal: opts.signal });
  }

  /** One atomic batch (all validated before any is written); up to 1,000 specs. */
  async submitMany(specs: TaskSpec[], opts: CallOptions = {}): Promise<SubmitResult[]> {
    if (this.#socket) return (await this.#socket.request<{ items: SubmitResult[] }>('submitMany', { tasks: specs })).items;
    const idempotent = specs.length > 0 && specs.every((s) => s.idempotencyKey !== undefined);
    const res = await this.#t.request<{ items: SubmitResult[] }>('POST', '/tasks/batch', { body: { tasks: specs }, idempotent, signal: opts.signal });
    return res.items;
  }

  /**
   * A workflow (POST /workflows, docs/workflows.md): specs naming each other by `ref`
   * (`dependsOn: ['#fetch']`), validated as a whole and created in one commit, or none.
   * Answers every created task, in the order given, and their ids by ref.
   */
  async submitWorkflow(spec: WorkflowSpec, opts: CallOptions = {}): Promise<WorkflowView> {
    const idempotent = spec.tasks.length > 0 && spec.tasks.every((s) => s.idempotencyKey !== undefined);
    return this.#t.request('POST', '/workflows', { body: spec, idempotent, signal: opts.signal });
  }

  get(id: string, opts: CallOptions = {}): Promise<TaskView> {
    return this.#t.request('GET', `/tasks/${enc(id)}`, { idempotent: true, signal: opts.signal });
  }

  /**
   * Resolves when the task is terminal, using the server's long-poll (no client-side
   * sleeping). After `timeoutMs` it resolves with the task as last seen, not terminal:
   * check `status`. Rejects with the signal's reason on abort.
   */
  async wait(id: string, opts: WaitOptions = {}): Promise<TaskView> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    for (;;) {
      const remaining = deadline - Date.now();
      const waitMs = Math.max(0, Math.min(WAIT_ROUND_MS, Math.ceil(remaining)));
      const task = await this.#t.request<TaskView>('GET', `/tasks/${enc(id)}`, {
        query: { waitMs },
        idempotent: true,
        signal: opts.signal,
        timeoutMs: waitMs + Math.max(WAIT_SLACK_MS, this.#t.timeoutMs),
      });
      if (TERMINAL_TASK_STATUSES.includes(task.status) || Date.now() >= deadline || waitMs === 0) return task;
    }
  }

  /** One page, newest first. */
  page(filters: TaskListFilters = {}): Promise<Page<TaskView>> {
    const { signal, ...query } = filters;
    return this.#t.request('GET', '/tasks', { query: { ...query }, idempotent: true, signal });
  }

  /** Every matching task, newest first, fetching pages of `limit` as the consumer goes. */
  async *list(filters: TaskListFilters = {}): AsyncGenerator<TaskView, void, undefined> {
    let cursor = filters.cursor;
    for (;;) {
      const page = await this.page({ ...filters, ...(cursor === undefined ? {} : { cursor }) });
      yield* page.items;
      if (page.nextCursor === null || page.items.length === 0) return;
      cursor = page.nextCursor;
    }
  }

  /**
   * Cancels the task and, unless `cascade: false`, its unfinished descendants. The second
   * argument is the options, or (as before) the reason alone.
   */
  cancel(id: string, options?: string | CancelOptions, opts: CallOptions = {}): Promise<TaskView> {
    const o: CancelOptions = typeof options === 'string' ? { reason: options } : options ?? {};
    const body = { ...(o.reason !== undefined ? { reason: o.reason } : {}), ...(o.cascade !== undefined ? { cascade: o.cascade } : {}) };
    return this.#t.request('POST', `/tasks/${enc(id)}/cancel`, { body, idempotent: true, signal: o.signal ?? opts.signal });
  }

  /**
   * An operator dispatches a pending task now (whatever its runAt) to `agent`, to `replica`,
   * or to any replica that serves it. Rejects with NOT_ASSIGNABLE (`details.reason`) when
   * nothing can take it. Not repeated after a failure: a second dispatch would be refused anyway.
   */
  assign(id: string, target: { agent?: string; replica?: string } = {}, opts: CallOptions = {}): Promise<TaskView> {
    return this.#t.request('POST', `/tasks/${enc(id)}/assign`, { body: target, idempotent: false, signal: opts.signal });
  }

  /** An operator fails the task for good (error OPERATOR_FAILED), a running one too; it can be retried. */
  fail(id: string, reason: string, opts: CallOptions = {}): Promise<TaskView> {
    return this.#t.request('POST', `/tasks/${enc(id)}/fail`, { body: { reason }, idempotent: false, signal: opts.signal });
  }

  /** One page of the tree `id` belongs to, from its root, parents before children. */
  treePage(id: string, opts: { limit?: number; cursor?: string } & CallOptions = {}): Promise<TaskTreeView> {
    return this.#t.request('GET', `/tasks/${enc(id)}/tree`, { query: { limit: opts.limit, cursor: opts.cursor }, idempotent: true, signal: opts.signal });
  }

  /**
   * The tree `id` belongs to, read page by page up to `max` tasks (default 10,000): `truncated`
   * says more exist. Parents come before their children.
   */
  async tree(id: string, opts: { max?: number; pageSize?: number } & CallOptions = {}): Promise<TaskTreeView & { truncated: boolean }> {
    const max = opts.max ?? 10_000;
    let page = await this.treePage(id, { limit: Math.min(opts.pageSize ?? 1_000, max), signal: opts.signal });
    const items = [...page.items];
    while (page.nextCursor !== null && items.length < max) {
      page = await this.treePage(id, { limit: Math.min(opts.pageSize ?? 1_000, max - items.length), cursor: page.nextCursor, signal: opts.signal });
      items.push(...page.items);
    }
    return { rootId: page.rootId, taskId: page.taskId, items, nextCursor: page.nextCursor, truncated: page.nextCursor !== null };
  }

  /** Requeues a failed task with a fresh attempt budget. */
  retry(id: string, opts: CallOptions = {}): Promise<TaskView> {
    return this.#t.request('POST', `/tasks/${enc(id)}/retry`, { idempotent: true, signal: opts.signal });
  }

  /**
   * Answers a task in `input_required` (its handler called `ctx.requestInput`): `input` must
   * match the schema it gave (a FlotillaApiError VALIDATION_FAILED lists the problems). The
   * task is pending again; its next attempt receives the answer as `task.resumed`.
   * Not retried on a lost answer: a second answer to the same request is refused (409).
   */
  answer(id: string, input: Json, opts: CallOptions = {}): Promise<TaskView> {
    return this.#t.request('POST', `/tasks/${enc(id)}/input`, { body: { input }, idempotent: false, signal: opts.signal });
  }

  /** The task's events in seq order (one call: up to `limit`, default 1000, after `after`). */
  async events(id: string, opts: { after?: number; limit?: number } & CallOptions = {}): Promise<EventView[]> {
    const res = await this.#t.request<{ items: EventView[] }>('GET', `/tasks/${enc(id)}/events`, {
      query: { after: opts.after, limit: opts.limit }, idempotent: true, signal: opts.signal,
    });
    return res.items;
  }

  /** The current assignment and every attempt. */
  assignment(id: string, opts: CallOptions = {}): Promise<TaskAssignments> {
    return this.#t.request('GET', `/tasks/${enc(id)}/assignment`, { idempotent: true, signal: opts.signal });
  }
}
