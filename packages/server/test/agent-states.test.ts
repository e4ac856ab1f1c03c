// Agent states and operators' controls through the HTTP API, in process, on both stores:
// pausing an agent and draining a replica stop new dispatches (and say so as the task's
// waitingReason); a replica's reported health steers routing, with its event once per change;
// an agent becoming overloaded and recovering is written once, however many sweeps run;
// /overview breaks agents and replicas down.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;

for (const store of stores) describe(`agent states and operators' controls (${store})`, () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness({ store, config: { leaseMs: 30_000, replicaTtlMs: 60_000, overloadPendingAgeMs: 5_000, overloadQueueDepth: 3 } });
    await h.agent({ name: 'worker', maxConcurrency: 1, concurrencyLimits: { 'host:a': 1 } });
  });
  afterEach(() => h.close());

  const reason = async (id: string) => (await h.api('GET', `/tasks/${id}`)).body.waitingReason as string | null;
  const types = async (type: string) => (await h.api('GET', `/events/page?limit=1000`)).body.items.filter((e: { type: string }) => e.type === type);

  it('waitingReason says why a task is not running', async () => {
    const later = await h.submit({ agent: 'worker', delayMs: 60_000 });
    assert.equal(await reason(later.id), 'scheduled');
    const task = await h.submit({ agent: 'worker', concurrencyKey: 'host:a' });
    assert.equal(await reason(task.id), 'no_live_replica');
    const replica = await h.register('worker');
    assert.equal(await reason(task.id), 'queued');
    const [leased] = await h.lease(replica);
    assert.equal(leased?.task.id, task.id);
    assert.equal(await reason(task.id), null);
    const keyed = await h.submit({ agent: 'worker', concurrencyKey: 'host:a' });
    assert.equal(await reason(keyed.id), 'concurrency_key_at_limit');
    const other = await h.submit({ agent: 'worker' });
    assert.equal(await reason(other.id), 'all_slots_full');
    // Lists carry no reason (it costs reads per task): only GET /tasks/:id.
    assert.equal((await h.api('GET', '/tasks?status=pending')).body.items[0].waitingReason, undefined);
  });

  it('a paused agent is dispatched nothing until resumed; its work in flight goes on', async () => {
    const replica = await h.register('worker');
    const paused = await h.api('POST', '/agents/worker/pause');
    assert.equal(paused.status, 200);
    assert.ok(paused.body.pausedAt);
    assert.equal((await h.api('POST', '/agents/worker/pause')).status, 200, 'pausing again changes nothing');
    const task = await h.submit({ agent: 'worker' });
    assert.deepEqual(await h.lease(replica), []);
    assert.equal(await reason(task.id), 'agent_paused');
    assert.equal((await h.api('GET', '/agents')).body.items[0].pausedAt, paused.body.pausedAt);
    const resumed = await h.api('POST', '/agents/worker/resume');
    assert.equal(resumed.body.pausedAt, null);
    const [leased] = await h.lease(replica);
    assert.equal(leased?.task.id, task.id);
    assert.deepEqual((await types('agent.paused')).length + (await types('agent.resumed')).length, 2);
    assert.equal((await h.api('POST', '/agents/nobody/pause')).status, 404);
    const viewer = (await h.api('POST', '/keys', { name: 'v', role: 'viewer' })).body.token as string;
    assert.equal((await h.api('POST', '/agents/worker/pause', undefined, { authorization: `Bearer ${viewer}` })).status, 403);
  });

  it('a draining replica finishes its work, takes no more (also after it registers again), and resumes', async () => {
    const replica = await h.register('worker');
    const first = await h.submit({ agent: 'worker' });
    const [leased] = await h.lease(replica);
    assert.equal(leased?.task.id, first.id);
    const drained = await h.api('POST', `/replicas/${replica}/drain`);
    assert.deepEqual([drained.status, drained.body.status], [200, 'draining']);
    // Its attempt goes on: it completes.
    assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/complete`, { replicaId: replica, result: 1 })).status, 200);
    const second = await h.submit({ agent: 'worker' });
    assert.deepEqual(await h.lease(replica), []);
    assert.equal((await h.api('POST', `/workers/${replica}/heartbeat`)).status, 200, 'a draining replica still heartbeats');
    assert.equal(await h.register('worker', { replicaId: replica }), replica);
    assert.equal((await h.api('GET', '/agents/worker/replicas')).body.items[0].status, 'draining');
    assert.deepEqual(await h.lease(replica), []);
    assert.equal(await reason(second.id), 'no_live_replica');
    assert.equal((await h.api('POST', `/replicas/${replica}/resume`)).body.status, 'live');
    const [next] = await h.lease(replica);
    assert.equal(next?.task.id, second.id);
    // An agent's drain drains each of its live replicas.
    const another = await h.register('worker');
    const all = await h.api('POST', '/agents/worker/drain');
    assert.deepEqual(all.body.items.map((r: { id: string; status: string }) => r.status), ['draining', 'draining']);
    assert.ok(all.body.items.some((r: { id: string }) => r.id === another));
    assert.equal((await h.api('POST', '/replicas/nope/drain')).status, 404);
  });

  it("a replica's health steers routing; its event is written once per change", async () => {
    await h.agent({ name: 'pool', maxConcurrency: 1 });
    const sick = await h.register('pool');
    const fine = await h.register('pool');
    const beat = (replica: string, health: string, healthDetail?: object) => h.api('POST', `/workers/${replica}/heartbeat`, { health, ...(healthDetail ? { healthDetail } : {}) });
    assert.equal((await beat(sick, 'unhealthy', { cpu: 0.99 })).body.replica.health, 'unhealthy');
    await beat(sick, 'unhealthy', { cpu: 0.98 });
    assert.equal((await types('replica.health_changed')).length, 1);
    await beat(fine, 'unhealthy');
    const task = await h.submit({ agent: 'pool' });
    assert.equal(await reason(task.id), 'no_healthy_replica');
    assert.deepEqual(await h.lease(fine), []);
    await beat(fine, 'healthy');
    assert.deepEqual(await h.lease(sick), []);
    const [leased] = await h.lease(fine);
    assert.equal(leased?.task.id, task.id);
    // Only the unhealthy one is left with a free slot: the task waits for the healthy one.
    const waiting = await h.submit({ agent: 'pool' });
    assert.equal(await reason(waiting.id), 'all_slots_full');
    assert.equal((await h.api('POST', `/workers/${sick}/heartbeat`, { healthDetail: { cpu: 1 } })).status, 400, 'a detail needs a health');
    assert.equal((await h.api('POST', `/workers/${sick}/heartbeat`, { health: 'great' })).status, 400);
    await beat(sick, 'degraded');
    const [taken] = await h.lease(sick);
    assert.equal(taken?.task.id, waiting.id);
    const changes = (await types('replica.health_changed')).map((e: { data: { from: string; to: string } }) => `${e.data.from}->${e.data.to}`);
    assert.deepEqual(changes, ['healthy->unhealthy', 'healthy->unhealthy', 'unhealthy->healthy', 'unhealthy->degraded']);
    const overview = (await h.api('GET', '/overview')).body;
    assert.deepEqual(overview.replicaHealth, { healthy: 1, degraded: 1, unhealthy: 0 });
  });

  it('overloaded when every slot is taken and the oldest task waited too long, or the queue is too deep; recovered after', async () => {
    const replica = await h.register('worker');
    await h.submit({ agent: 'worker' });
    const [leased] = await h.lease(replica);
    const waiting = await h.submit({ agent: 'worker' });
    assert.equal((await h.api('GET', '/agents/worker')).body.state, 'active');
    await Promise.all([h.engine.agents.sweepOverload(), h.engine.agents.sweepOverload()]);
    assert.equal((await types('agent.overloaded')).length, 0, 'not yet: the task has not waited long');
    h.advance(6_000);
    assert.deepEqual((await Promise.all([h.engine.agents.sweepOverload(), h.engine.agents.sweepOverload()])).sort(), [0, 1]);
    assert.equal((await h.api('GET', '/agents/worker')).body.state, 'overloaded');
    const [event] = await types('agent.overloaded');
    assert.deepEqual([event.data.pending, event.data.slots, event.data.inFlight], [1, 1, 1]);
    assert.deepEqual((await h.api('GET', '/overview')).body.agentStates, { active: 0, idle: 0, offline: 0, overloaded: 1, degraded: 0 });
    assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/complete`, { replicaId: replica })).status, 200);
    const [next] = await h.lease(replica);
    assert.equal(next?.task.id, waiting.id);
    await h.engine.agents.sweepOverload();
    await h.engine.agents.sweepOverload();
    assert.equal((await types('agent.recovered')).length, 1);
    assert.equal((await h.api('GET', '/agents/worker')).body.state, 'active');
    // A queue deeper than the threshold (3) is overloaded at once.
    for (let i = 0; i < 4; i++) await h.submit({ agent: 'worker' });
    await h.engine.agents.sweepOverload();
    assert.equal((await types('agent.overloaded')).length, 2);
  });

  it('idle and offline; /overview counts replicas by status', async () => {
    assert.equal((await h.api('GET', '/agents/worker')).body.state, 'offline');
    const replica = await h.register('worker');
    assert.equal((await h.api('GET', '/agents/worker')).body.state, 'idle');
    await h.api('POST', `/replicas/${replica}/drain`);
    const overview = (await h.api('GET', '/overview')).body;
    assert.deepEqual(overview.replicaStatuses, { live: 0, draining: 1, lost: 0, gone: 0 });
    assert.deepEqual(overview.agentStates, { active: 0, idle: 1, offline: 0, overloaded: 0, degraded: 0 });
    await h.api('POST', `/workers/${replica}/deregister`);
    assert.equal((await h.api('GET', '/agents/worker')).body.state, 'offline');
  });
});
