// Rate limits, the rate log and attempt usage (issue 16): the row mapping and the sums both
// stores share, so a query and its mapper cannot disagree between them.

import { RATE_WINDOW_MS, type RateLimitRecord, type RateLimitState, type RateWindow } from '../core/rate-limits.ts';
import { usageDay, type UsageGroupBy, type UsageSum } from '../core/usage.ts';
import type { Millis } from '../core/types.ts';

type Row = Record<string, unknown>;

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export const RATE_LIMIT_COLUMNS = ['key', 'rpm', 'tpm', 'source', 'paused_until', 'updated_at'] as const;

export function rateLimitFromRow(row: Row): RateLimitRecord {
  return {
    key: String(row.key),
    rpm: numOrNull(row.rpm),
    tpm: numOrNull(row.tpm),
    source: String(row.source) as RateLimitRecord['source'],
    pausedUntil: numOrNull(row.paused_until),
    updatedAt: Number(row.updated_at),
  };
}

/** `key, requests, tokens, oldest` rows of the window query, by key. */
export function windowsByKey(rows: readonly Row[]): Map<string, RateWindow> {
  return new Map(rows.map((r) => [String(r.key), { requests: Number(r.requests), tokens: Number(r.tokens ?? 0), oldestAt: numOrNull(r.oldest) }]));
}

export const EMPTY_WINDOW: RateWindow = { requests: 0, tokens: 0, oldestAt: null };

export function withWindows(records: readonly RateLimitRecord[], windows: ReadonlyMap<string, RateWindow>): RateLimitState[] {
  return records.map((r) => ({ ...r, window: windows.get(r.key) ?? EMPTY_WINDOW }));
}

/** The oldest time still inside the window at `now` (a request at exactly this time has left it). */
export function windowStart(now: Millis): Millis {
  return now - RATE_WINDOW_MS;
}

/** The window of the keys (`keys` is the store's placeholder for a list of them) after `since`. */
export function windowSql(keysIn: string, since: string): string {
  return `SELECT key, COUNT(*) AS requests, SUM(tokens) AS tokens, MIN(at) AS oldest FROM rate_log
    WHERE key ${keysIn} AND at > ${since} GROUP BY key`;
}

export const USAGE_COLUMNS = ['assignment_id', 'task_id', 'root_id', 'agent', 'model', 'input_tokens', 'output_tokens', 'cost_usd', 'at'] as const;

/** The grouping column of GET /usage; day is grouped by the stored day number and named afterwards. */
export function usageGroupExpr(groupBy: UsageGroupBy): string {
  switch (groupBy) {
    case 'agent': return 'agent';
    case 'root': return 'root_id';
    case 'task': return 'task_id';
    case 'day': return 'CAST(at / 86400000 AS BIGINT)';
  }
}

/** The sums' rows as UsageSum, ordered by key (days in time order). */
export function usageSums(groupBy: UsageGroupBy, rows: readonly Row[]): UsageSum[] {
  const sums = rows.map((r) => ({
    key: groupBy === 'day' ? usageDay(Number(r.k) * 86_400_000) : String(r.k),
    attempts: Number(r.attempts),
    inputTokens: Number(r.input_tokens ?? 0),
    outputTokens: Number(r.output_tokens ?? 0),
    // Summed in double precision; rounded to a micro-dollar so both databases answer alike.
    costUsd: Math.round(Number(r.cost_usd ?? 0) * 1e6) / 1e6,
  }));
  return sums.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
