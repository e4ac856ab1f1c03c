// The dispatcher matches pending tasks to replicas that are waiting for work (a worker's
// open lease request). It is woken — never polls — on: a submit, a replica starting to wait,
// a freed slot, a task returning to pending, and the run-at time of the earliest delayed
// task (one timer for all of them, not one per task). Wakes are coalesced: many in one
// event-loop turn cause one pass, and a wake during a pass causes exactly one more.
//
// A pass: read the waiting replicas' live records, read pending candidates in dispatch order
// (priority desc, FIFO) page by page, let core/routing choose a replica per task, let
// core/task-machine turn each choice into a guarded dispatch transition, commit them in one
// batch, then hand each waiting replica its tasks. Guards make a lost race harmless: a task
// dispatched elsewhere meanwhile, or a replica that filled up, is a conflict that is skipped.

import type { LeasedTask } from '@flotilla/sdk';
import { planRoutes, type ReplicaCandidate } from '../core/routing.ts';
import { decideDispatch, decideDispatchFailed } from '../core/task-machine.ts';
import type { TaskHead, Transition } from '../core/types.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { commit, type EngineContext } from './context.ts';
import { toIso } from './time.ts';

export interface LeaseWaiter {
  replicaId: string;
  /** How many tasks the replica asks for at most. */
  want: number;
  /**
   * Hands tasks to the replica. Returns false if they could not be handed over (the
   * connection is gone); those dispatches are then undone as failed.
   * Called with an empty list when the waiter is superseded or its replica is no longer live.
   */
  deliver(tasks: LeasedTask[]): boolean;
  /**
   * A WebSocket session's standing request: it stays registered after a delivery and keeps
   * receiving tasks whenever the replica has free slots. An HTTP long-poll (not persistent)
   * is answered once and removed.
   */
  persistent?: boolean;
}

const PAGE_SIZE = 256;
/**
 * The first page reads only about as many tasks as the waiting replicas can take (at least
 * this many): with workers freeing a few slots at a time, reading a full page per pass read
 * ~15 rows per task dispatched (measured in the W1 drain). Later pages, reached only when
 * the first had tasks nobody could take, read a full page.
 */
const FIRST_PAGE_MIN = 32;
/** Bounds one pass's scan past tasks nobody waiting can take (pinned elsewhere, key at limit). */
const MAX_PAGES = 8;
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Dispatcher {
  #ctx: EngineContext;
  #registry: AgentRegistry;
  #waiters = new Map<string, LeaseWaiter>();
  #scheduled = false;
  #running = false;
  #again = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #timerAt: number | null = null;
  #idle: Array<() => void> = [];
  /** Resolved when the next pass to start has finished (see `passed`). */
  #nextPass: Array<() => void> = [];
  /**
   * Where a rolling scan resumes: a pass reads at most MAX_PAGES pages; when it stops with
   * capacity left, the next pass continues from here, so tasks behind a long run of tasks
   * nobody can take now are still reached. Null: start from the head of the queue.
   */
  #resumeAfter: { priority: number; seq: number } | null = null;
  /** Passes run so far (observability; tests use it to prove the dispatcher is not spinning). */
  passes = 0;

  constructor(params: { ctx: EngineContext; registry: AgentRegistry }) {
    this.#ctx = params.ctx;
    this.#registry = params.registry;
  }

  /** One open lease request per replica: a newer one replaces (and empties) the older. */
  addWaiter(waiter: LeaseWaiter): void {
    const previous = this.#waiters.get(waiter.replicaId);
    this.#waiters.set(waiter.replicaId, waiter);
    if (previous && previous !== waiter) previous.deliver([]);
    this.wake();
  }

  removeWaiter(waiter: LeaseWaiter): void {
    if (this.#waiters.get(waiter.replicaId) === waiter) this.#waiters.delete(waiter.replicaId);
  }

  waitingReplicaIds(): string[] {
    return [...this.#waiters.keys()];
  }

  wake(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  /** Resolves once a pass that starts after this call has finished (it sees every waiter added before). */
  passed(): Promise<void> {
    this.wake();
    return new Promise<void>((resolve) => this.#nextPass.push(resolve));
  }

  /** Resolves when no pass is running or scheduled (tests and shutdown). */
  async idle(): Promise<void> {
    if (!this.#running && !this.#scheduled) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    for (const waiter of this.#waiters.values()) waiter.deliver([]);
    this.#waiters.clear();
  }

  async #run(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    try {
      do {
        this.#again = false;
        const finished = this.#nextPass.splice(0);
        try {
          await this.#pass();
        } finally {
          for (const resolve of finished) resolve();
        }
      } while ((this.#again || this.#nextPass.length > 0) && !this.#stopped);
    } catch (err) {
      this.#ctx.log.error({ err }, 'dispatch pass failed; retrying in 1 s');
      this.#armTimer(this.#ctx.now() + 1_000);
    } finally {
      this.#running = false;
      if (!this.#scheduled) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #pass(): Promise<void> {
    this.passes += 1;
    if (this.#waiters.size === 0 || this.#stopped) return;
    const { store, config } = this.#ctx;
    const now = this.#ctx.now();
    const live = new Map((await store.replicaList({ statuses: ['live'] })).map((r) => [r.id, r]));
    const agents = await this.#registry.map();

    const candidates: ReplicaCandidate[] = [];
    // The waiter each replica had when the pass was planned: tasks go to that request only.
    const planned = new Map<string, LeaseWaiter>();
    for (const waiter of [...this.#waiters.values()]) {
      const replica = live.get(waiter.replicaId);
      if (!replica || !agents.has(replica.agent)) {
        this.#waiters.delete(waiter.replicaId);
        waiter.deliver([]);
        continue;
      }
      const offered = Math.min(waiter.want, replica.maxConcurrency - replica.inFlight);
      if (offered > 0) {
        candidates.push({ ...replica, offered });
        planned.set(replica.id, waiter);
      }
    }
    if (candidates.length === 0) return;

    const served = [...new Set(candidates.map((c) => c.agent))];
    const includeCapabilityRouted = served.some((name) => (agents.get(name)?.capabilities.length ?? 0) > 0);
    const byReplica = new Map<string, { transition: Transition; task: TaskHead }[]>();
    let after = this.#resumeAfter;
    const resumed = after !== null;
    this.#resumeAfter = null;
    let reachedEnd = false;

    for (let page = 0; page < MAX_PAGES; page++) {
      const offered = candidates.reduce((sum, c) => sum + c.offered, 0);
      if (offered === 0) break;
      const limit = page === 0 ? Math.min(PAGE_SIZE, Math.max(FIRST_PAGE_MIN, offered)) : PAGE_SIZE;
      const tasks = await store.taskCandidates({ agents: served, includeCapabilityRouted, now, limit, after });
      if (tasks.length === 0) {
        reachedEnd = true;
        break;
      }
      const keys = [...new Set(tasks.flatMap((t) => (t.concurrencyKey === null ? [] : [t.concurrencyKey])))];
      const keyInFlight = keys.length > 0 ? await store.concurrencyKeyInFlight({ keys }) : new Map<string, number>();
      const routes = planRoutes({ tasks, replicas: candidates, agents, keyInFlight, serverKeyLimits: config.concurrencyLimits });
      const transitions = routes.map((route) => decideDispatch({
        task: route.task,
        replica: { id: route.replicaId, agent: route.agent },
        assignmentId: this.#ctx.newId(),
        now,
        leaseMs: config.leaseMs,
        concurrencyLimit: route.concurrencyLimit,
      }));
      const results = await commit(this.#ctx, transitions);
      results.forEach((result, i) => {
        if (!result.ok) return;
        const route = routes[i]!;
        const candidate = candidates.find((c) => c.id === route.replicaId)!;
        candidate.offered -= 1;
        candidate.inFlight += 1;
        candidate.lastAssignedAt = now;
        const list = byReplica.get(route.replicaId) ?? [];
        list.push({ transition: transitions[i]!, task: route.task });
        byReplica.set(route.replicaId, list);
      });
      const last = tasks[tasks.length - 1]!;
      after = { priority: last.priority, seq: last.seq };
      if (tasks.length < limit) {
        reachedEnd = true;
        break;
      }
    }

    await this.#deliver(byReplica, planned);
    await this.#armDelayed(now);
    // Capacity left over: continue the scan where this pass stopped, or, if a resumed scan
    // reached the end, start again from the head (new, more urgent tasks may be there).
    const capacityLeft = candidates.some((c) => c.offered > 0);
    if (capacityLeft && !reachedEnd) {
      this.#resumeAfter = after;
      this.wake();
    } else if (capacityLeft && resumed) {
      this.wake();
    }
  }

  async #deliver(byReplica: Map<string, { transition: Transition; task: TaskHead }[]>, planned: Map<string, LeaseWaiter>): Promise<void> {
    const undo: Transition[] = [];
    for (const [replicaId, dispatched] of byReplica) {
      // Only the request the pass planned for may receive these tasks: a newer request from
      // the same replica (which replaced it meanwhile) asked for its own `max`.
      const waiter = planned.get(replicaId) === this.#waiters.get(replicaId) ? planned.get(replicaId) : undefined;
      const leased: LeasedTask[] = [];
      // One read for all of this replica's tasks (on PostgreSQL a round trip per task was most of a pass).
      const tasks = new Map((await this.#ctx.store.taskGetMany({ ids: dispatched.map((d) => d.transition.taskId) })).map((t) => [t.id, t]));
      for (const { transition } of dispatched) {
        const task = tasks.get(transition.taskId);
        const a = transition.assignmentInsert!;
        if (!task) continue;
        leased.push({
          assignmentId: a.id,
          leaseExpiresAt: toIso(a.leaseExpiresAt),
          deadlineAt: toIso(a.deadlineAt),
          task: {
            id: task.id, type: task.type, input: task.input, attempt: a.attempt, maxAttempts: task.maxAttempts,
            priority: task.priority, timeoutMs: task.timeoutMs, correlation: task.correlation,
            traceparent: task.traceparent, parentId: task.parentId, agent: task.agent,
          },
        });
      }
      if (waiter && !waiter.persistent) this.#waiters.delete(replicaId);
      const delivered = waiter !== undefined && waiter.deliver(leased);
      if (delivered) continue;
      // A standing request that could not take delivery is dead (its socket closed).
      if (waiter?.persistent) this.removeWaiter(waiter);
      const now = this.#ctx.now();
      for (const { transition } of dispatched) {
        // Decide the undo from the task as it is now: a cancel may have landed meanwhile.
        const task = await this.#ctx.store.taskGet({ id: transition.taskId });
        const a = transition.assignmentInsert!;
        if (!task || task.assignmentId !== a.id) continue;
        undo.push(decideDispatchFailed({ task, assignment: a, now, reason: `replica ${replicaId} was gone before the assignment reached it` }));
      }
    }
    if (undo.length > 0) {
      this.#ctx.log.warn({ count: undo.length }, 'dispatches did not reach their replica; tasks returned to pending');
      await commit(this.#ctx, undo);
    }
  }

  /** One timer for the earliest delayed (or backing-off) task, so it starts on time without polling. */
  async #armDelayed(now: number): Promise<void> {
    const next = await this.#ctx.store.taskNextRunAt({ now });
    if (next !== null) this.#armTimer(next);
  }

  #armTimer(at: number): void {
    if (this.#stopped) return;
    if (this.#timerAt !== null && this.#timerAt <= at && this.#timerAt > this.#ctx.now()) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    // setTimeout overflows above 2^31-1 ms (about 24.8 days) and would fire at once; a
    // capped timer just wakes early, finds nothing due, and re-arms.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAt = null;
      this.wake();
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - this.#ctx.now()) + 1));
    this.#timer.unref();
  }
}
