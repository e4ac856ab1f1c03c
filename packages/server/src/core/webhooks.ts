// Webhooks (docs/webhooks.md, decisions 109-112): pure rules for subscriptions, which events
// reach them, and the body a receiver is POSTed. No I/O: the outbox (engine/webhook-outbox.ts)
// reads the events and tasks and the store keeps the queue.
//
// Glossary (see core/types.ts):
// - webhook subscription: a URL, event type patterns and optional agent and tree filters, with
//   a secret that signs each delivery; owned by the principal that created it, and seeing only
//   the tasks that principal may read (its visibility, recorded at create).
// - webhook delivery: one event queued for one subscription (or a task's `notify` URL), sent
//   at least once, retried with backoff and parked as `failed` after the last attempt.
// - notify: a task's own completion delivery (TaskSpec.notify), signed with the notify secret.

import type { TaskVisibility } from './permissions.ts';
import { visibilitySees } from './permissions.ts';
import type { EventRecord, Json, Millis, TaskRecord } from './types.ts';

export const WEBHOOK_URL_MAX = 2048;
export const WEBHOOK_EVENTS_MAX = 64;
/**
 * Subscriptions one owner may have: each is matched against every event and multiplies the
 * outbox's writes, so a viewer key must not be able to make the feed arbitrarily slow.
 */
export const WEBHOOKS_PER_OWNER_MAX = 100;
/** The subscription id of a task's `notify` deliveries (subscription ids are UUIDs: no clash). */
export const NOTIFY_SUBSCRIPTION = 'notify';
/** The events that end a task: what `notify` delivers (exactly one of them per task). */
export const NOTIFY_EVENT_TYPES: readonly string[] = ['task.completed', 'task.failed', 'task.cancelled'];

const EVENT_PATTERN = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$/;

/** Why a webhook (or notify) URL is refused, or null when it is fine. */
export function webhookUrlProblem(raw: string): string | null {
  if (raw.length > WEBHOOK_URL_MAX) return `longer than ${WEBHOOK_URL_MAX} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not an absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'only http and https URLs are allowed';
  // Credentials in a URL end up in logs and views; a receiver authenticates Flotilla by the signature.
  if (url.username !== '' || url.password !== '') return 'credentials in the URL are not allowed (the signature authenticates the sender)';
  if (url.hash !== '') return 'a fragment is not sent to a server';
  return null;
}

/** The patterns that are neither an event type, a `prefix.*` pattern nor `*`. */
export function badEventPatterns(patterns: readonly string[]): string[] {
  return patterns.filter((p) => p.length > 128 || !EVENT_PATTERN.test(p));
}

export function eventTypeMatches(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

/** A subscription as the outbox matches it. */
export interface WebhookFilter {
  id: string;
  events: string[];
  agents: string[] | null;
  rootId: string | null;
  enabled: boolean;
  visibility: TaskVisibility;
  /** Events at or below this seq were before it existed: never sent to it. */
  fromSeq: number;
}

/**
 * Whether `event` goes to the subscription. `task` is the event's task (undefined: it has none,
 * or it is gone). An event of no task goes only to subscriptions that see every task and have
 * no agent or tree filter beyond what the event names.
 */
export function webhookWants(sub: WebhookFilter, event: EventRecord, task: TaskRecord | undefined): boolean {
  if (!sub.enabled || event.seq <= sub.fromSeq || !eventTypeMatches(sub.events, event.type)) return false;
  if (event.taskId !== null) {
    // Its task is gone (retention) before the feed reached it: who may see it is unknown.
    if (task === undefined || !visibilitySees(sub.visibility, task)) return false;
    if (sub.rootId !== null && task.rootId !== sub.rootId) return false;
    if (sub.agents !== null && (task.agent === null || !sub.agents.includes(task.agent))) return false;
    return true;
  }
  if (!sub.visibility.all || sub.rootId !== null) return false;
  return sub.agents === null || (event.agent !== null && sub.agents.includes(event.agent));
}

/** Whether the subscription is queued events now: enabled, and its token's lifetime (if a token made it) not over. */
export function webhookActive(sub: { enabled: boolean; expiresAt: Millis | null }, now: Millis): boolean {
  return sub.enabled && (sub.expiresAt === null || now < sub.expiresAt);
}

/**
 * Whether the subscription's owner may still read: an API key that exists and is neither
 * revoked nor expired, or a scoped token (`token:<jti>`) not revoked (its end is expiresAt).
 * `keys`: every API key by id (revoked ones too); `tokenRevoked`: this node's revocation view.
 */
export function webhookOwnerActive(
  ownerId: string, now: Millis,
  keys: ReadonlyMap<string, { revokedAt: Millis | null; expiresAt: Millis | null }>, tokenRevoked: (jti: string) => boolean,
): boolean {
  if (ownerId.startsWith('token:')) return !tokenRevoked(ownerId.slice('token:'.length));
  if (ownerId === 'system') return true;
  const key = keys.get(ownerId);
  return key !== undefined && key.revokedAt === null && (key.expiresAt === null || now < key.expiresAt);
}

/** The public delivery id: one per (subscription, event), the same on every attempt. */
export function webhookDeliveryId(subscriptionId: string, eventSeq: number): string {
  return `${subscriptionId}:${eventSeq}`;
}

/** The JSON a receiver is POSTed (WebhookEventBody in the SDK): the event, and its task as it is now. */
export function webhookBody(subscriptionId: string, event: EventRecord, task: TaskRecord | undefined): Json {
  return {
    id: webhookDeliveryId(subscriptionId, event.seq),
    webhookId: subscriptionId,
    event: { seq: event.seq, type: event.type, at: iso(event.at), taskId: event.taskId, agent: event.agent, data: event.data },
    task: task === undefined ? null : {
      id: task.id, status: task.status, agent: task.agent, rootId: task.rootId, parentId: task.parentId,
      result: task.result, error: task.error as unknown as Json,
    },
  };
}

/** The `notify` URL a `task.created` event carries (TaskService writes it there), or null. */
export function notifyUrlOf(event: EventRecord): string | null {
  if (event.type !== 'task.created') return null;
  const notify = event.data.notify;
  if (notify === null || typeof notify !== 'object' || Array.isArray(notify)) return null;
  return typeof notify.url === 'string' ? notify.url : null;
}

function iso(at: Millis): string {
  return new Date(at).toISOString();
}
