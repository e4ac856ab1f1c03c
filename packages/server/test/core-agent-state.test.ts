// Agent states and waiting reasons (pure rules, core/agent-state.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { agentState, isOverloaded, waitingReason, type WaitingInput } from '../src/core/agent-state.ts';

const T = { pendingAgeMs: 1_000, queueDepth: 10 };
const live = (inFlight: number, maxConcurrency = 1) => ({ status: 'live' as const, inFlight, maxConcurrency });

describe('agent state', () => {
  it('offline without a connected replica, whatever waits', () => {
    assert.equal(agentState({ replicas: [], pending: 100, oldestRunAt: 0 }, 10_000, T), 'offline');
    assert.equal(agentState({ replicas: [{ status: 'lost', inFlight: 0, maxConcurrency: 1 }], pending: 0, oldestRunAt: null }, 0, T), 'offline');
  });
  it('overloaded: all slots full and the oldest task waited past the threshold, or a queue over the depth', () => {
    assert.equal(isOverloaded({ replicas: [live(1)], pending: 1, oldestRunAt: 0 }, 1_000, T), false, 'at the threshold, not past it');
    assert.equal(isOverloaded({ replicas: [live(1)], pending: 1, oldestRunAt: 0 }, 1_001, T), true);
    assert.equal(isOverloaded({ replicas: [live(1), live(0)], pending: 1, oldestRunAt: 0 }, 5_000, T), false, 'a free slot');
    assert.equal(isOverloaded({ replicas: [live(0)], pending: 11, oldestRunAt: 4_999 }, 5_000, T), true, 'too deep');
    assert.equal(isOverloaded({ replicas: [{ status: 'draining', inFlight: 1, maxConcurrency: 1 }], pending: 50, oldestRunAt: 0 }, 5_000, T), false, 'no live replica to blame');
  });
  it('active with work in flight, idle without', () => {
    assert.equal(agentState({ replicas: [live(1, 4)], pending: 0, oldestRunAt: null }, 0, T), 'active');
    assert.equal(agentState({ replicas: [live(0, 4)], pending: 0, oldestRunAt: null }, 0, T), 'idle');
  });
});

describe('waiting reason', () => {
  const agent = { name: 'a', capabilities: ['x'], concurrencyLimits: { k: 1 }, pausedAt: null };
  const replica = { id: 'r1', agent: 'a', status: 'live' as const, maxConcurrency: 1, inFlight: 0, health: 'healthy' as const };
  const input = (over: Omit<Partial<WaitingInput>, 'task'> & { task?: Partial<WaitingInput['task']> } = {}): WaitingInput => ({
    now: 100, agents: [agent], replicas: [replica], keyInFlight: 0, serverKeyLimits: {}, ...over,
    task: { status: 'pending', runAt: 0, agent: 'a', capabilities: [], replica: null, concurrencyKey: null, ...over.task },
  });
  it('in order: suspension, schedule, pause, replicas, health, key, slots', () => {
    assert.equal(waitingReason(input({ task: { status: 'waiting' } })), 'waiting_for_children');
    assert.equal(waitingReason(input({ task: { status: 'input_required' } })), 'waiting_for_input');
    assert.equal(waitingReason(input({ task: { status: 'running' } })), null);
    assert.equal(waitingReason(input({ task: { runAt: 101 } })), 'scheduled');
    assert.equal(waitingReason(input({ agents: [{ ...agent, pausedAt: 1 }] })), 'agent_paused');
    assert.equal(waitingReason(input({ replicas: [] })), 'no_live_replica');
    assert.equal(waitingReason(input({ task: { replica: 'other' } })), 'no_live_replica');
    assert.equal(waitingReason(input({ replicas: [{ ...replica, health: 'unhealthy' }] })), 'no_healthy_replica');
    assert.equal(waitingReason(input({ task: { concurrencyKey: 'k' }, keyInFlight: 1 })), 'concurrency_key_at_limit');
    assert.equal(waitingReason(input({ task: { concurrencyKey: 'unlimited' }, keyInFlight: 50 })), 'queued');
    assert.equal(waitingReason(input({ replicas: [{ ...replica, inFlight: 1 }] })), 'all_slots_full');
    assert.equal(waitingReason(input()), 'queued');
  });
  it('a capability-routed task waits on every agent that serves it', () => {
    const b = { ...agent, name: 'b', pausedAt: 5 };
    const task = { agent: null, capabilities: ['x'] };
    assert.equal(waitingReason(input({ task, agents: [{ ...agent, pausedAt: 5 }, b] })), 'agent_paused');
    assert.equal(waitingReason(input({ task, agents: [agent, b] })), 'queued');
  });
});
