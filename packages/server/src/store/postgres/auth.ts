// API keys, token revocations and the audit log. Reads take any connection; writes are
// write-batch operations (repeatable, run inside the batch's transaction, see write-batch.ts).
// None of them appends events or signals: other processes learn of revocations by polling
// (tokenRevocationList), and of key changes when their short authentication cache expires.

import type { Millis } from '../../core/types.ts';
import { auditFetchLimit, auditListWhere, auditPage } from '../audit-query.ts';
import type { ApiKeyRecord, AuditListParams, AuditRecord, NewAuditRecord, TokenRevocation } from '../store.ts';
import {
  API_KEY_COLUMNS, AUDIT_COLUMNS, AUDIT_INSERT_COLUMNS, TOKEN_REVOCATION_COLUMNS, apiKeyFromRow, apiKeyValues, auditFromRow,
  auditValues, tokenRevocationFromRow,
} from './rows.ts';
import { Params, run, type Queryable } from './sql.ts';
import { refused, written, type WriteOp } from './write-batch.ts';

const API_KEY_SELECT = API_KEY_COLUMNS.join(', ');
const AUDIT_SELECT = AUDIT_COLUMNS.join(', ');
const TOKEN_REVOCATION_SELECT = TOKEN_REVOCATION_COLUMNS.join(', ');

/** SQL type of each column, for the parameters' casts. */
const API_KEY_TYPES = {
  id: 'text', name: 'text', role: 'text', hash: 'text', created_at: 'bigint', last_used_at: 'bigint', expires_at: 'bigint',
  revoked_at: 'bigint', created_by: 'text', agents: 'jsonb',
} as const satisfies Record<(typeof API_KEY_COLUMNS)[number], string>;

const AUDIT_TYPES = {
  at: 'bigint', principal_id: 'text', principal_name: 'text', role: 'text', action: 'text', target: 'text', outcome: 'text',
  status: 'integer', request_id: 'text', source: 'text', details: 'jsonb',
} as const satisfies Record<(typeof AUDIT_INSERT_COLUMNS)[number], string>;

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

// -- token revocations ----------------------------------------------------------------------

/** A second revocation of the same token (from any process) changes nothing. */
/** The first value written under a name wins (concurrent starts race; one insert wins); later calls get it back. */
export function ensureSecret(params: { name: string; value: string; at: Millis }): WriteOp<string> {
  return async (tx) => {
    await run(tx, 'INSERT INTO server_secrets (name, value, created_at) VALUES ($1::text, $2::text, $3::bigint) ON CONFLICT (name) DO NOTHING',
      [params.name, params.value, params.at]);
    const [row] = await run(tx, 'SELECT value FROM server_secrets WHERE name = $1::text', [params.name]);
    return written(String(row!.value));
  };
}

export function revokeToken(params: { jti: string; at: Millis; expiresAt: Millis }): WriteOp<{ revoked: boolean }> {
  return async (tx) => {
    const rows = await run(tx,
      `INSERT INTO token_revocations (jti, revoked_at, expires_at) VALUES ($1::text, $2::bigint, $3::bigint)
       ON CONFLICT (jti) DO NOTHING RETURNING jti`,
      [params.jti, params.at, params.expiresAt]);
    return written({ revoked: rows.length > 0 });
  };
}

export function pruneTokenRevocations(expiredBefore: Millis): WriteOp<number> {
  return async (tx) => {
    const [row] = await run(tx,
      'WITH gone AS (DELETE FROM token_revocations WHERE expires_at < $1::bigint RETURNING jti) SELECT count(*) AS n FROM gone',
      [expiredBefore]);
    return written(Number(row?.n ?? 0));
  };
}

export async function listTokenRevocations(db: Queryable, since: Millis): Promise<TokenRevocation[]> {
  return (await run(db,
    `SELECT ${TOKEN_REVOCATION_SELECT} FROM token_revocations WHERE revoked_at >= $1::bigint ORDER BY revoked_at, jti COLLATE "C"`,
    [since])).map(tokenRevocationFromRow);
}

// -- audit log ------------------------------------------------------------------------------

/**
 * All entries in one statement, as parallel arrays (`unnest`), inserted in order so their
 * seqs follow it (as events.ts does; RETURNING itself promises no order).
 */
const AUDIT_APPEND = `
WITH inserted AS (
  INSERT INTO audit_log (${AUDIT_INSERT_COLUMNS.join(', ')})
  SELECT ${AUDIT_INSERT_COLUMNS.join(', ')}
  FROM unnest(${AUDIT_INSERT_COLUMNS.map((c, i) => `$${i + 1}::${AUDIT_TYPES[c]}[]`).join(', ')})
    WITH ORDINALITY AS e (${AUDIT_INSERT_COLUMNS.join(', ')}, ord)
  ORDER BY ord
  RETURNING seq
)
SELECT array(SELECT seq FROM inserted ORDER BY seq) AS seqs`;

export function appendAudit(entries: readonly NewAuditRecord[]): WriteOp<AuditRecord[]> {
  const values = entries.map(auditValues);
  return async (tx) => {
    const [row] = await run(tx, AUDIT_APPEND, AUDIT_INSERT_COLUMNS.map((c) => values.map((v) => v[c])));
    const seqs = row?.seqs;
    if (!Array.isArray(seqs) || seqs.length !== entries.length) {
      throw new Error(`appending ${entries.length} audit entries returned ${Array.isArray(seqs) ? seqs.length : 'no'} seqs`);
    }
    return written(entries.map((entry, i) => ({ ...entry, seq: Number(seqs[i]) })));
  };
}

export async function listAudit(db: Queryable, params: AuditListParams): Promise<{ items: AuditRecord[]; nextBefore: number | null }> {
  const p = new Params();
  const where = auditListWhere(params, (value, type) => p.add(value, type));
  const rows = await run(db, `SELECT ${AUDIT_SELECT} FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY seq DESC LIMIT ${p.add(auditFetchLimit(params.limit), 'integer')}`, p.values);
  return auditPage(rows.map(auditFromRow), params.limit);
}

/**
 * Retention of an append-only log (seq, at; an index on at): deletes its entries older than
 * `before`, oldest first, at most `limit`. The audit log and the tool-call audit share it.
 */
export function pruneLog(table: 'audit_log' | 'tool_calls', params: { before: Millis; limit: number }): WriteOp<number> {
  return async (tx) => {
    const [row] = await run(tx,
      `WITH gone AS (
         DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE at < $1::bigint ORDER BY at LIMIT $2::integer)
         RETURNING seq)
       SELECT count(*) AS n FROM gone`,
      [params.before, Math.max(0, Math.floor(params.limit))]);
    return written(Number(row?.n ?? 0));
  };
}

/** Oldest first (audit_log_at), at most `limit`. */
export function pruneAudit(params: { before: Millis; limit: number }): WriteOp<number> {
  return pruneLog('audit_log', params);
}
