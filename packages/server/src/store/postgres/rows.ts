// Row <-> record mapping. Column lists live here next to the mappers that read them, so a
// query and its mapper cannot disagree about names. The pool parses values already (bigint
// and integer as numbers, jsonb as JSON values, see connection.ts); the accessors still check
// each value's type, so a schema that drifted from the code fails loudly instead of leaking
// strings where numbers belong.

import type {
  AgentRecord, AssignmentRecord, EventRecord, Json, ReplicaRecord, TaskErrorInfo, TaskHead, TaskRecord, TaskStatus,
} from '../../core/types.ts';
import type { ApiKeyRecord } from '../store.ts';
import { ASSIGNMENT_STATUSES, REPLICA_STATUSES, TASK_STATUSES } from '@flotilla/sdk';
import type { Row } from './sql.ts';

// -- column lists ---------------------------------------------------------------------

export const TASK_HEAD_COLUMNS = [
  'seq', 'id', 'status', 'priority', 'agent', 'capabilities', 'replica', 'site', 'concurrency_key',
  'attempt', 'max_attempts', 'timeout_ms', 'run_at', 'assignment_id', 'cancel_requested_at',
] as const;

/** Hot-row columns a full record adds to the head. */
export const TASK_DETAIL_COLUMNS = [
  'created_at', 'updated_at', 'finished_at', 'idempotency_key', 'parent_id', 'created_by',
] as const;

export const TASK_PAYLOAD_COLUMNS = ['type', 'input', 'result', 'error', 'correlation', 'traceparent'] as const;

export const ASSIGNMENT_COLUMNS = [
  'id', 'task_id', 'agent', 'replica_id', 'attempt', 'status', 'dispatched_at', 'started_at', 'finished_at',
  'lease_expires_at', 'deadline_at', 'progress_percent', 'progress_message', 'progress_at', 'error',
] as const;

export const REPLICA_COLUMNS = [
  'id', 'agent', 'site', 'status', 'max_concurrency', 'in_flight', 'registered_at', 'last_seen_at', 'last_assigned_at',
  'completed', 'failed',
] as const;

export const AGENT_COLUMNS = [
  'name', 'description', 'capabilities', 'max_concurrency', 'max_attempts', 'timeout_ms', 'level', 'tool_domains',
  'concurrency_limits', 'retry_base_delay_ms', 'retry_max_delay_ms', 'runtime', 'created_at', 'updated_at',
] as const;

export const EVENT_COLUMNS = ['seq', 'type', 'at', 'task_id', 'agent', 'replica_id', 'assignment_id', 'data'] as const;

export const API_KEY_COLUMNS = ['id', 'name', 'role', 'hash', 'created_at', 'last_used_at'] as const;

/** `t.col AS <prefix>col, ...`: select list for a table aliased `alias` in a join. */
export function selectList(alias: string, columns: readonly string[], prefix = ''): string {
  return columns.map((c) => `${alias}.${c} AS ${prefix}${c}`).join(', ');
}

/** Select list for a full task record from `tasks t JOIN task_payloads p`. */
export const TASK_RECORD_SELECT = [
  selectList('t', TASK_HEAD_COLUMNS),
  selectList('t', TASK_DETAIL_COLUMNS),
  selectList('p', TASK_PAYLOAD_COLUMNS),
].join(', ');

// -- typed accessors ------------------------------------------------------------------

function value(row: Row, col: string): unknown {
  if (!(col in row)) throw new Error(`store row has no column ${col}`);
  return row[col];
}

function num(row: Row, col: string): number {
  const v = value(row, col);
  if (typeof v === 'number') return v;
  throw new Error(`store column ${col} is ${v === null ? 'null' : typeof v}, expected a number`);
}

function numOrNull(row: Row, col: string): number | null {
  return value(row, col) === null ? null : num(row, col);
}

function str(row: Row, col: string): string {
  const v = value(row, col);
  if (typeof v === 'string') return v;
  throw new Error(`store column ${col} is ${v === null ? 'null' : typeof v}, expected a string`);
}

function strOrNull(row: Row, col: string): string | null {
  return value(row, col) === null ? null : str(row, col);
}

function oneOf<T extends string>(row: Row, col: string, allowed: readonly T[]): T {
  const v = str(row, col);
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`store column ${col} has unexpected value ${v}`);
  return v as T;
}

/** A jsonb value, already parsed. In a NOT NULL column, SQL NULL cannot occur and JSON null reads as null. */
function json(row: Row, col: string): Json {
  return value(row, col) as Json;
}

/** A nullable jsonb column: SQL NULL (how the store writes a null value) reads as null. */
function jsonOrNull(row: Row, col: string): Json | null {
  return value(row, col) as Json | null;
}

function object<T>(row: Row, col: string): T {
  const v = value(row, col);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`store column ${col} is not a JSON object`);
  return v as T;
}

function stringArray(row: Row, col: string): string[] {
  const v = value(row, col);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`store column ${col} is not a JSON array of strings`);
  return v as string[];
}

function errorOrNull(row: Row, col: string): TaskErrorInfo | null {
  return jsonOrNull(row, col) as TaskErrorInfo | null;
}

// -- writing --------------------------------------------------------------------------

/**
 * JSON text for a nullable jsonb column: null (and a missing value) is SQL NULL, not the JSON
 * value null, matching the SQLite store.
 */
export function toJsonOrNull(v: Json | TaskErrorInfo | null | undefined): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

/** JSON text for a NOT NULL jsonb column; `undefined` (never valid JSON) is stored as null. */
export function toJson(v: Json | Record<string, string> | Record<string, number> | string[] | undefined): string {
  return v === undefined ? 'null' : JSON.stringify(v);
}

// -- records --------------------------------------------------------------------------

export function taskHeadFromRow(row: Row, prefix = ''): TaskHead {
  const c = (name: string): string => prefix + name;
  return {
    id: str(row, c('id')),
    seq: num(row, c('seq')),
    status: oneOf(row, c('status'), TASK_STATUSES),
    priority: num(row, c('priority')),
    agent: strOrNull(row, c('agent')),
    capabilities: stringArray(row, c('capabilities')),
    replica: strOrNull(row, c('replica')),
    site: strOrNull(row, c('site')),
    concurrencyKey: strOrNull(row, c('concurrency_key')),
    attempt: num(row, c('attempt')),
    maxAttempts: num(row, c('max_attempts')),
    timeoutMs: num(row, c('timeout_ms')),
    runAt: num(row, c('run_at')),
    assignmentId: strOrNull(row, c('assignment_id')),
    cancelRequestedAt: numOrNull(row, c('cancel_requested_at')),
  };
}

/** A row selected with TASK_RECORD_SELECT. */
export function taskRecordFromRow(row: Row): TaskRecord {
  return {
    ...taskHeadFromRow(row),
    type: str(row, 'type'),
    input: json(row, 'input'),
    result: jsonOrNull(row, 'result'),
    error: errorOrNull(row, 'error'),
    createdAt: num(row, 'created_at'),
    updatedAt: num(row, 'updated_at'),
    finishedAt: numOrNull(row, 'finished_at'),
    idempotencyKey: strOrNull(row, 'idempotency_key'),
    correlation: object<Record<string, string>>(row, 'correlation'),
    traceparent: strOrNull(row, 'traceparent'),
    parentId: strOrNull(row, 'parent_id'),
    createdBy: strOrNull(row, 'created_by'),
  };
}

export function assignmentFromRow(row: Row, prefix = ''): AssignmentRecord {
  const c = (name: string): string => prefix + name;
  return {
    id: str(row, c('id')),
    taskId: str(row, c('task_id')),
    agent: str(row, c('agent')),
    replicaId: str(row, c('replica_id')),
    attempt: num(row, c('attempt')),
    status: oneOf(row, c('status'), ASSIGNMENT_STATUSES),
    dispatchedAt: num(row, c('dispatched_at')),
    startedAt: numOrNull(row, c('started_at')),
    finishedAt: numOrNull(row, c('finished_at')),
    leaseExpiresAt: num(row, c('lease_expires_at')),
    deadlineAt: num(row, c('deadline_at')),
    progressPercent: numOrNull(row, c('progress_percent')),
    progressMessage: strOrNull(row, c('progress_message')),
    progressAt: numOrNull(row, c('progress_at')),
    error: errorOrNull(row, c('error')),
  };
}

export function replicaFromRow(row: Row): ReplicaRecord {
  return {
    id: str(row, 'id'),
    agent: str(row, 'agent'),
    site: strOrNull(row, 'site'),
    status: oneOf(row, 'status', REPLICA_STATUSES),
    maxConcurrency: num(row, 'max_concurrency'),
    inFlight: num(row, 'in_flight'),
    registeredAt: num(row, 'registered_at'),
    lastSeenAt: num(row, 'last_seen_at'),
    lastAssignedAt: numOrNull(row, 'last_assigned_at'),
    completed: num(row, 'completed'),
    failed: num(row, 'failed'),
  };
}

const RUNTIMES = ['pull', 'a2a', 'process'] as const;

export function agentFromRow(row: Row): AgentRecord {
  return {
    name: str(row, 'name'),
    description: str(row, 'description'),
    capabilities: stringArray(row, 'capabilities'),
    maxConcurrency: num(row, 'max_concurrency'),
    maxAttempts: numOrNull(row, 'max_attempts'),
    timeoutMs: numOrNull(row, 'timeout_ms'),
    level: num(row, 'level'),
    toolDomains: stringArray(row, 'tool_domains'),
    concurrencyLimits: object<Record<string, number>>(row, 'concurrency_limits'),
    retryBaseDelayMs: numOrNull(row, 'retry_base_delay_ms'),
    retryMaxDelayMs: numOrNull(row, 'retry_max_delay_ms'),
    runtime: oneOf(row, 'runtime', RUNTIMES),
    createdAt: num(row, 'created_at'),
    updatedAt: num(row, 'updated_at'),
  };
}

/** Agent columns in AGENT_COLUMNS order, for `VALUES ($1, ..., $14)`. */
export function agentValues(a: AgentRecord): unknown[] {
  return [
    a.name, a.description, toJson(a.capabilities), a.maxConcurrency, a.maxAttempts, a.timeoutMs, a.level, toJson(a.toolDomains),
    JSON.stringify(a.concurrencyLimits), a.retryBaseDelayMs, a.retryMaxDelayMs, a.runtime, a.createdAt, a.updatedAt,
  ];
}

export function apiKeyFromRow(row: Row): ApiKeyRecord {
  return {
    id: str(row, 'id'),
    name: str(row, 'name'),
    role: str(row, 'role'),
    hash: str(row, 'hash'),
    createdAt: num(row, 'created_at'),
    lastUsedAt: numOrNull(row, 'last_used_at'),
  };
}

export function eventFromRow(row: Row): EventRecord {
  return {
    seq: num(row, 'seq'),
    type: str(row, 'type'),
    at: num(row, 'at'),
    taskId: strOrNull(row, 'task_id'),
    agent: strOrNull(row, 'agent'),
    replicaId: strOrNull(row, 'replica_id'),
    assignmentId: strOrNull(row, 'assignment_id'),
    data: object<Record<string, Json>>(row, 'data'),
  };
}

/** `{ status, n }` rows (GROUP BY status) added into per-status counts. */
export function addStatusCounts(into: Record<TaskStatus, number>, rows: readonly Row[]): Record<TaskStatus, number> {
  for (const row of rows) into[oneOf(row, 'status', TASK_STATUSES)] += num(row, 'n');
  return into;
}

export function zeroStatusCounts(): Record<TaskStatus, number> {
  const counts = {} as Record<TaskStatus, number>;
  for (const s of TASK_STATUSES) counts[s] = 0;
  return counts;
}
