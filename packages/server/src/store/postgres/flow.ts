// PostgreSQL: provider rate limits, the rate log and attempt usage (issue 16). A take runs under
// the key's transaction-level advisory lock, taken by the write batch before any operation
// (rateLock, in the batch's one global lock order: no deadlock with the counters): takers of
// one key on every node are serialized, each reads the window its predecessor committed (READ
// COMMITTED: every statement a new snapshot, and the lock is released only at commit), so all
// nodes together never admit more than the limit. Mapping shared: ../flow-rows.ts.

import { admit, type RateLimitState } from '../../core/rate-limits.ts';
import type { Millis } from '../../core/types.ts';
import type { UsageGroupBy, UsageRecord, UsageSum } from '../../core/usage.ts';
import { EMPTY_WINDOW, RATE_LIMIT_COLUMNS, USAGE_COLUMNS, rateLimitFromRow, usageGroupExpr, usageSums, windowSql, windowStart, windowsByKey, withWindows } from '../flow-rows.ts';
import { run, type Queryable } from './sql.ts';
import { written, type WriteOp } from './write-batch.ts';

const SELECT = `SELECT ${RATE_LIMIT_COLUMNS.join(', ')} FROM rate_limits`;

/**
 * The write batch's advisory lock name of a rate key (a concurrency-key lock of a name no task
 * can have: a NUL is not storable in a PostgreSQL text column).
 */
export function rateLock(key: string): string {
  return `\0rate\0${key}`;
}

export function putRateLimit(p: { key: string; rpm: number | null; tpm: number | null; source: 'config' | 'api'; at: Millis }): WriteOp<{ created: boolean }> {
  return async (tx) => {
    const [row] = await run(tx,
      `INSERT INTO rate_limits (key, rpm, tpm, source, paused_until, updated_at) VALUES ($1::text, $2::bigint, $3::bigint, $4::text, NULL, $5::bigint)
       ON CONFLICT (key) DO UPDATE SET rpm = excluded.rpm, tpm = excluded.tpm, source = excluded.source, updated_at = excluded.updated_at
       RETURNING (xmax = 0) AS created`,
      [p.key, p.rpm, p.tpm, p.source, p.at]);
    return written({ created: row!.created === true });
  };
}

export function deleteRateLimit(key: string): WriteOp<{ deleted: boolean }> {
  return async (tx) => written({ deleted: (await run(tx, 'DELETE FROM rate_limits WHERE key = $1::text RETURNING key', [key])).length > 0 });
}

export async function listRateLimits(db: Queryable, p: { keys?: string[]; now: Millis }): Promise<RateLimitState[]> {
  const rows = p.keys === undefined
    ? await run(db, `${SELECT} ORDER BY key`)
    : await run(db, `${SELECT} WHERE key = ANY($1::text[]) ORDER BY key`, [p.keys]);
  const records = rows.map(rateLimitFromRow);
  if (records.length === 0) return [];
  const windows = windowsByKey(await run(db, windowSql('= ANY($1::text[])', '$2::bigint'), [records.map((r) => r.key), windowStart(p.now)]));
  return withWindows(records, windows);
}

export function takeRate(p: { key: string; now: Millis; requests: Array<{ holder: string; tokens: number }> }): WriteOp<{ taken: number }> {
  return async (tx) => {
    const [row] = await run(tx, `${SELECT} WHERE key = $1::text`, [p.key]);
    if (!row) return written({ taken: p.requests.length });
    const [w] = windowsByKey(await run(tx, windowSql('= $1::text', '$2::bigint'), [p.key, windowStart(p.now)])).values();
    const { admitted } = admit(rateLimitFromRow(row), w ?? EMPTY_WINDOW, p.requests, p.now);
    const taken = p.requests.slice(0, admitted);
    if (taken.length > 0) {
      await run(tx,
        `INSERT INTO rate_log (holder, key, at, tokens)
         SELECT h, $2::text, $3::bigint, t FROM unnest($1::text[], $4::bigint[]) AS r (h, t)
         ON CONFLICT (holder) DO NOTHING`,
        [taken.map((r) => r.holder), p.key, p.now, taken.map((r) => r.tokens)]);
    }
    return written({ taken: admitted });
  };
}

export function giveBackRate(holders: readonly string[]): WriteOp<void> {
  return async (tx) => {
    await run(tx, 'DELETE FROM rate_log WHERE holder = ANY($1::text[])', [holders]);
    return written(undefined);
  };
}

export function pauseRate(p: { key: string; until: Millis; at: Millis }): WriteOp<void> {
  return async (tx) => {
    await run(tx,
      `INSERT INTO rate_limits (key, rpm, tpm, source, paused_until, updated_at) VALUES ($1::text, NULL, NULL, 'pause', $2::bigint, $3::bigint)
       ON CONFLICT (key) DO UPDATE SET paused_until = GREATEST(COALESCE(rate_limits.paused_until, 0), excluded.paused_until)`,
      [p.key, p.until, p.at]);
    // 'wake': the pause's end is armed by every node's dispatcher from the key's state.
    return written(undefined, ['wake']);
  };
}

export function pruneRateLog(p: { before: Millis; limit: number }): WriteOp<number> {
  return async (tx) => {
    const [row] = await run(tx,
      `WITH gone AS (DELETE FROM rate_log WHERE holder IN (SELECT holder FROM rate_log WHERE at < $1::bigint ORDER BY at LIMIT $2::integer) RETURNING holder)
       SELECT count(*) AS n FROM gone`,
      [p.before, Math.max(0, Math.floor(p.limit))]);
    return written(Number(row?.n ?? 0));
  };
}

export function recordUsage(u: UsageRecord): WriteOp<void> {
  return async (tx) => {
    await run(tx,
      `WITH w_usage AS (
         INSERT INTO attempt_usage (${USAGE_COLUMNS.join(', ')})
         VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::bigint, $8::double precision, $9::bigint)
         ON CONFLICT (assignment_id) DO UPDATE SET model = excluded.model, input_tokens = excluded.input_tokens,
           output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd, at = excluded.at)
       UPDATE rate_log SET tokens = $6::bigint + $7::bigint WHERE holder = $1::text`,
      [u.assignmentId, u.taskId, u.rootId, u.agent, u.model, u.inputTokens, u.outputTokens, u.costUsd, u.at]);
    return written(undefined);
  };
}

export async function summarizeUsage(db: Queryable, p: { groupBy: UsageGroupBy; since: Millis | null; until: Millis | null; taskId?: string }): Promise<UsageSum[]> {
  const rows = await run(db,
    `SELECT ${usageGroupExpr(p.groupBy)} AS k, COUNT(*) AS attempts, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, SUM(cost_usd) AS cost_usd
     FROM attempt_usage
     WHERE ($1::bigint IS NULL OR at >= $1::bigint) AND ($2::bigint IS NULL OR at < $2::bigint) AND ($3::text IS NULL OR task_id = $3::text)
     GROUP BY 1`,
    [p.since, p.until, p.taskId ?? null]);
  return usageSums(p.groupBy, rows);
}
