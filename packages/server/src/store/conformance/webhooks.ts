// Conformance: the webhook tables (migration 22). Subscriptions are created, listed (all, or
// one owner's) in one order, updated (never their owner, visibility or fromSeq; guarded on
// the updatedAt the change was made from) and deleted
// with their deliveries; the feed's step moves the cursor once however many feeds race (the
// guard on its old value), queues one delivery per (subscription, event), records and drops
// notify URLs; the sender is handed the oldest pending delivery of each subscription and task
// only, a parked one holding nothing back; replay makes failed ones pending again; and what
// the outbox holds survives a reopen (a restart).

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { NOTIFY_SUBSCRIPTION } from '../../core/webhooks.ts';
import type { NewWebhookDelivery, WebhookRecord } from '../store.ts';
import { T0, plainEvent, storeTest, type OpenStore } from './harness.ts';

function webhook(over: Partial<WebhookRecord> = {}): WebhookRecord {
  return {
    id: 'w1', url: 'http://127.0.0.1:9/hook', events: ['task.*'], agents: null, rootId: null, enabled: true, description: '',
    ownerId: 'key-1', visibility: { all: true }, secretSealed: 'v1.a.b.c', fromSeq: 0, createdAt: T0, updatedAt: T0, expiresAt: null, ...over,
  };
}

function delivery(over: Partial<NewWebhookDelivery> = {}): NewWebhookDelivery {
  return { subscriptionId: 'w1', eventSeq: 1, eventType: 'task.created', taskId: 'task-1', url: null, body: '{"id":"w1:1"}', nextAt: T0, createdAt: T0, ...over };
}

export function webhookTests(open: OpenStore): void {
  describe('webhooks', () => {
    storeTest(open, 'subscriptions: created, listed by creation (all or one owner\'s), updated, deleted with their deliveries', async ({ store }) => {
      const b = webhook({ id: 'b', createdAt: T0 + 2, agents: ['x', 'y'], rootId: 'root-1', visibility: { all: false, rootId: 'root-1' }, expiresAt: T0 + 9 });
      await store.webhookCreate({ webhook: b });
      await store.webhookCreate({ webhook: webhook({ id: 'a', createdAt: T0 + 1, ownerId: 'key-2', enabled: false }) });
      assert.deepEqual(await store.webhookGet({ id: 'b' }), b);
      assert.equal(await store.webhookGet({ id: 'nope' }), null);
      assert.deepEqual((await store.webhookList({})).map((w) => w.id), ['a', 'b']);
      assert.deepEqual((await store.webhookList({ ownerId: 'key-2' })).map((w) => [w.id, w.enabled]), [['a', false]]);
      // What an update may change; the rest is kept whatever the record says.
      const changed = { ...b, url: 'https://127.0.0.1:9/new', events: ['task.completed'], agents: null, rootId: null, enabled: false, description: 'd', secretSealed: 'v1.x.y.z', updatedAt: T0 + 5 };
      assert.deepEqual(await store.webhookUpdate({ webhook: { ...changed, ownerId: 'other', fromSeq: 99, visibility: { all: true }, createdAt: 0 }, ifUpdatedAt: b.updatedAt }), { updated: true });
      assert.deepEqual(await store.webhookGet({ id: 'b' }), changed);
      // Guarded on the updatedAt it was made from: a change from a stale copy writes nothing.
      assert.deepEqual(await store.webhookUpdate({ webhook: { ...b, secretSealed: 'v1.stale', updatedAt: T0 + 6 }, ifUpdatedAt: b.updatedAt }), { updated: false });
      assert.deepEqual(await store.webhookGet({ id: 'b' }), changed);
      assert.deepEqual(await store.webhookUpdate({ webhook: webhook({ id: 'nope' }), ifUpdatedAt: T0 }), { updated: false });
      await store.webhookFeedAdvance({ from: await store.webhookFeedCursor(), to: 1, deliveries: [delivery({ subscriptionId: 'b' }), delivery({ subscriptionId: 'a' })], notifies: [], notified: [] });
      assert.deepEqual(await store.webhookDelete({ id: 'b' }), { deleted: true });
      assert.deepEqual(await store.webhookDelete({ id: 'b' }), { deleted: false });
      assert.equal((await store.webhookDeliveryList({ subscriptionId: 'b', status: 'pending', limit: 10 })).length, 0);
      assert.equal((await store.webhookDeliveryList({ subscriptionId: 'a', status: 'pending', limit: 10 })).length, 1);
    });

    storeTest(open, 'the feed: the cursor starts at the last event, moves once however many feeds race; one delivery per subscription and event; notify URLs', async ({ store }) => {
      const [event] = await store.eventAppend({ events: [plainEvent('conformance.before')] });
      // A fresh database's cursor is 0, or (upgraded) the last event then: never past the events.
      const from = await store.webhookFeedCursor();
      assert.ok(from <= event!.seq);
      await store.webhookCreate({ webhook: webhook() });
      const step = { from, to: from + 2, deliveries: [delivery({ eventSeq: from + 1 }), delivery({ eventSeq: from + 2, taskId: 'task-2' })], notifies: [{ taskId: 'task-3', url: 'http://127.0.0.1:9/n', createdAt: T0 }], notified: [] };
      const raced = await Promise.all([store.webhookFeedAdvance(step), store.webhookFeedAdvance(step)]);
      assert.deepEqual(raced.map((r) => r.advanced).sort(), [false, true]);
      assert.equal(await store.webhookFeedCursor(), from + 2);
      assert.equal((await store.webhookDeliveryList({ subscriptionId: 'w1', status: 'pending', limit: 10 })).length, 2);
      // The same (subscription, event) again: skipped, not doubled.
      assert.deepEqual(await store.webhookFeedAdvance({ ...step, from: from + 2, to: from + 3, notifies: [] }), { advanced: true });
      assert.equal((await store.webhookDeliveryList({ subscriptionId: 'w1', status: 'pending', limit: 10 })).length, 2);
      assert.deepEqual(await store.webhookNotifyList({ taskIds: ['task-3', 'nope'] }), [{ taskId: 'task-3', url: 'http://127.0.0.1:9/n', createdAt: T0 }]);
      assert.deepEqual(await store.webhookNotifyList({ taskIds: [] }), []);
      // A subscription deleted after the feed read the list (it is gone when the step commits): queued nothing.
      assert.deepEqual(await store.webhookFeedAdvance({ from: from + 3, to: from + 3, deliveries: [delivery({ subscriptionId: 'deleted', eventSeq: from + 3 })], notifies: [], notified: [] }), { advanced: true });
      assert.equal((await store.webhookDeliveryList({ subscriptionId: 'deleted', status: 'pending', limit: 10 })).length, 0);
      await store.webhookFeedAdvance({
        from: from + 3, to: from + 4, notifies: [], notified: ['task-3'],
        deliveries: [delivery({ subscriptionId: NOTIFY_SUBSCRIPTION, eventSeq: from + 4, taskId: 'task-3', url: 'http://127.0.0.1:9/n', eventType: 'task.completed' })],
      });
      assert.deepEqual(await store.webhookNotifyList({ taskIds: ['task-3'] }), []);
      const due = await store.webhookDeliveryDue({ now: T0, limit: 10 });
      const notify = due.deliveries.find((d) => d.subscriptionId === NOTIFY_SUBSCRIPTION)!;
      // A notify delivery goes to its own URL, signed with the notify secret (no sealed one).
      assert.deepEqual([notify.targetUrl, notify.secretSealed], ['http://127.0.0.1:9/n', null]);
      const sub = due.deliveries.find((d) => d.subscriptionId === 'w1')!;
      assert.deepEqual([sub.targetUrl, sub.secretSealed, sub.body], [webhook().url, webhook().secretSealed, '{"id":"w1:1"}']);
    });

    storeTest(open, 'the sender: the oldest pending delivery of each subscription and task; parked ones hold nothing back; replay; kept across a reopen', async ({ store, reopen }) => {
      await store.webhookCreate({ webhook: webhook() });
      await store.webhookCreate({ webhook: webhook({ id: 'off', enabled: false }) });
      const from = await store.webhookFeedCursor();
      const seq = (n: number) => from + n;
      await store.webhookFeedAdvance({
        from, to: seq(5), notifies: [], notified: [],
        deliveries: [
          delivery({ eventSeq: seq(1) }), delivery({ eventSeq: seq(2), taskId: 'task-2' }), delivery({ eventSeq: seq(3) }),
          delivery({ eventSeq: seq(4), taskId: null, eventType: 'agent.created' }), delivery({ subscriptionId: 'off', eventSeq: seq(5) }),
        ],
      });
      const first = await store.webhookDeliveryDue({ now: T0, limit: 10 });
      // task-1's second waits behind its first; the disabled subscription's is not handed out.
      assert.deepEqual(first.deliveries.map((d) => d.eventSeq), [seq(1), seq(2), seq(4)]);
      assert.deepEqual((await store.webhookDeliveryDue({ now: T0, limit: 1 })).deliveries.map((d) => d.eventSeq), [seq(1)]);
      const [d1, d2] = first.deliveries;
      await store.webhookDeliveryRetry({ seq: d1!.seq, attempts: 1, nextAt: T0 + 1_000, error: 'the receiver answered 503', park: false });
      await store.webhookDeliveryDone({ seq: d2!.seq });
      await store.webhookDeliveryDone({ seq: first.deliveries[2]!.seq });
      assert.deepEqual(await store.webhookDeliveryDue({ now: T0 + 10, limit: 10 }), { deliveries: [], nextAt: T0 + 1_000 });
      if (reopen) await store.close();
      const again = reopen ? await reopen() : store;
      const retried = await again.webhookDeliveryDue({ now: T0 + 1_000, limit: 10 });
      assert.deepEqual(retried.deliveries.map((d) => [d.eventSeq, d.attempts, d.lastError, d.status]), [[seq(1), 1, 'the receiver answered 503', 'pending']]);
      // Parked: it leaves the pending list, and task-1's next delivery goes.
      await again.webhookDeliveryRetry({ seq: d1!.seq, attempts: 2, nextAt: T0 + 5_000, error: 'refused', park: true });
      assert.deepEqual((await again.webhookDeliveryDue({ now: T0 + 1_000, limit: 10 })).deliveries.map((d) => d.eventSeq), [seq(3)]);
      const failed = await again.webhookDeliveryList({ subscriptionId: 'w1', status: 'failed', limit: 10 });
      assert.deepEqual(failed.map((d) => [d.eventSeq, d.status, d.attempts, d.lastError]), [[seq(1), 'failed', 2, 'refused']]);
      // Replay: one by its event, guarded on failed (a pending one is left alone), or all.
      assert.equal(await again.webhookDeliveryReplay({ subscriptionId: 'w1', eventSeq: seq(3), now: T0 + 2_000 }), 0);
      assert.equal(await again.webhookDeliveryReplay({ subscriptionId: 'w1', eventSeq: seq(1), now: T0 + 2_000 }), 1);
      const replayed = await again.webhookDeliveryList({ subscriptionId: 'w1', status: 'pending', limit: 10 });
      assert.deepEqual(replayed.map((d) => [d.eventSeq, d.attempts, d.nextAt]), [[seq(1), 0, T0 + 2_000], [seq(3), 0, T0]]);
      await again.webhookDeliveryRetry({ seq: d1!.seq, attempts: 1, nextAt: T0, error: 'x', park: true });
      assert.equal(await again.webhookDeliveryReplay({ subscriptionId: 'w1', now: T0 + 3_000 }), 1);
      assert.equal(await again.webhookDeliveryReplay({ subscriptionId: 'w1', now: T0 + 3_000 }), 0);
    });
  });
}
