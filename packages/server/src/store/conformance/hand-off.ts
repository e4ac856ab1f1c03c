// Conformance: a task created and dispatched in one write (direct hand-off, TaskToCreate.
// dispatch), and attempts that do not count (an undone dispatch).

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideComplete, decideDispatchFailed } from '../../core/task-machine.ts';
import {
  T0, allEvents, createdEvent, dispatch, dispatchTransition, ensureAgents, getReplica, getTask, logged, mustApply, newTask, registerReplica,
  storeTest, type OpenStore,
} from './harness.ts';

export function handOffTests(open: OpenStore): void {
  describe('tasks: created and dispatched in one write', () => {
    storeTest(open, 'creates the task, dispatches it and writes both events in order, in one commit', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha', maxConcurrency: 2 });
      const task = newTask({ agent: 'alpha' });
      const handOff = dispatchTransition({ ...task, seq: 0 }, replica, { now: T0 + 5 });
      const before = store.counterSnapshot();
      const [result] = await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)], dispatch: handOff }] });
      const after = store.counterSnapshot();
      assert.equal(after.commits - before.commits, 1, 'one commit for the create and the dispatch');
      // PostgreSQL: BEGIN, the replica's lock, the insert and the claim in one round trip; the
      // events and COMMIT in a second (pipelined). In process (SQLite): none.
      assert.ok(after.roundTrips - before.roundTrips <= 2, `${after.roundTrips - before.roundTrips} round trips for a hand-off`);
      assert.ok(result?.created);
      assert.ok(result.handOff?.ok, 'the dispatch applied');
      assert.deepEqual(result.handOff.events.map((e) => e.type), ['task.dispatched']);
      const [createdLogged, dispatchedLogged] = await logged(store, [...result.events, ...result.handOff.events]);
      assert.ok(dispatchedLogged!.seq > createdLogged!.seq, 'task.created comes first');
      const stored = await getTask(store, task.id);
      assert.equal(stored.status, 'dispatched');
      assert.equal(stored.assignmentId, handOff.assignmentInsert!.id);
      assert.equal(stored.attempt, 1);
      assert.deepEqual(await store.assignmentGet({ id: handOff.assignmentInsert!.id }), handOff.assignmentInsert);
      assert.equal((await getReplica(store, replica.id)).inFlight, 1);
      assert.deepEqual((await allEvents(store)).filter((e) => e.taskId === task.id).map((e) => e.type), ['task.created', 'task.dispatched']);
    });

    storeTest(open, 'a dispatch whose replica is full leaves the task created and pending, and only the dispatch undone', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha', maxConcurrency: 1 });
      const [first] = await store.taskCreate({ tasks: [{ task: newTask({ agent: 'alpha' }), events: [] }] });
      assert.ok(first?.created);
      await dispatch(store, first.task, replica);
      const task = newTask({ agent: 'alpha' });
      const handOff = dispatchTransition({ ...task, seq: 0 }, replica);
      const [result] = await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)], dispatch: handOff }] });
      assert.ok(result?.created);
      assert.deepEqual(result.handOff, { ok: false, conflict: 'replica_slot' });
      const stored = await getTask(store, task.id);
      assert.equal(stored.status, 'pending');
      assert.equal(stored.assignmentId, null);
      assert.equal(stored.attempt, 0);
      assert.equal(await store.assignmentGet({ id: handOff.assignmentInsert!.id }), null);
      assert.equal((await getReplica(store, replica.id)).inFlight, 1);
      assert.deepEqual((await allEvents(store)).filter((e) => e.taskId === task.id).map((e) => e.type), ['task.created']);
    });

    storeTest(open, 'a task whose idempotency key matched is not dispatched', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha', maxConcurrency: 2 });
      const original = newTask({ agent: 'alpha', idempotencyKey: 'same' });
      await store.taskCreate({ tasks: [{ task: original, events: [createdEvent(original)] }] });
      const again = newTask({ agent: 'alpha', idempotencyKey: 'same' });
      const handOff = dispatchTransition({ ...again, seq: 0 }, replica);
      const [result] = await store.taskCreate({ tasks: [{ task: again, events: [createdEvent(again)], dispatch: handOff }] });
      assert.equal(result?.created, false);
      assert.equal((await getTask(store, original.id)).status, 'pending');
      assert.equal(await store.assignmentGet({ id: handOff.assignmentInsert!.id }), null);
      assert.equal((await getReplica(store, replica.id)).inFlight, 0);
    });

    storeTest(open, 'a hand-off queued with a call refused for a missing agent still applies', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha', maxConcurrency: 2 });
      const stray = newTask({ agent: 'nobody' });
      const task = newTask({ agent: 'alpha' });
      const handOff = dispatchTransition({ ...task, seq: 0 }, replica);
      const [refusedCall, handedOff] = await Promise.allSettled([
        store.taskCreate({ tasks: [{ task: stray, events: [createdEvent(stray)] }] }),
        store.taskCreate({ tasks: [{ task, events: [createdEvent(task)], dispatch: handOff }] }),
      ]);
      assert.equal(refusedCall.status, 'rejected');
      assert.equal((refusedCall as PromiseRejectedResult).reason.code, 'UNKNOWN_AGENT');
      assert.equal(handedOff.status, 'fulfilled');
      const [result] = (handedOff as PromiseFulfilledResult<Awaited<ReturnType<typeof store.taskCreate>>>).value;
      assert.ok(result?.created && result.handOff?.ok, 'the other call was created and handed off');
      assert.equal((await getTask(store, task.id)).status, 'dispatched');
      assert.equal((await getReplica(store, replica.id)).inFlight, 1, 'one slot taken, once');
      assert.deepEqual((await allEvents(store)).filter((e) => e.taskId === task.id).map((e) => e.type), ['task.created', 'task.dispatched']);
    });

    storeTest(open, 'hand-offs of several calls queued together each apply to their own task', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha', maxConcurrency: 2 });
      const tasks = [newTask({ agent: 'alpha' }), newTask({ agent: 'alpha' }), newTask({ agent: 'alpha' })];
      // The third finds the replica full: conflicts alone.
      const results = await Promise.all(tasks.map((task) => store.taskCreate({
        tasks: [{ task, events: [createdEvent(task)], dispatch: dispatchTransition({ ...task, seq: 0 }, replica) }],
      })));
      assert.deepEqual(results.map(([r]) => (r?.created ? r.handOff?.ok : null)), [true, true, false]);
      assert.deepEqual(await Promise.all(tasks.map(async (t) => (await getTask(store, t.id)).status)), ['dispatched', 'dispatched', 'pending']);
      assert.equal((await getReplica(store, replica.id)).inFlight, 2);
    });
  });

  describe('attempts that do not count', () => {
    storeTest(open, 'an undone dispatch is kept in the history but not counted as a failed attempt', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha' });
      const [created] = await store.taskCreate({ tasks: [{ task: newTask({ agent: 'alpha' }), events: [] }] });
      assert.ok(created?.created);
      const live = await dispatch(store, created.task, replica);
      const undo = decideDispatchFailed({ task: live.task, assignment: live.assignment, now: T0 + 1, reason: 'gone' });
      assert.equal(undo.countsAsAttempt, false);
      await mustApply(store, undo);
      const stats = await store.agentStats({ agent: 'alpha', sample: 10 });
      assert.equal(stats.attemptsFailed, 0);
      assert.equal((await store.assignmentListByTask({ taskId: created.task.id })).length, 1, 'the attempt stays in the history');
    });
  });
}

/** Transitions of one call, and of calls queued together, give the outcome of applying them one by one. */
export function transitionSetTests(open: OpenStore): void {
  describe('transitions applied together', () => {
    storeTest(open, 'a call mixing claims that apply, conflict on the task and find the replica full has the sequential outcome', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const roomy = await registerReplica(store, { agent: 'alpha', maxConcurrency: 5 });
      const tight = await registerReplica(store, { agent: 'alpha', maxConcurrency: 1 });
      const created = await store.taskCreate({ tasks: Array.from({ length: 5 }, () => ({ task: newTask({ agent: 'alpha' }), events: [] })) });
      const [a, b, c, d, e] = created.map((r) => r.task);
      const taken = dispatchTransition(b!, roomy);
      await mustApply(store, taken);
      const results = await store.taskTransition({
        transitions: [
          dispatchTransition(a!, roomy, { now: T0 + 1 }),
          dispatchTransition(b!, roomy, { now: T0 + 1 }), // already dispatched: task conflict
          dispatchTransition(c!, tight, { now: T0 + 1 }),
          dispatchTransition(d!, tight, { now: T0 + 1 }), // tight is full by now: replica_slot
          dispatchTransition(e!, roomy, { now: T0 + 2 }),
        ],
      });
      assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.conflict)), ['ok', 'task', 'ok', 'replica_slot', 'ok']);
      assert.equal((await getReplica(store, roomy.id)).inFlight, 3);
      assert.equal((await getReplica(store, tight.id)).inFlight, 1);
      assert.equal((await getTask(store, d!.id)).status, 'pending');
      const written = await logged(store, results.flatMap((r) => (r.ok ? r.events : [])));
      const seqs = written.map((ev) => ev.seq);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'events in call order');
      const stored = (await allEvents(store)).filter((ev) => ev.type === 'task.dispatched').slice(-3);
      assert.deepEqual(stored.map((ev) => [ev.seq, ev.taskId]), written.map((ev, i) => [ev.seq, [a, c, e][i]!.id]));
    });

    storeTest(open, 'completions queued as separate calls each get their own outcome and give every slot back', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha', maxConcurrency: 4 });
      const created = await store.taskCreate({ tasks: Array.from({ length: 4 }, () => ({ task: newTask({ agent: 'alpha' }), events: [] })) });
      const live = [];
      for (const { task } of created) live.push(await dispatch(store, task, replica));
      const stale = { ...live[3]!.assignment, id: 'not-the-live-one' };
      const outcomes = await Promise.all([
        ...live.slice(0, 3).map((l) => store.taskTransition({ transitions: [decideComplete({ task: l.task, assignment: l.assignment, result: { ok: 1 }, now: T0 + 9 })] })),
        store.taskTransition({ transitions: [decideComplete({ task: { ...live[3]!.task, assignmentId: stale.id }, assignment: stale, result: null, now: T0 + 9 })] }),
      ]);
      assert.deepEqual(outcomes.map(([r]) => (r!.ok ? 'ok' : r!.conflict)), ['ok', 'ok', 'ok', 'task']);
      const r = await getReplica(store, replica.id);
      assert.equal(r.inFlight, 1);
      assert.equal(r.completed, 3);
      assert.deepEqual(await Promise.all(live.map(async (l) => (await getTask(store, l.task.id)).status)), ['completed', 'completed', 'completed', 'dispatched']);
    });
  });
}
