// The dispatcher matches pending tasks to replicas that are waiting for work (a worker's
// open lease request). It is woken — never polls — on: a submit, a replica starting to wait,
// a freed slot, a task returning to pending, and the run-at time of the earliest delayed
// task (one timer for all of them, not one per task). Wakes are coalesced: many in one
// event-loop turn cause one pass, and a wake during a pass causes exactly one more.
//
// A pass: read the waiting replicas' live records, read pending candidates in dispatch order
// (priority desc, earlier SLA deadline, FIFO) page by page, let core/routing choose a replica per task, let
// core/task-machine turn each choice into a guarded dispatch transition, commit them in one
// batch, then hand each waiting replica its tasks. Guards make a lost race harmless: a task
// dispatched elsewhere meanwhile, or a replica that filled up, is a conflict that is skipped.
//
// Direct hand-off (docs/decisions.md 42). When a pass ends having found nothing more for
// replicas that still have free slots, it keeps their free slots. A task submitted while the
// dispatcher is idle and those slots are known is routed at once (the same routing and the
// same dispatch decision as a pass) and created and dispatched in one transaction, one
// durable commit; the push leaves right after it. A wake that may have made work pending
// (a submit not handed off, a retry, a concurrency key given back, a replica starting to
// wait, any wake from another node) forgets the slots until the next pass has looked at the
// queue; a wake that only freed a slot keeps them. So a hand-off never overtakes a task this
// node knows to be pending: it happens only when, as far as this node knows, the queue of
// every served agent is empty (a task another node committed a moment ago is known when its
// signal arrives). A slot taken
// meanwhile by another node only makes the dispatch part conflict: the task stays pending
// and a pass takes it. While the slots are unknown and a pass from the head of the queue is
// deciding whether to leave some, submits wait for its decision (handOffReady) instead of
// being written pending: a steady stream of submits would otherwise keep every pass from
// leaving slots, and no task of the stream would be handed off (decisions.md 48).
//
// Tool domains down (engine/mcp, decisions.md 87). While a domain is down, an agent that
// needs it takes only tasks that allow running degraded: a pass reads the flag of the page's
// tasks such an agent could take (one read, only then) and routing passes the agent over for
// the others; a hand-off and an operator's assign apply the same rule. Every assignment
// carries the gateway's URL and the agent's domains down as it is delivered.

import type { LeasedTask } from '@flotilla/sdk';
import { agentServes, assignCandidates, planRoutes, type AssignRefusal, type DispatchPosition, type ReplicaCandidate } from '../core/routing.ts';
import { decideDispatch, decideDispatchFailed } from '../core/task-machine.ts';
import type { AgentRecord, ConflictReason, Millis, NewTask, ReplicaRecord, TaskHead, TaskRecord, Transition, TransitionResult } from '../core/types.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { commit, type EngineContext, type WakeReason } from './context.ts';
import { toIso } from './time.ts';
import { downDomainsOf, gatedAgents } from '../core/tool-domains.ts';
import { capsFor } from '../core/flow-caps.ts';
import type { RateLimits } from './rate-limits.ts';
import { passFlow, type PassFlow } from './dispatch-flow.ts';

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

/** A dispatch planned for a task being created (see "Direct hand-off"), with the slot it holds. */
export interface HandOff {
  transition: Transition;
  /** The waiting request that receives the task, as it was when the hand-off was planned. */
  waiter: LeaseWaiter;
}

/** What a guard's conflict means for an operator's assign: the state it found had changed. */
function conflictRefusal(taskId: string, replicaId: string, conflict: ConflictReason): AssignRefusal {
  switch (conflict) {
    case 'replica_slot':
      return { reason: 'no_free_slot', message: `replica ${replicaId} filled up or stopped being live meanwhile` };
    case 'concurrency_key':
      return { reason: 'concurrency_key_full', message: `the concurrency key of task ${taskId} reached its limit meanwhile` };
    case 'fleet_cap':
    case 'agent_cap':
      return { reason: 'no_free_slot', message: `the ${conflict === 'fleet_cap' ? 'fleet cap (maxConcurrentTasks)' : "agent's cap (maxInFlight)"} is reached` };
    default:
      return { reason: 'not_pending', message: `task ${taskId} changed meanwhile (dispatched, cancelled or failed); it is no longer pending` };
  }
}

/** What a pushed assignment carries: the task fields the worker needs. */
type TaskPayload = Pick<TaskRecord, 'id' | 'type' | 'input' | 'maxAttempts' | 'priority' | 'timeoutMs' | 'correlation' | 'traceparent' | 'parentId' | 'agent' | 'tools' | 'resumed' | 'dependencies'>;

function leased(transition: Transition, task: TaskPayload, mcp: LeasedTask['mcp']): LeasedTask {
  const a = transition.assignmentInsert!;
  return {
    assignmentId: a.id,
    leaseExpiresAt: toIso(a.leaseExpiresAt),
    deadlineAt: toIso(a.deadlineAt),
    task: {
      id: task.id, type: task.type, input: task.input, attempt: a.attempt, maxAttempts: task.maxAttempts,
      priority: task.priority, timeoutMs: task.timeoutMs, correlation: task.correlation,
      traceparent: task.traceparent, parentId: task.parentId, agent: task.agent, tools: task.tools, resumed: task.resumed,
      // Only a task that had dependencies carries their outcomes (docs/workflows.md).
      ...(task.dependencies === null || task.dependencies === undefined ? {} : { dependencies: task.dependencies }),
    },
    ...(mcp === undefined ? {} : { mcp }),
  };
}

/** What the dispatcher needs of the tool domains (engine/mcp): which are down, and where the gateway is. */
export interface DispatchToolDomains {
  down(): ReadonlySet<string>;
  gatewayUrl(): string;
}

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
  #resumeAfter: DispatchPosition | null = null;
  /**
   * Free slots of waiting replicas as the last pass left them, when it found no pending task
   * they could take, and the agents it routed with; null when unknown (see "Direct hand-off").
   */
  #handOffSlots: {
    replicas: Map<string, { candidate: ReplicaCandidate; waiter: LeaseWaiter }>; agents: ReadonlyMap<string, AgentRecord>;
    /** The caps a hand-off's claim carries, as the pass that left the slots decided them (no look at every agent per submit). */
    capsOf: PassFlow['capsOf'];
  } | null = null;
  /**
   * A work-wake came after the running pass began reading the queue's head: the task that
   * caused it may be missing from the read. (One from before is covered: what woke it was
   * committed before the wake, a local write or another node's signal sent on commit.)
   */
  #workWoken = false;
  /**
   * Some wake (of any reason: work, replicas or agents, freed slots or keys, a timer) came
   * after the last pass from the head began reading. A rolling scan that reaches the end of
   * the queue starts again from the head only then: otherwise the whole queue has just been
   * read for these slots and nothing changed, and scanning it again would find the same
   * nothing, forever (a queue longer than MAX_PAGES pages that no free slot may take: tasks
   * held by a concurrency key, a tool domain down, another agent's replica).
   */
  #wokenSinceHead = false;
  /** A view-wake came after the running pass started: the replicas or agents it read are old. */
  #viewWoken = false;
  /** The running pass has begun reading the queue from its head. */
  #headRead = false;
  /**
   * The running pass read (or is reading) the queue from its head and has not yet decided
   * whether it leaves hand-off slots; submits wait for that decision (see handOffReady).
   */
  #deciding = false;
  #decided: Array<() => void> = [];
  /**
   * Creates in flight that leave a task pending (TaskService.submitMany): until each has
   * committed and woken the dispatcher, a pass may not have seen its task, so no pass
   * leaves hand-off slots (a hand-off would overtake it).
   */
  #pendingCreates = 0;
  /** Passes run so far (observability; tests use it to prove the dispatcher is not spinning). */
  passes = 0;
  /** Tasks created and dispatched in one commit (observability and tests). */
  handOffs = 0;

  #toolDomains: DispatchToolDomains | null;
  /** Provider rate limits (engine/rate-limits.ts); null: none are looked at. */
  #rateLimits: RateLimits | null;

  constructor(params: { ctx: EngineContext; registry: AgentRegistry; toolDomains?: DispatchToolDomains; rateLimits?: RateLimits }) {
    this.#ctx = params.ctx;
    this.#registry = params.registry;
    this.#toolDomains = params.toolDomains ?? null;
    this.#rateLimits = params.rateLimits ?? null;
  }

  /** Agents with a tool domain down, and those domains (empty, at no cost, while none is down). */
  #gated(agents: Iterable<AgentRecord>): Map<string, string[]> {
    const down = this.#toolDomains?.down();
    return down === undefined || down.size === 0 ? new Map() : gatedAgents(agents, down);
  }

  /**
   * Tasks of the page that may not go to the gated agents that could take them: they do not
   * allow running degraded (read from their records, one read, only while a domain is down).
   */
  async #excluded(tasks: readonly TaskHead[], agents: ReadonlyMap<string, AgentRecord>, gated: ReadonlyMap<string, string[]>): Promise<Map<string, Set<string>> | undefined> {
    if (gated.size === 0) return undefined;
    const blocking = new Map<string, Set<string>>();
    for (const t of tasks) {
      const names = [...gated.keys()].filter((name) => agentServes(agents.get(name)!, t));
      if (names.length > 0) blocking.set(t.id, new Set(names));
    }
    if (blocking.size === 0) return undefined;
    for (const record of await this.#ctx.store.taskGetMany({ ids: [...blocking.keys()] })) {
      if (record.allowDegraded === true) blocking.delete(record.id);
    }
    return blocking;
  }

  /**
   * The gateway note an assignment for `agent` carries: the agent's domains down as it is
   * delivered (a task dispatched then allows running degraded), from the registry as the
   * last pass read it (a hand-off and an assign follow a pass).
   */
  #mcpNote(agent: string): LeasedTask['mcp'] {
    if (this.#toolDomains === null) return undefined;
    const down = this.#toolDomains.down();
    const downDomains = down.size === 0 ? [] : downDomainsOf(this.#passAgents.get(agent)?.toolDomains ?? [], down);
    return { url: this.#toolDomains.gatewayUrl(), downDomains };
  }

  /** The registry as the last pass read it (for #mcpNote). */
  #passAgents: ReadonlyMap<string, AgentRecord> = new Map();

  /** One open lease request per replica: a newer one replaces (and empties) the older. */
  addWaiter(waiter: LeaseWaiter): void {
    const previous = this.#waiters.get(waiter.replicaId);
    this.#waiters.set(waiter.replicaId, waiter);
    if (previous && previous !== waiter) previous.deliver([]);
    this.wake('view');
  }

  removeWaiter(waiter: LeaseWaiter): void {
    if (this.#waiters.get(waiter.replicaId) === waiter) this.#waiters.delete(waiter.replicaId);
  }

  waitingReplicaIds(): string[] {
    return [...this.#waiters.keys()];
  }

  /**
   * Asks for a pass. `work` (the default): something may have become dispatchable that a
   * hand-off must not overtake, so hand-offs wait for the pass. `view`: the waiting replicas
   * or the agents changed; the slots were routed with the old ones. `capacity`: only slots
   * were freed; the queue is as empty as it was, and the hand-off slots known (fewer than
   * there are now) stay usable.
   */
  wake(reason: WakeReason = 'work'): void {
    this.#wokenSinceHead = true;
    this.#schedule(reason);
  }

  /** Schedules a pass for `reason` (a pass continuing its own scan calls this, not wake). */
  #schedule(reason: WakeReason): void {
    if (reason !== 'capacity') {
      this.#handOffSlots = null;
      if (reason === 'work') this.#workWoken = true;
      else this.#viewWoken = true;
      // The running pass can no longer leave slots: submits waiting for it need not wait.
      if (this.#deciding && (reason === 'view' || this.#headRead)) this.#decide();
    }
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
    try {
      await this.#passBody();
    } finally {
      this.#decide();
    }
  }

  async #passBody(): Promise<void> {
    this.passes += 1;
    this.#viewWoken = false;
    this.#headRead = false;
    // A pass from the head of the queue may leave hand-off slots: submits wait for it to decide.
    this.#deciding = this.#resumeAfter === null && this.#handOffSlots === null;
    if (this.#waiters.size === 0 || this.#stopped) return;
    const { store, config } = this.#ctx;
    const now = this.#ctx.now();
    const live = new Map((await store.replicaList({ statuses: ['live', 'draining'] })).map((r) => [r.id, r]));
    const agents = await this.#registry.map();
    this.#passAgents = agents;
    const gated = this.#gated(agents.values());

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
      // Offered nothing, but kept waiting: a draining replica (an operator's drain), a paused
      // agent, a replica that says it is unhealthy. Each may take work again later.
      if (replica.status !== 'live' || agents.get(replica.agent)!.pausedAt !== null || replica.health === 'unhealthy') continue;
      const offered = Math.min(waiter.want, replica.maxConcurrency - replica.inFlight);
      if (offered > 0) {
        candidates.push({ ...replica, offered });
        planned.set(replica.id, waiter);
      }
    }
    if (candidates.length === 0) return;
    // Flow control (issue 16): the caps trim the offers; rate keys are asked per page below.
    const flow: PassFlow = passFlow({ rateLimits: this.#rateLimits, candidates, live: live.values(), agents, fleetCap: config.maxConcurrentTasks, now });

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
      if (page === 0 && !resumed) {
        this.#workWoken = false;
        this.#wokenSinceHead = false;
        this.#headRead = true;
      }
      const read = await store.taskCandidates({ agents: served, includeCapabilityRouted, now, limit, after });
      if (read.length === 0) {
        reachedEnd = true;
        break;
      }
      const keys = [...new Set(read.flatMap((t) => (t.concurrencyKey === null ? [] : [t.concurrencyKey])))];
      const keyInFlight = keys.length > 0 ? await store.concurrencyKeyInFlight({ keys }) : new Map<string, number>();
      const excluded = await this.#excluded(read, agents, gated);
      // Tasks their rate key holds back are left out (a page without keys: routed as read).
      const routes = await flow.admit(read, (tasks) => planRoutes({
        tasks, replicas: candidates, agents, keyInFlight, serverKeyLimits: config.concurrencyLimits, ...(excluded ? { excluded } : {}),
      }));
      const decided = routes.map((route) => decideDispatch({
        task: route.task,
        replica: { id: route.replicaId, agent: route.agent },
        assignmentId: this.#ctx.newId(),
        now,
        leaseMs: config.leaseMs,
        concurrencyLimit: route.concurrencyLimit,
        ...flow.capsOf(route.agent),
      }));
      // The rate keys' windows are taken before the claims; what a key refused is not claimed.
      const { routes: kept, transitions } = await flow.take(routes, decided);
      const results = await commit(this.#ctx, transitions);
      results.forEach((result, i) => {
        if (!result.ok) return;
        const route = kept[i]!;
        this.#ctx.attempts.applied(transitions[i]!, route.task);
        const candidate = candidates.find((c) => c.id === route.replicaId)!;
        candidate.offered -= 1;
        candidate.inFlight += 1;
        candidate.lastAssignedAt = now;
        const list = byReplica.get(route.replicaId) ?? [];
        list.push({ transition: transitions[i]!, task: route.task });
        byReplica.set(route.replicaId, list);
      });
      // After the claims are counted: a cap conflict then leaves the offers at 0, not below.
      await flow.settle(kept, transitions, results);
      const last = read[read.length - 1]!;
      after = { priority: last.priority, slaDeadline: last.slaDeadline, seq: last.seq };
      if (read.length < limit) {
        reachedEnd = true;
        break;
      }
      // More of the queue than one page: this pass leaves no hand-off slots.
      this.#decide();
    }

    // Capacity left over: continue the scan where this pass stopped, or, if a resumed scan
    // reached the end, start again from the head (new, more urgent tasks may be there).
    const capacityLeft = candidates.some((c) => c.offered > 0);
    if (capacityLeft && !reachedEnd) {
      this.#resumeAfter = after;
      this.#schedule('work');
    } else if (capacityLeft && resumed && this.#wokenSinceHead) {
      this.wake();
    } else if (capacityLeft && !this.#stopped && !this.#workWoken && !this.#viewWoken && this.#pendingCreates === 0) {
      // The whole queue was read from its head and these slots stayed free: a task submitted
      // from now on, until the next wake, would be the first in line for them. Decided
      // before the pushes, so that waiting submits do not wait for them too.
      const replicas = new Map<string, { candidate: ReplicaCandidate; waiter: LeaseWaiter }>();
      for (const c of candidates) {
        const waiter = planned.get(c.id);
        // A long-poll this pass is about to answer is not a slot: it is answered once.
        if (waiter !== undefined && !waiter.persistent && byReplica.has(c.id)) continue;
        if (c.offered > 0 && waiter !== undefined && waiter === this.#waiters.get(c.id)) replicas.set(c.id, { candidate: { ...c }, waiter });
      }
      this.#handOffSlots = { replicas, agents, capsOf: flow.capsOf };
    }
    this.#decide();
    await this.#deliver(byReplica, planned);
    await this.#armDelayed(now);
    // A key with no room now: a pass when it has room again (its pause ends, or its window moves).
    if (flow.retryAt !== null) this.#armTimer(flow.retryAt);
  }

  /**
   * Resolves when a submit may plan its hand-offs: at once, unless the hand-off slots are
   * unknown while a pass that read the queue from its head is deciding whether to leave
   * some; then when it has decided (at the latest when the pass ends). Without this wait, a
   * steady stream of submits never gets a hand-off once one missed it: each submit created
   * pending during a pass is a work-wake, so that pass leaves no slots, the next pass has
   * the same fate, and every task pays for a whole pass (measured on PostgreSQL at 200
   * tasks/s: 6 % of the tasks handed off). A submit that waits has not been written, so it
   * wakes nothing, and the pass that finds the queue empty leaves the slots it hands off to.
   */
  handOffReady(): Promise<void> {
    if (this.#handOffSlots !== null || !this.#deciding || this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => this.#decided.push(resolve));
  }

  #decide(): void {
    this.#deciding = false;
    for (const resolve of this.#decided.splice(0)) resolve();
  }

  /** Submits waiting in handOffReady (observability and tests). */
  get handOffsWaiting(): number {
    return this.#decided.length;
  }

  /**
   * A create that leaves a task pending is about to be written; call the returned function
   * once it has committed (or failed), before waking the dispatcher for it.
   */
  pendingCreate(): () => void {
    this.#pendingCreates += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#pendingCreates -= 1;
    };
  }

  /**
   * A dispatch for `task`, about to be created, when it can be handed off directly (see
   * "Direct hand-off"); null otherwise. The slot is held until handOffSettled is called.
   */
  planHandOff(task: NewTask, now: Millis): HandOff | null {
    // Known slots mean no work-wake since a pass found the queue empty: a pass running or
    // due now was asked for by freed capacity only, and dispatches nothing a hand-off could
    // overtake. Its reads may miss a hand-off committing meanwhile; the slot guard settles it.
    const slots = this.#handOffSlots;
    if (slots === null || this.#stopped) return null;
    // Delayed tasks wait for their time; concurrency keys need the key's live count, which a
    // pass reads: both go the usual way.
    // A rate key needs its window taken first: also the usual way.
    if (task.runAt > now || task.concurrencyKey !== null || task.rateKey != null) return null;
    // Only requests still open, and still the ones the pass saw (an HTTP long-poll is
    // answered once; a newer request of the replica asked for its own number of tasks).
    // Only the replicas of agents that serve the task are routed over: with a large idle
    // fleet of other agents (bench W3: 1,000 replicas), copying and filtering all of them on
    // every submit was a tenth of the server's time.
    const serving: ReplicaCandidate[] = [];
    for (const [id, { candidate, waiter }] of slots.replicas) {
      const agent = slots.agents.get(candidate.agent);
      if (agent === undefined || !agentServes(agent, task)) continue;
      if (this.#waiters.get(id) !== waiter) slots.replicas.delete(id);
      else serving.push(candidate);
    }
    // A domain down: the task does not go to an agent of it unless it allows running degraded.
    const gated = this.#gated(slots.agents.values());
    const excluded = gated.size === 0 || task.allowDegraded === true ? undefined : new Map([[task.id, new Set(gated.keys())]]);
    const [route] = planRoutes({
      tasks: [{ ...task, seq: 0 }], replicas: serving, agents: slots.agents, keyInFlight: new Map(), serverKeyLimits: {},
      ...(excluded ? { excluded } : {}),
    });
    if (!route) return null;
    const { candidate: replica, waiter } = slots.replicas.get(route.replicaId)!;
    replica.offered -= 1;
    replica.inFlight += 1;
    replica.lastAssignedAt = now;
    if (replica.offered <= 0) slots.replicas.delete(route.replicaId);
    const transition = decideDispatch({
      task: { ...task, seq: 0 }, replica: { id: route.replicaId, agent: route.agent }, assignmentId: this.#ctx.newId(),
      now, leaseMs: this.#ctx.config.leaseMs, concurrencyLimit: null, ...slots.capsOf(route.agent),
    });
    return { transition, waiter };
  }

  /**
   * After the create committed: a dispatched hand-off is pushed (or undone if its request is
   * gone); one that did not apply (the task existed already, or the slot was taken meanwhile)
   * leaves the task to a pass.
   */
  async handOffSettled(handOff: HandOff, result: TransitionResult | null, task: TaskRecord): Promise<void> {
    if (result === null || !result.ok) {
      this.wake();
      return;
    }
    this.handOffs += 1;
    this.#ctx.attempts.applied(handOff.transition, task);
    await this.#handOver(handOff.transition.assignmentInsert!.replicaId, handOff.waiter, [{ transition: handOff.transition, task }]);
  }

  /**
   * An operator's dispatch of one pending task now (POST /tasks/{id}/assign), to the replica
   * routing chooses among those the target allows (an agent, a replica, or any that serves the
   * task) that are waiting for work on this node. The same routing, the same dispatch decision
   * (kind `assign`: durable) and the same push as a pass; only the choice of the task differs:
   * this one, whatever its place in the queue or its `runAt`. Resolves with the transition once
   * the task has reached the replica, or with why nothing could take it (a dispatch that could
   * not be delivered is undone, as in a pass).
   */
  async assign(task: TaskRecord, target: { agent: string | null; replica: ReplicaRecord | null }, assignedBy: string): Promise<{ transition: Transition } | { refusal: AssignRefusal }> {
    const { store, config } = this.#ctx;
    const [live, agents] = await Promise.all([store.replicaList({ statuses: ['live'] }), this.#registry.map()]);
    this.#passAgents = agents;
    const keyInFlight = task.concurrencyKey === null ? new Map<string, number>() : await store.concurrencyKeyInFlight({ keys: [task.concurrencyKey] });
    const waiting = new Map([...this.#waiters.values()].map((w) => [w.replicaId, w.want]));
    const gated = this.#gated(agents.values());
    const found = assignCandidates({
      task, target, agents, live, waiting, keyInFlight, serverKeyLimits: config.concurrencyLimits,
      ...(gated.size > 0 ? { gated } : {}), allowDegraded: task.allowDegraded === true,
    });
    if ('refusal' in found) return found;
    const [route] = planRoutes({ tasks: [task], replicas: found.candidates, agents, keyInFlight, serverKeyLimits: config.concurrencyLimits });
    // assignCandidates applied every rule planRoutes applies: a candidate always has a route.
    if (!route) throw new Error(`no route for task ${task.id} among ${found.candidates.length} candidates`);
    const waiter = this.#waiters.get(route.replicaId)!;
    const now = this.#ctx.now();
    const caps = capsFor(agents.get(route.agent), config.maxConcurrentTasks);
    const transition = decideDispatch({
      task, replica: { id: route.replicaId, agent: route.agent }, assignmentId: this.#ctx.newId(), now,
      leaseMs: config.leaseMs, concurrencyLimit: route.concurrencyLimit, assignedBy, ...(caps === undefined ? {} : { caps }),
    });
    // A rate-keyed task takes its request from its key's minute as a pass's would (decisions.md
    // 103): an operator's assign neither overruns the provider's limit nor goes while the key
    // is paused, and what it sends counts against the key on every node.
    const rate = task.rateKey == null || this.#rateLimits === null ? null
      : { key: task.rateKey, holder: transition.assignmentInsert!.id, tokens: task.estimatedTokens ?? 0 };
    if (rate !== null && (await this.#rateLimits!.take([rate], now)).size > 0) return { refusal: await this.#rateRefusal(task) };
    const [result] = await commit(this.#ctx, [transition]);
    if (!result!.ok) {
      if (rate !== null) await this.#rateLimits!.giveBack([rate.holder]);
      return { refusal: conflictRefusal(task.id, route.replicaId, result!.conflict) };
    }
    this.#ctx.attempts.applied(transition, task);
    // The slot is taken: the hand-off slots must not offer it again.
    const slot = this.#handOffSlots?.replicas.get(route.replicaId);
    if (slot !== undefined && --slot.candidate.offered <= 0) this.#handOffSlots!.replicas.delete(route.replicaId);
    if (slot !== undefined) slot.candidate.inFlight += 1;
    const delivered = await this.#handOver(route.replicaId, waiter, [{ transition, task }]);
    if (!delivered) {
      return { refusal: { reason: 'replica_gone', message: `replica ${route.replicaId} was gone before the assignment reached it; task ${task.id} is pending again` } };
    }
    return { transition };
  }

  /** Why an assign's task waits on its rate key (the key refused its request). */
  async #rateRefusal(task: TaskRecord): Promise<AssignRefusal> {
    const held = await this.#rateLimits!.holding(task);
    const why = held === null ? 'had no room for it' : held.admission.reason === 'paused'
      ? `is paused (a provider's 429) until ${toIso(held.admission.retryAt!)}`
      : `has no room in its minute (${held.admission.reason}) until ${toIso(held.admission.retryAt!)}`;
    return { reason: 'rate_limited', message: `the rate key "${task.rateKey}" of task ${task.id} ${why}` };
  }

  async #deliver(byReplica: Map<string, { transition: Transition; task: TaskHead }[]>, planned: Map<string, LeaseWaiter>): Promise<void> {
    for (const [replicaId, dispatched] of byReplica) {
      // One read for all of this replica's tasks (on PostgreSQL a round trip per task was most of a pass).
      const tasks = new Map((await this.#ctx.store.taskGetMany({ ids: dispatched.map((d) => d.transition.taskId) })).map((t) => [t.id, t]));
      const items = dispatched.flatMap(({ transition }) => {
        const task = tasks.get(transition.taskId);
        return task ? [{ transition, task }] : [];
      });
      await this.#handOver(replicaId, planned.get(replicaId), items);
    }
  }

  /**
   * Pushes dispatched tasks to the request they were planned for, or undoes their dispatches
   * when it cannot take them. Only that request may receive them: a newer request from the
   * same replica (which replaced it meanwhile) asked for its own `max`.
   */
  async #handOver(replicaId: string, planned: LeaseWaiter | undefined, items: Array<{ transition: Transition; task: TaskPayload }>): Promise<boolean> {
    const waiter = planned !== undefined && planned === this.#waiters.get(replicaId) ? planned : undefined;
    if (waiter && !waiter.persistent) this.#waiters.delete(replicaId);
    const delivered = waiter !== undefined && waiter.deliver(items.map(({ transition, task }) => leased(transition, task, this.#mcpNote(transition.assignmentInsert!.agent))));
    if (delivered) return true;
    // These tasks go back to pending (below, after reads): from now on no hand-off may
    // overtake them, so the slots are forgotten before the first await.
    this.#handOffSlots = null;
    this.#workWoken = true;
    // A standing request that could not take delivery is dead (its socket closed).
    if (waiter?.persistent) this.removeWaiter(waiter);
    const now = this.#ctx.now();
    const undo: Transition[] = [];
    for (const { transition } of items) {
      // Decide the undo from the task as it is now: a cancel may have landed meanwhile.
      const task = await this.#ctx.store.taskGet({ id: transition.taskId });
      const a = transition.assignmentInsert!;
      if (!task || task.assignmentId !== a.id) continue;
      undo.push(decideDispatchFailed({ task, assignment: a, now, reason: `replica ${replicaId} was gone before the assignment reached it` }));
    }
    if (undo.length > 0) {
      this.#ctx.log.warn({ count: undo.length }, 'dispatches did not reach their replica; tasks returned to pending');
      await commit(this.#ctx, undo);
    }
    return false;
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
