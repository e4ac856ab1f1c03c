// Row <-> record mapping. Column lists live here next to the mappers that read them, so a
// query and its mapper cannot disagree about names. Accessors check the SQLite type of each
// value: a mismatch means the schema and the code drifted apart, and fails loudly.

import type { SQLInputValue, SQLOutputValue } from 'node:sqlite';
import type { AgentRecord, AssignmentRecord, Json } from '../../core/types.ts';

import { columnReaders, recordMappers, toJson, toJsonOrNull } from '../record-mapping.ts';

export { toJson, toJsonOrNull };

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

export function changes(result: { changes: number | bigint }): number {
  return Number(result.changes);
}

export type Params = Record<string, SQLInputValue>;

// -- records --------------------------------------------------------------------------

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

// -- records (the mapping itself is shared: ../record-mapping.ts) ---------------------------

export const {
  taskHeadFromRow, taskRecordFromRow, assignmentFromRow, replicaFromRow, agentFromRow, eventFromRow, apiKeyFromRow,
} = recordMappers<Row>(columnReaders<Row>(
  // SQLite returns JSON as text.
  (raw, col) => {
  if (typeof raw !== 'string') throw new Error(`store column ${col} is ${raw === null ? 'null' : typeof raw}, expected JSON text`);
  return JSON.parse(raw) as Json;
},
));
