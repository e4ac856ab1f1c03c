// Priorities and SLAs (pure, core/sla.ts): aliases, bands, a new task's deadline, when it is
// at risk, and what the sweep writes. The stores apply the marks in the conformance suite.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRIORITY_ALIASES } from '@flotilla/sdk';
import { FlotillaError } from '../src/core/errors.ts';
import { compareDispatchOrder } from '../src/core/routing.ts';
import { DEFAULT_SLA_POLICY, atRiskAt, decideSlaCheck, priorityBand, resolvePriority, slaStateOf, slaTerms } from '../src/core/sla.ts';
import type { TaskRecord } from '../src/core/types.ts';

const T0 = 1_700_000_000_000;
const H = 3_600_000;
const policy = DEFAULT_SLA_POLICY;

function task(over: Partial<TaskRecord> = {}) {
  return {
    id: 't', status: 'running', agent: 'a', priority: 5, createdAt: T0, finishedAt: null,
    slaDeadline: T0 + 10 * H, slaState: 'ok', slaCheckAt: T0 + 8 * H, ...over,
  } as Pick<TaskRecord, 'id' | 'status' | 'agent' | 'priority' | 'createdAt' | 'finishedAt' | 'slaDeadline' | 'slaState' | 'slaCheckAt'>;
}

describe('priority aliases and bands', () => {
  it('P0..P3 are 9, 7, 5, 2; a number stays itself; absent is the default 5', () => {
    assert.deepEqual(PRIORITY_ALIASES, { P0: 9, P1: 7, P2: 5, P3: 2 });
    assert.deepEqual(['P0', 'P1', 'P2', 'P3'].map((p) => resolvePriority(p as 'P0')), [9, 7, 5, 2]);
    assert.equal(resolvePriority(3), 3);
    assert.equal(resolvePriority(undefined), 5);
  });
  it('every value of the scale falls in one band: P0 8-9, P1 6-7, P2 4-5, P3 0-3', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(priorityBand), ['P3', 'P3', 'P3', 'P3', 'P2', 'P2', 'P1', 'P1', 'P0', 'P0']);
    for (const [alias, value] of Object.entries(PRIORITY_ALIASES)) assert.equal(priorityBand(value), alias);
  });
});

describe('a new task\'s SLA', () => {
  it('the band\'s policy by default: P0 1 h, P1 24 h, P2 7 days, P3 none', () => {
    assert.equal(slaTerms({ createdAt: T0, priority: 9, policy }).slaDeadline, T0 + H);
    assert.equal(slaTerms({ createdAt: T0, priority: 6, policy }).slaDeadline, T0 + 24 * H);
    assert.equal(slaTerms({ createdAt: T0, priority: 5, policy }).slaDeadline, T0 + 7 * 24 * H);
    assert.deepEqual(slaTerms({ createdAt: T0, priority: 2, policy }), { slaDeadline: null, slaState: 'none', slaCheckAt: null });
  });
  it('slaMs or a deadline of its own wins over the band; at risk at the fraction of its time', () => {
    assert.deepEqual(slaTerms({ createdAt: T0, priority: 2, slaMs: 10_000, policy }), { slaDeadline: T0 + 10_000, slaState: 'ok', slaCheckAt: T0 + 8_000 });
    assert.deepEqual(slaTerms({ createdAt: T0, priority: 9, deadline: T0 + 5 * H, policy: { ...policy, atRiskFraction: 0.5 } }),
      { slaDeadline: T0 + 5 * H, slaState: 'ok', slaCheckAt: T0 + 2.5 * H });
    assert.equal(atRiskAt(T0, T0 + 1000, 1), T0 + 1000);
  });
  it('refuses both at once, and a deadline that is not in the future', () => {
    const code = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof FlotillaError && e.code === 'VALIDATION_FAILED');
    code(() => slaTerms({ createdAt: T0, priority: 5, deadline: T0 + 1, slaMs: 1, policy }));
    code(() => slaTerms({ createdAt: T0, priority: 5, deadline: T0, policy }));
  });
});

describe('the SLA sweep\'s decision', () => {
  it('an open task at its at-risk time: at_risk, once, next looked at at the deadline', () => {
    assert.equal(decideSlaCheck({ task: task(), now: T0 + 8 * H - 1 }), null);
    const mark = decideSlaCheck({ task: task(), now: T0 + 8 * H });
    assert.equal(mark?.state, 'at_risk');
    assert.equal(mark?.checkAt, T0 + 10 * H);
    assert.equal(mark?.event?.type, 'sla.at_risk');
    assert.deepEqual([mark?.fromState, mark?.fromStatus], ['ok', 'running']);
    assert.equal(mark?.event?.data.deadline, new Date(T0 + 10 * H).toISOString());
    // Already at risk: nothing more until the deadline.
    assert.equal(decideSlaCheck({ task: task({ slaState: 'at_risk', slaCheckAt: T0 + 10 * H }), now: T0 + 9 * H }), null);
  });
  it('open at its deadline: violated (straight from ok too: no warning after the fact)', () => {
    for (const slaState of ['ok', 'at_risk'] as const) {
      const mark = decideSlaCheck({ task: task({ slaState, status: 'waiting' }), now: T0 + 10 * H });
      assert.equal(mark?.state, 'violated');
      assert.equal(mark?.checkAt, null);
      assert.equal(mark?.event?.type, 'sla.violated');
    }
  });
  it('ended by the deadline: met, without an event; ended after it: violated, with one', () => {
    const met = decideSlaCheck({ task: task({ status: 'completed', finishedAt: T0 + 10 * H }), now: T0 + 20 * H });
    assert.deepEqual([met?.state, met?.event], ['met', null]);
    const late = decideSlaCheck({ task: task({ status: 'failed', slaState: 'at_risk', finishedAt: T0 + 11 * H }), now: T0 + 12 * H });
    assert.equal(late?.state, 'violated');
    assert.equal(late?.event?.data.lateMs, H);
  });
  it('settled or without an SLA: nothing, ever', () => {
    for (const slaState of ['none', 'met', 'violated'] as const) assert.equal(decideSlaCheck({ task: task({ slaState }), now: T0 + 99 * H }), null);
    assert.equal(decideSlaCheck({ task: task({ slaDeadline: null }), now: T0 + 99 * H }), null);
  });
  it('the view settles a task that ended since the last sweep as it will be settled', () => {
    assert.equal(slaStateOf(task({ status: 'completed', finishedAt: T0 + H }) as TaskRecord), 'met');
    assert.equal(slaStateOf(task({ status: 'completed', finishedAt: T0 + 11 * H }) as TaskRecord), 'violated');
    assert.equal(slaStateOf(task() as TaskRecord), 'ok');
  });
});

describe('dispatch order', () => {
  it('priority, then the earlier deadline (none last), then submission', () => {
    const p = (priority: number, slaDeadline: number | null, seq: number) => ({ priority, slaDeadline, seq });
    const sorted = [p(5, null, 1), p(5, 300, 2), p(9, null, 3), p(5, 100, 4), p(5, 100, 5), p(5, null, 0)].sort(compareDispatchOrder);
    assert.deepEqual(sorted.map((x) => x.seq), [3, 4, 5, 2, 0, 1]);
  });
});
