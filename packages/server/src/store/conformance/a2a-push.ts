// Conformance: the A2A push tables (migration 16) and an agent's a2aSkill. Configs are saved,
// replaced, listed in one order and deleted; the outbox queues a notification once per state
// change however many feeds race (the guard on lastState), deletes a config with its final
// notification, hands out the oldest due delivery of each config only, and keeps what it
// holds across a reopen (a restart).

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { A2aPushConfigRecord, A2aPushEnqueueItem } from '../store.ts';
import { T0, agentRecord, plainEvent, storeTest, type OpenStore } from './harness.ts';

function config(over: Partial<A2aPushConfigRecord> = {}): A2aPushConfigRecord {
  return {
    taskId: 'task-1', id: 'c1', url: 'http://127.0.0.1:9/hook', token: 'tok', authScheme: null, authCredentials: null,
    wireVersion: '1.0', ownerId: 'key-1', createdAt: T0, lastState: null, ...over,
  };
}

function item(over: Partial<A2aPushEnqueueItem> = {}): A2aPushEnqueueItem {
  return {
    taskId: 'task-1', configId: 'c1', expectedState: null, state: 'submitted', final: false, payload: { task: { id: 'task-1' } },
    nextAt: T0, createdAt: T0, ...over,
  };
}

export function a2aPushTests(open: OpenStore): void {
  describe('A2A: skills and push notifications', () => {
    storeTest(open, "an agent's a2aSkill is stored and read back; null is not published", async ({ store }) => {
      const skill = { inputModes: ['application/json'], outputModes: ['text/plain'], examples: ['hi'] };
      const published = agentRecord({ a2aSkill: skill });
      const hidden = agentRecord();
      await store.agentCreate({ agent: published, event: plainEvent('agent.created', { agent: published.name }) });
      await store.agentCreate({ agent: hidden, event: plainEvent('agent.created', { agent: hidden.name }) });
      assert.deepEqual((await store.agentGet({ name: published.name }))?.a2aSkill, skill);
      assert.equal((await store.agentGet({ name: hidden.name }))?.a2aSkill, null);
      await store.agentUpdate({ agent: { ...published, a2aSkill: null, updatedAt: T0 + 1 }, event: plainEvent('agent.updated', { agent: published.name }) });
      assert.equal((await store.agentGet({ name: published.name }))?.a2aSkill, null);
      await store.agentUpsert({ agent: { ...hidden, a2aSkill: skill, updatedAt: T0 + 2 }, event: plainEvent('agent.updated', { agent: hidden.name }) });
      assert.deepEqual((await store.agentGet({ name: hidden.name }))?.a2aSkill, skill);
    });

    storeTest(open, 'configs: saved, replaced (starting over), listed by task then creation, deleted', async ({ store }) => {
      await store.a2aPushConfigSave({ config: config({ id: 'b', createdAt: T0 + 2 }) });
      await store.a2aPushConfigSave({ config: config({ id: 'a', createdAt: T0 + 1, authScheme: 'Bearer', authCredentials: 'xyz', token: null }) });
      await store.a2aPushConfigSave({ config: config({ taskId: 'task-0', id: 'z' }) });
      assert.deepEqual((await store.a2aPushConfigList({ taskIds: null })).map((c) => `${c.taskId}/${c.id}`), ['task-0/z', 'task-1/a', 'task-1/b']);
      assert.deepEqual((await store.a2aPushConfigList({ taskIds: ['task-1', 'nope'] })).map((c) => c.id), ['a', 'b']);
      assert.deepEqual(await store.a2aPushConfigList({ taskIds: [] }), []);
      assert.deepEqual(await store.a2aPushConfigGet({ taskId: 'task-1', id: 'a' }), config({ id: 'a', createdAt: T0 + 1, authScheme: 'Bearer', authCredentials: 'xyz', token: null }));
      assert.equal(await store.a2aPushEnqueue({ items: [item({ configId: 'b' })] }), 1);
      assert.equal((await store.a2aPushConfigGet({ taskId: 'task-1', id: 'b' }))?.lastState, 'submitted');
      // Replaced: the new URL, and lastState starts over.
      await store.a2aPushConfigSave({ config: config({ id: 'b', url: 'http://127.0.0.1:9/other', createdAt: T0 + 2, lastState: 'working' }) });
      const replaced = await store.a2aPushConfigGet({ taskId: 'task-1', id: 'b' });
      assert.deepEqual([replaced?.url, replaced?.lastState], ['http://127.0.0.1:9/other', null]);
      assert.deepEqual(await store.a2aPushConfigDelete({ taskId: 'task-1', id: 'b' }), { deleted: true });
      assert.deepEqual(await store.a2aPushConfigDelete({ taskId: 'task-1', id: 'b' }), { deleted: false });
      assert.equal(await store.a2aPushConfigGet({ taskId: 'task-1', id: 'b' }), null);
    });

    storeTest(open, 'the outbox: once per state change (racing feeds queue it once), the final one ends the config, oldest first per config', async ({ store, reopen }) => {
      await store.a2aPushConfigSave({ config: config() });
      await store.a2aPushConfigSave({ config: config({ id: 'c2', wireVersion: '0.3' }) });
      // Two feeds with the same read: one queues.
      const [x, y] = await Promise.all([store.a2aPushEnqueue({ items: [item()] }), store.a2aPushEnqueue({ items: [item()] })]);
      assert.equal(x! + y!, 1);
      // A stale read (expects null, the config is at submitted now) queues nothing.
      assert.equal(await store.a2aPushEnqueue({ items: [item({ state: 'working' })] }), 0);
      assert.equal(await store.a2aPushEnqueue({ items: [item({ expectedState: 'submitted', state: 'working', nextAt: T0 + 5 }), item({ configId: 'c2' })] }), 2);
      const due = await store.a2aPushDue({ now: T0 + 100, limit: 10 });
      // c1's second waits behind its first; each carries its config's target and version.
      assert.deepEqual(due.deliveries.map((d) => [d.configId, d.attempts, d.wireVersion, d.url, d.token]), [
        ['c1', 0, '1.0', 'http://127.0.0.1:9/hook', 'tok'], ['c2', 0, '0.3', 'http://127.0.0.1:9/hook', 'tok'],
      ]);
      assert.deepEqual(due.deliveries[0]?.payload, { task: { id: 'task-1' } });
      const [first, other] = due.deliveries;
      await store.a2aPushRetry({ id: first!.id, attempts: 1, nextAt: T0 + 1_000, error: 'the receiver answered 503' });
      await store.a2aPushDone({ id: other!.id });
      // Nothing due before the retry's time (the second of c1 still waits behind it); then both, in order.
      assert.deepEqual(await store.a2aPushDue({ now: T0 + 100, limit: 10 }), { deliveries: [], nextAt: T0 + 1_000 });
      const store2 = reopen ? await reopen() : store;
      const retried = await store2.a2aPushDue({ now: T0 + 1_000, limit: 10 });
      assert.deepEqual(retried.deliveries.map((d) => [d.id, d.attempts, d.lastError]), [[first!.id, 1, 'the receiver answered 503']]);
      await store2.a2aPushDone({ id: first!.id });
      const second = await store2.a2aPushDue({ now: T0 + 1_000, limit: 10 });
      assert.deepEqual(second.deliveries.map((d) => [d.configId, d.createdAt]), [['c1', T0]]);
      assert.equal(second.nextAt, null);
      // The final state's notification deletes its config.
      assert.equal(await store2.a2aPushEnqueue({ items: [item({ expectedState: 'working', state: 'completed', final: true })] }), 1);
      assert.equal(await store2.a2aPushConfigGet({ taskId: 'task-1', id: 'c1' }), null);
      // Queued behind c1's working one (still not done), so not handed out yet.
      assert.equal((await store2.a2aPushDue({ now: T0 + 1_000, limit: 10 })).deliveries.length, 1);
    });

    storeTest(open, 'configs: a replace by another owner and a new one over the cap are refused; delete and replace take the queued deliveries; pages', async ({ store }) => {
      assert.deepEqual(await store.a2aPushConfigSave({ config: config(), ownerOnly: true, maxPerTask: 2 }), { saved: true });
      assert.deepEqual(await store.a2aPushConfigSave({ config: config({ ownerId: 'key-2', url: 'http://127.0.0.1:9/evil' }), ownerOnly: true, maxPerTask: 2 }), { saved: false, reason: 'not_owner' });
      assert.equal((await store.a2aPushConfigGet({ taskId: 'task-1', id: 'c1' }))?.url, 'http://127.0.0.1:9/hook');
      assert.deepEqual(await store.a2aPushConfigSave({ config: config({ id: 'c2' }), maxPerTask: 2 }), { saved: true });
      assert.deepEqual(await store.a2aPushConfigSave({ config: config({ id: 'c3' }), maxPerTask: 2 }), { saved: false, reason: 'limit' });
      assert.equal(await store.a2aPushConfigGet({ taskId: 'task-1', id: 'c3' }), null);
      // A replace is not a new config: within the cap; it drops the old copy of the target.
      assert.equal(await store.a2aPushEnqueue({ items: [item(), item({ configId: 'c2' })] }), 2);
      assert.deepEqual(await store.a2aPushConfigSave({ config: config({ url: 'http://127.0.0.1:9/new' }), ownerOnly: true, maxPerTask: 2 }), { saved: true });
      assert.deepEqual((await store.a2aPushDue({ now: T0 + 100, limit: 10 })).deliveries.map((d) => d.configId), ['c2']);
      // Delete: only the owner's when an owner is given, and its deliveries with it.
      assert.deepEqual(await store.a2aPushConfigDelete({ taskId: 'task-1', id: 'c2', ownerId: 'key-2' }), { deleted: false });
      assert.deepEqual(await store.a2aPushConfigDelete({ taskId: 'task-1', id: 'c2', ownerId: 'key-1' }), { deleted: true });
      assert.deepEqual((await store.a2aPushDue({ now: T0 + 100, limit: 10 })).deliveries, []);
      // Pages by (taskId, id), in byte order.
      for (const [taskId, id] of [['task-2', 'b'], ['task-2', 'B'], ['task-0', 'z']] as const) await store.a2aPushConfigSave({ config: config({ taskId, id }) });
      const first = await store.a2aPushConfigPage({ after: null, limit: 2 });
      assert.deepEqual(first.map((c) => `${c.taskId}/${c.id}`), ['task-0/z', 'task-1/c1']);
      const next = await store.a2aPushConfigPage({ after: { taskId: 'task-1', id: 'c1' }, limit: 2 });
      assert.deepEqual(next.map((c) => `${c.taskId}/${c.id}`), ['task-2/B', 'task-2/b']);
      assert.deepEqual(await store.a2aPushConfigPage({ after: { taskId: 'task-2', id: 'b' }, limit: 2 }), []);
    });
  });
}
