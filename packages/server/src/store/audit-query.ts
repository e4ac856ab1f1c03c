// The audit listing's conditions, shared by the stores: only how a value becomes a statement
// parameter differs (`:name` in SQLite, `$n::type` in PostgreSQL), which each store supplies.
// One builder means a filter cannot mean one thing in one store and another in the other.

import type { AuditListParams, AuditRecord } from './store.ts';

/** Binds a value as a parameter of the statement being built and returns its placeholder. */
export type Bind = (value: string | number, type: 'text' | 'bigint') => string;

/** The WHERE terms (to AND together) of an audit listing, newest first from `before`. */
export function auditListWhere(params: AuditListParams, bind: Bind): string[] {
  const where: string[] = [];
  if (params.before !== undefined) where.push(`seq < ${bind(params.before, 'bigint')}`);
  if (params.principalId !== undefined) where.push(`principal_id = ${bind(params.principalId, 'text')}`);
  if (params.action !== undefined) where.push(`action = ${bind(params.action, 'text')}`);
  if (params.outcome !== undefined) {
    where.push(`outcome = ${bind(params.outcome, 'text')}`);
    // Spelled out: a planner uses the partial index audit_log_not_allowed only when the
    // query states its condition (SQLite cannot infer it from the parameter).
    if (params.outcome !== 'allowed') where.push(`outcome <> 'allowed'`);
  }
  if (params.since !== undefined) where.push(`at >= ${bind(params.since, 'bigint')}`);
  if (params.until !== undefined) where.push(`at < ${bind(params.until, 'bigint')}`);
  return where;
}

/** Rows fetched for a page: one more than asked, to know whether another page exists. */
export function auditFetchLimit(limit: number): number {
  return Math.max(0, Math.floor(limit)) + 1;
}

/** The page out of `auditFetchLimit(limit)` records, newest first. */
export function auditPage(records: AuditRecord[], limit: number): { items: AuditRecord[]; nextBefore: number | null } {
  const items = records.slice(0, Math.max(0, Math.floor(limit)));
  const last = items.at(-1);
  return { items, nextBefore: records.length > items.length && last !== undefined ? last.seq : null };
}
