// The A2A push tables (migration 16): clients' notification configs and the outbox of
// notifications to send. Reads run on the connection; writes are synchronous functions that
// sqlite-store.ts runs inside the write batch.

import type { Millis } from '../../core/types.ts';
import { A2A_PUSH_CONFIG_COLUMNS, A2A_PUSH_DELIVERY_COLUMNS, a2aPushConfigValues, a2aPushMappers } from '../a2a-push-mapping.ts';
import type { A2aPushConfigRecord, A2aPushConfigSaveResult, A2aPushDeliveryRecord, A2aPushEnqueueItem } from '../store.ts';
import { changes, readers } from './rows.ts';
import type { StatementCache } from './statement-cache.ts';

const { a2aPushConfigFromRow, a2aPushDeliveryFromRow } = a2aPushMappers(readers);
const CONFIG_SELECT = A2A_PUSH_CONFIG_COLUMNS.join(', ');
const DELIVERY_SELECT = A2A_PUSH_DELIVERY_COLUMNS.map((c) => `d.${c}`).join(', ');

/** See Store.a2aPushConfigSave: the owner and the cap checked, and the write done, in one write batch. */
export function saveA2aPushConfig(cache: StatementCache, p: { config: A2aPushConfigRecord; ownerOnly?: boolean; maxPerTask?: number }): A2aPushConfigSaveResult {
  const { config } = p;
  const existing = cache.sql('SELECT owner_id FROM a2a_push_configs WHERE task_id = ? AND id = ?').get(config.taskId, config.id);
  if (existing !== undefined) {
    if (p.ownerOnly === true && existing.owner_id !== config.ownerId) return { saved: false, reason: 'not_owner' };
    // The old config's queued notifications carry its URL and credentials: they go with it.
    cache.sql('DELETE FROM a2a_push_deliveries WHERE task_id = ? AND config_id = ?').run(config.taskId, config.id);
  } else if (p.maxPerTask !== undefined) {
    const count = Number(cache.sql('SELECT count(*) AS n FROM a2a_push_configs WHERE task_id = ?').get(config.taskId)?.n ?? 0);
    if (count >= p.maxPerTask) return { saved: false, reason: 'limit' };
  }
  cache.sql(`INSERT INTO a2a_push_configs (${CONFIG_SELECT}) VALUES (${A2A_PUSH_CONFIG_COLUMNS.map(() => '?').join(', ')})
    ON CONFLICT (task_id, id) DO UPDATE SET url = excluded.url, token = excluded.token, auth_scheme = excluded.auth_scheme,
      auth_credentials = excluded.auth_credentials, wire_version = excluded.wire_version, owner_id = excluded.owner_id,
      created_at = excluded.created_at, last_state = NULL`).run(...a2aPushConfigValues({ ...config, lastState: null }));
  return { saved: true };
}

export function getA2aPushConfig(cache: StatementCache, taskId: string, id: string): A2aPushConfigRecord | null {
  const row = cache.sql(`SELECT ${CONFIG_SELECT} FROM a2a_push_configs WHERE task_id = ? AND id = ?`).get(taskId, id);
  return row ? a2aPushConfigFromRow(row) : null;
}

export function listA2aPushConfigs(cache: StatementCache, taskIds: string[] | null): A2aPushConfigRecord[] {
  const order = 'ORDER BY task_id, created_at, id';
  if (taskIds === null) return cache.sql(`SELECT ${CONFIG_SELECT} FROM a2a_push_configs ${order}`).all().map(a2aPushConfigFromRow);
  if (taskIds.length === 0) return [];
  return cache.sql(`SELECT ${CONFIG_SELECT} FROM a2a_push_configs WHERE task_id IN (SELECT value FROM json_each(?)) ${order}`)
    .all(JSON.stringify(taskIds)).map(a2aPushConfigFromRow);
}

/** The config and its queued deliveries (which carry its URL and credentials); with ownerId, only that owner's. */
export function deleteA2aPushConfig(cache: StatementCache, p: { taskId: string; id: string; ownerId?: string | null }): { deleted: boolean } {
  const deleted = p.ownerId === undefined || p.ownerId === null
    ? changes(cache.sql('DELETE FROM a2a_push_configs WHERE task_id = ? AND id = ?').run(p.taskId, p.id))
    : changes(cache.sql('DELETE FROM a2a_push_configs WHERE task_id = ? AND id = ? AND owner_id = ?').run(p.taskId, p.id, p.ownerId));
  if (deleted === 0) return { deleted: false };
  cache.sql('DELETE FROM a2a_push_deliveries WHERE task_id = ? AND config_id = ?').run(p.taskId, p.id);
  return { deleted: true };
}

export function pageA2aPushConfigs(cache: StatementCache, p: { after: { taskId: string; id: string } | null; limit: number }): A2aPushConfigRecord[] {
  if (p.after === null) return cache.sql(`SELECT ${CONFIG_SELECT} FROM a2a_push_configs ORDER BY task_id, id LIMIT ?`).all(p.limit).map(a2aPushConfigFromRow);
  return cache.sql(`SELECT ${CONFIG_SELECT} FROM a2a_push_configs WHERE (task_id, id) > (?, ?) ORDER BY task_id, id LIMIT ?`)
    .all(p.after.taskId, p.after.id, p.limit).map(a2aPushConfigFromRow);
}

/** Each item guarded on its config's last_state (IS: NULL matches NULL); see Store.a2aPushEnqueue. */
export function enqueueA2aPush(cache: StatementCache, items: readonly A2aPushEnqueueItem[]): number {
  let queued = 0;
  for (const item of items) {
    const marked = changes(cache.sql('UPDATE a2a_push_configs SET last_state = ? WHERE task_id = ? AND id = ? AND last_state IS ?')
      .run(item.state, item.taskId, item.configId, item.expectedState));
    if (marked === 0) continue;
    cache.sql(`INSERT INTO a2a_push_deliveries (task_id, config_id, url, token, auth_scheme, auth_credentials, wire_version, payload, next_at, created_at)
      SELECT task_id, id, url, token, auth_scheme, auth_credentials, wire_version, ?, ?, ? FROM a2a_push_configs WHERE task_id = ? AND id = ?`)
      .run(JSON.stringify(item.payload), item.nextAt, item.createdAt, item.taskId, item.configId);
    if (item.final) cache.sql('DELETE FROM a2a_push_configs WHERE task_id = ? AND id = ?').run(item.taskId, item.configId);
    queued++;
  }
  return queued;
}

export function dueA2aPush(cache: StatementCache, now: Millis, limit: number): { deliveries: A2aPushDeliveryRecord[]; nextAt: Millis | null } {
  const deliveries = cache.sql(`SELECT ${DELIVERY_SELECT} FROM a2a_push_deliveries d WHERE d.next_at <= ?
      AND NOT EXISTS (SELECT 1 FROM a2a_push_deliveries e WHERE e.task_id = d.task_id AND e.config_id = d.config_id AND e.id < d.id)
    ORDER BY d.id LIMIT ?`).all(now, limit).map(a2aPushDeliveryFromRow);
  const next = cache.sql('SELECT min(next_at) AS n FROM a2a_push_deliveries WHERE next_at > ?').get(now)?.n;
  return { deliveries, nextAt: next === null || next === undefined ? null : Number(next) };
}

export function doneA2aPush(cache: StatementCache, id: number): void {
  cache.sql('DELETE FROM a2a_push_deliveries WHERE id = ?').run(id);
}

export function retryA2aPush(cache: StatementCache, p: { id: number; attempts: number; nextAt: Millis; error: string }): void {
  cache.sql('UPDATE a2a_push_deliveries SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?').run(p.attempts, p.nextAt, p.error, p.id);
}
