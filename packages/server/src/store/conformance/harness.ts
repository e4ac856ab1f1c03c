// Fixtures and helpers of the store conformance suite. Everything here goes through the Store
// interface and the state machine, so the suite runs unchanged against any store.

import assert from 'node:assert/strict';
import { it, type TestContext as NodeTestContext } from 'node:test';
import { decideDispatch, decideStart } from '../../core/task-machine.ts';
import type {
  AgentRecord, AssignmentRecord, EventRecord, Millis, NewEvent, NewTask, ReplicaRecord, TaskHead, TaskRecord,
  Transition, TransitionResult,
} from '../../core/types.ts';
import type { RetryPolicy } from '../../core/retry-policy.ts';
import type { ApiKeyRecord, NewAuditRecord, Store } from '../store.ts';

/** What a store's test file hands the suite for each test. */
export interface StoreUnderTest {
  store: Store;
  /**
   * Opens the same database again, after the test closed `store` (durability tests run only
   * when given). Must not close anything itself.
   */
  reopen?: () => Promise<Store>;
  /**
   * Opens another Store on the same database while the first stays open (a second server
   * process). Given only for multi-node stores; `cleanup` closes the peers it opened.
   */
  peer?: () => Promise<Store>;
  /**
   * Closes whichever store is open (the original or the reopened one; a test may already
   * have closed it, so close must be idempotent) and removes the database.
   */
  cleanup: () => Promise<void>;
}

export type OpenStore = () => Promise<StoreUnderTest>;

export interface TestContext {
  store: Store;
  reopen: (() => Promise<Store>) | undefined;
  peer: (() => Promise<Store>) | undefined;
  /** node:test's own context (skip, diagnostics). */
  t: NodeTestContext;
}

/** Registers a test that gets a fresh store and always cleans it up. */
export function storeTest(open: OpenStore, name: string, fn: (ctx: TestContext) => Promise<void>): void {
  it(name, async (t) => {
    const sut = await open();
    try {
      await fn({ store: sut.store, reopen: sut.reopen, peer: sut.peer, t });
    } finally {
      await sut.cleanup();
    }
  });
}

// -- time and ids -----------------------------------------------------------------------

/** The suite's epoch: every time is T0 plus an offset, so assertions are exact. */
export const T0: Millis = 1_700_000_000_000;
export const LEASE_MS: Millis = 30_000;
export const POLICY: RetryPolicy = { baseDelayMs: 1_000, maxDelayMs: 10_000 };

let counter = 0;
/** Unique, readable ids (`task-17`). */
export function nextId(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}`;
}

// -- records ----------------------------------------------------------------------------

/** A root task (its own rootId) unless `over` says otherwise. */
export function newTask(over: Partial<NewTask> = {}): NewTask {
  const id = over.id ?? nextId('task');
  return {
    id,
    type: 'test.echo',
    status: 'pending',
    priority: 5,
    agent: 'alpha',
    capabilities: [],
    replica: null,
    site: null,
    concurrencyKey: null,
    attempt: 0,
    maxAttempts: 3,
    timeoutMs: 60_000,
    runAt: T0,
    assignmentId: null,
    cancelRequestedAt: null,
    input: { n: 1 },
    result: null,
    error: null,
    createdAt: T0,
    updatedAt: T0,
    finishedAt: null,
    idempotencyKey: null,
    correlation: {},
    traceparent: null,
    parentId: null,
    createdBy: null,
    rootId: id,
    depth: 1,
    ownerId: null,
    waitingFor: null,
    inputRequest: null,
    resumed: null,
    slaDeadline: null,
    slaState: 'none',
    slaCheckAt: null,
    tools: [],
    allowDegraded: false,
    // No dependencies (docs/workflows.md): what a store reads back for a plain task.
    hasDependents: false,
    dependsOn: [],
    onDependencyFailure: null,
    ref: null,
    inputFrom: null,
    dependencies: null,
    cacheKey: null,
    cacheScope: null,
    cachedFrom: null,
    rateKey: null,
    estimatedTokens: null,
    ...over,
  };
}

export function createdEvent(task: Pick<NewTask, 'id' | 'agent' | 'priority'>): NewEvent {
  return { type: 'task.created', taskId: task.id, agent: task.agent, replicaId: null, assignmentId: null, data: { priority: task.priority } };
}

export function plainEvent(type: string, over: Partial<NewEvent> = {}): NewEvent {
  return { type, taskId: null, agent: null, replicaId: null, assignmentId: null, data: {}, ...over };
}

/** The event type of agents the helpers register on the fly; allEvents leaves them out. */
export const SEED_EVENT = 'conformance.agent_seeded';

/**
 * Tasks must name agents that exist (taskCreate checks it in the same write), so the helpers
 * register any missing agent first. Each such registration appends one agent.created event.
 */
export async function ensureAgents(store: Store, names: Iterable<string | null>): Promise<void> {
  for (const name of new Set(names)) {
    if (name === null || (await store.agentGet({ name }))) continue;
    await store.agentCreate({ agent: agentRecord({ name }), event: plainEvent(SEED_EVENT, { agent: name }) });
  }
}

export async function createTasks(store: Store, tasks: NewTask[]): Promise<TaskRecord[]> {
  await ensureAgents(store, tasks.map((t) => t.agent));
  const results = await store.taskCreate({ tasks: tasks.map((task) => ({ task, events: [createdEvent(task)] })) });
  return results.map((r) => {
    assert.equal(r.created, true, `task ${r.task.id} should be created`);
    return r.task;
  });
}

export async function createTask(store: Store, over: Partial<NewTask> = {}): Promise<TaskRecord> {
  const [task] = await createTasks(store, [newTask(over)]);
  return task!;
}

export function agentRecord(over: Partial<AgentRecord> = {}): AgentRecord {
  return {
    name: nextId('agent'),
    description: 'an agent',
    capabilities: ['text'],
    maxConcurrency: 2,
    maxAttempts: null,
    timeoutMs: null,
    level: 1,
    toolDomains: [],
    tools: [],
    maxDepth: null,
    pausedAt: null,
    overloadedAt: null,
    a2aSkill: null,
    concurrencyLimits: {},
    retryBaseDelayMs: null,
    retryMaxDelayMs: null,
    runtime: 'pull',
    a2a: null,
    createdAt: T0,
    updatedAt: T0,
    maxInFlight: null,
    ...over,
  };
}

/** An admin key, never used, expiring or revoked; the hash is unique like the id. */
export function apiKeyRecord(over: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const id = over.id ?? nextId('key');
  return {
    id,
    name: `key ${id}`,
    role: 'admin',
    hash: `hash-of-${id}`,
    createdAt: T0,
    lastUsedAt: null,
    expiresAt: null,
    revokedAt: null,
    createdBy: null,
    agents: null,
    ...over,
  };
}

/** An allowed request of an admin key. */
export function auditEntry(over: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return {
    at: T0,
    principalId: 'key-admin',
    principalName: 'ci',
    role: 'admin',
    action: 'task.submit',
    target: null,
    outcome: 'allowed',
    status: 201,
    requestId: nextId('req'),
    source: '127.0.0.1',
    details: null,
    ...over,
  };
}

export async function registerReplica(
  store: Store,
  over: { id?: string; agent?: string; site?: string | null; maxConcurrency?: number; at?: Millis } = {},
): Promise<ReplicaRecord> {
  const id = over.id ?? nextId('replica');
  const agent = over.agent ?? 'alpha';
  const at = over.at ?? T0;
  const { replica } = await store.replicaRegister({
    replica: { id, agent, site: over.site ?? null, maxConcurrency: over.maxConcurrency ?? 2, registeredAt: at, lastSeenAt: at },
    event: plainEvent('replica.registered', { agent, replicaId: id }),
  });
  return replica;
}

// -- applying transitions -----------------------------------------------------------------

export async function apply(store: Store, t: Transition): Promise<TransitionResult> {
  const [result] = await store.taskTransition({ transitions: [t] });
  assert.ok(result, 'taskTransition returns one result per transition');
  return result;
}

/** Applies a transition that must succeed; returns its events. */
export async function mustApply(store: Store, t: Transition | null): Promise<EventRecord[]> {
  assert.ok(t, 'expected a transition');
  const result = await apply(store, t);
  assert.ok(result.ok, `transition on ${t.taskId} conflicted: ${result.ok ? '' : result.conflict}`);
  return result.events;
}

export async function getTask(store: Store, id: string): Promise<TaskRecord> {
  const task = await store.taskGet({ id });
  assert.ok(task, `task ${id} exists`);
  return task;
}

export async function getAssignment(store: Store, id: string): Promise<AssignmentRecord> {
  const a = await store.assignmentGet({ id });
  assert.ok(a, `assignment ${id} exists`);
  return a;
}

export async function getReplica(store: Store, id: string): Promise<ReplicaRecord> {
  const r = await store.replicaGet({ id });
  assert.ok(r, `replica ${id} exists`);
  return r;
}

export function dispatchTransition(
  task: TaskHead,
  replica: Pick<ReplicaRecord, 'id' | 'agent'>,
  opts: { now?: Millis; leaseMs?: Millis; concurrencyLimit?: number | null; assignmentId?: string } = {},
): Transition {
  return decideDispatch({
    task,
    replica: { id: replica.id, agent: replica.agent },
    assignmentId: opts.assignmentId ?? nextId('asg'),
    now: opts.now ?? T0,
    leaseMs: opts.leaseMs ?? LEASE_MS,
    concurrencyLimit: opts.concurrencyLimit ?? null,
  });
}

export interface Live {
  task: TaskRecord;
  assignment: AssignmentRecord;
}

/** Dispatches a pending task to a replica; returns the fresh records. */
export async function dispatch(
  store: Store,
  task: TaskHead,
  replica: Pick<ReplicaRecord, 'id' | 'agent'>,
  opts: { now?: Millis; leaseMs?: Millis; concurrencyLimit?: number | null } = {},
): Promise<Live> {
  const t = dispatchTransition(task, replica, opts);
  await mustApply(store, t);
  return { task: await getTask(store, task.id), assignment: await getAssignment(store, t.assignmentInsert!.id) };
}

/** Dispatches and starts a task; returns the fresh records. */
export async function run(
  store: Store,
  task: TaskHead,
  replica: Pick<ReplicaRecord, 'id' | 'agent'>,
  opts: { now?: Millis; leaseMs?: Millis; concurrencyLimit?: number | null } = {},
): Promise<Live> {
  const live = await dispatch(store, task, replica, opts);
  await mustApply(store, decideStart({ task: live.task, assignment: live.assignment, now: opts.now ?? T0, leaseMs: opts.leaseMs ?? LEASE_MS }));
  return { task: await getTask(store, task.id), assignment: await getAssignment(store, live.assignment.id) };
}

// -- observing "nothing changed" ------------------------------------------------------------

export async function allEvents(store: Store): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (;;) {
    const after = out.at(-1)?.seq ?? 0;
    const page = await store.eventList({ after, limit: 500 });
    assert.ok(page.every((e) => e.seq > after), 'eventList returns only events after the given seq');
    out.push(...page);
    if (page.length < 500) return out.filter((e) => e.type !== SEED_EVENT);
  }
}

/**
 * The events a write returned, with the seqs they have in the log. A store that numbers at
 * write (capabilities.eventSeqsOnWrite) returned them already; one that numbers after commit
 * returned seq 0, and the log must hold them, consecutively and in the order returned (the
 * tests write one call at a time). Checked either way.
 */
export async function logged(store: Store, written: readonly EventRecord[]): Promise<EventRecord[]> {
  if (written.length === 0) return [];
  if (!store.capabilities.eventSeqsOnWrite) assert.ok(written.every((e) => e.seq === 0), 'events returned unnumbered');
  const log = await allEvents(store);
  const same = (a: EventRecord, b: EventRecord) =>
    a.type === b.type && a.taskId === b.taskId && a.agent === b.agent && a.replicaId === b.replicaId && a.assignmentId === b.assignmentId &&
    a.at === b.at && JSON.stringify(a.data) === JSON.stringify(b.data);
  for (let start = log.length - written.length; start >= 0; start--) {
    const run = log.slice(start, start + written.length);
    if (run.every((e, i) => same(e, written[i]!))) {
      if (store.capabilities.eventSeqsOnWrite) assert.deepEqual(run, written, 'the seqs returned are the seqs logged');
      return run;
    }
  }
  assert.fail(`the log does not hold the ${written.length} events written, in order`);
}

/** Missing keys count as zero (a store may or may not keep a row for an idle key). */
export async function keyCounts(store: Store, keys: string[]): Promise<Record<string, number>> {
  const map = await store.concurrencyKeyInFlight({ keys });
  return Object.fromEntries(keys.map((k) => [k, map.get(k) ?? 0]));
}

/** Everything a transition could touch, for before/after comparisons. */
export async function snapshot(store: Store, scope: { tasks?: string[]; replicas?: string[]; keys?: string[] }) {
  return {
    tasks: await Promise.all((scope.tasks ?? []).map((id) => store.taskGet({ id }))),
    assignments: await Promise.all((scope.tasks ?? []).map((taskId) => store.assignmentListByTask({ taskId }))),
    replicas: await Promise.all((scope.replicas ?? []).map((id) => store.replicaGet({ id }))),
    keys: await keyCounts(store, scope.keys ?? []),
    events: await allEvents(store),
  };
}
