// JSON schemas of everything the API answers, each under its `$id`. Routes name them per
// status (`answers({ 200: 'TaskView' })`); http/serializers.ts compiles each once, handing
// fast-json-stringify the named schemas through its `schema` option, so Fastify serializes
// every answer through its schema and the OpenAPI document
// lists the same objects under #/components/schemas (http/openapi.ts).
//
// Rules that keep serialization from changing an answer (docs/decisions.md, decision 37):
// - every object lists every property the view has, and `additionalProperties: false`:
//   fast-json-stringify drops what a schema does not list, so a field missing here would
//   vanish from the answer; test/response-contract.test.ts fails on any such field;
// - arbitrary JSON (input, result, error details, event data, audit details) is `{}`, which
//   is serialized as JSON.stringify would, never dropped or coerced;
// - a value that may be null says so (`type: [..., 'null']`): fast-json-stringify writes a
//   null string as "" and a null integer as 0;
// - nullable objects are written inline (`orNull`), not as `anyOf: [{ $ref }, { type: 'null' }]`,
//   for which fast-json-stringify would run a validator on every answer to pick the branch.

import { DEPENDENCY_FAILURE_POLICIES, AGENT_STATES, ASSIGNMENT_STATUSES, ERROR_STATUS, PRIORITY_BANDS, REPLICA_HEALTHS, REPLICA_STATUSES, ROLES, SLA_STATES, TASK_STATUSES, TOKEN_SCOPES, WAITING_REASONS } from '@flotilla/sdk';
import { agentSpecSchema } from './schemas.ts';

type Schema = Record<string, unknown>;

/** Any JSON value. */
const any = {} as const;
const string = { type: 'string' } as const;
const nullableString = { type: ['string', 'null'] } as const;
const time = { type: 'string', format: 'date-time' } as const;
const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;
const integer = { type: 'integer' } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
const boolean = { type: 'boolean' } as const;
const strings = { type: 'array', items: string } as const;
const enumOf = (values: readonly string[]) => ({ type: 'string', enum: [...values] });
const arrayOf = (items: Schema) => ({ type: 'array', items });
const ref = (name: string) => ({ $ref: `${name}#` });

/** A closed object: every property listed is required unless named in `optional`. */
function object(properties: Record<string, Schema>, optional: string[] = []): Schema {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties).filter((k) => !optional.includes(k)), properties };
}

const webhookProperties: Record<string, Schema> = {
  id: string, url: string, events: strings, agents: { type: ['array', 'null'], items: string }, rootId: nullableString, enabled: boolean,
  description: string, ownerId: string, createdAt: time, updatedAt: time, expiresAt: nullableTime,
};
const webhookView = object(webhookProperties);

const toolDomainHealthView = object({
  name: string, transport: enumOf(['streamable-http', 'stdio']), status: enumOf(['up', 'down', 'unknown']),
  checkedAt: nullableTime, latencyMs: nullableInteger, toolCount: nullableInteger, lastError: nullableString, changedAt: nullableTime,
});
// Each value a literal shown as `***` or a reference `{ env: NAME }` (a union of kinds: any JSON for the wire-types test).
const secretRefViews = { type: 'object', additionalProperties: {} } as const;

/** The same object or null (inline: see the header). */
function orNull(schema: Schema): Schema {
  const { $id: _id, description: _d, ...rest } = schema;
  return { ...rest, type: [rest.type as string, 'null'] };
}

function pick(properties: Record<string, Schema>, keys: string[]): Record<string, Schema> {
  return Object.fromEntries(keys.map((k) => [k, properties[k]!]));
}

/** Counts by task status: every status, always. */
const countsByStatus = object(Object.fromEntries(TASK_STATUSES.map((s) => [s, integer])));

const taskError = object({ message: string, code: string, details: any }, ['code', 'details']);
const progress = object({ percent: { type: 'number' }, message: nullableString, at: time });

const inputRequest = object({ prompt: string, schema: any, requestedAt: time, expiresAt: nullableTime });

const childOutcome = object({ id: string, status: enumOf(TASK_STATUSES), result: any, error: orNull(taskError), resultOmitted: boolean }, ['resultOmitted']);
/** What a resumed attempt is given (wire.ts Resumption): the awaited children's outcomes, or the answer. */
const resumption = {
  oneOf: [
    object({ reason: { type: 'string', enum: ['children'] }, children: arrayOf(childOutcome) }),
    object({ reason: { type: 'string', enum: ['input'] }, prompt: string, input: any }),
    { type: 'null' },
  ],
};

const assignmentView = object({
  id: string,
  taskId: string,
  agent: string,
  replicaId: string,
  attempt: integer,
  status: enumOf(ASSIGNMENT_STATUSES),
  dispatchedAt: time,
  startedAt: nullableTime,
  finishedAt: nullableTime,
  leaseExpiresAt: nullableTime,
  deadlineAt: nullableTime,
  progress: orNull(progress),
  error: orNull(taskError),
});

const taskProperties: Record<string, Schema> = {
  id: string,
  type: string,
  status: enumOf(TASK_STATUSES),
  priority: integer,
  agent: nullableString,
  capabilities: strings,
  input: any,
  result: any,
  error: orNull(taskError),
  attempt: integer,
  maxAttempts: integer,
  timeoutMs: integer,
  runAt: time,
  createdAt: time,
  updatedAt: time,
  finishedAt: nullableTime,
  cancelRequestedAt: nullableTime,
  idempotencyKey: nullableString,
  concurrencyKey: nullableString,
  replica: nullableString,
  site: nullableString,
  correlation: { type: 'object', additionalProperties: string },
  traceparent: nullableString,
  parentId: nullableString,
  rootId: string,
  depth: { type: 'integer', minimum: 1 },
  tools: strings,
  allowDegraded: boolean,
  cacheKey: nullableString,
  cachedFrom: nullableString,
  createdBy: nullableString,
  ownerId: nullableString,
  waitingFor: { type: ['array', 'null'], items: string },
  inputRequest: orNull(inputRequest),
  sla: object({ band: enumOf(PRIORITY_BANDS), deadline: nullableTime, state: enumOf(SLA_STATES) }),
  waitingReason: { type: ['string', 'null'], enum: [...WAITING_REASONS, null] },
  waitingDomains: strings,
  assignment: orNull(assignmentView),
  dependsOn: strings,
  onDependencyFailure: { type: ['string', 'null'], enum: [...DEPENDENCY_FAILURE_POLICIES, null] },
  ref: nullableString,
  thenTaskId: string,
  rateKey: nullableString,
  estimatedTokens: nullableInteger,
  rateLimit: object({ key: string, until: time, reason: enumOf(['paused', 'rpm', 'tpm']) }),
  usage: object({ attempts: integer, inputTokens: integer, outputTokens: integer, costUsd: { type: 'number' } }),
};

/** One dependency as the unblocked task's attempts receive it (wire.ts DependencyOutcome). */
const dependencyOutcome = object({ id: string, ref: nullableString, status: enumOf(TASK_STATUSES), result: any, error: orNull(taskError), resultOmitted: boolean }, ['resultOmitted']);

const replicaView = object({
  id: string,
  agent: string,
  site: nullableString,
  status: enumOf(REPLICA_STATUSES),
  maxConcurrency: integer,
  inFlight: integer,
  registeredAt: time,
  lastSeenAt: time,
  lastAssignedAt: nullableTime,
  completed: integer,
  failed: integer,
  health: enumOf(REPLICA_HEALTHS),
  healthDetail: { type: ['object', 'null'], additionalProperties: any },
  healthAt: nullableTime,
});

const apiKeyView = object({
  id: string,
  name: string,
  role: enumOf(ROLES),
  agents: orNull(strings),
  status: enumOf(['active', 'expired', 'revoked']),
  createdAt: time,
  createdBy: nullableString,
  lastUsedAt: nullableTime,
  expiresAt: nullableTime,
  revokedAt: nullableTime,
});

const rateLimitView = object({
  key: string, rpm: nullableInteger, tpm: nullableInteger, source: enumOf(['config', 'api', 'pause']),
  used: object({ requests: integer, tokens: integer }),
  remaining: object({ requests: nullableInteger, tokens: nullableInteger }),
  pausedUntil: nullableTime, updatedAt: time,
});

/** Every named answer: `$id` is its name in Fastify and in the OpenAPI document. */
const definitions = {
  Error: {
    description: 'An error with a stable code (x-error-codes lists each code with its HTTP status)',
    ...object({ error: object({ code: enumOf(Object.keys(ERROR_STATUS)), message: string, details: any }, ['details']) }),
  },
  TaskView: {
    description: 'A task. `assignment` (its current or last attempt) is present on GET /tasks/{id} only',
    ...object(taskProperties, ['assignment', 'waitingReason', 'waitingDomains', 'thenTaskId', 'rateLimit', 'usage']),
  },
  TaskPage: { description: 'A page of tasks, newest first; pass nextCursor as cursor for the next page', ...object({ items: arrayOf(ref('TaskView')), nextCursor: nullableString }) },
  SubmittedTasks: {
    description: 'The tasks of a batch, in the order submitted; created is false where an idempotency key matched an existing task',
    ...object({ items: arrayOf(object({ created: boolean, task: ref('TaskView') })) }),
  },
  AssignmentView: { description: 'One attempt of a task on one replica', ...assignmentView },
  WorkflowView: {
    description: "A workflow's created tasks, in the order submitted, and their ids by ref (docs/workflows.md)",
    ...object({ ids: { type: 'object', additionalProperties: string }, items: arrayOf(ref('TaskView')) }),
  },
  TreeNodeView: {
    description: "One task of a tree: its place, its state, and its latest attempt's replica and progress",
    ...object({
      id: string, parentId: nullableString, type: string, status: enumOf(TASK_STATUSES), depth: { type: 'integer', minimum: 1 },
      agent: nullableString, replica: nullableString, attempt: integer, maxAttempts: integer, progress: orNull(progress),
      cancelRequested: boolean, errorCode: nullableString, createdAt: time, finishedAt: nullableTime,
    }),
  },
  TaskTree: {
    description: 'A page of the tree of taskId, from its root, in submission order (a parent before its children); more follows while nextCursor is not null',
    ...object({ rootId: string, taskId: string, items: arrayOf(ref('TreeNodeView')), nextCursor: nullableString }),
  },
  TaskAssignments: {
    description: "A task's current assignment and every attempt, oldest first",
    ...object({ taskId: string, taskStatus: enumOf(TASK_STATUSES), assignment: orNull(assignmentView), attempts: arrayOf(ref('AssignmentView')) }),
  },
  EventView: {
    description: 'An event, with its global sequence number',
    ...object({ seq: integer, type: string, at: time, taskId: nullableString, agent: nullableString, replicaId: nullableString, assignmentId: nullableString, data: { type: 'object', additionalProperties: any } }),
  },
  EventList: { description: 'Events in sequence order', ...object({ items: arrayOf(ref('EventView')) }) },
  EventPage: {
    description: 'Stored events; continue with ?after=lastSeq while more is true',
    ...object({ items: arrayOf(ref('EventView')), lastSeq: integer, more: boolean }),
  },
  AgentView: {
    description: 'An agent',
    ...object({
      name: string,
      description: string,
      capabilities: strings,
      maxConcurrency: integer,
      maxAttempts: nullableInteger,
      timeoutMs: nullableInteger,
      level: integer,
      toolDomains: strings,
      tools: strings,
      maxDepth: nullableInteger,
      concurrencyLimits: { type: 'object', additionalProperties: integer },
      retry: object({ baseDelayMs: nullableInteger, maxDelayMs: nullableInteger }),
      runtime: enumOf(agentSpecSchema.properties.runtime.enum),
      a2a: {
        type: 'object',
        additionalProperties: false,
        // Header values: a redacted literal ("***") or a reference ({ env: NAME }).
        properties: { cardUrl: string, url: string, headers: { type: 'object', additionalProperties: {} } },
      },
      createdAt: time,
      updatedAt: time,
      state: enumOf(AGENT_STATES),
      pausedAt: nullableTime,
      a2aSkill: orNull(object({ inputModes: strings, outputModes: strings, examples: strings })),
      maxInFlight: nullableInteger,
    }, ['a2a']),
  },
  AgentList: { description: 'Agents', ...object({ items: arrayOf(ref('AgentView')) }) },
  AgentStats: {
    description: "An agent's totals by status, execution time and success rate",
    ...object({
      agent: string,
      totals: countsByStatus,
      executionMs: object({ average: nullableInteger, p95: nullableInteger, sampleSize: integer }),
      successRate: { type: ['number', 'null'] },
      attempts: object({ completed: integer, failed: integer }),
    }),
  },
  DelegationReport: {
    description: 'Per agent, over the window from `since` to `until` (now): attempts, outcomes, durations and SLAs',
    ...object({
      since: time,
      until: time,
      agents: arrayOf(object({
        agent: string,
        assigned: integer,
        completed: integer,
        failed: integer,
        inFlight: integer,
        durationMs: object({ median: nullableInteger, p95: nullableInteger }),
        sla: object({ met: integer, violated: integer }),
        reliability: { type: ['number', 'null'] },
        usage: object({ attempts: integer, inputTokens: integer, outputTokens: integer, costUsd: { type: 'number' } }),
      })),
    }),
  },
  Overview: {
    description: 'System-wide counts',
    ...object({
      tasks: countsByStatus, agents: integer, replicas: object({ live: integer, total: integer }),
      agentStates: object(Object.fromEntries(AGENT_STATES.map((s) => [s, integer]))),
      replicaStatuses: object(Object.fromEntries(REPLICA_STATUSES.map((s) => [s, integer]))),
      replicaHealth: object(Object.fromEntries(REPLICA_HEALTHS.map((h) => [h, integer]))),
      toolDomains: object({ up: integer, down: integer, unknown: integer, downDomains: strings }),
    }),
  },
  ReplicaView: { description: 'A replica (one worker process of an agent)', ...replicaView },
  ReplicaList: { description: "An agent's replicas", ...object({ items: arrayOf(ref('ReplicaView')) }) },
  ReplicaHeartbeat: { description: 'The replica as it is now', ...object({ replica: ref('ReplicaView') }) },
  WorkerRegistration: {
    description: 'The welcome of a registered replica: its record, the protocol version and its timing windows (docs/protocol.md)',
    ...object({ protocolVersion: integer, replica: ref('ReplicaView'), leaseMs: integer, replicaTtlMs: integer, heartbeatIntervalMs: integer, maxMessageBytes: integer, maxBatchItems: integer }),
  },
  LeasedTask: {
    description: 'An assignment given to a replica, with the task to run',
    ...object({
      assignmentId: string,
      leaseExpiresAt: time,
      deadlineAt: time,
      task: object({ ...pick(taskProperties, ['id', 'type', 'input', 'attempt', 'maxAttempts', 'priority', 'timeoutMs', 'correlation', 'traceparent', 'parentId', 'agent', 'tools']), resumed: resumption, dependencies: arrayOf(dependencyOutcome) }, ['dependencies']),
      mcp: object({ url: string, downDomains: strings }),
    }, ['mcp']),
  },
  LeasedTasks: { description: 'The assignments given to this request (none when the wait ended first)', ...object({ assignments: arrayOf(ref('LeasedTask')) }) },
  LeaseRenewal: { description: "The lease's new end, and whether cancellation was requested", ...object({ leaseExpiresAt: time, cancelRequested: boolean }) },
  Ok: { description: 'Done', ...object({ ok: { type: 'boolean', enum: [true] } }) },
  ReportResults: {
    description: "Each report of a batch, in the order sent: the status and body its single route answers (Ok, LeaseRenewal or Error); each applied or refused on its own",
    ...object({ items: arrayOf(object({ status: integer, body: any })) }),
  },
  ApiKeyView: { description: 'An API key (never its secret)', ...apiKeyView },
  ApiKeyList: { description: 'API keys', ...object({ items: arrayOf(ref('ApiKeyView')) }) },
  CreatedApiKey: { description: 'A new API key with its secret, shown in this answer only', ...object({ key: ref('ApiKeyView'), token: string }) },
  IssuedToken: {
    description: 'A scoped token and its grant',
    ...object({ token: string, id: string, scopes: arrayOf(enumOf(TOKEN_SCOPES)), agents: orNull(strings), rootTaskId: nullableString, expiresAt: time, maxExpiresAt: time, tools: orNull(strings) }),
  },
  AuditEntry: {
    description: 'One audited request',
    ...object({
      seq: integer,
      at: time,
      principalId: nullableString,
      principalName: nullableString,
      role: nullableString,
      action: string,
      target: nullableString,
      outcome: enumOf(['allowed', 'denied', 'failed']),
      status: integer,
      requestId: nullableString,
      source: nullableString,
      details: any,
    }),
  },
  AuditPage: {
    description: 'Audit entries, newest first; pass nextBefore as before for the next (older) page',
    ...object({ items: arrayOf(ref('AuditEntry')), nextBefore: nullableInteger }),
  },
  ToolDomainHealthView: { description: "A tool domain's health as the maintenance node last found it", ...toolDomainHealthView },
  ToolDomainHealthList: { description: 'One row per tool domain (GET /mcp/health)', ...object({ items: arrayOf(ref('ToolDomainHealthView')) }) },
  ToolDomainView: {
    description: 'A tool domain (an MCP server); secrets shown as references or ***',
    ...object({
      name: string, description: nullableString, transport: enumOf(['streamable-http', 'stdio']), url: nullableString,
      headers: secretRefViews, command: nullableString, args: strings, env: secretRefViews, source: enumOf(['config', 'api']),
      createdAt: time, updatedAt: time, health: toolDomainHealthView,
    }),
  },
  ToolDomainList: { description: 'Tool domains', ...object({ items: arrayOf(ref('ToolDomainView')) }) },
  ToolCallView: {
    description: 'One call through the MCP gateway (arguments as size and sha256 only)',
    ...object({
      seq: integer, at: time, taskId: string, assignmentId: string, attempt: integer, agent: string, tool: string,
      argsBytes: integer, argsSha256: string, durationMs: integer, outcome: enumOf(['ok', 'error', 'failed', 'refused']),
      rule: nullableString, error: nullableString,
    }),
  },
  ToolCallPage: {
    description: 'Tool calls, newest first; pass nextBefore as before for the next (older) page',
    ...object({ items: arrayOf(ref('ToolCallView')), nextBefore: nullableInteger }),
  },
  McpGatewayAnswer: { description: 'A JSON-RPC answer of the MCP gateway (streamable HTTP, JSON response mode)', type: 'object', additionalProperties: true },
  Health: { description: 'Liveness or readiness', ...object({ status: enumOf(['ok', 'ready', 'shutting_down', 'database_unavailable']) }) },
  OpenApiDocument: {
    description: 'An OpenAPI 3.1 document',
    type: 'object',
    additionalProperties: true,
    required: ['openapi', 'info', 'paths'],
    properties: { openapi: string, info: { type: 'object', additionalProperties: true }, paths: { type: 'object', additionalProperties: true } },
  },
  A2aAgentCard: {
    description: 'An A2A AgentCard, as the A2A specification defines it: v1.0 (`supportedInterfaces`) or v0.3 (`url`, `protocolVersion`), as asked for with A2A-Version (docs/a2a.md)',
    type: 'object',
    additionalProperties: true,
    // Only what both shapes always hold: A2A v1.0's JSON form leaves out empty lists (a card without skills).
    required: ['name', 'description', 'version'],
    properties: {
      name: string, description: string, version: string,
      skills: { type: 'array', items: { type: 'object', additionalProperties: true } },
      capabilities: { type: 'object', additionalProperties: true },
    },
  },
  A2aJsonRpcResponse: {
    description: 'A JSON-RPC 2.0 response of the A2A protocol: `result` as the A2A specification defines it per method, or `error` with its codes',
    type: 'object',
    additionalProperties: false,
    required: ['jsonrpc', 'id'],
    properties: {
      jsonrpc: { type: 'string', enum: ['2.0'] },
      id: { type: ['string', 'number', 'null'] },
      result: {},
      error: { type: 'object', additionalProperties: true, required: ['code', 'message'], properties: { code: integer, message: string } },
    },
  },
  // Webhooks (docs/webhooks.md): the secret only in the create and rotate answers.
  WebhookView: { description: 'A webhook subscription (its secret is never shown again after create or rotate)', ...webhookView },
  WebhookSecretView: { description: 'A webhook subscription with its secret, shown this once', ...object({ ...webhookProperties, secret: string }) },
  WebhookList: { description: 'Webhook subscriptions', ...object({ items: arrayOf(ref('WebhookView')) }) },
  WebhookDeliveryView: {
    description: 'One delivery: its id is the Flotilla-Delivery-Id header, the same on every attempt',
    ...object({
      id: string, webhookId: string, eventSeq: integer, eventType: string, taskId: nullableString, status: enumOf(['pending', 'failed']),
      attempts: integer, nextAt: time, createdAt: time, lastError: nullableString,
    }),
  },
  WebhookDeliveryPage: { description: "A subscription's deliveries in one status, oldest first", ...object({ items: arrayOf(ref('WebhookDeliveryView')) }) },
  WebhookReplayed: { description: 'How many failed deliveries are pending again', ...object({ replayed: integer }) },
  WebhookNotifySecret: { description: 'The secret notify deliveries are signed with', ...object({ secret: string }) },
  // Schedules (issue 16, docs/schedules.md).
  ScheduleView: {
    description: 'A schedule: its timing, task template, policies, next fire times and last firing',
    ...object({
      name: string, cron: nullableString, timezone: nullableString, everyMs: nullableInteger,
      // The template as given (its request schema has combinators: priority's aliases).
      task: any,
      overlap: enumOf(['skip', 'allow', 'cancel_previous']), catchUp: enumOf(['none', 'one', 'all']), catchUpWindowMs: integer,
      source: enumOf(['config', 'api']), ownerId: string, paused: boolean, pausedReason: nullableString,
      nextFireTimes: arrayOf(time),
      lastFire: {
        type: ['object', 'null'], additionalProperties: false, required: ['at', 'taskId', 'outcome'],
        properties: { at: time, taskId: nullableString, outcome: string, error: string },
      },
      createdAt: time, updatedAt: time,
    }),
  },
  ScheduleList: { description: 'Schedules, by name', ...object({ items: arrayOf(ref('ScheduleView')) }) },
  // -- flow control and usage (issue 16) ---------------------------------------------------
  RateLimitView: {
    description: 'A provider rate key: its limits per minute, what the last minute used, and its pause',
    ...rateLimitView,
  },
  RateLimitList: { description: 'Every declared (or paused) rate key, by key', ...object({ items: arrayOf(rateLimitView) }) },
  UsageSummary: {
    description: 'Reported usage summed per agent, root task or UTC day, of attempts reported in [since, until)',
    ...object({
      groupBy: enumOf(['agent', 'root', 'day']), since: nullableTime, until: nullableTime,
      groups: arrayOf(object({ key: string, attempts: integer, inputTokens: integer, outputTokens: integer, costUsd: { type: 'number' } })),
    }),
  },
} satisfies Record<string, Schema>;

export type ResponseName = keyof typeof definitions;

/** The named answer schemas, each with its `$id` (for app.addSchema). */
export const responseSchemas = Object.fromEntries(
  Object.entries(definitions).map(([name, schema]) => [name, { $id: name, ...schema }]),
) as unknown as Record<ResponseName, Schema & { $id: ResponseName; description: string }>;

/** A reference to a named answer, as Fastify resolves it (`Name#`). */
export const responseRef = (name: ResponseName): { $ref: string } => ref(name);

/**
 * A route's `response` schemas: the named answer per success status, plus the Error schema
 * for every 4xx and 5xx (the error handler, the auth hook and the rate limiter answer in it).
 * A status may also name an inline schema (/readyz's 503 is either Health or Error).
 */
export function answers(success: Record<number, ResponseName | Schema>): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const [status, answer] of Object.entries(success)) out[status] = typeof answer === 'string' ? ref(answer) : answer;
  return { ...out, '4xx': ref('Error'), '5xx': ref('Error') };
}
