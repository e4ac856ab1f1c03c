// Core domain types. Pure data: nothing here performs I/O.
//
// Glossary
// - agent: a named kind of worker (`security-analyst`) declared in the registry, with
//   capabilities (tags), a default per-replica concurrency, attempt/timeout defaults and
//   concurrency-key limits.
// - replica: one live instance of an agent (a worker process). Has an id, a site,
//   `maxConcurrency`, and `inFlight` (live assignments it holds).
// - task: a unit of work with a type, JSON input, priority 0..9 (9 most urgent), a target
//   (agent name, or required capabilities) and options.
// - assignment: one attempt of a task on one replica. A task has at most one live
//   assignment (status dispatched or running); its earlier assignments are kept as history.
// - slot: one unit of a replica's `maxConcurrency` (and of a concurrency key's limit). A
//   live assignment holds exactly one slot on its replica and, if the task has a
//   concurrency key, one on that key.
// - lease: the time until which a live assignment is considered held by its replica;
//   renewed by heartbeats. When it lapses the attempt is `lost`.
// - deadline: the per-attempt execution timeout; when it passes the attempt is `timed_out`.
// - transition: a decision of the state machine, expressed as guarded writes ("update the
//   task if it is still in status X with assignment Y"), applied atomically by a store.
// - event: an append-only record of something that happened, with a global sequence number.
// - tree: a root task and the tasks submitted under it (`parentId`), all with its `rootId`.
//   A task's `depth` is 1 for a root and its parent's + 1; no task is deeper than the
//   server's `maxDepth`, or its agent's when narrower (core/trees.ts, core/delegation.ts).
// - level: an agent's rank (1 = top); a task delegates only to agents of a greater level.
// - tools: an agent's ceiling of tools, and a task's effective set (core/tools.ts), computed
//   at submit and carried by its assignments and attempt tokens.
// - suspended attempt: an attempt its handler ended without an outcome, by waiting for child
//   tasks (task `waiting`) or by asking for input (task `input_required`). It releases its slot,
//   lease and timeout, is not counted against the task's attempts, and the task's next attempt
//   (after the children ended, or the input came) is given what it waited for (`resumed`).
// - SLA deadline: when a task must be terminal by, from submit (core/sla.ts); not the
//   per-attempt `deadline` above. Priority aliases P0..P3 name values of the 0..9 scale.
// - durable / relaxed write: a durable write is flushed to disk before it is acknowledged (an
//   accepted submit, a final outcome, an operator's action); a relaxed one commits without
//   waiting for the flush (claim, start, progress, heartbeat, lease renewal). Both survive a
//   process kill; after a power loss a relaxed write may be redone (docs/decisions.md 41).
// - dependency: a task another one names in `dependsOn`; the dependent waits `blocked` until
//   every dependency completed, then runs with their outcomes (`dependencies` in its
//   assignment). A failed or cancelled one fails it (DEPENDENCY_FAILED) unless its
//   `onDependencyFailure` is `run` (core/dependencies.ts, docs/workflows.md).
// - workflow: several task specs submitted together, naming each other by local `ref`
//   (`#fetch`), validated as a whole and created in one commit (all or none).
// - then: a task's follow-up, created with it as a dependent (blocked until it completes)
//   whose input is a template filled from its result.
// - input template: JSON where each `{"$from": "<dependency>/<JSON pointer>"}` object is
//   replaced, when the task is unblocked, by the value it points at (core/input-template.ts).
// - webhook subscription: a URL, event type patterns (`task.*`) and optional agent and tree
//   filters, with a secret (stored sealed) that signs each delivery; it sees only the tasks
//   its owner may read (core/webhooks.ts, docs/webhooks.md).
// - webhook delivery: one event queued in the store's outbox for one subscription (or a
//   task's `notify` URL), sent at least once, in order per task, retried with backoff, then
//   parked as `failed` until an operator replays it. The feed cursor: the last event seq the
//   maintenance node queued deliveries for.
// - notify: a task's `notify: {url}`, a one-off delivery of its terminal event, signed with
//   the server's notify secret.
// - schedule: a named recurring submit (core/schedules.ts): a cron expression or an
//   interval, a task template, an overlap and a catch-up policy, an owner (the key whose
//   tasks it submits). A fire time is one of its times; each is exactly one task, keyed
//   `schedule:<name>:<fire time>`, fired by the maintenance node.
// - cached result: the result of a completed task with a `cacheKey`, reused by a later
//   submit of the same agent, key and cache scope within its TTL (core/result-cache.ts). A
//   cache hit is a new task born completed (`cachedFrom`); a shared run is the open task of
//   that key, answered to a concurrent submit.
// - rate key: a name for a provider's quota (`openai:gpt-4o`) that tasks share (`rateKey`);
//   its rate limit (requests and tokens per minute, core/rate-limits.ts) holds fleet-wide over
//   a sliding one-minute window of the attempts dispatched under it (the rate log).
// - rate-limited attempt: one its worker ended with a provider's 429 (`retryAfterMs`): not
//   counted against the task's attempts; the task and the whole key wait out the pause.
// - fleet cap / agent cap: the most live assignments across every node (`maxConcurrentTasks`)
//   and across all replicas of one agent (`maxInFlight`), next to the per-replica slots.
// - usage: what an attempt used (model, input and output tokens, cost), reported by its worker
//   with its outcome (core/usage.ts), summed per task, tree, agent and day.
//
// Invariants (enforced by the state machine plus the stores' guards)
// - task.assignmentId names the live assignment iff task.status is dispatched or running.
// - replica.inFlight equals the number of live assignments on that replica, and never
//   exceeds replica.maxConcurrency; the same holds for each concurrency key and its limit.
// - an assignment leaves a live status exactly once; its outcome is never overwritten.
// - a task's result is written once, by the transition into `completed`.

import type {
  DependencyFailurePolicy, DependencyOutcome,
  A2aTargetSpec, AssignmentStatus, Json, ReplicaHealth, ReplicaStatus, Resumption, SlaState, TaskErrorInfo, TaskStatus,
} from '@flotilla/sdk';

export type { DependencyFailurePolicy, DependencyOutcome };
export type { AssignmentStatus, Json, ReplicaHealth, ReplicaStatus, Resumption, SlaState, TaskErrorInfo, TaskStatus };

/** Milliseconds since the Unix epoch. Every time inside the server is one of these. */
export type Millis = number;

/** The routing-relevant, narrow part of a task (the hot queue row). */
export interface TaskHead {
  id: string;
  /** Global submission order; FIFO within a priority follows it. */
  seq: number;
  status: TaskStatus;
  priority: number;
  agent: string | null;
  capabilities: string[];
  replica: string | null;
  site: string | null;
  concurrencyKey: string | null;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number;
  runAt: Millis;
  assignmentId: string | null;
  cancelRequestedAt: Millis | null;
  /** The task this one was submitted under: a transition that ends this task may wake it. */
  parentId: string | null;
  /**
   * When the task must be terminal by (core/sla.ts); null: no SLA. Within a priority, an
   * earlier deadline is dispatched first, and tasks without one after, in submission order.
   */
  slaDeadline: Millis | null;
  /**
   * Some task names this one in `dependsOn` (set when such a task is created, never cleared):
   * a transition that ends this task looks at its dependents. False or absent: none does.
   */
  hasDependents?: boolean;
  /** The rate key whose limit it dispatches under (core/rate-limits.ts); null or absent: none. Set at submit. */
  rateKey?: string | null;
  /** The tokens it is expected to use, counted against its key's tokens per minute until its usage is reported. */
  estimatedTokens?: number | null;
}

/** What a handler asked for (task status `input_required`). */
export interface InputRequestRecord {
  prompt: string;
  /** A JSON Schema the answer must match; null accepts any JSON value. */
  schema: Json | null;
  requestedAt: Millis;
  /** When the task fails with INPUT_TIMEOUT unless answered; null: never. */
  expiresAt: Millis | null;
}

export interface TaskRecord extends TaskHead {
  type: string;
  input: Json;
  result: Json | null;
  error: TaskErrorInfo | null;
  createdAt: Millis;
  updatedAt: Millis;
  finishedAt: Millis | null;
  idempotencyKey: string | null;
  correlation: Record<string, string>;
  traceparent: string | null;
  createdBy: string | null;
  /**
   * The root of the task's tree (parent of parent ... of this task); a task without a parent
   * is its own root. Set at submit and never changed, so a whole tree is one indexed lookup.
   */
  rootId: string;
  /** How deep in its tree: a root is 1, a child its parent's depth + 1. Set at submit, never changed. */
  depth: number;
  /**
   * The tools its attempts may use (core/tools.ts, wire form: granted entries, then `!`excepted
   * ones): computed once at submit, never changed.
   */
  tools: string[];
  /**
   * Whether it may run on an agent with a tool domain down (issue 15, core/tool-domains.ts):
   * set at submit, never changed. False (or absent, in records built before it existed): it
   * waits for the domain. Stores always read it back.
   */
  allowDegraded?: boolean;
  /**
   * The principal that owns the task's tree: the creator of the root. Children inherit it from
   * their parent (whoever submits them), so isolation by owner covers whole trees.
   */
  ownerId: string | null;
  /** While `waiting`: the child ids it waits for; null in every other status. */
  waitingFor: string[] | null;
  /** While `input_required`: what was asked; null in every other status. */
  inputRequest: InputRequestRecord | null;
  /**
   * What the next attempt is given after a suspension (the awaited children's outcomes, or
   * the answer); set when the task leaves `waiting` or `input_required`, kept afterwards.
   */
  resumed: Resumption | null;
  /** Where the task stands against `slaDeadline`, as the maintenance sweep last wrote it (core/sla.ts). */
  slaState: SlaState;
  /** When the sweep looks at the task's SLA next; null: never (no deadline, or settled). */
  slaCheckAt: Millis | null;
  /** The tasks it waits for (docs/workflows.md), set at submit, never changed; empty: none. Stores always read it back. */
  dependsOn?: string[];
  /** With dependencies: what a failed or cancelled one does to it; null without dependencies. */
  onDependencyFailure?: DependencyFailurePolicy | null;
  /** Its name in the workflow it was submitted in (`#ref`); null outside one. */
  ref?: string | null;
  /** The input template applied when it is unblocked (core/input-template.ts); null: its input is kept. */
  inputFrom?: Json | null;
  /** Its dependencies' outcomes, set when it is unblocked and given to its attempts; null before. */
  dependencies?: DependencyOutcome[] | null;
  /**
   * Cached results (issue 16, core/result-cache.ts): the key its result is cached under (with
   * its agent and cacheScope); null or absent: not cached. Set at submit, never changed.
   */
  cacheKey?: string | null;
  /** Whose cache it is in: `owner:<ownerId>`, or `tree:<rootId>` for a tree-bound token (core/result-cache.ts). */
  cacheScope?: string | null;
  /** A task answered from the cache: the task whose result it copied (it never ran). */
  cachedFrom?: string | null;
}

/** A task as the engine asks a store to create it (the store adds `seq`). */
export type NewTask = Omit<TaskRecord, 'seq'>;

export interface AssignmentRecord {
  id: string;
  taskId: string;
  agent: string;
  replicaId: string;
  attempt: number;
  status: AssignmentStatus;
  dispatchedAt: Millis;
  startedAt: Millis | null;
  finishedAt: Millis | null;
  leaseExpiresAt: Millis;
  deadlineAt: Millis;
  progressPercent: number | null;
  progressMessage: string | null;
  progressAt: Millis | null;
  error: TaskErrorInfo | null;
}

export interface AgentRecord {
  name: string;
  description: string;
  capabilities: string[];
  maxConcurrency: number;
  maxAttempts: number | null;
  timeoutMs: number | null;
  /** Rank in the hierarchy (1 = top): a task delegates only to agents of a greater level (core/delegation.ts). */
  level: number;
  toolDomains: string[];
  /** The tools its tasks may use at most (its ceiling, core/tools.ts); none when empty. */
  tools: string[];
  /** Narrows the server's `maxDepth` for its tasks; null: the server's. */
  maxDepth: number | null;
  concurrencyLimits: Record<string, number>;
  retryBaseDelayMs: number | null;
  retryMaxDelayMs: number | null;
  runtime: 'pull' | 'a2a' | 'process';
  /** Where a runtime "a2a" agent is (core/a2a-target.ts checks it); null for every other runtime. */
  a2a: A2aTargetSpec | null;
  createdAt: Millis;
  updatedAt: Millis;
  /**
   * Set by an operator's pause: no new dispatches to it until resumed. Written only by
   * agentSetPaused: creating, updating or re-declaring the agent keeps it as it is.
   */
  pausedAt: Millis | null;
  /** Since when the maintenance sweep finds it overloaded (core/agent-state.ts); null: not. Written only by agentSetOverloaded. */
  overloadedAt: Millis | null;
  /** Its skill on Flotilla's A2A agent card (docs/a2a.md); null: not published. */
  a2aSkill: A2aSkill | null;
  /** The agent cap: live assignments across all of its replicas at most (core/flow-caps.ts); null or absent: none. */
  maxInFlight?: number | null;
}

/** How an agent is shown as a skill of the fleet's A2A agent card (decisions.md 79). */
export interface A2aSkill {
  inputModes: string[];
  outputModes: string[];
  examples: string[];
}


export interface ReplicaRecord {
  id: string;
  agent: string;
  site: string | null;
  status: ReplicaStatus;
  maxConcurrency: number;
  inFlight: number;
  registeredAt: Millis;
  lastSeenAt: Millis;
  lastAssignedAt: Millis | null;
  completed: number;
  failed: number;
  health: ReplicaHealth;
  /** What its last health report said besides the health (cpu, memory, anything); null before any. */
  healthDetail: Record<string, Json> | null;
  /** When its health was last reported; null before any report. */
  healthAt: Millis | null;
}

/** The event types a transition writes (docs/protocol.md lists what each one means). */
export type TransitionEventType =
  | 'task.dispatched' | 'task.started' | 'task.completed' | 'task.retrying' | 'task.failed'
  | 'task.dispatch_failed' | 'task.cancel_requested' | 'task.cancelled' | 'task.requeued'
  | 'task.waiting' | 'task.input_required' | 'task.resumed'
  | 'task.unblocked'
  | 'task.rate_limited';

/** Stores take any event type (they never interpret it); the engine's writers are typed. */
export interface NewEvent {
  type: string;
  taskId: string | null;
  agent: string | null;
  replicaId: string | null;
  assignmentId: string | null;
  data: Record<string, Json>;
}

export interface EventRecord extends NewEvent {
  seq: number;
  at: Millis;
}

/** Fields of a task a transition may change. Absent means unchanged. */
export interface TaskPatch {
  status?: TaskStatus;
  assignmentId?: string | null;
  attempt?: number;
  maxAttempts?: number;
  runAt?: Millis;
  result?: Json | null;
  error?: TaskErrorInfo | null;
  finishedAt?: Millis | null;
  cancelRequestedAt?: Millis | null;
  waitingFor?: string[] | null;
  inputRequest?: InputRequestRecord | null;
  /** Stored on the hot row beside `inputRequest` so the reaper finds expired requests by index. */
  inputExpiresAt?: Millis | null;
  resumed?: Resumption | null;
  updatedAt: Millis;
  /** The input an unblocked task's template built (stored in the payload). */
  input?: Json;
  dependencies?: DependencyOutcome[] | null;
}

export interface AssignmentPatch {
  status?: AssignmentStatus;
  startedAt?: Millis;
  finishedAt?: Millis;
  leaseExpiresAt?: Millis;
  deadlineAt?: Millis;
  error?: TaskErrorInfo | null;
  /**
   * False for an attempt that is undone rather than ended (its dispatch never reached the
   * replica): it is kept in the history but not counted as a failure (agent statistics).
   */
  counted?: boolean;
}

/**
 * What a transition is. Each kind has fixed traits (core/transition-kinds.ts): whether it
 * wakes the dispatcher, whether the attempt it ends counts, whether it must be durable
 * before it is acknowledged. Stores and the engine act on these, never on field shapes.
 */
export type TransitionKind =
  | 'dispatch' | 'start' | 'complete' | 'retry' | 'fail' | 'dispatch_failed'
  | 'cancel' | 'cancel_request' | 'cancel_ack' | 'requeue' | 'assign' | 'operator_fail'
  | 'wait' | 'ask_input' | 'resume' | 'answer' | 'input_timeout'
  | 'unblock'
  | 'dependency_failed'
  | 'rate_limited';

/**
 * One decision of the state machine, as guarded writes. A store applies all of it or none
 * of it; if any guard fails it reports which one and changes nothing.
 */
export interface Transition {
  kind: TransitionKind;
  /** It frees a slot or makes a task dispatchable: the dispatcher runs a pass after it commits. */
  wakesDispatcher: boolean;
  /** It makes the task pending again (a retry, an undone dispatch, a requeue), not only frees a slot. */
  queuesTask: boolean;
  /**
   * Whether the attempt this transition creates or ends counts against the task's attempts
   * and the agent's statistics (false only for an undone dispatch).
   */
  countsAsAttempt: boolean;
  /** Flushed before it is acknowledged (false: a relaxed write; see the glossary). */
  durable: boolean;
  /** The task ends (completed, failed or cancelled): a parent waiting for it may be resumed. */
  endsTask: boolean;
  taskId: string;
  /** The task's parent (null for a root): whom a transition with `endsTask` may wake. */
  parentId: string | null;
  /** The task has dependents (its head's hasDependents): a transition with `endsTask` looks at them. */
  hasDependents?: boolean;
  /** Guard: the task is still in this status ... */
  fromStatus: TaskStatus;
  /** ... and its live assignment is still this one (null: it has none). */
  expectAssignmentId: string | null;
  set: TaskPatch;
  /** A new attempt to record (dispatch). */
  assignmentInsert?: AssignmentRecord;
  /** Guarded update of an existing assignment: applies only while it is in `fromStatuses`. */
  assignmentUpdate?: { id: string; fromStatuses: readonly AssignmentStatus[]; set: AssignmentPatch };
  /** Take a slot on a replica (guard: replica live and inFlight < maxConcurrency) and on a key (guard: under limit). */
  slotAcquire?: {
    replicaId: string; concurrencyKey: string | null; concurrencyLimit: number | null; at: Millis;
    /**
     * Guards: live assignments across the fleet stay under `fleet`, and across the replicas of
     * `agent.name` under `agent.limit` (the fleet and agent caps). Absent: no cap applies.
     */
    caps?: { fleet: number | null; agent: { name: string; limit: number } | null };
  };
  /** Give the slot back; `outcome` feeds the replica's reliability counters. */
  slotRelease?: { replicaId: string; concurrencyKey: string | null; outcome: 'completed' | 'failed' | null };
  events: Array<NewEvent & { type: TransitionEventType }>;
}

export type ConflictReason = 'task' | 'assignment' | 'replica_slot' | 'concurrency_key'
  | 'fleet_cap' | 'agent_cap';

export type TransitionResult =
  | {
    ok: true; events: EventRecord[];
    /**
     * A transition with `endsTask` whose task is marked as having dependents, as the row
     * written says (read back by the same statement): the head it was decided from may predate
     * the mark (a dependent submitted while it ran). Absent: not marked, or not ending.
     */
    hasDependents?: true;
  }
  | { ok: false; conflict: ConflictReason };
