// API keys. Reads take any connection; writes are write-batch operations (repeatable, run
// inside the batch's transaction, see write-batch.ts). None of them appends events or
// signals: other processes learn of key changes when their short authentication cache expires.

import type { Millis } from '../../core/types.ts';
import type { ApiKeyRecord } from '../store.ts';
import { API_KEY_COLUMNS, apiKeyFromRow, apiKeyValues } from './rows.ts';
import { run, type Queryable } from './sql.ts';
import { refused, written, type WriteOp } from './write-batch.ts';

const API_KEY_SELECT = API_KEY_COLUMNS.join(', ');

/** SQL type of each column, for the parameters' casts. */
const API_KEY_TYPES = {
  id: 'text', name: 'text', role: 'text', hash: 'text', created_at: 'bigint', last_used_at: 'bigint', expires_at: 'bigint',
  revoked_at: 'bigint', created_by: 'text', agents: 'jsonb',
} as const satisfies Record<(typeof API_KEY_COLUMNS)[number], string>;

// -- API keys -------------------------------------------------------------------------------

const API_KEY_INSERT = `INSERT INTO api_keys (${API_KEY_SELECT})
  VALUES (${API_KEY_COLUMNS.map((c, i) => `$${i + 1}::${API_KEY_TYPES[c]}`).join(', ')})
  ON CONFLICT DO NOTHING RETURNING id`;

/** Refuses (writing nothing) a key whose id or hash exists. */
export function createApiKey(k: ApiKeyRecord): WriteOp<void> {
  const values = apiKeyValues(k);
  return async (tx) => {
    const rows = await run(tx, API_KEY_INSERT, API_KEY_COLUMNS.map((c) => values[c]));
    if (rows.length === 0) return refused(new Error(`an API key with id ${k.id} or the same hash already exists`));
    return written(undefined);
  };
}

/**
 * Never moves lastUsedAt backwards, and writes nothing when it would not change. Best effort:
 * a key row another transaction is writing right now (a touch from another process, with
 * much the same time) is skipped rather than waited for, so touches never hold up a batch.
 */
export function touchApiKey(id: string, at: Millis): WriteOp<void> {
  return async (tx) => {
    await run(tx,
      `UPDATE api_keys SET last_used_at = $2::bigint WHERE id = (
         SELECT id FROM api_keys WHERE id = $1::text AND (last_used_at IS NULL OR last_used_at < $2::bigint)
         FOR NO KEY UPDATE SKIP LOCKED)`,
      [id, at]);
    return written(undefined);
  };
}

/** Guarded on revoked_at IS NULL, so the first revocation's time is kept. */
export function revokeApiKey(id: string, at: Millis): WriteOp<{ revoked: boolean }> {
  return async (tx) => {
    const rows = await run(tx, 'UPDATE api_keys SET revoked_at = $2::bigint WHERE id = $1::text AND revoked_at IS NULL RETURNING id', [id, at]);
    return written({ revoked: rows.length > 0 });
  };
}

export async function findApiKeyByHash(db: Queryable, hash: string): Promise<ApiKeyRecord | null> {
  const [row] = await run(db, `SELECT ${API_KEY_SELECT} FROM api_keys WHERE hash = $1::text`, [hash]);
  return row ? apiKeyFromRow(row) : null;
}

export async function getApiKey(db: Queryable, id: string): Promise<ApiKeyRecord | null> {
  const [row] = await run(db, `SELECT ${API_KEY_SELECT} FROM api_keys WHERE id = $1::text`, [id]);
  return row ? apiKeyFromRow(row) : null;
}

/** Ids in byte order (COLLATE "C"), like the SQLite store, whatever the database's collation. */
export async function listApiKeys(db: Queryable, includeRevoked: boolean): Promise<ApiKeyRecord[]> {
  const where = includeRevoked ? '' : 'WHERE revoked_at IS NULL';
  return (await run(db, `SELECT ${API_KEY_SELECT} FROM api_keys ${where} ORDER BY created_at, id COLLATE "C"`)).map(apiKeyFromRow);
}

export async function countApiKeys(db: Queryable): Promise<number> {
  return Number((await run(db, 'SELECT count(*) AS n FROM api_keys'))[0]?.n ?? 0);
}
