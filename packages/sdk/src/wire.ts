// Wire types of the Flotilla HTTP API (`/api/v1`). These are the JSON shapes a client or a
// worker sees; the server validates requests against schemas built from the same constants
// (priority range, statuses), so the two cannot drift apart.

/** Priority scale used everywhere: API schema, store CHECK constraint, SDK types. 9 is most urgent. */
export const PRIORITY_MIN = 0;
export const PRIORITY_MAX = 9;
export const PRIORITY_DEFAULT = 5;

/**
 * Priority aliases (docs/protocol.md, "Priorities and SLAs"): accepted wherever a priority is,
 * each a name for one value of the 0..9 scale (the value stored and shown). A priority band
 * is a range of the scale (P0 8-9, P1 6-7, P2 4-5, P3 0-3): the SLA policy of a task is its
 * band's, however its priority was written.
 */
export const PRIORITY_ALIASES = { P0: 9, P1: 7, P2: 5, P3: 2 } as const;
export type PriorityBand = keyof typeof PRIORITY_ALIASES;
export const PRIORITY_BANDS = Object.keys(PRIORITY_ALIASES) as PriorityBand[];
/** A priority as a request may give it: a value of the scale or an alias. */
export type Priority = number | PriorityBand;

/**
 * Where a task stands against its SLA deadline: `none` (no deadline), `ok`, `at_risk` (past the
 * at-risk fraction of its time, still open), `violated` (open at its deadline, or ended after
 * it), `met` (ended by its deadline).
 */
export const SLA_STATES = ['none', 'ok', 'at_risk', 'violated', 'met'] as const;
export type SlaState = (typeof SLA_STATES)[number];

/** A task's SLA as its view shows it. */
export interface TaskSla {
  /** The band of its priority (the policy it got when it had no deadline of its own). */
  band: PriorityBand;
  /** When it must be terminal by; null: no SLA. */
  deadline: string | null;
  state: SlaState;
}

/**
 * `waiting`: the task's last attempt ended by waiting for child tasks; it is pending again when
 * they are all terminal. `input_required`: its last attempt asked for input (POST
 * /tasks/:id/input answers). Neither holds a replica slot (docs/state-machine.md).
 */
export const TASK_STATUSES = [
  'pending', 'dispatched', 'running', 'waiting', 'input_required', 'completed', 'failed', 'cancelled',
  // Waiting for the tasks it names in `dependsOn` (docs/workflows.md); holds no slot.
  'blocked',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TERMINAL_TASK_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];
/** Statuses in which a task's attempt has ended without an outcome: it waits to be resumed. */
export const SUSPENDED_TASK_STATUSES: readonly TaskStatus[] = ['waiting', 'input_required'];
/** Statuses in which a task holds a replica slot (it has a live assignment). */
export const LIVE_TASK_STATUSES: readonly TaskStatus[] = ['dispatched', 'running'];

/**
 * An assignment is one attempt of a task on one replica. Its status ends in one outcome;
 * `suspended`: the handler ended it by waiting for children or asking for input (not a failure,
 * not counted against the task's attempts; the next attempt resumes the task).
 */
export const ASSIGNMENT_STATUSES = ['dispatched', 'running', 'completed', 'failed', 'timed_out', 'lost', 'cancelled', 'suspended'] as const;
export type AssignmentStatus = (typeof ASSIGNMENT_STATUSES)[number];
export const LIVE_ASSIGNMENT_STATUSES: readonly AssignmentStatus[] = ['dispatched', 'running'];

export const REPLICA_STATUSES = ['live', 'draining', 'lost', 'gone'] as const;
export type ReplicaStatus = (typeof REPLICA_STATUSES)[number];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface TaskErrorInfo {
  message: string;
  /** Machine-readable reason: a worker's own code, or one of Flotilla's (LEASE_EXPIRED, TIMED_OUT, ...). */
  code?: string;
  details?: Json;
}

export interface TaskProgress {
  percent: number;
  message: string | null;
  at: string;
}

export interface AssignmentView {
  id: string;
  taskId: string;
  agent: string;
  replicaId: string;
  attempt: number;
  status: AssignmentStatus;
  dispatchedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  leaseExpiresAt: string | null;
  deadlineAt: string | null;
  progress: TaskProgress | null;
  error: TaskErrorInfo | null;
}

export interface TaskView {
  id: string;
  type: string;
  status: TaskStatus;
  priority: number;
  /** Target agent by name; null when routed by capabilities. */
  agent: string | null;
  /** Required capabilities (all of them) when routed by capability. */
  capabilities: string[];
  input: Json;
  result: Json | null;
  error: TaskErrorInfo | null;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number;
  runAt: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  cancelRequestedAt: string | null;
  idempotencyKey: string | null;
  concurrencyKey: string | null;
  /** Hard pin: only this replica may run the task. */
  replica: string | null;
  /** Soft preference: a replica in this site is chosen when one is free. */
  site: string | null;
  correlation: Record<string, string>;
  traceparent: string | null;
  parentId: string | null;
  /** The root of the task's tree: the task itself when it has no parent. */
  rootId: string;
  /** How deep in its tree: a root is 1, a child its parent's depth + 1. */
  depth: number;
  /**
   * The tools its attempts may use, computed once at submit (docs/protocol.md "Tools"): its
   * agent's ceiling ∩ its parent's set ∩ `tools.allow` − `tools.deny`. Granted entries (names,
   * `domain:*`, `*`), then excepted ones written `!entry`; a tool is permitted when a granted
   * entry covers it and no excepted one does.
   */
  tools: string[];
  /** Who submitted it: an API key id, `token:<jti>` for a scoped token, or `system`; null on tasks stored before it was recorded. */
  createdBy: string | null;
  /**
   * The principal that owns the task's tree: the creator of its root, inherited by every
   * child. Equal to `createdBy` except for children submitted by someone else (a worker's
   * attempt token, an operator).
   */
  ownerId: string | null;
  /**
   * While `waiting`: the child task ids it waits for (all must be terminal); while `blocked`:
   * its dependencies (on GET /tasks/:id only those not yet ended); null otherwise.
   */
  waitingFor: string[] | null;
  /** While `input_required`: what the handler asked; null otherwise. */
  inputRequest: InputRequest | null;
  /** Its SLA deadline, measured from submit to terminal, and where it stands. */
  sla: TaskSla;
  /**
   * Why it is not running yet, on GET /tasks/:id (null while it runs and once it ended):
   * `waiting_for_children`, `waiting_for_input`, `scheduled` (its runAt, or a retry's backoff,
   * is ahead), `agent_paused`, `no_live_replica`, `no_healthy_replica`,
   * `concurrency_key_at_limit`, `all_slots_full`, or `queued` (it can run: others are ahead).
   */
  waitingReason?: WaitingReason | null;
  /** With `waitingReason` `tool_domain_down`: the tool domains it waits for (GET /tasks/:id). */
  waitingDomains?: string[];
  /** Whether it may run while a tool domain of its agent is down (TaskSpec.allowDegraded). */
  allowDegraded: boolean;
  /** The key its result is cached under (TaskSpec.cacheKey); null: not cached. */
  cacheKey: string | null;
  /** Answered from the cache: the task whose result this is (this one never ran); null otherwise. */
  cachedFrom: string | null;
  /** Its provider rate key and token estimate (TaskSpec.rateKey, estimatedTokens); null: none. */
  rateKey: string | null;
  estimatedTokens: number | null;
  /** With `waitingReason` `rate_limited`: the key, and until when it has no room (paused or its window full). */
  rateLimit?: { key: string; until: string; reason: 'paused' | 'rpm' | 'tpm' };
  /** What its attempts used, as their workers reported it (GET /tasks/:id; absent before any report). */
  usage?: UsageTotals;
  /** The current (or last) assignment; present on GET /tasks/:id. */
  assignment?: AssignmentView | null;
  /** The tasks it depends on (TaskSpec.dependsOn, ids); empty: none. */
  dependsOn: string[];
  /** With dependencies: what a failed one does to it; null without. */
  onDependencyFailure: DependencyFailurePolicy | null;
  /** Its name in the workflow it was submitted in; null outside one. */
  ref: string | null;
  /** On the answer to a submit with `then`: the follow-up task's id. */
  thenTaskId?: string;
}

/** One task of a tree (`GET /tasks/{id}/tree`): what a console or `flotilla tree` draws. */
export interface TreeNodeView {
  id: string;
  parentId: string | null;
  type: string;
  status: TaskStatus;
  depth: number;
  /** The task's agent; for a task routed by capabilities, the agent of its latest attempt (null before one). */
  agent: string | null;
  /** The replica of its latest attempt (live, or the last it had), or null. */
  replica: string | null;
  attempt: number;
  maxAttempts: number;
  /** The progress its latest attempt reported, if any. */
  progress: TaskProgress | null;
  /** A cancellation was requested (a live attempt is being stopped), or it is cancelled. */
  cancelRequested: boolean;
  /** The code of the error it failed (or last retried) with. */
  errorCode: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/**
 * A page of a task tree: the whole tree of `taskId`, from its root, in submission order (a
 * parent always before its children, so each page hangs from the pages before it). More
 * tasks follow when `nextCursor` is not null (pass it as `cursor`).
 */
export interface TaskTreeView {
  rootId: string;
  /** The task the tree was asked for. */
  taskId: string;
  items: TreeNodeView[];
  nextCursor: string | null;
}
/** What a handler asked for with `ctx.requestInput` (task status `input_required`). */
export interface InputRequest {
  prompt: string;
  /** A JSON Schema the answer must match (null: any JSON value). */
  schema: Json | null;
  requestedAt: string;
  /** When the task fails with INPUT_TIMEOUT if nobody answered; null: it waits for ever. */
  expiresAt: string | null;
}

/** One awaited child as the resumed attempt receives it. */
export interface ChildOutcome {
  id: string;
  status: TaskStatus;
  result: Json | null;
  error: TaskErrorInfo | null;
  /**
   * True when `result` was left out because the children's results together were larger
   * than one message may be: read the child (GET /tasks/:id) with the attempt's token.
   */
  resultOmitted?: boolean;
}

/**
 * Why this attempt runs again after an earlier one of the same task suspended: what the
 * awaited children ended as, or the answer to the input the handler asked for.
 */
export type Resumption =
  | { reason: 'children'; children: ChildOutcome[] }
  | { reason: 'input'; prompt: string; input: Json };

export interface TaskSpec {
  type?: string;
  agent?: string;
  capabilities?: string[];
  input?: Json;
  /** 0..9 (9 most urgent) or an alias, `P0`..`P3` (PRIORITY_ALIASES). */
  priority?: Priority;
  /** ISO 8601: when the task must be terminal by (its SLA deadline). Not with `slaMs`. */
  deadline?: string;
  /** The SLA as a duration from submit; without either, the band's policy (server config). */
  slaMs?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  runAt?: string;
  delayMs?: number;
  idempotencyKey?: string;
  concurrencyKey?: string;
  replica?: string;
  site?: string;
  correlation?: Record<string, string>;
  /** Defaults, under a parent: the parent's trace, with a new span for the child. */
  traceparent?: string;
  parentId?: string;
  /**
   * Narrows the task's tools (never widens them): `allow` keeps only these of the agent's
   * ceiling and the parent's set (absent: all of them), `deny` removes these; a deny always wins.
   */
  tools?: ToolNarrowing;
  /**
   * It may run while a tool domain its agent uses is down (docs/mcp.md): its assignment then
   * names the domains that are down. Default false: it waits for them.
   */
  allowDegraded?: boolean;
  /**
   * Tasks that must complete first (ids; in a workflow also `#ref`s of its other items): it
   * waits `blocked` until they all ended, then runs with their outcomes (docs/workflows.md).
   */
  dependsOn?: string[];
  /** What a failed or cancelled dependency does to it: `fail` (default: DEPENDENCY_FAILED) or `run` anyway. */
  onDependencyFailure?: DependencyFailurePolicy;
  /**
   * Its input, built when it is unblocked: a template in which each `{"$from": "#ref/pointer"}`
   * (or `"<task id>/pointer"`, or `"/pointer"` with one dependency) is replaced by the value
   * the JSON pointer finds in that dependency's outcome (`{"id", "status", "result", "error"}`);
   * `"default"` beside `$from` is used when nothing is there. Not with `input`.
   */
  inputFrom?: Json;
  /** Submits the next task when this one completes: its `input` is a template like `inputFrom`, over this task's outcome. */
  then?: ThenSpec;
  /** In a workflow: the name the other items depend on it by (`#ref`). */
  ref?: string;
  /**
   * POSTed once, signed, when the task ends (completed, failed or cancelled): docs/webhooks.md.
   * Signed with the server's notify secret (GET /webhooks/notify-secret).
   */
  notify?: TaskNotify;
  /**
   * Cached results (docs/caching.md): a completed task of the same agent and key, in the
   * submitter's scope, finished within `cacheTtlMs` answers this submit at once (a new task,
   * completed, `cachedFrom` naming it); one still running is shared (200, that task). Needs `agent`.
   */
  cacheKey?: string;
  /** How old a cached result may be (default 1 hour). Only with `cacheKey`. */
  cacheTtlMs?: number;
  /** The provider rate key it dispatches under (`openai:gpt-4o`, docs/flow-control.md). */
  rateKey?: string;
  /** The tokens it is expected to use, counted against its key's tokens per minute (needs rateKey). */
  estimatedTokens?: number;
}

export const DEPENDENCY_FAILURE_POLICIES = ['fail', 'run'] as const;
export type DependencyFailurePolicy = (typeof DEPENDENCY_FAILURE_POLICIES)[number];

/** The follow-up of a task (TaskSpec.then): a task spec whose `input` is a template over the first task's outcome. */
export type ThenSpec = Omit<TaskSpec, 'then' | 'dependsOn' | 'inputFrom' | 'onDependencyFailure' | 'ref' | 'notify' | 'cacheKey' | 'cacheTtlMs'>;

/** One dependency as the unblocked task receives it (LeasedTask.task.dependencies, ctx.dependencies). */
export interface DependencyOutcome {
  id: string;
  /** Its `ref` in the workflow it was submitted in; null outside one. */
  ref: string | null;
  /** completed, failed or cancelled; `cancelled` with error DEPENDENCY_GONE when it no longer exists. */
  status: TaskStatus;
  result: Json | null;
  error: TaskErrorInfo | null;
  /** True when `result` was left out: the outcomes together were larger than one message may be. */
  resultOmitted?: boolean;
}

/** POST /workflows: task specs naming each other by `ref` (`"dependsOn": ["#fetch"]`), created all or none. */
export interface WorkflowSpec {
  tasks: TaskSpec[];
}

/** What POST /workflows answers: every created task, in the order given, and their ids by ref. */
export interface WorkflowView {
  ids: Record<string, string>;
  items: TaskView[];
}

export interface ToolNarrowing {
  allow?: string[];
  deny?: string[];
}

export interface AgentSpec {
  name: string;
  description?: string;
  capabilities?: string[];
  /** Default per-replica concurrency when a replica does not say its own. */
  maxConcurrency?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  /** Hierarchy level (1 = top, default 1): a task delegates only to agents of a greater level. */
  level?: number;
  toolDomains?: string[];
  /** The tools its tasks may use at most (names, `domain:*` patterns, `*`); none when absent. */
  tools?: string[];
  /** Narrows the server's `maxDepth` for its tasks (never widens it); null or absent: the server's. */
  maxDepth?: number | null;
  /** Limits on concurrency keys used by this agent's tasks, e.g. {"host:vllm-1": 3}. */
  concurrencyLimits?: Record<string, number>;
  retry?: { baseDelayMs?: number; maxDelayMs?: number };
  runtime?: 'pull' | 'a2a' | 'process';
  /** Where a `runtime: "a2a"` agent is (required for it, refused for other runtimes). */
  a2a?: A2aTargetSpec | null;
  /** Publishes the agent as a skill of Flotilla's A2A agent card; null or absent: not published. */
  a2aSkill?: A2aSkillSpec | null;
  /** The agent cap: live assignments across all of its replicas at most; null or absent: none. */
  maxInFlight?: number | null;
}

/** A secret reference: a literal, or `{ env: NAME }` read from the server's environment at use. */
export type SecretRefSpec = string | { env: string };

/**
 * Where an A2A agent is (docs/a2a.md): exactly one of `cardUrl` (its agent card) or `url` (its
 * base URL; the card is at `<url>/.well-known/agent-card.json`), and the headers Flotilla sends
 * it (an API key: a secret reference, never shown back).
 */
export interface A2aTargetSpec {
  cardUrl?: string;
  url?: string;
  headers?: Record<string, SecretRefSpec>;
}

/** Media types (defaults: the card's, `application/json` and `text/plain`) and example prompts of an A2A skill. */
export interface A2aSkillSpec {
  inputModes?: string[];
  outputModes?: string[];
  examples?: string[];
}

export interface AgentView {
  name: string;
  description: string;
  capabilities: string[];
  maxConcurrency: number;
  maxAttempts: number | null;
  timeoutMs: number | null;
  level: number;
  toolDomains: string[];
  tools: string[];
  maxDepth: number | null;
  concurrencyLimits: Record<string, number>;
  retry: { baseDelayMs: number | null; maxDelayMs: number | null };
  runtime: 'pull' | 'a2a' | 'process';
  /** Where an a2a agent is, its headers redacted (literals as `***`, references as they are); only on runtime "a2a". */
  a2a?: A2aTargetSpec;
  createdAt: string;
  updatedAt: string;
  /**
   * What it is doing now, derived: `active` (work in flight), `idle` (replicas connected,
   * nothing in flight), `offline` (no live replica), `overloaded` (every slot taken and its
   * oldest due task waiting longer than the server's threshold, or too many due tasks).
   */
  state: AgentState;
  /** When an operator paused it (no new dispatches until resumed); null when not paused. */
  pausedAt: string | null;
  /** Its skill on the A2A agent card; null: not published. */
  a2aSkill: { inputModes: string[]; outputModes: string[]; examples: string[] } | null;
  /** The agent cap (across all of its replicas); null: none. */
  maxInFlight: number | null;
}

export const WAITING_REASONS = [
  'waiting_for_children', 'waiting_for_input', 'scheduled', 'agent_paused', 'no_live_replica', 'no_healthy_replica',
  'concurrency_key_at_limit', 'all_slots_full', 'queued', 'tool_domain_down',
  'dependencies',
  'rate_limited', 'fleet_cap', 'agent_cap',
] as const;
export type WaitingReason = (typeof WAITING_REASONS)[number];

export const AGENT_STATES = ['active', 'idle', 'offline', 'overloaded', 'degraded'] as const;
export type AgentState = (typeof AGENT_STATES)[number];

/** What a replica says of itself in its heartbeats: routing skips `unhealthy`, prefers `healthy`. */
export const REPLICA_HEALTHS = ['healthy', 'degraded', 'unhealthy'] as const;
export type ReplicaHealth = (typeof REPLICA_HEALTHS)[number];

export interface ReplicaView {
  id: string;
  agent: string;
  site: string | null;
  status: ReplicaStatus;
  maxConcurrency: number;
  inFlight: number;
  registeredAt: string;
  lastSeenAt: string;
  lastAssignedAt: string | null;
  completed: number;
  failed: number;
  health: ReplicaHealth;
  /** What its last health report carried besides the health (cpu, memory, anything); null before any. */
  healthDetail: Record<string, Json> | null;
  healthAt: string | null;
}

export interface LeasedTask {
  assignmentId: string;
  leaseExpiresAt: string;
  deadlineAt: string;
  task: Pick<TaskView, 'id' | 'type' | 'input' | 'attempt' | 'maxAttempts' | 'priority' | 'timeoutMs' | 'correlation' | 'traceparent' | 'parentId' | 'agent' | 'tools'> & {
    /** Set when an earlier attempt waited for children or asked for input; null on a first run. */
    resumed: Resumption | null;
    /** Its dependencies' outcomes (TaskSpec.dependsOn), in the order named; absent for a task without dependencies. */
    dependencies?: DependencyOutcome[];
  };
  /** The MCP gateway (docs/mcp.md): where the attempt calls its tools, with its attempt token. */
  mcp?: LeasedMcp;
}

export interface LeasedMcp {
  /** The gateway's URL: absolute when the server knows its public URL (`mcpGatewayUrl`), else a path on the server the worker connected to. */
  url: string;
  /** Tool domains of its agent that were down when it was dispatched (a task that allows running degraded); empty otherwise. */
  downDomains: string[];
}

export interface EventView {
  seq: number;
  type: string;
  at: string;
  taskId: string | null;
  agent: string | null;
  replicaId: string | null;
  assignmentId: string | null;
  data: Record<string, Json>;
}

/** GET /agents/:name/stats */
export interface AgentStats {
  agent: string;
  totals: Record<TaskStatus, number>;
  /** Over the most recent completed attempts (see `sampleSize`). */
  executionMs: { average: number | null; p95: number | null; sampleSize: number };
  /** completed / (completed + failed) over terminal tasks; null before any finished. */
  successRate: number | null;
  attempts: { completed: number; failed: number };
}

/** One agent's row of GET /reports/delegation. */
export interface DelegationRow {
  agent: string;
  /** Attempts dispatched to the agent in the window. */
  assigned: number;
  /** Of those attempts: completed, and failed (failed, timed out or lost). */
  completed: number;
  failed: number;
  /** Attempts of the agent live now (dispatched or running). */
  inFlight: number;
  /** Durations (dispatch to completion) of the completed attempts: nearest-rank median and p95, null without any. */
  durationMs: { median: number | null; p95: number | null };
  /** Tasks of the agent with an SLA: ended by their deadline in the window, and whose deadline passed in it unmet. */
  sla: { met: number; violated: number };
  /** completed / (completed + failed); null before any ended. */
  reliability: number | null;
  /** What its attempts reported using in the window (issue 16, docs/usage.md). */
  usage: { attempts: number; inputTokens: number; outputTokens: number; costUsd: number };
}

/** GET /reports/delegation */
export interface DelegationReport {
  since: string;
  until: string;
  agents: DelegationRow[];
}

/** GET /overview */
export interface Overview {
  tasks: Record<TaskStatus, number>;
  agents: number;
  replicas: { live: number; total: number };
  /** Agents by derived state. */
  agentStates: Record<AgentState, number>;
  /** Replicas by status, and the live and draining ones by health. */
  replicaStatuses: Record<ReplicaStatus, number>;
  replicaHealth: Record<ReplicaHealth, number>;
  /** Tool domains (MCP servers) by health, and the names of those down. */
  toolDomains: { up: number; down: number; unknown: number; downDomains: string[] };
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A whole list in one answer (GET /agents, /keys, /agents/:name/replicas, /tasks/:id/events). */
export interface ItemList<T> {
  items: T[];
}

/** GET /events/page: continue with `?after=lastSeq` while `more` is true. */
export interface EventPage {
  items: EventView[];
  /** The last event scanned (filters may leave fewer items than the limit). */
  lastSeq: number;
  more: boolean;
}

/** POST /workers/register (docs/protocol.md §4). */
export interface WorkerRegistration {
  protocolVersion: number;
  replica: ReplicaView;
  leaseMs: number;
  replicaTtlMs: number;
  heartbeatIntervalMs: number;
  /** The largest request body the server reads. */
  maxMessageBytes: number;
  /**
   * The most reports one batch carries (`POST /workers/{replicaId}/reports`, the socket's
   * `batch` frame); absent from servers older than batches, which take reports one by one.
   */
  maxBatchItems: number;
}

/** The reports a batch carries (docs/protocol.md §4, Batch reports). */
export type BatchReportOp = 'start' | 'heartbeat' | 'progress' | 'complete' | 'fail' | 'cancelled' | 'wait' | 'ask';

/**
 * POST /workers/:replicaId/reports: per report, in the order sent, the status and body its
 * single route (`/assignments/:id/{op}`) answers: `{ok: true}`, a `LeaseRenewal`, or an error body.
 */
export interface ReportResults {
  items: Array<{ status: number; body: Json }>;
}

/** POST /assignments/:id/heartbeat and /progress. */
export interface LeaseRenewal {
  leaseExpiresAt: string;
  cancelRequested: boolean;
}

/** Roles of API keys (what each grants: docs/security.md). */
export const ROLES = ['admin', 'operator', 'viewer', 'agent'] as const;
export type Role = (typeof ROLES)[number];

/** Actions a scoped token may carry. */
export const TOKEN_SCOPES = ['task.submit', 'task.read', 'task.cancel', 'task.retry', 'task.answer',
  // A subscription made with such a token sees only what the token may read (its tree), until the token's maximum lifetime.
  'webhook.read'] as const;
export type TokenScopeName = (typeof TOKEN_SCOPES)[number];

/** POST /keys */
export interface ApiKeySpec {
  name: string;
  role: Role;
  /** Role `agent` only (required there): the agents the key may serve. */
  agents?: string[];
  /** ISO 8601; the key stops working then. */
  expiresAt?: string;
}

export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  agents: string[] | null;
  status: 'active' | 'expired' | 'revoked';
  createdAt: string;
  createdBy: string | null;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
}

/** POST /keys answers the key once with its secret; it is never shown again. */
export interface CreatedApiKey {
  key: ApiKeyView;
  token: string;
}

/** POST /tokens */
export interface TokenSpec {
  scopes: TokenScopeName[];
  /** Agents it may submit to (default: any the issuer may). */
  agents?: string[];
  /** Bind it to one task tree: it may only add children in that tree and read it. */
  rootTaskId?: string;
  /** Lifetime of this token and of each renewal (default: the server's, 2 h). */
  ttlSeconds?: number;
  /** Hard end across renewals (default and ceiling: the server's, 24 h). */
  maxLifetimeSeconds?: number;
  name?: string;
}

export interface IssuedTokenView {
  token: string;
  id: string;
  scopes: TokenScopeName[];
  agents: string[] | null;
  rootTaskId: string | null;
  expiresAt: string;
  maxExpiresAt: string;
  /** An attempt's token: the attempt's effective tool set (also in its claims); null for other tokens. */
  tools: string[] | null;
}

export interface AuditEntryView {
  seq: number;
  at: string;
  principalId: string | null;
  principalName: string | null;
  role: string | null;
  action: string;
  target: string | null;
  outcome: 'allowed' | 'denied' | 'failed';
  status: number;
  requestId: string | null;
  source: string | null;
  details: Json | null;
}

export interface AuditPage {
  items: AuditEntryView[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  nextBefore: number | null;
}

// -- MCP tool domains (issue 15, docs/mcp.md) ---------------------------------------------------

/** A secret reference as views show it: the environment variable's name, or `***` for a literal. */
export type SecretRefView = string | { env: string };

/** PUT /tool-domains/{name}: an MCP server over streamable HTTP (`url`) or stdio (`command`). */
export interface ToolDomainSpec {
  description?: string;
  url?: string;
  /** Header values: literals or `{ env: NAME }` (read from the server's environment at use). */
  headers?: Record<string, string | { env: string }>;
  command?: string;
  args?: string[];
  env?: Record<string, string | { env: string }>;
}

export type ToolDomainStatus = 'up' | 'down' | 'unknown';

/** One row of GET /mcp/health (and a domain's `health`). */
export interface ToolDomainHealthView {
  name: string;
  transport: 'streamable-http' | 'stdio';
  status: ToolDomainStatus;
  checkedAt: string | null;
  latencyMs: number | null;
  toolCount: number | null;
  lastError: string | null;
  changedAt: string | null;
}

export interface ToolDomainView {
  name: string;
  description: string | null;
  transport: 'streamable-http' | 'stdio';
  url: string | null;
  /** Secrets never shown: literals as `***`, references as `{ env: NAME }`. */
  headers: Record<string, SecretRefView>;
  command: string | null;
  args: string[];
  env: Record<string, SecretRefView>;
  source: 'config' | 'api';
  createdAt: string;
  updatedAt: string;
  health: ToolDomainHealthView;
}

export type ToolCallOutcome = 'ok' | 'error' | 'failed' | 'refused';

/** One call through the MCP gateway (GET /tool-calls). */
export interface ToolCallView {
  seq: number;
  at: string;
  taskId: string;
  assignmentId: string;
  attempt: number;
  agent: string;
  tool: string;
  argsBytes: number;
  argsSha256: string;
  durationMs: number;
  outcome: ToolCallOutcome;
  /** Why the gateway refused it: `not_allowed`, `unknown_tool`, `domain_down`. */
  rule: string | null;
  error: string | null;
}

export interface ToolCallPage {
  items: ToolCallView[];
  /** Pass as `before` for the next (older) page; null on the last. */
  nextBefore: number | null;
}

// -- webhooks (docs/webhooks.md) ---------------------------------------------------------

/** TaskSpec.notify: where the task's completion (its terminal event) is POSTed. */
export interface TaskNotify {
  url: string;
}

/** POST /webhooks */
export interface WebhookSpec {
  url: string;
  /** Event type names (`task.completed`) or patterns ending in `.*` (`task.*`), or `*` for all. */
  events: string[];
  /** Only events of tasks addressed to these agents. */
  agents?: string[];
  /** Only events of the tree under this root task. */
  rootId?: string;
  enabled?: boolean;
  description?: string;
}

/** PATCH /webhooks/{id}: what is given is replaced; `agents`/`rootId` null clears the filter. */
export interface WebhookPatch {
  url?: string;
  events?: string[];
  agents?: string[] | null;
  rootId?: string | null;
  enabled?: boolean;
  description?: string;
}

export interface WebhookView {
  id: string;
  url: string;
  events: string[];
  agents: string[] | null;
  rootId: string | null;
  enabled: boolean;
  description: string;
  /** The key that created it: events reach it only for tasks that key may read. */
  ownerId: string;
  createdAt: string;
  updatedAt: string;
  /** Made with a scoped token: nothing is queued for it after the token's maximum lifetime. */
  expiresAt: string | null;
}

/** The create and rotate answers: the only ones that show the secret. */
export interface WebhookSecretView extends WebhookView {
  secret: string;
}

export type WebhookDeliveryStatus = 'pending' | 'failed';

export interface WebhookDeliveryView {
  /** The `Flotilla-Delivery-Id` header: the same on every attempt (receivers dedupe on it). */
  id: string;
  webhookId: string;
  eventSeq: number;
  eventType: string;
  taskId: string | null;
  status: WebhookDeliveryStatus;
  attempts: number;
  nextAt: string;
  createdAt: string;
  lastError: string | null;
}

export interface WebhookDeliveryPage {
  items: WebhookDeliveryView[];
}

/** What a receiver is POSTed (the body the signature covers). */
export interface WebhookEventBody {
  /** The delivery id (as `Flotilla-Delivery-Id`). */
  id: string;
  webhookId: string;
  event: { seq: number; type: string; at: string; taskId: string | null; agent: string | null; data: Json };
  /** The task as it was when the event was queued; null for an event of no task. */
  task: { id: string; status: TaskStatus; agent: string | null; rootId: string; parentId: string | null; result: Json | null; error: TaskErrorInfo | null } | null;
}

// -- schedules (issue 16, docs/schedules.md) -----------------------------------------------

export type ScheduleOverlap = 'skip' | 'allow' | 'cancel_previous';
export type ScheduleCatchUp = 'none' | 'one' | 'all';

/**
 * The task a schedule submits at each fire time: a TaskSpec without what the firing decides
 * (its idempotency key is the schedule and the fire time; it runs at once, as a root task).
 */
export type ScheduleTaskTemplate = Omit<TaskSpec, 'idempotencyKey' | 'runAt' | 'delayMs' | 'parentId' | 'traceparent'>;

/** POST /schedules: exactly one of `cron` (5 or 6 fields, seconds first; in `timezone`, default UTC) or `everyMs`. */
export interface ScheduleSpec {
  name: string;
  cron?: string;
  /** An IANA time zone for `cron` (`Europe/Paris`): DST changes are followed. */
  timezone?: string;
  everyMs?: number;
  task: ScheduleTaskTemplate;
  /** While the previous run is not finished: `skip` this firing (default), `allow` it, or `cancel_previous` first. */
  overlap?: ScheduleOverlap;
  /** Fire times missed while no node fired (downtime): `none` (default), `one` (the latest), `all` (each, within the window). */
  catchUp?: ScheduleCatchUp;
  /** How far back missed fire times are caught up (default 1 h). */
  catchUpWindowMs?: number;
  /** Created paused. */
  paused?: boolean;
}

/** PATCH /schedules/:name: the fields to change (the timing as a whole: `cron` replaces `everyMs` and the reverse). */
export type SchedulePatch = Partial<Omit<ScheduleSpec, 'name' | 'paused'>>;

export interface ScheduleLastFire {
  /** The fire time (not when it was fired). */
  at: string;
  /** The task it submitted; for `skipped_overlap`, the run still open it was skipped for; null when no task (`owner_revoked`, `failed_to_submit`). */
  taskId: string | null;
  /** The task's status now, or why no task: `skipped_overlap`, `owner_revoked`, `failed_to_submit`. */
  outcome: string;
  /** Why a submit was refused (`failed_to_submit`). */
  error?: string;
}

export interface ScheduleView {
  name: string;
  cron: string | null;
  timezone: string | null;
  everyMs: number | null;
  /** The ScheduleTaskTemplate as given (JSON: its `priority` may be an alias). */
  task: Json;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  catchUpWindowMs: number;
  source: 'config' | 'api';
  /** Whose tasks it submits: the principal that created it (an API key id, or `system` for the config file). */
  ownerId: string;
  paused: boolean;
  /** Why it was paused by the server (`owner_revoked`); null when paused by someone or not paused. */
  pausedReason: string | null;
  /** The next fire times (up to 5; none while paused). */
  nextFireTimes: string[];
  lastFire: ScheduleLastFire | null;
  createdAt: string;
  updatedAt: string;
}

export interface ScheduleList {
  items: ScheduleView[];
}

// -- flow control and usage (issue 16, docs/flow-control.md, docs/usage.md) --------------------

/** What an attempt used, as its worker reports it with complete or fail (all optional). */
export interface UsageReportWire {
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
}

/** Sums of reported usage. */
export interface UsageTotals {
  attempts: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** One group of GET /usage: `key` is the agent, the root task id or the UTC day. */
export interface UsageGroup extends UsageTotals {
  key: string;
}

export interface UsageSummaryView {
  groupBy: 'agent' | 'root' | 'day';
  since: string | null;
  until: string | null;
  groups: UsageGroup[];
}

/** PUT /rate-limits/:key: requests and tokens per minute (at least one). */
export interface RateLimitSpecWire {
  rpm?: number | null;
  tpm?: number | null;
}

/** A rate key with its sliding minute now (GET /rate-limits). */
export interface RateLimitView {
  key: string;
  rpm: number | null;
  tpm: number | null;
  source: 'config' | 'api' | 'pause';
  /** Requests and tokens admitted in the last minute, and what is left of each (null: not limited). */
  used: { requests: number; tokens: number };
  remaining: { requests: number | null; tokens: number | null };
  pausedUntil: string | null;
  updatedAt: string;
}
