// Conformance: agents, replicas, concurrency keys, events and API keys.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideCancel, decideComplete } from '../../core/task-machine.ts';
import {
  T0, agentRecord, allEvents, apiKeyRecord, createTask, createTasks, dispatch, getReplica, keyCounts, mustApply, newTask, nextId,
  logged, plainEvent, registerReplica, SEED_EVENT, storeTest, type OpenStore,
} from './harness.ts';

export function registryTests(open: OpenStore): void {
  describe('agents', () => {
    storeTest(open, 'creates, reads, lists, updates and deletes agents', async ({ store }) => {
      const a = agentRecord({
        name: 'security-analyst', description: 'reviews code', capabilities: ['code', 'security'], maxConcurrency: 4, maxAttempts: 5,
        timeoutMs: 90_000, level: 2, toolDomains: ['github.com'], concurrencyLimits: { 'host:vllm-1': 3 }, retryBaseDelayMs: 500,
        retryMaxDelayMs: 20_000, runtime: 'a2a', createdAt: T0 + 1, updatedAt: T0 + 2, tools: ['web:*', 'search.web'], maxDepth: 2,
      });
      const events = await store.agentCreate({ agent: a, event: plainEvent('agent.created', { agent: a.name, data: { by: 'test' } }) });
      assert.equal(events.length, 1);
      assert.deepEqual([events[0]!.type, events[0]!.agent, events[0]!.data], ['agent.created', a.name, { by: 'test' }]);
      assert.ok((await logged(store, events))[0]!.seq > 0);
      assert.deepEqual(await store.agentGet({ name: a.name }), a);
      assert.equal(await store.agentGet({ name: 'nobody' }), null);

      const b = agentRecord({ name: 'b-writer', runtime: 'process' });
      await store.agentCreate({ agent: b, event: plainEvent('agent.created', { agent: b.name }) });
      const listed = await store.agentList();
      assert.deepEqual([...listed].sort((x, y) => x.name.localeCompare(y.name)), [b, a]);

      const changed = { ...a, description: 'reviews everything', capabilities: ['code'], maxAttempts: null, concurrencyLimits: {}, tools: ['*'], maxDepth: null, updatedAt: T0 + 50 };
      const update = await store.agentUpdate({ agent: changed, event: plainEvent('agent.updated', { agent: a.name }) });
      assert.equal(update.updated, true);
      assert.deepEqual(update.events.map((e) => e.type), ['agent.updated']);
      assert.deepEqual(await store.agentGet({ name: a.name }), changed);
      const eventsBefore = await allEvents(store);
      assert.deepEqual(await store.agentUpdate({ agent: agentRecord({ name: 'ghost' }), event: plainEvent('agent.updated') }), { updated: false, events: [] });
      assert.equal(await store.agentGet({ name: 'ghost' }), null);

      const deleted = await store.agentDelete({ name: b.name, event: plainEvent('agent.deleted', { agent: b.name }) });
      assert.equal(deleted.outcome, 'deleted');
      assert.deepEqual(deleted.events.map((e) => e.type), ['agent.deleted']);
      assert.equal(await store.agentGet({ name: b.name }), null);
      assert.deepEqual(await store.agentDelete({ name: b.name, event: plainEvent('agent.deleted', { agent: b.name }) }), { outcome: 'not_found', events: [] });
      const types = (await allEvents(store)).slice(eventsBefore.length).map((e) => e.type);
      assert.deepEqual(types, ['agent.deleted'], 'only the successful delete appended an event');
      assert.deepEqual((await store.agentList()).map((x) => x.name), [a.name]);
    });

    storeTest(open, 'refuses to delete an agent that still has unfinished tasks, and changes nothing', async ({ store }) => {
      await store.agentCreate({ agent: agentRecord({ name: 'busy' }), event: plainEvent('agent.created', { agent: 'busy' }) });
      const [task] = await createTasks(store, [newTask({ agent: 'busy' })]);
      const before = await allEvents(store);
      assert.deepEqual(await store.agentDelete({ name: 'busy', event: plainEvent('agent.deleted') }), { outcome: 'in_use', events: [] });
      assert.ok(await store.agentGet({ name: 'busy' }));
      assert.deepEqual(await allEvents(store), before);
      await mustApply(store, decideCancel({ task: task!, assignment: null, now: T0 + 1 }));
      assert.equal((await store.agentDelete({ name: 'busy', event: plainEvent('agent.deleted') })).outcome, 'deleted');
    });

    storeTest(open, 'refuses a duplicate name with AGENT_EXISTS and changes nothing', async ({ store }) => {
      const a = agentRecord({ name: 'dup' });
      await store.agentCreate({ agent: a, event: plainEvent('agent.created', { agent: 'dup' }) });
      const before = await allEvents(store);
      await assert.rejects(
        store.agentCreate({ agent: { ...a, description: 'other' }, event: plainEvent('agent.created', { agent: 'dup' }) }),
        (err: unknown) => (err as { code?: unknown }).code === 'AGENT_EXISTS',
      );
      assert.deepEqual(await store.agentGet({ name: 'dup' }), a);
      assert.deepEqual(await allEvents(store), before);
    });

    storeTest(open, 'upsert creates, then replaces', async ({ store }) => {
      const a = agentRecord({ name: 'from-config', maxConcurrency: 1 });
      const declared = await store.agentUpsert({ agent: a, event: plainEvent('agent.declared', { agent: a.name }) });
      assert.deepEqual(declared.map((e) => e.type), ['agent.declared']);
      assert.deepEqual(await store.agentGet({ name: a.name }), a);
      const replaced = { ...a, maxConcurrency: 8, capabilities: ['x', 'y'], runtime: 'process' as const, tools: ['gh:*'], maxDepth: 4, updatedAt: T0 + 10 };
      await store.agentUpsert({ agent: replaced, event: plainEvent('agent.declared', { agent: a.name }) });
      const got = await store.agentGet({ name: a.name });
      assert.ok(got);
      assert.deepEqual({ ...got, createdAt: replaced.createdAt }, replaced);
      assert.equal((await store.agentList()).length, 1);
    });
  });

  describe('replicas', () => {
    storeTest(open, 'registers a replica, and a re-registration keeps its in-flight work', async ({ store }) => {
      const r = await registerReplica(store, { id: 'rep-1', agent: 'alpha', site: 'eu', maxConcurrency: 3, at: T0 });
      assert.deepEqual(r, {
        id: 'rep-1', agent: 'alpha', site: 'eu', status: 'live', maxConcurrency: 3, inFlight: 0, registeredAt: T0, lastSeenAt: T0,
        lastAssignedAt: null, completed: 0, failed: 0, health: 'healthy', healthDetail: null, healthAt: null,
      });
      assert.deepEqual(await store.replicaGet({ id: 'rep-1' }), r);
      assert.equal(await store.replicaGet({ id: 'rep-none' }), null);

      const [t1, t2] = await createTasks(store, [newTask(), newTask()]);
      const live = await dispatch(store, t1!, r, { now: T0 + 10 });
      await mustApply(store, decideComplete({ task: live.task, assignment: live.assignment, result: 1, now: T0 + 20 }));
      await dispatch(store, t2!, r, { now: T0 + 30 });
      // Declared lost meanwhile: registering again makes it live. (A drain outlasts it: operator-controls.ts.)
      assert.equal((await store.replicaSetStatus({ id: 'rep-1', from: ['live'], to: 'lost', event: plainEvent('replica.lost') })).changed, true);

      const again = await registerReplica(store, { id: 'rep-1', agent: 'alpha', site: 'us', maxConcurrency: 5, at: T0 + 1_000 });
      assert.deepEqual(again, {
        id: 'rep-1', agent: 'alpha', site: 'us', status: 'live', maxConcurrency: 5, inFlight: 1, registeredAt: T0, lastSeenAt: T0 + 1_000,
        lastAssignedAt: T0 + 30, completed: 1, failed: 0, health: 'healthy', healthDetail: null, healthAt: null,
      });
      assert.deepEqual(await store.replicaGet({ id: 'rep-1' }), again);
      const registered = (await allEvents(store)).filter((e) => e.type === 'replica.registered');
      assert.deepEqual(registered.map((e) => e.replicaId), ['rep-1', 'rep-1']);
    });

    storeTest(open, 'changes status only from one of the expected statuses', async ({ store }) => {
      const r = await registerReplica(store);
      const before = await allEvents(store);
      assert.equal((await store.replicaSetStatus({ id: r.id, from: ['live'], to: 'draining', event: plainEvent('replica.draining', { replicaId: r.id }) })).changed, true);
      assert.equal((await getReplica(store, r.id)).status, 'draining');
      assert.equal((await store.replicaSetStatus({ id: r.id, from: ['live'], to: 'lost', event: plainEvent('replica.lost', { replicaId: r.id }) })).changed, false);
      assert.equal((await getReplica(store, r.id)).status, 'draining');
      assert.equal((await store.replicaSetStatus({ id: r.id, from: ['live', 'draining'], to: 'gone', event: plainEvent('replica.gone', { replicaId: r.id }) })).changed, true);
      assert.equal((await getReplica(store, r.id)).status, 'gone');
      assert.equal((await store.replicaSetStatus({ id: 'rep-none', from: ['live'], to: 'gone', event: plainEvent('replica.gone') })).changed, false);
      const added = (await allEvents(store)).slice(before.length);
      assert.deepEqual(added.map((e) => [e.type, e.replicaId]), [['replica.draining', r.id], ['replica.gone', r.id]]);
    });

    storeTest(open, 'lists by agent and status, finds stale replicas, and records sightings', async ({ store }) => {
      const r1 = await registerReplica(store, { agent: 'alpha', at: T0 });
      const r2 = await registerReplica(store, { agent: 'alpha', at: T0 + 5_000 });
      const r3 = await registerReplica(store, { agent: 'beta', at: T0 });
      const r4 = await registerReplica(store, { agent: 'beta', at: T0 });
      await store.replicaSetStatus({ id: r3.id, from: ['live'], to: 'lost', event: plainEvent('replica.lost') });
      await store.replicaSetStatus({ id: r4.id, from: ['live'], to: 'draining', event: plainEvent('replica.draining') });
      const idsOf = (rs: Array<{ id: string }>) => rs.map((r) => r.id).sort();

      assert.deepEqual(idsOf(await store.replicaList({})), idsOf([r1, r2, r3, r4]));
      assert.deepEqual(idsOf(await store.replicaList({ agent: 'alpha' })), idsOf([r1, r2]));
      assert.deepEqual(idsOf(await store.replicaList({ statuses: ['live', 'draining'] })), idsOf([r1, r2, r4]));
      assert.deepEqual(idsOf(await store.replicaList({ agent: 'beta', statuses: ['lost'] })), [r3.id]);
      assert.deepEqual(await store.replicaList({ agent: 'nobody' }), []);

      // Live or draining, not seen since: r1 and r4 (r3 is lost already; r2 was seen later).
      assert.deepEqual(idsOf(await store.replicaListStale({ seenBefore: T0 + 1_000 })), idsOf([r1, r4]));
      assert.deepEqual(await store.replicaListStale({ seenBefore: T0 }), [], 'seen exactly at the horizon is not stale');

      await store.replicaTouch({ ids: [r1.id, r4.id], at: T0 + 7_000 });
      assert.equal((await getReplica(store, r1.id)).lastSeenAt, T0 + 7_000);
      assert.equal((await getReplica(store, r4.id)).lastSeenAt, T0 + 7_000);
      assert.equal((await getReplica(store, r2.id)).lastSeenAt, T0 + 5_000);
      assert.deepEqual(await store.replicaListStale({ seenBefore: T0 + 6_000 }), [await getReplica(store, r2.id)]);
      await store.replicaTouch({ ids: [], at: T0 + 8_000 });
    });
  });

  describe('concurrency keys', () => {
    storeTest(open, 'reports live assignments per key', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 10 });
      const tasks = await createTasks(store, [newTask({ concurrencyKey: 'a' }), newTask({ concurrencyKey: 'a' }), newTask({ concurrencyKey: 'b' })]);
      const lives = [];
      for (const t of tasks) lives.push(await dispatch(store, t, replica, { concurrencyLimit: 5 }));
      const map = await store.concurrencyKeyInFlight({ keys: ['a', 'b', 'c'] });
      assert.equal(map.get('a'), 2);
      assert.equal(map.get('b'), 1);
      assert.equal(map.get('c') ?? 0, 0);
      assert.equal(map.has('z'), false, 'keys not asked for are not reported');
      const first = lives[0]!;
      await mustApply(store, decideComplete({ task: first.task, assignment: first.assignment, result: null, now: T0 + 1 }));
      assert.deepEqual(await keyCounts(store, ['a', 'b']), { a: 1, b: 1 });
      assert.equal((await store.concurrencyKeyInFlight({ keys: [] })).size, 0);
    });
  });

  describe('events', () => {
    storeTest(open, 'appends with increasing seqs and pages by seq, optionally per task', async ({ store }) => {
      const task = await createTask(store);
      const seeded = (await store.eventList({ after: 0, limit: 100 })).filter((e) => e.type === SEED_EVENT).at(-1)?.seq ?? 0;
      const appended = await logged(store, await store.eventAppend({
        events: [
          plainEvent('custom.one', { taskId: task.id, data: { n: 1, nested: { list: [1, 'two', null] } } }),
          plainEvent('custom.two', { agent: 'alpha', replicaId: 'r', assignmentId: 'a' }),
          plainEvent('custom.three', { taskId: task.id }),
        ],
      }));
      assert.deepEqual(appended.map((e) => e.type), ['custom.one', 'custom.two', 'custom.three']);
      assert.deepEqual(appended[0]!.data, { n: 1, nested: { list: [1, 'two', null] } });
      assert.deepEqual([appended[1]!.agent, appended[1]!.replicaId, appended[1]!.assignmentId, appended[1]!.taskId], ['alpha', 'r', 'a', null]);
      for (const e of appended) assert.equal(typeof e.at, 'number');
      const all = await allEvents(store);
      assert.equal(all.length, 4);
      assert.deepEqual(all.slice(1), appended);
      for (let i = 1; i < all.length; i++) assert.ok(all[i]!.seq > all[i - 1]!.seq);

      const page1 = await store.eventList({ after: seeded, limit: 2 });
      const page2 = await store.eventList({ after: page1.at(-1)!.seq, limit: 2 });
      const page3 = await store.eventList({ after: page2.at(-1)!.seq, limit: 2 });
      assert.deepEqual([...page1, ...page2], all);
      assert.deepEqual(page3, []);
      assert.deepEqual((await store.eventList({ after: 0, limit: 10, taskId: task.id })).map((e) => e.type), ['task.created', 'custom.one', 'custom.three']);
      assert.deepEqual((await store.eventList({ after: appended[0]!.seq, limit: 10, taskId: task.id })).map((e) => e.type), ['custom.three']);
      assert.deepEqual(await store.eventList({ after: 0, limit: 10, taskId: 'task-none' }), []);
      assert.deepEqual(await store.eventAppend({ events: [] }), []);
    });
  });

  describe('api keys', () => {
    storeTest(open, 'creates, finds by hash, counts and touches keys', async ({ store }) => {
      assert.equal(await store.apiKeyCount(), 0);
      const key = apiKeyRecord({ name: 'ci', hash: 'a'.repeat(64) });
      await store.apiKeyCreate({ key });
      await store.apiKeyCreate({ key: { ...key, id: nextId('key'), name: 'worker', role: 'worker', hash: 'b'.repeat(64) } });
      assert.equal(await store.apiKeyCount(), 2);
      assert.deepEqual(await store.apiKeyFindByHash({ hash: key.hash }), key);
      assert.equal(await store.apiKeyFindByHash({ hash: 'c'.repeat(64) }), null);
      await store.apiKeyTouch({ id: key.id, at: T0 + 5_000 });
      assert.deepEqual(await store.apiKeyFindByHash({ hash: key.hash }), { ...key, lastUsedAt: T0 + 5_000 });
      await assert.rejects(store.apiKeyCreate({ key: { ...key, id: nextId('key') } }), 'a hash is unique');
      assert.equal(await store.apiKeyCount(), 2);
    });
  });
}
