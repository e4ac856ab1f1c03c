// Conformance: suspended tasks. A parent waiting for its children (no slot, its attempt
// suspended and given back), found by the sweep's query once every child ended, and
// resumed with their outcomes; a task asking for input, found when its request expired,
// answered or failed. The transitions are the state machine's own.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  decideAnswer, decideAskInput, decideCancel, decideComplete, decideInputTimeout, decideResume, decideWait,
} from '../../core/task-machine.ts';
import {
  T0, createTask, createTasks, getAssignment, getReplica, getTask, mustApply, newTask, registerReplica, run, storeTest, type OpenStore,
} from './harness.ts';

const ids = (tasks: Array<{ id: string }>) => tasks.map((t) => t.id);

export function suspensionTests(open: OpenStore): void {
  describe('suspensions: waiting for children, asking for input', () => {
    storeTest(open, 'a wait frees the slot, suspends the attempt without counting it, and stores what it waits for', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 1 });
      const parent = await createTask(store);
      const [c1, c2] = await createTasks(store, [newTask({ parentId: parent.id, rootId: parent.id, depth: 2 }), newTask({ parentId: parent.id, rootId: parent.id, depth: 2 })]);
      const live = await run(store, parent, replica);
      const children = await store.taskGetMany({ ids: ids([c1!, c2!]) });
      const events = await mustApply(store, decideWait({ task: live.task, assignment: live.assignment, children, childIds: ids([c1!, c2!]), now: T0 + 50 }));
      assert.deepEqual(events.map((e) => [e.type, e.data.children]), [['task.waiting', ids([c1!, c2!])]]);
      const waiting = await getTask(store, parent.id);
      assert.deepEqual([waiting.status, waiting.assignmentId, waiting.attempt, waiting.waitingFor], ['waiting', null, 0, ids([c1!, c2!])]);
      const attempt = await getAssignment(store, live.assignment.id);
      assert.deepEqual([attempt.status, attempt.finishedAt], ['suspended', T0 + 50]);
      const r = await getReplica(store, replica.id);
      assert.deepEqual([r.inFlight, r.completed, r.failed], [0, 0, 0]);
      const stats = await store.agentStats({ agent: 'alpha', sample: 10 });
      assert.deepEqual([stats.attemptsCompleted, stats.attemptsFailed, stats.byStatus.waiting], [0, 0, 1]);
      assert.deepEqual(ids((await store.taskList({ limit: 10, statuses: ['waiting'] })).items), [parent.id]);
      // Not resumable while a child has not ended; then it is, and the resume stores the outcomes.
      assert.deepEqual(await store.taskListResumable({ limit: 10 }), []);
      const c1Live = await run(store, c1!, replica, { now: T0 + 60 });
      await mustApply(store, decideComplete({ task: c1Live.task, assignment: c1Live.assignment, result: { n: 1 }, now: T0 + 70 }));
      assert.deepEqual(await store.taskListResumable({ limit: 10 }), []);
      await mustApply(store, decideCancel({ task: await getTask(store, c2!.id), assignment: null, now: T0 + 80 })!);
      const due = await store.taskListResumable({ limit: 10 });
      assert.deepEqual(ids(due), [parent.id]);
      const ended = await store.taskGetMany({ ids: ids([c1!, c2!]) });
      const resume = decideResume({ task: due[0]!, children: ended, now: T0 + 90, maxResultBytes: 1_000 })!;
      await mustApply(store, resume);
      const resumed = await getTask(store, parent.id);
      assert.deepEqual([resumed.status, resumed.waitingFor, resumed.runAt], ['pending', null, T0 + 90]);
      assert.deepEqual(resumed.resumed, {
        reason: 'children',
        children: [{ id: c1!.id, status: 'completed', result: { n: 1 }, error: null }, { id: c2!.id, status: 'cancelled', result: null, error: null }],
      });
      assert.deepEqual(await store.taskListResumable({ limit: 10 }), []);
      // Resumed once: a second resume (another node's sweep) finds it no longer waiting.
      assert.deepEqual(await store.taskTransition({ transitions: [resume] }), [{ ok: false, conflict: 'task' }]);
    });

    storeTest(open, 'a waiting task whose children were deleted is resumable; the query skips other statuses', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 2 });
      const parent = await createTask(store);
      const other = await createTask(store);
      const [child] = await createTasks(store, [newTask({ parentId: parent.id, rootId: parent.id, depth: 2, status: 'completed', finishedAt: T0 })]);
      const live = await run(store, parent, replica);
      await mustApply(store, decideWait({ task: live.task, assignment: live.assignment, children: [child!], childIds: [child!.id], now: T0 + 10 }));
      assert.deepEqual(ids(await store.taskListResumable({ limit: 10 })), [parent.id]);
      assert.deepEqual(ids(await store.taskListResumable({ limit: 0 })), []);
      assert.equal((await getTask(store, other.id)).status, 'pending');
    });

    storeTest(open, 'an input request is stored, found when it expires, and answered once', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 2 });
      const [a, b, c] = await createTasks(store, [newTask(), newTask(), newTask()]);
      const schema = { type: 'object', properties: { ok: { type: 'boolean' } } };
      for (const [task, timeoutMs] of [[a!, 1_000], [b!, 5_000], [c!, null]] as const) {
        const live = await run(store, task, replica);
        await mustApply(store, decideAskInput({ task: live.task, assignment: live.assignment, prompt: `approve ${task.id}?`, schema, timeoutMs, now: T0 + 100 }));
      }
      const asked = await getTask(store, a!.id);
      assert.deepEqual([asked.status, asked.assignmentId, asked.attempt], ['input_required', null, 0]);
      assert.deepEqual(asked.inputRequest, { prompt: `approve ${a!.id}?`, schema, requestedAt: T0 + 100, expiresAt: T0 + 1_100 });
      assert.equal((await getReplica(store, replica.id)).inFlight, 0);
      assert.deepEqual(await store.taskListInputExpired({ now: T0 + 1_099, limit: 10 }), []);
      assert.deepEqual(ids(await store.taskListInputExpired({ now: T0 + 10_000, limit: 10 })), [a!.id, b!.id]);
      // a: answered; b: expires; c (no timeout) is never found.
      await mustApply(store, decideAnswer({ task: asked, input: { ok: true }, now: T0 + 200, by: 'k1' }));
      const answered = await getTask(store, a!.id);
      assert.deepEqual([answered.status, answered.inputRequest, answered.resumed], ['pending', null, { reason: 'input', prompt: `approve ${a!.id}?`, input: { ok: true } }]);
      const expired = await store.taskListInputExpired({ now: T0 + 10_000, limit: 10 });
      assert.deepEqual(ids(expired), [b!.id]);
      await mustApply(store, decideInputTimeout({ task: expired[0]!, now: T0 + 10_000 })!);
      const failed = await getTask(store, b!.id);
      assert.deepEqual([failed.status, failed.error?.code, failed.inputRequest, failed.finishedAt], ['failed', 'INPUT_TIMEOUT', null, T0 + 10_000]);
      assert.deepEqual(await store.taskListInputExpired({ now: T0 + 10_000_000, limit: 10 }), []);
      // Cancelling a task that asks clears the request.
      await mustApply(store, decideCancel({ task: await getTask(store, c!.id), assignment: null, now: T0 + 300 })!);
      const cancelled = await getTask(store, c!.id);
      assert.deepEqual([cancelled.status, cancelled.inputRequest], ['cancelled', null]);
    });
  });
}
