// Tool domains and tool calls (issue 15) as rows, shared by both stores: the columns, the
// row → record mapping and the tool-call listing's conditions. Only how a value becomes a
// statement parameter, and how a JSON column is decoded, differs per store.

import {
  TOOL_CALL_OUTCOMES, type GatewayRefusalRule, type NewToolCall, type ToolCallListParams, type ToolCallRecord,
  type ToolDomainHealthStatus, type ToolDomainRecord, type ToolDomainSpec,
} from '../core/tool-domains.ts';
import type { Bind } from './audit-query.ts';

export const TOOL_DOMAIN_COLUMNS = [
  'name', 'spec', 'source', 'created_at', 'updated_at', 'status', 'checked_at', 'latency_ms', 'tool_count', 'last_error', 'changed_at',
] as const;

/** Without `seq`: the columns an append writes, in NewToolCall's order. */
export const TOOL_CALL_INSERT_COLUMNS = [
  'at', 'task_id', 'assignment_id', 'attempt', 'agent', 'tool', 'args_bytes', 'args_sha256', 'duration_ms', 'outcome', 'rule', 'error',
] as const;

type Row = Record<string, unknown>;

const num = (row: Row, col: string): number => {
  const v = row[col];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`store row column ${col} is not a number`);
};
const numOrNull = (row: Row, col: string): number | null => (row[col] === null || row[col] === undefined ? null : num(row, col));
const strOrNull = (row: Row, col: string): string | null => (row[col] === null || row[col] === undefined ? null : String(row[col]));

export function toolDomainFromRow(row: Row, decodeSpec: (raw: unknown) => unknown): ToolDomainRecord {
  const source = String(row.source);
  const status = String(row.status);
  if (source !== 'config' && source !== 'api') throw new Error(`tool domain ${String(row.name)} has source ${source}`);
  if (status !== 'up' && status !== 'down' && status !== 'unknown') throw new Error(`tool domain ${String(row.name)} has status ${status}`);
  return {
    spec: decodeSpec(row.spec) as ToolDomainSpec,
    source,
    createdAt: num(row, 'created_at'),
    updatedAt: num(row, 'updated_at'),
    health: {
      status: status as ToolDomainHealthStatus,
      checkedAt: numOrNull(row, 'checked_at'),
      latencyMs: numOrNull(row, 'latency_ms'),
      toolCount: numOrNull(row, 'tool_count'),
      lastError: strOrNull(row, 'last_error'),
      changedAt: numOrNull(row, 'changed_at'),
    },
  };
}

export function toolCallFromRow(row: Row): ToolCallRecord {
  const outcome = String(row.outcome);
  if (!(TOOL_CALL_OUTCOMES as readonly string[]).includes(outcome)) throw new Error(`tool call ${String(row.seq)} has outcome ${outcome}`);
  return {
    seq: num(row, 'seq'),
    at: num(row, 'at'),
    taskId: String(row.task_id),
    assignmentId: String(row.assignment_id),
    attempt: num(row, 'attempt'),
    agent: String(row.agent),
    tool: String(row.tool),
    argsBytes: num(row, 'args_bytes'),
    argsSha256: String(row.args_sha256),
    durationMs: num(row, 'duration_ms'),
    outcome: outcome as ToolCallRecord['outcome'],
    rule: strOrNull(row, 'rule') as GatewayRefusalRule | null,
    error: strOrNull(row, 'error'),
  };
}

/** A call's column values, in TOOL_CALL_INSERT_COLUMNS order. */
export function toolCallValues(c: NewToolCall): Array<string | number | null> {
  return [c.at, c.taskId, c.assignmentId, c.attempt, c.agent, c.tool, c.argsBytes, c.argsSha256, c.durationMs, c.outcome, c.rule, c.error];
}

/** The WHERE terms (to AND together) of a tool-call listing, newest first from `before`. */
export function toolCallListWhere(params: ToolCallListParams, bind: Bind): string[] {
  const where: string[] = [];
  if (params.before !== undefined) where.push(`seq < ${bind(params.before, 'bigint')}`);
  if (params.taskId !== undefined) where.push(`task_id = ${bind(params.taskId, 'text')}`);
  if (params.agent !== undefined) where.push(`agent = ${bind(params.agent, 'text')}`);
  if (params.tool !== undefined) where.push(`tool = ${bind(params.tool, 'text')}`);
  if (params.outcome !== undefined) where.push(`outcome = ${bind(params.outcome, 'text')}`);
  if (params.since !== undefined) where.push(`at >= ${bind(params.since, 'bigint')}`);
  if (params.until !== undefined) where.push(`at < ${bind(params.until, 'bigint')}`);
  return where;
}

/** The page out of `limit + 1` records fetched, newest first. */
export function toolCallPage(records: ToolCallRecord[], limit: number): { items: ToolCallRecord[]; nextBefore: number | null } {
  const items = records.slice(0, Math.max(0, Math.floor(limit)));
  const last = items.at(-1);
  return { items, nextBefore: records.length > items.length && last !== undefined ? last.seq : null };
}
