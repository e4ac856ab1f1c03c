import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assignCandidates, compareReplicas, planRoutes, type AgentRoute, type AssignInput, type ReplicaCandidate } from '../src/core/routing.ts';
import { retryDelay } from '../src/core/retry-policy.ts';
import type { TaskHead } from '../src/core/types.ts';

let seq = 0;
function t(over: Partial<TaskHead> = {}): TaskHead {
  seq++;
  return {
    id: `t${seq}`, seq, status: 'pending', priority: 5, agent: 'a', capabilities: [], replica: null, site: null,
    concurrencyKey: null, attempt: 0, maxAttempts: 3, timeoutMs: 1000, runAt: 0, assignmentId: null, cancelRequestedAt: null, parentId: null, slaDeadline: null, ...over,
  };
}
function r(id: string, over: Partial<ReplicaCandidate> = {}): ReplicaCandidate {
  return { id, agent: 'a', site: null, maxConcurrency: 4, inFlight: 0, offered: 4, completed: 0, failed: 0, lastAssignedAt: null, health: 'healthy', ...over };
}
const agents = new Map<string, AgentRoute>([
  ['a', { name: 'a', capabilities: ['nlp', 'summarize'], concurrencyLimits: { 'host:gpu': 1 } }],
  ['b', { name: 'b', capabilities: ['nlp'], concurrencyLimits: {} }],
]);
const plan = (tasks: TaskHead[], replicas: ReplicaCandidate[], keyInFlight = new Map<string, number>(), serverKeyLimits = {}) =>
  planRoutes({ tasks, replicas, agents, keyInFlight, serverKeyLimits }).map((x) => [x.task.id, x.replicaId]);

describe('routing', () => {
  it('least loaded first, by inFlight / maxConcurrency', () => {
    const a = t();
    assert.deepEqual(plan([a], [r('busy', { inFlight: 2, offered: 2 }), r('idle', { inFlight: 0 })]), [[a.id, 'idle']]);
    const b = t();
    // 1/2 = 0.5 vs 1/4 = 0.25: the bigger replica is less loaded.
    assert.deepEqual(plan([b], [r('small', { maxConcurrency: 2, inFlight: 1, offered: 1 }), r('big', { maxConcurrency: 4, inFlight: 1, offered: 3 })]), [[b.id, 'big']]);
  });

  it('spreads a burst across replicas instead of filling one', () => {
    const tasks = [t(), t(), t(), t()];
    const routes = plan(tasks, [r('x'), r('y')]);
    assert.equal(routes.filter(([, rep]) => rep === 'x').length, 2);
    assert.equal(routes.filter(([, rep]) => rep === 'y').length, 2);
  });

  it('never gives a replica more than it offered (its free slots)', () => {
    const routes = plan([t(), t(), t()], [r('x', { offered: 1, maxConcurrency: 1 })]);
    assert.equal(routes.length, 1);
  });

  it('ties: more reliable first, then least recently assigned', () => {
    const a = t();
    assert.deepEqual(plan([a], [r('flaky', { completed: 1, failed: 5 }), r('solid', { completed: 9, failed: 0 })]), [[a.id, 'solid']]);
    assert.ok(compareReplicas(r('old', { lastAssignedAt: 1 }), r('new', { lastAssignedAt: 2 })) < 0);
  });

  it('a pinned replica is a hard constraint', () => {
    const pinned = t({ replica: 'y' });
    assert.deepEqual(plan([pinned], [r('x'), r('y', { inFlight: 3, offered: 1 })]), [[pinned.id, 'y']]);
    assert.deepEqual(plan([t({ replica: 'z' })], [r('x')]), []);
  });

  it('a site is a soft preference', () => {
    const east = t({ site: 'eu' });
    assert.deepEqual(plan([east], [r('x', { site: 'us' }), r('y', { site: 'eu', inFlight: 3, offered: 1 })]), [[east.id, 'y']]);
    const nowhere = t({ site: 'ap' });
    assert.deepEqual(plan([nowhere], [r('x', { site: 'us' })]), [[nowhere.id, 'x']]);
  });

  it('capability routing: any agent whose capabilities contain all required ones', () => {
    const both = t({ agent: null, capabilities: ['nlp', 'summarize'] });
    assert.deepEqual(plan([both], [r('bx', { agent: 'b' })]), []);
    assert.deepEqual(plan([both], [r('bx', { agent: 'b' }), r('ax', { agent: 'a', inFlight: 3, offered: 1 })]), [[both.id, 'ax']]);
    const nlp = t({ agent: null, capabilities: ['nlp'] });
    assert.deepEqual(plan([nlp], [r('bx', { agent: 'b' })]), [[nlp.id, 'bx']]);
  });

  it('named-agent tasks only go to that agent', () => {
    assert.deepEqual(plan([t({ agent: 'b' })], [r('ax')]), []);
  });

  it('concurrency keys never exceed their limit, counting what is already in flight', () => {
    const k1 = t({ concurrencyKey: 'host:gpu' });
    const k2 = t({ concurrencyKey: 'host:gpu' });
    assert.deepEqual(plan([k1, k2], [r('x'), r('y')]), [[k1.id, 'x']]);
    assert.deepEqual(plan([t({ concurrencyKey: 'host:gpu' })], [r('x')], new Map([['host:gpu', 1]])), []);
    // Server-wide limits apply to keys the agent does not declare.
    const s1 = t({ concurrencyKey: 'db' });
    const s2 = t({ concurrencyKey: 'db' });
    const s3 = t({ concurrencyKey: 'db' });
    assert.equal(plan([s1, s2, s3], [r('x')], new Map(), { db: 2 }).length, 2);
  });

  it('concurrency keys named like object properties are ordinary keys', () => {
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const task = t({ concurrencyKey: key });
      assert.deepEqual(plan([task], [r('x')]), [[task.id, 'x']], key);
    }
  });

  it('a task nobody can take does not block the ones behind it', () => {
    const blocked = t({ priority: 9, replica: 'elsewhere' });
    const next = t({ priority: 1 });
    assert.deepEqual(plan([blocked, next], [r('x')]), [[next.id, 'x']]);
  });

  it('a healthy replica before a degraded one, even a busier one', () => {
    const a = t();
    assert.deepEqual(plan([a], [r('degraded', { health: 'degraded' }), r('healthy', { inFlight: 3, offered: 1 })]), [[a.id, 'healthy']]);
    const b = t();
    assert.deepEqual(plan([b], [r('degraded', { health: 'degraded' })]), [[b.id, 'degraded']]);
  });
});

describe('retry policy', () => {
  it('doubles per attempt with equal jitter, capped', () => {
    const p = { baseDelayMs: 1000, maxDelayMs: 10_000 };
    assert.equal(retryDelay(p, 1, 0), 500);
    assert.equal(retryDelay(p, 1, 0.999999), 1000);
    assert.equal(retryDelay(p, 3, 0), 2000);
    assert.equal(retryDelay(p, 20, 0), 5000);
    assert.equal(retryDelay(p, 20, 0.999999), 10_000);
  });
});

describe("an operator's assignment: which replicas could take the task now, or why none", () => {
  const live = [r('r1', { inFlight: 4 }), r('r2', { inFlight: 1 }), r('rb', { agent: 'b' })];
  const input = (over: Partial<AssignInput> = {}): AssignInput => ({
    task: t(), target: { agent: null, replica: null }, agents, live, waiting: new Map([['r1', 4], ['r2', 2], ['rb', 1]]),
    keyInFlight: new Map(), serverKeyLimits: {}, ...over,
  });
  const reason = (over: Partial<AssignInput>) => {
    const found = assignCandidates(input(over));
    return 'refusal' in found ? found.refusal.reason : found.candidates.map((c) => [c.id, c.offered]);
  };

  it('keeps the waiting replicas with a free slot that serve the task, offering what each asks for at most', () => {
    assert.deepEqual(reason({}), [['r2', 2]]);
    assert.deepEqual(reason({ task: t({ agent: null, capabilities: ['nlp'] }) }), [['r2', 2], ['rb', 1]]);
    assert.deepEqual(reason({ task: t({ agent: null, capabilities: ['nlp'] }), target: { agent: 'b', replica: null } }), [['rb', 1]]);
  });

  it('names the first step that leaves none', () => {
    const rb = { id: 'rb', agent: 'b', status: 'live' };
    assert.equal(reason({ task: t({ replica: 'r2' }), target: { agent: null, replica: { id: 'r1', agent: 'a', status: 'live' } } }), 'pinned_elsewhere');
    assert.equal(reason({ target: { agent: 'b', replica: null } }), 'agent_does_not_serve');
    assert.equal(reason({ target: { agent: null, replica: rb } }), 'agent_does_not_serve', 'the replica\'s agent');
    assert.equal(reason({ target: { agent: null, replica: { id: 'r9', agent: 'a', status: 'gone' } } }), 'replica_not_live');
    assert.equal(reason({ live: [] }), 'no_live_replica');
    assert.equal(reason({ task: t({ replica: 'r9' }) }), 'no_live_replica', 'pinned to a replica that is not live');
    assert.equal(reason({ waiting: new Map() }), 'not_waiting');
    assert.equal(reason({ waiting: new Map([['r1', 4]]) }), 'no_free_slot');
    assert.equal(reason({ task: t({ concurrencyKey: 'host:gpu' }), keyInFlight: new Map([['host:gpu', 1]]) }), 'concurrency_key_full');
    assert.deepEqual(reason({ task: t({ concurrencyKey: 'host:gpu' }) }), [['r2', 2]]);
  });
});
