// Conformance: what the a2a runtime stores (decisions.md 75). An attempt records its remote A2A
// task once, only while it is live and its replica's; the attempts of a task that have one are
// listed in order; an a2a agent's target reads back as written (also after a reopen).

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideComplete, decideFail } from '../../core/task-machine.ts';
import {
  POLICY, T0, agentRecord, createTask, dispatch, getTask, mustApply, registerReplica, run, storeTest, type OpenStore,
} from './harness.ts';

export function a2aAttemptTests(open: OpenStore): void {
  describe('a2a attempts', () => {
    storeTest(open, 'assignmentSetRemote: once, on a live attempt of that replica; listed per task in attempt order', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 2 });
      const other = await registerReplica(store, { maxConcurrency: 2 });
      const first = await run(store, await createTask(store), replica);
      const id = first.assignment.id;
      const set = (p: Partial<Parameters<typeof store.assignmentSetRemote>[0]> = {}) =>
        store.assignmentSetRemote({ assignmentId: id, replicaId: replica.id, remoteTaskId: 'remote-1', remoteContextId: 'ctx-1', ...p });
      assert.equal(await set({ replicaId: other.id }), false, 'another replica\'s attempt');
      assert.equal(await set({ assignmentId: 'asg-none' }), false);
      assert.equal(await set(), true);
      assert.equal(await set(), true, 'the same remote task again is a no-op that holds');
      assert.equal(await set({ remoteTaskId: 'remote-2' }), false, 'never another remote task');
      assert.deepEqual(await store.assignmentRemoteList({ taskId: first.task.id }), [{ assignmentId: id, attempt: 1, remoteTaskId: 'remote-1', remoteContextId: 'ctx-1' }]);

      // The attempt ends; a second one records its own; both are listed, in order.
      await mustApply(store, decideFail({
        task: first.task, assignment: first.assignment, error: { message: 'x' }, retryable: true, outcome: 'failed', now: T0 + 1, policy: POLICY, random: 0,
      }));
      assert.equal(await set({ remoteTaskId: 'remote-1' }), false, 'an ended attempt records nothing');
      const second = await dispatch(store, await getTask(store, first.task.id), replica, { now: T0 + 5_000 });
      assert.equal(await store.assignmentSetRemote({ assignmentId: second.assignment.id, replicaId: replica.id, remoteTaskId: 'remote-1', remoteContextId: null }), true);
      await mustApply(store, decideComplete({ task: second.task, assignment: second.assignment, result: null, now: T0 + 5_001 }));
      assert.deepEqual((await store.assignmentRemoteList({ taskId: first.task.id })).map((r) => [r.attempt, r.remoteTaskId, r.remoteContextId]), [[1, 'remote-1', 'ctx-1'], [2, 'remote-1', null]]);
      assert.deepEqual(await store.assignmentRemoteList({ taskId: 'task-none' }), []);
      // A plain attempt records none.
      const plain = await run(store, await createTask(store), other);
      assert.deepEqual(await store.assignmentRemoteList({ taskId: plain.task.id }), []);
      assert.equal((await store.assignmentGet({ id: second.assignment.id }))?.status, 'completed');
    });

    storeTest(open, 'an a2a agent\'s target reads back as written; other agents have none', async ({ store, reopen }) => {
      const target = { url: 'http://127.0.0.1:9999', headers: { authorization: { env: 'FLOTILLA_SECRET_AGENT_TOKEN' }, 'x-team': 'blue' } };
      const a2a = agentRecord({ runtime: 'a2a', a2a: target });
      const pull = agentRecord();
      await store.agentCreate({ agent: a2a, event: { type: 'agent.created', taskId: null, agent: a2a.name, replicaId: null, assignmentId: null, data: {} } });
      await store.agentCreate({ agent: pull, event: { type: 'agent.created', taskId: null, agent: pull.name, replicaId: null, assignmentId: null, data: {} } });
      assert.deepEqual((await store.agentGet({ name: a2a.name }))?.a2a, target);
      assert.equal((await store.agentGet({ name: pull.name }))?.a2a, null);
      const moved = { ...a2a, a2a: { cardUrl: 'http://127.0.0.1:9998/card.json' }, updatedAt: T0 + 1 };
      assert.equal((await store.agentUpdate({ agent: moved, event: { type: 'agent.updated', taskId: null, agent: a2a.name, replicaId: null, assignmentId: null, data: {} } })).updated, true);
      await store.agentUpsert({ agent: { ...pull, runtime: 'a2a', a2a: target }, event: { type: 'agent.declared', taskId: null, agent: pull.name, replicaId: null, assignmentId: null, data: {} } });
      if (reopen) await store.close();
      const again = reopen ? await reopen() : store;
      assert.deepEqual((await again.agentGet({ name: a2a.name }))?.a2a, { cardUrl: 'http://127.0.0.1:9998/card.json' });
      assert.deepEqual((await again.agentList()).find((a) => a.name === pull.name)?.a2a, target);
    });
  });
}
