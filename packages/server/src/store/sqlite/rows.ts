// Row <-> record mapping. Column lists live here next to the mappers that read them, so a
// query and its mapper cannot disagree about names. Accessors check the SQLite type of each
// value: a mismatch means the schema and the code drifted apart, and fails loudly.

import type { SQLInputValue, SQLOutputValue } from 'node:sqlite';
import type {
  AgentRecord, AssignmentRecord, EventRecord, Json, ReplicaRecord, TaskErrorInfo, TaskHead, TaskRecord,
} from '../../core/types.ts';
import type { ApiKeyRecord } from '../store.ts';
import { ASSIGNMENT_STATUSES, REPLICA_STATUSES, TASK_STATUSES } from '@flotilla/sdk';

export type Row = Record<string, SQLOutputValue>;

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

function value(row: Row, col: string): SQLOutputValue {
  if (!(col in row)) throw new Error(`store row has no column ${col}`);
  return row[col]!;
}

function num(row: Row, col: string): number {
  const v = value(row, col);
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`store column ${col} is ${typeof v}, expected a number`);
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

function json(row: Row, col: string): Json {
  return JSON.parse(str(row, col)) as Json;
}

function jsonOrNull(row: Row, col: string): Json | null {
  return value(row, col) === null ? null : json(row, col);
}

function stringArray(row: Row, col: string): string[] {
  return json(row, col) as string[];
}

function errorOrNull(row: Row, col: string): TaskErrorInfo | null {
  return jsonOrNull(row, col) as TaskErrorInfo | null;
}

// -- writing --------------------------------------------------------------------------

/** JSON for a nullable column: null (and a missing value) is SQL NULL, not the text 'null'. */
export function toJsonOrNull(v: Json | TaskErrorInfo | null | undefined): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

/** JSON for a NOT NULL column; `undefined` (never valid JSON) is stored as null. */
export function toJson(v: Json | Record<string, string> | string[] | undefined): string {
  return v === undefined ? 'null' : JSON.stringify(v);
}

export function changes(result: { changes: number | bigint }): number {
  return Number(result.changes);
}

export type Params = Record<string, SQLInputValue>;

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
    correlation: json(row, 'correlation') as Record<string, string>,
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

export function assignmentParams(a: AssignmentRecord): Params {
  return {
    id: a.id,
    task_id: a.taskId,
    agent: a.agent,
    replica_id: a.replicaId,
    attempt: a.attempt,
    status: a.status,
    dispatched_at: a.dispatchedAt,
    started_at: a.startedAt,
    finished_at: a.finishedAt,
    lease_expires_at: a.leaseExpiresAt,
    deadline_at: a.deadlineAt,
    progress_percent: a.progressPercent,
    progress_message: a.progressMessage,
    progress_at: a.progressAt,
    error: toJsonOrNull(a.error),
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
    concurrencyLimits: json(row, 'concurrency_limits') as Record<string, number>,
    retryBaseDelayMs: numOrNull(row, 'retry_base_delay_ms'),
    retryMaxDelayMs: numOrNull(row, 'retry_max_delay_ms'),
    runtime: oneOf(row, 'runtime', RUNTIMES),
    createdAt: num(row, 'created_at'),
    updatedAt: num(row, 'updated_at'),
  };
}

export function agentParams(a: AgentRecord): Params {
  return {
    name: a.name,
    description: a.description,
    capabilities: toJson(a.capabilities),
    max_concurrency: a.maxConcurrency,
    max_attempts: a.maxAttempts,
    timeout_ms: a.timeoutMs,
    level: a.level,
    tool_domains: toJson(a.toolDomains),
    concurrency_limits: JSON.stringify(a.concurrencyLimits),
    retry_base_delay_ms: a.retryBaseDelayMs,
    retry_max_delay_ms: a.retryMaxDelayMs,
    runtime: a.runtime,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
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
    data: json(row, 'data') as Record<string, Json>,
  };
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
