// An operator's hands (issue 14): POST /tasks/{id}/assign dispatches a pending task now to an
// agent or a replica through the dispatcher's own path (409 NOT_ASSIGNABLE with the reason
// when nothing can take it), and POST /tasks/{id}/fail fails a task for good with a reason
// (a live attempt too: its worker learns it on its next report). On both stores.

import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { LeasedTask, TaskView } from '@flotilla/sdk';
import { withHarness as withStore, type Harness } from './helpers/harness.ts';

function withHarness(t: TestContext, store: 'sqlite' | 'postgres', fn: (h: Harness) => Promise<void>): Promise<void> {
  return withStore(t, store, async (h) => {
    await h.agent({ name: 'analyst', capabilities: ['triage'], maxConcurrency: 2 });
    await h.agent({ name: 'writer', capabilities: ['prose'] });
    await fn(h);
  });
}

const as = (token: string) => ({ authorization: `Bearer ${token}` });
const LATER = 3_600_000;

/** A long-poll lease that is waiting (its pass has ended), and what it will receive. */
async function waitingLease(h: Harness, replica: string, max = 1): Promise<{ leased: Promise<LeasedTask[]> }> {
  const leased = h.lease(replica, max, 10_000);
  for (const until = Date.now() + 5_000; !h.engine.dispatcher.waitingReplicaIds().includes(replica);) {
    assert.ok(Date.now() < until, 'the lease request waits');
    await new Promise((r) => setTimeout(r, 2));
  }
  await h.engine.dispatcher.idle();
  return { leased };
}

async function refusal(h: Harness, id: string, body: unknown): Promise<{ status: number; code: string; reason?: string; message: string }> {
  const res = await h.api('POST', `/tasks/${id}/assign`, body);
  return { status: res.status, code: res.body?.error?.code, reason: res.body?.error?.details?.reason, message: res.body?.error?.message };
}

async function operatorKey(h: Harness, role = 'operator'): Promise<string> {
  return (await h.api('POST', '/keys', { name: `${role} key`, role })).body.token as string;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`POST /tasks/{id}/assign (${store})`, () => {
    it('dispatches a delayed task now to a waiting replica of the agent, pushed to it, recorded as the operator\'s', async (t) => {
      await withHarness(t, store, async (h) => {
        const replica = await h.register('analyst');
        const task = await h.submit({ agent: 'analyst', delayMs: LATER, input: { n: 1 } });
        const { leased } = await waitingLease(h, replica);
        const ops = await operatorKey(h);
        const res = await h.api<TaskView>('POST', `/tasks/${task.id}/assign`, { agent: 'analyst' }, as(ops));
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.status, 'dispatched');
        assert.equal(res.body.attempt, 1);
        const [got] = await leased;
        assert.equal(got?.task.id, task.id, 'the waiting request received it');
        assert.deepEqual(got?.task.input, { n: 1 });
        const dispatched = (await h.api('GET', `/tasks/${task.id}/events`)).body.items.find((e: { type: string }) => e.type === 'task.dispatched');
        assert.deepEqual(dispatched.data, { attempt: 1, maxAttempts: 3, assignedBy: 'operator key' });
        assert.equal(dispatched.replicaId, replica);
        // The attempt is an ordinary one: the worker completes it.
        assert.equal((await h.api('POST', `/assignments/${got!.assignmentId}/complete`, { replicaId: replica, result: 'done' })).status, 200);
        assert.equal((await h.task(task.id)).status, 'completed');
        // Audited like every operator action.
        await h.engine.audit.flush();
        const audit = (await h.api('GET', '/audit?action=task.assign')).body.items;
        assert.equal(audit[0]?.target, task.id);
        assert.equal(audit[0]?.outcome, 'allowed');
      });
    });

    it('pins a replica: among two waiting, the one named gets it; with no target, any that serves the task', async (t) => {
      await withHarness(t, store, async (h) => {
        const r1 = await h.register('analyst');
        const r2 = await h.register('analyst');
        const pinned = await h.submit({ agent: 'analyst', delayMs: LATER });
        const byCapability = await h.submit({ capabilities: ['triage'], delayMs: LATER });
        const { leased: l1 } = await waitingLease(h, r1);
        const { leased: l2 } = await waitingLease(h, r2);
        assert.equal((await h.api('POST', `/tasks/${pinned.id}/assign`, { replica: r2 })).status, 200);
        assert.equal((await l2)[0]?.task.id, pinned.id);
        assert.equal((await h.api('POST', `/tasks/${byCapability.id}/assign`, {})).status, 200);
        assert.equal((await l1)[0]?.task.id, byCapability.id);
        assert.equal((await h.task(byCapability.id)).status, 'dispatched');
      });
    });

    it('409 NOT_ASSIGNABLE names why nothing can take the task, and changes nothing', async (t) => {
      await withHarness(t, store, async (h) => {
        const task = await h.submit({ agent: 'analyst', delayMs: LATER });
        const none = await refusal(h, task.id, {});
        assert.deepEqual([none.status, none.code, none.reason], [409, 'NOT_ASSIGNABLE', 'no_live_replica']);
        assert.match(none.message, /no live replica/);
        const r1 = await h.register('analyst', { maxConcurrency: 1 });
        assert.equal((await refusal(h, task.id, { agent: 'analyst' })).reason, 'not_waiting', 'registered, but no open lease request');
        assert.equal((await refusal(h, task.id, { agent: 'writer' })).reason, 'agent_does_not_serve');
        // The replica's one slot is taken: its open request has no room.
        const busy = await h.submit({ agent: 'analyst' });
        assert.equal((await h.lease(r1))[0]?.task.id, busy.id);
        const full = h.lease(r1, 1, 300);
        for (const until = Date.now() + 5_000; !h.engine.dispatcher.waitingReplicaIds().includes(r1);) {
          assert.ok(Date.now() < until);
          await new Promise((r) => setTimeout(r, 2));
        }
        assert.equal((await refusal(h, task.id, { replica: r1 })).reason, 'no_free_slot');
        assert.deepEqual(await full, []);
        // A pin elsewhere, a replica no longer live, a task not pending.
        const r2 = await h.register('analyst');
        const pinnedToR2 = await h.submit({ agent: 'analyst', replica: r2, delayMs: LATER });
        assert.equal((await refusal(h, pinnedToR2.id, { replica: r1 })).reason, 'pinned_elsewhere');
        assert.equal((await h.api('POST', `/workers/${r2}/deregister`)).status, 204);
        assert.equal((await refusal(h, pinnedToR2.id, { replica: r2 })).reason, 'replica_not_live');
        assert.equal((await refusal(h, pinnedToR2.id, {})).reason, 'no_live_replica', 'its pinned replica is gone');
        const notPending = await refusal(h, busy.id, {});
        assert.deepEqual([notPending.reason, notPending.code], ['not_pending', 'NOT_ASSIGNABLE']);
        for (const id of [task.id, pinnedToR2.id]) assert.equal((await h.task(id)).status, 'pending');
      });
    });

    it('a concurrency key at its limit is a refusal of its own', async (t) => {
      await withHarness(t, store, async (h) => {
        assert.equal((await h.api('PATCH', '/agents/analyst', { concurrencyLimits: { 'host:a': 1 } })).status, 200);
        const replica = await h.register('analyst', { maxConcurrency: 5 });
        const first = await h.submit({ agent: 'analyst', concurrencyKey: 'host:a' });
        assert.equal((await h.lease(replica))[0]?.task.id, first.id);
        const second = await h.submit({ agent: 'analyst', concurrencyKey: 'host:a', delayMs: LATER });
        await waitingLease(h, replica);
        assert.equal((await refusal(h, second.id, {})).reason, 'concurrency_key_full');
      });
    });

    it('refuses: an unknown task (404), a viewer (403), a bad body (400), an unknown agent or replica (422)', async (t) => {
      await withHarness(t, store, async (h) => {
        const task = await h.submit({ agent: 'analyst', delayMs: LATER });
        assert.deepEqual([(await refusal(h, 'no-such-task', {})).status, (await refusal(h, 'no-such-task', {})).code], [404, 'TASK_NOT_FOUND']);
        const viewer = await operatorKey(h, 'viewer');
        const forbidden = await h.api('POST', `/tasks/${task.id}/assign`, {}, as(viewer));
        assert.deepEqual([forbidden.status, forbidden.body.error.code], [403, 'FORBIDDEN']);
        for (const body of [{ agent: 7 }, { replica: '' }, { site: 'eu' }, [1]]) assert.equal((await refusal(h, task.id, body)).code, 'VALIDATION_FAILED', JSON.stringify(body));
        assert.deepEqual([(await refusal(h, task.id, { agent: 'ghost' })).status, (await refusal(h, task.id, { agent: 'ghost' })).code], [422, 'UNKNOWN_AGENT']);
        assert.equal((await refusal(h, task.id, { replica: 'no-such-replica' })).code, 'UNKNOWN_REPLICA');
        const writer = await h.register('writer');
        assert.equal((await refusal(h, task.id, { agent: 'analyst', replica: writer })).code, 'UNKNOWN_REPLICA', 'a replica of another agent than the one named');
        assert.equal((await refusal(h, task.id, { replica: writer })).reason, 'agent_does_not_serve');
        assert.equal((await h.task(task.id)).status, 'pending');
      });
    });
  });

  describe(`POST /tasks/{id}/fail (${store})`, () => {
    it('fails a pending task for good with the reason: in the dead-letter list, and retry brings it back', async (t) => {
      await withHarness(t, store, async (h) => {
        const task = await h.submit({ agent: 'analyst', delayMs: LATER });
        const ops = await operatorKey(h);
        const res = await h.api<TaskView>('POST', `/tasks/${task.id}/fail`, { reason: 'the input is wrong' }, as(ops));
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.status, 'failed');
        assert.deepEqual(res.body.error, { code: 'OPERATOR_FAILED', message: 'the input is wrong' });
        assert.notEqual(res.body.finishedAt, null);
        const dead = (await h.api('GET', '/tasks?status=failed')).body.items.map((x: TaskView) => x.id);
        assert.deepEqual(dead, [task.id]);
        const failed = (await h.api('GET', `/tasks/${task.id}/events`)).body.items.find((e: { type: string }) => e.type === 'task.failed');
        assert.deepEqual(failed.data, {
          attempt: 0, maxAttempts: 3, outcome: 'operator_failed', error: { message: 'the input is wrong', code: 'OPERATOR_FAILED' }, retryable: false, by: 'operator key',
        });
        const again = await h.api('POST', `/tasks/${task.id}/fail`, { reason: 'twice' });
        assert.deepEqual([again.status, again.body.error.code], [409, 'INVALID_TRANSITION']);
        const retried = await h.api<TaskView>('POST', `/tasks/${task.id}/retry`);
        assert.deepEqual([retried.status, retried.body.status, retried.body.error], [200, 'pending', null]);
        await h.engine.audit.flush();
        assert.equal((await h.api('GET', '/audit?action=task.fail')).body.items[0]?.target, task.id);
      });
    });

    it('fails a running task at once: slot back, its worker\'s next heartbeat and report say the attempt ended; retry runs it again', async (t) => {
      await withHarness(t, store, async (h) => {
        const replica = await h.register('analyst', { maxConcurrency: 1 });
        const task = await h.submit({ agent: 'analyst' });
        const [leased] = await h.lease(replica);
        assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/start`, { replicaId: replica })).status, 200);
        await h.engine.workers.flushStarts();
        const res = await h.api<TaskView>('POST', `/tasks/${task.id}/fail`, { reason: 'stuck in a loop' });
        assert.equal(res.status, 200);
        assert.equal(res.body.status, 'failed');
        const attempts = (await h.api('GET', `/tasks/${task.id}/assignment`)).body;
        assert.equal(attempts.attempts[0].status, 'failed');
        assert.deepEqual(attempts.attempts[0].error, { code: 'OPERATOR_FAILED', message: 'stuck in a loop' });
        const beat = await h.api('POST', `/assignments/${leased!.assignmentId}/heartbeat`, { replicaId: replica });
        assert.deepEqual([beat.status, beat.body.error.code, beat.body.error.details.assignmentStatus], [409, 'ASSIGNMENT_SUPERSEDED', 'failed']);
        const late = await h.api('POST', `/assignments/${leased!.assignmentId}/complete`, { replicaId: replica, result: 1 });
        assert.deepEqual([late.status, late.body.error.code], [409, 'ASSIGNMENT_SUPERSEDED']);
        const [view] = (await h.api('GET', '/agents/analyst/replicas')).body.items;
        assert.deepEqual([view.inFlight, view.failed, view.completed], [0, 0, 0], 'the slot is back, and the replica is not charged');
        assert.equal((await h.api('POST', `/tasks/${task.id}/retry`)).status, 200);
        const [again] = await h.lease(replica);
        assert.equal(again?.task.id, task.id, 'the freed slot takes it again');
        assert.equal(again?.task.attempt, 1);
      });
    });

    it('refuses: a missing, empty, blank or too long reason (400), an unknown task (404), a viewer (403)', async (t) => {
      await withHarness(t, store, async (h) => {
        const task = await h.submit({ agent: 'analyst', delayMs: LATER });
        for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x'.repeat(1025) }, { reason: 'x', extra: 1 }, undefined]) {
          const res = await h.api('POST', `/tasks/${task.id}/fail`, body);
          assert.deepEqual([res.status, res.body.error.code], [400, 'VALIDATION_FAILED'], JSON.stringify(body));
        }
        assert.equal((await h.api('POST', '/tasks/no-such-task/fail', { reason: 'x' })).body.error.code, 'TASK_NOT_FOUND');
        const viewer = await operatorKey(h, 'viewer');
        assert.equal((await h.api('POST', `/tasks/${task.id}/fail`, { reason: 'x' }, as(viewer))).status, 403);
        assert.equal((await h.task(task.id)).status, 'pending');
      });
    });
  });
}
