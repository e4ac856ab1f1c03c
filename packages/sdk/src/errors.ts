// Stable error codes of the Flotilla API and the HTTP status each maps to. This is the one
// table: the server answers with these statuses and the SDK turns codes into typed errors.
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
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
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);
}
