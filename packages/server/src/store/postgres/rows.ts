// Row <-> record mapping. Column lists live here next to the mappers that read them, so a
// query and its mapper cannot disagree about names. The pool parses values already (bigint
// and integer as numbers, jsonb as JSON values, see connection.ts); the accessors still check
// each value's type, so a schema that drifted from the code fails loudly instead of leaking
// strings where numbers belong.

import type { AgentRecord, Json, TaskStatus } from '../../core/types.ts';
import { TASK_STATUSES } from '@flotilla/sdk';
import type { Row } from './sql.ts';
import { columnReaders, recordMappers, toJson, toJsonOrNull } from '../record-mapping.ts';

export { toJson, toJsonOrNull };

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
  for (const row of rows) into[readers.oneOf(row, 'status', TASK_STATUSES)] += readers.num(row, 'n');
  return into;
}

export function zeroStatusCounts(): Record<TaskStatus, number> {
  const counts = {} as Record<TaskStatus, number>;
  for (const s of TASK_STATUSES) counts[s] = 0;
  return counts;
}

// -- records (the mapping itself is shared: ../record-mapping.ts) ---------------------------

/** The pool returns jsonb already parsed. */
const readers = columnReaders<Row>((raw) => raw as Json);

export const {
  taskHeadFromRow, taskRecordFromRow, assignmentFromRow, replicaFromRow, agentFromRow, eventFromRow, apiKeyFromRow,
} = recordMappers<Row>(readers);
