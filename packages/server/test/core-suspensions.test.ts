// The state machine's suspensions (pure): waiting for children, asking for input, and how a
// suspended task comes back or ends. Stores apply these in the conformance suite.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FlotillaError } from '../src/core/errors.ts';
import { answerProblems, checkInputRequest } from '../src/core/input-schema.ts';
import {
  decideAnswer, decideAskInput, decideCancel, decideDispatch, decideInputTimeout, decideResume, decideWait, MAX_AWAITED_CHILDREN,
} from '../src/core/task-machine.ts';
import { TRANSITION_TRAITS } from '../src/core/transition-kinds.ts';
import type { TaskRecord } from '../src/core/types.ts';

const T0 = 1_700_000_000_000;

function task(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 'p', seq: 1, status: 'pending', priority: 5, agent: 'a', capabilities: [], replica: null, site: null,
    concurrencyKey: 'host:1', attempt: 0, maxAttempts: 1, timeoutMs: 10_000, runAt: T0, assignmentId: null,
    cancelRequestedAt: null, type: 'x', input: null, result: null, error: null, createdAt: T0, updatedAt: T0,
    finishedAt: null, idempotencyKey: null, correlation: {}, traceparent: null, parentId: 'gp', createdBy: null,
    rootId: 'gp', depth: 2, ownerId: null, tools: [], waitingFor: null, inputRequest: null, resumed: null,
    slaDeadline: null, slaState: 'none', slaCheckAt: null, ...over,
  };
}

function running(over: Partial<TaskRecord> = {}) {
  const t = decideDispatch({ task: task(over), replica: { id: 'r1', agent: 'a' }, assignmentId: 'as1', now: T0, leaseMs: 30_000, concurrencyLimit: 1 });
  return { task: task({ ...over, status: 'running', assignmentId: 'as1', attempt: 1 }), assignment: { ...t.assignmentInsert!, status: 'running' as const, startedAt: T0 } };
}

const child = (id: string, over: Partial<TaskRecord> = {}) => task({ id, parentId: 'p', rootId: 'gp', depth: 3, ...over });

function expectCode(fn: () => unknown, code: string) {
  assert.throws(fn, (err: unknown) => err instanceof FlotillaError && err.code === code);
}

describe('suspensions in the state machine', () => {
  it('wait: running → waiting, the slot freed, the attempt suspended and given back', () => {
    const { task: t, assignment } = running();
    const tr = decideWait({ task: t, assignment, children: [child('c1'), child('c2')], childIds: ['c1', 'c2'], now: T0 + 5 });
    assert.equal(tr.kind, 'wait');
    assert.deepEqual(tr.set, { status: 'waiting', waitingFor: ['c1', 'c2'], assignmentId: null, attempt: 0, updatedAt: T0 + 5 });
    assert.deepEqual(tr.assignmentUpdate!.set, { status: 'suspended', finishedAt: T0 + 5, counted: false });
    assert.deepEqual(tr.slotRelease, { replicaId: 'r1', concurrencyKey: 'host:1', outcome: null });
    assert.deepEqual([tr.wakesDispatcher, tr.queuesTask, tr.countsAsAttempt, tr.durable, tr.endsTask], [true, false, false, true, false]);
    assert.equal(tr.events[0]!.type, 'task.waiting');
  });

  it('wait refuses no children, too many, and tasks that are not its children', () => {
    const { task: t, assignment } = running();
    expectCode(() => decideWait({ task: t, assignment, children: [], childIds: [], now: T0 }), 'VALIDATION_FAILED');
    const many = Array.from({ length: MAX_AWAITED_CHILDREN + 1 }, (_, i) => `c${i}`);
    expectCode(() => decideWait({ task: t, assignment, children: many.map((id) => child(id)), childIds: many, now: T0 }), 'VALIDATION_FAILED');
    expectCode(() => decideWait({ task: t, assignment, children: [child('c1'), task({ id: 'x', parentId: 'other' })], childIds: ['c1', 'x'], now: T0 }), 'VALIDATION_FAILED');
    expectCode(() => decideWait({ task: t, assignment, children: [child('c1')], childIds: ['c1', 'missing'], now: T0 }), 'VALIDATION_FAILED');
    // A report for an attempt that is over is superseded, as every report is.
    expectCode(() => decideWait({ task: { ...t, assignmentId: 'other' }, assignment, children: [child('c1')], childIds: ['c1'], now: T0 }), 'ASSIGNMENT_SUPERSEDED');
  });

  it('a task whose cancellation was requested ends cancelled instead of waiting or asking', () => {
    const { task: t, assignment } = running({ cancelRequestedAt: T0 + 1 });
    assert.equal(decideWait({ task: t, assignment, children: [child('c1')], childIds: ['c1'], now: T0 + 2 }).kind, 'cancel_ack');
    assert.equal(decideAskInput({ task: t, assignment, prompt: 'q', schema: null, timeoutMs: null, now: T0 + 2 }).kind, 'cancel_ack');
  });

  it('resume: only once every awaited child ended; outcomes in the order named, big results left out', () => {
    const waiting = task({ status: 'waiting', waitingFor: ['c1', 'c2', 'gone'] });
    assert.equal(decideResume({ task: waiting, children: [child('c1', { status: 'completed' }), child('c2', { status: 'running' })], now: T0, maxResultBytes: 100 }), null);
    assert.equal(decideResume({ task: { ...waiting, status: 'pending', waitingFor: null }, children: [], now: T0, maxResultBytes: 100 }), null);
    const tr = decideResume({
      task: waiting,
      children: [child('c2', { status: 'failed', error: { code: 'E', message: 'no' } }), child('c1', { status: 'completed', result: 'x'.repeat(200) })],
      now: T0 + 9, maxResultBytes: 100,
    })!;
    assert.equal(tr.kind, 'resume');
    assert.deepEqual(tr.set.resumed, { reason: 'children', children: [
      { id: 'c1', status: 'completed', result: null, error: null, resultOmitted: true },
      { id: 'c2', status: 'failed', result: null, error: { code: 'E', message: 'no' } },
      { id: 'gone', status: 'cancelled', result: null, error: { code: 'CHILD_GONE', message: 'child task gone no longer exists' } },
    ] });
    assert.deepEqual([tr.set.status, tr.set.waitingFor, tr.set.runAt, tr.queuesTask, tr.durable], ['pending', null, T0 + 9, true, false]);
  });

  it('ask, answer, time out; cancel clears what a suspended task kept', () => {
    const { task: t, assignment } = running();
    const ask = decideAskInput({ task: t, assignment, prompt: 'region?', schema: { type: 'string' }, timeoutMs: 1_000, now: T0 });
    assert.deepEqual(ask.set, {
      status: 'input_required', inputRequest: { prompt: 'region?', schema: { type: 'string' }, requestedAt: T0, expiresAt: T0 + 1_000 },
      inputExpiresAt: T0 + 1_000, assignmentId: null, attempt: 0, updatedAt: T0,
    });
    const asked = task({ status: 'input_required', inputRequest: ask.set.inputRequest! });
    const answer = decideAnswer({ task: asked, input: 'eu', now: T0 + 5, by: 'k1' });
    assert.deepEqual(answer.set.resumed, { reason: 'input', prompt: 'region?', input: 'eu' });
    assert.deepEqual([answer.set.status, answer.set.inputRequest, answer.set.inputExpiresAt, answer.durable], ['pending', null, null, true]);
    expectCode(() => decideAnswer({ task: task(), input: 'eu', now: T0, by: null }), 'INVALID_TRANSITION');
    assert.equal(decideInputTimeout({ task: asked, now: T0 + 999 }), null);
    const timeout = decideInputTimeout({ task: asked, now: T0 + 1_000 })!;
    assert.deepEqual([timeout.set.status, timeout.set.error?.code, timeout.endsTask, timeout.parentId], ['failed', 'INPUT_TIMEOUT', true, 'gp']);
    assert.equal(decideInputTimeout({ task: task({ status: 'input_required', inputRequest: { ...ask.set.inputRequest!, expiresAt: null } }), now: T0 + 10 ** 9 }), null);
    const cancelAsked = decideCancel({ task: asked, assignment: null, now: T0 })!;
    assert.deepEqual([cancelAsked.kind, cancelAsked.fromStatus, cancelAsked.set.inputRequest, cancelAsked.set.inputExpiresAt], ['cancel', 'input_required', null, null]);
    const cancelWaiting = decideCancel({ task: task({ status: 'waiting', waitingFor: ['c1'] }), assignment: null, now: T0 })!;
    assert.deepEqual([cancelWaiting.set.status, cancelWaiting.set.waitingFor], ['cancelled', null]);
  });

  it('every transition that ends a task says so, with the parent to look at', () => {
    const ending = Object.entries(TRANSITION_TRAITS).filter(([, t]) => t.endsTask).map(([k]) => k).sort();
    assert.deepEqual(ending, ['cancel', 'cancel_ack', 'complete', 'dependency_failed', 'fail', 'input_timeout', 'operator_fail']);
  });
});

describe('input requests', () => {
  it('a prompt is needed, a schema must compile, a timeout must be sane', () => {
    assert.doesNotThrow(() => checkInputRequest({ prompt: 'ok?', schema: null, timeoutMs: null }));
    expectCode(() => checkInputRequest({ prompt: '  ', schema: null, timeoutMs: null }), 'VALIDATION_FAILED');
    expectCode(() => checkInputRequest({ prompt: 'x', schema: { type: 'no-such-type' }, timeoutMs: null }), 'VALIDATION_FAILED');
    expectCode(() => checkInputRequest({ prompt: 'x', schema: 'string', timeoutMs: null }), 'VALIDATION_FAILED');
    expectCode(() => checkInputRequest({ prompt: 'x', schema: { $ref: 'https://example.com/s.json' }, timeoutMs: null }), 'VALIDATION_FAILED');
    expectCode(() => checkInputRequest({ prompt: 'x', schema: null, timeoutMs: 0 }), 'VALIDATION_FAILED');
  });

  it('an answer is checked against the schema, with the reasons', () => {
    const schema = { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } }, additionalProperties: false };
    assert.equal(answerProblems(schema, { ok: true }), null);
    assert.equal(answerProblems(null, 'anything'), null);
    const problems = answerProblems(schema, { ok: 'yes', extra: 1 })!;
    assert.ok(problems.some((p) => p.path === '/ok'), JSON.stringify(problems));
    assert.ok(problems.length >= 2);
  });
});
