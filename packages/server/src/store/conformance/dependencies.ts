// Conformance: dependencies between tasks (docs/workflows.md). A blocked task is created with
// its edges and marks its dependencies; its dependents are found by the edges; the sweep's
// query finds exactly the blocked tasks that can be decided; an unblock applies once, on one
// store or two; a create with one bad task writes none of them. Transitions are core's own.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideUnblock } from '../../core/dependencies.ts';
import { decideCancel, decideComplete } from '../../core/task-machine.ts';
import type { NewTask } from '../../core/types.ts';
import { FlotillaError } from '../../core/errors.ts';
import { T0, createTask, createTasks, getTask, mustApply, newTask, registerReplica, run, storeTest, type OpenStore } from './harness.ts';

const ids = (tasks: Array<{ id: string }>) => tasks.map((t) => t.id);

/** A task blocked on `deps` (as TaskService creates one). */
function blockedTask(deps: string[], over: Partial<NewTask> = {}): NewTask {
  return newTask({ status: 'blocked', waitingFor: deps, dependsOn: deps, onDependencyFailure: 'fail', inputFrom: null, ...over });
}

export function dependencyTests(open: OpenStore): void {
  describe('dependencies: blocked tasks, their edges, unblocking', () => {
    storeTest(open, 'a blocked task is stored with its dependencies and marks them; a plain task reads back without any', async ({ store }) => {
      const [dep, plain] = await createTasks(store, [newTask(), newTask()]);
      assert.equal((await getTask(store, dep!.id)).hasDependents, false);
      const [blocked] = await createTasks(store, [blockedTask([dep!.id], { ref: 'sum', inputFrom: { x: { $from: '/result' } }, onDependencyFailure: 'run' })]);
      const read = await getTask(store, blocked!.id);
      assert.deepEqual(
        [read.status, read.waitingFor, read.dependsOn, read.onDependencyFailure, read.ref, read.inputFrom, read.dependencies, read.hasDependents],
        ['blocked', [dep!.id], [dep!.id], 'run', 'sum', { x: { $from: '/result' } }, null, false],
      );
      assert.equal((await getTask(store, dep!.id)).hasDependents, true);
      const p = await getTask(store, plain!.id);
      assert.deepEqual([p.dependsOn, p.onDependencyFailure, p.ref, p.inputFrom, p.hasDependents], [[], null, null, null, false]);
      assert.deepEqual(ids((await store.taskList({ limit: 10, statuses: ['blocked'] })).items), [blocked!.id]);
      // Blocked tasks are never dispatch candidates.
      assert.deepEqual(ids(await store.taskCandidates({ agents: ['alpha'], includeCapabilityRouted: true, now: T0 + 1, limit: 10 })).sort(), ids([dep!, plain!]).sort());
      assert.equal((await store.taskCountByStatus({})).blocked, 1);
    });

    storeTest(open, 'dependents are found by the ended task; the sweep query finds what can be decided and nothing else', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 4 });
      const [a, b, c] = await createTasks(store, [newTask(), newTask(), newTask()]);
      const [onA, onAB, runOnC] = await createTasks(store, [
        blockedTask([a!.id]), blockedTask([a!.id, b!.id]), blockedTask([c!.id, b!.id], { onDependencyFailure: 'run' }),
      ]);
      assert.deepEqual(ids(await store.taskListDependents({ ids: [a!.id], limit: 10 })), ids([onA!, onAB!]));
      assert.deepEqual(ids(await store.taskListDependents({ ids: [b!.id, c!.id], limit: 10 })), ids([onAB!, runOnC!]));
      assert.deepEqual(await store.taskListDependents({ ids: ['nobody'], limit: 10 }), []);
      assert.deepEqual(await store.taskListUnblockable({ limit: 10 }), []);
      const live = await run(store, a!, replica);
      await mustApply(store, decideComplete({ task: live.task, assignment: live.assignment, result: { n: 1 }, now: T0 + 10 }));
      assert.deepEqual(ids(await store.taskListUnblockable({ limit: 10 })), [onA!.id]);
      // c cancelled: a 'run' dependent still waits for b; a 'fail' one would not.
      await mustApply(store, decideCancel({ task: await getTask(store, c!.id), assignment: null, now: T0 + 20 })!);
      assert.deepEqual(ids(await store.taskListUnblockable({ limit: 10 })), [onA!.id]);
      await mustApply(store, decideCancel({ task: await getTask(store, b!.id), assignment: null, now: T0 + 30 })!);
      assert.deepEqual(ids(await store.taskListUnblockable({ limit: 10 })), ids([onA!, onAB!, runOnC!]));
      assert.deepEqual(ids(await store.taskListUnblockable({ limit: 1 })), [onA!.id]);
      // A dependent whose dependency no longer exists (retention) can be decided too.
      const [gone] = await createTasks(store, [blockedTask(['deleted-task'])]);
      assert.ok(ids(await store.taskListUnblockable({ limit: 10 })).includes(gone!.id));
    });

    storeTest(open, 'an unblock stores the input and outcomes and applies once, on this store or a peer', async ({ store, peer }) => {
      const replica = await registerReplica(store, { maxConcurrency: 1 });
      const dep = await createTask(store);
      const [blocked] = await createTasks(store, [blockedTask([dep.id], { input: null, inputFrom: { got: { $from: '/result/n' } } })]);
      const live = await run(store, dep, replica);
      await mustApply(store, decideComplete({ task: live.task, assignment: live.assignment, result: { n: 7 }, now: T0 + 10 }));
      const other = peer ? await peer() : store;
      // Two nodes decide at once from the same reads: one write applies.
      const [mine, theirs] = await Promise.all([store, other].map(async (s) => {
        const task = await getTask(s, blocked!.id);
        return decideUnblock({ task, dependencies: await s.taskGetMany({ ids: [dep.id] }), now: T0 + 20, maxResultBytes: 1_000, maxInputBytes: 1_000 })!;
      }));
      const results = await Promise.all([store.taskTransition({ transitions: [mine!] }), other.taskTransition({ transitions: [theirs!] })]);
      assert.deepEqual(results.map(([r]) => r!.ok).sort(), [false, true]);
      const unblocked = await getTask(store, blocked!.id);
      assert.deepEqual([unblocked.status, unblocked.waitingFor, unblocked.input, unblocked.runAt], ['pending', null, { got: 7 }, T0 + 20]);
      assert.deepEqual(unblocked.dependencies, [{ id: dep.id, ref: null, status: 'completed', result: { n: 7 }, error: null }]);
      assert.deepEqual(await store.taskListUnblockable({ limit: 10 }), []);
      assert.deepEqual(ids(await store.taskCandidates({ agents: ['alpha'], includeCapabilityRouted: true, now: T0 + 20, limit: 10 })), [blocked!.id]);
    });

    storeTest(open, 'an agent with a blocked task is in use: it cannot be deleted', async ({ store }) => {
      const dep = await createTask(store, { agent: 'beta' });
      await createTasks(store, [blockedTask([dep.id], { agent: 'alpha' })]);
      await mustApply(store, decideCancel({ task: await getTask(store, dep.id), assignment: null, now: T0 + 1 })!);
      const event = { type: 'agent.deleted', taskId: null, agent: 'alpha', replicaId: null, assignmentId: null, data: {} };
      assert.equal((await store.agentDelete({ name: 'alpha', event })).outcome, 'in_use');
    });

    storeTest(open, 'a create with a task for a missing agent writes none of the call: no task, no edge, no mark', async ({ store }) => {
      const dep = await createTask(store);
      const calls = [newTask({ id: 'wf-a', hasDependents: true }), blockedTask(['wf-a', dep.id], { id: 'wf-b' }), newTask({ id: 'wf-c', agent: 'missing-agent' })];
      await assert.rejects(store.taskCreate({ tasks: calls.map((task) => ({ task, events: [] })) }), (e: unknown) => e instanceof FlotillaError && e.code === 'UNKNOWN_AGENT');
      assert.deepEqual(await store.taskGetMany({ ids: ['wf-a', 'wf-b', 'wf-c'] }), []);
      assert.equal((await getTask(store, dep.id)).hasDependents, false);
      assert.deepEqual(await store.taskListDependents({ ids: [dep.id], limit: 10 }), []);
      // The same call without the bad task commits whole.
      await store.taskCreate({ tasks: calls.slice(0, 2).map((task) => ({ task, events: [] })) });
      assert.deepEqual(ids(await store.taskListDependents({ ids: ['wf-a'], limit: 10 })), ['wf-b']);
      assert.equal((await getTask(store, 'wf-a')).hasDependents, true);
      assert.equal((await getTask(store, dep.id)).hasDependents, true);
    });

    storeTest(open, 'a write that ends a task reads back a dependents mark set after the head it was decided from', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 4 });
      const [a, b, c, d] = await createTasks(store, [newTask(), newTask(), newTask(), newTask()]);
      const live = [await run(store, a!, replica), await run(store, b!, replica), await run(store, c!, replica)];
      const pending = await getTask(store, d!.id);
      // Heads read while nothing depended on these tasks (as a node keeps a dispatched one's).
      assert.ok([...live.map((l) => l.task), pending].every((t) => t.hasDependents === false));
      await createTasks(store, [blockedTask([a!.id, b!.id, d!.id])]);
      // Several completions in one call (a set statement), and one cancel (a statement of its own).
      const completed = await store.taskTransition({
        transitions: live.map((l, i) => decideComplete({ task: l.task, assignment: l.assignment, result: i, now: T0 + 10 })),
      });
      assert.deepEqual(completed.map((r) => [r.ok, r.ok && r.hasDependents === true]), [[true, true], [true, true], [true, false]]);
      const [cancelled] = await store.taskTransition({ transitions: [decideCancel({ task: pending, assignment: null, now: T0 + 20 })!] });
      assert.deepEqual([cancelled!.ok, cancelled!.ok && cancelled!.hasDependents === true], [true, true]);
    });
  });
}
