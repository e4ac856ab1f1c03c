// Row <-> record mapping. Column lists live here next to the mappers that read them, so a
// query and its mapper cannot disagree about names. The pool parses values already (bigint
// and integer as numbers, jsonb as JSON values, see connection.ts); the accessors still check
// each value's type, so a schema that drifted from the code fails loudly instead of leaking
// strings where numbers belong.

import type { AgentRecord, Json, TaskErrorInfo, TaskStatus } from '../../core/types.ts';
import { TASK_STATUSES } from '@flotilla/sdk';
import type { Row } from './sql.ts';
import { recordMappers } from '../record-mapping.ts';

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

/** Agent columns in AGENT_COLUMNS order, for `VALUES ($1, ..., $14)`. */
export function agentValues(a: AgentRecord): unknown[] {
  return [
    a.name, a.description, toJson(a.capabilities), a.maxConcurrency, a.maxAttempts, a.timeoutMs, a.level, toJson(a.toolDomains),
    JSON.stringify(a.concurrencyLimits), a.retryBaseDelayMs, a.retryMaxDelayMs, a.runtime, a.createdAt, a.updatedAt,
  ];
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

// -- records (the mapping itself is shared: ../record-mapping.ts) ---------------------------

export const {
  taskHeadFromRow, taskRecordFromRow, assignmentFromRow, replicaFromRow, agentFromRow, eventFromRow, apiKeyFromRow,
} = recordMappers<Row>({ num, numOrNull, str, strOrNull, oneOf, json, jsonOrNull, stringArray, errorOrNull });
