// The worker side of the protocol (docs/protocol.md): replicas register, lease tasks with a
// long-poll, heartbeat, report progress, and end each attempt. Every report names the
// replica that sends it; a report for an assignment that is no longer current is refused
// (409 ASSIGNMENT_SUPERSEDED) and never applied.

import type { Json, LeasedTask, TaskErrorInfo } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../core/json-limits.ts';
import {
  decideCancel, decideRateLimited, decideCancelAck, decideComplete, decideFail, decideNotHeld, decideStart, decideAskInput, decideWait, MAX_AWAITED_CHILDREN,
} from '../core/task-machine.ts';
import { checkInputRequest } from '../core/input-schema.ts';
import type { AssignmentRecord, ReplicaHealth, ReplicaRecord, TaskRecord, Transition } from '../core/types.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { announce, commit, type EngineContext } from './context.ts';
import type { LiveAttempt } from './live-attempts.ts';
import { DeferredStarts } from './deferred-starts.ts';
import type { Dispatcher, LeaseWaiter } from './dispatcher.ts';
import { loseReplicaAssignments, retryPolicyFor } from './lease-reaper.ts';
import { atDepthLimit, candidateAgents, depthLimit } from '../core/delegation.ts';
import { servesAgent, SYSTEM_PRINCIPAL, type Principal } from '../core/permissions.ts';
import type { IssuedToken, ScopedTokens } from './scoped-tokens.ts';
import type { ReplicaLiveness } from './replica-liveness.ts';
import type { RateLimits } from './rate-limits.ts';
import type { UsageService } from './usage-service.ts';
import type { UsageReport } from '../core/usage.ts';

export interface RegisterParams {
  agent: string;
  replicaId?: string;
  site?: string;
  maxConcurrency?: number;
}

export interface HeartbeatReply {
  leaseExpiresAt: number;
  cancelRequested: boolean;
}

export interface ReconcileReply {
  /** Listed by the worker and still its own: leases renewed, keep working. */
  kept: Array<{ assignmentId: string; leaseExpiresAt: number; cancelRequested: boolean }>;
  /** Listed by the worker but no longer its own (ended, superseded, unknown): drop them. */
  ended: Array<{ assignmentId: string; status: string }>;
  /** Live on the server but not listed: ended now (see decideNotHeld) so their tasks move on. */
  released: number;
}

/** What a heartbeat may carry about the replica itself. */
export interface HealthReport {
  health: ReplicaHealth;
  healthDetail?: Record<string, Json>;
}

/** A steady health is written again at most this often (its detail changes every beat). */
const HEALTH_REFRESH_MS = 30_000;
const MAX_HEALTH_DETAIL_BYTES = 4_096;

export class WorkerService {
  #ctx: EngineContext;
  #registry: AgentRegistry;
  #dispatcher: Dispatcher;
  #liveness: ReplicaLiveness;
  #tokens: ScopedTokens;
  /** Acknowledged starts not written yet (decision 35). */
  readonly #starts: DeferredStarts;
  /** Replica id → its agent. A replica id never changes agent (REPLICA_MISMATCH), so this never goes stale. */
  #agentOf = new Map<string, string>();
  /** Provider rate limits and usage (issue 16); absent in engines built without them. */
  #flow: { rateLimits: RateLimits; usage: UsageService } | null;

  constructor(params: { ctx: EngineContext; registry: AgentRegistry; dispatcher: Dispatcher; liveness: ReplicaLiveness; tokens: ScopedTokens; startWriteDelayMs?: number; flow?: { rateLimits: RateLimits; usage: UsageService } }) {
    this.#ctx = params.ctx;
    this.#flow = params.flow ?? null;
    this.#registry = params.registry;
    this.#dispatcher = params.dispatcher;
    this.#liveness = params.liveness;
    this.#tokens = params.tokens;
    this.#starts = new DeferredStarts({ log: params.ctx.log, ...(params.startWriteDelayMs === undefined ? {} : { delayMs: params.startWriteDelayMs }) });
  }

  /** An `agent` key acts only for the agents it lists (other principals are not limited here). */
  #requireServes(principal: Principal, agent: string): void {
    if (!servesAgent(principal, agent)) {
      throw new FlotillaError('FORBIDDEN', `this key serves ${principal.agents!.map((a) => `"${a}"`).join(', ') || 'no agent'}, not "${agent}"`);
    }
  }

  /** Checks, before anything is written, that an `agent` key may act for this replica. */
  async #requireReplicaServed(principal: Principal, replicaId: string): Promise<void> {
    if (principal.agents === null) return;
    let agent = this.#agentOf.get(replicaId);
    if (agent === undefined) {
      const replica = await this.#ctx.store.replicaGet({ id: replicaId });
      if (!replica) throw new FlotillaError('REPLICA_NOT_FOUND', `replica ${replicaId} is not registered`);
      agent = replica.agent;
      if (this.#agentOf.size > 100_000) this.#agentOf.clear();
      this.#agentOf.set(replicaId, agent);
    }
    this.#requireServes(principal, agent);
  }

  /**
   * Registers (or re-registers) a replica. `connectedSeq` is the seq of its replica.connected
   * event: a connection compares it with other registrations of the same replica to tell
   * which is newer, on any node.
   */
  async register(principal: Principal, params: RegisterParams): Promise<{ replica: ReplicaRecord; connectedSeq: number }> {
    this.#requireServes(principal, params.agent);
    const agent = await this.#registry.get(params.agent);
    if (!agent) throw new FlotillaError('UNKNOWN_AGENT', `no agent named "${params.agent}" is registered`);
    if (params.replicaId !== undefined) {
      const known = await this.#ctx.store.replicaGet({ id: params.replicaId });
      if (known && known.agent !== params.agent) {
        throw new FlotillaError('REPLICA_MISMATCH', `replica ${params.replicaId} belongs to agent "${known.agent}"`);
      }
    }
    const { store } = this.#ctx;
    const now = this.#ctx.now();
    const id = params.replicaId ?? this.#ctx.newId();
    // Names this registration's event, so it can be found in the log where writes return no seqs.
    const connection = this.#ctx.newId();
    const before = store.capabilities.eventSeqsOnWrite ? 0 : await store.eventLastSeq();
    const { replica, events } = await store.replicaRegister({
      replica: {
        id, agent: agent.name, site: params.site ?? null,
        maxConcurrency: params.maxConcurrency ?? agent.maxConcurrency, registeredAt: now, lastSeenAt: now,
      },
      event: {
        type: 'replica.connected', taskId: null, agent: agent.name, replicaId: id, assignmentId: null,
        data: { site: params.site ?? null, maxConcurrency: params.maxConcurrency ?? agent.maxConcurrency, connection },
      },
    });
    announce(this.#ctx, events);
    this.#dispatcher.wake();
    const connectedSeq = store.capabilities.eventSeqsOnWrite ? events[0]?.seq ?? 0 : await this.#loggedSeq(before, id, connection);
    return { replica, connectedSeq };
  }

  /**
   * The seq of a replica.connected event a write returned unnumbered (decision 47): it is in
   * the log after `before`, since eventList numbers everything committed before the call.
   * Registrations are rare; the pages read are the events of the register call's few milliseconds.
   */
  async #loggedSeq(before: number, replicaId: string, connection: string): Promise<number> {
    const PAGE = 1_000;
    for (let after = before; ;) {
      const page = await this.#ctx.store.eventList({ after, limit: PAGE });
      const mine = page.find((e) => e.type === 'replica.connected' && e.replicaId === replicaId && e.data.connection === connection);
      if (mine) return mine.seq;
      if (page.length < PAGE) throw new FlotillaError('INTERNAL', `the replica.connected event of replica ${replicaId} is not in the log`);
      after = page.at(-1)!.seq;
    }
  }

  /** A replica that may heartbeat and hold a lease request: live, or draining (it is offered nothing, but it is there). */
  async #liveReplica(replicaId: string): Promise<ReplicaRecord> {
    const replica = await this.#ctx.store.replicaGet({ id: replicaId });
    if (!replica) throw new FlotillaError('REPLICA_NOT_FOUND', `replica ${replicaId} is not registered`);
    if (replica.status !== 'live' && replica.status !== 'draining') {
      throw new FlotillaError('REPLICA_NOT_LIVE', `replica ${replicaId} is ${replica.status}; register again to take work`);
    }
    this.#liveness.seen(replicaId);
    return replica;
  }

  /**
   * A replica's liveness, and what it says of its health. A health report is written when the
   * health differs from the stored one (with `replica.health_changed`), and otherwise at most
   * every HEALTH_REFRESH_MS (its detail: cpu, memory), so steady heartbeats cost no write.
   */
  async heartbeatReplica(principal: Principal, replicaId: string, report: HealthReport | null = null): Promise<ReplicaRecord> {
    await this.#requireReplicaServed(principal, replicaId);
    const replica = await this.#liveReplica(replicaId);
    if (report === null) return replica;
    if (report.healthDetail !== undefined && JSON.stringify(report.healthDetail).length > MAX_HEALTH_DETAIL_BYTES) {
      throw new FlotillaError('VALIDATION_FAILED', `"healthDetail" is larger than ${MAX_HEALTH_DETAIL_BYTES} bytes as JSON`);
    }
    const now = this.#ctx.now();
    if (report.health === replica.health && replica.healthAt !== null && now - replica.healthAt < HEALTH_REFRESH_MS) return replica;
    const detail = report.healthDetail ?? null;
    const { events } = await this.#ctx.store.replicaSetHealth({
      id: replicaId, health: report.health, detail, at: now,
      event: { type: 'replica.health_changed', taskId: null, agent: replica.agent, replicaId, assignmentId: null, data: { from: replica.health, to: report.health, detail } },
    });
    announce(this.#ctx, events);
    // Healthy again: it may take work. (Unhealthy: the next pass leaves it out.)
    if (events.length > 0) this.#ctx.wakeDispatcher('view');
    return { ...replica, health: report.health, healthDetail: detail, healthAt: now };
  }

  /**
   * Long-poll for up to `max` tasks. Resolves as soon as at least one is dispatched to this
   * replica, or with none after `waitMs`, or early when `signal` aborts (client went away).
   * `deliver` is how the HTTP layer hands the tasks over and reports whether it could.
   */
  async lease(principal: Principal, params: { replicaId: string; max: number; waitMs: number; signal: AbortSignal; isConnected: () => boolean }): Promise<LeasedTask[]> {
    await this.#requireReplicaServed(principal, params.replicaId);
    const replica = await this.#liveReplica(params.replicaId);
    // Its agent was deleted: answering an empty lease at once would make the worker spin.
    if (!(await this.#registry.get(replica.agent))) {
      throw new FlotillaError('UNKNOWN_AGENT', `agent "${replica.agent}" of replica ${replica.id} no longer exists`);
    }
    return new Promise<LeasedTask[]>((resolve) => {
      let done = false;
      const finish = (tasks: LeasedTask[]) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        params.signal.removeEventListener('abort', onAbort);
        this.#dispatcher.removeWaiter(waiter);
        resolve(tasks);
      };
      const waiter: LeaseWaiter = {
        replicaId: params.replicaId,
        want: params.max,
        deliver: (tasks) => {
          if (done) return tasks.length === 0;
          if (tasks.length > 0 && !params.isConnected()) {
            finish([]);
            return false;
          }
          finish(tasks);
          return true;
        },
      };
      const onAbort = () => finish([]);
      let timer: NodeJS.Timeout | undefined;
      if (params.signal.aborted) return finish([]);
      params.signal.addEventListener('abort', onAbort, { once: true });
      this.#dispatcher.addWaiter(waiter);
      if (params.waitMs > 0) {
        timer = setTimeout(() => finish([]), params.waitMs);
      } else {
        // `waitMs: 0` means "whatever can be dispatched right now": answer after the pass
        // that sees this request, never in a race with it.
        void this.#dispatcher.passed().then(() => finish([]));
      }
    });
  }

  /** Marks a replica seen (a WebSocket pong). Batched; costs no write of its own. */
  seen(replicaId: string): void {
    this.#liveness.seen(replicaId);
  }

  /**
   * Renews the leases of the listed assignments that are still this replica's; reports the
   * others as ended (with what became of them) so the worker drops them.
   */
  async renew(principal: Principal, p: { replicaId: string; assignmentIds: string[] }): Promise<Pick<ReconcileReply, 'kept' | 'ended'>> {
    const reply: Pick<ReconcileReply, 'kept' | 'ended'> = { kept: [], ended: [] };
    await Promise.all([...new Set(p.assignmentIds)].map(async (assignmentId) => {
      try {
        const beat = await this.heartbeat(principal, { assignmentId, replicaId: p.replicaId });
        reply.kept.push({ assignmentId, ...beat });
      } catch (err) {
        if (!(err instanceof FlotillaError)) throw err;
        const a = await this.#ctx.store.assignmentGet({ id: assignmentId });
        reply.ended.push({ assignmentId, status: a === null ? 'unknown' : a.replicaId !== p.replicaId ? 'not_yours' : a.status });
      }
    }));
    return reply;
  }

  /**
   * A replica (re)connected and says which assignments it still holds. The server renews
   * those that are still its own and ends the live ones it did not list, so a task pushed
   * into a broken connection, or held by a worker that restarted, is retried at once
   * instead of when its lease lapses.
   */
  async reconcile(principal: Principal, p: { replicaId: string; held: string[] }): Promise<ReconcileReply> {
    const held = new Set(p.held);
    // An attempt the worker started counts as started, even if its start is not written yet.
    await this.#starts.flush(p.replicaId);
    const { kept, ended } = await this.renew(principal, { replicaId: p.replicaId, assignmentIds: p.held });
    const reply: ReconcileReply = { kept, ended, released: 0 };
    const live = await this.#ctx.store.assignmentListByReplica({ replicaId: p.replicaId });
    const now = this.#ctx.now();
    const transitions: Transition[] = [];
    for (const { task, assignment } of live) {
      if (held.has(assignment.id)) continue;
      const policy = retryPolicyFor(this.#ctx, (await this.#registry.get(assignment.agent)) ?? null);
      const t = decideNotHeld({ task, assignment, now, policy, random: this.#ctx.random() });
      if (t) transitions.push(t);
    }
    const results = await commit(this.#ctx, transitions);
    reply.released = results.filter((r) => r.ok).length;
    return reply;
  }

  /**
   * A standing lease (the WebSocket protocol): tasks are handed to `deliver` whenever the
   * replica has free slots, until the returned function is called. `ended` is called when
   * the replica stops being live or another request for it replaced this one.
   */
  standingLease(_principal: Principal, p: { replicaId: string; deliver: (tasks: LeasedTask[]) => boolean; ended: () => void }): () => void {
    const waiter: LeaseWaiter = {
      replicaId: p.replicaId,
      want: Number.MAX_SAFE_INTEGER,
      persistent: true,
      deliver: (tasks) => {
        if (tasks.length > 0) return p.deliver(tasks);
        this.#dispatcher.removeWaiter(waiter);
        p.ended();
        return true;
      },
    };
    this.#dispatcher.addWaiter(waiter);
    return () => this.#dispatcher.removeWaiter(waiter);
  }

  async deregister(principal: Principal, replicaId: string): Promise<void> {
    await this.#requireReplicaServed(principal, replicaId);
    const replica = await this.#ctx.store.replicaGet({ id: replicaId });
    if (!replica) throw new FlotillaError('REPLICA_NOT_FOUND', `replica ${replicaId} is not registered`);
    const { events } = await this.#ctx.store.replicaSetStatus({
      id: replicaId, from: ['live', 'draining', 'lost'], to: 'gone',
      event: { type: 'replica.disconnected', taskId: null, agent: replica.agent, replicaId, assignmentId: null, data: {} },
    });
    announce(this.#ctx, events);
    await this.#starts.flush(replicaId);
    await loseReplicaAssignments(this.#ctx, this.#registry, replicaId, 'deregistered');
  }

  async #held(assignmentId: string, replicaId: string): Promise<{ assignment: AssignmentRecord; task: TaskRecord }> {
    const assignment = await this.#ctx.store.assignmentGet({ id: assignmentId });
    if (!assignment) throw new FlotillaError('ASSIGNMENT_NOT_FOUND', `assignment ${assignmentId} does not exist`);
    if (assignment.replicaId !== replicaId) {
      throw new FlotillaError('REPLICA_MISMATCH', `assignment ${assignmentId} is held by another replica`);
    }
    this.#liveness.seen(replicaId);
    const task = await this.#ctx.store.taskGet({ id: assignment.taskId });
    if (!task) throw new FlotillaError('TASK_NOT_FOUND', `task ${assignment.taskId} of assignment ${assignmentId} no longer exists`);
    return { assignment, task };
  }

  /**
   * Decides a report from what this node knows of the attempt (LiveAttempts), with no read,
   * and writes it. Returns false when that is not possible or not safe to rely on: nothing
   * known, the memo says the attempt is over, or the guarded write conflicted (the memo was
   * stale); the caller then reads the records and decides again. A memo entry that failed
   * is dropped.
   */
  async #applyKnown(p: { assignmentId: string; replicaId: string }, decide: (known: LiveAttempt) => Transition | null): Promise<boolean> {
    const known = this.#ctx.attempts.get(p.assignmentId);
    if (!known || known.assignment.replicaId !== p.replicaId) return false;
    let transition: Transition | null;
    try {
      transition = decide(known);
    } catch {
      this.#ctx.attempts.forget(p.assignmentId);
      return false;
    }
    this.#liveness.seen(p.replicaId);
    if (transition === null) return true;
    const [result] = await commit(this.#ctx, [transition]);
    if (result!.ok) return true;
    this.#ctx.attempts.forget(p.assignmentId);
    return false;
  }

  /** Applies one decided transition; a guard conflict means another report or the reaper got there first. */
  async #apply(assignmentId: string, transition: Transition | null): Promise<void> {
    if (transition === null) return;
    const [result] = await commit(this.#ctx, [transition]);
    if (!result!.ok) {
      const now = await this.#ctx.store.assignmentGet({ id: assignmentId });
      throw new FlotillaError(
        'ASSIGNMENT_SUPERSEDED',
        `assignment ${assignmentId} changed concurrently (it is now ${now?.status ?? 'gone'}); this report was not applied`,
        { assignmentStatus: now?.status ?? null, conflict: result!.conflict },
      );
    }
  }

  /**
   * The worker's handler started. Checked now (the replica is the principal's, the attempt is
   * this replica's and still live) and written a few milliseconds later, or not at all when
   * the attempt's final report comes first (deferred-starts.ts): the same on both transports.
   */
  async start(principal: Principal, p: { assignmentId: string; replicaId: string }): Promise<void> {
    await this.#requireReplicaServed(principal, p.replicaId);
    await this.#checkStart(p);
    this.#starts.defer(p.assignmentId, p.replicaId, () => this.#writeStart(p));
  }

  async #checkStart(p: { assignmentId: string; replicaId: string }): Promise<void> {
    const known = this.#ctx.attempts.get(p.assignmentId);
    if (known && known.assignment.replicaId === p.replicaId && known.task.assignmentId === p.assignmentId) {
      // Live as far as this node knows; the write, later, is guarded and reads on a conflict.
      this.#liveness.seen(p.replicaId);
      return;
    }
    const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
    // Decided only to be checked (it throws for an attempt that is over); written later.
    decideStart({ task, assignment, now: this.#ctx.now(), leaseMs: this.#ctx.config.leaseMs });
  }

  async #writeStart(p: { assignmentId: string; replicaId: string }): Promise<void> {
    const now = this.#ctx.now();
    if (await this.#applyKnown(p, ({ task, assignment }) => decideStart({ task, assignment, now, leaseMs: this.#ctx.config.leaseMs }))) return;
    const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
    try {
      await this.#apply(p.assignmentId, decideStart({ task, assignment, now, leaseMs: this.#ctx.config.leaseMs }));
    } catch (err) {
      // Two starts raced (a start re-sent after a reconnect): the other one did it; fine.
      const current = await this.#ctx.store.assignmentGet({ id: p.assignmentId });
      if (err instanceof FlotillaError && err.code === 'ASSIGNMENT_SUPERSEDED' && current?.status === 'running' && current.replicaId === p.replicaId) return;
      throw err;
    }
  }

  /**
   * Writes the replica's starts not written yet (its connection closed, or it is about to be
   * judged), and waits for those being written.
   */
  flushStarts(replicaId?: string): Promise<void> {
    return this.#starts.flush(replicaId);
  }

  /**
   * A final report (complete, fail, cancelled) stands for the attempt's start when the start
   * is not written yet; one already being written is waited for, so the report is decided
   * after it. A refused report leaves the start to be written.
   */
  async #final(assignmentId: string, apply: () => Promise<void>): Promise<void> {
    const start = await this.#starts.settle(assignmentId);
    try {
      await apply();
    } catch (err) {
      if (start) this.#starts.restore(assignmentId, start);
      throw err;
    }
  }

  async heartbeat(principal: Principal, p: { assignmentId: string; replicaId: string; percent?: number; message?: string }): Promise<HeartbeatReply> {
    await this.#requireReplicaServed(principal, p.replicaId);
    const now = this.#ctx.now();
    const progress = p.percent === undefined ? null : { percent: p.percent, message: p.message ?? null, at: now };
    // Progress says the handler runs: its start goes first, in the store and in the events.
    if (progress) await this.#starts.writeNow(p.assignmentId);
    const result = await this.#ctx.store.assignmentHeartbeat({
      assignmentId: p.assignmentId, replicaId: p.replicaId, leaseExpiresAt: now + this.#ctx.config.leaseMs, progress,
    });
    if (!result.ok) {
      if (!result.assignment) throw new FlotillaError('ASSIGNMENT_NOT_FOUND', `assignment ${p.assignmentId} does not exist`);
      if (result.assignment.replicaId !== p.replicaId) throw new FlotillaError('REPLICA_MISMATCH', `assignment ${p.assignmentId} is held by another replica`);
      throw new FlotillaError('ASSIGNMENT_SUPERSEDED', `assignment ${p.assignmentId} is ${result.assignment.status}; stop working on it`, { assignmentStatus: result.assignment.status });
    }
    this.#liveness.seen(p.replicaId);
    if (progress) {
      const a = result.assignment;
      const events = await this.#ctx.store.eventAppend({
        durable: false,
        events: [{ type: 'task.progress', taskId: a.taskId, agent: a.agent, replicaId: a.replicaId, assignmentId: a.id, data: { percent: progress.percent, message: progress.message } }],
      });
      announce(this.#ctx, events);
    }
    return { leaseExpiresAt: result.assignment.leaseExpiresAt, cancelRequested: result.cancelRequested };
  }

  async complete(principal: Principal, p: { assignmentId: string; replicaId: string; result: Json; usage?: UsageReport }): Promise<void> {
    await this.#requireReplicaServed(principal, p.replicaId);
    if (jsonTooDeep(p.result)) throw new FlotillaError('VALIDATION_FAILED', `"result" nests deeper than ${MAX_JSON_DEPTH} levels`);
    this.#flow?.usage.check(p.usage);
    await this.#final(p.assignmentId, async () => {
      const now = this.#ctx.now();
      // With usage the records are read (the task's root): not the hot path's memo.
      if (p.usage === undefined && await this.#applyKnown(p, ({ task, assignment }) => decideComplete({ task, assignment, result: p.result, now }))) return;
      const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
      await this.#recordUsage(assignment, task, p.usage);
      await this.#apply(p.assignmentId, decideComplete({ task, assignment, result: p.result, now }));
    });
  }

  /** An attempt's reported usage, written (relaxed) before its outcome's durable commit. */
  async #recordUsage(assignment: AssignmentRecord, task: TaskRecord, usage: UsageReport | undefined): Promise<void> {
    if (usage === undefined || this.#flow === null) return;
    // Only the live attempt's report counts (a late or repeated one is refused by the outcome's guard).
    if (task.assignmentId !== assignment.id) return;
    await this.#flow.usage.record(assignment, task, usage);
  }

  async fail(principal: Principal, p: { assignmentId: string; replicaId: string; error: TaskErrorInfo; retryable: boolean; rateLimited?: boolean; retryAfterMs?: number; usage?: UsageReport }): Promise<void> {
    await this.#requireReplicaServed(principal, p.replicaId);
    if (jsonTooDeep(p.error)) throw new FlotillaError('VALIDATION_FAILED', `"error.details" nests deeper than ${MAX_JSON_DEPTH} levels`);
    this.#flow?.usage.check(p.usage);
    if (p.retryAfterMs !== undefined && p.rateLimited !== true) throw new FlotillaError('VALIDATION_FAILED', 'retryAfterMs goes with rateLimited: true');
    await this.#final(p.assignmentId, async () => {
      const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
      await this.#recordUsage(assignment, task, p.usage);
      if (p.rateLimited === true && this.#flow !== null) {
        // The key pauses fleet-wide first, so that no node hands out its other tasks meanwhile.
        const now = this.#ctx.now();
        // Decided (and its errors thrown) before the pause is written: a stale report pauses nothing.
        decideRateLimited({ task, assignment, until: now, message: p.error.message, now });
        const until = await this.#flow.rateLimits.pause(task.rateKey ?? null, p.retryAfterMs);
        await this.#apply(p.assignmentId, decideRateLimited({ task, assignment, until, message: p.error.message, now: this.#ctx.now() }));
        return;
      }
      const policy = retryPolicyFor(this.#ctx, await this.#registry.get(assignment.agent) ?? null);
      await this.#apply(p.assignmentId, decideFail({
        task, assignment, error: p.error, retryable: p.retryable, outcome: 'failed', now: this.#ctx.now(), policy, random: this.#ctx.random(),
      }));
    });
  }

  /**
   * The handler ends its attempt by waiting for children (`ctx.waitForChildren`): the task is
   * `waiting` without a slot, and resumed when they have all ended (resumer.ts). Looked at
   * right after the commit, since every child may have ended already.
   */
  async wait(principal: Principal, p: { assignmentId: string; replicaId: string; children: string[] }): Promise<void> {
    await this.#requireReplicaServed(principal, p.replicaId);
    const childIds = [...new Set(p.children)];
    let taskId: string | null = null;
    await this.#final(p.assignmentId, async () => {
      const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
      const children = childIds.length > MAX_AWAITED_CHILDREN ? [] : await this.#ctx.store.taskGetMany({ ids: childIds });
      await this.#apply(p.assignmentId, decideWait({ task, assignment, children, childIds, now: this.#ctx.now() }));
      taskId = task.id;
    });
    if (taskId !== null) {
      await this.#cancelIfRequestedMeanwhile(taskId);
      this.#ctx.resumeWaiting([taskId]);
    }
  }

  /**
   * A cancellation requested between the suspension's read and its commit was not seen by the
   * decision (the store guards status and assignment, not the request): the task is suspended
   * with the request on it. It holds no attempt now, so the cancellation ends it at once.
   */
  async #cancelIfRequestedMeanwhile(taskId: string): Promise<void> {
    const task = await this.#ctx.store.taskGet({ id: taskId });
    if (task === null || task.cancelRequestedAt === null || (task.status !== 'waiting' && task.status !== 'input_required')) return;
    const t = decideCancel({ task, assignment: null, now: this.#ctx.now(), reason: 'cancel_requested_while_suspending' });
    if (t !== null) await commit(this.#ctx, [t]);
  }

  /** The handler ends its attempt by asking for input (`ctx.requestInput`): `input_required`, no slot. */
  async askInput(principal: Principal, p: { assignmentId: string; replicaId: string; prompt: string; schema: Json | null; timeoutMs: number | null }): Promise<void> {
    await this.#requireReplicaServed(principal, p.replicaId);
    if (p.schema !== null && jsonTooDeep(p.schema)) throw new FlotillaError('VALIDATION_FAILED', `"schema" nests deeper than ${MAX_JSON_DEPTH} levels`);
    checkInputRequest(p);
    let taskId: string | null = null;
    await this.#final(p.assignmentId, async () => {
      const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
      await this.#apply(p.assignmentId, decideAskInput({ task, assignment, prompt: p.prompt, schema: p.schema, timeoutMs: p.timeoutMs, now: this.#ctx.now() }));
      taskId = task.id;
    });
    if (taskId !== null) await this.#cancelIfRequestedMeanwhile(taskId);
  }

  /**
   * A token for the attempt's own task tree: the worker submits child tasks with it (as the
   * tree's owner, never as itself), and it stops working when the attempt ends.
   */
  async assignmentToken(principal: Principal, p: { assignmentId: string; replicaId: string }): Promise<IssuedToken> {
    await this.#requireReplicaServed(principal, p.replicaId);
    const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
    if (assignment.status !== 'dispatched' && assignment.status !== 'running') {
      throw new FlotillaError('ASSIGNMENT_SUPERSEDED', `assignment ${p.assignmentId} is ${assignment.status}; stop working on it`, { assignmentStatus: assignment.status });
    }
    const now = this.#ctx.now();
    // It cannot outlive the attempt's deadline by much; the attempt check bounds it anyway.
    const ttlMs = Math.max(60_000, Math.min(assignment.deadlineAt - now + 60_000, this.#tokens.limits.maxLifetimeMs));
    const issuer: Principal = { ...SYSTEM_PRINCIPAL, role: 'operator', name: `task ${task.id} attempt ${assignment.attempt}` };
    // At its depth limit the task may not spawn: the token does not carry the right at all
    // (TaskService refuses such a spawn too, whoever submits it). The same rule and candidates.
    const maxDepth = depthLimit(this.#ctx.config.maxDepth, candidateAgents(task, (await this.#registry.map()).values()));
    const atLimit = atDepthLimit(task, maxDepth);
    return this.#tokens.issue(issuer, {
      // task.answer: a parent answers the input requests of the children it spawned (none at the limit).
      actions: atLimit ? ['task.read'] : ['task.submit', 'task.read', 'task.answer'], rootTaskId: task.rootId, ttlMs, maxLifetimeMs: ttlMs,
      name: `task ${task.id} attempt ${assignment.attempt}`, assignmentId: assignment.id,
      tools: task.tools, ...(atLimit ? { spawnWithheld: { depth: task.depth, maxDepth } } : {}),
    });
  }

  async acknowledgeCancel(principal: Principal, p: { assignmentId: string; replicaId: string }): Promise<void> {
    await this.#requireReplicaServed(principal, p.replicaId);
    await this.#final(p.assignmentId, async () => {
      const { assignment, task } = await this.#held(p.assignmentId, p.replicaId);
      await this.#apply(p.assignmentId, decideCancelAck({ task, assignment, now: this.#ctx.now(), reason: 'acknowledged' }));
    });
  }
}
