// JSON schemas for everything the API accepts and the config file declares (what it answers:
// responses.ts). Built from the SDK's constants (priority range, statuses) so the wire
// contract, the validation and the store's CHECK constraints share one source. Plain data:
// used by Fastify's validator and by the config loader, and exported into the OpenAPI document.

import { DEPENDENCY_FAILURE_POLICIES, ASSIGNMENT_STATUSES, PRIORITY_BANDS, PRIORITY_MAX, PRIORITY_MIN, ROLES, TASK_STATUSES, TOKEN_SCOPES } from '@flotilla/sdk';
import { MAX_INPUT_TIMEOUT_MS, MAX_PROMPT_CHARS } from '../core/input-schema.ts';
import { MAX_AWAITED_CHILDREN } from '../core/task-machine.ts';
import { MAX_DEPENDENCIES, MAX_WORKFLOW_TASKS } from '../core/dependencies.ts';
import { TOOL_ENTRY_MAX_LENGTH, TOOL_ENTRY_PATTERN, TOOL_LIST_MAX_ITEMS } from '../core/tools.ts';
import { secretRefMapSchema } from '../core/secret-refs.ts';
import { TOOL_DOMAIN_NAME_PATTERN } from '../core/tool-domains.ts';

const name = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' } as const;
const shortText = { type: 'string', minLength: 1, maxLength: 256 } as const;
const tag = { type: 'string', minLength: 1, maxLength: 128 } as const;
const id = { type: 'string', minLength: 1, maxLength: 128 } as const;
const priorityValue = { type: 'integer', minimum: PRIORITY_MIN, maximum: PRIORITY_MAX } as const;
/**
 * A priority: a value of the scale or an alias (core/sla.ts). The alias comes first: a query
 * string is coerced, and `"5"` must fail the enum before it becomes the integer 5.
 */
const priority = { anyOf: [{ type: 'string', enum: PRIORITY_BANDS }, priorityValue] } as const;
const positiveMs = (max: number) => ({ type: 'integer', minimum: 1, maximum: max }) as const;
/**
 * A sequence number or keyset position (events, audit entries). Every integer the API takes
 * has a maximum: above 2^53 a JavaScript number is no longer exact, and PostgreSQL's bigint
 * refuses what its range cannot hold (a 500 before this bound).
 */
const seq = (minimum: number) => ({ type: 'integer', minimum, maximum: Number.MAX_SAFE_INTEGER }) as const;
const DAY = 86_400_000;
/** The longest SLA a task or a band may have. */
const MAX_SLA_MS = 3650 * DAY;
/** Tool names and patterns (core/tools.ts has the grammar, and the rules the schema cannot say). */
const toolEntries = { type: 'array', items: { type: 'string', minLength: 1, maxLength: TOOL_ENTRY_MAX_LENGTH, pattern: TOOL_ENTRY_PATTERN }, maxItems: TOOL_LIST_MAX_ITEMS, uniqueItems: true } as const;
const maxDepth = { type: 'integer', minimum: 1, maximum: 1000 } as const;

/** What a task spec says of the task itself; a `then` (TaskSpec.then) is made of these. */
const taskProperties = {
    type: shortText,
    agent: name,
    capabilities: { type: 'array', items: tag, minItems: 1, maxItems: 32, uniqueItems: true },
    input: {},
    priority,
    /** The SLA deadline (core/sla.ts); not with slaMs. */
    deadline: { type: 'string', format: 'date-time' },
    slaMs: positiveMs(MAX_SLA_MS),
    maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
    timeoutMs: positiveMs(7 * DAY),
    runAt: { type: 'string', format: 'date-time' },
    delayMs: { type: 'integer', minimum: 0, maximum: 365 * DAY },
    idempotencyKey: { type: 'string', minLength: 1, maxLength: 256 },
    concurrencyKey: { type: 'string', minLength: 1, maxLength: 256 },
    replica: id,
    site: shortText,
    correlation: {
      type: 'object',
      maxProperties: 32,
      propertyNames: { maxLength: 64 },
      additionalProperties: { type: 'string', maxLength: 512 },
    },
    traceparent: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
    parentId: id,
    tools: {
      type: 'object',
      additionalProperties: false,
      properties: { allow: toolEntries, deny: toolEntries },
    },
    allowDegraded: { type: 'boolean' },
    // Provider rate limits (docs/flow-control.md): a `then` may name its own key too.
    rateKey: { type: 'string', minLength: 1, maxLength: 128 },
    estimatedTokens: { type: 'integer', minimum: 0, maximum: 1_000_000_000 },
} as const;

/** The follow-up of a task (TaskSpec.then, docs/workflows.md): its `input` is a template over the first task's outcome. */
export const thenSpecSchema = { type: 'object', additionalProperties: false, properties: taskProperties } as const;

export const taskSpecSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...taskProperties,
    // Dependencies and workflows (docs/workflows.md; core/dependencies.ts has the rules the schema cannot say).
    dependsOn: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 129 }, minItems: 1, maxItems: MAX_DEPENDENCIES, uniqueItems: true },
    onDependencyFailure: { type: 'string', enum: DEPENDENCY_FAILURE_POLICIES },
    inputFrom: {},
    then: thenSpecSchema,
    ref: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]*$' },
    /** Webhooks (docs/webhooks.md): its completion POSTed here; the URL rules are checked by core/webhooks.ts. */
    notify: { type: 'object', additionalProperties: false, required: ['url'], properties: { url: { type: 'string', minLength: 1, maxLength: 2048 } } },
    cacheKey: { type: 'string', minLength: 1, maxLength: 512 },
    cacheTtlMs: { type: 'integer', minimum: 1, maximum: 30 * DAY },
  },
} as const;

/** POST /workflows: task specs naming each other by `ref`, created all or none. */
export const workflowSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tasks'],
  properties: { tasks: { type: 'array', minItems: 1, maxItems: MAX_WORKFLOW_TASKS, items: taskSpecSchema } },
} as const;

export const assignSpecSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { ...omit(taskSpecSchema.properties, ['agent', 'capabilities']) },
} as const;

const agentProperties = {
  name,
  description: { type: 'string', maxLength: 2048 },
  capabilities: { type: 'array', items: tag, maxItems: 64, uniqueItems: true },
  maxConcurrency: { type: 'integer', minimum: 1, maximum: 10_000 },
  maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
  timeoutMs: positiveMs(7 * DAY),
  level: { type: 'integer', minimum: 1, maximum: 9 },
  toolDomains: { type: 'array', items: tag, maxItems: 64, uniqueItems: true },
  tools: toolEntries,
  maxDepth: { anyOf: [maxDepth, { type: 'null' }] },
  /** The agent cap (issue 16): live assignments across all of its replicas at most; null: none. */
  maxInFlight: { anyOf: [{ type: 'integer', minimum: 1, maximum: 1_000_000 }, { type: 'null' }] },
  concurrencyLimits: {
    type: 'object',
    maxProperties: 256,
    propertyNames: { maxLength: 256 },
    additionalProperties: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  },
  retry: {
    type: 'object',
    additionalProperties: false,
    properties: { baseDelayMs: { type: 'integer', minimum: 0, maximum: DAY }, maxDelayMs: { type: 'integer', minimum: 0, maximum: 7 * DAY } },
  },
  runtime: { type: 'string', enum: ['pull', 'a2a', 'process'] },
  // Where a runtime "a2a" agent is (core/a2a-target.ts: exactly one of cardUrl / url); null removes it.
  a2a: {
    anyOf: [
      {
        type: 'object',
        additionalProperties: false,
        properties: { cardUrl: { type: 'string', minLength: 1, maxLength: 2048 }, url: { type: 'string', minLength: 1, maxLength: 2048 }, headers: secretRefMapSchema },
      },
      { type: 'null' },
    ],
  },
  a2aSkill: {
    anyOf: [{
      type: 'object',
      additionalProperties: false,
      properties: {
        inputModes: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 255 }, maxItems: 32, uniqueItems: true },
        outputModes: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 255 }, maxItems: 32, uniqueItems: true },
        examples: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 2048 }, maxItems: 32 },
      },
    }, { type: 'null' }],
  },
} as const;

export const agentSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: agentProperties,
} as const;

export const agentPatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: omit(agentProperties, ['name']),
} as const;

export const registerReplicaSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['agent'],
  properties: {
    agent: name,
    /** A worker reconnecting passes the id it had, so the server knows what it still holds. */
    replicaId: id,
    site: shortText,
    maxConcurrency: { type: 'integer', minimum: 1, maximum: 10_000 },
  },
} as const;

export const leaseSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max: { type: 'integer', minimum: 1, maximum: 1000 },
    waitMs: { type: 'integer', minimum: 0, maximum: 120_000 },
  },
} as const;

const progress = { type: 'number', minimum: 0, maximum: 100 } as const;
const progressMessage = { type: 'string', maxLength: 2048 } as const;

export const assignmentHeartbeatSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId'],
  // Progress is a percentage with an optional message; a message alone would be dropped.
  dependencies: { message: ['percent'] },
  properties: { replicaId: id, percent: progress, message: progressMessage },
} as const;

export const assignmentProgressSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId', 'percent'],
  properties: { replicaId: id, percent: progress, message: progressMessage },
} as const;

export const assignmentReplicaSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId'],
  properties: { replicaId: id },
} as const;

/** What an attempt used (issue 16, core/usage.ts checks the bounds again). */
export const usageReportSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 200 },
    inputTokens: { type: 'integer', minimum: 0, maximum: 1_000_000_000 },
    outputTokens: { type: 'integer', minimum: 0, maximum: 1_000_000_000 },
    costUsd: { type: 'number', minimum: 0, maximum: 1_000_000 },
  },
} as const;

export const assignmentCompleteSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId'],
  properties: { replicaId: id, result: {}, usage: usageReportSchema },
} as const;

export const assignmentFailSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId', 'error'],
  properties: {
    replicaId: id,
    retryable: { type: 'boolean' },
    /** A provider's 429 (issue 16): rescheduled after retryAfterMs without spending a retry; the task's rate key pauses. */
    rateLimited: { type: 'boolean' },
    retryAfterMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
    usage: usageReportSchema,
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['message'],
      properties: { message: { type: 'string', maxLength: 8192 }, code: { type: 'string', maxLength: 128 }, details: {} },
    },
  },
} as const;

/** What a replica's heartbeat may say of itself (routing skips unhealthy replicas, prefers healthy ones). */
const healthReport = {
  health: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] },
  /** Anything else worth showing: cpu, memory, queue lengths (at most 4 KB as JSON). */
  healthDetail: { type: 'object', maxProperties: 64 },
} as const;

/** `POST /workers/{replicaId}/heartbeat`: optional; `healthDetail` only with `health`. */
export const replicaHeartbeatSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  dependencies: { healthDetail: ['health'] },
  properties: healthReport,
} as const;

/** `wait`: the handler ends its attempt waiting for these children of its task (core decideWait). */
export const assignmentWaitSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId', 'children'],
  properties: { replicaId: id, children: { type: 'array', items: id, minItems: 1, maxItems: MAX_AWAITED_CHILDREN } },
} as const;

/** `ask`: the handler ends its attempt asking for input (core decideAskInput, input-schema.ts). */
export const assignmentAskSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['replicaId', 'prompt'],
  properties: {
    replicaId: id,
    prompt: { type: 'string', minLength: 1, maxLength: MAX_PROMPT_CHARS },
    /** A JSON Schema the answer must match; absent or null: any JSON value. */
    schema: {},
    /** How long an answer may take before the task fails with INPUT_TIMEOUT; absent: no limit. */
    timeoutMs: { type: 'integer', minimum: 1, maximum: MAX_INPUT_TIMEOUT_MS },
  },
} as const;

/**
 * Messages a worker sends over the WebSocket protocol (docs/protocol.md, part 2), one schema
 * per `op`. They mirror the HTTP bodies, with the assignment id in the message instead of
 * the path and no `replicaId` (the session knows it). `id` correlates the server's reply.
 */
const requestId = { anyOf: [{ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, { type: 'string', minLength: 1, maxLength: 64 }] } as const;
const socketOp = <Op extends string, P extends Record<string, unknown>>(op: Op, properties: P, required: string[] = [], extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['op', 'id', ...required],
  properties: { op: { const: op }, id: requestId, ...properties },
  ...extra,
}) as const;

/**
 * The most reports one batch carries (a socket `batch` frame, `POST /workers/{id}/reports`):
 * the socket's in-flight limit, so one batch alone never closes a socket that waits for its
 * replies. Announced in the welcome and the register answer as `maxBatchItems`.
 */
export const MAX_BATCH_ITEMS = 1_000;

/** The reports a batch may carry, over both transports (client ops, hello, token and drain go alone). */
export const BATCH_OPS = ['start', 'heartbeat', 'progress', 'complete', 'fail', 'cancelled', 'wait', 'ask'] as const;
export type BatchOp = (typeof BATCH_OPS)[number];

/**
 * A batch's list: bounded as a whole, each item left to be validated on its own (as the message
 * or report it is), so one malformed item is refused alone and never fails the others.
 */
const batchItems = (description: string) => ({ type: 'array', minItems: 1, maxItems: MAX_BATCH_ITEMS, items: { description } }) as const;

/** `POST /tasks/{id}/cancel`. */
export const cancelBodySchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 1024 }, cascade: { type: 'boolean' } },
} as const;

export const socketMessageSchemas = {
  hello: socketOp('hello', {
    ...omit(registerReplicaSchema.properties, []),
    /** Assignments this worker still holds from before a reconnect. */
    held: { type: 'array', items: id, maxItems: 10_000, uniqueItems: true },
    /** Register without taking work (a worker reconnecting while it shuts down). */
    drain: { type: 'boolean' },
  }, ['agent']),
  start: socketOp('start', { assignmentId: id }, ['assignmentId']),
  heartbeat: socketOp('heartbeat', { assignmentIds: { type: 'array', items: id, maxItems: 10_000, uniqueItems: true }, ...healthReport }, ['assignmentIds'], { dependencies: { healthDetail: ['health'] } }),
  progress: socketOp('progress', { assignmentId: id, ...omit(assignmentProgressSchema.properties, ['replicaId']) }, ['assignmentId', 'percent']),
  complete: socketOp('complete', { assignmentId: id, result: {}, usage: usageReportSchema }, ['assignmentId']),
  fail: socketOp('fail', { assignmentId: id, ...omit(assignmentFailSchema.properties, ['replicaId']) }, ['assignmentId', 'error']),
  cancelled: socketOp('cancelled', { assignmentId: id }, ['assignmentId']),
  wait: socketOp('wait', { assignmentId: id, ...omit(assignmentWaitSchema.properties, ['replicaId']) }, ['assignmentId', 'children']),
  ask: socketOp('ask', { assignmentId: id, ...omit(assignmentAskSchema.properties, ['replicaId']) }, ['assignmentId', 'prompt']),
  token: socketOp('token', { assignmentId: id }, ['assignmentId']),
  drain: socketOp('drain', {}),
  // Client ops (no hello needed): pipelined submits and reads, one message each.
  submit: socketOp('submit', { task: taskSpecSchema }, ['task']),
  submitMany: socketOp('submitMany', { tasks: { type: 'array', minItems: 1, maxItems: 1_000, items: taskSpecSchema } }, ['tasks']),
  get: socketOp('get', { taskId: id }, ['taskId']),
  cancel: socketOp('cancel', { taskId: id, ...cancelBodySchema.properties }, ['taskId']),
  // Several worker reports in one frame (docs/protocol.md §11, Batches): each item is an
  // ordinary message of one of BATCH_OPS, with its own id, handled as if it had come alone.
  batch: socketOp('batch', { items: batchItems(`a message of one of the ops ${BATCH_OPS.join(', ')}, with its own id`) }, ['items']),
} as const;

/**
 * `POST /workers/{replicaId}/reports`: several reports of one replica in one request. Each item
 * is the body of its single route (`/assignments/{assignmentId}/{op}`) without `replicaId` (the
 * path names it), plus `op` and `assignmentId`.
 */
export const reportBatchSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['items'],
  properties: {
    items: batchItems(`{op, assignmentId, ...} with op one of ${BATCH_OPS.join(', ')}; the other fields are those of the op's single route except replicaId (checked item by item: see reportItemSchemas)`),
  },
} as const;

const reportItem = <Op extends BatchOp, P extends Record<string, unknown>>(op: Op, body: { properties: P & { replicaId: unknown }; required: readonly string[] }, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['op', 'assignmentId', ...body.required.filter((k) => k !== 'replicaId')],
  properties: { op: { const: op }, assignmentId: id, ...omit(body.properties, ['replicaId']) },
  ...extra,
}) as const;

/** One item of a report batch per op: the single route's body, as above. */
export const reportItemSchemas = {
  start: reportItem('start', assignmentReplicaSchema),
  heartbeat: reportItem('heartbeat', assignmentHeartbeatSchema, { dependencies: assignmentHeartbeatSchema.dependencies }),
  progress: reportItem('progress', assignmentProgressSchema),
  complete: reportItem('complete', assignmentCompleteSchema),
  fail: reportItem('fail', assignmentFailSchema),
  cancelled: reportItem('cancelled', assignmentReplicaSchema),
  wait: reportItem('wait', assignmentWaitSchema),
  ask: reportItem('ask', assignmentAskSchema),
} as const satisfies Record<BatchOp, unknown>;

export type SocketOp = keyof typeof socketMessageSchemas;

export const keyCreateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'role'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    role: { type: 'string', enum: [...ROLES] },
    agents: { type: 'array', items: name, minItems: 1, maxItems: 256, uniqueItems: true },
    expiresAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const keyListQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { includeRevoked: { type: 'boolean' } },
} as const;

export const tokenIssueSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['scopes'],
  properties: {
    scopes: { type: 'array', items: { type: 'string', enum: [...TOKEN_SCOPES] }, minItems: 1, maxItems: TOKEN_SCOPES.length, uniqueItems: true },
    agents: { type: 'array', items: name, maxItems: 256, uniqueItems: true },
    rootTaskId: id,
    ttlSeconds: { type: 'integer', minimum: 60, maximum: 30 * 86_400 },
    maxLifetimeSeconds: { type: 'integer', minimum: 60, maximum: 365 * 86_400 },
    name: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;

export const jtiParams = { type: 'object', required: ['jti'], properties: { jti: id } } as const;

export const auditQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    principalId: id,
    action: { type: 'string', minLength: 1, maxLength: 128 },
    outcome: { type: 'string', enum: ['allowed', 'denied', 'failed'] },
    since: { type: 'string', format: 'date-time' },
    until: { type: 'string', format: 'date-time' },
    before: seq(1),
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
  },
} as const;

export const taskListQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'array', items: { type: 'string', enum: [...TASK_STATUSES] }, maxItems: TASK_STATUSES.length },
    agent: name,
    priority,
    sla: { type: 'string', enum: ['at_risk', 'violated'] },
    parentId: id,
    rootId: id,
    depth: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    limit: { type: 'integer', minimum: 1, maximum: 500 },
    cursor: { type: 'string', maxLength: 256 },
  },
} as const;

/** The most tasks one page of a tree holds (`GET /tasks/{id}/tree?limit=`). */
export const MAX_TREE_PAGE = 5_000;

export const treeQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: MAX_TREE_PAGE },
    cursor: { type: 'string', maxLength: 256 },
  },
} as const;

/** `POST /tasks/{id}/assign`: where to dispatch it now (neither: any replica that serves it). */
export const assignTaskSchema = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { agent: name, replica: id },
} as const;

/** `POST /tasks/{id}/fail`: the operator's reason, required. */
export const failTaskSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1024, pattern: '\\S' } },
} as const;

export const queueQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'array', items: { type: 'string', enum: ['pending', 'dispatched', 'running'] }, maxItems: 3 },
    limit: { type: 'integer', minimum: 1, maximum: 500 },
    cursor: { type: 'string', maxLength: 256 },
  },
} as const;

export const waitQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { waitMs: { type: 'integer', minimum: 0, maximum: 120_000 } },
} as const;

export const eventsQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: seq(0),
    taskId: id,
    agent: name,
    type: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 32 },
  },
} as const;

/** GET /reports/delegation: the window starts at `since` (default: 24 hours ago) and ends now. */
export const delegationQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { since: { type: 'string', format: 'date-time' } },
} as const;

/** An SLA in the config file: a duration with a unit (`1h`, `7d`), milliseconds, or none (`none`, null). */
const slaDuration = {
  anyOf: [
    { type: 'string', pattern: '^(none|[0-9]{1,7}(ms|s|m|h|d))$' },
    positiveMs(MAX_SLA_MS),
    { type: 'null' },
  ],
} as const;

export const slaPolicySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...Object.fromEntries(PRIORITY_BANDS.map((band) => [band, slaDuration])) as Record<'P0' | 'P1' | 'P2' | 'P3', typeof slaDuration>,
    atRiskFraction: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  },
} as const;

export const idParams = { type: 'object', required: ['id'], properties: { id } } as const;
export const nameParams = { type: 'object', required: ['name'], properties: { name } } as const;
export const replicaParams = { type: 'object', required: ['replicaId'], properties: { replicaId: id } } as const;
export const assignmentParams = { type: 'object', required: ['assignmentId'], properties: { assignmentId: id } } as const;

export const enums = { TASK_STATUSES, ASSIGNMENT_STATUSES };

// -- MCP tool domains (issue 15; the rules the schema cannot say: core/tool-domains.ts) --------

const toolDomainProperties = {
  description: { type: 'string', maxLength: 1024 },
  url: { type: 'string', minLength: 1, maxLength: 2048 },
  headers: secretRefMapSchema,
  command: { type: 'string', minLength: 1, maxLength: 4096 },
  args: { type: 'array', items: { type: 'string', maxLength: 4096 }, maxItems: 256 },
  env: secretRefMapSchema,
} as const;

/** PUT /tool-domains/{name}: the name is the path's. */
export const toolDomainSpecSchema = { type: 'object', additionalProperties: false, properties: toolDomainProperties } as const;

/** A domain in the config file's `toolDomains`. */
export const toolDomainDeclarationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 64, pattern: TOOL_DOMAIN_NAME_PATTERN }, ...toolDomainProperties },
} as const;

export const toolDomainParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 64, pattern: TOOL_DOMAIN_NAME_PATTERN } } } as const;

export const toolCallQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    taskId: id,
    agent: name,
    tool: { type: 'string', minLength: 1, maxLength: 256 },
    outcome: { type: 'string', enum: ['ok', 'error', 'failed', 'refused'] },
    since: { type: 'string', format: 'date-time' },
    until: { type: 'string', format: 'date-time' },
    before: seq(1),
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
  },
} as const;

// -- schedules (issue 16, docs/schedules.md) ------------------------------------------------

/** The task a schedule submits: a submit's spec without what each firing decides. */
const scheduleTaskSchema = {
  type: 'object',
  additionalProperties: false,
  properties: omit(taskSpecSchema.properties, ['idempotencyKey', 'runAt', 'delayMs', 'parentId', 'traceparent']),
} as const;

const scheduleProperties = {
  name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' },
  cron: { type: 'string', minLength: 1, maxLength: 256 },
  timezone: { type: 'string', minLength: 1, maxLength: 64 },
  everyMs: { type: 'integer', minimum: 1_000, maximum: 366 * DAY },
  task: scheduleTaskSchema,
  overlap: { type: 'string', enum: ['skip', 'allow', 'cancel_previous'] },
  catchUp: { type: 'string', enum: ['none', 'one', 'all'] },
  catchUpWindowMs: { type: 'integer', minimum: 0, maximum: 31 * DAY },
  paused: { type: 'boolean' },
} as const;

export const scheduleSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'task'],
  properties: scheduleProperties,
} as const;

export const schedulePatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: omit(scheduleProperties, ['name', 'paused']),
} as const;

export const scheduleParams = {
  type: 'object',
  required: ['name'],
  properties: { name: scheduleProperties.name },
} as const;

/** The config file: server settings and declared agents. */
export const configFileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string' },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        database: { type: 'string' },
        logLevel: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
        rateLimitPerSecond: { type: 'integer', minimum: 0, maximum: 1_000_000 },
        rateLimitBurst: { type: 'integer', minimum: 1, maximum: 10_000_000 },
        rateLimitAnonymousPerMinute: { type: 'integer', minimum: 0, maximum: 1_000_000 },
        corsOrigins: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 2048 }, maxItems: 1000, uniqueItems: true },
        hsts: { type: 'boolean' },
        leaseMs: positiveMs(DAY),
        replicaTtlMs: positiveMs(DAY),
        cancelGraceMs: { type: 'integer', minimum: 0, maximum: DAY },
        defaultMaxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
        defaultTimeoutMs: positiveMs(7 * DAY),
        maxDepth,
        allowEqualLevel: { type: 'boolean' },
        overloadPendingAgeMs: positiveMs(DAY),
        overloadQueueDepth: { type: 'integer', minimum: 1, maximum: 100_000_000 },
        retentionMs: positiveMs(3650 * DAY),
        bodyLimitBytes: { type: 'integer', minimum: 1024, maximum: 64 * 1024 * 1024 },
        tokenTtlMs: { type: 'integer', minimum: 60_000, maximum: 30 * DAY },
        tokenMaxLifetimeMs: { type: 'integer', minimum: 60_000, maximum: 365 * DAY },
        auditRetentionMs: { type: 'integer', minimum: 0, maximum: 3650 * DAY },
        maxConcurrentTasks: { type: 'integer', minimum: 0, maximum: 10_000_000 },
        rateLimits: {
          type: 'object',
          maxProperties: 1000,
          additionalProperties: {
            type: 'object', additionalProperties: false, minProperties: 1,
            properties: { rpm: { type: 'integer', minimum: 1, maximum: 1_000_000 }, tpm: { type: 'integer', minimum: 1, maximum: 1_000_000_000 } },
          },
        },
        a2aPollIntervalMs: { type: 'integer', minimum: 10, maximum: 3_600_000 },
        a2aCardTtlMs: { type: 'integer', minimum: 1_000, maximum: DAY },
        retry: agentProperties.retry,
        concurrencyLimits: agentProperties.concurrencyLimits,
        a2aPublicUrl: { anyOf: [{ type: 'string', minLength: 1, maxLength: 2048 }, { type: 'null' }] },
        a2aPushIntervalMs: positiveMs(DAY),
        a2aPushMaxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
        webhookIntervalMs: positiveMs(DAY),
        webhookMaxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
        webhookTimeoutMs: positiveMs(10 * 60_000),
        webhookRetryBaseMs: positiveMs(DAY),
        webhookRetryMaxMs: positiveMs(7 * DAY),
        sla: slaPolicySchema,
        mcpHealthIntervalMs: positiveMs(DAY),
        mcpHealthTimeoutMs: positiveMs(10 * 60_000),
        mcpCallTimeoutMs: positiveMs(DAY),
        mcpGatewayUrl: { type: ['string', 'null'], minLength: 1, maxLength: 2048 },
        scheduleSweepMs: { type: 'integer', minimum: 100, maximum: DAY },
      },
    },
    agents: { type: 'array', items: agentSpecSchema, maxItems: 10_000 },
    toolDomains: { type: 'array', items: toolDomainDeclarationSchema, maxItems: 1000 },
    schedules: { type: 'array', items: scheduleSpecSchema, maxItems: 10_000 },
  },
} as const;

function omit<T extends Record<string, unknown>, K extends keyof T>(o: T, keys: K[]): Omit<T, K> {
  const out = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

// -- webhooks (docs/webhooks.md); URL and event rules beyond these bounds: core/webhooks.ts -----

const webhookFilters = {
  url: { type: 'string', minLength: 1, maxLength: 2048 },
  events: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 128 }, minItems: 1, maxItems: 64 },
  enabled: { type: 'boolean' },
  description: { type: 'string', maxLength: 1024 },
} as const;

export const webhookSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'events'],
  properties: {
    ...webhookFilters,
    agents: { type: 'array', items: name, minItems: 1, maxItems: 256, uniqueItems: true },
    rootId: id,
  },
} as const;

export const webhookPatchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...webhookFilters,
    agents: { anyOf: [{ type: 'array', items: name, minItems: 1, maxItems: 256, uniqueItems: true }, { type: 'null' }] },
    rootId: { anyOf: [id, { type: 'null' }] },
  },
} as const;

export const webhookParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } } as const;

export const webhookDeliveryQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { status: { type: 'string', enum: ['pending', 'failed'] }, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
} as const;

export const webhookReplaySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { deliveryId: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;


// -- flow control and usage (issue 16) -----------------------------------------------------

/** `/rate-limits/{key}`: a rate key (core/rate-limits.ts RATE_KEY_PATTERN). */
export const rateLimitParams = {
  type: 'object', required: ['key'],
  properties: { key: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/@-]*$' } },
} as const;

/** PUT /rate-limits/{key}: requests and tokens per minute, at least one of them. */
export const rateLimitSpecSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    rpm: { anyOf: [{ type: 'integer', minimum: 1, maximum: 1_000_000 }, { type: 'null' }] },
    tpm: { anyOf: [{ type: 'integer', minimum: 1, maximum: 1_000_000_000 }, { type: 'null' }] },
  },
} as const;

/** GET /usage: the grouping and the window (reported-at times, `until` exclusive). */
export const usageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['groupBy'],
  properties: {
    groupBy: { type: 'string', enum: ['agent', 'root', 'day'] },
    since: { type: 'string', format: 'date-time' },
    until: { type: 'string', format: 'date-time' },
  },
} as const;
