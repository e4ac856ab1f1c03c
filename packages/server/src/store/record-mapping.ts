// Row → record mapping shared by the stores. Both use the same column names; only how one
// column is read differs (SQLite returns JSON as text and integers as numbers, PostgreSQL
// returns parsed jsonb and int8 through its own parser), which each store supplies as a
// ColumnReader. One mapping means a new column cannot be read differently by two stores.

import { DEPENDENCY_FAILURE_POLICIES, ASSIGNMENT_STATUSES, REPLICA_HEALTHS, REPLICA_STATUSES, SLA_STATES, TASK_STATUSES } from '@flotilla/sdk';
import type { DependencyOutcome, AgentRecord, AssignmentRecord, EventRecord, InputRequestRecord, Json, Millis, ReplicaRecord, Resumption, TaskErrorInfo, TaskHead, TaskRecord } from '../core/types.ts';
import type { ApiKeyRecord, AuditOutcome, AuditRecord, NewAuditRecord, TokenRevocation } from './store.ts';

/** Reads one typed column of a row, throwing if the stored value does not have that type. */
export interface ColumnReader<R> {
  num(row: R, col: string): number;
  numOrNull(row: R, col: string): number | null;
  str(row: R, col: string): string;
  strOrNull(row: R, col: string): string | null;
  oneOf<T extends string>(row: R, col: string, allowed: readonly T[]): T;
  json(row: R, col: string): Json;
  jsonOrNull(row: R, col: string): Json | null;
  stringArray(row: R, col: string): string[];
  stringArrayOrNull(row: R, col: string): string[] | null;
  errorOrNull(row: R, col: string): TaskErrorInfo | null;
}

/**
 * The column readers both stores share; only decoding a JSON column differs (text to parse, or
 * a value the driver already parsed). Every reader checks the stored type, so a schema that
 * drifted from the code fails loudly instead of leaking strings where numbers belong.
 */
export function columnReaders<R extends Record<string, unknown>>(decodeJson: (raw: unknown, col: string) => Json): ColumnReader<R> {
  const value = (row: R, col: string): unknown => {
    if (!(col in row)) throw new Error(`store row has no column ${col}`);
    return row[col];
  };
  const num = (row: R, col: string): number => {
    const v = value(row, col);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    throw new Error(`store column ${col} is ${v === null ? 'null' : typeof v}, expected a number`);
  };
  const str = (row: R, col: string): string => {
    const v = value(row, col);
    if (typeof v === 'string') return v;
    throw new Error(`store column ${col} is ${v === null ? 'null' : typeof v}, expected a string`);
  };
  const json = (row: R, col: string): Json => decodeJson(value(row, col), col);
  /** SQL NULL (how the stores write a null value) reads as null. */
  const jsonOrNull = (row: R, col: string): Json | null => (value(row, col) === null ? null : json(row, col));
  const stringArray = (row: R, col: string): string[] => {
    const v = json(row, col);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`store column ${col} is not a JSON array of strings`);
    return v as string[];
  };
  return {
    num,
    numOrNull: (row, col) => (value(row, col) === null ? null : num(row, col)),
    str,
    strOrNull: (row, col) => (value(row, col) === null ? null : str(row, col)),
    oneOf: <T extends string>(row: R, col: string, allowed: readonly T[]): T => {
      const v = str(row, col);
      if (!(allowed as readonly string[]).includes(v)) throw new Error(`store column ${col} has unexpected value ${v}`);
      return v as T;
    },
    json,
    jsonOrNull,
    stringArray,
    stringArrayOrNull: (row, col) => (value(row, col) === null ? null : stringArray(row, col)),
    errorOrNull: (row, col) => jsonOrNull(row, col) as TaskErrorInfo | null,
  };
}

/** JSON for a nullable column: null (and a missing value) is SQL NULL, not the JSON value null. */
export function toJsonOrNull(v: Json | TaskErrorInfo | null | undefined): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v);
}

/** JSON for a NOT NULL column; `undefined` (never valid JSON) is stored as null. */
export function toJson(v: Json | Record<string, string> | Record<string, number> | string[] | undefined): string {
  return v === undefined ? 'null' : JSON.stringify(v);
}

// -- column lists (the same names in every store; a query and its mapper cannot disagree) ---------------------------------------------------------------------

export const TASK_HEAD_COLUMNS = [
  'seq', 'id', 'status', 'priority', 'agent', 'capabilities', 'replica', 'site', 'concurrency_key',
  'attempt', 'max_attempts', 'timeout_ms', 'run_at', 'assignment_id', 'cancel_requested_at', 'parent_id', 'sla_deadline',
  'has_dependents',
  'rate_key', 'estimated_tokens',
] as const;

/**
 * `sla_deadline` of a task without an SLA (migration 13). NOT NULL with this value rather than
 * NULL so that "no deadline sorts after every deadline" is the index's own order in both
 * databases (SQLite sorts NULL first, PostgreSQL last); records read it back as null.
 */
export const NO_SLA_DEADLINE = Number.MAX_SAFE_INTEGER;

/** The stored `sla_deadline` of a deadline (or of none). */
export function slaDeadlineColumn(deadline: Millis | null): number {
  return deadline ?? NO_SLA_DEADLINE;
}

/** Hot-row columns a full record adds to the head. */
export const TASK_DETAIL_COLUMNS = [
  'created_at', 'updated_at', 'finished_at', 'idempotency_key', 'created_by', 'root_id', 'depth', 'owner_id', 'waiting_for',
  'sla_state', 'sla_check_at',
  'on_dependency_failure',
  'cache_key', 'cache_scope', 'cached_from',
] as const;

export const TASK_PAYLOAD_COLUMNS = [
  'type', 'input', 'result', 'error', 'correlation', 'traceparent', 'tools', 'input_request', 'resumed', 'allow_degraded',
  'depends_on', 'ref', 'input_from', 'dependencies',
] as const;

export const ASSIGNMENT_COLUMNS = [
  'id', 'task_id', 'agent', 'replica_id', 'attempt', 'status', 'dispatched_at', 'started_at', 'finished_at',
  'lease_expires_at', 'deadline_at', 'progress_percent', 'progress_message', 'progress_at', 'error',
] as const;

export const REPLICA_COLUMNS = [
  'id', 'agent', 'site', 'status', 'max_concurrency', 'in_flight', 'registered_at', 'last_seen_at', 'last_assigned_at',
  'completed', 'failed', 'health', 'health_detail', 'health_at',
] as const;

/** The operator state an agent row holds beside its declaration: read with it, written only by its own statements. */
export const AGENT_CONTROL_COLUMNS = ['paused_at', 'overloaded_at'] as const;

/** An agent's declared fields: what create, update and upsert write. */
export const AGENT_COLUMNS = [
  'name', 'description', 'capabilities', 'max_concurrency', 'max_attempts', 'timeout_ms', 'level', 'tool_domains',
  'concurrency_limits', 'retry_base_delay_ms', 'retry_max_delay_ms', 'runtime', 'created_at', 'updated_at', 'tools', 'max_depth',
  'a2a',
  'a2a_skill',
  'max_in_flight',
] as const;

export const EVENT_COLUMNS = ['seq', 'type', 'at', 'task_id', 'agent', 'replica_id', 'assignment_id', 'data'] as const;

export const API_KEY_COLUMNS = [
  'id', 'name', 'role', 'hash', 'created_at', 'last_used_at', 'expires_at', 'revoked_at', 'created_by', 'agents',
] as const;

export const TOKEN_REVOCATION_COLUMNS = ['jti', 'revoked_at', 'expires_at'] as const;

/** Without `seq`: the columns an append writes. */
export const AUDIT_INSERT_COLUMNS = [
  'at', 'principal_id', 'principal_name', 'role', 'action', 'target', 'outcome', 'status', 'request_id', 'source', 'details',
] as const;

export const AUDIT_COLUMNS = ['seq', ...AUDIT_INSERT_COLUMNS] as const;

type SqlValue = string | number | null;

/** An API key's column values, by column name (JSON as text, which both stores take). */
export function apiKeyValues(k: ApiKeyRecord): Record<(typeof API_KEY_COLUMNS)[number], SqlValue> {
  return {
    id: k.id,
    name: k.name,
    role: k.role,
    hash: k.hash,
    created_at: k.createdAt,
    last_used_at: k.lastUsedAt,
    expires_at: k.expiresAt,
    revoked_at: k.revokedAt,
    created_by: k.createdBy,
    agents: k.agents === null ? null : toJson(k.agents),
  };
}

/** An audit entry's column values, by column name (JSON as text). */
export function auditValues(e: NewAuditRecord): Record<(typeof AUDIT_INSERT_COLUMNS)[number], SqlValue> {
  return {
    at: e.at,
    principal_id: e.principalId,
    principal_name: e.principalName,
    role: e.role,
    action: e.action,
    target: e.target,
    outcome: e.outcome,
    status: e.status,
    request_id: e.requestId,
    source: e.source,
    details: toJsonOrNull(e.details),
  };
}

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

const RUNTIMES = ['pull', 'a2a', 'process'] as const;
const AUDIT_OUTCOMES = ['allowed', 'denied', 'failed'] as const satisfies readonly AuditOutcome[];

function slaDeadlineOf(stored: number): Millis | null {
  return stored === NO_SLA_DEADLINE ? null : stored;
}

export function recordMappers<R>(r: ColumnReader<R>) {
  function taskHeadFromRow(row: R, prefix = ''): TaskHead {
    const c = (name: string): string => prefix + name;
    return {
      id: r.str(row, c('id')),
      seq: r.num(row, c('seq')),
      status: r.oneOf(row, c('status'), TASK_STATUSES),
      priority: r.num(row, c('priority')),
      agent: r.strOrNull(row, c('agent')),
      capabilities: r.stringArray(row, c('capabilities')),
      replica: r.strOrNull(row, c('replica')),
      site: r.strOrNull(row, c('site')),
      concurrencyKey: r.strOrNull(row, c('concurrency_key')),
      attempt: r.num(row, c('attempt')),
      maxAttempts: r.num(row, c('max_attempts')),
      timeoutMs: r.num(row, c('timeout_ms')),
      runAt: r.num(row, c('run_at')),
      assignmentId: r.strOrNull(row, c('assignment_id')),
      cancelRequestedAt: r.numOrNull(row, c('cancel_requested_at')),
      parentId: r.strOrNull(row, c('parent_id')),
      slaDeadline: slaDeadlineOf(r.num(row, c('sla_deadline'))),
      hasDependents: r.num(row, c('has_dependents')) !== 0,
      rateKey: r.strOrNull(row, c('rate_key')),
      estimatedTokens: r.numOrNull(row, c('estimated_tokens')),
    };
  }

  /** A row selected with TASK_RECORD_SELECT. */
  function taskRecordFromRow(row: R): TaskRecord {
    return {
      ...taskHeadFromRow(row),
      type: r.str(row, 'type'),
      input: r.json(row, 'input'),
      result: r.jsonOrNull(row, 'result'),
      error: r.errorOrNull(row, 'error'),
      createdAt: r.num(row, 'created_at'),
      updatedAt: r.num(row, 'updated_at'),
      finishedAt: r.numOrNull(row, 'finished_at'),
      idempotencyKey: r.strOrNull(row, 'idempotency_key'),
      correlation: r.json(row, 'correlation') as Record<string, string>,
      traceparent: r.strOrNull(row, 'traceparent'),
      createdBy: r.strOrNull(row, 'created_by'),
      rootId: r.str(row, 'root_id'),
      depth: r.num(row, 'depth'),
      ownerId: r.strOrNull(row, 'owner_id'),
      waitingFor: r.stringArrayOrNull(row, 'waiting_for'),
      inputRequest: r.jsonOrNull(row, 'input_request') as InputRequestRecord | null,
      resumed: r.jsonOrNull(row, 'resumed') as Resumption | null,
      slaState: r.oneOf(row, 'sla_state', SLA_STATES),
      slaCheckAt: r.numOrNull(row, 'sla_check_at'),
      tools: r.stringArray(row, 'tools'),
      allowDegraded: r.num(row, 'allow_degraded') !== 0,
      dependsOn: r.stringArray(row, 'depends_on'),
      onDependencyFailure: r.strOrNull(row, 'on_dependency_failure') === null ? null : r.oneOf(row, 'on_dependency_failure', DEPENDENCY_FAILURE_POLICIES),
      ref: r.strOrNull(row, 'ref'),
      inputFrom: r.jsonOrNull(row, 'input_from'),
      dependencies: r.jsonOrNull(row, 'dependencies') as DependencyOutcome[] | null,
      cacheKey: r.strOrNull(row, 'cache_key'),
      cacheScope: r.strOrNull(row, 'cache_scope'),
      cachedFrom: r.strOrNull(row, 'cached_from'),
    };
  }

  function assignmentFromRow(row: R, prefix = ''): AssignmentRecord {
    const c = (name: string): string => prefix + name;
    return {
      id: r.str(row, c('id')),
      taskId: r.str(row, c('task_id')),
      agent: r.str(row, c('agent')),
      replicaId: r.str(row, c('replica_id')),
      attempt: r.num(row, c('attempt')),
      status: r.oneOf(row, c('status'), ASSIGNMENT_STATUSES),
      dispatchedAt: r.num(row, c('dispatched_at')),
      startedAt: r.numOrNull(row, c('started_at')),
      finishedAt: r.numOrNull(row, c('finished_at')),
      leaseExpiresAt: r.num(row, c('lease_expires_at')),
      deadlineAt: r.num(row, c('deadline_at')),
      progressPercent: r.numOrNull(row, c('progress_percent')),
      progressMessage: r.strOrNull(row, c('progress_message')),
      progressAt: r.numOrNull(row, c('progress_at')),
      error: r.errorOrNull(row, c('error')),
    };
  }

  function replicaFromRow(row: R): ReplicaRecord {
    return {
      id: r.str(row, 'id'),
      agent: r.str(row, 'agent'),
      site: r.strOrNull(row, 'site'),
      status: r.oneOf(row, 'status', REPLICA_STATUSES),
      maxConcurrency: r.num(row, 'max_concurrency'),
      inFlight: r.num(row, 'in_flight'),
      registeredAt: r.num(row, 'registered_at'),
      lastSeenAt: r.num(row, 'last_seen_at'),
      lastAssignedAt: r.numOrNull(row, 'last_assigned_at'),
      completed: r.num(row, 'completed'),
      failed: r.num(row, 'failed'),
      health: r.oneOf(row, 'health', REPLICA_HEALTHS),
      healthDetail: r.jsonOrNull(row, 'health_detail') as Record<string, Json> | null,
      healthAt: r.numOrNull(row, 'health_at'),
    };
  }

  function agentFromRow(row: R): AgentRecord {
    return {
      name: r.str(row, 'name'),
      description: r.str(row, 'description'),
      capabilities: r.stringArray(row, 'capabilities'),
      maxConcurrency: r.num(row, 'max_concurrency'),
      maxAttempts: r.numOrNull(row, 'max_attempts'),
      timeoutMs: r.numOrNull(row, 'timeout_ms'),
      level: r.num(row, 'level'),
      toolDomains: r.stringArray(row, 'tool_domains'),
      concurrencyLimits: r.json(row, 'concurrency_limits') as Record<string, number>,
      retryBaseDelayMs: r.numOrNull(row, 'retry_base_delay_ms'),
      retryMaxDelayMs: r.numOrNull(row, 'retry_max_delay_ms'),
      runtime: r.oneOf(row, 'runtime', RUNTIMES),
      createdAt: r.num(row, 'created_at'),
      updatedAt: r.num(row, 'updated_at'),
      tools: r.stringArray(row, 'tools'),
      maxDepth: r.numOrNull(row, 'max_depth'),
      a2a: r.jsonOrNull(row, 'a2a') as unknown as AgentRecord['a2a'],
      pausedAt: r.numOrNull(row, 'paused_at'),
      overloadedAt: r.numOrNull(row, 'overloaded_at'),
      a2aSkill: r.jsonOrNull(row, 'a2a_skill') as AgentRecord['a2aSkill'],
      maxInFlight: r.numOrNull(row, 'max_in_flight'),
    };
  }

  function eventFromRow(row: R): EventRecord {
    return {
      seq: r.num(row, 'seq'),
      type: r.str(row, 'type'),
      at: r.num(row, 'at'),
      taskId: r.strOrNull(row, 'task_id'),
      agent: r.strOrNull(row, 'agent'),
      replicaId: r.strOrNull(row, 'replica_id'),
      assignmentId: r.strOrNull(row, 'assignment_id'),
      data: r.json(row, 'data') as Record<string, Json>,
    };
  }

  function apiKeyFromRow(row: R): ApiKeyRecord {
    return {
      id: r.str(row, 'id'),
      name: r.str(row, 'name'),
      role: r.str(row, 'role'),
      hash: r.str(row, 'hash'),
      createdAt: r.num(row, 'created_at'),
      lastUsedAt: r.numOrNull(row, 'last_used_at'),
      expiresAt: r.numOrNull(row, 'expires_at'),
      revokedAt: r.numOrNull(row, 'revoked_at'),
      createdBy: r.strOrNull(row, 'created_by'),
      agents: r.stringArrayOrNull(row, 'agents'),
    };
  }

  function tokenRevocationFromRow(row: R): TokenRevocation {
    return {
      jti: r.str(row, 'jti'),
      revokedAt: r.num(row, 'revoked_at'),
      expiresAt: r.num(row, 'expires_at'),
    };
  }

  function auditFromRow(row: R): AuditRecord {
    return {
      seq: r.num(row, 'seq'),
      at: r.num(row, 'at'),
      principalId: r.strOrNull(row, 'principal_id'),
      principalName: r.strOrNull(row, 'principal_name'),
      role: r.strOrNull(row, 'role'),
      action: r.str(row, 'action'),
      target: r.strOrNull(row, 'target'),
      outcome: r.oneOf(row, 'outcome', AUDIT_OUTCOMES),
      status: r.num(row, 'status'),
      requestId: r.strOrNull(row, 'request_id'),
      source: r.strOrNull(row, 'source'),
      details: r.jsonOrNull(row, 'details'),
    };
  }

  return {
    taskHeadFromRow, taskRecordFromRow, assignmentFromRow, replicaFromRow, agentFromRow, eventFromRow, apiKeyFromRow,
    tokenRevocationFromRow, auditFromRow,
  };
}
