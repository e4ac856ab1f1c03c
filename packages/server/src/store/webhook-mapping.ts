// Row <-> record mapping of the webhook tables (migration 22), shared by both stores: the
// column lists and the readers, so a query and its mapper cannot disagree about names.
// JSON columns (events, agents, visibility) are text in SQLite and jsonb in PostgreSQL; a
// delivery's body is text in both: it is the exact bytes that are signed and sent.

import type { TaskVisibility } from '../core/permissions.ts';
import type { ColumnReader } from './record-mapping.ts';
import type { WebhookDeliveryRecord, WebhookDueDelivery, WebhookNotifyRecord, WebhookRecord } from './store.ts';

export const WEBHOOK_COLUMNS = [
  'id', 'url', 'events', 'agents', 'root_id', 'enabled', 'description', 'owner_id', 'visibility', 'secret_sealed', 'from_seq',
  'created_at', 'updated_at', 'expires_at',
] as const;

export const WEBHOOK_DELIVERY_COLUMNS = [
  'seq', 'subscription_id', 'event_seq', 'event_type', 'task_id', 'url', 'body', 'status', 'attempts', 'next_at', 'created_at', 'last_error',
] as const;

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'failed'] as const;

/** A subscription's column values in WEBHOOK_COLUMNS order (JSON columns as text; enabled as 0/1 or boolean per store). */
export function webhookValues(w: WebhookRecord, enabled: (v: boolean) => number | boolean): Array<string | number | boolean | null> {
  return [
    w.id, w.url, JSON.stringify(w.events), w.agents === null ? null : JSON.stringify(w.agents), w.rootId, enabled(w.enabled), w.description,
    w.ownerId, JSON.stringify(w.visibility), w.secretSealed, w.fromSeq, w.createdAt, w.updatedAt, w.expiresAt,
  ];
}

export function webhookMappers<R extends Record<string, unknown>>(r: ColumnReader<R>) {
  const deliveryFromRow = (row: R): WebhookDeliveryRecord => ({
    seq: r.num(row, 'seq'),
    subscriptionId: r.str(row, 'subscription_id'),
    eventSeq: r.num(row, 'event_seq'),
    eventType: r.str(row, 'event_type'),
    taskId: r.strOrNull(row, 'task_id'),
    url: r.strOrNull(row, 'url'),
    body: r.str(row, 'body'),
    status: r.oneOf(row, 'status', WEBHOOK_DELIVERY_STATUSES),
    attempts: r.num(row, 'attempts'),
    nextAt: r.num(row, 'next_at'),
    createdAt: r.num(row, 'created_at'),
    lastError: r.strOrNull(row, 'last_error'),
  });
  return {
    webhookFromRow(row: R): WebhookRecord {
      return {
        id: r.str(row, 'id'),
        url: r.str(row, 'url'),
        events: r.stringArray(row, 'events'),
        agents: r.stringArrayOrNull(row, 'agents'),
        rootId: r.strOrNull(row, 'root_id'),
        // 0/1 in SQLite, a boolean in PostgreSQL.
        enabled: row.enabled === true || row.enabled === 1 || row.enabled === 1n,
        description: r.str(row, 'description'),
        ownerId: r.str(row, 'owner_id'),
        visibility: r.json(row, 'visibility') as unknown as TaskVisibility,
        secretSealed: r.str(row, 'secret_sealed'),
        fromSeq: r.num(row, 'from_seq'),
        createdAt: r.num(row, 'created_at'),
        updatedAt: r.num(row, 'updated_at'),
        expiresAt: r.numOrNull(row, 'expires_at'),
      };
    },
    webhookDeliveryFromRow: deliveryFromRow,
    webhookDueFromRow(row: R): WebhookDueDelivery {
      return { ...deliveryFromRow(row), secretSealed: r.strOrNull(row, 'secret'), targetUrl: r.str(row, 'target_url') };
    },
    webhookNotifyFromRow(row: R): WebhookNotifyRecord {
      return { taskId: r.str(row, 'task_id'), url: r.str(row, 'url'), createdAt: r.num(row, 'created_at') };
    },
  };
}
