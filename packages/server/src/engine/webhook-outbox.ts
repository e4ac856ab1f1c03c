// The webhook outbox (decisions 109, 111): fed from the events table by the maintenance node,
// sent by it, at least once, with backoff, in order per task per subscription. Nothing here
// runs on the hot path: a task's commit writes nothing for webhooks (its notify URL, when it
// has one, rides in its task.created event); the feed reads the events afterwards.
//
// - Feed: the events after the cursor stored in the store (so events that arrived while no
//   node ran the duty, or across a restart, are still found), a page at a time: for each, the
//   subscriptions that want it (core/webhooks.ts) get a delivery with the body built now, and
//   a terminal event of a task with a notify URL gets one for that URL; the cursor moves in
//   the same commit, guarded on its old value (two nodes racing queue a page once).
// - Sender: due deliveries (the oldest pending one of each subscription and task: a later
//   event of a task waits while an earlier one is retried) are POSTed, signed (the SDK's
//   signWebhook), in rounds while some are delivered (a delivered one lets its task's next go). A 2xx removes one; anything else is retried after backoff, then parked as
//   `failed` after webhookMaxAttempts, which lets that task's later deliveries go.

import {
  signWebhook, WEBHOOK_DELIVERY_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER,
} from '@flotilla/sdk';
import { retryDelay, type RetryPolicy } from '../core/retry-policy.ts';
import type { EventRecord, TaskRecord } from '../core/types.ts';
import {
  NOTIFY_EVENT_TYPES, NOTIFY_SUBSCRIPTION, notifyUrlOf, webhookActive, webhookBody, webhookDeliveryId, webhookOwnerActive, webhookWants,
} from '../core/webhooks.ts';
import type { NewWebhookDelivery, WebhookDueDelivery, WebhookNotifyRecord, WebhookRecord } from '../store/store.ts';
import type { EngineContext } from './context.ts';
import type { WebhookSecrets } from './webhook-secrets.ts';
import type { RevocationWatcher } from './scoped-tokens.ts';

/** Events read per feed step (one commit each). */
const FEED_PAGE = 500;
/** Feed steps per pass at most: a long backlog does not hold up the sender. */
const FEED_STEPS = 20;
const SEND_BATCH = 64;
/** Send rounds per pass at most: a delivered one may let its task's next one go at once. */
const SEND_ROUNDS = 10;
/**
 * A step that queues nothing moves the cursor in memory only, and writes it at most this
 * often: a fleet without webhooks pays one background commit a minute, never one per task. A
 * node that starts from an older stored cursor reads those events again and queues nothing
 * for them again (a subscription is sent only events after it was created).
 */
const CURSOR_SAVE_MS = 60_000;
/**
 * The sender looks at the queue at least this often even when nothing seemed due: a replay or
 * a re-enabled subscription may have been done through another node, whose wake() does not
 * reach this one. One indexed read.
 */
const RECHECK_MS = 5_000;

export class WebhookOutbox {
  #ctx: EngineContext;
  #secrets: WebhookSecrets;
  #fetch: typeof fetch;
  #revocations: Pick<RevocationWatcher, 'isRevoked'>;
  /** When deliveries may next be due: at once after a feed queued some, else the earliest not due yet. */
  #nextCheckAt = -Infinity;
  /** The stored cursor, and how far this node has read past it without queuing anything. */
  #cursor: { stored: number; ahead: number; savedAt: number } | null = null;

  constructor(params: { ctx: EngineContext; secrets: WebhookSecrets; revocations: Pick<RevocationWatcher, 'isRevoked'>; fetch?: typeof fetch }) {
    this.#ctx = params.ctx;
    this.#revocations = params.revocations;
    this.#secrets = params.secrets;
    this.#fetch = params.fetch ?? fetch;
  }

  /** This node does not run the duty now: look at once when it does again. */
  notLeading(): void {
    this.#nextCheckAt = -Infinity;
    this.#cursor = null;
  }

  /** One pass: queue what the events since the cursor call for, then send what is due. The maintenance loop calls it on one node. */
  async sweep(): Promise<void> {
    for (let i = 0; i < FEED_STEPS; i++) {
      if (!(await this.feed())) break;
    }
    for (let i = 0; i < SEND_ROUNDS; i++) {
      if ((await this.send()) === 0) break;
    }
  }

  /** One feed step; true when it read a full page (there may be more). */
  async feed(): Promise<boolean> {
    const { store } = this.#ctx;
    const now = this.#ctx.now();
    if (this.#cursor === null) {
      const stored = await store.webhookFeedCursor();
      this.#cursor = { stored, ahead: stored, savedAt: now };
    }
    const cursor = this.#cursor;
    const events = await store.eventList({ after: cursor.ahead, limit: FEED_PAGE });
    if (events.length === 0) return false;
    const subs = await this.#activeSubscriptions(now);
    const notify = await this.#notifyPlan(events, now);
    const wanted = subs.length > 0 ? events.filter((e) => e.taskId !== null) : events.filter((e) => notify.targets.has(e.seq));
    const tasks = await this.#tasksOf(wanted);
    const deliveries: NewWebhookDelivery[] = [];
    for (const event of events) {
      const task = event.taskId === null ? undefined : tasks.get(event.taskId);
      for (const sub of subs) {
        if (webhookWants(sub, event, task)) deliveries.push(this.#delivery(sub.id, event, task, null, now));
      }
      const url = notify.targets.get(event.seq);
      if (url !== undefined) deliveries.push(this.#delivery(NOTIFY_SUBSCRIPTION, event, task, url, now));
    }
    const to = events[events.length - 1]!.seq;
    const { record: toRecord, notified } = notify;
    if (deliveries.length === 0 && toRecord.length === 0 && notified.length === 0 && now - cursor.savedAt < CURSOR_SAVE_MS) {
      cursor.ahead = to;
      return events.length === FEED_PAGE;
    }
    const { advanced } = await store.webhookFeedAdvance({ from: cursor.stored, to, deliveries, notifies: toRecord, notified });
    // Not advanced: another node moved the cursor (it ran the duty meanwhile); start again from the stored one.
    this.#cursor = advanced ? { stored: to, ahead: to, savedAt: now } : null;
    if (advanced && deliveries.length > 0) this.#nextCheckAt = -Infinity;
    return advanced && events.length === FEED_PAGE;
  }

  /**
   * The notify side of a feed step, walking the page in order: a task.created event with a
   * notify URL records it; the task's terminal event is sent to it (`targets`: event seq to
   * URL) and drops it. A `task.requeued` task runs and ends again, so its URL (dropped at its
   * first end) is taken back from its task.created event and recorded again. `record` and
   * `notified` are what the store holds after the step (recorded, or dropped), per task.
   */
  async #notifyPlan(events: readonly EventRecord[], now: number): Promise<{ targets: Map<number, string>; record: WebhookNotifyRecord[]; notified: string[] }> {
    const { store } = this.#ctx;
    const created = new Map<string, string>();
    for (const e of events) {
      const url = notifyUrlOf(e);
      if (url !== null && e.taskId !== null) created.set(e.taskId, url);
    }
    for (const e of events) {
      if (e.type !== 'task.requeued' || e.taskId === null || created.has(e.taskId)) continue;
      const [first] = await store.eventList({ after: 0, limit: 1, taskId: e.taskId });
      const url = first === undefined ? null : notifyUrlOf(first);
      if (url !== null) created.set(e.taskId, url);
    }
    const ending = events.filter((e) => e.taskId !== null && NOTIFY_EVENT_TYPES.includes(e.type));
    // The URLs recorded by earlier steps, of the tasks ending here.
    const live = new Map((await store.webhookNotifyList({ taskIds: [...new Set(ending.map((e) => e.taskId!))] })).map((n) => [n.taskId, n.url]));
    const after = new Map<string, string | null>();
    const targets = new Map<number, string>();
    for (const e of events) {
      if (e.taskId === null) continue;
      if ((e.type === 'task.created' || e.type === 'task.requeued') && created.has(e.taskId)) {
        live.set(e.taskId, created.get(e.taskId)!);
        after.set(e.taskId, created.get(e.taskId)!);
      } else if (NOTIFY_EVENT_TYPES.includes(e.type) && live.has(e.taskId)) {
        targets.set(e.seq, live.get(e.taskId)!);
        live.delete(e.taskId);
        after.set(e.taskId, null);
      }
    }
    const record = [...after].filter(([, url]) => url !== null).map(([taskId, url]) => ({ taskId, url: url!, createdAt: now }));
    const notified = [...after].filter(([, url]) => url === null).map(([taskId]) => taskId);
    return { targets, record, notified };
  }

  /** The subscriptions events are queued for now: enabled, not past their end, and their owner still able to read. */
  async #activeSubscriptions(now: number): Promise<WebhookRecord[]> {
    const subs = (await this.#ctx.store.webhookList({})).filter((s) => webhookActive(s, now));
    if (subs.length === 0) return subs;
    // A revoked (or expired) owner's subscriptions are queued nothing: the right to read went with it.
    const keys = new Map((await this.#ctx.store.apiKeyList({ includeRevoked: true })).map((k) => [k.id, k]));
    return subs.filter((s) => webhookOwnerActive(s.ownerId, now, keys, (jti) => this.#revocations.isRevoked(jti)));
  }

  async #tasksOf(events: readonly EventRecord[]): Promise<Map<string, TaskRecord>> {
    const ids = [...new Set(events.map((e) => e.taskId!))];
    if (ids.length === 0) return new Map();
    return new Map((await this.#ctx.store.taskGetMany({ ids })).map((t) => [t.id, t]));
  }

  #delivery(subscriptionId: string, event: EventRecord, task: TaskRecord | undefined, url: string | null, now: number): NewWebhookDelivery {
    return {
      subscriptionId, eventSeq: event.seq, eventType: event.type, taskId: event.taskId, url,
      body: JSON.stringify(webhookBody(subscriptionId, event, task)), nextAt: now, createdAt: now,
    };
  }

  /** One round: sends what is due now; returns how many were delivered. */
  async send(): Promise<number> {
    const now = this.#ctx.now();
    if (now < this.#nextCheckAt) return 0;
    const { deliveries, nextAt } = await this.#ctx.store.webhookDeliveryDue({ now, limit: SEND_BATCH });
    // A delivery behind one of its task's that is sent now is due at once: look again next pass.
    this.#nextCheckAt = deliveries.length > 0 ? -Infinity : Math.min(nextAt ?? Infinity, now + RECHECK_MS);
    const sent = await Promise.all(deliveries.map((d) => this.#deliver(d)));
    return sent.filter(Boolean).length;
  }

  /** After an operator's replay on this node: the replayed deliveries are due now (other nodes: within RECHECK_MS). */
  wake(): void {
    this.#nextCheckAt = -Infinity;
  }

  /** Sends one delivery and records the outcome; true when the receiver took it. */
  async #deliver(d: WebhookDueDelivery): Promise<boolean> {
    const { config } = this.#ctx;
    let problem: string | null;
    try {
      const secret = d.secretSealed === null ? await this.#secrets.notifySecret() : await this.#secrets.unseal(d.secretSealed);
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'Flotilla-Webhooks/1',
        [WEBHOOK_SIGNATURE_HEADER]: await signWebhook({ secret, body: d.body, timestampS: Math.floor(this.#ctx.now() / 1000) }),
        [WEBHOOK_ID_HEADER]: d.subscriptionId,
        [WEBHOOK_DELIVERY_HEADER]: webhookDeliveryId(d.subscriptionId, d.eventSeq),
      };
      // No redirects: a receiver's answer is its own, and a redirect could point anywhere.
      const res = await this.#fetch(d.targetUrl, { method: 'POST', body: d.body, headers, redirect: 'manual', signal: AbortSignal.timeout(config.webhookTimeoutMs) });
      await res.body?.cancel().catch(() => {});
      problem = res.ok ? null : `the receiver answered ${res.status}`;
    } catch (err) {
      const cause = (err as Error).cause;
      problem = `not delivered: ${cause instanceof Error ? cause.message : (err as Error).message}`;
    }
    if (problem === null) {
      await this.#ctx.store.webhookDeliveryDone({ seq: d.seq });
      return true;
    }
    const attempts = d.attempts + 1;
    const park = attempts >= config.webhookMaxAttempts;
    const policy: RetryPolicy = { baseDelayMs: config.webhookRetryBaseMs, maxDelayMs: config.webhookRetryMaxMs };
    const nextAt = this.#ctx.now() + retryDelay(policy, attempts, this.#ctx.random());
    // The URL is not logged: it may carry a receiver's token in its query.
    const log = { webhookId: d.subscriptionId, deliveryId: webhookDeliveryId(d.subscriptionId, d.eventSeq), taskId: d.taskId, attempts, problem };
    if (park) this.#ctx.log.warn(log, 'webhook delivery failed; parked in the failed list');
    else this.#ctx.log.info(log, 'webhook delivery failed; will retry');
    await this.#ctx.store.webhookDeliveryRetry({ seq: d.seq, attempts, nextAt, error: problem, park });
    return false;
  }
}
