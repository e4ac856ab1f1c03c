// PostgreSQL: tool domains and the tool-call audit (issue 15). Mapping and conditions are
// shared with SQLite (../tool-domain-rows.ts). Reads take any connection; writes are
// write-batch operations (see write-batch.ts).

import type { NewToolCall, ToolCallListParams, ToolCallRecord, ToolDomainHealth, ToolDomainRecord, ToolDomainSpec } from '../../core/tool-domains.ts';
import type { EventRecord, Millis, NewEvent } from '../../core/types.ts';
import { TOOL_CALL_INSERT_COLUMNS, TOOL_DOMAIN_COLUMNS, toolCallFromRow, toolCallListWhere, toolCallPage, toolCallValues, toolDomainFromRow } from '../tool-domain-rows.ts';
import { pruneLog } from './auth.ts';
import { stamp } from './events.ts';
import { Params, run, type Queryable } from './sql.ts';
import { withEvents, written, type WriteOp } from './write-batch.ts';

const COLUMNS = TOOL_DOMAIN_COLUMNS.join(', ');
// jsonb arrives parsed.
const decode = (raw: unknown): unknown => raw;

export async function getToolDomain(db: Queryable, name: string): Promise<ToolDomainRecord | null> {
  const [row] = await run(db, `SELECT ${COLUMNS} FROM tool_domains WHERE name = $1::text`, [name]);
  return row ? toolDomainFromRow(row, decode) : null;
}

export async function listToolDomains(db: Queryable): Promise<ToolDomainRecord[]> {
  return (await run(db, `SELECT ${COLUMNS} FROM tool_domains ORDER BY name`)).map((row) => toolDomainFromRow(row, decode));
}

/** Health columns are left as they are on a replace (see Store.toolDomainUpsert). */
export function upsertToolDomain(p: { name: string; spec: ToolDomainSpec; source: 'config' | 'api'; at: Millis }): WriteOp<{ created: boolean; domain: ToolDomainRecord }> {
  return async (tx) => {
    // xmax = 0 only on a row this statement inserted.
    const [row] = await run(tx,
      `INSERT INTO tool_domains (name, spec, source, created_at, updated_at) VALUES ($1::text, $2::jsonb, $3::text, $4::bigint, $4::bigint)
       ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, source = excluded.source, updated_at = excluded.updated_at
       RETURNING ${COLUMNS}, (xmax = 0) AS created`,
      [p.name, JSON.stringify(p.spec), p.source, p.at]);
    return written({ created: row!.created === true, domain: toolDomainFromRow(row!, decode) });
  };
}

export function deleteToolDomain(name: string): WriteOp<{ deleted: boolean }> {
  return async (tx) => written({ deleted: (await run(tx, 'DELETE FROM tool_domains WHERE name = $1::text RETURNING name', [name])).length > 0 });
}

export function setToolDomainHealth(p: { name: string; health: ToolDomainHealth; event: NewEvent; updatedAt?: Millis }, now: () => Millis): WriteOp<{ found: boolean; changed: boolean; events: EventRecord[] }> {
  const h = p.health;
  return async (tx) => {
    // The row lock orders two checkers: the second sees the first's status, so one event per change.
    const rows = await run(tx,
      `UPDATE tool_domains d SET status = $2::text, checked_at = $3::bigint, latency_ms = $4::bigint, tool_count = $5::integer,
         last_error = $6::text, changed_at = CASE WHEN before.status = $2::text THEN d.changed_at ELSE $7::bigint END
       FROM (SELECT name, status FROM tool_domains WHERE name = $1::text AND ($8::bigint IS NULL OR updated_at = $8::bigint) FOR UPDATE) before
       WHERE d.name = before.name RETURNING before.status AS before`,
      [p.name, h.status, h.checkedAt, h.latencyMs, h.toolCount, h.lastError, h.changedAt, p.updatedAt ?? null]);
    if (rows.length === 0) return written({ found: false, changed: false, events: [] });
    if (rows[0]!.before === h.status) return written({ found: true, changed: false, events: [] });
    // 'wake': a domain back up makes waiting tasks dispatchable on every node.
    return withEvents(stamp([p.event], h.checkedAt ?? now()), ['wake'], (events) => ({ found: true, changed: true, events }));
  };
}

const TYPES = ['bigint', 'text', 'text', 'integer', 'text', 'text', 'bigint', 'text', 'bigint', 'text', 'text', 'text'];
const APPEND = `INSERT INTO tool_calls (${TOOL_CALL_INSERT_COLUMNS.join(', ')})
  SELECT ${TOOL_CALL_INSERT_COLUMNS.join(', ')} FROM unnest(${TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})
    WITH ORDINALITY AS c (${TOOL_CALL_INSERT_COLUMNS.join(', ')}, ord)
  ORDER BY ord`;

export function appendToolCalls(calls: readonly NewToolCall[]): WriteOp<void> {
  const values = calls.map(toolCallValues);
  return async (tx) => {
    await run(tx, APPEND, TOOL_CALL_INSERT_COLUMNS.map((_, i) => values.map((v) => v[i])));
    return written(undefined);
  };
}

/** Oldest first (tool_calls_at), at most `limit`. */
export function pruneToolCalls(params: { before: Millis; limit: number }): WriteOp<number> {
  return pruneLog('tool_calls', params);
}

export async function listToolCalls(db: Queryable, params: ToolCallListParams): Promise<{ items: ToolCallRecord[]; nextBefore: number | null }> {
  const p = new Params();
  const where = toolCallListWhere(params, (value, type) => p.add(value, type));
  const rows = await run(db, `SELECT seq, ${TOOL_CALL_INSERT_COLUMNS.join(', ')} FROM tool_calls ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY seq DESC LIMIT ${p.add(Math.max(0, Math.floor(params.limit)) + 1, 'integer')}`, p.values);
  return toolCallPage(rows.map(toolCallFromRow), params.limit);
}
