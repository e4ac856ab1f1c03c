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
export {
  TASK_HEAD_COLUMNS, TASK_DETAIL_COLUMNS, TASK_PAYLOAD_COLUMNS, ASSIGNMENT_COLUMNS, REPLICA_COLUMNS, AGENT_COLUMNS, AGENT_CONTROL_COLUMNS, EVENT_COLUMNS, API_KEY_COLUMNS,
  TOKEN_REVOCATION_COLUMNS, AUDIT_COLUMNS, AUDIT_INSERT_COLUMNS, apiKeyValues, auditValues, selectList, TASK_RECORD_SELECT,
  NO_SLA_DEADLINE, slaDeadlineColumn,
} from '../record-mapping.ts';

// -- records --------------------------------------------------------------------------

/** Agent columns in AGENT_COLUMNS order, for `VALUES ($1, ..., $16)`. */
export function agentValues(a: AgentRecord): unknown[] {
  return [
    a.name, a.description, toJson(a.capabilities), a.maxConcurrency, a.maxAttempts, a.timeoutMs, a.level, toJson(a.toolDomains),
    JSON.stringify(a.concurrencyLimits), a.retryBaseDelayMs, a.retryMaxDelayMs, a.runtime, a.createdAt, a.updatedAt,
    toJson(a.tools), a.maxDepth, a.a2a === null ? null : JSON.stringify(a.a2a),
    a.a2aSkill === null ? null : JSON.stringify(a.a2aSkill),
    a.maxInFlight ?? null,
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
export const readers = columnReaders<Row>((raw) => raw as Json);

export const {
  taskHeadFromRow, taskRecordFromRow, assignmentFromRow, replicaFromRow, agentFromRow, eventFromRow, apiKeyFromRow,
  tokenRevocationFromRow, auditFromRow,
} = recordMappers<Row>(readers);
