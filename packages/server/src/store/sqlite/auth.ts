// API keys. Reads run directly on the connection; the
// writes are synchronous functions that sqlite-store.ts runs inside the write batch.

import type { Millis } from '../../core/types.ts';
import type { ApiKeyRecord } from '../store.ts';
import { API_KEY_COLUMNS, apiKeyFromRow, apiKeyValues, changes } from './rows.ts';
import type { StatementCache } from './statement-cache.ts';

const API_KEY_SELECT = API_KEY_COLUMNS.join(', ');

// -- API keys -------------------------------------------------------------------------------

/** A duplicate id or hash throws (the keys are unique), writing nothing. */
export function createApiKey(cache: StatementCache, key: ApiKeyRecord): void {
  cache.sql(`INSERT INTO api_keys (${API_KEY_SELECT}) VALUES (${API_KEY_COLUMNS.map((c) => `:${c}`).join(', ')})`).run(apiKeyValues(key));
}

export function findApiKeyByHash(cache: StatementCache, hash: string): ApiKeyRecord | null {
  const row = cache.sql(`SELECT ${API_KEY_SELECT} FROM api_keys WHERE hash = ?`).get(hash);
  return row ? apiKeyFromRow(row) : null;
}

export function getApiKey(cache: StatementCache, id: string): ApiKeyRecord | null {
  const row = cache.sql(`SELECT ${API_KEY_SELECT} FROM api_keys WHERE id = ?`).get(id);
  return row ? apiKeyFromRow(row) : null;
}

export function listApiKeys(cache: StatementCache, includeRevoked: boolean): ApiKeyRecord[] {
  const where = includeRevoked ? '' : 'WHERE revoked_at IS NULL';
  return cache.sql(`SELECT ${API_KEY_SELECT} FROM api_keys ${where} ORDER BY created_at, id`).all().map(apiKeyFromRow);
}

/** Guarded on revoked_at IS NULL, so the first revocation's time is kept. */
export function revokeApiKey(cache: StatementCache, id: string, at: Millis): { revoked: boolean } {
  const r = cache.sql('UPDATE api_keys SET revoked_at = :at WHERE id = :id AND revoked_at IS NULL').run({ id, at });
  return { revoked: changes(r) > 0 };
}

export function countApiKeys(cache: StatementCache): number {
  return Number(cache.sql('SELECT COUNT(*) AS n FROM api_keys').get()?.n ?? 0);
}

/** Never moves lastUsedAt backwards (touches may arrive out of order). */
export function touchApiKey(cache: StatementCache, id: string, at: Millis): void {
  cache.sql('UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, :at), :at) WHERE id = :id').run({ id, at });
}
