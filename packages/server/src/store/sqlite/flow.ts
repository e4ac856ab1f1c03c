// SQLite: provider rate limits, the rate log and attempt usage (issue 16). One writer: a take
// reads the key's window and writes its admitted requests in one closure of the write batch,
// so nothing can slip in between and the limit is exact. Mapping shared: ../flow-rows.ts.

import { admit, type RateLimitState } from '../../core/rate-limits.ts';
import type { Millis } from '../../core/types.ts';
import type { UsageGroupBy, UsageRecord, UsageSum } from '../../core/usage.ts';
import { RATE_LIMIT_COLUMNS, USAGE_COLUMNS, rateLimitFromRow, usageGroupExpr, usageSums, windowSql, windowStart, windowsByKey, withWindows, EMPTY_WINDOW } from '../flow-rows.ts';
import { changes } from './rows.ts';
import type { StatementCache } from './statement-cache.ts';

const SELECT = `SELECT ${RATE_LIMIT_COLUMNS.join(', ')} FROM rate_limits`;
const KEYS_IN = 'IN (SELECT value FROM json_each(:keys))';

export function putRateLimit(cache: StatementCache, p: { key: string; rpm: number | null; tpm: number | null; source: 'config' | 'api'; at: Millis }): { created: boolean } {
  const existed = cache.sql('SELECT 1 AS one FROM rate_limits WHERE key = ?').get(p.key) !== undefined;
  cache.sql(
    `INSERT INTO rate_limits (key, rpm, tpm, source, paused_until, updated_at) VALUES (?, ?, ?, ?, NULL, ?)
     ON CONFLICT (key) DO UPDATE SET rpm = excluded.rpm, tpm = excluded.tpm, source = excluded.source, updated_at = excluded.updated_at`,
  ).run(p.key, p.rpm, p.tpm, p.source, p.at);
  return { created: !existed };
}

export function deleteRateLimit(cache: StatementCache, key: string): { deleted: boolean } {
  return { deleted: changes(cache.sql('DELETE FROM rate_limits WHERE key = ?').run(key)) > 0 };
}

export function listRateLimits(cache: StatementCache, p: { keys?: string[]; now: Millis }): RateLimitState[] {
  const records = p.keys === undefined
    ? cache.sql(`${SELECT} ORDER BY key`).all().map(rateLimitFromRow)
    : cache.sql(`${SELECT} WHERE key ${KEYS_IN} ORDER BY key`).all({ keys: JSON.stringify(p.keys) }).map(rateLimitFromRow);
  if (records.length === 0) return [];
  const windows = windowsByKey(cache.sql(windowSql(KEYS_IN, ':since')).all({ keys: JSON.stringify(records.map((r) => r.key)), since: windowStart(p.now) }));
  return withWindows(records, windows);
}

export function takeRate(cache: StatementCache, p: { key: string; now: Millis; requests: Array<{ holder: string; tokens: number }> }): { taken: number } {
  const row = cache.sql(`${SELECT} WHERE key = ?`).get(p.key);
  if (!row) return { taken: p.requests.length };
  const limit = rateLimitFromRow(row);
  const [w] = windowsByKey(cache.sql(windowSql('= :key', ':since')).all({ key: p.key, since: windowStart(p.now) })).values();
  const { admitted } = admit(limit, w ?? EMPTY_WINDOW, p.requests, p.now);
  const insert = cache.sql('INSERT INTO rate_log (holder, key, at, tokens) VALUES (?, ?, ?, ?) ON CONFLICT (holder) DO NOTHING');
  for (const r of p.requests.slice(0, admitted)) insert.run(r.holder, p.key, p.now, r.tokens);
  return { taken: admitted };
}

export function giveBackRate(cache: StatementCache, holders: readonly string[]): void {
  cache.sql(`DELETE FROM rate_log WHERE holder ${KEYS_IN}`).run({ keys: JSON.stringify(holders) });
}

export function pauseRate(cache: StatementCache, p: { key: string; until: Millis; at: Millis }): void {
  cache.sql(
    `INSERT INTO rate_limits (key, rpm, tpm, source, paused_until, updated_at) VALUES (?, NULL, NULL, 'pause', ?, ?)
     ON CONFLICT (key) DO UPDATE SET paused_until = max(coalesce(paused_until, 0), excluded.paused_until)`,
  ).run(p.key, p.until, p.at);
}

export function pruneRateLog(cache: StatementCache, p: { before: Millis; limit: number }): number {
  return changes(cache.sql('DELETE FROM rate_log WHERE holder IN (SELECT holder FROM rate_log WHERE at < :before ORDER BY at LIMIT :limit)')
    .run({ before: p.before, limit: Math.max(0, Math.floor(p.limit)) }));
}

export function recordUsage(cache: StatementCache, u: UsageRecord): void {
  cache.sql(
    `INSERT INTO attempt_usage (${USAGE_COLUMNS.join(', ')}) VALUES (${USAGE_COLUMNS.map(() => '?').join(', ')})
     ON CONFLICT (assignment_id) DO UPDATE SET model = excluded.model, input_tokens = excluded.input_tokens,
       output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd, at = excluded.at`,
  ).run(u.assignmentId, u.taskId, u.rootId, u.agent, u.model, u.inputTokens, u.outputTokens, u.costUsd, u.at);
  cache.sql('UPDATE rate_log SET tokens = ? WHERE holder = ?').run(u.inputTokens + u.outputTokens, u.assignmentId);
}

export function summarizeUsage(cache: StatementCache, p: { groupBy: UsageGroupBy; since: Millis | null; until: Millis | null; taskId?: string }): UsageSum[] {
  const k = usageGroupExpr(p.groupBy);
  const rows = cache.sql(
    `SELECT ${k} AS k, COUNT(*) AS attempts, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, SUM(cost_usd) AS cost_usd
     FROM attempt_usage
     WHERE (:since IS NULL OR at >= :since) AND (:until IS NULL OR at < :until) AND (:task IS NULL OR task_id = :task)
     GROUP BY k`,
  ).all({ since: p.since, until: p.until, task: p.taskId ?? null });
  return usageSums(p.groupBy, rows);
}
