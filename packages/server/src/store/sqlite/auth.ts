// API keys, token revocations and the audit log. Reads run directly on the connection; the
// writes are synchronous functions that sqlite-store.ts runs inside the write batch.

import type { Millis } from '../../core/types.ts';
import { auditFetchLimit, auditListWhere, auditPage } from '../audit-query.ts';
import type { ApiKeyRecord, AuditListParams, AuditRecord, NewAuditRecord, TokenRevocation } from '../store.ts';
import {
  API_KEY_COLUMNS, AUDIT_COLUMNS, AUDIT_INSERT_COLUMNS, TOKEN_REVOCATION_COLUMNS, apiKeyFromRow, apiKeyValues, auditFromRow,
  auditValues, changes, insertSql, tokenRevocationFromRow, valuesOf, type Params,
} from './rows.ts';
import type { StatementCache } from './statement-cache.ts';

const API_KEY_SELECT = API_KEY_COLUMNS.join(', ');
const AUDIT_SELECT = AUDIT_COLUMNS.join(', ');
const TOKEN_REVOCATION_SELECT = TOKEN_REVOCATION_COLUMNS.join(', ');

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

// -- server secrets ---------------------------------------------------------------------------

/** The first value written under a name wins; later calls get it back. */
export function ensureSecret(cache: StatementCache, params: { name: string; value: string; at: Millis }): string {
  cache.sql('INSERT INTO server_secrets (name, value, created_at) VALUES (:name, :value, :at) ON CONFLICT (name) DO NOTHING').run(params);
  return String(cache.sql('SELECT value FROM server_secrets WHERE name = ?').get(params.name)!.value);
}

// -- token revocations ----------------------------------------------------------------------

/** A second revocation of the same token changes nothing. */
export function revokeToken(cache: StatementCache, params: { jti: string; at: Millis; expiresAt: Millis }): { revoked: boolean } {
  const r = cache.sql(
    'INSERT INTO token_revocations (jti, revoked_at, expires_at) VALUES (:jti, :at, :expires_at) ON CONFLICT (jti) DO NOTHING',
  ).run({ jti: params.jti, at: params.at, expires_at: params.expiresAt });
  return { revoked: changes(r) > 0 };
}

export function listTokenRevocations(cache: StatementCache, since: Millis): TokenRevocation[] {
  return cache.sql(`SELECT ${TOKEN_REVOCATION_SELECT} FROM token_revocations WHERE revoked_at >= ? ORDER BY revoked_at, jti`)
    .all(since).map(tokenRevocationFromRow);
}

export function pruneTokenRevocations(cache: StatementCache, expiredBefore: Millis): number {
  return changes(cache.sql('DELETE FROM token_revocations WHERE expires_at < ?').run(expiredBefore));
}

// -- audit log ------------------------------------------------------------------------------

const AUDIT_INSERT = insertSql('audit_log', AUDIT_INSERT_COLUMNS);

/** In order, so seqs follow the order of `entries`. */
export function appendAudit(cache: StatementCache, entries: readonly NewAuditRecord[]): AuditRecord[] {
  const insert = cache.sql(AUDIT_INSERT);
  return entries.map((entry) => ({ ...entry, seq: Number(insert.run(...valuesOf(auditValues(entry), AUDIT_INSERT_COLUMNS)).lastInsertRowid) }));
}

export function listAudit(cache: StatementCache, params: AuditListParams): { items: AuditRecord[]; nextBefore: number | null } {
  const args: Params = {};
  // Named by position, so a statement's text depends only on which filters are given.
  const where = auditListWhere(params, (value) => {
    const name = `p${Object.keys(args).length}`;
    args[name] = value;
    return `:${name}`;
  });
  args.limit = auditFetchLimit(params.limit);
  const rows = cache.sql(`SELECT ${AUDIT_SELECT} FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY seq DESC LIMIT :limit`).all(args);
  return auditPage(rows.map(auditFromRow), params.limit);
}

/**
 * Retention of an append-only log (seq, at; an index on at): deletes its entries older than
 * `before`, oldest first, at most `limit`. The audit log and the tool-call audit share it.
 */
export function pruneLog(cache: StatementCache, table: 'audit_log' | 'tool_calls', params: { before: Millis; limit: number }): number {
  return changes(cache.sql(
    `DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE at < :before ORDER BY at LIMIT :limit)`,
  ).run({ before: params.before, limit: Math.max(0, Math.floor(params.limit)) }));
}

/** Oldest first (audit_log_at), at most `limit`. */
export function pruneAudit(cache: StatementCache, params: { before: Millis; limit: number }): number {
  return pruneLog(cache, 'audit_log', params);
}
