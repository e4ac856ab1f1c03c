// The webhook tables (migration 22): subscriptions, the feed's cursor and notify URLs, and the
// outbox of deliveries. Writes are WriteOps run in the store's write batch. Orders by seq and
// created_at, id (COLLATE "C": byte order, as the SQLite store).

import type { Millis } from '../../core/types.ts';
import { NOTIFY_SUBSCRIPTION } from '../../core/webhooks.ts';
import { WEBHOOK_COLUMNS, WEBHOOK_DELIVERY_COLUMNS, webhookMappers, webhookValues } from '../webhook-mapping.ts';
import type {
  NewWebhookDelivery, WebhookDeliveryRecord, WebhookDeliveryStatus, WebhookDueDelivery, WebhookNotifyRecord, WebhookRecord,
} from '../store.ts';
import { readers } from './rows.ts';
import { run, type Queryable } from './sql.ts';
import { written, type WriteOp } from './write-batch.ts';

const { webhookFromRow, webhookDeliveryFromRow, webhookDueFromRow, webhookNotifyFromRow } = webhookMappers(readers);
const SELECT = WEBHOOK_COLUMNS.join(', ');
const DELIVERY_SELECT = WEBHOOK_DELIVERY_COLUMNS.map((c) => `d.${c}`).join(', ');
const TYPES = ['text', 'text', 'jsonb', 'jsonb', 'text', 'boolean', 'text', 'text', 'jsonb', 'text', 'bigint', 'bigint', 'bigint', 'bigint'] as const;
const ORDER = 'ORDER BY created_at, id COLLATE "C"';

export function createWebhook(w: WebhookRecord): WriteOp<void> {
  return async (tx) => {
    await run(tx, `INSERT INTO webhook_subscriptions (${SELECT}) VALUES (${TYPES.map((t, i) => `$${i + 1}::${t}`).join(', ')})`, webhookValues(w, (v) => v));
    return written(undefined);
  };
}

export async function getWebhook(db: Queryable, id: string): Promise<WebhookRecord | null> {
  const [row] = await run(db, `SELECT ${SELECT} FROM webhook_subscriptions WHERE id = $1::text`, [id]);
  return row ? webhookFromRow(row) : null;
}

export async function listWebhooks(db: Queryable, ownerId: string | undefined): Promise<WebhookRecord[]> {
  if (ownerId === undefined) return (await run(db, `SELECT ${SELECT} FROM webhook_subscriptions ${ORDER}`)).map(webhookFromRow);
  return (await run(db, `SELECT ${SELECT} FROM webhook_subscriptions WHERE owner_id = $1::text ${ORDER}`, [ownerId])).map(webhookFromRow);
}

export function updateWebhook(w: WebhookRecord, ifUpdatedAt: Millis): WriteOp<{ updated: boolean }> {
  return async (tx) => {
    const rows = await run(tx, `UPDATE webhook_subscriptions SET url = $2::text, events = $3::jsonb, agents = $4::jsonb, root_id = $5::text,
      enabled = $6::boolean, description = $7::text, secret_sealed = $8::text, updated_at = $9::bigint
      WHERE id = $1::text AND updated_at = $10::bigint RETURNING id`,
    [w.id, w.url, JSON.stringify(w.events), w.agents === null ? null : JSON.stringify(w.agents), w.rootId, w.enabled, w.description, w.secretSealed, w.updatedAt, ifUpdatedAt]);
    return written({ updated: rows.length > 0 });
  };
}

export function deleteWebhook(id: string): WriteOp<{ deleted: boolean }> {
  return async (tx) => {
    const rows = await run(tx, 'DELETE FROM webhook_subscriptions WHERE id = $1::text RETURNING id', [id]);
    if (rows.length === 0) return written({ deleted: false });
    await run(tx, 'DELETE FROM webhook_deliveries WHERE subscription_id = $1::text', [id]);
    return written({ deleted: true });
  };
}

export async function webhookCursor(db: Queryable): Promise<number> {
  const [row] = await run(db, 'SELECT seq FROM webhook_feed WHERE id = 1');
  return Number(row?.seq ?? 0);
}

/** See Store.webhookFeedAdvance: the guarded cursor update first (it locks the row: a racing feed waits, then finds it moved). */
export function advanceWebhookFeed(p: { from: number; to: number; deliveries: NewWebhookDelivery[]; notifies: WebhookNotifyRecord[]; notified: string[] }): WriteOp<{ advanced: boolean }> {
  return async (tx) => {
    const moved = await run(tx, 'UPDATE webhook_feed SET seq = $1::bigint WHERE id = 1 AND seq = $2::bigint RETURNING id', [p.to, p.from]);
    if (moved.length === 0) return written({ advanced: false });
    if (p.deliveries.length > 0) {
      const d = p.deliveries;
      // One statement for the whole step, however many deliveries it queues.
      await run(tx, `INSERT INTO webhook_deliveries (subscription_id, event_seq, event_type, task_id, url, body, status, attempts, next_at, created_at)
        SELECT s, e, t, k, u, b, 'pending', 0, n, c
        FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[]) AS x (s, e, t, k, u, b, n, c)
        -- Only for a subscription that still exists (or notify): one deleted after the feed read the list is queued nothing.
        WHERE s = $9::text OR EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.id = s)
        ON CONFLICT (subscription_id, event_seq) DO NOTHING`,
      [d.map((x) => x.subscriptionId), d.map((x) => x.eventSeq), d.map((x) => x.eventType), d.map((x) => x.taskId), d.map((x) => x.url),
        d.map((x) => x.body), d.map((x) => x.nextAt), d.map((x) => x.createdAt), NOTIFY_SUBSCRIPTION]);
    }
    if (p.notifies.length > 0) {
      await run(tx, `INSERT INTO webhook_notifies (task_id, url, created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
        ON CONFLICT (task_id) DO NOTHING`, [p.notifies.map((n) => n.taskId), p.notifies.map((n) => n.url), p.notifies.map((n) => n.createdAt)]);
    }
    if (p.notified.length > 0) await run(tx, 'DELETE FROM webhook_notifies WHERE task_id = ANY($1::text[])', [p.notified]);
    return written({ advanced: true });
  };
}

export async function listWebhookNotifies(db: Queryable, taskIds: string[]): Promise<WebhookNotifyRecord[]> {
  if (taskIds.length === 0) return [];
  return (await run(db, 'SELECT task_id, url, created_at FROM webhook_notifies WHERE task_id = ANY($1::text[]) ORDER BY task_id COLLATE "C"', [taskIds]))
    .map(webhookNotifyFromRow);
}

/**
 * The sender's query ($1 now, $2 NOTIFY_SUBSCRIPTION, $3 limit). The same-task check is on
 * coalesce(task_id, '') so that it is a lookup in webhook_deliveries_order (IS NOT DISTINCT
 * FROM cannot use an index: each candidate scanned every earlier pending row, quadratic in a
 * backlog, which is what a receiver that was down leaves). Exported for the plan test.
 */
export const DUE_DELIVERIES_SQL = `SELECT ${DELIVERY_SELECT}, s.secret_sealed AS secret, coalesce(s.url, d.url) AS target_url
    FROM webhook_deliveries d LEFT JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.status = 'pending' AND d.next_at <= $1::bigint AND (d.subscription_id = $2::text OR s.enabled)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.status = 'pending' AND e.subscription_id = d.subscription_id
        AND coalesce(e.task_id, '') = coalesce(d.task_id, '') AND e.seq < d.seq)
    ORDER BY d.seq LIMIT $3::integer`;

export async function dueWebhookDeliveries(db: Queryable, now: Millis, limit: number): Promise<{ deliveries: WebhookDueDelivery[]; nextAt: Millis | null }> {
  const deliveries = (await run(db, DUE_DELIVERIES_SQL, [now, NOTIFY_SUBSCRIPTION, limit])).map(webhookDueFromRow);
  const [row] = await run(db, "SELECT min(next_at) AS n FROM webhook_deliveries WHERE status = 'pending' AND next_at > $1::bigint", [now]);
  return { deliveries, nextAt: row?.n === null || row?.n === undefined ? null : Number(row.n) };
}

export function doneWebhookDelivery(seq: number): WriteOp<void> {
  return async (tx) => {
    await run(tx, 'DELETE FROM webhook_deliveries WHERE seq = $1::bigint', [seq]);
    return written(undefined);
  };
}

export function retryWebhookDelivery(p: { seq: number; attempts: number; nextAt: Millis; error: string; park: boolean }): WriteOp<void> {
  return async (tx) => {
    await run(tx, 'UPDATE webhook_deliveries SET attempts = $2::integer, next_at = $3::bigint, last_error = $4::text, status = $5::text WHERE seq = $1::bigint',
      [p.seq, p.attempts, p.nextAt, p.error, p.park ? 'failed' : 'pending']);
    return written(undefined);
  };
}

export async function listWebhookDeliveries(db: Queryable, p: { subscriptionId: string; status: WebhookDeliveryStatus; limit: number }): Promise<WebhookDeliveryRecord[]> {
  return (await run(db, `SELECT ${DELIVERY_SELECT} FROM webhook_deliveries d WHERE d.subscription_id = $1::text AND d.status = $2::text ORDER BY d.seq LIMIT $3::integer`,
    [p.subscriptionId, p.status, p.limit])).map(webhookDeliveryFromRow);
}

export function replayWebhookDeliveries(p: { subscriptionId: string; eventSeq?: number; now: Millis }): WriteOp<number> {
  return async (tx) => {
    const rows = await run(tx, `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = $1::bigint
      WHERE subscription_id = $2::text AND status = 'failed' AND ($3::bigint IS NULL OR event_seq = $3::bigint) RETURNING seq`,
    [p.now, p.subscriptionId, p.eventSeq ?? null]);
    return written(rows.length);
  };
}
