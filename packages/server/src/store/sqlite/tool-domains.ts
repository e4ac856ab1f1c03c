// SQLite: tool domains and the tool-call audit (issue 15). Mapping and conditions are shared
// with PostgreSQL (../tool-domain-rows.ts).

import type { NewToolCall, ToolCallListParams, ToolCallRecord, ToolDomainHealth, ToolDomainRecord, ToolDomainSpec } from '../../core/tool-domains.ts';
import type { Millis } from '../../core/types.ts';
import { TOOL_CALL_INSERT_COLUMNS, TOOL_DOMAIN_COLUMNS, toolCallFromRow, toolCallListWhere, toolCallPage, toolCallValues, toolDomainFromRow } from '../tool-domain-rows.ts';
import { pruneLog } from './auth.ts';
import type { StatementCache } from './statement-cache.ts';

const SELECT = `SELECT ${TOOL_DOMAIN_COLUMNS.join(', ')} FROM tool_domains`;
const decode = (raw: unknown): unknown => JSON.parse(String(raw));

export function getToolDomain(cache: StatementCache, name: string): ToolDomainRecord | null {
  const row = cache.sql(`${SELECT} WHERE name = ?`).get(name);
  return row ? toolDomainFromRow(row, decode) : null;
}

export function listToolDomains(cache: StatementCache): ToolDomainRecord[] {
  return cache.sql(`${SELECT} ORDER BY name`).all().map((row) => toolDomainFromRow(row, decode));
}

/** Health columns are left as they are on a replace (see Store.toolDomainUpsert). */
export function upsertToolDomain(cache: StatementCache, p: { name: string; spec: ToolDomainSpec; source: 'config' | 'api'; at: Millis }): { created: boolean; domain: ToolDomainRecord } {
  const existed = cache.sql('SELECT 1 AS one FROM tool_domains WHERE name = ?').get(p.name) !== undefined;
  cache.sql(
    `INSERT INTO tool_domains (name, spec, source, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, source = excluded.source, updated_at = excluded.updated_at`,
  ).run(p.name, JSON.stringify(p.spec), p.source, p.at, p.at);
  return { created: !existed, domain: getToolDomain(cache, p.name)! };
}

export function deleteToolDomain(cache: StatementCache, name: string): { deleted: boolean } {
  return { deleted: Number(cache.sql('DELETE FROM tool_domains WHERE name = ?').run(name).changes) > 0 };
}

/** The status before the write, or undefined when there is no such domain (or not the declaration of `updatedAt`). */
export function setToolDomainHealth(cache: StatementCache, name: string, h: ToolDomainHealth, updatedAt?: Millis): string | undefined {
  const before = cache.sql('SELECT status, updated_at FROM tool_domains WHERE name = ?').get(name);
  if (!before) return undefined;
  // A check of a spec replaced meanwhile: its result is not this declaration's health.
  if (updatedAt !== undefined && Number(before.updated_at) !== updatedAt) return undefined;
  cache.sql(
    `UPDATE tool_domains SET status = ?, checked_at = ?, latency_ms = ?, tool_count = ?, last_error = ?,
       changed_at = CASE WHEN status = ? THEN changed_at ELSE ? END
     WHERE name = ?`,
  ).run(h.status, h.checkedAt, h.latencyMs, h.toolCount, h.lastError, h.status, h.changedAt, name);
  return String(before.status);
}

const INSERT_CALL = `INSERT INTO tool_calls (${TOOL_CALL_INSERT_COLUMNS.join(', ')}) VALUES (${TOOL_CALL_INSERT_COLUMNS.map(() => '?').join(', ')})`;

export function appendToolCalls(cache: StatementCache, calls: readonly NewToolCall[]): void {
  const insert = cache.sql(INSERT_CALL);
  for (const c of calls) insert.run(...toolCallValues(c));
}

/** Oldest first (tool_calls_at), at most `limit`. */
export function pruneToolCalls(cache: StatementCache, params: { before: Millis; limit: number }): number {
  return pruneLog(cache, 'tool_calls', params);
}

export function listToolCalls(cache: StatementCache, params: ToolCallListParams): { items: ToolCallRecord[]; nextBefore: number | null } {
  const args: Record<string, string | number> = {};
  const where = toolCallListWhere(params, (value) => {
    const name = `p${Object.keys(args).length}`;
    args[name] = value;
    return `:${name}`;
  });
  args.limit = Math.max(0, Math.floor(params.limit)) + 1;
  const rows = cache.sql(`SELECT seq, ${TOOL_CALL_INSERT_COLUMNS.join(', ')} FROM tool_calls ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY seq DESC LIMIT :limit`).all(args);
  return toolCallPage(rows.map(toolCallFromRow), params.limit);
}
