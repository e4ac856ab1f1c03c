// Webhooks (docs/webhooks.md) on both stores, with real receivers on loopback that check every
// signature with the SDK's verifyWebhookSignature: what is sent and how it is signed, in order
// per task; a receiver that is down (connections refused, or 500) for a while gets everything
// after backoff; one that stays down ends in the failed list and an operator's replay delivers
// it; filters by event type, agent and tree; a task's notify URL gets exactly its completion;
// who may subscribe and what a subscriber sees; bad input changes nothing. The outbox is
// driven by calling its sweep (the harness's loops are off), the clock advanced past backoff.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Flotilla, isFlotillaError, signWebhook, verifyWebhookSignature } from '@flotilla/sdk';
import { loadConfig } from '../src/config/config.ts';
import { REDACTED, SecretScrubber } from '../src/logging.ts';
import { TOKEN, withHarness, type Harness } from './helpers/harness.ts';
import { webhookReceiver, type Receiver } from './helpers/webhook-receiver.ts';

const FAST = { webhookRetryBaseMs: 1_000, webhookRetryMaxMs: 4_000, webhookMaxAttempts: 4 };

async function subscribe(h: Harness, receiver: Receiver, spec: Record<string, unknown>, token?: string): Promise<string> {
  const res = await h.api('POST', '/webhooks', { url: receiver.url, ...spec }, token ? { authorization: `Bearer ${token}` } : {});
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.match(res.body.secret, /^whsec_/);
  receiver.secret = res.body.secret;
  return res.body.id;
}

/** Runs a task to completion through a worker of `agent`. */
async function run(h: Harness, replica: string, id: string, result: unknown = 'ok'): Promise<void> {
  const [leased] = await h.lease(replica);
  assert.equal(leased!.task.id, id);
  assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/start`, { replicaId: replica })).status, 200);
  assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/complete`, { replicaId: replica, result })).status, 200);
}

/** Sweeps, stepping the clock past the longest backoff, until `done` (or gives up after `rounds`). */
async function deliverUntil(h: Harness, done: () => boolean, rounds = 30): Promise<void> {
  for (let i = 0; i < rounds && !done(); i++) {
    await h.engine.webhookOutbox.sweep();
    if (done()) return;
    h.advance(FAST.webhookRetryMaxMs);
  }
  assert.ok(done(), 'delivered in time');
}

const typesOf = (r: Receiver, taskId: string): string[] => r.accepted().filter((x) => x.body.event.taskId === taskId).map((x) => x.body.event.type);

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`webhooks (${store})`, () => {
    it('signs each delivery, sends a task\'s events in order, and never shows the secret again', async (t) => {
      await withHarness(t, store, async (h) => {
        const r = await webhookReceiver(h.now);
        t.after(() => r.close());
        await h.agent({ name: 'a' });
        const replica = await h.register('a');
        const id = await subscribe(h, r, { events: ['task.*'] });
        const task = await h.submit({ agent: 'a', input: 1 });
        await run(h, replica, task.id, { answer: 42 });
        await deliverUntil(h, () => typesOf(r, task.id).includes('task.completed'));
        // Every event of the task, as its event list has them (a start merged into its completion writes none).
        const events = (await h.api('GET', `/tasks/${task.id}/events`)).body.items.map((e: { type: string }) => e.type);
        assert.deepEqual(events.slice(0, 2), ['task.created', 'task.dispatched']);
        assert.deepEqual(typesOf(r, task.id), events);
        assert.ok(r.all.every((x) => x.valid), 'every signature checks out');
        const last = r.accepted().at(-1)!;
        assert.equal(last.headers['flotilla-webhook-id'], id);
        assert.equal(last.headers['flotilla-delivery-id'], last.body.id);
        assert.deepEqual(last.body.task?.result, { answer: 42 });
        assert.equal(last.body.task?.status, 'completed');
        const seqs = r.accepted().map((x) => x.body.event.seq);
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
        // The secret: in the create answer only.
        const views = [(await h.api('GET', `/webhooks/${id}`)).body, (await h.api('GET', '/webhooks')).body.items[0]];
        for (const view of views) {
          assert.equal(view.id, id);
          assert.equal('secret' in view, false);
          assert.doesNotMatch(JSON.stringify(view), new RegExp(r.secret!));
        }
        // Rotating: later deliveries are signed with the new secret only.
        const old = r.secret!;
        const rotated = (await h.api('POST', `/webhooks/${id}/rotate-secret`)).body;
        assert.notEqual(rotated.secret, old);
        r.secret = rotated.secret;
        const second = await h.submit({ agent: 'a' });
        await deliverUntil(h, () => typesOf(r, second.id).includes('task.created'));
        const created = r.accepted().find((x) => x.body.event.taskId === second.id)!;
        assert.equal(await verifyWebhookSignature({ secret: old, body: created.raw, header: created.headers['flotilla-signature'] as string }), false);
      });
    });

    it('a rotation and a patch at the same time: neither undoes the other, and the secret shown is the one that signs', async (t) => {
      await withHarness(t, store, async (h) => {
        const r = await webhookReceiver(h.now);
        t.after(() => r.close());
        await h.agent({ name: 'a' });
        const id = await subscribe(h, r, { events: ['task.created'] });
        // The patch lands between the rotation's read and its write (as from another node).
        const get = h.store.webhookGet.bind(h.store);
        let patched: Promise<Awaited<ReturnType<Harness['api']>>> | undefined;
        h.store.webhookGet = async (p) => {
          const w = await get(p);
          if (patched === undefined) {
            patched = h.api('PATCH', `/webhooks/${id}`, { description: 'both' });
            await patched;
          }
          return w;
        };
        const rotated = await h.api('POST', `/webhooks/${id}/rotate-secret`);
        h.store.webhookGet = get;
        assert.deepEqual([rotated.status, (await patched)?.status], [200, 200]);
        r.secret = rotated.body.secret;
        assert.equal((await h.api('GET', `/webhooks/${id}`)).body.description, 'both');
        const task = await h.submit({ agent: 'a' });
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual(r.all.map((x) => [x.body.event.taskId, x.valid]), [[task.id, true]], 'signed with the secret the rotation showed');
      });
    });

    it('a receiver down for a while gets everything, in order per task, after backoff', async (t) => {
      await withHarness(t, store, async (h) => {
        const r = await webhookReceiver(h.now);
        t.after(() => r.close());
        await h.agent({ name: 'a', maxConcurrency: 4 });
        const replica = await h.register('a', { maxConcurrency: 4 });
        const id = await subscribe(h, r, { events: ['task.created', 'task.dispatched', 'task.completed'] });
        // First it answers 500: only the first event of each task is tried, the others wait behind it.
        r.status = 500;
        const tasks = [await h.submit({ agent: 'a' }), await h.submit({ agent: 'a' })];
        for (const task of tasks) await run(h, replica, task.id);
        await h.engine.webhookOutbox.sweep();
        assert.equal(r.all.length, 2);
        assert.deepEqual(r.all.map((x) => x.body.event.type), ['task.created', 'task.created']);
        const pending = (await h.api('GET', `/webhooks/${id}/deliveries?status=pending`)).body.items;
        assert.equal(pending.length, 6);
        assert.equal(pending.filter((d: { attempts: number }) => d.attempts === 1).length, 2);
        assert.match(pending[0].lastError, /answered 500/);
        // Then it refuses connections.
        await r.down();
        h.advance(FAST.webhookRetryMaxMs);
        await h.engine.webhookOutbox.sweep();
        assert.equal(r.all.length, 2);
        // Back: everything arrives, in order per task.
        await r.up();
        r.status = 200;
        await deliverUntil(h, () => tasks.every((task) => typesOf(r, task.id).length === 3));
        for (const task of tasks) assert.deepEqual(typesOf(r, task.id), ['task.created', 'task.dispatched', 'task.completed']);
        assert.equal((await h.api('GET', `/webhooks/${id}/deliveries?status=pending`)).body.items.length, 0);
      }, { config: FAST });
    });

    it('one that stays down ends in the failed list; a later event of the task still goes; a replay delivers it', async (t) => {
      await withHarness(t, store, async (h) => {
        const r = await webhookReceiver(h.now);
        t.after(() => r.close());
        await h.agent({ name: 'a' });
        const id = await subscribe(h, r, { events: ['task.created', 'task.cancelled'] });
        r.status = 503;
        const task = await h.submit({ agent: 'a' });
        await deliverUntil(h, () => r.all.length === FAST.webhookMaxAttempts);
        await h.engine.webhookOutbox.sweep();
        assert.equal(r.all.length, FAST.webhookMaxAttempts, 'no attempt after the last');
        const failed = (await h.api('GET', `/webhooks/${id}/deliveries?status=failed`)).body.items;
        assert.equal(failed.length, 1);
        assert.equal(failed[0].eventType, 'task.created');
        assert.equal(failed[0].attempts, FAST.webhookMaxAttempts);
        // Parked: the task's next event is not held back by it.
        r.status = 200;
        assert.equal((await h.api('POST', `/tasks/${task.id}/cancel`)).status, 200);
        await deliverUntil(h, () => typesOf(r, task.id).includes('task.cancelled'));
        assert.deepEqual(typesOf(r, task.id), ['task.cancelled']);
        // The operator replays it (by its delivery id): it is sent again, and leaves the list.
        assert.equal((await h.api('POST', `/webhooks/${id}/deliveries/replay`, { deliveryId: 'nope:1' })).status, 404);
        const replay = await h.api('POST', `/webhooks/${id}/deliveries/replay`, { deliveryId: failed[0].id });
        assert.equal(replay.status, 200);
        assert.equal(replay.body.replayed, 1);
        await deliverUntil(h, () => typesOf(r, task.id).includes('task.created'));
        assert.equal(r.accepted().find((x) => x.body.event.type === 'task.created')!.headers['flotilla-delivery-id'], failed[0].id);
        assert.equal((await h.api('GET', `/webhooks/${id}/deliveries?status=failed`)).body.items.length, 0);
        // Replaying everything when nothing failed replays nothing.
        assert.equal((await h.api('POST', `/webhooks/${id}/deliveries/replay`, {})).body.replayed, 0);
        // A replay made through another node (straight in the store: this node is not woken) is
        // still sent by this one, within its recheck interval (5 s) though nothing seemed due.
        r.status = 503;
        const other = await h.submit({ agent: 'a' });
        await deliverUntil(h, () => (r.all.filter((x) => x.body.event.taskId === other.id).length === FAST.webhookMaxAttempts));
        await h.engine.webhookOutbox.sweep();
        r.status = 200;
        assert.equal(await h.store.webhookDeliveryReplay({ subscriptionId: id, now: h.now() }), 1);
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual(typesOf(r, other.id), []);
        h.advance(5_000);
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual(typesOf(r, other.id), ['task.created']);
      }, { config: FAST });
    });

    it('filters by event type, agent and tree', async (t) => {
      await withHarness(t, store, async (h) => {
        const [types, agents, tree] = [await webhookReceiver(h.now), await webhookReceiver(h.now), await webhookReceiver(h.now)];
        t.after(async () => { await types.close(); await agents.close(); await tree.close(); });
        await h.agent({ name: 'a' });
        await h.agent({ name: 'b', level: 2 });
        const root = await h.submit({ agent: 'a' });
        await subscribe(h, types, { events: ['task.cancelled'] });
        await subscribe(h, agents, { events: ['*'], agents: ['b'] });
        await subscribe(h, tree, { events: ['task.created'], rootId: root.id });
        const child = await h.submit({ agent: 'b', parentId: root.id });
        const other = await h.submit({ agent: 'a' });
        const loneB = await h.submit({ agent: 'b' });
        for (const id of [child.id, other.id, loneB.id]) assert.equal((await h.api('POST', `/tasks/${id}/cancel`)).status, 200);
        await h.engine.webhookOutbox.sweep();
        await h.engine.webhookOutbox.sweep();
        const seen = (r: Receiver) => r.accepted().map((x) => `${x.body.event.taskId}:${x.body.event.type}`).sort();
        assert.deepEqual(seen(types), [child.id, other.id, loneB.id].map((id) => `${id}:task.cancelled`).sort());
        assert.deepEqual(seen(agents), [`${child.id}:task.created`, `${child.id}:task.cancelled`, `${loneB.id}:task.created`, `${loneB.id}:task.cancelled`].sort());
        // The root was created before the subscription: only later events, and only its tree's.
        assert.deepEqual(seen(tree), [`${child.id}:task.created`]);
      });
    });

    it('events of no task (agents, replicas) go only to a subscription that sees every task; its agent filter is the event\'s agent', async (t) => {
      await withHarness(t, store, async (h) => {
        const [every, onlyB, tree] = [await webhookReceiver(h.now), await webhookReceiver(h.now), await webhookReceiver(h.now)];
        t.after(async () => { await every.close(); await onlyB.close(); await tree.close(); });
        await h.agent({ name: 'a' });
        const root = await h.submit({ agent: 'a' });
        const issued = await h.api('POST', '/tokens', { scopes: ['task.read', 'webhook.read'], rootTaskId: root.id });
        assert.equal(issued.status, 201, JSON.stringify(issued.body));
        await subscribe(h, every, { events: ['agent.*', 'replica.*'] });
        await subscribe(h, onlyB, { events: ['agent.*'], agents: ['b'] });
        await subscribe(h, tree, { events: ['*'] }, issued.body.token);
        await h.agent({ name: 'b' });
        await h.agent({ name: 'c' });
        await h.register('b');
        await h.engine.webhookOutbox.sweep();
        const seen = (r: Receiver) => r.accepted().map((x) => `${x.body.event.type}:${x.body.event.agent}`);
        assert.deepEqual(seen(every), ['agent.created:b', 'agent.created:c', 'replica.connected:b']);
        assert.ok(every.accepted().every((x) => x.body.event.taskId === null && x.body.task === null));
        assert.deepEqual(seen(onlyB), ['agent.created:b']);
        // A tree-bound token reads no fleet-wide events: its subscription is sent none.
        assert.deepEqual(seen(tree), []);
      });
    });

    it('a task\'s notify URL gets exactly its completion, signed with the notify secret', async (t) => {
      await withHarness(t, store, async (h) => {
        const r = await webhookReceiver(h.now);
        t.after(() => r.close());
        r.secret = (await h.api('GET', '/webhooks/notify-secret')).body.secret;
        assert.match(r.secret!, /^whsec_/);
        await h.agent({ name: 'a' });
        const replica = await h.register('a');
        const done = await h.submit({ agent: 'a', notify: { url: r.url } });
        const plain = await h.submit({ agent: 'a' });
        await run(h, replica, done.id, 'fine');
        await run(h, replica, plain.id);
        const cancelled = await h.submit({ agent: 'a', notify: { url: `${r.url}?task=2` } });
        await h.engine.webhookOutbox.sweep();
        assert.equal((await h.api('POST', `/tasks/${cancelled.id}/cancel`)).status, 200);
        await deliverUntil(h, () => r.accepted().length === 2);
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual(r.all.map((x) => [x.body.event.taskId, x.body.event.type, x.valid]), [[done.id, 'task.completed', true], [cancelled.id, 'task.cancelled', true]]);
        assert.equal(r.all[0]!.body.task?.result, 'fine');
        assert.equal(r.all[0]!.headers['flotilla-webhook-id'], 'notify');
        // Bad URLs are refused at submit, and nothing is created.
        const before = (await h.api('GET', '/tasks')).body.items.length;
        for (const url of ['ftp://127.0.0.1/x', 'http://user:pw@127.0.0.1/x', 'not a url', `http://127.0.0.1/${'x'.repeat(2048)}`]) {
          const res = await h.api('POST', '/tasks', { agent: 'a', notify: { url } });
          assert.equal(res.status, 400, url);
          assert.ok(['WEBHOOK_URL_INVALID', 'VALIDATION_FAILED'].includes(res.body.error.code), res.body.error.code);
        }
        assert.equal((await h.api('POST', '/tasks', { agent: 'a', notify: { url: 'ftp://127.0.0.1/x' } })).body.error.code, 'WEBHOOK_URL_INVALID');
        assert.equal((await h.api('GET', '/tasks')).body.items.length, before);
      }, { config: FAST });
    });

    it('a notify task that failed and was requeued gets its failure, then its later completion', async (t) => {
      await withHarness(t, store, async (h) => {
        const r = await webhookReceiver(h.now);
        t.after(() => r.close());
        r.secret = (await h.api('GET', '/webhooks/notify-secret')).body.secret;
        await h.agent({ name: 'a' });
        const replica = await h.register('a');
        const task = await h.submit({ agent: 'a', notify: { url: r.url }, maxAttempts: 1 });
        const [leased] = await h.lease(replica);
        assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/fail`, { replicaId: replica, error: { message: 'boom' }, retryable: false })).status, 200);
        const types = () => r.accepted().map((x) => x.body.event.type);
        // The failure is fed and sent on its own, before the requeue.
        await deliverUntil(h, () => types().length === 1);
        assert.equal((await h.api('POST', `/tasks/${task.id}/retry`)).status, 200);
        await run(h, replica, task.id, 'second time');
        await deliverUntil(h, () => types().length === 2);
        assert.deepEqual(types(), ['task.failed', 'task.completed']);
        assert.equal(r.accepted()[1]!.body.task?.result, 'second time');
        // A second failure and requeue, fed in the same step as the completion after it.
        const again = await h.submit({ agent: 'a', notify: { url: r.url }, maxAttempts: 1 });
        await h.engine.webhookOutbox.sweep();
        const [second] = await h.lease(replica);
        assert.equal((await h.api('POST', `/assignments/${second!.assignmentId}/fail`, { replicaId: replica, error: { message: 'boom' }, retryable: false })).status, 200);
        assert.equal((await h.api('POST', `/tasks/${again.id}/retry`)).status, 200);
        assert.equal((await h.api('POST', `/tasks/${again.id}/cancel`)).status, 200);
        await deliverUntil(h, () => types().length === 4);
        assert.deepEqual(r.accepted().slice(2).map((x) => [x.body.event.taskId, x.body.event.type]), [[again.id, 'task.failed'], [again.id, 'task.cancelled']]);
      }, { config: FAST });
    });

    it('who may subscribe, and a subscriber sees only the tasks its owner may read', async (t) => {
      await withHarness(t, store, async (h) => {
        const key = async (role: string) => (await h.api('POST', '/keys', { name: `${role}-key`, role, ...(role === 'agent' ? { agents: ['a'] } : {}) })).body.token as string;
        const [operator, viewer, worker] = [await key('operator'), await key('viewer'), await key('agent')];
        const as = (token: string) => ({ authorization: `Bearer ${token}` });
        const [all, mine] = [await webhookReceiver(h.now), await webhookReceiver(h.now)];
        t.after(async () => { await all.close(); await mine.close(); });
        await h.agent({ name: 'a' });
        await h.agent({ name: 'b', level: 2 });
        const adminHook = await subscribe(h, all, { events: ['task.*'] });
        const viewerHook = await subscribe(h, mine, { events: ['task.*'] }, viewer);
        assert.equal((await h.api('POST', '/webhooks', { url: all.url, events: ['*'] }, as(worker))).status, 403);
        // A viewer's subscriptions are its own: it does not see others', nor the notify secret.
        assert.deepEqual((await h.api('GET', '/webhooks', undefined, as(viewer))).body.items.map((w: { id: string }) => w.id), [viewerHook]);
        assert.equal((await h.api('GET', `/webhooks/${adminHook}`, undefined, as(viewer))).body.error.code, 'WEBHOOK_NOT_FOUND');
        assert.equal((await h.api('DELETE', `/webhooks/${adminHook}`, undefined, as(viewer))).status, 404);
        assert.equal((await h.api('GET', `/webhooks/${adminHook}/deliveries`, undefined, as(viewer))).status, 404);
        assert.equal((await h.api('GET', '/webhooks/notify/deliveries', undefined, as(viewer))).status, 404);
        assert.equal((await h.api('GET', '/webhooks/notify-secret', undefined, as(viewer))).status, 403);
        assert.equal((await h.api('GET', '/webhooks', undefined, as(operator))).body.items.length, 2);
        assert.equal((await h.api('DELETE', `/webhooks/${viewerHook}`, undefined, as(viewer))).status, 200);
        // A token bound to one tree: its subscription is sent that tree's events only, never
        // another owner's (the admin's subscription, which reads everything, gets both).
        const root = await h.api('POST', '/tasks', { agent: 'a' }, as(operator));
        const issued = await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit', 'webhook.read'], rootTaskId: root.body.id }, as(operator));
        assert.equal(issued.status, 201, JSON.stringify(issued.body));
        const treeHook = await subscribe(h, mine, { events: ['task.*'] }, issued.body.token);
        assert.ok((await h.api('GET', `/webhooks/${treeHook}`)).body.expiresAt, 'ends with the token');
        const inTree = await h.api('POST', '/tasks', { agent: 'b', parentId: root.body.id }, as(issued.body.token));
        assert.equal(inTree.status, 201, JSON.stringify(inTree.body));
        const elsewhere = await h.api('POST', '/tasks', { agent: 'a' }, as(operator));
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual(typesOf(all, elsewhere.body.id), ['task.created']);
        assert.deepEqual(mine.accepted().map((x) => x.body.event.taskId), [inTree.body.id]);
        // Past the token's lifetime it is queued nothing more.
        h.advance(25 * 3600_000);
        const later = await h.api('POST', '/tasks', { agent: 'b', parentId: root.body.id }, as(operator));
        assert.equal(later.status, 201);
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual(mine.accepted().map((x) => x.body.event.taskId), [inTree.body.id]);
        assert.deepEqual(typesOf(all, later.body.id), ['task.created']);
        // A revoked owner's subscription is queued nothing more: a key's, and a token's.
        const viewer2 = await key('viewer');
        const [byKey, byToken] = [await webhookReceiver(h.now), await webhookReceiver(h.now)];
        t.after(async () => { await byKey.close(); await byToken.close(); });
        await subscribe(h, byKey, { events: ['task.created'] }, viewer2);
        const token2 = (await h.api('POST', '/tokens', { scopes: ['task.read', 'webhook.read'], rootTaskId: root.body.id }, as(operator))).body;
        await subscribe(h, byToken, { events: ['task.created'] }, token2.token);
        const before = await h.api('POST', '/tasks', { agent: 'b', parentId: root.body.id }, as(operator));
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual([byKey.accepted().length, byToken.accepted().length], [1, 1]);
        // The second viewer key (the latest of that name).
        const keyId = (await h.api('GET', '/keys')).body.items.filter((k: { name: string }) => k.name === 'viewer-key').at(-1).id;
        assert.equal((await h.api('POST', `/keys/${keyId}/revoke`)).status, 200);
        assert.equal((await h.api('POST', `/tokens/${token2.id}/revoke`, undefined, as(operator))).status, 200);
        const after = await h.api('POST', '/tasks', { agent: 'b', parentId: root.body.id }, as(operator));
        await h.engine.webhookOutbox.sweep();
        assert.deepEqual(byKey.accepted().map((x) => x.body.event.taskId), [before.body.id]);
        assert.deepEqual(byToken.accepted().map((x) => x.body.event.taskId), [before.body.id]);
        assert.deepEqual(typesOf(all, after.body.id), ['task.created']);
      });
    });

    it('the SDK client: create, list, get, update, rotate, deliveries, replay, notify secret, delete', async (t) => {
      await withHarness(t, store, async (h) => {
        const flotilla = new Flotilla({ url: await h.listen(), token: TOKEN });
        const created = await flotilla.webhooks.create({ url: 'http://127.0.0.1:9/hook', events: ['task.*'], description: 'sdk' });
        assert.match(created.secret, /^whsec_/);
        assert.deepEqual((await flotilla.webhooks.list()).map((w) => w.id), [created.id]);
        assert.equal((await flotilla.webhooks.get(created.id)).description, 'sdk');
        assert.equal((await flotilla.webhooks.update(created.id, { enabled: false })).enabled, false);
        assert.notEqual((await flotilla.webhooks.rotateSecret(created.id)).secret, created.secret);
        assert.deepEqual(await flotilla.webhooks.deliveries(created.id, { status: 'failed' }), { items: [] });
        assert.deepEqual(await flotilla.webhooks.replay(created.id), { replayed: 0 });
        assert.match((await flotilla.webhooks.notifySecret()).secret, /^whsec_/);
        await flotilla.webhooks.delete(created.id);
        await assert.rejects(flotilla.webhooks.get(created.id), (err: unknown) => isFlotillaError(err, 'WEBHOOK_NOT_FOUND'));
      });
    });

    it('refuses bad input with a stable code and changes nothing', async (t) => {
      await withHarness(t, store, async (h) => {
        const cases: Array<[Record<string, unknown>, string]> = [
          [{ url: 'ftp://127.0.0.1/x', events: ['*'] }, 'WEBHOOK_URL_INVALID'],
          [{ url: 'http://u:p@127.0.0.1/x', events: ['*'] }, 'WEBHOOK_URL_INVALID'],
          [{ url: 'http://127.0.0.1/x#frag', events: ['*'] }, 'WEBHOOK_URL_INVALID'],
          [{ url: '/relative', events: ['*'] }, 'WEBHOOK_URL_INVALID'],
          [{ url: `http://127.0.0.1/${'x'.repeat(2050)}`, events: ['*'] }, 'VALIDATION_FAILED'],
          [{ url: 'http://127.0.0.1/x', events: [] }, 'VALIDATION_FAILED'],
          [{ url: 'http://127.0.0.1/x', events: ['Task.Created'] }, 'WEBHOOK_EVENTS_INVALID'],
          [{ url: 'http://127.0.0.1/x', events: ['task.*.x*'] }, 'WEBHOOK_EVENTS_INVALID'],
          [{ url: 'http://127.0.0.1/x' }, 'VALIDATION_FAILED'],
          [{ url: 'http://127.0.0.1/x', events: ['*'], secret: 'mine' }, 'VALIDATION_FAILED'],
        ];
        for (const [body, code] of cases) {
          const res = await h.api('POST', '/webhooks', body);
          assert.equal(res.status, 400, JSON.stringify(body));
          assert.equal(res.body.error.code, code, JSON.stringify(body));
        }
        assert.equal((await h.api('GET', '/webhooks')).body.items.length, 0);
        // At most 100 subscriptions per owner (a viewer must not slow the feed down at will); another owner's count apart.
        for (let i = 0; i < 100; i++) assert.equal((await h.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/x', events: ['*'] })).status, 201);
        const over = await h.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/x', events: ['*'] });
        assert.deepEqual([over.status, over.body.error.code, over.body.error.details], [409, 'WEBHOOK_LIMIT', { max: 100 }]);
        assert.equal((await h.api('GET', '/webhooks')).body.items.length, 100);
        const viewer = (await h.api('POST', '/keys', { name: 'v', role: 'viewer' })).body.token as string;
        assert.equal((await h.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/x', events: ['*'] }, { authorization: `Bearer ${viewer}` })).status, 201);
        for (const w of (await h.api('GET', '/webhooks')).body.items) await h.api('DELETE', `/webhooks/${w.id}`);
        const r = await webhookReceiver(h.now);
        t.after(() => r.close());
        const id = await subscribe(h, r, { events: ['task.*'] });
        assert.equal((await h.api('PATCH', `/webhooks/${id}`, { url: 'gopher://x' })).body.error.code, 'WEBHOOK_URL_INVALID');
        assert.equal((await h.api('PATCH', `/webhooks/${id}`, { events: ['!'] })).body.error.code, 'WEBHOOK_EVENTS_INVALID');
        assert.equal((await h.api('PATCH', `/webhooks/${id}`, {})).status, 400);
        assert.equal((await h.api('GET', `/webhooks/${id}`)).body.url, r.url);
        assert.equal((await h.api('GET', '/webhooks/nope')).body.error.code, 'WEBHOOK_NOT_FOUND');
        assert.equal((await h.api('PATCH', '/webhooks/nope', { enabled: false })).status, 404);
        assert.equal((await h.api('GET', `/webhooks/${id}/deliveries?status=sent`)).status, 400);
        // A disabled subscription is queued nothing; PATCH changes its filters.
        const patched = await h.api('PATCH', `/webhooks/${id}`, { enabled: false, agents: ['a'], description: 'ops' });
        assert.equal(patched.status, 200);
        assert.deepEqual([patched.body.enabled, patched.body.agents, patched.body.description], [false, ['a'], 'ops']);
        await h.agent({ name: 'a' });
        await h.submit({ agent: 'a' });
        await h.engine.webhookOutbox.sweep();
        assert.equal(r.all.length, 0);
        assert.equal((await h.api('PATCH', `/webhooks/${id}`, { agents: null })).body.agents, null);
      });
    });
  });
}

describe('webhook settings', () => {
  it('come from the environment and are bounded', () => {
    const c = loadConfig({ env: { FLOTILLA_WEBHOOK_MAX_ATTEMPTS: '3', FLOTILLA_WEBHOOK_TIMEOUT_MS: '1234', FLOTILLA_WEBHOOK_RETRY_BASE_MS: '10', FLOTILLA_WEBHOOK_RETRY_MAX_MS: '20', FLOTILLA_WEBHOOK_INTERVAL_MS: '50' } });
    assert.deepEqual([c.webhookMaxAttempts, c.webhookTimeoutMs, c.webhookRetryBaseMs, c.webhookRetryMaxMs, c.webhookIntervalMs], [3, 1234, 10, 20, 50]);
    assert.throws(() => loadConfig({ env: { FLOTILLA_WEBHOOK_MAX_ATTEMPTS: '0' } }), /webhookMaxAttempts/);
    assert.throws(() => loadConfig({ env: { FLOTILLA_WEBHOOK_RETRY_BASE_MS: '100', FLOTILLA_WEBHOOK_RETRY_MAX_MS: '50' } }), /webhookRetryMaxMs/);
  });
});

describe('webhook secrets in logs', () => {
  it('a whsec_ secret in any logged string is redacted', () => {
    const scrubber = new SecretScrubber();
    assert.equal(scrubber.string('rotated to whsec_3q0vAbCdEfGh_ij-kl'), `rotated to ${REDACTED}`);
  });
});

describe('verifyWebhookSignature', () => {
  const secret = 'whsec_test';
  const body = '{"id":"x:1"}';
  const now = 1_800_000_000;
  let header = '';
  before(async () => { header = await signWebhook({ secret, body, timestampS: now }); });
  it('accepts the body it signed, at a time within the tolerance', async () => {
    assert.equal(await verifyWebhookSignature({ secret, body, header, nowS: now + 299 }), true);
    assert.equal(await verifyWebhookSignature({ secret, body: Buffer.from(body), header, nowS: now }), true);
  });
  it('refuses a tampered body, a wrong secret, an old or future timestamp, a malformed header', async () => {
    assert.equal(await verifyWebhookSignature({ secret, body: body.replace('1', '2'), header, nowS: now }), false);
    assert.equal(await verifyWebhookSignature({ secret: 'whsec_other', body, header, nowS: now }), false);
    assert.equal(await verifyWebhookSignature({ secret, body, header, nowS: now + 301 }), false);
    assert.equal(await verifyWebhookSignature({ secret, body, header, nowS: now - 301 }), false);
    assert.equal(await verifyWebhookSignature({ secret, body, header, toleranceS: 10, nowS: now + 11 }), false);
    // The timestamp is signed too: moving it forward breaks the signature.
    assert.equal(await verifyWebhookSignature({ secret, body, header: header.replace(`t=${now}`, `t=${now + 1}`), nowS: now }), false);
    for (const bad of [undefined, '', 'v1=abc', `t=${now}`, 'garbage']) assert.equal(await verifyWebhookSignature({ secret, body, header: bad, nowS: now }), false);
  });
});
