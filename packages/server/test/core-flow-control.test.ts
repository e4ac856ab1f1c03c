// Flow control in pure code (issue 16): the sliding-minute admission of a rate key, the
// rate-limited transition (not counted, slot freed, pending at the pause's end), the caps'
// trimming of a pass's offers and their waiting reasons, and the checks of limits and usage.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FlotillaError } from '../src/core/errors.ts';
import { admit, checkTaskRate, pauseUntil, rateLimitProblem, RATE_WINDOW_MS, MAX_RETRY_AFTER_MS, MIN_RETRY_AFTER_MS } from '../src/core/rate-limits.ts';
import { anyCaps, capsFor, capWaitingReason, trimOffers } from '../src/core/flow-caps.ts';
import { checkUsage, usageDay } from '../src/core/usage.ts';
import { decideDispatch, decideRateLimited, PROVIDER_RATE_LIMITED } from '../src/core/task-machine.ts';
import { TRANSITION_TRAITS } from '../src/core/transition-kinds.ts';
import type { ReplicaCandidate } from '../src/core/routing.ts';
import type { TaskRecord } from '../src/core/types.ts';

const T0 = 1_700_000_000_000;
const open = { rpm: null, tpm: null, pausedUntil: null };
const empty = { requests: 0, tokens: 0, oldestAt: null };
const reqs = (...tokens: number[]) => tokens.map((t) => ({ tokens: t }));

function task(over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 't', seq: 1, status: 'pending', priority: 5, agent: 'a', capabilities: [], replica: null, site: null,
    concurrencyKey: 'host:1', attempt: 0, maxAttempts: 1, timeoutMs: 10_000, runAt: T0, assignmentId: null,
    cancelRequestedAt: null, type: 'x', input: null, result: null, error: null, createdAt: T0, updatedAt: T0,
    finishedAt: null, idempotencyKey: null, correlation: {}, traceparent: null, parentId: 'p', createdBy: null,
    rootId: 'p', depth: 2, ownerId: null, tools: [], waitingFor: null, inputRequest: null, resumed: null,
    slaDeadline: null, slaState: 'none', slaCheckAt: null, rateKey: 'k', estimatedTokens: 10, ...over,
  };
}

function running(over: Partial<TaskRecord> = {}) {
  const t = decideDispatch({ task: task(over), replica: { id: 'r1', agent: 'a' }, assignmentId: 'as1', now: T0, leaseMs: 30_000, concurrencyLimit: 1 });
  return { task: task({ ...over, status: 'running', assignmentId: 'as1', attempt: 1 }), assignment: { ...t.assignmentInsert!, status: 'running' as const, startedAt: T0 } };
}

function candidate(id: string, agent: string, offered: number): ReplicaCandidate {
  return { id, agent, offered, inFlight: 0, maxConcurrency: 10, site: null, lastAssignedAt: null, health: 'healthy', status: 'live' } as unknown as ReplicaCandidate;
}

describe('rate limits: the sliding minute', () => {
  it('admits requests while the window has room for one more and its tokens, in order (a prefix)', () => {
    assert.deepEqual(admit({ ...open, rpm: 3 }, empty, reqs(0, 0, 0, 0, 0), T0), { admitted: 3, retryAt: T0 + RATE_WINDOW_MS, reason: 'rpm' });
    assert.deepEqual(admit({ ...open, rpm: 3 }, { requests: 2, tokens: 0, oldestAt: T0 - 50_000 }, reqs(0, 0), T0), { admitted: 1, retryAt: T0 + 10_000, reason: 'rpm' });
    // Tokens: 600 + 300 fit in 1000; the next 200 does not, nor the 50 behind it (FIFO within a key).
    assert.deepEqual(admit({ ...open, tpm: 1_000 }, empty, reqs(600, 300, 200, 50), T0).admitted, 2);
    assert.equal(admit({ ...open, tpm: 1_000 }, empty, reqs(600, 300, 200, 50), T0).reason, 'tpm');
    assert.deepEqual(admit(open, empty, reqs(1, 2, 3), T0), { admitted: 3, retryAt: null, reason: null });
    assert.deepEqual(admit({ ...open, rpm: 1 }, empty, [], T0), { admitted: 0, retryAt: null, reason: null });
  });

  it('an estimate larger than the whole minute goes when the window is empty, and only then', () => {
    assert.equal(admit({ ...open, tpm: 100 }, empty, reqs(5_000), T0).admitted, 1);
    assert.equal(admit({ ...open, tpm: 100 }, { requests: 1, tokens: 1, oldestAt: T0 }, reqs(5_000), T0).admitted, 0);
  });

  it('a pause admits nothing until it ends', () => {
    assert.deepEqual(admit({ ...open, pausedUntil: T0 + 5 }, empty, reqs(0), T0), { admitted: 0, retryAt: T0 + 5, reason: 'paused' });
    assert.equal(admit({ ...open, pausedUntil: T0 }, empty, reqs(0), T0).admitted, 1);
    assert.equal(pauseUntil(T0, 10 * MAX_RETRY_AFTER_MS), T0 + MAX_RETRY_AFTER_MS, 'a provider asking for hours is clamped');
    assert.equal(pauseUntil(T0, -5), T0 + MIN_RETRY_AFTER_MS, 'a retry at once is a second later: a 429 loop cannot spin');
    assert.equal(pauseUntil(T0, 0), T0 + MIN_RETRY_AFTER_MS);
  });

  it('a declared limit and a task\'s rate fields are checked', () => {
    assert.equal(rateLimitProblem('openai:gpt-4o', { rpm: 10 }), null);
    assert.match(rateLimitProblem('bad key', { rpm: 10 })!, /rate key/);
    assert.match(rateLimitProblem('k', {})!, /needs rpm, tpm or both/);
    assert.match(rateLimitProblem('k', { rpm: 0 })!, /rpm/);
    assert.match(rateLimitProblem('k', { tpm: 1.5 })!, /tpm/);
    assert.throws(() => checkTaskRate(null, 10), (e: unknown) => e instanceof FlotillaError && e.code === 'VALIDATION_FAILED');
    assert.throws(() => checkTaskRate('with space', null), FlotillaError);
    checkTaskRate('k', 10);
  });
});

describe('rate-limited attempts in the state machine', () => {
  it('the attempt ends failed but not counted, the slot is freed, the task pending at the pause\'s end', () => {
    assert.deepEqual(TRANSITION_TRAITS.rate_limited, { wakesDispatcher: true, queuesTask: true, countsAsAttempt: false, durable: true, endsTask: false });
    const { task: t, assignment } = running();
    const tr = decideRateLimited({ task: t, assignment, until: T0 + 30_000, message: '429', now: T0 + 10 });
    assert.equal(tr.kind, 'rate_limited');
    assert.deepEqual(tr.set, { status: 'pending', assignmentId: null, attempt: 0, runAt: T0 + 30_000, updatedAt: T0 + 10 });
    assert.deepEqual(tr.assignmentUpdate?.set, { status: 'failed', finishedAt: T0 + 10, error: { code: PROVIDER_RATE_LIMITED, message: '429' }, counted: false });
    assert.deepEqual(tr.slotRelease, { replicaId: 'r1', concurrencyKey: 'host:1', outcome: null });
    assert.deepEqual([tr.events[0]!.type, tr.events[0]!.data.rateKey], ['task.rate_limited', 'k']);
    // A pause already over: pending at once, never in the past.
    assert.equal(decideRateLimited({ task: t, assignment, until: T0, message: '429', now: T0 + 10 }).set.runAt, T0 + 10);
  });

  it('a cancellation requested meanwhile wins; a stale assignment is refused', () => {
    const { task: t, assignment } = running({ cancelRequestedAt: T0 });
    assert.equal(decideRateLimited({ task: { ...t, cancelRequestedAt: T0 }, assignment, until: T0 + 1, message: '429', now: T0 + 2 }).kind, 'cancel_ack');
    const live = running();
    assert.throws(() => decideRateLimited({ task: { ...live.task, assignmentId: 'other' }, assignment: live.assignment, until: T0, message: '429', now: T0 }),
      (e: unknown) => e instanceof FlotillaError && e.code === 'ASSIGNMENT_SUPERSEDED');
  });
});

describe('fleet and agent caps', () => {
  it('a claim carries caps only when one is configured', () => {
    assert.equal(capsFor({ name: 'a', maxInFlight: null }, 0), undefined);
    assert.deepEqual(capsFor({ name: 'a', maxInFlight: 2 }, 0), { fleet: null, agent: { name: 'a', limit: 2 } });
    assert.deepEqual(capsFor({ name: 'a' }, 10), { fleet: 10, agent: null });
    assert.equal(anyCaps([{ maxInFlight: null }, {}], 0), false);
    assert.equal(anyCaps([{ maxInFlight: 3 }], 0), true);
  });

  it('a pass offers only what the caps leave, counted from the replicas\' live assignments', () => {
    const agents = new Map([['a', { maxInFlight: 3 }], ['b', { maxInFlight: null }]]);
    const replicas = [{ agent: 'a', inFlight: 1 }, { agent: 'a', inFlight: 0 }, { agent: 'b', inFlight: 2 }];
    const cs = [candidate('a1', 'a', 5), candidate('a2', 'a', 5), candidate('b1', 'b', 5)];
    trimOffers(cs, replicas, agents, 6);
    // Agent a: 3 - 1 = 2 left, all to a1; the fleet: 6 - 3 = 3 left, 2 taken by a, 1 for b.
    assert.deepEqual(cs.map((c) => c.offered), [2, 0, 1]);
    const none = [candidate('b1', 'b', 5)];
    trimOffers(none, [{ agent: 'b', inFlight: 9 }], agents, 6);
    assert.deepEqual(none.map((c) => c.offered), [0]);
  });

  it('the waiting reason names the cap that is full (the fleet first)', () => {
    assert.equal(capWaitingReason({ maxInFlight: 2 }, 2, 2, 0), 'agent_cap');
    assert.equal(capWaitingReason({ maxInFlight: 2 }, 2, 5, 5), 'fleet_cap');
    assert.equal(capWaitingReason({ maxInFlight: 2 }, 1, 4, 5), null);
    assert.equal(capWaitingReason(null, 0, 0, 0), null);
  });
});

describe('usage reports', () => {
  it('are non-negative integers of tokens and a non-negative cost, within bounds', () => {
    assert.deepEqual(checkUsage({}), { model: null, inputTokens: 0, outputTokens: 0, costUsd: 0 });
    assert.deepEqual(checkUsage({ model: 'm', inputTokens: 1, outputTokens: 2, costUsd: 0.5 }), { model: 'm', inputTokens: 1, outputTokens: 2, costUsd: 0.5 });
    for (const bad of [{ inputTokens: -1 }, { outputTokens: 1.5 }, { inputTokens: 2e9 }, { costUsd: -0.01 }, { costUsd: Number.NaN }, { model: '' }]) {
      assert.throws(() => checkUsage(bad), (e: unknown) => e instanceof FlotillaError && e.code === 'VALIDATION_FAILED', JSON.stringify(bad));
    }
    assert.equal(usageDay(T0), '2023-11-14');
  });
});
