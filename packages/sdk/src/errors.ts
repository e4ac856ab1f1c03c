// Stable error codes of the Flotilla API and the HTTP status each maps to. This is the one
// table: the server answers with these statuses and the SDK turns codes into typed errors.
// docs/protocol.md §5 is rendered from it and ERROR_DESCRIPTIONS (scripts/error-table.ts).
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  /** A `tools.allow` naming a tool outside the agent's ceiling. */
  TOOL_OUTSIDE_CEILING: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  /** A spawn under a task already at the tree's maximum depth. */
  DEPTH_LIMIT: 403,
  /** A child for an agent whose level is not greater than its parent's agent's. */
  LEVEL_NOT_ALLOWED: 403,
  /** A spawn whose `tools.allow` names a tool its parent may not use. */
  TOOL_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  AGENT_NOT_FOUND: 404,
  KEY_NOT_FOUND: 404,
  REPLICA_NOT_FOUND: 404,
  ASSIGNMENT_NOT_FOUND: 404,
  AGENT_EXISTS: 409,
  AGENT_IN_USE: 409,
  INVALID_TRANSITION: 409,
  ASSIGNMENT_SUPERSEDED: 409,
  REPLICA_MISMATCH: 409,
  REPLICA_NOT_LIVE: 409,
  /** WebSocket protocol: a message other than `hello` before `hello` succeeded. */
  NOT_REGISTERED: 409,
  IDEMPOTENCY_CONFLICT: 409,
  /** An operator's assign that nothing can take now; `details.reason` says why. */
  NOT_ASSIGNABLE: 409,
  /** A submit under a parent that is cancelled or being cancelled. */
  PARENT_CANCELLED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** A plain HTTP request to a WebSocket endpoint. */
  UPGRADE_REQUIRED: 426,
  UNKNOWN_AGENT: 422,
  NO_AGENT_FOR_CAPABILITIES: 422,
  PARENT_NOT_FOUND: 422,
  UNKNOWN_REPLICA: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  STORE_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  /** Over A2A: the task has no push-notification config with that id. */
  A2A_PUSH_CONFIG_NOT_FOUND: 404,
  TOOL_DOMAIN_NOT_FOUND: 404,
  ATTEMPT_TOKEN_REQUIRED: 403,
  /** Over A2A: the task has the most push-notification configs a task may have. */
  A2A_PUSH_CONFIG_LIMIT: 409,
  /** `dependsOn` names a task that does not exist (or that the caller cannot see), or a `#ref` no item of the workflow has. */
  UNKNOWN_DEPENDENCY: 400,
  /** The dependencies of a workflow's items go round in a circle. */
  DEPENDENCY_CYCLE: 400,
  /** Two items of a workflow have the same `ref`. */
  DUPLICATE_REF: 400,
  /** An input template (`inputFrom`, `then.input`) is malformed: a bad `$from`, or one naming no dependency. */
  INVALID_TEMPLATE: 400,
  /** Webhooks (docs/webhooks.md). */
  WEBHOOK_NOT_FOUND: 404,
  WEBHOOK_DELIVERY_NOT_FOUND: 404,
  WEBHOOK_URL_INVALID: 400,
  WEBHOOK_EVENTS_INVALID: 400,
  /** A schedule whose timing or task template cannot be used (docs/schedules.md). */
  INVALID_SCHEDULE: 400,
  SCHEDULE_NOT_FOUND: 404,
  SCHEDULE_EXISTS: 409,
  RATE_LIMIT_NOT_FOUND: 404,
  WEBHOOK_LIMIT: 409,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);
}

/**
 * One line on what each code means. docs/protocol.md §5 renders its error table from this
 * map and ERROR_STATUS (`node scripts/error-table.ts`; a test fails when the two differ), so
 * a new code needs a line here: the type makes it a compile error to leave one out.
 */
export const ERROR_DESCRIPTIONS: { readonly [C in ErrorCode]: string } = {
  VALIDATION_FAILED: 'a body, parameter or socket message does not match its schema; `details` is a list of `{path, message}`',
  INVALID_JSON: 'the body or socket frame is not JSON, or is empty while `Content-Type: application/json` is set',
  UNAUTHENTICATED: 'no token, or one that is wrong, expired or revoked',
  FORBIDDEN: "the caller's role, agent list or token scope does not allow this action, or the attempt its token was issued to has ended",
  DEPTH_LIMIT: "a spawn under a task already at the deepest a task may be (the server's `maxDepth`, or its agent's when narrower), or with an attempt token that carries no spawn right for that reason; `details` names the `depth` the child would have and the `maxDepth`",
  LEVEL_NOT_ALLOWED: "a child for an agent whose level is not greater than its parent's agent's (or not equal or greater, with `allowEqualLevel`); `details` names `parentLevel`, `childLevel` and `allowEqualLevel`",
  TOOL_NOT_ALLOWED: "`tools.allow` of a task under a parent names a tool the parent may not use (a spawn never widens its parent's tools); `details.tools` lists them, `details.allowed` is the parent's set",
  TOOL_OUTSIDE_CEILING: "`tools.allow` names a tool outside the agent's ceiling (its declared `tools`; of every candidate agent, for capability routing); `details.tools` lists them, `details.allowed` is the ceiling",
  NOT_FOUND: 'no such route (path or method)',
  TASK_NOT_FOUND: 'no task with this id that the caller may see',
  AGENT_NOT_FOUND: 'no agent with this name',
  KEY_NOT_FOUND: 'no API key with this id',
  REPLICA_NOT_FOUND: 'no replica with this id',
  ASSIGNMENT_NOT_FOUND: 'no assignment with this id (mistyped, or deleted by retention long after it ended)',
  AGENT_EXISTS: 'an agent with this name exists already',
  AGENT_IN_USE: 'the agent still has unfinished tasks, so it cannot be deleted',
  INVALID_TRANSITION: 'the action does not apply in the current state: cancelling a finished task, `cancelled` without a requested cancellation, requeueing a task that did not fail, revoking the last admin key',
  ASSIGNMENT_SUPERSEDED: "a report about an attempt that is no longer the task's current, live one; `details.assignmentStatus` says what became of it",
  REPLICA_MISMATCH: 'the assignment is held by another replica, or the replica id belongs to another agent',
  REPLICA_NOT_LIVE: 'the replica was declared lost or deregistered',
  NOT_REGISTERED: 'WebSocket: a worker op before `hello` succeeded on the connection',
  IDEMPOTENCY_CONFLICT: 'the idempotency key is already used by a task the caller cannot see',
  NOT_ASSIGNABLE: '`POST /tasks/{id}/assign`: nothing can take the task now; `details.reason` is one of `not_pending`, `pinned_elsewhere`, `agent_does_not_serve`, `replica_not_live`, `no_live_replica`, `agent_paused`, `replica_unhealthy`, `not_waiting`, `no_free_slot`, `concurrency_key_full`, `replica_gone`, `tool_domain_down`, `rate_limited`',
  PARENT_CANCELLED: 'a submit under a parent that is cancelled or being cancelled (its tree is being cancelled): nothing was created',
  PAYLOAD_TOO_LARGE: "the body is larger than the server's limit (`maxMessageBytes`, 1 MiB by default)",
  UNSUPPORTED_MEDIA_TYPE: 'a body that is not `application/json`',
  UPGRADE_REQUIRED: 'a plain HTTP request to a WebSocket endpoint (`/workers/socket`, `/socket`)',
  UNKNOWN_AGENT: "the named agent is not registered (submit, register; lease: the replica's agent was deleted)",
  NO_AGENT_FOR_CAPABILITIES: 'no registered agent declares all the requested capabilities',
  PARENT_NOT_FOUND: '`parentId` names no task',
  UNKNOWN_REPLICA: "`replica` (a pin) names no replica, or one of another agent",
  RATE_LIMITED: "over the caller's request budget (or, without a token, its address's); `Retry-After` or `details.retryAfterMs` says when to try again",
  INTERNAL: 'an unexpected server error (logged with the request id)',
  STORE_UNAVAILABLE: 'the database is unavailable: unreachable, out of connections or other resources, read-only after a failover, restarting; `Retry-After: 2`',
  SHUTTING_DOWN: 'the server is shutting down; `Retry-After: 2`',
  A2A_PUSH_CONFIG_NOT_FOUND: 'the A2A task has no push-notification config with this id (answered over A2A as TaskNotFoundError, -32001)',
  TOOL_DOMAIN_NOT_FOUND: 'no MCP tool domain with this name (GET /tool-domains lists them)',
  ATTEMPT_TOKEN_REQUIRED: "the MCP gateway takes an attempt's own token (POST /assignments/{id}/token; the SDK worker's ctx.mcp()), not an API key or another token: the tools it allows are that attempt's",
  A2A_PUSH_CONFIG_LIMIT: 'the A2A task has the most push-notification configs a task may have (10; `details.max`): delete one first (answered over A2A as InvalidParams, -32602)',
  UNKNOWN_DEPENDENCY: "`dependsOn` names a task that does not exist or that the caller cannot see, or a `#ref` no item of the workflow has (`details.unknown`): nothing was created",
  DEPENDENCY_CYCLE: "the workflow's dependencies go round in a circle (`details.cycle`, the refs in order): nothing was created",
  DUPLICATE_REF: 'two items of a workflow have the same `ref` (`details.ref`): nothing was created',
  INVALID_TEMPLATE: 'an input template (`inputFrom`, `then.input`) is malformed, or a `$from` names no dependency of the task (`details.path`): nothing was created',
  WEBHOOK_NOT_FOUND: 'no webhook subscription with this id that the caller may see',
  WEBHOOK_DELIVERY_NOT_FOUND: 'the subscription has no failed delivery with this id (it was sent, is still pending, or was deleted with its subscription)',
  WEBHOOK_URL_INVALID: 'a webhook or `notify` URL that is not an absolute http(s) URL, carries credentials (`user:pass@`) or a fragment, or is longer than 2048 characters; `details.reason` says which',
  WEBHOOK_EVENTS_INVALID: "`events` names something that is neither an event type (`task.completed`), a pattern ending in `.*` (`task.*`) nor `*`; `details.events` lists the bad ones",
  INVALID_SCHEDULE: "a schedule's `cron`, `timezone` or `everyMs` cannot be used, or its `task` template would be refused at submit; `details.code` is the submit's code (`UNKNOWN_AGENT`, `VALIDATION_FAILED`, ...) for a template",
  SCHEDULE_NOT_FOUND: 'no schedule with this name (GET /schedules lists them)',
  SCHEDULE_EXISTS: 'a schedule with this name exists already (PATCH it, or delete it first)',
  RATE_LIMIT_NOT_FOUND: 'no provider rate limit is declared for this key (GET /rate-limits lists them)',
  WEBHOOK_LIMIT: 'the caller has the most webhook subscriptions one owner may have (100; `details.max`): delete one first',
};

/**
 * The codes a worker can be answered with: by the worker endpoints (docs/protocol.md §4), the
 * worker ops of the WebSocket protocol (§11) and its upgrade. §5's "what a worker does"
 * table covers exactly these (a test checks it).
 */
export const WORKER_ERROR_CODES: readonly ErrorCode[] = [
  'ASSIGNMENT_SUPERSEDED', 'UNKNOWN_AGENT', 'REPLICA_NOT_LIVE', 'REPLICA_NOT_FOUND', 'REPLICA_MISMATCH',
  'ASSIGNMENT_NOT_FOUND', 'TASK_NOT_FOUND', 'INVALID_TRANSITION', 'NOT_REGISTERED', 'FORBIDDEN', 'VALIDATION_FAILED',
  'INVALID_JSON', 'UNSUPPORTED_MEDIA_TYPE', 'UPGRADE_REQUIRED', 'PAYLOAD_TOO_LARGE', 'UNAUTHENTICATED', 'NOT_FOUND',
  'RATE_LIMITED', 'INTERNAL', 'STORE_UNAVAILABLE', 'SHUTTING_DOWN',
];
