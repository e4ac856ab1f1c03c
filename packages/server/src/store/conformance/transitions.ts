// Conformance: applying transitions. Real transitions come from the state machine; guard
// probes are hand-altered copies. Every conflict case checks that nothing changed at all.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import {
  decideCancel, decideCancelAck, decideComplete, decideDispatchFailed, decideFail, decideReplicaLost, decideRequeue, decideStart,
} from '../../core/task-machine.ts';
import type { Transition } from '../../core/types.ts';
import {
  LEASE_MS, POLICY, T0, apply, createTask, createTasks, dispatch, dispatchTransition, getAssignment, getReplica, getTask,
  keyCounts, logged, mustApply, newTask, nextId, plainEvent, registerReplica, run, snapshot, storeTest, type OpenStore,
} from './harness.ts';

export function transitionTests(open: OpenStore): void {
  describe('transitions: lifecycle', () => {
    storeTest(open, 'dispatch, start and complete move the task, the attempt and the slot', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 2 });
      const task = await createTask(store, { concurrencyKey: 'host:a' });

      const dispatchT = dispatchTransition(task, replica, { now: T0 + 10, concurrencyLimit: 2 });
      const dispatchEvents = await mustApply(store, dispatchT);
      assert.deepEqual(dispatchEvents.map((e) => [e.type, e.at, e.taskId, e.assignmentId]), [['task.dispatched', T0 + 10, task.id, dispatchT.assignmentInsert!.id]]);
      const dispatched = await getTask(store, task.id);
      assert.equal(dispatched.status, 'dispatched');
      assert.equal(dispatched.assignmentId, dispatchT.assignmentInsert!.id);
      assert.equal(dispatched.attempt, 1);
      assert.equal(dispatched.updatedAt, T0 + 10);
      const assignment = await getAssignment(store, dispatchT.assignmentInsert!.id);
      assert.deepEqual(assignment, dispatchT.assignmentInsert);
      assert.deepEqual(await store.assignmentListByTask({ taskId: task.id }), [assignment]);
      let r = await getReplica(store, replica.id);
      assert.equal(r.inFlight, 1);
      assert.equal(r.lastAssignedAt, T0 + 10);
      assert.deepEqual(await keyCounts(store, ['host:a']), { 'host:a': 1 });

      await mustApply(store, decideStart({ task: dispatched, assignment, now: T0 + 20, leaseMs: LEASE_MS }));
      const running = await getTask(store, task.id);
      assert.equal(running.status, 'running');
      const started = await getAssignment(store, assignment.id);
      assert.equal(started.status, 'running');
      assert.equal(started.startedAt, T0 + 20);
      assert.equal(started.leaseExpiresAt, T0 + 20 + LEASE_MS);
      assert.equal(started.deadlineAt, T0 + 20 + task.timeoutMs);
      assert.equal((await getReplica(store, replica.id)).inFlight, 1);

      await mustApply(store, decideComplete({ task: running, assignment: started, result: { answer: 42 }, now: T0 + 30 }));
      const completed = await getTask(store, task.id);
      assert.equal(completed.status, 'completed');
      assert.deepEqual(completed.result, { answer: 42 });
      assert.equal(completed.error, null);
      assert.equal(completed.assignmentId, null);
      assert.equal(completed.finishedAt, T0 + 30);
      const finished = await getAssignment(store, assignment.id);
      assert.equal(finished.status, 'completed');
      assert.equal(finished.finishedAt, T0 + 30);
      r = await getReplica(store, replica.id);
      assert.deepEqual([r.inFlight, r.completed, r.failed], [0, 1, 0]);
      assert.deepEqual(await keyCounts(store, ['host:a']), { 'host:a': 0 });
      const history = await store.eventList({ after: 0, limit: 100, taskId: task.id });
      assert.deepEqual(history.map((e) => e.type), ['task.created', 'task.dispatched', 'task.started', 'task.completed']);
    });

    storeTest(open, 'a duplicate completion built from stale records conflicts and changes nothing', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store), replica);
      const first = decideComplete({ task: live.task, assignment: live.assignment, result: 'first', now: T0 + 50 });
      const second = decideComplete({ task: live.task, assignment: live.assignment, result: 'second', now: T0 + 60 });
      await mustApply(store, first);
      const before = await snapshot(store, { tasks: [live.task.id], replicas: [replica.id] });
      assert.deepEqual(await apply(store, second), { ok: false, conflict: 'task' });
      assert.deepEqual(await snapshot(store, { tasks: [live.task.id], replicas: [replica.id] }), before);
      assert.equal((await getTask(store, live.task.id)).result, 'first');
      const r = await getReplica(store, replica.id);
      assert.deepEqual([r.inFlight, r.completed], [0, 1]);
    });

    storeTest(open, 'a retryable failure returns the task to pending with a backoff', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store, { maxAttempts: 3 }), replica);
      const now = T0 + 1_000;
      const t = decideFail({
        task: live.task, assignment: live.assignment, error: { message: 'rate limited', code: 'E429', details: { retryAfter: 2 } },
        retryable: true, outcome: 'failed', now, policy: POLICY, random: 0.5,
      });
      const events = await mustApply(store, t);
      assert.deepEqual(events.map((e) => e.type), ['task.retrying']);
      const task = await getTask(store, live.task.id);
      assert.equal(task.status, 'pending');
      assert.equal(task.assignmentId, null);
      assert.equal(task.attempt, 1);
      assert.ok(task.runAt > now, 'runAt is in the future');
      assert.equal(task.runAt, t.set.runAt);
      assert.deepEqual(task.error, { message: 'rate limited', code: 'E429', details: { retryAfter: 2 } });
      assert.equal(task.finishedAt, null);
      const a = await getAssignment(store, live.assignment.id);
      assert.equal(a.status, 'failed');
      assert.deepEqual(a.error, { message: 'rate limited', code: 'E429', details: { retryAfter: 2 } });
      const r = await getReplica(store, replica.id);
      assert.deepEqual([r.inFlight, r.completed, r.failed], [0, 0, 1]);
      const candidates = (at: number) => store.taskCandidates({ agents: ['alpha'], includeCapabilityRouted: false, now: at, limit: 10 });
      assert.deepEqual(await candidates(now), []);
      assert.equal(await store.taskNextRunAt({ now }), task.runAt);
      assert.deepEqual((await candidates(task.runAt)).map((c) => c.id), [task.id]);
      // The next attempt is a new assignment; the failed one stays as history.
      const second = await dispatch(store, task, replica, { now: task.runAt });
      assert.equal(second.task.attempt, 2);
      assert.deepEqual((await store.assignmentListByTask({ taskId: task.id })).map((x) => [x.attempt, x.status]), [[1, 'failed'], [2, 'dispatched']]);
    });

    storeTest(open, 'a failure without attempts left fails the task for good', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store, { maxAttempts: 1 }), replica);
      await mustApply(store, decideFail({
        task: live.task, assignment: live.assignment, error: { message: 'bad input' }, retryable: true, outcome: 'failed', now: T0 + 5, policy: POLICY, random: 0,
      }));
      const task = await getTask(store, live.task.id);
      assert.equal(task.status, 'failed');
      assert.equal(task.finishedAt, T0 + 5);
      assert.deepEqual(task.error, { message: 'bad input' });
      assert.equal(task.result, null);
      assert.equal((await getReplica(store, replica.id)).failed, 1);
    });

    storeTest(open, 'a failed dispatch gives the slot back and restores the attempt', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 3 });
      const other = await createTask(store);
      await dispatch(store, other, replica);
      const task = await createTask(store, { concurrencyKey: 'k' });
      const before = await getReplica(store, replica.id);
      assert.equal(before.inFlight, 1);
      const live = await dispatch(store, task, replica, { now: T0 + 5, concurrencyLimit: 5 });
      assert.equal((await getReplica(store, replica.id)).inFlight, 2);
      await mustApply(store, decideDispatchFailed({ task: live.task, assignment: live.assignment, now: T0 + 7, reason: 'socket closed' }));
      const after = await getReplica(store, replica.id);
      assert.deepEqual([after.inFlight, after.completed, after.failed], [before.inFlight, before.completed, before.failed]);
      assert.deepEqual(await keyCounts(store, ['k']), { k: 0 });
      const restored = await getTask(store, task.id);
      assert.deepEqual([restored.status, restored.attempt, restored.assignmentId, restored.runAt], ['pending', 0, null, T0 + 7]);
      const a = await getAssignment(store, live.assignment.id);
      assert.equal(a.status, 'failed');
      assert.equal(a.error?.code, 'DISPATCH_FAILED');
    });

    storeTest(open, 'cancels a pending task at once and a live one after acknowledgement', async ({ store }) => {
      const replica = await registerReplica(store);
      const pending = await createTask(store);
      await mustApply(store, decideCancel({ task: pending, assignment: null, now: T0 + 1, reason: 'user' }));
      const cancelled = await getTask(store, pending.id);
      assert.deepEqual([cancelled.status, cancelled.finishedAt, cancelled.cancelRequestedAt], ['cancelled', T0 + 1, T0 + 1]);

      const live = await run(store, await createTask(store), replica);
      await mustApply(store, decideCancel({ task: live.task, assignment: live.assignment, now: T0 + 2 }));
      const requested = await getTask(store, live.task.id);
      assert.deepEqual([requested.status, requested.cancelRequestedAt, requested.assignmentId], ['running', T0 + 2, live.assignment.id]);
      await mustApply(store, decideCancelAck({ task: requested, assignment: live.assignment, now: T0 + 3, reason: 'acknowledged' }));
      const done = await getTask(store, live.task.id);
      assert.deepEqual([done.status, done.finishedAt, done.assignmentId], ['cancelled', T0 + 3, null]);
      assert.equal((await getAssignment(store, live.assignment.id)).status, 'cancelled');
      const r = await getReplica(store, replica.id);
      assert.deepEqual([r.inFlight, r.completed, r.failed], [0, 0, 0]);
    });

    storeTest(open, 'a requeue writes nulls: error, result and finishedAt are cleared', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store, { maxAttempts: 1 }), replica);
      await mustApply(store, decideFail({
        task: live.task, assignment: live.assignment, error: { message: 'x' }, retryable: false, outcome: 'failed', now: T0 + 5, policy: POLICY, random: 0,
      }));
      const failed = await getTask(store, live.task.id);
      await mustApply(store, decideRequeue({ task: failed, now: T0 + 9 }));
      const requeued = await getTask(store, live.task.id);
      assert.deepEqual(
        [requeued.status, requeued.attempt, requeued.error, requeued.result, requeued.finishedAt, requeued.cancelRequestedAt, requeued.runAt],
        ['pending', 0, null, null, null, null, T0 + 9],
      );
    });

    storeTest(open, 'a slot is released even when the replica is no longer live', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store), replica);
      assert.equal((await store.replicaSetStatus({ id: replica.id, from: ['live'], to: 'lost', event: plainEvent('replica.lost') })).changed, true);
      await mustApply(store, decideReplicaLost({ task: live.task, assignment: live.assignment, now: T0 + 9, policy: POLICY, random: 0, reason: 'gone' }));
      const r = await getReplica(store, replica.id);
      assert.deepEqual([r.status, r.inFlight, r.failed], ['lost', 0, 1]);
      assert.equal((await getAssignment(store, live.assignment.id)).status, 'lost');
      assert.equal((await getTask(store, live.task.id)).status, 'pending');
    });

    storeTest(open, 'events get strictly increasing seqs stamped with the transition time', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 5 });
      const tasks = await createTasks(store, [newTask(), newTask(), newTask()]);
      const results = await store.taskTransition({
        transitions: tasks.map((t, i) => dispatchTransition(t, replica, { now: T0 + 100 + i })),
      });
      const events = await logged(store, results.flatMap((r) => (r.ok ? r.events : [])));
      assert.deepEqual(events.map((e) => e.at), [T0 + 100, T0 + 101, T0 + 102]);
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.seq > events[i - 1]!.seq);
      const stored = await store.eventList({ after: events[0]!.seq - 1, limit: 10 });
      assert.deepEqual(stored, events);
    });
  });

  describe('transitions: guards', () => {
    storeTest(open, 'a task not in fromStatus conflicts on the task and changes nothing', async ({ store }) => {
      const replica = await registerReplica(store);
      const task = await createTask(store, { concurrencyKey: 'k' });
      const t: Transition = { ...dispatchTransition(task, replica, { concurrencyLimit: 3 }), fromStatus: 'dispatched' };
      const scope = { tasks: [task.id], replicas: [replica.id], keys: ['k'] };
      const before = await snapshot(store, scope);
      assert.deepEqual(await apply(store, t), { ok: false, conflict: 'task' });
      assert.deepEqual(await snapshot(store, scope), before);
      assert.equal(await store.assignmentGet({ id: t.assignmentInsert!.id }), null);
    });

    storeTest(open, 'a stale expected assignment conflicts on the task and changes nothing', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store, { concurrencyKey: 'k' }), replica, { concurrencyLimit: 2 });
      const t: Transition = { ...decideComplete({ task: live.task, assignment: live.assignment, result: 1, now: T0 + 5 }), expectAssignmentId: 'asg-stale' };
      const scope = { tasks: [live.task.id], replicas: [replica.id], keys: ['k'] };
      const before = await snapshot(store, scope);
      assert.deepEqual(await apply(store, t), { ok: false, conflict: 'task' });
      assert.deepEqual(await snapshot(store, scope), before);
      // A null expectation does not match a task that has a live assignment either.
      assert.deepEqual(await apply(store, { ...t, expectAssignmentId: null }), { ok: false, conflict: 'task' });
      assert.deepEqual(await snapshot(store, scope), before);
    });

    storeTest(open, 'an assignment outside fromStatuses conflicts and the task update is undone', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store, { concurrencyKey: 'k' }), replica, { concurrencyLimit: 2 });
      const base = decideComplete({ task: live.task, assignment: live.assignment, result: 'x', now: T0 + 5 });
      const t: Transition = { ...base, assignmentUpdate: { ...base.assignmentUpdate!, fromStatuses: ['dispatched'] } };
      const scope = { tasks: [live.task.id], replicas: [replica.id], keys: ['k'] };
      const before = await snapshot(store, scope);
      assert.deepEqual(await apply(store, t), { ok: false, conflict: 'assignment' });
      assert.deepEqual(await snapshot(store, scope), before);
      const task = await getTask(store, live.task.id);
      assert.deepEqual([task.status, task.result], ['running', null]);
      // An unknown assignment id conflicts the same way.
      const unknown: Transition = { ...base, assignmentUpdate: { ...base.assignmentUpdate!, id: 'asg-unknown' } };
      assert.deepEqual(await apply(store, unknown), { ok: false, conflict: 'assignment' });
      assert.deepEqual(await snapshot(store, scope), before);
    });

    storeTest(open, 'a full replica conflicts on the slot and changes nothing', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 1 });
      const [a, b] = await createTasks(store, [newTask(), newTask({ concurrencyKey: 'k' })]);
      await dispatch(store, a!, replica);
      const scope = { tasks: [a!.id, b!.id], replicas: [replica.id], keys: ['k'] };
      const before = await snapshot(store, scope);
      assert.equal(before.replicas[0]?.inFlight, 1);
      assert.deepEqual(await apply(store, dispatchTransition(b!, replica, { concurrencyLimit: 5 })), { ok: false, conflict: 'replica_slot' });
      assert.deepEqual(await snapshot(store, scope), before);
    });

    storeTest(open, 'a replica that is not live, or unknown, conflicts on the slot', async ({ store }) => {
      for (const status of ['draining', 'lost', 'gone'] as const) {
        const replica = await registerReplica(store);
        assert.equal((await store.replicaSetStatus({ id: replica.id, from: ['live'], to: status, event: plainEvent(`replica.${status}`) })).changed, true);
        const task = await createTask(store);
        const scope = { tasks: [task.id], replicas: [replica.id] };
        const before = await snapshot(store, scope);
        assert.deepEqual(await apply(store, dispatchTransition(task, replica)), { ok: false, conflict: 'replica_slot' }, status);
        assert.deepEqual(await snapshot(store, scope), before, status);
      }
      const task = await createTask(store);
      const before = await snapshot(store, { tasks: [task.id] });
      assert.deepEqual(await apply(store, dispatchTransition(task, { id: 'replica-unknown', agent: 'alpha' })), { ok: false, conflict: 'replica_slot' });
      assert.deepEqual(await snapshot(store, { tasks: [task.id] }), before);
    });

    storeTest(open, 'a concurrency key at its limit conflicts and the replica slot is not taken', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 5 });
      const [a, b] = await createTasks(store, [newTask({ concurrencyKey: 'host:gpu' }), newTask({ concurrencyKey: 'host:gpu' })]);
      await dispatch(store, a!, replica, { concurrencyLimit: 1 });
      const scope = { tasks: [a!.id, b!.id], replicas: [replica.id], keys: ['host:gpu'] };
      const before = await snapshot(store, scope);
      assert.equal(before.replicas[0]?.inFlight, 1);
      assert.deepEqual(before.keys, { 'host:gpu': 1 });
      assert.deepEqual(await apply(store, dispatchTransition(b!, replica, { concurrencyLimit: 1 })), { ok: false, conflict: 'concurrency_key' });
      assert.deepEqual(await snapshot(store, scope), before);
      // A higher limit admits it.
      await dispatch(store, b!, replica, { concurrencyLimit: 2 });
      assert.deepEqual(await keyCounts(store, ['host:gpu']), { 'host:gpu': 2 });
    });

    storeTest(open, 'a limit of zero admits nothing; no limit still counts; keys are independent', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 10 });
      const zero = await createTask(store, { concurrencyKey: 'closed' });
      const before = await snapshot(store, { tasks: [zero.id], replicas: [replica.id], keys: ['closed'] });
      assert.deepEqual(await apply(store, dispatchTransition(zero, replica, { concurrencyLimit: 0 })), { ok: false, conflict: 'concurrency_key' });
      assert.deepEqual(await snapshot(store, { tasks: [zero.id], replicas: [replica.id], keys: ['closed'] }), before);

      const unlimited = await createTasks(store, [1, 2, 3].map(() => newTask({ concurrencyKey: 'open' })));
      for (const t of unlimited) await dispatch(store, t, replica, { concurrencyLimit: null });
      const [k1, k2] = await createTasks(store, [newTask({ concurrencyKey: 'k1' }), newTask({ concurrencyKey: 'k2' })]);
      await dispatch(store, k1!, replica, { concurrencyLimit: 1 });
      await dispatch(store, k2!, replica, { concurrencyLimit: 1 });
      assert.deepEqual(await keyCounts(store, ['open', 'k1', 'k2', 'closed']), { open: 3, k1: 1, k2: 1, closed: 0 });
      assert.equal((await getReplica(store, replica.id)).inFlight, 5);
    });

    storeTest(open, 'transitions in one call apply independently, results in order', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 5 });
      const [a, b, c] = await createTasks(store, [newTask(), newTask(), newTask()]);
      const tb = { ...dispatchTransition(b!, replica), fromStatus: 'running' as const };
      const results = await store.taskTransition({
        transitions: [dispatchTransition(a!, replica), tb, dispatchTransition(c!, replica)],
      });
      assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.conflict)), ['ok', 'task', 'ok']);
      assert.deepEqual(await Promise.all([a!, b!, c!].map(async (t) => (await getTask(store, t.id)).status)), ['dispatched', 'pending', 'dispatched']);
      assert.equal((await getReplica(store, replica.id)).inFlight, 2);
      assert.deepEqual(await store.assignmentListByTask({ taskId: b!.id }), []);
      assert.deepEqual(await store.eventList({ after: 0, limit: 10, taskId: b!.id }).then((e) => e.map((x) => x.type)), ['task.created']);
      assert.deepEqual(await store.taskTransition({ transitions: [] }), []);
    });

    storeTest(open, 'many claims and reports in one call, over two replicas, with conflicts among them', async ({ store }) => {
      // A store may apply a call's transitions as set statements (PostgreSQL does): results,
      // rows and counters must be exactly what applying them one by one gives.
      const a = await registerReplica(store, { maxConcurrency: 4 });
      const b = await registerReplica(store, { maxConcurrency: 2 });
      const tasks = await createTasks(store, Array.from({ length: 7 }, () => newTask()));
      const targets = [a, a, a, b, b, b, a];
      const claims = tasks.map((t, i) => dispatchTransition(t, targets[i]!));
      const claimed = await store.taskTransition({ transitions: claims });
      // b has 2 slots: its third claim conflicts; a stale claim (task 0 again) conflicts on the task.
      assert.deepEqual(claimed.map((r) => (r.ok ? 'ok' : r.conflict)), ['ok', 'ok', 'ok', 'ok', 'ok', 'replica_slot', 'ok']);
      assert.deepEqual(await apply(store, dispatchTransition(tasks[0]!, a)), { ok: false, conflict: 'task' });
      assert.deepEqual([(await getReplica(store, a.id)).inFlight, (await getReplica(store, b.id)).inFlight], [4, 2]);
      assert.equal((await getTask(store, tasks[5]!.id)).status, 'pending');

      const live = await Promise.all([0, 1, 2, 3, 4, 6].map(async (i) => {
        const task = await getTask(store, tasks[i]!.id);
        return { task, assignment: await getAssignment(store, task.assignmentId!) };
      }));
      const [a0, a1, a2, b3, b4, a6] = live;
      const now = T0 + 50;
      const complete = (l: typeof a0) => decideComplete({ task: l!.task, assignment: l!.assignment, result: { id: l!.task.id }, now });
      const fail = decideFail({
        task: a2!.task, assignment: a2!.assignment, error: { code: 'E', message: 'boom' }, retryable: true, outcome: 'failed', now, policy: POLICY, random: 0.5,
      });
      const results = await store.taskTransition({
        transitions: [
          complete(a0),
          { ...complete(a1), fromStatus: 'running' }, // stale: the task is dispatched
          fail,
          complete(b3),
          complete(b4),
          complete(b3), // a second report of the same attempt: it already ended
          decideStart({ task: a6!.task, assignment: a6!.assignment, now, leaseMs: LEASE_MS })!,
        ],
      });
      assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.conflict)), ['ok', 'task', 'ok', 'ok', 'ok', 'task', 'ok']);
      assert.deepEqual(results.map((r) => (r.ok ? r.events.map((e) => e.type) : [])),
        [['task.completed'], [], ['task.retrying'], ['task.completed'], ['task.completed'], [], ['task.started']]);
      const statuses = await Promise.all(tasks.map(async (t) => (await getTask(store, t.id)).status));
      assert.deepEqual(statuses, ['completed', 'dispatched', 'pending', 'completed', 'completed', 'pending', 'running']);
      assert.deepEqual((await getTask(store, tasks[0]!.id)).result, { id: tasks[0]!.id });
      assert.equal((await getTask(store, tasks[1]!.id)).result, null);
      assert.equal((await getAssignment(store, a2!.assignment.id)).status, 'failed');
      assert.equal((await getAssignment(store, a1!.assignment.id)).status, 'dispatched');
      const ra = await getReplica(store, a.id);
      const rb = await getReplica(store, b.id);
      assert.deepEqual([ra.inFlight, ra.completed, ra.failed], [2, 1, 1]);
      assert.deepEqual([rb.inFlight, rb.completed, rb.failed], [0, 2, 0]);
    });

    storeTest(open, 'claims and releases on one replica apply in call order, within a call and across queued calls', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 1 });
      const [z, y, x, keyed] = await createTasks(store, [newTask(), newTask(), newTask(), newTask({ concurrencyKey: 'k' })]);
      const live = await dispatch(store, z!, replica);
      // Full: a claim before the release conflicts, one after it takes the freed slot.
      const release = decideComplete({ task: live.task, assignment: live.assignment, result: null, now: T0 + 1 });
      const [early, freed, late] = await Promise.all([
        apply(store, dispatchTransition(x!, replica)),
        apply(store, release),
        apply(store, dispatchTransition(y!, replica)),
      ]);
      assert.deepEqual([early, freed, late].map((r) => (r.ok ? 'ok' : r.conflict)), ['replica_slot', 'ok', 'ok']);
      // One slot free again (y completes); in one call the first claim wins it, keyed or not.
      const yLive = { task: await getTask(store, y!.id), assignment: await getAssignment(store, (await getTask(store, y!.id)).assignmentId!) };
      await mustApply(store, decideComplete({ task: yLive.task, assignment: yLive.assignment, result: null, now: T0 + 2 }));
      const both = await store.taskTransition({ transitions: [dispatchTransition(x!, replica), dispatchTransition(keyed!, replica)] });
      assert.deepEqual(both.map((r) => (r.ok ? 'ok' : r.conflict)), ['ok', 'replica_slot']);
      const r = await getReplica(store, replica.id);
      assert.deepEqual([r.inFlight, r.completed], [1, 2]);
    });

    storeTest(open, 'concurrent dispatches never overfill a replica', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 2 });
      const tasks = await createTasks(store, Array.from({ length: 5 }, () => newTask()));
      const results = await Promise.all(tasks.map((t) => apply(store, dispatchTransition(t, replica))));
      // Which two win is the store's business (a multi-node store need not keep call order).
      assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.conflict)).sort(), ['ok', 'ok', 'replica_slot', 'replica_slot', 'replica_slot']);
      assert.equal((await getReplica(store, replica.id)).inFlight, 2);
      assert.equal((await store.assignmentListByReplica({ replicaId: replica.id })).length, 2);
    });

    storeTest(open, 'of two concurrent completions exactly one applies', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store), replica);
      const results = await Promise.all(['one', 'two'].map((result, i) =>
        apply(store, decideComplete({ task: live.task, assignment: live.assignment, result, now: T0 + 10 + i }))));
      assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.conflict)).sort(), ['ok', 'task']);
      assert.equal((await getTask(store, live.task.id)).result, results[0]!.ok ? 'one' : 'two');
      const r = await getReplica(store, replica.id);
      assert.deepEqual([r.inFlight, r.completed], [0, 1]);
      assert.equal((await store.eventList({ after: 0, limit: 20, taskId: live.task.id })).filter((e) => e.type === 'task.completed').length, 1);
    });

    storeTest(open, 'an assignment insert is undone when a later guard fails', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 0 });
      const task = await createTask(store);
      const t = dispatchTransition(task, replica, { assignmentId: nextId('asg') });
      assert.deepEqual(await apply(store, t), { ok: false, conflict: 'replica_slot' });
      assert.equal(await store.assignmentGet({ id: t.assignmentInsert!.id }), null);
      assert.deepEqual(await store.assignmentListByReplica({ replicaId: replica.id }), []);
    });
  });
}
