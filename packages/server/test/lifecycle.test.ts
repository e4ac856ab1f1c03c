// The task lifecycle through the HTTP worker protocol, in process, with a controlled clock.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from './helpers/harness.ts';
import { pruneExpired } from '../src/engine/retention.ts';

let h: Harness;
beforeEach(async () => {
  h = await harness({ config: { leaseMs: 30_000, replicaTtlMs: 60_000, cancelGraceMs: 5_000, retry: { baseDelayMs: 1_000, maxDelayMs: 10_000 } } });
  await h.agent({ name: 'analyst', capabilities: ['triage', 'nlp'], maxConcurrency: 2 });
});
afterEach(() => h.close());

const types = async (taskId: string) => (await h.api('GET', `/tasks/${taskId}/events`)).body.items.map((e: { type: string }) => e.type);

describe('lifecycle', () => {
  it('pending → dispatched → running → completed, with progress, events and slot accounting', async () => {
    const replica = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst', input: { alert: 42 } });
    assert.equal(task.status, 'pending');
    const [leased] = await h.lease(replica);
    assert.ok(leased);
    assert.equal(leased.task.id, task.id);
    assert.deepEqual(leased.task.input, { alert: 42 });
    assert.equal((await h.task(task.id)).status, 'dispatched');

    assert.equal((await h.api('POST', `/assignments/${leased.assignmentId}/start`, { replicaId: replica })).status, 200);
    // Answered once checked; written up to 10 ms later, unless a final report comes first.
    assert.equal((await h.task(task.id)).status, 'dispatched');
    await h.engine.workers.flushStarts();
    assert.equal((await h.task(task.id)).status, 'running');
    const messageOnly = await h.api('POST', `/assignments/${leased.assignmentId}/heartbeat`, { replicaId: replica, message: 'no percent' });
    assert.equal(messageOnly.status, 400);
    const progress = await h.api('POST', `/assignments/${leased.assignmentId}/progress`, { replicaId: replica, percent: 40, message: 'enriching' });
    assert.equal(progress.status, 200);
    assert.equal(progress.body.cancelRequested, false);
    const mid = await h.task(task.id);
    assert.equal(mid.assignment!.progress!.percent, 40);
    assert.equal((await h.api('GET', '/agents/analyst/replicas')).body.items[0].inFlight, 1);

    assert.equal((await h.api('POST', `/assignments/${leased.assignmentId}/complete`, { replicaId: replica, result: { verdict: 'benign' } })).status, 200);
    const done = await h.task(task.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { verdict: 'benign' });
    assert.equal(done.assignment!.status, 'completed');
    const rep = (await h.api('GET', '/agents/analyst/replicas')).body.items[0];
    assert.equal(rep.inFlight, 0);
    assert.equal(rep.completed, 1);
    assert.deepEqual(await types(task.id), ['task.created', 'task.dispatched', 'task.started', 'task.progress', 'task.completed']);
  });

  it('a waiting worker gets a task submitted after it started waiting (long-poll, no polling)', async () => {
    const replica = await h.register('analyst');
    const waiting = h.lease(replica, 1, 10_000);
    await new Promise((r) => setTimeout(r, 20));
    const task = await h.submit({ agent: 'analyst' });
    const started = Date.now();
    const [leased] = await waiting;
    assert.equal(leased!.task.id, task.id);
    assert.ok(Date.now() - started < 2_000);
  });

  it('higher priority first; FIFO within a priority', async () => {
    const replica = await h.register('analyst', { maxConcurrency: 10 });
    const low = await h.submit({ agent: 'analyst', priority: 1 });
    const highA = await h.submit({ agent: 'analyst', priority: 9 });
    const mid = await h.submit({ agent: 'analyst' });
    const highB = await h.submit({ agent: 'analyst', priority: 9 });
    const leased = await h.lease(replica, 10);
    assert.deepEqual(leased.map((l) => l.task.id), [highA.id, highB.id, mid.id, low.id]);
    assert.equal(mid.priority, 5);
  });

  it('a replica never holds more than its maxConcurrency', async () => {
    const replica = await h.register('analyst', { maxConcurrency: 2 });
    for (let i = 0; i < 4; i++) await h.submit({ agent: 'analyst' });
    assert.equal((await h.lease(replica, 5)).length, 2);
    assert.equal((await h.lease(replica, 5)).length, 0);
  });

  it('retryable failure backs off, then retries; non-retryable fails for good; an operator can requeue', async () => {
    const replica = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst' });
    const [first] = await h.lease(replica);
    await h.api('POST', `/assignments/${first!.assignmentId}/fail`, { replicaId: replica, error: { message: 'model overloaded', code: 'UPSTREAM_503' } });
    const backingOff = await h.task(task.id);
    assert.equal(backingOff.status, 'pending');
    assert.equal(backingOff.error!.code, 'UPSTREAM_503');
    assert.ok(Date.parse(backingOff.runAt) > h.now());
    assert.equal((await h.lease(replica)).length, 0, 'not before the backoff');
    h.advance(1_001);
    const [second] = await h.lease(replica);
    assert.equal(second!.task.attempt, 2);
    await h.api('POST', `/assignments/${second!.assignmentId}/fail`, { replicaId: replica, error: { message: 'invalid input' }, retryable: false });
    const failed = await h.task(task.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.attempt, 2);
    assert.ok(failed.finishedAt);
    assert.deepEqual((await h.api('GET', '/tasks?status=failed')).body.items.map((t: { id: string }) => t.id), [task.id]);

    const requeued = await h.api('POST', `/tasks/${task.id}/retry`);
    assert.equal(requeued.status, 200);
    assert.equal(requeued.body.status, 'pending');
    assert.equal(requeued.body.attempt, 0);
    assert.equal((await h.api('POST', `/tasks/${task.id}/retry`)).body.error.code, 'INVALID_TRANSITION');
    const [third] = await h.lease(replica);
    assert.equal(third!.task.attempt, 1);
    assert.ok((await types(task.id)).includes('task.requeued'));
  });

  it('attempts are exhausted after maxAttempts (agent default, then server default 3)', async () => {
    await h.agent({ name: 'flaky', maxAttempts: 2 });
    const t1 = await h.submit({ agent: 'flaky' });
    assert.equal(t1.maxAttempts, 2);
    assert.equal((await h.submit({ agent: 'analyst' })).maxAttempts, 3);
    assert.equal((await h.submit({ agent: 'analyst', maxAttempts: 7 })).maxAttempts, 7);
    const replica = await h.register('flaky');
    for (let i = 0; i < 2; i++) {
      h.advance(20_000);
      const [l] = await h.lease(replica);
      assert.ok(l, `attempt ${i + 1} leased`);
      await h.api('POST', `/assignments/${l.assignmentId}/fail`, { replicaId: replica, error: { message: 'nope' } });
    }
    assert.equal((await h.task(t1.id)).status, 'failed');
  });

  it('an attempt past its timeout is timed_out and retried; its late completion is rejected with 409', async () => {
    const replica = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst', timeoutMs: 5_000 });
    const [l] = await h.lease(replica);
    await h.api('POST', `/assignments/${l!.assignmentId}/start`, { replicaId: replica });
    h.advance(4_000);
    assert.equal((await h.engine.reaper.sweep()).attempts, 0);
    h.advance(1_500);
    assert.equal((await h.engine.reaper.sweep()).attempts, 1);
    const after = await h.api('GET', `/tasks/${task.id}/assignment`);
    assert.equal(after.body.taskStatus, 'pending');
    assert.equal(after.body.attempts[0].status, 'timed_out');
    const late = await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: replica, result: 'late' });
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'ASSIGNMENT_SUPERSEDED');
    assert.equal((await h.task(task.id)).result, null);
  });

  it('heartbeats keep the lease; without them the attempt is lost and the task runs elsewhere', async () => {
    const r1 = await h.register('analyst');
    const r2 = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst' });
    const [l] = await h.lease(r1);
    h.advance(20_000);
    await h.api('POST', `/assignments/${l!.assignmentId}/heartbeat`, { replicaId: r1 });
    h.advance(20_000);
    await h.api('POST', `/workers/${r2}/heartbeat`);
    assert.equal((await h.engine.reaper.sweep()).attempts, 0, 'renewed lease holds');
    h.advance(11_000);
    await h.api('POST', `/workers/${r2}/heartbeat`);
    assert.equal((await h.engine.reaper.sweep()).attempts, 1);
    const lost = await h.api('GET', `/tasks/${task.id}/assignment`);
    assert.equal(lost.body.attempts[0].status, 'lost');
    assert.equal(lost.body.attempts[0].error.code, 'LEASE_EXPIRED');
    h.advance(2_000);
    const [again] = await h.lease(r2);
    assert.equal(again!.task.id, task.id);
    await h.api('POST', `/assignments/${again!.assignmentId}/complete`, { replicaId: r2, result: 2 });
    const dup = await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: r1, result: 1 });
    assert.equal(dup.status, 409);
    assert.equal((await h.task(task.id)).result, 2);
  });

  it('a duplicate completion is rejected and the first result stands', async () => {
    const replica = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst' });
    const [l] = await h.lease(replica);
    const body = { replicaId: replica, result: { n: 1 } };
    const [a, b] = await Promise.all([
      h.api('POST', `/assignments/${l!.assignmentId}/complete`, body),
      h.api('POST', `/assignments/${l!.assignmentId}/complete`, { ...body, result: { n: 2 } }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409]);
    const refused = a.status === 409 ? a : b;
    assert.equal(refused.body.error.code, 'ASSIGNMENT_SUPERSEDED');
    assert.equal(refused.body.error.details.assignmentStatus, 'completed', 'a retrying worker can tell its attempt already ended completed');
    const winner = a.status === 200 ? { n: 1 } : { n: 2 };
    assert.deepEqual((await h.task(task.id)).result, winner);
    const completed = (await types(task.id)).filter((t: string) => t === 'task.completed');
    assert.equal(completed.length, 1);
  });

  it('reports from another replica are refused', async () => {
    const r1 = await h.register('analyst');
    const r2 = await h.register('analyst');
    await h.submit({ agent: 'analyst' });
    const [l] = await h.lease(r1);
    const res = await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: r2, result: 1 });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'REPLICA_MISMATCH');
  });

  it('cancel: pending ends at once; running is told, and ends on acknowledgement or after the grace period', async () => {
    const pending = await h.submit({ agent: 'analyst' });
    const c = await h.api('POST', `/tasks/${pending.id}/cancel`, { reason: 'operator' });
    assert.equal(c.body.status, 'cancelled');
    assert.equal((await h.api('POST', `/tasks/${pending.id}/cancel`)).status, 200, 'cancelling again is harmless');

    const replica = await h.register('analyst');
    const acked = await h.submit({ agent: 'analyst' });
    const graced = await h.submit({ agent: 'analyst' });
    const leased = await h.lease(replica, 2);
    const byTask = new Map(leased.map((l) => [l.task.id, l.assignmentId]));
    for (const id of [acked.id, graced.id]) {
      const r = await h.api('POST', `/tasks/${id}/cancel`);
      assert.equal(r.body.status, 'dispatched');
      assert.ok(r.body.cancelRequestedAt);
    }
    const hb = await h.api('POST', `/assignments/${byTask.get(acked.id)}/heartbeat`, { replicaId: replica });
    assert.equal(hb.body.cancelRequested, true);
    await h.api('POST', `/assignments/${byTask.get(acked.id)}/cancelled`, { replicaId: replica });
    assert.equal((await h.task(acked.id)).status, 'cancelled');

    h.advance(5_001);
    await h.engine.reaper.sweep();
    const g = await h.api('GET', `/tasks/${graced.id}/assignment`);
    assert.equal(g.body.taskStatus, 'cancelled');
    assert.equal(g.body.attempts[0].status, 'cancelled');
    assert.equal((await h.api('GET', '/agents/analyst/replicas')).body.items[0].inFlight, 0);

    const done = await h.submit({ agent: 'analyst' });
    const [l] = await h.lease(replica);
    await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: replica, result: null });
    const refused = await h.api('POST', `/tasks/${done.id}/cancel`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'INVALID_TRANSITION');
  });

  it('a dispatch that never reached its replica is marked failed and leaves in-flight unchanged', async () => {
    const replica = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst' });
    const before = (await h.store.replicaGet({ id: replica }))!.inFlight;
    let offered = 0;
    h.engine.dispatcher.addWaiter({ replicaId: replica, want: 1, deliver: (tasks) => { offered += tasks.length; return tasks.length === 0; } });
    await h.engine.dispatcher.idle();
    await h.engine.dispatcher.idle();
    assert.equal(offered, 1);
    const after = await h.api('GET', `/tasks/${task.id}/assignment`);
    assert.equal(after.body.taskStatus, 'pending');
    assert.equal(after.body.attempts.length, 1);
    assert.equal(after.body.attempts[0].status, 'failed');
    assert.equal(after.body.attempts[0].error.code, 'DISPATCH_FAILED');
    assert.equal((await h.store.replicaGet({ id: replica }))!.inFlight, before);
    assert.equal((await h.task(task.id)).attempt, 0, 'the undelivered attempt does not count');
    const [l] = await h.lease(replica);
    assert.equal(l!.task.attempt, 1);
  });

  it('a vanished replica is lost with its attempts; a deregistered one too', async () => {
    const r1 = await h.register('analyst');
    const t1 = await h.submit({ agent: 'analyst' });
    await h.lease(r1);
    h.advance(61_000);
    const swept = await h.engine.reaper.sweep();
    assert.equal(swept.replicas, 1);
    assert.equal((await h.api('GET', '/agents/analyst/replicas')).body.items[0].status, 'lost');
    const a = await h.api('GET', `/tasks/${t1.id}/assignment`);
    assert.equal(a.body.taskStatus, 'pending');
    assert.ok(['lost'].includes(a.body.attempts[0].status));
    const relost = await h.api('POST', `/workers/${r1}/lease`, { max: 1, waitMs: 0 });
    assert.equal(relost.body.error.code, 'REPLICA_NOT_LIVE');

    const r2 = await h.register('analyst');
    h.advance(5_000);
    const [l] = await h.lease(r2);
    assert.equal(l!.task.id, t1.id);
    assert.equal((await h.api('POST', `/workers/${r2}/deregister`)).status, 204);
    const b = await h.api('GET', `/tasks/${t1.id}/assignment`);
    assert.equal(b.body.taskStatus, 'pending');
    assert.equal(b.body.attempts[1].error.code, 'REPLICA_LOST');
  });

  it('concurrency keys are never exceeded across replicas', async () => {
    await h.agent({ name: 'llm', concurrencyLimits: { 'host:vllm-1': 1 }, maxConcurrency: 4 });
    const r1 = await h.register('llm');
    const r2 = await h.register('llm');
    const a = await h.submit({ agent: 'llm', concurrencyKey: 'host:vllm-1' });
    await h.submit({ agent: 'llm', concurrencyKey: 'host:vllm-1' });
    const free = await h.submit({ agent: 'llm', concurrencyKey: 'host:other' });
    const got = [...await h.lease(r1, 4), ...await h.lease(r2, 4)];
    assert.deepEqual(got.map((l) => l.task.id).sort(), [a.id, free.id].sort());
    const held = got.find((l) => l.task.id === a.id)!;
    const holder = (await h.api('GET', `/tasks/${a.id}`)).body.assignment.replicaId;
    await h.api('POST', `/assignments/${held.assignmentId}/complete`, { replicaId: holder, result: 1 });
    assert.equal((await h.lease(r1, 4)).length + (await h.lease(r2, 4)).length, 1);
  });

  it('manual assignment: a pinned replica is hard, a site is soft', async () => {
    const east = await h.register('analyst', { site: 'eu-west' });
    const west = await h.register('analyst', { site: 'us-east' });
    const pinned = await h.api('POST', '/agents/analyst/assign', { replica: west, input: { case: 1 } });
    assert.equal(pinned.status, 201);
    assert.equal((await h.lease(east)).length, 0, 'pinned elsewhere');
    assert.equal((await h.lease(west))[0]!.task.id, pinned.body.id);

    const prefer = await h.api('POST', '/agents/analyst/assign', { site: 'eu-west' });
    const waitingWest = h.lease(west, 1, 200);
    const waitingEast = h.lease(east, 1, 200);
    const [w, e] = await Promise.all([waitingWest, waitingEast]);
    assert.equal(e[0]?.task.id, prefer.body.id);
    assert.equal(w.length, 0);

    const elsewhere = await h.api('POST', '/agents/analyst/assign', { site: 'ap-south' });
    assert.equal((await h.lease(west))[0]!.task.id, elsewhere.body.id, 'no replica in that site: any will do');
  });

  it('a task behind more tasks than one pass reads, all pinned to a busy replica, is still dispatched', async () => {
    // A pass reads a small first page, then up to 7 full pages; the rest of the queue is
    // reached by the next pass resuming where this one stopped (dispatcher.ts).
    const busy = await h.register('analyst');
    const idle = await h.register('analyst');
    for (let i = 0; i < 2_000; i += 200) {
      const created = await Promise.all(Array.from({ length: 200 }, () => h.api('POST', '/agents/analyst/assign', { replica: busy })));
      assert.ok(created.every((r) => r.status === 201));
    }
    const free = await h.submit({ agent: 'analyst' });
    const passes = h.engine.dispatcher.passes;
    const [leased] = await h.lease(idle, 1, 5_000);
    assert.equal(leased?.task.id, free.id);
    assert.ok(h.engine.dispatcher.passes - passes >= 2, 'reached by a resumed scan, not one long read');
  });

  it('capability routing goes to an agent that has all the capabilities', async () => {
    await h.agent({ name: 'summarizer', capabilities: ['nlp'] });
    const s = await h.register('summarizer');
    const a = await h.register('analyst');
    const task = await h.submit({ capabilities: ['nlp', 'triage'] });
    assert.equal(task.agent, null);
    assert.equal((await h.lease(s)).length, 0);
    assert.equal((await h.lease(a))[0]!.task.id, task.id);
  });

  it('delayed tasks start at runAt, not before', async () => {
    const replica = await h.register('analyst');
    const delayed = await h.submit({ agent: 'analyst', delayMs: 60_000 });
    const at = await h.submit({ agent: 'analyst', runAt: new Date(h.now() + 120_000).toISOString() });
    assert.equal((await h.lease(replica, 2)).length, 0);
    h.advance(60_001);
    assert.deepEqual((await h.lease(replica, 2)).map((l) => l.task.id), [delayed.id]);
    h.advance(60_000);
    assert.deepEqual((await h.lease(replica, 2)).map((l) => l.task.id), [at.id]);
  });

  it('a task delayed beyond the timer range does not make the dispatcher spin', async () => {
    const replica = await h.register('analyst');
    await h.submit({ agent: 'analyst', delayMs: 40 * 86_400_000 });
    const waiting = h.lease(replica, 1, 400);
    await new Promise((r) => setTimeout(r, 50));
    const before = h.engine.dispatcher.passes;
    assert.equal((await waiting).length, 0);
    assert.ok(h.engine.dispatcher.passes - before < 5, `passes while idle: ${h.engine.dispatcher.passes - before}`);
  });

  it('tasks behind thousands that nobody can take are still reached', async () => {
    await h.agent({ name: 'gated', concurrencyLimits: { locked: 0 }, maxConcurrency: 10 });
    for (let i = 0; i < 3; i++) {
      await h.api('POST', '/tasks/batch', { tasks: Array.from({ length: 800 }, () => ({ agent: 'gated', priority: 9, concurrencyKey: 'locked' })) });
    }
    const free = await h.submit({ agent: 'gated', priority: 1 });
    const replica = await h.register('gated', { maxConcurrency: 10 });
    const leased = await h.lease(replica, 10, 3_000);
    assert.deepEqual(leased.map((l) => l.task.id), [free.id]);
  });

  it('a replica whose agent was deleted is told so instead of getting empty leases at once', async () => {
    await h.agent({ name: 'retired' });
    const replica = await h.register('retired');
    assert.equal((await h.api('DELETE', '/agents/retired')).status, 204);
    const res = await h.api('POST', `/workers/${replica}/lease`, { max: 1, waitMs: 1000 });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'UNKNOWN_AGENT');
  });

  it('retention prunes old terminal tasks with their history, and leaves live ones', async () => {
    const replica = await h.register('analyst');
    const old = await h.submit({ agent: 'analyst' });
    const [l] = await h.lease(replica);
    await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: replica, result: 1 });
    const waiting = await h.submit({ agent: 'analyst', delayMs: 30 * 86_400_000 });
    h.advance(7 * 86_400_000 + 1_000);
    assert.equal(await pruneExpired(h.engine.ctx), 1);
    assert.equal((await h.api('GET', `/tasks/${old.id}`)).status, 404);
    assert.equal((await h.store.eventList({ after: 0, limit: 100, taskId: old.id })).length, 0);
    assert.equal((await h.task(waiting.id)).status, 'pending');
  });

  it('GET /tasks/:id?waitMs= returns as soon as the task is terminal', async () => {
    const replica = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst' });
    const waiting = h.api('GET', `/tasks/${task.id}?waitMs=10000`);
    const [l] = await h.lease(replica);
    await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: replica, result: 'ok' });
    const res = await waiting;
    assert.equal(res.body.status, 'completed');
    assert.equal(res.body.result, 'ok');
  });

  it('stats, queue and overview', async () => {
    const replica = await h.register('analyst');
    const a = await h.submit({ agent: 'analyst' });
    await h.submit({ agent: 'analyst', delayMs: 3_600_000 });
    const [l] = await h.lease(replica);
    await h.api('POST', `/assignments/${l!.assignmentId}/start`, { replicaId: replica });
    h.advance(250);
    await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: replica, result: 1 });
    const stats = (await h.api('GET', '/agents/analyst/stats')).body;
    assert.equal(stats.totals.completed, 1);
    assert.equal(stats.totals.pending, 1);
    assert.equal(stats.successRate, 1);
    assert.ok(stats.executionMs.p95 >= 250 && stats.executionMs.p95 < 1_000);
    const queue = (await h.api('GET', '/agents/analyst/queue?status=pending')).body;
    assert.equal(queue.items.length, 1);
    assert.notEqual(queue.items[0].id, a.id);
    const overview = (await h.api('GET', '/overview')).body;
    assert.equal(overview.tasks.completed, 1);
    assert.equal(overview.agents, 1);
    assert.equal(overview.replicas.live, 1);
  });
});
