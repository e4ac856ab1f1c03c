// Conformance: assignment lookups, the reaper's due list, heartbeats and agent statistics.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideCancel, decideComplete, decideDispatchFailed, decideFail } from '../../core/task-machine.ts';
import {
  POLICY, T0, createTask, createTasks, dispatch, getAssignment, getTask, mustApply, newTask, registerReplica, run,
  storeTest, type OpenStore,
} from './harness.ts';

export function assignmentTests(open: OpenStore): void {
  describe('assignments: lookups', () => {
    storeTest(open, 'lists a task\'s attempts in order and a replica\'s live ones with their tasks', async ({ store }) => {
      const r1 = await registerReplica(store, { maxConcurrency: 5 });
      const r2 = await registerReplica(store, { maxConcurrency: 5 });
      const [a, b, c, d] = await createTasks(store, [newTask(), newTask(), newTask(), newTask()]);
      const la = await run(store, a!, r1);
      const lb = await dispatch(store, b!, r1);
      const lc = await run(store, c!, r1);
      await mustApply(store, decideComplete({ task: lc.task, assignment: lc.assignment, result: null, now: T0 + 1 }));
      await dispatch(store, d!, r2);

      const mine = await store.assignmentListByReplica({ replicaId: r1.id });
      assert.deepEqual(mine.map((x) => x.assignment.id).sort(), [la.assignment.id, lb.assignment.id].sort());
      const forA = mine.find((x) => x.assignment.id === la.assignment.id)!;
      assert.deepEqual(forA.assignment, la.assignment);
      assert.equal(forA.task.id, a!.id);
      assert.equal(forA.task.seq, a!.seq);
      assert.equal(forA.task.status, 'running');
      assert.equal(forA.task.assignmentId, la.assignment.id);
      assert.deepEqual(await store.assignmentListByReplica({ replicaId: 'replica-none' }), []);

      // Attempt history of one task, oldest first.
      const retry = await run(store, await createTask(store), r2);
      await mustApply(store, decideFail({
        task: retry.task, assignment: retry.assignment, error: { message: 'x' }, retryable: true, outcome: 'lost', now: T0 + 2, policy: POLICY, random: 0,
      }));
      const again = await dispatch(store, await getTask(store, retry.task.id), r2, { now: T0 + 5_000 });
      const history = await store.assignmentListByTask({ taskId: retry.task.id });
      assert.deepEqual(history.map((x) => [x.id, x.attempt, x.status]), [[retry.assignment.id, 1, 'lost'], [again.assignment.id, 2, 'dispatched']]);
      assert.equal(await store.assignmentGet({ id: 'asg-none' }), null);
      assert.deepEqual(await store.assignmentListByTask({ taskId: 'task-none' }), []);
    });
  });

  describe('assignments: the latest of many tasks', () => {
    storeTest(open, "assignmentListLatest answers each task's live or last attempt in one read", async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 5 });
      const [never, live, retried, undone] = await createTasks(store, [newTask(), newTask(), newTask(), newTask()]);
      const l = await run(store, live!, replica);
      const first = await run(store, retried!, replica);
      await mustApply(store, decideFail({
        task: first.task, assignment: first.assignment, error: { message: 'x' }, retryable: true, outcome: 'failed', now: T0 + 1, policy: POLICY, random: 0,
      }));
      const second = await dispatch(store, await getTask(store, retried!.id), replica, { now: T0 + 5_000 });
      await mustApply(store, decideComplete({ task: { ...second.task }, assignment: second.assignment, result: null, now: T0 + 5_001 }));
      // An undone dispatch gives the attempt number back: the next attempt has the same number,
      // and is still the latest.
      const u1 = await dispatch(store, undone!, replica);
      await mustApply(store, decideDispatchFailed({ task: u1.task, assignment: u1.assignment, now: T0 + 2, reason: 'gone' }));
      const u2 = await dispatch(store, await getTask(store, undone!.id), replica, { now: T0 + 3 });
      assert.equal(u2.assignment.attempt, u1.assignment.attempt);

      const latest = await store.assignmentListLatest({ taskIds: [never!.id, live!.id, retried!.id, undone!.id, live!.id, 'task-none'] });
      const byTask = new Map(latest.map((a) => [a.taskId, a]));
      assert.equal(latest.length, 3, 'one per task that has an attempt; none for a task without, or unknown');
      assert.deepEqual(byTask.get(live!.id), l.assignment);
      assert.deepEqual([byTask.get(retried!.id)!.id, byTask.get(retried!.id)!.status, byTask.get(retried!.id)!.attempt], [second.assignment.id, 'completed', 2]);
      assert.equal(byTask.get(undone!.id)!.id, u2.assignment.id);
      assert.deepEqual(await store.assignmentListLatest({ taskIds: [] }), []);
    });
  });

  describe('assignments: due for the reaper', () => {
    storeTest(open, 'lists lapsed leases, passed deadlines and cancellations past their grace', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 10 });
      const now = T0 + 10_000;
      const grace = 500;
      const [healthy, leaseLapsed, deadlinePassed, cancelDue, cancelInGrace, finished] = await createTasks(store, [
        newTask(), newTask(), newTask({ timeoutMs: 8_000 }), newTask(), newTask(), newTask(),
      ]);
      const h = await run(store, healthy!, replica, { now: T0 + 9_000 });
      // Lease ends exactly at `now`: due (the boundary is inclusive).
      const l = await dispatch(store, leaseLapsed!, replica, { now: T0, leaseMs: 10_000 });
      const dl = await dispatch(store, deadlinePassed!, replica, { now: T0, leaseMs: 60_000 });
      const c = await run(store, cancelDue!, replica, { now: T0 + 9_000 });
      await mustApply(store, decideCancel({ task: c.task, assignment: c.assignment, now: now - grace }));
      const g = await run(store, cancelInGrace!, replica, { now: T0 + 9_000 });
      await mustApply(store, decideCancel({ task: g.task, assignment: g.assignment, now: now - grace + 1 }));
      const f = await run(store, finished!, replica, { now: T0, leaseMs: 1_000 });
      await mustApply(store, decideComplete({ task: f.task, assignment: f.assignment, result: 1, now: T0 + 500 }));

      const due = await store.assignmentListDue({ now, cancelGraceMs: grace, limit: 100 });
      assert.deepEqual(due.map((x) => x.assignment.id).sort(), [l.assignment.id, dl.assignment.id, c.assignment.id].sort());
      for (const item of due) {
        assert.equal(item.task.assignmentId, item.assignment.id);
        assert.deepEqual(item.assignment, await getAssignment(store, item.assignment.id));
      }
      const cancelItem = due.find((x) => x.assignment.id === c.assignment.id)!;
      assert.equal(cancelItem.task.cancelRequestedAt, now - grace);
      assert.ok(!due.some((x) => x.assignment.id === h.assignment.id || x.assignment.id === g.assignment.id));
      assert.equal((await store.assignmentListDue({ now, cancelGraceMs: grace, limit: 2 })).length, 2);
      assert.deepEqual(await store.assignmentListDue({ now: T0 + 1, cancelGraceMs: grace, limit: 100 }), []);
    });
  });

  describe('assignments: heartbeat', () => {
    storeTest(open, 'renews the lease and records progress while live and held by the replica', async ({ store }) => {
      const replica = await registerReplica(store);
      const live = await run(store, await createTask(store), replica);
      const hb = await store.assignmentHeartbeat({
        assignmentId: live.assignment.id, replicaId: replica.id, leaseExpiresAt: T0 + 99_000,
        progress: { percent: 40, message: 'halfway', at: T0 + 500 },
      });
      assert.ok(hb.ok);
      assert.equal(hb.cancelRequested, false);
      const expected = { ...live.assignment, leaseExpiresAt: T0 + 99_000, progressPercent: 40, progressMessage: 'halfway', progressAt: T0 + 500 };
      assert.deepEqual(hb.assignment, expected);
      assert.deepEqual(await getAssignment(store, live.assignment.id), expected);

      // Without progress, the last progress is kept.
      const plain = await store.assignmentHeartbeat({ assignmentId: live.assignment.id, replicaId: replica.id, leaseExpiresAt: T0 + 120_000 });
      assert.ok(plain.ok);
      assert.deepEqual(await getAssignment(store, live.assignment.id), { ...expected, leaseExpiresAt: T0 + 120_000 });

      // A requested cancellation is reported.
      await mustApply(store, decideCancel({ task: live.task, assignment: live.assignment, now: T0 + 600 }));
      const told = await store.assignmentHeartbeat({ assignmentId: live.assignment.id, replicaId: replica.id, leaseExpiresAt: T0 + 130_000 });
      assert.ok(told.ok);
      assert.equal(told.cancelRequested, true);
    });

    storeTest(open, 'refuses another replica, a finished attempt and an unknown one', async ({ store }) => {
      const replica = await registerReplica(store);
      const other = await registerReplica(store);
      const live = await run(store, await createTask(store), replica);
      const wrong = await store.assignmentHeartbeat({ assignmentId: live.assignment.id, replicaId: other.id, leaseExpiresAt: T0 + 99_000 });
      assert.deepEqual(wrong, { ok: false, assignment: live.assignment });
      assert.deepEqual(await getAssignment(store, live.assignment.id), live.assignment);

      await mustApply(store, decideComplete({ task: live.task, assignment: live.assignment, result: 'done', now: T0 + 5 }));
      const done = await getAssignment(store, live.assignment.id);
      const late = await store.assignmentHeartbeat({
        assignmentId: live.assignment.id, replicaId: replica.id, leaseExpiresAt: T0 + 99_000, progress: { percent: 99, message: null, at: T0 + 6 },
      });
      assert.deepEqual(late, { ok: false, assignment: done });
      assert.deepEqual(await getAssignment(store, live.assignment.id), done);

      assert.deepEqual(await store.assignmentHeartbeat({ assignmentId: 'asg-none', replicaId: replica.id, leaseExpiresAt: T0 }), { ok: false, assignment: null });
    });
  });

  describe('assignments: agent statistics', () => {
    storeTest(open, 'counts the agent\'s tasks and attempts and samples recent durations', async ({ store }) => {
      const alpha = await registerReplica(store, { agent: 'alpha', maxConcurrency: 10 });
      const beta = await registerReplica(store, { agent: 'beta', maxConcurrency: 10 });
      const [pending, done1, done2, routed, retried, dispatchFailed, betaTask, routedBeta] = await createTasks(store, [
        newTask(), newTask(), newTask(), newTask({ agent: null, capabilities: ['text'] }), newTask(), newTask(),
        newTask({ agent: 'beta' }), newTask({ agent: null }),
      ]);
      assert.ok(pending);
      const l1 = await run(store, done1!, alpha, { now: T0 + 100 });
      await mustApply(store, decideComplete({ task: l1.task, assignment: l1.assignment, result: 1, now: T0 + 400 }));
      const l2 = await run(store, done2!, alpha, { now: T0 + 1_000 });
      await mustApply(store, decideComplete({ task: l2.task, assignment: l2.assignment, result: 2, now: T0 + 1_050 }));
      // Capability-routed, ran on alpha: counted for alpha.
      const l3 = await run(store, routed!, alpha, { now: T0 + 2_000 });
      await mustApply(store, decideComplete({ task: l3.task, assignment: l3.assignment, result: 3, now: T0 + 2_700 }));
      // One failed attempt, back to pending.
      const l4 = await run(store, retried!, alpha, { now: T0 + 3_000 });
      await mustApply(store, decideFail({
        task: l4.task, assignment: l4.assignment, error: { message: 'x' }, retryable: true, outcome: 'timed_out', now: T0 + 3_100, policy: POLICY, random: 0,
      }));
      // A dispatch that never reached the worker is not an attempt.
      const l5 = await dispatch(store, dispatchFailed!, alpha, { now: T0 + 4_000 });
      await mustApply(store, decideDispatchFailed({ task: l5.task, assignment: l5.assignment, now: T0 + 4_001, reason: 'closed' }));
      // Other agent's work.
      const l6 = await run(store, betaTask!, beta, { now: T0 + 5_000 });
      await mustApply(store, decideComplete({ task: l6.task, assignment: l6.assignment, result: 6, now: T0 + 5_500 }));
      await run(store, routedBeta!, beta, { now: T0 + 6_000 });

      const stats = await store.agentStats({ agent: 'alpha', sample: 2 });
      assert.deepEqual(stats.byStatus, { pending: 3, dispatched: 0, running: 0, waiting: 0, input_required: 0, completed: 3, failed: 0, cancelled: 0, blocked: 0 });
      assert.deepEqual(stats.recentDurationsMs, [700, 50]);
      assert.equal(stats.attemptsCompleted, 3);
      assert.equal(stats.attemptsFailed, 1);
      assert.deepEqual((await store.agentStats({ agent: 'alpha', sample: 10 })).recentDurationsMs, [700, 50, 300]);

      const betaStats = await store.agentStats({ agent: 'beta', sample: 10 });
      assert.deepEqual(betaStats.byStatus, { pending: 0, dispatched: 0, running: 1, waiting: 0, input_required: 0, completed: 1, failed: 0, cancelled: 0, blocked: 0 });
      assert.deepEqual([betaStats.recentDurationsMs, betaStats.attemptsCompleted, betaStats.attemptsFailed], [[500], 1, 0]);

      const none = await store.agentStats({ agent: 'nobody', sample: 5 });
      assert.deepEqual(none, {
        byStatus: { pending: 0, dispatched: 0, running: 0, waiting: 0, input_required: 0, completed: 0, failed: 0, cancelled: 0, blocked: 0 }, recentDurationsMs: [], attemptsCompleted: 0, attemptsFailed: 0,
      });
    });
  });
}
