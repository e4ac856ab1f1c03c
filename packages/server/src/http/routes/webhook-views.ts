// Webhook records as the API shows them (WebhookView, WebhookDeliveryView in the SDK): times as
// ISO strings; never the secret, sealed or not, nor a delivery's body.

import type { WebhookDeliveryView, WebhookView } from '@flotilla/sdk';
import { webhookDeliveryId } from '../../core/webhooks.ts';
import type { WebhookDeliveryRecord, WebhookRecord } from '../../store/store.ts';

const iso = (at: number): string => new Date(at).toISOString();

export function webhookView(w: WebhookRecord): WebhookView {
  return {
    id: w.id, url: w.url, events: w.events, agents: w.agents, rootId: w.rootId, enabled: w.enabled, description: w.description,
    ownerId: w.ownerId, createdAt: iso(w.createdAt), updatedAt: iso(w.updatedAt), expiresAt: w.expiresAt === null ? null : iso(w.expiresAt),
  };
}

export function webhookDeliveryView(d: WebhookDeliveryRecord): WebhookDeliveryView {
  return {
    id: webhookDeliveryId(d.subscriptionId, d.eventSeq), webhookId: d.subscriptionId, eventSeq: d.eventSeq, eventType: d.eventType,
    taskId: d.taskId, status: d.status, attempts: d.attempts, nextAt: iso(d.nextAt), createdAt: iso(d.createdAt), lastError: d.lastError,
  };
}
