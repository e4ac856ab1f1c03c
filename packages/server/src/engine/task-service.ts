// Submitting, reading, cancelling and requeueing tasks; a task's tree; an operator's assign and fail.

import { TASK_STATUSES, type TaskSpec, type TaskStatus, TERMINAL_TASK_STATUSES } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../core/json-limits.ts';
import { agentServes } from '../core/routing.ts';
import { waitingReason, type WaitingReason } from '../core/agent-state.ts';
import { answerProblems } from '../core/input-schema.ts';
import { decideAnswer, decideCancel, decideOperatorFail, decideRequeue, isTerminal } from '../core/task-machine.ts';
import { resolvePriority, slaTerms } from '../core/sla.ts';
import { randomBytes } from 'node:crypto';
import { atDepthLimit, candidateAgents, childCorrelation, childTraceparent, depthLimit, levelRefusal } from '../core/delegation.ts';
import { gatedAgents } from '../core/tool-domains.ts';
import { ALL_TOOLS, ceilingOf, effectiveTools, intersect, toolList, toolListProblems, toolSetOf } from '../core/tools.ts';
import { cancelledParent, childDepth, spawnRefusal } from '../core/trees.ts';
import type { AgentRecord, AssignmentRecord, EventRecord, Json, NewEvent, NewTask, TaskRecord, Transition } from '../core/types.ts';
import { cachedCopyEvents, sharesRun } from '../core/result-cache.ts';
import { reservedKeyProblem } from '../core/schedules.ts';
import { namingOpenRun, refuseSecondOpenRun, withCachedResult } from './result-cache.ts';
import { encodeCursor } from '../store/list-cursor.ts';
import type { TaskListParams } from '../store/store.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { announce, commit, type EngineContext } from './context.ts';
import type { Dispatcher } from './dispatcher.ts';
import { notifyData, requireWebhookUrl } from './webhook-rules.ts';
import { canSeeTask, ownerIdOf, submitWithinScope, taskVisibility, type Principal } from '../core/permissions.ts';
import type { TokenPrincipal } from './scoped-tokens.ts';
import { toIso } from './time.ts';
import { planDependencies, type DependencyFields } from './dependency-plan.ts';
import { stillAwaited } from './blocked-view.ts';
import { rateFields, type FlowDetail, type FlowDetails } from './flow-detail.ts';

export interface SubmitResult {
  task: TaskRecord;
  /** False when an idempotency key matched an existing task. */
  created: boolean;
  /** The task its `then` created (TaskSpec.then), if it had one. */
  thenTaskId?: string;
  /** The answer is another submit's open run of the same cacheKey, shared (core/result-cache.ts); `created` is false. */
  shared?: boolean;
}

export interface SubmitOptions {
  /** A schedule's firing (engine/schedule-service.ts): the only submit that may use a reserved `schedule:` idempotency key. */
  scheduleFiring?: boolean;
}

/** How often a guarded write is retried after the task changed under it (e.g. dispatched meanwhile). */
const CONFLICT_RETRIES = 5;
/** Tasks read per page when a cancellation walks a tree. */
const CASCADE_PAGE = 1_000;
/**
 * A cascade repeats its walk until one changes nothing (see #cancelDescendants); more walks
 * than this mean the tree keeps changing faster than it is cancelled, which is logged.
 */
const CASCADE_MAX_WALKS = 10;
/** Statuses a cancellation still applies to (whatever statuses the machine has). */
const OPEN_STATUSES: TaskStatus[] = TASK_STATUSES.filter((s) => !TERMINAL_TASK_STATUSES.includes(s));

/** One node of a task tree: the task and its latest attempt (live, or the last it had). */
export interface TreeNode {
  task: TaskRecord;
  assignment: AssignmentRecord | null;
}

export interface TreePage {
  /** The task asked for (any task of the tree). */
  task: TaskRecord;
  /** The tree's tasks in submission order: a parent always before its children. */
  items: TreeNode[];
  nextCursor: string | null;
}

export interface CancelOptions {
  reason?: string;
  /** Cancel the task's descendants too (default true). */
  cascade?: boolean;
}

/** The most correlation keys a task carries (the schema's bound, also for a child's merged with its parent's). */
const MAX_CORRELATION_KEYS = 32;

/** A W3C span id for a child task: 8 random bytes, never all zero (an invalid span id). */
function newSpanId(): string {
  for (;;) {
    const id = randomBytes(8).toString('hex');
    if (id !== '0000000000000000') return id;
  }
}

export class TaskService {
  #ctx: EngineContext;
  #registry: AgentRegistry;
  #dispatcher: Dispatcher;

  #toolDomains: { down(): ReadonlySet<string> } | null;
  #unblocker: { look(taskIds: Iterable<string>): void } | null;

  /** Flow control and usage for GET /tasks/:id (engine/flow-detail.ts); null: none shown. */
  #flow: FlowDetails | null;

  constructor(params: { ctx: EngineContext; registry: AgentRegistry; dispatcher: Dispatcher; toolDomains?: { down(): ReadonlySet<string> }; unblocker?: { look(taskIds: Iterable<string>): void } ; flow?: FlowDetails }) {
    this.#unblocker = params.unblocker ?? null;
    this.#flow = params.flow ?? null;
    this.#ctx = params.ctx;
    this.#registry = params.registry;
    this.#dispatcher = params.dispatcher;
    this.#toolDomains = params.toolDomains ?? null;
  }

  /**
   * Checks a spec as a submit would (every rule, with the principal's rights), writing
   * nothing: a schedule's task template is refused at create, not at its first firing.
   */
  async validate(principal: Principal, spec: TaskSpec): Promise<void> {
    await this.#requireLiveAttempt(principal);
    const now = this.#ctx.now();
    // The submit's other rules too: its notify URL, and its dependencies (refs, ids it may see, then).
    requireWebhookUrl(spec.notify?.url);
    const plan = await planDependencies(this.#ctx, principal, [spec]);
    const task = await this.#prepare(principal, plan?.specs[0] ?? spec, now, plan?.fields[0]);
    // The cache rules (a cacheKey needs an agent, cacheTtlMs a cacheKey) are the submit's too; the lookup reads only.
    if (spec.cacheKey !== undefined || spec.cacheTtlMs !== undefined) await withCachedResult(this.#ctx, principal, spec, task, now);
  }

  async submit(principal: Principal, spec: TaskSpec, options: SubmitOptions = {}): Promise<SubmitResult> {
    const [result] = await this.submitMany(principal, [spec], options);
    return result!;
  }

  /**
   * All specs are validated before anything is written; then they commit together. A task
   * that can go straight to a waiting replica is dispatched in the same commit (Dispatcher,
   * "Direct hand-off") and pushed right after it.
   */
  async submitMany(principal: Principal, specs: TaskSpec[], options: SubmitOptions = {}): Promise<SubmitResult[]> {
    const now = this.#ctx.now();
    const tasks: NewTask[] = [];
    if (options.scheduleFiring !== true) {
      for (const spec of specs) {
        const reserved = reservedKeyProblem(spec.idempotencyKey);
        if (reserved !== null) throw new FlotillaError('VALIDATION_FAILED', reserved);
      }
    }
    await this.#requireLiveAttempt(principal);
    for (const spec of specs) requireWebhookUrl(spec.notify?.url);
    // Dependencies, refs and `then` (engine/dependency-plan.ts); null for a submit without any.
    const plan = await planDependencies(this.#ctx, principal, specs);
    const planned = plan?.specs ?? specs;
    for (const [i, spec] of planned.entries()) {
      const task = await this.#prepare(principal, spec, now, plan?.fields[i]);
      // A blocked task runs later, on its dependencies' outcomes: the cache is asked at submit only by one that can run now.
      const cacheable = task.status !== 'blocked' && (spec.cacheKey !== undefined || spec.cacheTtlMs !== undefined);
      tasks.push(cacheable ? await withCachedResult(this.#ctx, principal, spec, task, now) : task);
    }
    await this.#dispatcher.handOffReady();
    // Planned after every await of the preparation: the dispatcher's view is as fresh as it gets.
    // In submission order, and none after the first that is not handed off: a later task of
    // the same call must not overtake an earlier one that waits (delayed, keyed, no slot).
    let blocked = false;
    const handOffs = tasks.map((task) => {
      // A cache hit is created completed: it never runs, and holds no later task back.
      if (task.cachedFrom != null) return null;
      const handOff = blocked || task.status === 'blocked' ? null : this.#dispatcher.planHandOff(task, now);
      if (handOff === null) blocked = true;
      return handOff;
    });
    // A task left pending must be seen by a pass before any hand-off (Dispatcher.pendingCreate).
    const createdPending = handOffs.some((h) => h === null) ? this.#dispatcher.pendingCreate() : () => {};
    let results;
    try {
      results = await this.#ctx.store.taskCreate({
        tasks: tasks.map((task, i) => ({
          task,
          events: ((created: NewEvent) => (task.cachedFrom != null ? cachedCopyEvents(task, created) : [created]))({
            type: 'task.created', taskId: task.id, agent: task.agent, replicaId: null, assignmentId: null,
            data: { type: task.type, priority: task.priority, runAt: toIso(task.runAt), ...(task.parentId ? { parentId: task.parentId } : {}), rootId: task.rootId, depth: task.depth, ...(task.slaDeadline === null ? {} : { slaDeadline: toIso(task.slaDeadline) }), ...notifyData(planned[i]!) },
          }),
          ...(handOffs[i] ? { dispatch: handOffs[i].transition } : {}),
        })),
      });
    } catch (err) {
      // Nothing was written, or (a commit whose answer was lost) the tasks exist, pending or
      // dispatched but never pushed (the lease reaper ends such an attempt): a pass looks
      // again, and the slots the hand-offs held are its to give.
      createdPending();
      this.#ctx.wakeDispatcher();
      throw err;
    }
    const events: EventRecord[] = [];
    let pending = false;
    results.forEach((r) => {
      if (!r.created) return;
      events.push(...r.events);
      if (r.handOff?.ok) events.push(...r.handOff.events);
      else if (r.task.status === 'pending') pending = true;
    });
    announce(this.#ctx, events);
    // The pushes leave right after the commit, before the answer to the submitter.
    results.forEach((r, i) => {
      const handOff = handOffs[i];
      if (handOff) {
        void this.#dispatcher.handOffSettled(handOff, r.created ? r.handOff : null, r.task).catch((err: unknown) => {
          // Only the undo of an undelivered hand-off can fail (the store): the lease reaper ends it later.
          this.#ctx.log.error({ err, taskId: r.task.id }, 'settling a hand-off failed');
        });
      }
    });
    createdPending();
    if (pending) this.#ctx.wakeDispatcher();
    // Idempotency keys are global; a key that matched someone else's task must not hand it over.
    const foreign = results.find((r) => !r.created && !canSeeTask(principal, r.task));
    if (foreign) throw new FlotillaError('IDEMPOTENCY_CONFLICT', `idempotency key "${foreign.task.idempotencyKey}" is already used by a task you cannot see; choose another key`);
    // A handed-off task is answered as it is now: dispatched.
    const answered = results.map((r, i): SubmitResult => ({
      task: r.created && r.handOff?.ok ? { ...r.task, ...handOffs[i]!.transition.set } : r.task, created: r.created,
      ...(!r.created && sharesRun(tasks[i]!, r.task) ? { shared: true } : {}),
    }));
    if (plan === null) return this.#orphansCancelled(answered);
    // Dependencies may have ended before these tasks were committed: each looks once itself.
    // A cache hit of this submit ended at its creation, with no transition to tell its
    // dependents here (a workflow's later task, its `then`): they look too, not at the sweep.
    // So do the dependents of an item answered with another submit's open run (not created):
    // the id they were given names no task, so they fail at once with DEPENDENCY_GONE rather
    // than wait (a known limit: docs/workflows.md, "Limits").
    if (plan.external || results.some((r) => (r.created && r.task.cachedFrom != null) || !r.created)) this.#unblocker?.look(results.filter((r) => r.created && r.task.status === 'blocked').map((r) => r.task.id));
    const given = await this.#orphansCancelled(answered.slice(0, specs.length));
    return given.map((r, i) => {
      const then = plan.thenOf[i];
      return then === null || then === undefined ? r : { ...r, thenTaskId: answered[then]!.task.id };
    });
  }

  /**
   * A workflow (POST /workflows): the specs name each other by `ref`; all are validated, then
   * created in one commit, or none is. Answers every created task and their ids by ref.
   */
  async submitWorkflow(principal: Principal, specs: TaskSpec[]): Promise<{ results: SubmitResult[]; ids: Record<string, string> }> {
    const results = await this.submitMany(principal, specs);
    const ids: Record<string, string> = {};
    specs.forEach((spec, i) => {
      if (spec.ref !== undefined) ids[spec.ref] = results[i]!.task.id;
    });
    return { results, ids };
  }

  /**
   * A child created while its parent was being cancelled: the parent was not cancelled when
   * #prepare read it, but may be now, and the cascade may have walked the tree before the
   * child was committed. So after the commit the parents are read again, and a child whose
   * parent is now cancelled (or being cancelled) is cancelled here, with its own cascade. With
   * the cascade's repeated walks (#cancelDescendants) no child survives a cancelled parent:
   * either its parent was marked before this read (it is cancelled here), or after it, and
   * then after the child's commit, so the cascade's next walk finds it. Such a child is
   * answered as it is then: cancelled, or cancel-requested when it was handed off already.
   */
  async #orphansCancelled(results: SubmitResult[]): Promise<SubmitResult[]> {
    const children = results.filter((r) => r.created && r.task.parentId !== null);
    if (children.length === 0) return results;
    const parents = new Map((await this.#ctx.store.taskGetMany({ ids: [...new Set(children.map((r) => r.task.parentId!))] })).map((t) => [t.id, t]));
    return Promise.all(results.map(async (r) => {
      const parent = r.created && r.task.parentId !== null ? parents.get(r.task.parentId) : undefined;
      if (parent === undefined || !cancelledParent(parent)) return r;
      const task = await this.#cancelOne(r.task.id, (t) => this.#decideCancel(t, { cancelledBy: parent.id }));
      await this.#cancelDescendants(task, {});
      return { task, created: true };
    }));
  }

  /** An assignment's token acts only while its attempt is live: spawned work dies with the attempt. */
  async #requireLiveAttempt(principal: Principal): Promise<void> {
    const assignmentId = principal.kind === 'token' ? (principal as TokenPrincipal).assignmentId : null;
    if (assignmentId === null) return;
    const assignment = await this.#ctx.store.assignmentGet({ id: assignmentId });
    if (!assignment || (assignment.status !== 'dispatched' && assignment.status !== 'running')) {
      throw new FlotillaError('FORBIDDEN', `the attempt this token was issued to (${assignmentId}) has ended`);
    }
  }

  /** The task of the attempt a token was issued to, or null for any other principal. */
  async #attemptTaskOf(principal: Principal): Promise<string | null> {
    const assignmentId = principal.kind === 'token' ? (principal as TokenPrincipal).assignmentId : null;
    if (assignmentId === null) return null;
    const assignment = await this.#ctx.store.assignmentGet({ id: assignmentId });
    if (!assignment) throw new FlotillaError('FORBIDDEN', `the attempt this token was issued to (${assignmentId}) no longer exists`);
    return assignment.taskId;
  }

  /** A task the principal cannot see does not exist, for that principal. */
  async #visible(principal: Principal, id: string): Promise<TaskRecord> {
    const task = await this.#ctx.store.taskGet({ id });
    if (!task || !canSeeTask(principal, task)) throw new FlotillaError('TASK_NOT_FOUND', `task ${id} does not exist`);
    return task;
  }

  async #prepare(principal: Principal, spec: TaskSpec, now: number, planned?: DependencyFields): Promise<NewTask> {
    const agents = await this.#registry.map();
    let agent: AgentRecord | undefined;
    const capabilities = spec.capabilities ?? [];
    const toolProblems = [...toolListProblems(spec.tools?.allow ?? [], '/tools/allow'), ...toolListProblems(spec.tools?.deny ?? [], '/tools/deny')];
    if (toolProblems.length > 0) throw new FlotillaError('VALIDATION_FAILED', toolProblems.map((p) => `${p.path}: ${p.message}`).join('; '), toolProblems);
    if (spec.agent !== undefined) {
      if (spec.capabilities !== undefined) {
        throw new FlotillaError('VALIDATION_FAILED', 'give either "agent" or "capabilities", not both');
      }
      agent = agents.get(spec.agent);
      if (!agent) throw new FlotillaError('UNKNOWN_AGENT', `no agent named "${spec.agent}" is registered`);
    } else if (capabilities.length > 0) {
      const target = { agent: null, capabilities };
      if (![...agents.values()].some((a) => agentServes(a, target))) {
        throw new FlotillaError('NO_AGENT_FOR_CAPABILITIES', `no registered agent has all of the capabilities [${capabilities.join(', ')}]`);
      }
    } else {
      throw new FlotillaError('VALIDATION_FAILED', 'a task needs a target: "agent" (a name) or "capabilities" (required tags)');
    }
    if (jsonTooDeep(spec.input)) throw new FlotillaError('VALIDATION_FAILED', `"input" nests deeper than ${MAX_JSON_DEPTH} levels`);
    if (spec.replica !== undefined) {
      // A pin to a replica that does not exist, or serves another agent, could never run.
      const pinned = await this.#ctx.store.replicaGet({ id: spec.replica });
      if (!pinned) throw new FlotillaError('UNKNOWN_REPLICA', `no replica "${spec.replica}" is registered`);
      if (agent && pinned.agent !== agent.name) {
        throw new FlotillaError('UNKNOWN_REPLICA', `replica "${spec.replica}" belongs to agent "${pinned.agent}", not "${agent.name}"`);
      }
    }
    if (spec.runAt !== undefined && spec.delayMs !== undefined) {
      throw new FlotillaError('VALIDATION_FAILED', 'give either "runAt" or "delayMs", not both');
    }
    let runAt = now;
    if (spec.runAt !== undefined) {
      runAt = Date.parse(spec.runAt);
      if (Number.isNaN(runAt)) throw new FlotillaError('VALIDATION_FAILED', `"runAt" is not a valid date-time: ${spec.runAt}`);
    } else if (spec.delayMs !== undefined) {
      runAt = now + spec.delayMs;
    }
    let deadline: number | undefined;
    if (spec.deadline !== undefined) {
      deadline = Date.parse(spec.deadline);
      if (Number.isNaN(deadline)) throw new FlotillaError('VALIDATION_FAILED', `"deadline" is not a valid date-time: ${spec.deadline}`);
    }
    const priority = resolvePriority(spec.priority);
    const sla = slaTerms({ createdAt: now, priority, deadline, slaMs: spec.slaMs, policy: this.#ctx.config.sla });
    const parent = spec.parentId === undefined ? null : await this.#ctx.store.taskGet({ id: spec.parentId });
    // A parent the caller cannot see is, to the caller, a parent that does not exist.
    if (spec.parentId !== undefined && (!parent || !canSeeTask(principal, parent))) {
      throw new FlotillaError('PARENT_NOT_FOUND', `parent task ${spec.parentId} does not exist`);
    }
    const outOfScope = submitWithinScope(principal, { agent: spec.agent ?? null, parent });
    if (outOfScope !== null) throw new FlotillaError('FORBIDDEN', outOfScope);
    const { config } = this.#ctx;
    if (parent && cancelledParent(parent)) {
      throw new FlotillaError('PARENT_CANCELLED', `parent task ${parent.id} is ${parent.status === 'cancelled' ? 'cancelled' : 'being cancelled'}; its tree takes no new tasks`);
    }
    // Every rule below holds whichever candidate runs the task (core/delegation.ts).
    const candidates = agent ? [agent] : candidateAgents({ agent: null, capabilities }, agents.values());
    const depth = childDepth(parent);
    if (parent) {
      const parentAgents = candidateAgents(parent, agents.values());
      const parentLimit = depthLimit(config.maxDepth, parentAgents);
      const tooDeep = spawnRefusal(parent, parentLimit);
      if (tooDeep !== null) throw new FlotillaError('DEPTH_LIMIT', tooDeep, { depth, maxDepth: parentLimit });
      const level = levelRefusal({ parentId: parent.id, parent: parentAgents, child: candidates, allowEqualLevel: config.allowEqualLevel });
      if (level !== null) throw new FlotillaError('LEVEL_NOT_ALLOWED', level.message, level.details);
    }
    const tools = effectiveTools({
      ceiling: candidates.map((a) => ceilingOf(a.tools)).reduce(intersect),
      parent: parent ? toolSetOf(parent.tools) : ALL_TOOLS,
      allow: spec.tools?.allow,
      deny: spec.tools?.deny,
      atMaxDepth: atDepthLimit({ depth }, depthLimit(config.maxDepth, candidates)),
      agentLabel: agent ? `agent "${agent.name}"` : `every agent with the capabilities [${capabilities.join(', ')}]`,
      parentId: parent?.id ?? null,
    });
    if ('refusal' in tools) throw new FlotillaError(tools.refusal.code, tools.refusal.message, tools.refusal.details);
    // A child carries its parent's correlation and trace, so any client's spawn is followed.
    const correlation = parent ? childCorrelation(parent.correlation, spec.correlation) : spec.correlation ?? {};
    if (Object.keys(correlation).length > MAX_CORRELATION_KEYS) {
      throw new FlotillaError('VALIDATION_FAILED', `"correlation" with the keys inherited from parent task ${parent!.id} has more than ${MAX_CORRELATION_KEYS} keys`);
    }
    const id = planned?.id ?? this.#ctx.newId();
    return {
      id,
      type: spec.type ?? spec.agent ?? 'task',
      status: 'pending',
      priority,
      agent: spec.agent ?? null,
      capabilities: spec.agent !== undefined ? [] : capabilities,
      replica: spec.replica ?? null,
      site: spec.site ?? null,
      concurrencyKey: spec.concurrencyKey ?? null,
      attempt: 0,
      maxAttempts: spec.maxAttempts ?? agent?.maxAttempts ?? config.defaultMaxAttempts,
      timeoutMs: spec.timeoutMs ?? agent?.timeoutMs ?? config.defaultTimeoutMs,
      runAt,
      assignmentId: null,
      cancelRequestedAt: null,
      input: spec.input ?? null,
      result: null,
      error: null,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      idempotencyKey: spec.idempotencyKey ?? null,
      correlation,
      traceparent: spec.traceparent ?? (parent ? childTraceparent(parent.traceparent, newSpanId()) : null),
      parentId: spec.parentId ?? null,
      createdBy: principal.id,
      // A child joins its parent's tree, and the tree keeps its owner whoever submits into it.
      rootId: parent ? parent.rootId : id,
      depth,
      ownerId: parent ? parent.ownerId : ownerIdOf(principal),
      tools: toolList(tools.tools),
      allowDegraded: spec.allowDegraded === true,
      ...rateFields(spec),
      waitingFor: null,
      inputRequest: null,
      resumed: null,
      ...sla,
      ...planned?.fields,
    };
  }

  async get(principal: Principal, id: string): Promise<{ task: TaskRecord; assignment: AssignmentRecord | null; waitingReason: WaitingReason | null; waitingDomains?: string[]; flow?: FlowDetail }> {
    const task = await stillAwaited(this.#ctx.store, await this.#visible(principal, id));
    const [assignment, base] = await Promise.all([this.#currentAssignment(task), this.#waitingReason(task)]);
    // Flow control (issue 16): a key with no room, a full cap; and the task's usage.
    const flow = this.#flow === null ? undefined : await this.#flow.detail(task, base);
    const waitingReason = flow?.waitingReason ?? base;
    if (waitingReason !== 'tool_domain_down') return { task, assignment, waitingReason, ...(flow === undefined ? {} : { flow }) };
    const agents = await this.#registry.map();
    const gated = gatedAgents(agents.values(), this.#toolDomains?.down() ?? new Set());
    // The domains of the agents that could run it (its own, or every one serving its capabilities).
    const waitingDomains = [...new Set([...gated].filter(([name]) => agentServes(agents.get(name)!, task)).flatMap(([, d]) => d))].sort();
    return { task, assignment, waitingReason, waitingDomains, ...(flow === undefined ? {} : { flow }) };
  }

  /**
   * Why the task is not running (core/agent-state.ts), read from the registry (cached), the
   * live replicas and its concurrency key's count; null when it runs or has ended.
   */
  async #waitingReason(task: TaskRecord): Promise<WaitingReason | null> {
    const base = { task, now: this.#ctx.now(), agents: [], replicas: [], keyInFlight: 0, serverKeyLimits: this.#ctx.config.concurrencyLimits };
    if (task.status !== 'pending') return waitingReason(base);
    const [agents, replicas, keys] = await Promise.all([
      this.#registry.map(),
      this.#ctx.store.replicaList({ ...(task.agent === null ? {} : { agent: task.agent }), statuses: ['live'] }),
      task.concurrencyKey === null ? Promise.resolve(new Map<string, number>()) : this.#ctx.store.concurrencyKeyInFlight({ keys: [task.concurrencyKey] }),
    ]);
    const gated = gatedAgents(agents.values(), this.#toolDomains?.down() ?? new Set());
    return waitingReason({ ...base, agents: [...agents.values()], replicas, keyInFlight: task.concurrencyKey === null ? 0 : keys.get(task.concurrencyKey) ?? 0, gated });
  }

  /** The live assignment, or the most recent one for a task that has none live. */
  async #currentAssignment(task: TaskRecord): Promise<AssignmentRecord | null> {
    if (task.assignmentId !== null) return this.#ctx.store.assignmentGet({ id: task.assignmentId });
    if (task.attempt === 0 && task.status === 'pending') return null;
    const all = await this.#ctx.store.assignmentListByTask({ taskId: task.id });
    return all.length > 0 ? all[all.length - 1]! : null;
  }

  /**
   * Long-poll: resolves with the task once it is terminal, or with its current state after
   * `waitMs`. Listens to the task's events; never polls the store in a loop.
   */
  async wait(principal: Principal, id: string, waitMs: number, signal?: AbortSignal): ReturnType<TaskService['get']> {
    let settled = false;
    let wakeUp: () => void = () => {};
    const woken = new Promise<void>((resolve) => (wakeUp = resolve));
    const unsubscribe = this.#ctx.bus.subscribeTask(id, (event) => {
      if (event.type === 'task.completed' || event.type === 'task.failed' || event.type === 'task.cancelled') wakeUp();
    });
    try {
      const first = await this.get(principal, id);
      if (TERMINAL_TASK_STATUSES.includes(first.task.status) || waitMs <= 0) return first;
      const timer = setTimeout(wakeUp, waitMs);
      const onAbort = () => wakeUp();
      signal?.addEventListener('abort', onAbort, { once: true });
      await woken;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return await this.get(principal, id);
    } finally {
      if (!settled) wakeUp();
      unsubscribe();
    }
  }

  async list(principal: Principal, params: TaskListParams): Promise<{ items: TaskRecord[]; nextCursor: string | null }> {
    const v = taskVisibility(principal);
    if (v.all) return this.#ctx.store.taskList(params);
    // A token bound to one tree asking for another tree sees nothing (not its own tree instead).
    if ('rootId' in v && params.rootId !== undefined && params.rootId !== v.rootId) return { items: [], nextCursor: null };
    return this.#ctx.store.taskList({ ...params, ...('rootId' in v ? { rootId: v.rootId } : { ownerId: v.ownerId }) });
  }

  /**
   * Cancels the task and, unless `cascade` is false, every descendant not yet finished (each as
   * decideCancel decides: at once, or a cancel request to its worker), with `cancelledBy` in
   * their events. Cancelling a cancelled task again repeats the cascade (a cascade cut short,
   * by a crash or an error, is finished that way). Answers the task as it is after its own
   * transition.
   */
  async cancel(principal: Principal, id: string, opts: CancelOptions = {}): Promise<TaskRecord> {
    const reason = opts.reason;
    const task = await this.#transitionWithRetry(principal, id, (t) => this.#decideCancel(t, reason ? { reason } : {}));
    if (opts.cascade !== false) await this.#cancelDescendants(task, reason ? { reason } : {});
    return task;
  }

  async #decideCancel(task: TaskRecord, extra: { reason?: string; cancelledBy?: string }): Promise<Transition | null> {
    const assignment = task.assignmentId ? await this.#ctx.store.assignmentGet({ id: task.assignmentId }) : null;
    return decideCancel({ task, assignment, now: this.#ctx.now(), ...extra });
  }

  /** The cancellation of one task the engine itself decided on (no principal: a child found under a cancelled parent). */
  async #cancelOne(id: string, decide: (task: TaskRecord) => Promise<Transition | null>): Promise<TaskRecord> {
    return this.#decideAndCommit(id, async () => {
      const task = await this.#ctx.store.taskGet({ id });
      if (!task) throw new FlotillaError('TASK_NOT_FOUND', `task ${id} does not exist`);
      return task;
    }, decide);
  }

  /**
   * Cancels every unfinished descendant of `ancestor`. The tree is read in submission order
   * (parents before children, so one pass knows which tasks descend from the ancestor), a page
   * at a time, and each page's cancellations are written as one set (taskTransition). The walk
   * is repeated until one changes nothing: a child committed while a walk ran (its parent not
   * yet marked when it was submitted) is found by the next one; see #orphansCancelled for the
   * other half of that race. A task that changed between the read and the write (dispatched
   * meanwhile) is a conflict, decided again by the next walk.
   */
  async #cancelDescendants(ancestor: TaskRecord, extra: { reason?: string }): Promise<void> {
    for (let walk = 0; walk < CASCADE_MAX_WALKS; walk++) {
      if (!(await this.#cascadeWalk(ancestor, extra))) return;
    }
    this.#ctx.log.warn({ taskId: ancestor.id, walks: CASCADE_MAX_WALKS }, 'a cancellation kept finding new descendants; cancel it again to finish');
  }

  /** One walk of the cascade; true when it wrote (or tried to write) anything. */
  async #cascadeWalk(ancestor: TaskRecord, extra: { reason?: string }): Promise<boolean> {
    const { store } = this.#ctx;
    // Under a root every task of the tree descends from it: only the unfinished ones are read.
    // Under another task, descent is known only from the parents, so every task after it is read.
    const fromRoot = ancestor.id === ancestor.rootId;
    const inside = new Set([ancestor.id]);
    let changed = false;
    let cursor: string | null = encodeCursor(ancestor.seq);
    while (cursor !== null) {
      const page = await store.taskList({ rootId: ancestor.rootId, oldestFirst: true, limit: CASCADE_PAGE, cursor, ...(fromRoot ? { statuses: OPEN_STATUSES } : {}) });
      cursor = page.nextCursor;
      const open: TaskRecord[] = [];
      for (const task of page.items) {
        if (!fromRoot) {
          if (task.parentId === null || !inside.has(task.parentId)) continue;
          inside.add(task.id);
        }
        if (!isTerminal(task.status)) open.push(task);
      }
      const live = open.filter((t) => t.assignmentId !== null);
      const assignments = live.length === 0 ? new Map<string, AssignmentRecord>() : new Map(
        (await store.assignmentListLatest({ taskIds: live.map((t) => t.id) })).map((a) => [a.id, a]),
      );
      const now = this.#ctx.now();
      const transitions = open.flatMap((task) => {
        const assignment = task.assignmentId === null ? null : assignments.get(task.assignmentId) ?? null;
        // Its attempt changed between the two reads: the next walk reads it again.
        if (task.assignmentId !== null && assignment === null) {
          changed = true;
          return [];
        }
        const t = decideCancel({ task, assignment, now, ...extra, cancelledBy: ancestor.id });
        return t === null ? [] : [t];
      });
      if (transitions.length > 0) {
        changed = true;
        await commit(this.#ctx, transitions);
      }
    }
    return changed;
  }

  /**
   * An operator fails a task for good, with a reason (decideOperatorFail): it is in the
   * dead-letter list at once, and can be requeued.
   */
  async fail(principal: Principal, id: string, reason: string): Promise<TaskRecord> {
    return this.#transitionWithRetry(principal, id, async (task) => {
      const assignment = task.assignmentId ? await this.#ctx.store.assignmentGet({ id: task.assignmentId }) : null;
      return decideOperatorFail({ task, assignment, reason, by: principal.name, now: this.#ctx.now() });
    });
  }

  /**
   * An operator dispatches a pending task now, to an agent or a replica (or any replica that
   * serves it), whatever its place in the queue or its `runAt` (Dispatcher.assign). Refused
   * with 409 NOT_ASSIGNABLE and the reason when nothing can take it now.
   */
  async assign(principal: Principal, id: string, target: { agent?: string; replica?: string }): Promise<TaskRecord> {
    await this.#requireLiveAttempt(principal);
    const task = await this.#visible(principal, id);
    if (target.agent !== undefined && !(await this.#registry.get(target.agent))) {
      throw new FlotillaError('UNKNOWN_AGENT', `no agent named "${target.agent}" is registered`);
    }
    const replica = target.replica === undefined ? null : await this.#ctx.store.replicaGet({ id: target.replica });
    if (target.replica !== undefined && replica === null) throw new FlotillaError('UNKNOWN_REPLICA', `no replica "${target.replica}" is registered`);
    if (replica !== null && target.agent !== undefined && replica.agent !== target.agent) {
      throw new FlotillaError('UNKNOWN_REPLICA', `replica "${replica.id}" belongs to agent "${replica.agent}", not "${target.agent}"`);
    }
    if (task.status !== 'pending') {
      throw new FlotillaError('NOT_ASSIGNABLE', `task ${id} is ${task.status}; only a pending task can be assigned`, { reason: 'not_pending', status: task.status });
    }
    const outcome = await this.#dispatcher.assign(task, { agent: target.agent ?? null, replica }, principal.name);
    if ('refusal' in outcome) throw new FlotillaError('NOT_ASSIGNABLE', outcome.refusal.message, { reason: outcome.refusal.reason });
    return (await this.#ctx.store.taskGet({ id }))!;
  }

  /**
   * A page of the tree `id` belongs to, from its root, in submission order (a parent before
   * its children, so every page hangs from the ones before it), with each task's latest
   * attempt: two reads, whatever the size of the page. Whoever may see the task sees its
   * tree: visibility is decided per tree (rootId, ownerId).
   */
  async tree(principal: Principal, id: string, params: { limit: number; cursor: string | null }): Promise<TreePage> {
    const task = await this.#visible(principal, id);
    const page = await this.#ctx.store.taskList({ rootId: task.rootId, oldestFirst: true, limit: params.limit, cursor: params.cursor });
    const tasks = page.items.filter((t) => canSeeTask(principal, t));
    const tried = tasks.filter((t) => t.assignmentId !== null || t.attempt > 0 || t.status !== 'pending');
    const latest = tried.length === 0 ? [] : await this.#ctx.store.assignmentListLatest({ taskIds: tried.map((t) => t.id) });
    const byTask = new Map(latest.map((a) => [a.taskId, a]));
    return { task, items: tasks.map((t) => ({ task: t, assignment: byTask.get(t.id) ?? null })), nextCursor: page.nextCursor };
  }

  async requeue(principal: Principal, id: string): Promise<TaskRecord> {
    const task = await this.#transitionWithRetry(principal, id, async (task) => {
      await refuseSecondOpenRun(this.#ctx, task);
      if (task.agent !== null && task.status === 'failed' && !(await this.#registry.get(task.agent))) {
        throw new FlotillaError('UNKNOWN_AGENT', `agent "${task.agent}" of task ${id} no longer exists; it cannot run again`);
      }
      return decideRequeue({ task, now: this.#ctx.now() });
    }).catch((err: unknown) => namingOpenRun(this.#ctx, id, err));
    // Requeued blocked (it has dependencies): they may all have ended already.
    if (task.status === 'blocked') this.#unblocker?.look([task.id]);
    return task;
  }

  /**
   * Answers an input request: checked against the schema the handler gave (400 with the
   * reasons otherwise), then the task is pending again and its next attempt gets the answer.
   */
  async answer(principal: Principal, id: string, input: Json): Promise<TaskRecord> {
    if (jsonTooDeep(input)) throw new FlotillaError('VALIDATION_FAILED', `"input" nests deeper than ${MAX_JSON_DEPTH} levels`);
    const ownTask = await this.#attemptTaskOf(principal);
    return this.#transitionWithRetry(principal, id, async (task) => {
      // An attempt's token answers for its own children only, never for its ancestors or siblings.
      if (ownTask !== null && task.parentId !== ownTask) {
        throw new FlotillaError('FORBIDDEN', `an attempt's token answers only the input requests of the tasks it spawned; task ${id} is not a child of task ${ownTask}`);
      }
      if (task.status === 'input_required' && task.inputRequest !== null) {
        const problems = answerProblems(task.inputRequest.schema, input);
        if (problems !== null) {
          throw new FlotillaError('VALIDATION_FAILED', `the answer does not match the input schema of task ${id}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { problems });
        }
      }
      return decideAnswer({ task, input, now: this.#ctx.now(), by: principal.id });
    });
  }

  async events(principal: Principal, id: string, after: number, limit: number): Promise<EventRecord[]> {
    await this.#visible(principal, id);
    return this.#ctx.store.eventList({ after, limit, taskId: id });
  }

  async assignments(principal: Principal, id: string): Promise<AssignmentRecord[]> {
    await this.#visible(principal, id);
    return this.#ctx.store.assignmentListByTask({ taskId: id });
  }

  /**
   * Read, decide, write; if the task changed between the read and the guarded write (a
   * dispatch or a completion landed in between), read again and decide again.
   */
  async #transitionWithRetry(principal: Principal, id: string, decide: (task: TaskRecord) => Promise<Transition | null>): Promise<TaskRecord> {
    await this.#requireLiveAttempt(principal);
    return this.#decideAndCommit(id, () => this.#visible(principal, id), decide);
  }

  async #decideAndCommit(id: string, read: () => Promise<TaskRecord>, decide: (task: TaskRecord) => Promise<Transition | null>): Promise<TaskRecord> {
    for (let i = 0; i < CONFLICT_RETRIES; i++) {
      const task = await read();
      const transition = await decide(task);
      if (transition === null) return task;
      const [result] = await commit(this.#ctx, [transition]);
      if (result!.ok) return (await this.#ctx.store.taskGet({ id }))!;
    }
    throw new FlotillaError('INVALID_TRANSITION', `task ${id} kept changing; try again`);
  }
}
