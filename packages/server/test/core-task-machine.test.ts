import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FlotillaError } from '../src/core/errors.ts';
import {
  decideCancel, decideCancelAck, decideComplete, decideDispatch, decideDispatchFailed, decideExpiry, decideFail,
  decideOperatorFail, decideRequeue, decideStart, OPERATOR_FAILED,
} from '../src/core/task-machine.ts';
import type { TaskRecord } from '../src/core/types.ts';

const policy = { baseDelayMs: 1000, maxDelayMs: 60_000 };
const T0 = 1_700_000_000_000;

function task(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 't1', seq: 1, status: 'pending', priority: 5, agent: 'a', capabilities: [], replica: null, site: null,
    concurrencyKey: null, attempt: 0, maxAttempts: 3, timeoutMs: 10_000, runAt: T0, assignmentId: null,
    cancelRequestedAt: null, type: 'x', input: null, result: null, error: null, createdAt: T0, updatedAt: T0,
    finishedAt: null, idempotencyKey: null, correlation: {}, traceparent: null, parentId: null, createdBy: null,
    rootId: 't1', depth: 1, ownerId: null, tools: [], waitingFor: null, inputRequest: null, resumed: null,
    slaDeadline: null, slaState: 'none', slaCheckAt: null, ...over,
  };
}

/** A task after dispatch, with its live assignment. */
function dispatched(over: Partial<TaskRecord> = {}) {
  const t = decideDispatch({ task: task(over), replica: { id: 'r1', agent: 'a' }, assignmentId: 'as1', now: T0, leaseMs: 30_000, concurrencyLimit: null });
  const assignment = t.assignmentInsert!;
  return { task: task({ ...over, status: 'dispatched', assignmentId: 'as1', attempt: assignment.attempt }), assignment };
}

function expectCode(fn: () => unknown, code: string) {
  assert.throws(fn, (err: unknown) => err instanceof FlotillaError && err.code === code);
}

describe('task state machine', () => {
  it('dispatch: pending → dispatched, a new attempt with lease and deadline, a slot acquired', () => {
    const t = decideDispatch({ task: task({ concurrencyKey: 'host:1' }), replica: { id: 'r1', agent: 'a' }, assignmentId: 'as1', now: T0, leaseMs: 30_000, concurrencyLimit: 2 });
    assert.equal(t.fromStatus, 'pending');
    assert.equal(t.expectAssignmentId, null);
    assert.deepEqual(t.set, { status: 'dispatched', assignmentId: 'as1', attempt: 1, updatedAt: T0 });
    assert.equal(t.assignmentInsert!.leaseExpiresAt, T0 + 30_000);
    assert.equal(t.assignmentInsert!.deadlineAt, T0 + 10_000);
    assert.deepEqual(t.slotAcquire, { replicaId: 'r1', concurrencyKey: 'host:1', concurrencyLimit: 2, at: T0 });
    assert.equal(t.events[0]!.type, 'task.dispatched');
  });

  it("an operator's dispatch (assign) is the same dispatch, durable, naming who assigned it", () => {
    const plain = decideDispatch({ task: task(), replica: { id: 'r1', agent: 'a' }, assignmentId: 'as1', now: T0, leaseMs: 30_000, concurrencyLimit: null });
    const t = decideDispatch({ task: task(), replica: { id: 'r1', agent: 'a' }, assignmentId: 'as1', now: T0, leaseMs: 30_000, concurrencyLimit: null, assignedBy: 'ops' });
    assert.equal(plain.kind, 'dispatch');
    assert.equal(plain.durable, false);
    assert.equal(t.kind, 'assign');
    assert.equal(t.durable, true);
    assert.deepEqual({ ...t, kind: 'dispatch', durable: false, events: plain.events }, plain);
    assert.deepEqual(t.events[0]!.data, { attempt: 1, maxAttempts: 3, assignedBy: 'ops' });
  });

  it('dispatch refuses a task that is not pending', () => {
    expectCode(() => decideDispatch({ task: task({ status: 'running' }), replica: { id: 'r1', agent: 'a' }, assignmentId: 'x', now: T0, leaseMs: 1, concurrencyLimit: null }), 'INVALID_TRANSITION');
  });

  it('start: dispatched → running, timeout counted from the start; repeating it is a no-op', () => {
    const { task: t, assignment } = dispatched();
    const tr = decideStart({ task: t, assignment, now: T0 + 500, leaseMs: 30_000 })!;
    assert.equal(tr.set.status, 'running');
    assert.equal(tr.assignmentUpdate!.set.deadlineAt, T0 + 500 + 10_000);
    assert.equal(decideStart({ task: { ...t, status: 'running' }, assignment: { ...assignment, status: 'running' }, now: T0, leaseMs: 1 }), null);
  });

  it('complete: records the result once and releases the slot as a success', () => {
    const { task: t, assignment } = dispatched();
    const tr = decideComplete({ task: t, assignment, result: { ok: 1 }, now: T0 + 100 });
    assert.equal(tr.set.status, 'completed');
    assert.deepEqual(tr.set.result, { ok: 1 });
    assert.equal(tr.set.assignmentId, null);
    assert.deepEqual(tr.slotRelease, { replicaId: 'r1', concurrencyKey: null, outcome: 'completed' });
    assert.deepEqual(tr.assignmentUpdate!.fromStatuses, ['dispatched', 'running']);
  });

  it('a completion for a superseded assignment is rejected', () => {
    const { task: t, assignment } = dispatched();
    expectCode(() => decideComplete({ task: { ...t, assignmentId: 'other' }, assignment, result: 1, now: T0 }), 'ASSIGNMENT_SUPERSEDED');
    expectCode(() => decideComplete({ task: t, assignment: { ...assignment, status: 'completed' }, result: 1, now: T0 }), 'ASSIGNMENT_SUPERSEDED');
  });

  it('retryable failure with attempts left → pending after a backoff', () => {
    const { task: t, assignment } = dispatched();
    const tr = decideFail({ task: t, assignment, error: { message: 'boom' }, retryable: true, outcome: 'failed', now: T0, policy, random: 0 });
    assert.equal(tr.set.status, 'pending');
    assert.equal(tr.set.runAt, T0 + 500); // attempt 1: base 1000, equal jitter with random 0 → 500
    assert.equal(tr.events[0]!.type, 'task.retrying');
    assert.equal(tr.assignmentUpdate!.set.status, 'failed');
    assert.equal(tr.slotRelease!.outcome, 'failed');
  });

  it('non-retryable failure → failed at once, even with attempts left', () => {
    const { task: t, assignment } = dispatched();
    const tr = decideFail({ task: t, assignment, error: { message: 'bad input' }, retryable: false, outcome: 'failed', now: T0, policy, random: 0.5 });
    assert.equal(tr.set.status, 'failed');
    assert.equal(tr.set.finishedAt, T0);
    assert.equal(tr.events[0]!.type, 'task.failed');
  });

  it('the last attempt failing → failed (dead letter)', () => {
    const { task: t, assignment } = dispatched({ attempt: 2 });
    assert.equal(assignment.attempt, 3);
    const tr = decideFail({ task: t, assignment, error: { message: 'x' }, retryable: true, outcome: 'failed', now: T0, policy, random: 0.5 });
    assert.equal(tr.set.status, 'failed');
  });

  it('dispatch failure: attempt restored, slot released without an outcome, task pending now', () => {
    const { task: t, assignment } = dispatched();
    const tr = decideDispatchFailed({ task: t, assignment, now: T0 + 1, reason: 'gone' });
    assert.equal(tr.set.status, 'pending');
    assert.equal(tr.set.attempt, 0);
    assert.equal(tr.set.runAt, T0 + 1);
    assert.deepEqual(tr.slotRelease, { replicaId: 'r1', concurrencyKey: null, outcome: null });
    assert.equal(tr.assignmentUpdate!.set.error!.code, 'DISPATCH_FAILED');
  });

  it('a dispatch that failed after a cancel request ends the task cancelled, not pending', () => {
    const { task: t, assignment } = dispatched({ cancelRequestedAt: T0 });
    const tr = decideDispatchFailed({ task: t, assignment, now: T0 + 1, reason: 'gone' });
    assert.equal(tr.set.status, 'cancelled');
    assert.equal(tr.assignmentUpdate!.set.status, 'cancelled');
  });

  it('cancel: pending ends at once; live is requested; terminal is refused; cancelled is a no-op', () => {
    const p = decideCancel({ task: task(), assignment: null, now: T0 })!;
    assert.equal(p.set.status, 'cancelled');
    const { task: t, assignment } = dispatched();
    const live = decideCancel({ task: t, assignment, now: T0 })!;
    assert.equal(live.set.status, undefined);
    assert.equal(live.set.cancelRequestedAt, T0);
    assert.equal(live.events[0]!.type, 'task.cancel_requested');
    assert.equal(decideCancel({ task: { ...t, cancelRequestedAt: T0 }, assignment, now: T0 }), null);
    assert.equal(decideCancel({ task: task({ status: 'cancelled' }), assignment: null, now: T0 }), null);
    expectCode(() => decideCancel({ task: task({ status: 'completed' }), assignment: null, now: T0 }), 'INVALID_TRANSITION');
  });

  it('a cancelled live task ends cancelled on ack, and a failure after the request ends it cancelled too', () => {
    const { task: t, assignment } = dispatched({ cancelRequestedAt: T0 });
    const ack = decideCancelAck({ task: t, assignment, now: T0 + 1, reason: 'acknowledged' });
    assert.equal(ack.set.status, 'cancelled');
    assert.equal(ack.assignmentUpdate!.set.status, 'cancelled');
    const fail = decideFail({ task: t, assignment, error: { message: 'aborted' }, retryable: true, outcome: 'failed', now: T0, policy, random: 0 });
    assert.equal(fail.set.status, 'cancelled');
  });

  it('expiry: grace over → cancelled; deadline → timed_out; lease lapsed → lost; otherwise nothing', () => {
    const { task: t, assignment } = dispatched();
    assert.equal(decideExpiry({ task: t, assignment, now: T0 + 1, cancelGraceMs: 100, policy, random: 0 }), null);
    const timedOut = decideExpiry({ task: t, assignment, now: T0 + 10_000, cancelGraceMs: 100, policy, random: 0 })!;
    assert.equal(timedOut.assignmentUpdate!.set.status, 'timed_out');
    assert.equal(timedOut.set.status, 'pending');
    const lost = decideExpiry({ task: { ...t, timeoutMs: 1e9 }, assignment: { ...assignment, deadlineAt: T0 + 1e9 }, now: T0 + 30_000, cancelGraceMs: 100, policy, random: 0 })!;
    assert.equal(lost.assignmentUpdate!.set.status, 'lost');
    assert.equal(lost.assignmentUpdate!.set.error!.code, 'LEASE_EXPIRED');
    const grace = decideExpiry({ task: { ...t, cancelRequestedAt: T0 }, assignment, now: T0 + 100, cancelGraceMs: 100, policy, random: 0 })!;
    assert.equal(grace.set.status, 'cancelled');
  });

  it('requeue: only failed tasks, with a fresh attempt budget', () => {
    const tr = decideRequeue({ task: task({ status: 'failed', attempt: 3, error: { message: 'x' } }), now: T0 });
    assert.equal(tr.set.status, 'pending');
    assert.equal(tr.set.attempt, 0);
    assert.equal(tr.set.error, null);
    expectCode(() => decideRequeue({ task: task({ status: 'completed' }), now: T0 }), 'INVALID_TRANSITION');
  });

  it('operator fail: a task without a live attempt fails at once, for good, whatever attempts it has left', () => {
    const tr = decideOperatorFail({ task: task({ attempt: 1 }), assignment: null, reason: 'bad input', by: 'ops', now: T0 });
    assert.equal(tr.kind, 'operator_fail');
    assert.equal(tr.durable, true);
    assert.equal(tr.fromStatus, 'pending');
    assert.equal(tr.expectAssignmentId, null);
    assert.deepEqual(tr.set, { status: 'failed', error: { code: OPERATOR_FAILED, message: 'bad input' }, finishedAt: T0, updatedAt: T0 });
    assert.equal(tr.slotRelease, undefined);
    assert.equal(tr.assignmentUpdate, undefined);
    assert.equal(tr.events[0]!.type, 'task.failed');
    assert.deepEqual(tr.events[0]!.data, {
      attempt: 1, maxAttempts: 3, outcome: 'operator_failed', error: { message: 'bad input', code: OPERATOR_FAILED }, retryable: false, by: 'ops',
    });
  });

  it('operator fail: a live attempt ends failed with the reason and gives its slot back, not charged to the replica', () => {
    const { task: t, assignment } = dispatched({ concurrencyKey: 'k' });
    const tr = decideOperatorFail({ task: { ...t, status: 'running' }, assignment: { ...assignment, status: 'running' }, reason: 'stuck', by: 'ops', now: T0 + 5 });
    assert.equal(tr.fromStatus, 'running');
    assert.equal(tr.expectAssignmentId, 'as1');
    assert.equal(tr.set.status, 'failed');
    assert.equal(tr.set.assignmentId, null);
    assert.deepEqual(tr.assignmentUpdate, { id: 'as1', fromStatuses: ['dispatched', 'running'], set: { status: 'failed', finishedAt: T0 + 5, error: { code: OPERATOR_FAILED, message: 'stuck' }, counted: false } });
    assert.deepEqual(tr.slotRelease, { replicaId: 'r1', concurrencyKey: 'k', outcome: null });
    assert.equal(tr.events[0]!.assignmentId, 'as1');
    assert.equal(tr.events[0]!.replicaId, 'r1');
    assert.equal(tr.wakesDispatcher, true);
  });

  it('operator fail: a terminal task is refused', () => {
    for (const status of ['completed', 'failed', 'cancelled'] as const) {
      expectCode(() => decideOperatorFail({ task: task({ status }), assignment: null, reason: 'x', by: 'ops', now: T0 }), 'INVALID_TRANSITION');
    }
  });
});
