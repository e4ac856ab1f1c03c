// The A2A push tables (migration 16): clients' notification configs and the outbox of
// notifications to send. Writes are WriteOps run in the store's write batch.

import type { Millis } from '../../core/types.ts';
import { A2A_PUSH_CONFIG_COLUMNS, A2A_PUSH_DELIVERY_COLUMNS, a2aPushConfigValues, a2aPushMappers } from '../a2a-push-mapping.ts';
import type { A2aPushConfigRecord, A2aPushConfigSaveResult, A2aPushDeliveryRecord, A2aPushEnqueueItem } from '../store.ts';
import { readers } from './rows.ts';
import { run, type Queryable } from './sql.ts';
import { written, type WriteOp } from './write-batch.ts';

const { a2aPushConfigFromRow, a2aPushDeliveryFromRow } = a2aPushMappers(readers);
const CONFIG_SELECT = A2A_PUSH_CONFIG_COLUMNS.join(', ');
const DELIVERY_SELECT = A2A_PUSH_DELIVERY_COLUMNS.map((c) => `d.${c}`).join(', ');
const CONFIG_TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'text'] as const;

/**
 * See Store.a2aPushConfigSave: the owner and the cap checked, and the write done, in one
 * transaction. The existing row is locked (FOR UPDATE) so a racing replace sees the owner this
 * one wrote; two racing creates of different ids may pass the cap together (it bounds a
 * client's configs, it is not an exact quota).
 */
export function saveA2aPushConfig(p: { config: A2aPushConfigRecord; ownerOnly?: boolean; maxPerTask?: number }): WriteOp<A2aPushConfigSaveResult> {
  return async (tx) => {
    const { config } = p;
    const [existing] = await run(tx, 'SELECT owner_id FROM a2a_push_configs WHERE task_id = $1::text AND id = $2::text FOR UPDATE', [config.taskId, config.id]);
    if (existing !== undefined) {
      if (p.ownerOnly === true && existing.owner_id !== config.ownerId) return written({ saved: false, reason: 'not_owner' } as const);
      // The old config's queued notifications carry its URL and credentials: they go with it.
      await run(tx, 'DELETE FROM a2a_push_deliveries WHERE task_id = $1::text AND config_id = $2::text', [config.taskId, config.id]);
    } else if (p.maxPerTask !== undefined) {
      const [row] = await run(tx, 'SELECT count(*) AS n FROM a2a_push_configs WHERE task_id = $1::text', [config.taskId]);
      if (Number(row?.n ?? 0) >= p.maxPerTask) return written({ saved: false, reason: 'limit' } as const);
    }
    await run(tx, `INSERT INTO a2a_push_configs (${CONFIG_SELECT}) VALUES (${CONFIG_TYPES.map((t, i) => `$${i + 1}::${t}`).join(', ')})
      ON CONFLICT (task_id, id) DO UPDATE SET url = excluded.url, token = excluded.token, auth_scheme = excluded.auth_scheme,
        auth_credentials = excluded.auth_credentials, wire_version = excluded.wire_version, owner_id = excluded.owner_id,
        created_at = excluded.created_at, last_state = NULL`, a2aPushConfigValues({ ...config, lastState: null }));
    return written({ saved: true } as const);
  };
}

export async function getA2aPushConfig(db: Queryable, taskId: string, id: string): Promise<A2aPushConfigRecord | null> {
  const [row] = await run(db, `SELECT ${CONFIG_SELECT} FROM a2a_push_configs WHERE task_id = $1::text AND id = $2::text`, [taskId, id]);
  return row ? a2aPushConfigFromRow(row) : null;
}

/** Ordered as the SQLite store does (byte order of the ids: COLLATE "C"). */
export async function listA2aPushConfigs(db: Queryable, taskIds: string[] | null): Promise<A2aPushConfigRecord[]> {
  const order = 'ORDER BY task_id COLLATE "C", created_at, id COLLATE "C"';
  if (taskIds === null) return (await run(db, `SELECT ${CONFIG_SELECT} FROM a2a_push_configs ${order}`)).map(a2aPushConfigFromRow);
  if (taskIds.length === 0) return [];
  return (await run(db, `SELECT ${CONFIG_SELECT} FROM a2a_push_configs WHERE task_id = ANY($1::text[]) ${order}`, [taskIds])).map(a2aPushConfigFromRow);
}

/** The config and its queued deliveries (which carry its URL and credentials); with ownerId, only that owner's. */
export function deleteA2aPushConfig(p: { taskId: string; id: string; ownerId?: string | null }): WriteOp<{ deleted: boolean }> {
  return async (tx) => {
    const rows = p.ownerId === undefined || p.ownerId === null
      ? await run(tx, 'DELETE FROM a2a_push_configs WHERE task_id = $1::text AND id = $2::text RETURNING id', [p.taskId, p.id])
      : await run(tx, 'DELETE FROM a2a_push_configs WHERE task_id = $1::text AND id = $2::text AND owner_id = $3::text RETURNING id', [p.taskId, p.id, p.ownerId]);
    if (rows.length === 0) return written({ deleted: false });
    await run(tx, 'DELETE FROM a2a_push_deliveries WHERE task_id = $1::text AND config_id = $2::text', [p.taskId, p.id]);
    return written({ deleted: true });
  };
}

/** By (task_id, id) in byte order (COLLATE "C"), as the SQLite store pages. */
export async function pageA2aPushConfigs(db: Queryable, p: { after: { taskId: string; id: string } | null; limit: number }): Promise<A2aPushConfigRecord[]> {
  const order = 'ORDER BY task_id COLLATE "C", id COLLATE "C"';
  if (p.after === null) return (await run(db, `SELECT ${CONFIG_SELECT} FROM a2a_push_configs ${order} LIMIT $1::integer`, [p.limit])).map(a2aPushConfigFromRow);
  return (await run(db, `SELECT ${CONFIG_SELECT} FROM a2a_push_configs
    WHERE task_id COLLATE "C" > $1::text OR (task_id = $1::text AND id COLLATE "C" > $2::text) ${order} LIMIT $3::integer`,
  [p.after.taskId, p.after.id, p.limit])).map(a2aPushConfigFromRow);
}

/** Each item guarded on its config's last_state (IS NOT DISTINCT FROM: NULL matches NULL); see Store.a2aPushEnqueue. */
export function enqueueA2aPush(items: readonly A2aPushEnqueueItem[]): WriteOp<number> {
  return async (tx) => {
    let queued = 0;
    for (const item of items) {
      const marked = await run(tx, `UPDATE a2a_push_configs SET last_state = $1::text
        WHERE task_id = $2::text AND id = $3::text AND last_state IS NOT DISTINCT FROM $4::text RETURNING id`,
      [item.state, item.taskId, item.configId, item.expectedState]);
      if (marked.length === 0) continue;
      await run(tx, `INSERT INTO a2a_push_deliveries (task_id, config_id, url, token, auth_scheme, auth_credentials, wire_version, payload, next_at, created_at)
        SELECT task_id, id, url, token, auth_scheme, auth_credentials, wire_version, $1::jsonb, $2::bigint, $3::bigint
        FROM a2a_push_configs WHERE task_id = $4::text AND id = $5::text`,
      [JSON.stringify(item.payload), item.nextAt, item.createdAt, item.taskId, item.configId]);
      if (item.final) await run(tx, 'DELETE FROM a2a_push_configs WHERE task_id = $1::text AND id = $2::text', [item.taskId, item.configId]);
      queued++;
    }
    return written(queued);
  };
}

export async function dueA2aPush(db: Queryable, now: Millis, limit: number): Promise<{ deliveries: A2aPushDeliveryRecord[]; nextAt: Millis | null }> {
  const deliveries = (await run(db, `SELECT ${DELIVERY_SELECT} FROM a2a_push_deliveries d WHERE d.next_at <= $1::bigint
      AND NOT EXISTS (SELECT 1 FROM a2a_push_deliveries e WHERE e.task_id = d.task_id AND e.config_id = d.config_id AND e.id < d.id)
    ORDER BY d.id LIMIT $2::integer`, [now, limit])).map(a2aPushDeliveryFromRow);
  const [row] = await run(db, 'SELECT min(next_at) AS n FROM a2a_push_deliveries WHERE next_at > $1::bigint', [now]);
  return { deliveries, nextAt: row?.n === null || row?.n === undefined ? null : Number(row.n) };
}

export function doneA2aPush(id: number): WriteOp<void> {
  return async (tx) => {
    await run(tx, 'DELETE FROM a2a_push_deliveries WHERE id = $1::bigint', [id]);
    return written(undefined);
  };
}

export function retryA2aPush(p: { id: number; attempts: number; nextAt: Millis; error: string }): WriteOp<void> {
  return async (tx) => {
    await run(tx, 'UPDATE a2a_push_deliveries SET attempts = $2::integer, next_at = $3::bigint, last_error = $4::text WHERE id = $1::bigint',
      [p.id, p.attempts, p.nextAt, p.error]);
    return written(undefined);
  };
}
