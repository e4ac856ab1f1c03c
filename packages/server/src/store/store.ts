// The store interface. A store persists records and performs guarded writes; it never
// decides a transition (that is core/task-machine.ts). Every method takes one params object.
// Database differences are capability flags, never `if (postgres)` in callers.
//
// Events: every method that appends events returns them (with their sequence numbers when
// capabilities.eventSeqsOnWrite), so the engine can announce exactly what was committed to
// live subscribers.
//
// Durability contract (docs/decisions.md 41): when a mutating method's promise resolves, the
// write is committed. It is durable (flushed: it survives a power cut, with the default
// settings) unless it is relaxed: transitions whose `durable` is false (claims, starts, undone
// claims), heartbeats, replica touches and events appended with `durable: false` commit
// without waiting for the flush; they survive a process kill, and the next durable commit
// flushes them too. Stores may batch concurrent writes into one commit (group commit);
// callers do not see it. A batch holding one durable write is flushed as a whole.

import type {
  AgentRecord, AssignmentRecord, EventRecord, Json, Millis, NewEvent, NewTask, ReplicaHealth, ReplicaRecord, ReplicaStatus,
  TaskHead, TaskRecord, TaskStatus, Transition, TransitionResult,
} from '../core/types.ts';
import type { StoreCounters } from './counters.ts';
import type { TaskVisibility } from '../core/permissions.ts';
import type { DispatchPosition } from '../core/routing.ts';
import type { SlaMark } from '../core/sla.ts';
import type { ScheduleFire, ScheduleRecord } from '../core/schedules.ts';
import type { RateLimitState } from '../core/rate-limits.ts';
import type { UsageGroupBy, UsageRecord, UsageSum } from '../core/usage.ts';
import type { NewToolCall, ToolCallListParams, ToolCallRecord, ToolDomainHealth, ToolDomainRecord, ToolDomainSpec } from '../core/tool-domains.ts';

export type { StoreCounters } from './counters.ts';

/** What a worker states when it registers; counters and status are the store's (status becomes live). */
/** Health is reported by heartbeats (replicaSetHealth), not at registration. */
export type NewReplica = Omit<ReplicaRecord, 'inFlight' | 'completed' | 'failed' | 'lastAssignedAt' | 'status' | 'health' | 'healthDetail' | 'healthAt'>;

export interface StoreCapabilities {
  /** Several server processes may share this store safely. */
  multiNode: boolean;
  /**
   * The store tells every server process sharing it what changed (e.g. LISTEN/NOTIFY), via
   * `signalSubscribe`. When true, live events reach the bus through the store (in sequence
   * order, from every node) rather than being published by the process that wrote them.
   */
  crossNodeNotify: boolean;
  /**
   * The events a write returns carry their seqs. False for a store that numbers events after
   * they commit, so that concurrent writers need no common lock (PostgreSQL, decision 47):
   * they carry seq 0 there, and eventList/eventLastSeq first number everything committed
   * before the call. Such a store must have crossNodeNotify (the bus is fed from eventList).
   */
  eventSeqsOnWrite: boolean;
}

/**
 * What another (or this) server process changed, as announced by a multi-node store.
 * - wake: there may be new dispatchable work (submit, retry, requeue, replica registered);
 * - capacity: slots were freed and nothing became pending (a completion, a final failure);
 * - events: new events were committed (read them with eventList after your last seq);
 * - agents: the agent registry changed;
 * - reconnected: the signal channel was re-established after a loss; anything may have been
 *   missed, so act as if all of the above arrived.
 * `own`: the change was written by this store instance (through one of its own connections);
 * the process that made it acted on it when the write returned, so only the event relay
 * still needs it (a store may not know, and then leaves it out).
 */
export type StoreSignal =
  | { kind: 'wake' | 'capacity' | 'events' | 'agents'; own?: boolean }
  | { kind: 'reconnected' };

export type TaskCreateResult =
  /**
   * `handOff`: the outcome of the task's `dispatch` transition, applied in the same commit
   * right after the task was created (null when none was given). A conflict there leaves the
   * task created and pending.
   */
  | { created: true; task: TaskRecord; events: EventRecord[]; handOff: TransitionResult | null }
  /** An idempotency key matched an existing task: nothing was written. */
  | { created: false; task: TaskRecord };

export interface TaskToCreate {
  task: NewTask;
  events: NewEvent[];
  /**
   * A dispatch of the new task decided by the engine (direct hand-off), applied right after
   * the insert in the same transaction: created and dispatched in one commit. Not applied when
   * the task was not created (its idempotency key matched).
   */
  dispatch?: Transition;
}

export interface TaskListParams {
  statuses?: TaskStatus[];
  agent?: string;
  priority?: number;
  parentId?: string;
  /** Every task of one tree (indexed). */
  rootId?: string;
  /** Tasks at this depth (a root is 1). Not indexed: narrow it with `rootId` or another filter when you can. */
  depth?: number;
  /** Tasks whose tree this principal owns. Not indexed (see the migration): narrow it with another filter when you can. */
  ownerId?: string;
  /**
   * Tasks in this SLA state as the sweep wrote it (indexed); `at_risk` only while still open
   * (one that ended in time since is not at risk, though not yet settled as met).
   */
  slaState?: 'at_risk' | 'violated';
  /**
   * Newest first, unless `oldestFirst`: then in submission order, so that in one tree a parent
   * always comes before its children (a tree read page by page is connected at every page).
   * `cursor` is opaque, from the previous page's `nextCursor` of a listing in the same order.
   */
  limit: number;
  cursor?: string | null;
  oldestFirst?: boolean;
}

export interface TaskCandidatesParams {
  /** Tasks addressed to these agents by name ... */
  agents: string[];
  /** ... plus tasks routed by capability (agent = null), when true. */
  includeCapabilityRouted: boolean;
  now: Millis;
  limit: number;
  /** Keyset position: return only tasks after this one in dispatch order (core/routing.ts compareDispatchOrder). */
  after?: DispatchPosition | null;
}

/** One agent's figures over a window (GET /reports/delegation; wire DelegationRow with epoch times). */
export interface DelegationFigures {
  agent: string;
  /** Attempts dispatched in the window. */
  assigned: number;
  /** Attempts that completed, or failed (failed, timed_out, lost; counted ones), in the window. */
  completed: number;
  failed: number;
  /** Attempts live now. */
  inFlight: number;
  /** Nearest-rank median and p95 of (finishedAt - dispatchedAt) over the completed attempts; null without any. */
  medianMs: number | null;
  p95Ms: number | null;
  /** Tasks with an SLA terminal in the window by their deadline; tasks whose deadline passed in the window unmet. */
  slaMet: number;
  slaViolated: number;
}

export interface DueAssignment {
  task: TaskHead;
  assignment: AssignmentRecord;
}

export interface HeartbeatParams {
  assignmentId: string;
  replicaId: string;
  leaseExpiresAt: Millis;
  progress?: { percent: number; message: string | null; at: Millis } | null;
}

export type HeartbeatResult =
  | { ok: true; cancelRequested: boolean; assignment: AssignmentRecord }
  /** The assignment is not live, or not held by that replica: the worker should stop. */
  | { ok: false; assignment: AssignmentRecord | null };

export interface AgentStats {
  byStatus: Record<TaskStatus, number>;
  /** Execution times (finishedAt - startedAt) of the most recent completed attempts, newest first. */
  recentDurationsMs: number[];
  attemptsCompleted: number;
  attemptsFailed: number;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: string;
  /** SHA-256 of the secret, hex. The secret itself is never stored. */
  hash: string;
  createdAt: Millis;
  lastUsedAt: Millis | null;
  /** After this the key no longer authenticates; null: never expires. */
  expiresAt: Millis | null;
  /** Set once, by apiKeyRevoke; null while the key is not revoked. */
  revokedAt: Millis | null;
  /** The principal id that created the key (null for keys from before this was recorded). */
  createdBy: string | null;
  /** For role `agent`: the agent names the key may serve; null for every other role. */
  agents: string[] | null;
}

/** A signed token (identified by its `jti`) that must no longer be accepted. */
export interface TokenRevocation {
  jti: string;
  revokedAt: Millis;
  /** When the token expires anyway: past it, the revocation can be pruned. */
  expiresAt: Millis;
}

export type AuditOutcome = 'allowed' | 'denied' | 'failed';

/** One entry of the append-only audit log. */
export interface AuditRecord {
  /** Assigned by the store, increasing in append order. */
  seq: number;
  at: Millis;
  principalId: string | null;
  principalName: string | null;
  role: string | null;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  /** The HTTP status answered. */
  status: number;
  requestId: string | null;
  source: string | null;
  details: Json | null;
}

export type NewAuditRecord = Omit<AuditRecord, 'seq'>;

export interface AuditListParams {
  limit: number;
  /** Keyset position: only entries with a seq below this one (the previous page's `nextBefore`). */
  before?: number;
  principalId?: string;
  action?: string;
  outcome?: AuditOutcome;
  /** Entries at or after this time ... */
  since?: Millis;
  /** ... and before this one (exclusive). */
  until?: Millis;
}

export interface Store {
  readonly capabilities: StoreCapabilities;
  /** Applies pending numbered migrations. Safe to call on every start. */
  migrate(): Promise<void>;
  /** Resolves when the database answers; rejects otherwise (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * The statements, commits and round trips this store has issued since it opened (see
   * counters.ts), as a copy: subtract two snapshots to cost a piece of work. Synchronous and
   * free; never touches the database.
   */
  counterSnapshot(): StoreCounters;

  // -- tasks --------------------------------------------------------------------------
  /**
   * Creates tasks with their events (task.created) in one commit, each then dispatched if it
   * comes with a `dispatch` (see TaskToCreate). A task whose
   * idempotencyKey already exists is not written: its existing record is returned.
   * A new task has no suspension: its `waitingFor`, `inputRequest` and `resumed` are not
   * written (only transitions set them) and read back as null; except a `blocked` one, whose
   * `waitingFor` (its dependencies) is written. A task with `dependsOn` gets its dependency
   * edges, and each of its dependencies `hasDependents`, in the same commit.
   * A task addressed to an agent that does not exist rejects the whole call with
   * FlotillaError UNKNOWN_AGENT, checked in the same write, so a concurrent agentDelete can
   * never leave a task for an agent that is gone.
   */
  taskCreate(params: { tasks: TaskToCreate[] }): Promise<TaskCreateResult[]>;
  taskGet(params: { id: string }): Promise<TaskRecord | null>;
  /** The tasks that exist among `ids`, in no particular order (one read for many). */
  taskGetMany(params: { ids: string[] }): Promise<TaskRecord[]>;
  taskList(params: TaskListParams): Promise<{ items: TaskRecord[]; nextCursor: string | null }>;
  /**
   * Pending tasks whose runAt has come, in dispatch order: priority desc, then SLA deadline asc
   * (tasks without one after those with one), then seq asc.
   */
  taskCandidates(params: TaskCandidatesParams): Promise<TaskHead[]>;
  /** Earliest runAt after `now` among pending tasks (delayed or backing off), or null. */
  taskNextRunAt(params: { now: Millis }): Promise<Millis | null>;
  /**
   * Waiting tasks whose awaited children are all terminal (or no longer exist), oldest first:
   * the ones the maintenance sweep resumes when the resume right after a child ended was lost.
   */
  taskListResumable(params: { limit: number }): Promise<TaskRecord[]>;
  /**
   * Blocked tasks that depend on any of `ids` (by the dependency edges' index), oldest first:
   * the ones to look at right after those tasks ended (engine/unblocker.ts).
   */
  taskListDependents(params: { ids: string[]; limit: number }): Promise<TaskRecord[]>;
  /**
   * Blocked tasks that can be decided (core/dependencies.ts decideUnblock): every dependency
   * ended or no longer exists, or, under policy `fail`, one failed, was cancelled or is gone;
   * oldest first. The maintenance sweep's one query, covering a look that never happened.
   */
  taskListUnblockable(params: { limit: number }): Promise<TaskRecord[]>;
  /** Tasks in input_required whose request expired at or before `now`, soonest first. */
  taskListInputExpired(params: { now: Millis; limit: number }): Promise<TaskRecord[]>;
  /** Tasks whose SLA check time (slaCheckAt) is at or before `now`, soonest first (indexed). */
  taskListSlaDue(params: { now: Millis; limit: number }): Promise<TaskRecord[]>;
  /**
   * Applies each SLA mark (core/sla.ts) as one guarded write: the task's SLA state and check
   * time change, and the mark's event is appended, only while the task is still in the mark's
   * `fromState` and `fromStatus`; in one commit for all. `applied[i]` says whether mark i
   * applied; `events` are those of the applied marks. Relaxed (redone by the next sweep).
   */
  taskSlaMark(params: { marks: SlaMark[] }): Promise<{ applied: boolean[]; events: EventRecord[] }>;
  /**
   * Per registered agent, its figures from `since` to `now` (DelegationFigures), in set
   * queries, ordered by agent name. A task routed by capability counts for the agent of its
   * latest attempt (none: for no agent).
   */
  reportDelegation(params: { since: Millis; now: Millis }): Promise<DelegationFigures[]>;
  /**
   * Applies each transition atomically and independently: one whose guard fails changes
   * nothing and is reported as a conflict; the others still apply. Results are in order.
   */
  taskTransition(params: { transitions: Transition[] }): Promise<TransitionResult[]>;
  taskCountByStatus(params: { agent?: string }): Promise<Record<TaskStatus, number>>;
  /**
   * Deletes terminal tasks finished before `finishedBefore`, with their assignments and
   * events, at most `limit` tasks per call. Returns how many tasks were deleted.
   */
  taskPrune(params: { finishedBefore: Millis; limit: number }): Promise<number>;

  // -- assignments --------------------------------------------------------------------
  assignmentGet(params: { id: string }): Promise<AssignmentRecord | null>;
  assignmentListByTask(params: { taskId: string }): Promise<AssignmentRecord[]>;
  /**
   * The latest attempt of each task among `taskIds` that has one (its live assignment, or the
   * last one it had), in no particular order: one read for a whole page of a tree.
   */
  assignmentListLatest(params: { taskIds: string[] }): Promise<AssignmentRecord[]>;
  /** Live assignments held by a replica. */
  assignmentListByReplica(params: { replicaId: string }): Promise<DueAssignment[]>;
  /**
   * Live assignments that need the reaper: lease lapsed, deadline passed, or cancellation
   * requested longer than `cancelGraceMs` ago.
   */
  assignmentListDue(params: { now: Millis; cancelGraceMs: Millis; limit: number }): Promise<DueAssignment[]>;
  /** Renews the lease (and records progress) while the assignment is live and held by that replica. */
  assignmentHeartbeat(params: HeartbeatParams): Promise<HeartbeatResult>;
  agentStats(params: { agent: string; sample: number }): Promise<AgentStats>;

  // -- agents -------------------------------------------------------------------------
  /** Rejects with FlotillaError AGENT_EXISTS if the name is taken. */
  agentCreate(params: { agent: AgentRecord; event: NewEvent }): Promise<EventRecord[]>;
  /** Creates or replaces (config file declarations). */
  agentUpsert(params: { agent: AgentRecord; event: NewEvent }): Promise<EventRecord[]>;
  agentGet(params: { name: string }): Promise<AgentRecord | null>;
  agentList(): Promise<AgentRecord[]>;
  /** Replaces the record; `updated` is false (and no event written) if it does not exist. */
  agentUpdate(params: { agent: AgentRecord; event: NewEvent }): Promise<{ updated: boolean; events: EventRecord[] }>;
  /**
   * Deletes the agent unless tasks addressed to it are still pending, dispatched or running
   * (or blocked: they will be pending)
   * (checked in the same guarded statement, so a concurrent submit cannot strand a task).
   */
  agentDelete(params: { name: string; event: NewEvent }): Promise<{ outcome: 'deleted' | 'not_found' | 'in_use'; events: EventRecord[] }>;

  /**
   * Sets or clears one of an agent's operator controls: `paused` (no new dispatches) or
   * `overloaded` (what the maintenance sweep last found), with its event, guarded: `changed` is
   * false (and no event written) when it was already so, `found` false when there is no such
   * agent. Nothing else writes these columns (an update or re-declaration keeps them).
   */
  agentSetControl(params: { name: string; control: 'paused' | 'overloaded'; at: Millis | null; event: NewEvent }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }>;
  /** Per agent (null: capability-routed), the pending tasks due by `now` and the earliest runAt among them. */
  agentQueueStats(params: { now: Millis }): Promise<Array<{ agent: string | null; pending: number; oldestRunAt: Millis }>>;

  // -- replicas -----------------------------------------------------------------------
  /**
   * Registers a replica, or re-registers a known id (a worker reconnecting): agent, site,
   * maxConcurrency and lastSeenAt are refreshed, status becomes live (a draining one stays
   * draining: an operator's drain outlasts reconnects), inFlight is kept.
   */
  replicaRegister(params: { replica: NewReplica; event: NewEvent }): Promise<{ replica: ReplicaRecord; events: EventRecord[] }>;
  replicaGet(params: { id: string }): Promise<ReplicaRecord | null>;
  replicaList(params: { agent?: string; statuses?: ReplicaStatus[] }): Promise<ReplicaRecord[]>;
  /** Records that replicas were seen at `at` (batched liveness). */
  replicaTouch(params: { ids: string[]; at: Millis }): Promise<void>;
  /** Guarded status change; `changed` is false (and no event written) when the replica was not in one of `from`. */
  replicaSetStatus(params: { id: string; from: ReplicaStatus[]; to: ReplicaStatus; event: NewEvent }): Promise<{ changed: boolean; events: EventRecord[] }>;
  /**
   * Records what a replica's heartbeat says of its health (and its detail, always); the event
   * is written, and `changed` true, only when the health differs from the stored one.
   */
  replicaSetHealth(params: { id: string; health: ReplicaHealth; detail: Record<string, Json> | null; at: Millis; event: NewEvent }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }>;
  /** Live or draining replicas not seen since `seenBefore`. */
  replicaListStale(params: { seenBefore: Millis }): Promise<ReplicaRecord[]>;

  // -- concurrency keys ---------------------------------------------------------------
  /** Live assignments per concurrency key (missing keys have none). */
  concurrencyKeyInFlight(params: { keys: string[] }): Promise<Map<string, number>>;

  // -- events -------------------------------------------------------------------------
  /** `durable: false` appends without waiting for the flush (progress events). */
  eventAppend(params: { events: NewEvent[]; durable?: boolean }): Promise<EventRecord[]>;
  /** Events with seq > after, ascending, optionally for one task. */
  eventList(params: { after: number; limit: number; taskId?: string }): Promise<EventRecord[]>;

  /** The highest event seq committed so far (0 when there is none). */
  eventLastSeq(): Promise<number>;

  // -- coordination between server processes -----------------------------------------------
  /**
   * Subscribes to signals from every server process sharing the database (see StoreSignal).
   * A store without `crossNodeNotify` never calls the listener. Resolves to an unsubscribe.
   */
  signalSubscribe(params: { listener: (signal: StoreSignal) => void }): Promise<() => Promise<void>>;
  /**
   * Periodic maintenance (lease reaper, retention) runs on one process at a time. Resolves
   * true while this process holds `name`'s leadership, acquiring it if it is free; cheap
   * enough to call before every sweep. Leadership is lost when the process (or its database
   * session) dies, so another process takes over on its next call. A single-node store
   * always answers true.
   */
  leadershipAcquire(params: { name: string }): Promise<boolean>;

  // -- auth ---------------------------------------------------------------------------
  apiKeyCreate(params: { key: ApiKeyRecord }): Promise<void>;
  /** Revoked and expired keys are returned too: whether a key still authenticates is the caller's decision. */
  apiKeyFindByHash(params: { hash: string }): Promise<ApiKeyRecord | null>;
  apiKeyGet(params: { id: string }): Promise<ApiKeyRecord | null>;
  /** Ordered by createdAt, then id. Revoked keys only when asked for; expired keys always. */
  apiKeyList(params: { includeRevoked?: boolean }): Promise<ApiKeyRecord[]>;
  /** Guarded: `revoked` is false (nothing written) when the key is unknown or already revoked. */
  apiKeyRevoke(params: { id: string; at: Millis }): Promise<{ revoked: boolean }>;
  apiKeyCount(): Promise<number>;
  apiKeyTouch(params: { id: string; at: Millis }): Promise<void>;

  /**
   * Records that the token `jti` is revoked. Idempotent: revoking it again changes nothing
   * (`revoked` is false) and the first revocation's times are kept.
   */
  tokenRevoke(params: { jti: string; at: Millis; expiresAt: Millis }): Promise<{ revoked: boolean }>;
  /**
   * Revocations with revokedAt >= since, by revokedAt then jti. Every server process polls this
   * to learn of revocations made by the others. `at` is the revoking process's clock, and a
   * revocation may commit after one stamped later: a poller should overlap its `since` with
   * the previous poll by a margin, which the idempotent records make harmless.
   */
  tokenRevocationList(params: { since: Millis }): Promise<TokenRevocation[]>;
  /** Deletes revocations of tokens that expired before `expiredBefore`; returns how many. */
  tokenRevocationPrune(params: { expiredBefore: Millis }): Promise<number>;

  /**
   * Stores `value` under `name` unless a value is stored already, and returns the stored one,
   * so every process sharing the database ends up with the same secret.
   */
  secretEnsure(params: { name: string; value: string; at: Millis }): Promise<string>;

  // -- audit log (append-only: entries are never updated, and deleted only by retention) ---
  /** Appends the entries in order, in one commit; returns them with their seqs. */
  auditAppend(params: { entries: NewAuditRecord[] }): Promise<AuditRecord[]>;
  /** Newest first (seq descending); every filter given must match. `nextBefore` is null on the last page. */
  auditList(params: AuditListParams): Promise<{ items: AuditRecord[]; nextBefore: number | null }>;
  /** Retention: deletes entries older than `before`, oldest first, at most `limit`; returns how many. */
  auditPrune(params: { before: Millis; limit: number }): Promise<number>;

  // -- A2A attempts (engine/a2a/, decisions.md 75) ------------------------------------------
  /**
   * Records the A2A task an attempt created on its remote agent (and its context), guarded:
   * only while the attempt is live and held by `replicaId`, and only once (a second call with
   * another remote task id changes nothing). Durable: it is what keeps a restarted node from
   * sending the message again. Returns whether the attempt now names `remoteTaskId`.
   */
  assignmentSetRemote(params: { assignmentId: string; replicaId: string; remoteTaskId: string; remoteContextId: string | null }): Promise<boolean>;
  /** The attempts of a task that recorded a remote A2A task, in attempt order. */
  assignmentRemoteList(params: { taskId: string }): Promise<RemoteAttempt[]>;
  // -- tool domains (issue 15; records in core/tool-domains.ts) ------------------------------
  /**
   * Creates or replaces a domain's declaration (its spec, source and updatedAt; createdAt only
   * on create). Its health is kept when it is replaced: a re-declaration at start or a PUT
   * with the same name does not make a down server look unknown.
   */
  toolDomainUpsert(params: { name: string; spec: ToolDomainSpec; source: 'config' | 'api'; at: Millis }): Promise<{ created: boolean; domain: ToolDomainRecord }>;
  toolDomainGet(params: { name: string }): Promise<ToolDomainRecord | null>;
  /** Ordered by name. */
  toolDomainList(): Promise<ToolDomainRecord[]>;
  toolDomainDelete(params: { name: string }): Promise<{ deleted: boolean }>;
  /**
   * Records a health check's result; the event is written, and `changed` true, only when the
   * status differs from the stored one (guarded in the same write, so two checkers racing
   * write one event per change).
   */
  // `updatedAt`: write only while the declaration is still the one checked (its updated_at);
  // a check of a replaced spec is then found: false and writes nothing.
  toolDomainSetHealth(params: { name: string; health: ToolDomainHealth; event: NewEvent; updatedAt?: Millis }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }>;
  /** Appends the calls in order, in one commit (not flushed before it resolves: the audit of calls is relaxed). */
  toolCallAppend(params: { calls: NewToolCall[] }): Promise<void>;
  /** Newest first (seq descending); every filter given must match. `nextBefore` is null on the last page. */
  toolCallList(params: ToolCallListParams): Promise<{ items: ToolCallRecord[]; nextBefore: number | null }>;
  /** Retention: deletes calls older than `before`, oldest first, at most `limit`; returns how many. */
  toolCallPrune(params: { before: Millis; limit: number }): Promise<number>;
  // -- A2A push notifications (decisions.md 82-83) -----------------------------------------
  /**
   * Creates or replaces the config (taskId, id), in one commit; a replaced one starts again
   * with lastState null and its queued deliveries (copies of the old URL and credentials) are
   * deleted. Refused, changing nothing: a replace when `ownerOnly` and the stored config's
   * ownerId differs (`not_owner`); a new config when the task has `maxPerTask` already
   * (`limit`). Durable.
   */
  a2aPushConfigSave(params: { config: A2aPushConfigRecord; ownerOnly?: boolean; maxPerTask?: number }): Promise<A2aPushConfigSaveResult>;
  a2aPushConfigGet(params: { taskId: string; id: string }): Promise<A2aPushConfigRecord | null>;
  /** The configs of these tasks (null: of every task), by taskId, createdAt, id. */
  a2aPushConfigList(params: { taskIds: string[] | null }): Promise<A2aPushConfigRecord[]>;
  /**
   * Deletes the config and its queued deliveries, in one commit (a deleted config sends
   * nothing more); with `ownerId`, only a config of that owner.
   */
  a2aPushConfigDelete(params: { taskId: string; id: string; ownerId?: string | null }): Promise<{ deleted: boolean }>;
  /** Every task's configs a page at a time, by (taskId, id) in byte order, after `after` (the feed's full pass). */
  a2aPushConfigPage(params: { after: { taskId: string; id: string } | null; limit: number }): Promise<A2aPushConfigRecord[]>;
  /**
   * Queues notifications, in one commit. Each is guarded on its config's lastState still being
   * `expectedState` (so two feeds racing queue it once); one whose guard fails is skipped. A
   * `final` one deletes its config. Returns how many were queued.
   */
  a2aPushEnqueue(params: { items: A2aPushEnqueueItem[] }): Promise<number>;
  /**
   * Up to `limit` deliveries due at `now`, each the oldest of its config (a later one waits
   * while an earlier one is retried), by id; and when the earliest delivery not due yet is
   * (null: none), so a sender knows when to look again.
   */
  a2aPushDue(params: { now: Millis; limit: number }): Promise<{ deliveries: A2aPushDeliveryRecord[]; nextAt: Millis | null }>;
  /** Removes a delivery (sent, or given up). */
  a2aPushDone(params: { id: number }): Promise<void>;
  a2aPushRetry(params: { id: number; attempts: number; nextAt: Millis; error: string }): Promise<void>;
  // -- webhooks (docs/webhooks.md, decisions 109-112; records below) -------------------------
  /** Durable. Rejects nothing: the id is new (a UUID). */
  webhookCreate(params: { webhook: WebhookRecord }): Promise<void>;
  webhookGet(params: { id: string }): Promise<WebhookRecord | null>;
  /** By createdAt, id; with ownerId, only that owner's. */
  webhookList(params: { ownerId?: string }): Promise<WebhookRecord[]>;
  /**
   * Replaces what a patch or a rotation may change (url, events, agents, rootId, enabled,
   * description, secret, updatedAt); the owner, visibility, fromSeq and createdAt never change.
   * Guarded on the stored updatedAt still being `ifUpdatedAt` (the record the change was made
   * from: a patch and a rotation racing must not undo each other). Durable. `updated` is false
   * when there is no such subscription or it changed since.
   */
  webhookUpdate(params: { webhook: WebhookRecord; ifUpdatedAt: Millis }): Promise<{ updated: boolean }>;
  /** Deletes the subscription and its deliveries in one commit (a deleted one is sent nothing more). Durable. */
  webhookDelete(params: { id: string }): Promise<{ deleted: boolean }>;
  /** The seq of the last event the feed has queued deliveries for (the cursor; migration 22 starts it at the then last event). */
  webhookFeedCursor(): Promise<number>;
  /**
   * The feed's step, in one commit, guarded on the cursor still being `from` (two feeds racing
   * queue once: `advanced` false, nothing written): queues `deliveries` (one per subscription
   * and event: a second with the same pair is skipped; none for a subscription that no longer
   * exists, other than NOTIFY_SUBSCRIPTION), records the notify URLs of tasks just
   * created, deletes those of `notified` tasks, and moves the cursor to `to`. Relaxed: a lost
   * step is redone from the older cursor (deliveries are at least once).
   */
  webhookFeedAdvance(params: { from: number; to: number; deliveries: NewWebhookDelivery[]; notifies: WebhookNotifyRecord[]; notified: string[] }): Promise<{ advanced: boolean }>;
  /** The notify URLs recorded for these tasks. */
  webhookNotifyList(params: { taskIds: string[] }): Promise<WebhookNotifyRecord[]>;
  /**
   * Up to `limit` pending deliveries due at `now`, by seq, each the oldest pending one of its
   * subscription and task (a later one waits while an earlier one is retried; a failed one
   * does not hold the others back), none of a disabled subscription; with the subscription's
   * URL and sealed secret. And when the earliest pending delivery not due yet is (null: none).
   */
  webhookDeliveryDue(params: { now: Millis; limit: number }): Promise<{ deliveries: WebhookDueDelivery[]; nextAt: Millis | null }>;
  /** Removes a delivery (sent). Relaxed. */
  webhookDeliveryDone(params: { seq: number }): Promise<void>;
  /** Records a failed attempt: due again at `nextAt`, or parked (`failed`) when `park`. Relaxed. */
  webhookDeliveryRetry(params: { seq: number; attempts: number; nextAt: Millis; error: string; park: boolean }): Promise<void>;
  /** A subscription's deliveries in one status, by seq. */
  webhookDeliveryList(params: { subscriptionId: string; status: WebhookDeliveryStatus; limit: number }): Promise<WebhookDeliveryRecord[]>;
  /**
   * Makes failed deliveries of the subscription pending again (attempts 0, due at `now`): the
   * one of `eventSeq`, or all. Guarded on `failed`. Durable (an operator's action). Returns how many.
   */
  webhookDeliveryReplay(params: { subscriptionId: string; eventSeq?: number; now: Millis }): Promise<number>;

  // -- schedules (issue 16, core/schedules.ts; decisions.md 98-100) ------------------------
  /** Creates the schedule; `created` is false (nothing written) when the name is taken. Durable. */
  scheduleCreate(params: { schedule: ScheduleRecord }): Promise<{ created: boolean }>;
  scheduleGet(params: { name: string }): Promise<ScheduleRecord | null>;
  /** Ordered by name (byte order). */
  scheduleList(): Promise<ScheduleRecord[]>;
  /**
   * Replaces what an update changes (definition, source, owner, paused, pausedReason,
   * nextFireAt, updatedAt), guarded: only while its updatedAt is still `expectedUpdatedAt`
   * (`updated` false otherwise, nothing written). The last firing is kept. Durable.
   */
  scheduleUpdate(params: { expectedUpdatedAt: Millis; schedule: ScheduleRecord }): Promise<{ updated: boolean }>;
  /**
   * A firing's compare-and-set: sets nextFireAt (and, with `fire`, the last firing) only while
   * the schedule is unpaused and its nextFireAt is still `expectedNextFireAt`, so two nodes
   * (or a repeated sweep) advance it once. Never changes updatedAt. Durable.
   */
  scheduleAdvance(params: { name: string; expectedNextFireAt: Millis; nextFireAt: Millis | null; fire: ScheduleFire | null }): Promise<{ advanced: boolean }>;
  scheduleDelete(params: { name: string }): Promise<{ deleted: boolean }>;
  /** Unpaused schedules whose nextFireAt is at or before `now`, soonest first, at most `limit` (indexed). */
  scheduleListDue(params: { now: Millis; limit: number }): Promise<ScheduleRecord[]>;
  /** The earliest nextFireAt among unpaused schedules, or null: when the maintenance node's timer is armed for. */
  scheduleNextFireAt(): Promise<Millis | null>;
  // -- cached results (issue 16, core/result-cache.ts; decisions.md 101-102) -----------------
  /**
   * The latest completed task (not itself a copy) with this agent, cacheKey and cacheScope
   * that finished at or after `finishedAfter`, or null (indexed: tasks_cache_done). Besides
   * this, taskCreate never creates a second open run of a key: a task with a cacheKey whose
   * (agent, cacheKey, cacheScope, parentId) has a run not yet finished is answered with that run
   * (`created: false`), whichever store call, on whichever node, came first.
   */
  taskCacheLookup(params: { agent: string; cacheKey: string; scope: string; finishedAfter: Millis }): Promise<TaskRecord | null>;
  /** The open run (not finished, not a copy) of (agent, cacheKey, scope) under this parent (null: a root task), or null: what a requeue of a failed run would collide with. */
  taskCacheOpenRun(params: { agent: string; cacheKey: string; scope: string; parentId: string | null }): Promise<TaskRecord | null>;

  // -- provider rate limits and usage (issue 16, docs/flow-control.md, docs/usage.md) ------------
  /** Declares (or replaces) a key's limits; its pause and its log are kept. */
  rateLimitPut(params: { key: string; rpm: number | null; tpm: number | null; source: 'config' | 'api'; at: Millis }): Promise<{ created: boolean }>;
  /** Removes a key's limits (and pause): its tasks dispatch unlimited. */
  rateLimitDelete(params: { key: string }): Promise<{ deleted: boolean }>;
  /** The keys (all, or these), by key, each with its window at `now` (the last minute of its log). */
  rateLimitList(params: { keys?: string[]; now: Millis }): Promise<RateLimitState[]>;
  /**
   * Admits the longest prefix of `requests` the key has room for at `now` (core/rate-limits.ts
   * `admit`, against the key's limits, pause and window as stored now, under the key's lock on
   * a multi-node store, so that every node together never admits more than the limit), and
   * logs each admitted one under its holder (the assignment it is for). A key without a row is
   * not limited: everything is admitted and nothing logged. Relaxed.
   */
  rateLimitTake(params: { key: string; now: Millis; requests: Array<{ holder: string; tokens: number }> }): Promise<{ taken: number }>;
  /** Gives admitted requests back (their claims did not commit). Relaxed. */
  rateLimitGiveBack(params: { holders: string[] }): Promise<void>;
  /** Pauses a key until `until` (a later pause wins; creates a pause-only row for an undeclared key). Durable. */
  rateLimitPause(params: { key: string; until: Millis; at: Millis }): Promise<void>;
  /** Removes log rows older than `before`, oldest first, at most `limit`; how many went. */
  rateLogPrune(params: { before: Millis; limit: number }): Promise<number>;
  /**
   * Stores an attempt's usage (replacing an earlier report of it) and corrects its rate-log
   * row, if any, to the tokens reported. Relaxed: written just before the attempt's outcome,
   * whose durable commit flushes it (docs/decisions.md 106).
   */
  usageRecord(params: { usage: UsageRecord }): Promise<void>;
  /** Usage summed per group, of attempts reported in [since, until) (null: unbounded), optionally of one task. */
  usageSummary(params: { groupBy: UsageGroupBy; since: Millis | null; until: Millis | null; taskId?: string }): Promise<UsageSum[]>;
}

export type WebhookDeliveryStatus = 'pending' | 'failed';

/** A webhook subscription (core/webhooks.ts). */
export interface WebhookRecord {
  id: string;
  url: string;
  events: string[];
  agents: string[] | null;
  rootId: string | null;
  enabled: boolean;
  description: string;
  ownerId: string;
  /** Who its owner could see when it was created (core/permissions.ts TaskVisibility). */
  visibility: TaskVisibility;
  /** The signing secret, sealed (engine/webhook-secrets.ts): never stored in the clear. */
  secretSealed: string;
  /** The last event seq when it was created: it is sent only later events. */
  fromSeq: number;
  createdAt: Millis;
  updatedAt: Millis;
  /** Made with a scoped token: queued nothing after the token's maximum lifetime. Null: no end. */
  expiresAt: Millis | null;
}

export interface NewWebhookDelivery {
  /** A subscription's id, or NOTIFY_SUBSCRIPTION for a task's notify URL. */
  subscriptionId: string;
  eventSeq: number;
  eventType: string;
  taskId: string | null;
  /** Notify deliveries only: where to send (a subscription's URL is read at each send). */
  url: string | null;
  /** The exact bytes sent and signed. */
  body: string;
  nextAt: Millis;
  createdAt: Millis;
}

export interface WebhookDeliveryRecord extends NewWebhookDelivery {
  seq: number;
  status: WebhookDeliveryStatus;
  attempts: number;
  lastError: string | null;
}

export interface WebhookDueDelivery extends WebhookDeliveryRecord {
  /** The subscription's sealed secret; null for a notify delivery (the notify secret signs it). */
  secretSealed: string | null;
  /** Where to send it now: the subscription's URL, or the notify URL. */
  targetUrl: string;
}

export interface WebhookNotifyRecord {
  taskId: string;
  url: string;
  createdAt: Millis;
}

export type A2aPushConfigSaveResult = { saved: true } | { saved: false; reason: 'not_owner' | 'limit' };

/** Where and how to POST an A2A task's push notifications (the client's TaskPushNotificationConfig). */
export interface A2aPushConfigRecord {
  taskId: string;
  id: string;
  url: string;
  /** Sent as X-A2A-Notification-Token when there is no `authentication`. */
  token: string | null;
  /** `authentication`: sent as `Authorization: <scheme> <credentials>`. */
  authScheme: string | null;
  authCredentials: string | null;
  /** The A2A version it was set over ('1.0', '0.3'): its notifications' body shape. */
  wireVersion: string;
  ownerId: string | null;
  createdAt: Millis;
  /** The A2A task state last queued for it; null: none yet. */
  lastState: string | null;
}

export interface A2aPushEnqueueItem {
  taskId: string;
  configId: string;
  expectedState: string | null;
  state: string;
  final: boolean;
  /** The notification's body before serialization: a v1.0 StreamResponse as JSON. */
  payload: Json;
  nextAt: Millis;
  createdAt: Millis;
}

export interface A2aPushDeliveryRecord {
  id: number;
  taskId: string;
  configId: string;
  url: string;
  token: string | null;
  authScheme: string | null;
  authCredentials: string | null;
  wireVersion: string;
  payload: Json;
  attempts: number;
  nextAt: Millis;
  createdAt: Millis;
  lastError: string | null;
}

/** An attempt's remote A2A task (assignmentSetRemote). */
export interface RemoteAttempt {
  assignmentId: string;
  attempt: number;
  remoteTaskId: string;
  remoteContextId: string | null;
}
