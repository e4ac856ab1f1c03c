// Conformance: what several server processes sharing one store rely on — event sequence
// visibility, maintenance leadership, cross-node signals, and claims racing across
// processes. Multi-node expectations run only for stores that declare the capability and
// provide a peer; a single-node store must still answer the single-node contract.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideComplete, decideDispatch } from '../../core/task-machine.ts';
import type { Store, StoreSignal } from '../store.ts';
import {
  LEASE_MS, T0, agentRecord, createTasks, dispatch, mustApply, newTask, nextId, plainEvent, registerReplica, storeTest, type OpenStore,
  ensureAgents,
} from './harness.ts';

async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function coordinationTests(open: OpenStore): void {
  describe('coordination', () => {
    storeTest(open, 'counterSnapshot counts the statements and commits a write costs, and a read commits nothing', async ({ store }) => {
      const before = store.counterSnapshot();
      await createTasks(store, [newTask(), newTask()]);
      const written = store.counterSnapshot();
      assert.ok(written.statements > before.statements, 'a create runs statements');
      assert.ok(written.commits > before.commits, 'a create commits');
      assert.ok(written.roundTrips >= before.roundTrips);
      await store.taskList({ limit: 10 });
      const read = store.counterSnapshot();
      assert.ok(read.statements > written.statements, 'a read runs a statement');
      assert.equal(read.commits, written.commits, 'a read commits nothing');
      // A snapshot is a copy: later work does not change it.
      const copy = { ...read };
      await createTasks(store, [newTask()]);
      assert.deepEqual(read, copy);
      assert.ok(store.counterSnapshot().commits > read.commits);
    });

    storeTest(open, 'eventLastSeq is 0 when empty and then the highest committed seq', async ({ store }) => {
      assert.equal(await store.eventLastSeq(), 0);
      const created = await createTasks(store, [newTask(), newTask()]);
      assert.equal(created.length, 2);
      const all = await store.eventList({ after: 0, limit: 100 });
      assert.equal(await store.eventLastSeq(), all[all.length - 1]!.seq);
    });

    storeTest(open, 'readers following eventList(after) on three nodes, with writers on all three, never skip an event and agree on the order', async ({ store, peer }) => {
      // Three nodes where the store has peers (one process per node in production), else the one store three times.
      const nodes = peer ? [store, await peer(), await peer()] : [store, store, store];
      await ensureAgents(store, ['alpha']);
      let writing = true;
      const follow = async (node: Store): Promise<number[]> => {
        const seen: number[] = [];
        let last = 0;
        const drain = async (): Promise<void> => {
          for (const e of await node.eventList({ after: last, limit: 1000 })) {
            assert.ok(e.seq > last, `seq ${e.seq} after ${last}: in order`);
            seen.push(e.seq);
            last = e.seq;
          }
        };
        while (writing) {
          await drain();
          await new Promise((r) => setImmediate(r));
        }
        await drain();
        return seen;
      };
      const followers = nodes.map(follow);
      // Writers of every kind on every node: durable creates, relaxed claims and events, durable completions.
      await Promise.all(nodes.flatMap((node, n) => Array.from({ length: 15 }, async (_, i) => {
        const replica = await registerReplica(node, { agent: 'alpha', maxConcurrency: 5, id: `node${n}-replica${i}` });
        const [task] = await createTasks(node, [newTask()]);
        const live = await dispatch(node, task!, replica);
        await node.eventAppend({ events: [plainEvent('conformance.note', { taskId: task!.id })], durable: false });
        await mustApply(node, decideComplete({ task: live.task, assignment: live.assignment, result: { n, i }, now: T0 + 1 }));
      })));
      writing = false;
      const seen = await Promise.all(followers);
      const all = (await store.eventList({ after: 0, limit: 10_000 })).map((e) => e.seq);
      assert.equal((await store.eventList({ after: 0, limit: 10_000 })).filter((e) => e.type === 'task.completed').length, 45);
      for (const [i, s] of seen.entries()) assert.deepEqual(s, all, `the follower on node ${i} saw every event, in order, exactly once`);
    });

    storeTest(open, 'maintenance leadership: single-node always leads; with peers exactly one leads, and another takes over when it goes', async ({ store, peer }) => {
      if (!store.capabilities.multiNode || !peer) {
        assert.equal(await store.leadershipAcquire({ name: 'maintenance' }), true);
        assert.equal(await store.leadershipAcquire({ name: 'maintenance' }), true);
        return;
      }
      const other = await peer();
      assert.equal(await store.leadershipAcquire({ name: 'maintenance' }), true);
      assert.equal(await store.leadershipAcquire({ name: 'maintenance' }), true, 'holding it is re-entrant');
      assert.equal(await other.leadershipAcquire({ name: 'maintenance' }), false);
      assert.equal(await other.leadershipAcquire({ name: 'other-duty' }), true, 'names are independent');
      await store.close();
      await eventually(() => other.leadershipAcquire({ name: 'maintenance' }));
    });

    storeTest(open, 'signals: other processes hear of new work, events and agent changes', async ({ store, peer }) => {
      if (!store.capabilities.crossNodeNotify || !peer) {
        const got: StoreSignal[] = [];
        const unsubscribe = await store.signalSubscribe({ listener: (s) => got.push(s) });
        await createTasks(store, [newTask()]);
        await unsubscribe();
        assert.deepEqual(got, [], 'a single-node store sends no signals');
        return;
      }
      const other = await peer();
      const got: StoreSignal['kind'][] = [];
      const unsubscribe = await other.signalSubscribe({ listener: (s) => got.push(s.kind) });
      await createTasks(store, [newTask()]);
      await eventually(() => got.includes('wake') && got.includes('events'));
      await store.agentCreate({ agent: agentRecord({ name: nextId('agent') }), event: plainEvent('agent.created') });
      await eventually(() => got.includes('agents'));
      await unsubscribe();
      const count = got.length;
      await createTasks(store, [newTask()]);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(got.length, count, 'no signals after unsubscribing');
    });

    storeTest(open, 'the same task claimed from two processes at once is dispatched once', async ({ store, peer }) => {
      const other = peer ? await peer() : store;
      const r1 = await registerReplica(store, { maxConcurrency: 100 });
      const r2 = await registerReplica(store, { maxConcurrency: 100 });
      const tasks = await createTasks(store, Array.from({ length: 30 }, () => newTask()));
      const claims = tasks.flatMap((task) => [
        store.taskTransition({ transitions: [decideDispatch({ task, replica: r1, assignmentId: nextId('as'), now: T0, leaseMs: LEASE_MS, concurrencyLimit: null })] }),
        other.taskTransition({ transitions: [decideDispatch({ task, replica: r2, assignmentId: nextId('as'), now: T0, leaseMs: LEASE_MS, concurrencyLimit: null })] }),
      ]);
      const results = (await Promise.all(claims)).map(([r]) => r!);
      assert.equal(results.filter((r) => r.ok).length, 30, 'one winner per task');
      assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.conflict === 'task'));
      const [a, b] = await Promise.all([store.replicaGet({ id: r1.id }), store.replicaGet({ id: r2.id })]);
      assert.equal(a!.inFlight + b!.inFlight, 30, 'slots taken only by the winners');
    });
  });
}
