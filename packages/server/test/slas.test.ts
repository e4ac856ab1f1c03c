// SLAs in process, on both stores: priority aliases wherever a priority is taken, deadlines
// from the band policy or the task, the sweep's sla.at_risk and sla.violated written once even
// by sweeps racing, GET /tasks?sla=, deadline order within a priority, the delegation report.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TaskView } from '@flotilla/sdk';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;
const H = 3_600_000;
const ids = (tasks: Array<{ id: string }>) => tasks.map((t) => t.id);

for (const store of stores) describe(`SLAs (${store})`, () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness({ store });
    await h.agent({ name: 'analyst', maxConcurrency: 10, maxAttempts: 1 });
  });
  afterEach(() => h.close());

  const eventTypes = async (id: string) => (await h.api('GET', `/tasks/${id}/events`)).body.items.map((e: { type: string }) => e.type) as string[];

  it('P0..P3 are accepted wherever a priority is, stored as the integer, with the band\'s SLA', async () => {
    const p1 = await h.submit({ agent: 'analyst', priority: 'P1' });
    assert.deepEqual([p1.priority, p1.sla.band, p1.sla.state], [7, 'P1', 'ok']);
    assert.equal(Date.parse(p1.sla.deadline!) - Date.parse(p1.createdAt), 24 * H);
    const batch = await h.api('POST', '/tasks/batch', { tasks: [{ agent: 'analyst', priority: 'P0' }, { agent: 'analyst', priority: 3 }] });
    assert.equal(batch.status, 201);
    const [p0, three] = batch.body.items.map((r: { task: TaskView }) => r.task) as TaskView[];
    assert.deepEqual([p0!.priority, p0!.sla.band, Date.parse(p0!.sla.deadline!) - Date.parse(p0!.createdAt)], [9, 'P0', H]);
    // A number is in a band too: 3 is P3, which has no SLA by default.
    assert.deepEqual([three!.priority, three!.sla], [3, { band: 'P3', deadline: null, state: 'none' }]);
    const assigned = await h.api('POST', '/agents/analyst/assign', { priority: 'P3' });
    assert.deepEqual([assigned.status, assigned.body.priority], [201, 2]);
    assert.deepEqual((await h.api('GET', '/tasks?priority=P1')).body.items.map((t: TaskView) => t.id), [p1.id]);
    const bad = await h.api('POST', '/tasks', { agent: 'analyst', priority: 'P4' });
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'VALIDATION_FAILED']);
    assert.equal((await h.api('POST', '/tasks', { agent: 'analyst', priority: '7' })).status, 400);
  });

  it('a deadline or slaMs of its own, not both, and not in the past', async () => {
    const deadline = new Date(h.now() + 90_000).toISOString();
    const own = await h.submit({ agent: 'analyst', priority: 'P3', deadline });
    assert.deepEqual(own.sla, { band: 'P3', deadline, state: 'ok' });
    const quick = await h.submit({ agent: 'analyst', slaMs: 5_000 });
    assert.equal(Date.parse(quick.sla.deadline!) - Date.parse(quick.createdAt), 5_000);
    for (const body of [{ deadline, slaMs: 5 }, { deadline: new Date(h.now() - 1_000).toISOString() }, { slaMs: 0 }]) {
      const res = await h.api('POST', '/tasks', { agent: 'analyst', ...body });
      assert.deepEqual([res.status, res.body.error.code], [400, 'VALIDATION_FAILED'], JSON.stringify(body));
    }
    const created = (await h.api('GET', `/tasks/${quick.id}/events`)).body.items[0];
    assert.equal(created.data.slaDeadline, quick.sla.deadline);
  });

  it('sla.at_risk and sla.violated are written once each, even by sweeps racing; ?sla= finds them', async () => {
    const task = await h.submit({ agent: 'analyst', slaMs: 10_000 });
    const other = await h.submit({ agent: 'analyst', slaMs: 60_000 });
    await Promise.all([h.engine.sla.sweep(), h.engine.sla.sweep()]);
    assert.deepEqual((await eventTypes(task.id)).filter((t) => t.startsWith('sla.')), []);
    h.advance(8_000);
    const first = await Promise.all([h.engine.sla.sweep(), h.engine.sla.sweep(), h.engine.sla.sweep()]);
    assert.equal(first.reduce((n, r) => n + r.events, 0), 1);
    assert.deepEqual((await eventTypes(task.id)).filter((t) => t.startsWith('sla.')), ['sla.at_risk']);
    assert.equal((await h.task(task.id)).sla.state, 'at_risk');
    assert.deepEqual(ids((await h.api('GET', '/tasks?sla=at_risk')).body.items), [task.id]);
    assert.deepEqual((await h.api('GET', '/tasks?sla=violated')).body.items, []);
    h.advance(2_000);
    await Promise.all([h.engine.sla.sweep(), h.engine.sla.sweep()]);
    await h.engine.sla.sweep();
    assert.deepEqual((await eventTypes(task.id)).filter((t) => t.startsWith('sla.')), ['sla.at_risk', 'sla.violated']);
    assert.deepEqual(ids((await h.api('GET', '/tasks?sla=violated')).body.items), [task.id]);
    assert.deepEqual((await h.api('GET', '/tasks?sla=at_risk')).body.items, []);
    assert.deepEqual((await eventTypes(other.id)).filter((t) => t.startsWith('sla.')), []);
    assert.equal((await h.api('GET', '/tasks?sla=late')).status, 400);
  });

  it('a task that ends in time is met, without events; one that ends late is violated once', async () => {
    const replica = await h.register('analyst');
    const [inTime, late] = [await h.submit({ agent: 'analyst', slaMs: 10_000 }), await h.submit({ agent: 'analyst', slaMs: 10_000 })];
    const leased = await h.lease(replica, 2);
    const of = (id: string) => leased.find((l) => l.task.id === id)!.assignmentId;
    assert.equal((await h.api('POST', `/assignments/${of(inTime.id)}/complete`, { replicaId: replica, result: 1 })).status, 200);
    assert.equal((await h.task(inTime.id)).sla.state, 'met');
    // The sweep did not run while the late one was open past its deadline (a node down): it ends late.
    h.advance(11_000);
    assert.equal((await h.api('POST', `/assignments/${of(late.id)}/complete`, { replicaId: replica, result: 2 })).status, 200);
    assert.equal((await h.task(late.id)).sla.state, 'violated');
    await Promise.all([h.engine.sla.sweep(), h.engine.sla.sweep()]);
    assert.deepEqual((await eventTypes(inTime.id)).filter((t) => t.startsWith('sla.')), []);
    assert.deepEqual((await eventTypes(late.id)).filter((t) => t.startsWith('sla.')), ['sla.violated']);
    assert.deepEqual(ids((await h.api('GET', '/tasks?sla=violated')).body.items), [late.id]);
  });

  it('within equal priority an earlier deadline is dispatched first; without one, FIFO', async () => {
    const plain1 = await h.submit({ agent: 'analyst', priority: 2 });
    const later = await h.submit({ agent: 'analyst', priority: 2, slaMs: 60_000 });
    const plain2 = await h.submit({ agent: 'analyst', priority: 2 });
    const soon = await h.submit({ agent: 'analyst', priority: 2, slaMs: 5_000 });
    const urgent = await h.submit({ agent: 'analyst', priority: 'P0' });
    // Band policies: every P2 task gets 7 days from its submit, so they stay in submission order.
    const p2a = await h.submit({ agent: 'analyst' });
    const p2b = await h.submit({ agent: 'analyst' });
    const replica = await h.register('analyst');
    const leased = await h.lease(replica, 10);
    assert.deepEqual(leased.map((l) => l.task.id), ids([urgent, p2a, p2b, soon, later, plain1, plain2]));
  });

  it('GET /reports/delegation: per agent, over a window; readers of every task only', async () => {
    await h.agent({ name: 'writer', maxConcurrency: 1 });
    const replica = await h.register('analyst');
    await h.submit({ agent: 'analyst', slaMs: 60_000 });
    await h.submit({ agent: 'analyst' });
    const [a, b] = await h.lease(replica, 2);
    h.advance(200);
    await h.api('POST', `/assignments/${a!.assignmentId}/complete`, { replicaId: replica });
    await h.api('POST', `/assignments/${b!.assignmentId}/fail`, { replicaId: replica, retryable: false, error: { message: 'no' } });
    // The two ended a second before the window of `soon` below opens, however fast this runs.
    h.advance(1000);
    await h.submit({ agent: 'analyst' });
    await h.lease(replica, 1);
    const res = await h.api('GET', '/reports/delegation');
    assert.equal(res.status, 200);
    assert.equal(Date.parse(res.body.until) - Date.parse(res.body.since), 24 * H);
    assert.deepEqual(res.body.agents.map((r: { agent: string }) => r.agent), ['analyst', 'writer']);
    const [analyst, writer] = res.body.agents;
    // The clock is real time plus what the test advanced: the one duration is 200 ms and a little.
    const ms = analyst.durationMs.median;
    assert.ok(ms >= 200 && ms < 10_000, String(ms));
    // Both ended in time (the failed one too: an SLA measures time to terminal, P2's default is 7 days).
    assert.deepEqual(analyst, {
      agent: 'analyst', assigned: 3, completed: 1, failed: 1, inFlight: 1, durationMs: { median: ms, p95: ms }, sla: { met: 2, violated: 0 }, reliability: 0.5,
      usage: { attempts: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 },
    });
    assert.deepEqual(writer, { agent: 'writer', assigned: 0, completed: 0, failed: 0, inFlight: 0, durationMs: { median: null, p95: null }, sla: { met: 0, violated: 0 }, reliability: null,
      usage: { attempts: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 } });
    const since = new Date(h.now() + 60_000).toISOString();
    const soon = await h.api('GET', `/reports/delegation?since=${encodeURIComponent(new Date(h.now() - 500).toISOString())}`);
    assert.deepEqual([soon.body.agents[0].completed, soon.body.agents[0].inFlight], [0, 1]);
    const future = await h.api('GET', `/reports/delegation?since=${encodeURIComponent(since)}`);
    assert.deepEqual([future.status, future.body.error.code], [400, 'VALIDATION_FAILED']);
    const viewer = await h.api('POST', '/keys', { name: 'v', role: 'viewer' });
    const worker = await h.api('POST', '/keys', { name: 'w', role: 'agent', agents: ['analyst'] });
    assert.equal((await h.api('GET', '/reports/delegation', undefined, { authorization: `Bearer ${viewer.body.token}` })).status, 200);
    assert.equal((await h.api('GET', '/reports/delegation', undefined, { authorization: `Bearer ${worker.body.token}` })).status, 403);
  });
});
