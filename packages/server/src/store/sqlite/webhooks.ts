// The webhook tables (migration 22): subscriptions, the feed's cursor and notify URLs, and the
// outbox of deliveries. Reads run on the connection; writes are synchronous functions that
// sqlite-store.ts runs inside the write batch.

import type { Millis } from '../../core/types.ts';
import { NOTIFY_SUBSCRIPTION } from '../../core/webhooks.ts';
import { WEBHOOK_COLUMNS, WEBHOOK_DELIVERY_COLUMNS, webhookMappers, webhookValues } from '../webhook-mapping.ts';
import type {
  NewWebhookDelivery, WebhookDeliveryRecord, WebhookDeliveryStatus, WebhookDueDelivery, WebhookNotifyRecord, WebhookRecord,
} from '../store.ts';
import { changes, readers } from './rows.ts';
import type { StatementCache } from './statement-cache.ts';

const { webhookFromRow, webhookDeliveryFromRow, webhookDueFromRow, webhookNotifyFromRow } = webhookMappers(readers);
const SELECT = WEBHOOK_COLUMNS.join(', ');
const DELIVERY_SELECT = WEBHOOK_DELIVERY_COLUMNS.map((c) => `d.${c}`).join(', ');
const asInt = (v: boolean): number => (v ? 1 : 0);

export function createWebhook(cache: StatementCache, w: WebhookRecord): void {
  cache.sql(`INSERT INTO webhook_subscriptions (${SELECT}) VALUES (${WEBHOOK_COLUMNS.map(() => '?').join(', ')})`).run(...(webhookValues(w, asInt) as Array<string | number | null>));
}

export function getWebhook(cache: StatementCache, id: string): WebhookRecord | null {
  const row = cache.sql(`SELECT ${SELECT} FROM webhook_subscriptions WHERE id = ?`).get(id);
  return row ? webhookFromRow(row) : null;
}

export function listWebhooks(cache: StatementCache, ownerId: string | undefined): WebhookRecord[] {
  if (ownerId === undefined) return cache.sql(`SELECT ${SELECT} FROM webhook_subscriptions ORDER BY created_at, id`).all().map(webhookFromRow);
  return cache.sql(`SELECT ${SELECT} FROM webhook_subscriptions WHERE owner_id = ? ORDER BY created_at, id`).all(ownerId).map(webhookFromRow);
}

export function updateWebhook(cache: StatementCache, w: WebhookRecord, ifUpdatedAt: Millis): { updated: boolean } {
  const n = changes(cache.sql(`UPDATE webhook_subscriptions SET url = ?, events = ?, agents = ?, root_id = ?, enabled = ?, description = ?,
    secret_sealed = ?, updated_at = ? WHERE id = ? AND updated_at = ?`).run(
    w.url, JSON.stringify(w.events), w.agents === null ? null : JSON.stringify(w.agents), w.rootId, asInt(w.enabled), w.description,
    w.secretSealed, w.updatedAt, w.id, ifUpdatedAt));
  return { updated: n > 0 };
}

export function deleteWebhook(cache: StatementCache, id: string): { deleted: boolean } {
  if (changes(cache.sql('DELETE FROM webhook_subscriptions WHERE id = ?').run(id)) === 0) return { deleted: false };
  cache.sql('DELETE FROM webhook_deliveries WHERE subscription_id = ?').run(id);
  return { deleted: true };
}

export function webhookCursor(cache: StatementCache): number {
  return Number(cache.sql('SELECT seq FROM webhook_feed WHERE id = 1').get()?.seq ?? 0);
}

/** See Store.webhookFeedAdvance: the guard on the cursor first, then everything else, in one write batch. */
export function advanceWebhookFeed(cache: StatementCache, p: { from: number; to: number; deliveries: NewWebhookDelivery[]; notifies: WebhookNotifyRecord[]; notified: string[] }): { advanced: boolean } {
  if (changes(cache.sql('UPDATE webhook_feed SET seq = ? WHERE id = 1 AND seq = ?').run(p.to, p.from)) === 0) return { advanced: false };
  // Only for a subscription that still exists (or notify): one deleted after the feed read the list is queued nothing.
  const insert = cache.sql(`INSERT INTO webhook_deliveries (subscription_id, event_seq, event_type, task_id, url, body, status, attempts, next_at, created_at)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?8 WHERE ?1 = ?9 OR EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = ?1)
    ON CONFLICT (subscription_id, event_seq) DO NOTHING`);
  for (const d of p.deliveries) insert.run(d.subscriptionId, d.eventSeq, d.eventType, d.taskId, d.url, d.body, d.nextAt, d.createdAt, NOTIFY_SUBSCRIPTION);
  if (p.notifies.length > 0) {
    cache.sql(`INSERT INTO webhook_notifies (task_id, url, created_at) SELECT j.value ->> 'taskId', j.value ->> 'url', j.value ->> 'createdAt'
      FROM json_each(?) j WHERE true ON CONFLICT (task_id) DO NOTHING`).run(JSON.stringify(p.notifies));
  }
  if (p.notified.length > 0) cache.sql('DELETE FROM webhook_notifies WHERE task_id IN (SELECT value FROM json_each(?))').run(JSON.stringify(p.notified));
  return { advanced: true };
}

export function listWebhookNotifies(cache: StatementCache, taskIds: string[]): WebhookNotifyRecord[] {
  if (taskIds.length === 0) return [];
  return cache.sql('SELECT task_id, url, created_at FROM webhook_notifies WHERE task_id IN (SELECT value FROM json_each(?)) ORDER BY task_id')
    .all(JSON.stringify(taskIds)).map(webhookNotifyFromRow);
}

export function dueWebhookDeliveries(cache: StatementCache, now: Millis, limit: number): { deliveries: WebhookDueDelivery[]; nextAt: Millis | null } {
  const deliveries = cache.sql(`SELECT ${DELIVERY_SELECT}, s.secret_sealed AS secret, coalesce(s.url, d.url) AS target_url
    FROM webhook_deliveries d LEFT JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.status = 'pending' AND d.next_at <= ? AND (d.subscription_id = ? OR s.enabled = 1)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.status = 'pending' AND e.subscription_id = d.subscription_id
        AND e.task_id IS d.task_id AND e.seq < d.seq)
    ORDER BY d.seq LIMIT ?`).all(now, NOTIFY_SUBSCRIPTION, limit).map(webhookDueFromRow);
  const next = cache.sql("SELECT min(next_at) AS n FROM webhook_deliveries WHERE status = 'pending' AND next_at > ?").get(now)?.n;
  return { deliveries, nextAt: next === null || next === undefined ? null : Number(next) };
}

export function doneWebhookDelivery(cache: StatementCache, seq: number): void {
  cache.sql('DELETE FROM webhook_deliveries WHERE seq = ?').run(seq);
}

export function retryWebhookDelivery(cache: StatementCache, p: { seq: number; attempts: number; nextAt: Millis; error: string; park: boolean }): void {
  cache.sql('UPDATE webhook_deliveries SET attempts = ?, next_at = ?, last_error = ?, status = ? WHERE seq = ?')
    .run(p.attempts, p.nextAt, p.error, p.park ? 'failed' : 'pending', p.seq);
}

export function listWebhookDeliveries(cache: StatementCache, p: { subscriptionId: string; status: WebhookDeliveryStatus; limit: number }): WebhookDeliveryRecord[] {
  return cache.sql(`SELECT ${DELIVERY_SELECT} FROM webhook_deliveries d WHERE d.subscription_id = ? AND d.status = ? ORDER BY d.seq LIMIT ?`)
    .all(p.subscriptionId, p.status, p.limit).map(webhookDeliveryFromRow);
}

export function replayWebhookDeliveries(cache: StatementCache, p: { subscriptionId: string; eventSeq?: number; now: Millis }): number {
  if (p.eventSeq === undefined) {
    return changes(cache.sql("UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = ? WHERE subscription_id = ? AND status = 'failed'")
      .run(p.now, p.subscriptionId));
  }
  return changes(cache.sql("UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = ? WHERE subscription_id = ? AND event_seq = ? AND status = 'failed'")
    .run(p.now, p.subscriptionId, p.eventSeq));
}
