// Conformance: what operators and heartbeats set on agents and replicas besides their
// declarations: an agent's pause and overload flag (guarded, once per change, kept by updates
// and re-declarations), the per-agent queue statistics, a replica's reported health (its event
// only on a change), and a drain that outlasts a reconnect.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  T0, agentRecord, createTasks, getReplica, newTask, plainEvent, registerReplica, storeTest, type OpenStore,
} from './harness.ts';

export function operatorControlTests(open: OpenStore): void {
  describe('operator controls: pauses, overloads, health, drains', () => {
    storeTest(open, 'pausing and the overload flag change once per change, with their event, and survive updates', async ({ store }) => {
      const agent = agentRecord({ name: 'ctl' });
      await store.agentCreate({ agent, event: plainEvent('agent.created', { agent: 'ctl' }) });
      const pause = (at: number | null) => store.agentSetControl({ name: 'ctl', control: 'paused', at, event: plainEvent(at === null ? 'agent.resumed' : 'agent.paused', { agent: 'ctl' }) });
      const first = await pause(T0 + 1);
      assert.deepEqual([first.found, first.changed, first.events.map((e) => e.type)], [true, true, ['agent.paused']]);
      const again = await pause(T0 + 2);
      assert.deepEqual([again.found, again.changed, again.events], [true, false, []]);
      assert.equal((await store.agentGet({ name: 'ctl' }))?.pausedAt, T0 + 1);
      // An update and a re-declaration write the declaration only.
      await store.agentUpdate({ agent: { ...agent, description: 'changed', pausedAt: null, updatedAt: T0 + 3 }, event: plainEvent('agent.updated', { agent: 'ctl' }) });
      await store.agentUpsert({ agent: { ...agent, description: 'declared', pausedAt: null, updatedAt: T0 + 4 }, event: plainEvent('agent.declared', { agent: 'ctl' }) });
      const kept = await store.agentGet({ name: 'ctl' });
      assert.deepEqual([kept?.description, kept?.pausedAt, kept?.overloadedAt], ['declared', T0 + 1, null]);
      assert.equal((await store.agentList()).find((a) => a.name === 'ctl')?.pausedAt, T0 + 1);
      const resumed = await pause(null);
      assert.deepEqual([resumed.changed, (await store.agentGet({ name: 'ctl' }))?.pausedAt], [true, null]);
      assert.equal((await pause(null)).changed, false);
      const overloaded = await store.agentSetControl({ name: 'ctl', control: 'overloaded', at: T0 + 5, event: plainEvent('agent.overloaded', { agent: 'ctl' }) });
      assert.deepEqual([overloaded.changed, (await store.agentGet({ name: 'ctl' }))?.overloadedAt, (await store.agentGet({ name: 'ctl' }))?.pausedAt], [true, T0 + 5, null]);
      const missing = await store.agentSetControl({ name: 'nobody', control: 'paused', at: T0, event: plainEvent('agent.paused', { agent: 'nobody' }) });
      assert.deepEqual([missing.found, missing.changed, missing.events], [false, false, []]);
    });

    storeTest(open, 'of two concurrent identical changes exactly one is written', async ({ store }) => {
      await store.agentCreate({ agent: agentRecord({ name: 'race' }), event: plainEvent('agent.created', { agent: 'race' }) });
      const results = await Promise.all([1, 2, 3].map((i) => store.agentSetControl({ name: 'race', control: 'overloaded', at: T0 + i, event: plainEvent('agent.overloaded', { agent: 'race' }) })));
      assert.equal(results.filter((r) => r.changed).length, 1);
      assert.equal(results.flatMap((r) => r.events).length, 1);
    });

    storeTest(open, 'queue statistics count the due pending tasks per agent, with the earliest runAt', async ({ store }) => {
      await createTasks(store, [
        newTask({ agent: 'alpha', runAt: T0 + 10 }), newTask({ agent: 'alpha', runAt: T0 + 5 }), newTask({ agent: 'alpha', runAt: T0 + 10_000 }),
        newTask({ agent: 'beta', runAt: T0 }), newTask({ agent: 'beta', status: 'completed', finishedAt: T0 }),
        newTask({ agent: null, capabilities: ['text'], runAt: T0 + 1 }),
      ]);
      const stats = await store.agentQueueStats({ now: T0 + 100 });
      const byAgent = Object.fromEntries(stats.map((s) => [String(s.agent), [s.pending, s.oldestRunAt]]));
      assert.deepEqual(byAgent, { alpha: [2, T0 + 5], beta: [1, T0], null: [1, T0 + 1] });
    });

    storeTest(open, 'a replica\'s health: stored with its detail every time, its event only on a change', async ({ store }) => {
      const replica = await registerReplica(store);
      assert.deepEqual([replica.health, replica.healthDetail, replica.healthAt], ['healthy', null, null]);
      const report = (health: 'healthy' | 'degraded' | 'unhealthy', at: number, detail: Record<string, number> | null) =>
        store.replicaSetHealth({ id: replica.id, health, detail, at, event: plainEvent('replica.health_changed', { replicaId: replica.id }) });
      const same = await report('healthy', T0 + 1, { cpu: 0.2 });
      assert.deepEqual([same.found, same.changed, same.events], [true, false, []]);
      const r1 = await getReplica(store, replica.id);
      assert.deepEqual([r1.health, r1.healthDetail, r1.healthAt], ['healthy', { cpu: 0.2 }, T0 + 1]);
      const worse = await report('unhealthy', T0 + 2, null);
      assert.deepEqual([worse.changed, worse.events.map((e) => e.type)], [true, ['replica.health_changed']]);
      const r2 = await getReplica(store, replica.id);
      assert.deepEqual([r2.health, r2.healthDetail, r2.healthAt], ['unhealthy', null, T0 + 2]);
      assert.equal((await store.replicaList({ agent: 'alpha' })).find((r) => r.id === replica.id)?.health, 'unhealthy');
      assert.equal((await report('degraded', T0 + 3, null)).changed, true);
      assert.deepEqual(await store.replicaSetHealth({ id: 'nobody', health: 'healthy', detail: null, at: T0, event: plainEvent('replica.health_changed', {}) }), { found: false, changed: false, events: [] });
    });

    storeTest(open, 'a draining replica stays draining when it registers again', async ({ store }) => {
      const replica = await registerReplica(store);
      const drained = await store.replicaSetStatus({ id: replica.id, from: ['live'], to: 'draining', event: plainEvent('replica.draining', { replicaId: replica.id }) });
      assert.equal(drained.changed, true);
      assert.equal((await registerReplica(store, { id: replica.id, at: T0 + 10 })).status, 'draining');
      await store.replicaSetStatus({ id: replica.id, from: ['draining'], to: 'lost', event: plainEvent('replica.lost', { replicaId: replica.id }) });
      assert.equal((await registerReplica(store, { id: replica.id, at: T0 + 20 })).status, 'live');
    });
  });
}
