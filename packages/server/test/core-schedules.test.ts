// core/schedules.ts: cron times in a time zone across DST changes (croner), intervals, the
// validation of a timing, and which due fire times a sweep fires under each catch-up policy.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CATCH_UP, ON_TIME_MS, nextFireAfter, nextFireTimes, planFires, scheduleFireKey, timingProblem } from '../src/core/schedules.ts';

const iso = (ms: number[]) => ms.map((m) => new Date(m).toISOString());
const MINUTE = 60_000;

describe('schedule timing', () => {
  it('a cron in a time zone keeps its local time across DST: one firing a day, the UTC time shifts', () => {
    // New York springs forward on 2026-03-08: 09:00 local is 14:00Z before, 13:00Z after.
    const ny = { cron: '0 0 9 * * *', timezone: 'America/New_York' };
    assert.deepEqual(iso(nextFireTimes(ny, Date.parse('2026-03-07T00:00:00Z'), 3)), ['2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z', '2026-03-09T13:00:00.000Z']);
    // 01:30 happens twice on 2026-11-01 (fall back): it fires once that day.
    const twice = nextFireTimes({ cron: '0 30 1 * * *', timezone: 'America/New_York' }, Date.parse('2026-10-31T12:00:00Z'), 3);
    assert.deepEqual(iso(twice), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z', '2026-11-03T06:30:00.000Z']);
    // 02:30 does not exist in Berlin on 2026-03-29: that day still has exactly one firing.
    const berlin = nextFireTimes({ cron: '0 30 2 * * *', timezone: 'Europe/Berlin' }, Date.parse('2026-03-28T00:00:00Z'), 3);
    assert.deepEqual(berlin.map((m) => new Date(m).toISOString().slice(0, 10)), ['2026-03-28', '2026-03-29', '2026-03-30']);
    // Without a time zone, UTC; seconds are the first of six fields.
    assert.deepEqual(iso(nextFireTimes({ cron: '*/20 * * * * *', timezone: null }, Date.parse('2026-01-01T00:00:05Z'), 2)), ['2026-01-01T00:00:20.000Z', '2026-01-01T00:00:40.000Z']);
  });

  it('an interval fires every everyMs from its anchor, strictly after the time given', () => {
    const every = { everyMs: 5_000, anchor: 1_000 };
    assert.equal(nextFireAfter(every, 0), 1_000);
    assert.equal(nextFireAfter(every, 1_000), 6_000);
    assert.equal(nextFireAfter(every, 5_999), 6_000);
  });

  it('refuses a bad cron, an unknown time zone, a short interval, both or neither', () => {
    assert.match(timingProblem({ cron: 'every day' })!, /invalid cron/);
    assert.match(timingProblem({ cron: '0 0 * * *', timezone: 'Mars/Olympus' })!, /unknown time zone/);
    assert.match(timingProblem({ everyMs: 999 })!, /at least 1000/);
    assert.match(timingProblem({ cron: '0 0 * * *', everyMs: 5_000 })!, /exactly one/);
    assert.match(timingProblem({})!, /exactly one/);
    assert.equal(timingProblem({ cron: '0 0 * * *', timezone: 'Europe/Paris' }), null);
    assert.equal(scheduleFireKey('s', Date.parse('2026-01-01T00:00:00Z')), 'schedule:s:2026-01-01T00:00:00.000Z');
  });
});

describe('catch-up plans', () => {
  const timing = { everyMs: MINUTE, anchor: 0 };
  const plan = (catchUp: 'none' | 'one' | 'all', now: number, windowMs = 5 * MINUTE) => planFires({ timing, nextFireAt: MINUTE, now, catchUp, windowMs });

  it('on time, every policy fires the fire time; the next one is after now', () => {
    for (const p of ['none', 'one', 'all'] as const) assert.deepEqual(plan(p, MINUTE + 10), { fire: [MINUTE], dropped: 0, next: 2 * MINUTE });
    assert.deepEqual(plan('none', MINUTE - 1), { fire: [], dropped: 0, next: MINUTE });
  });

  it('after a gap: none fires only an on-time latest, one the latest within the window, all each within it', () => {
    const tenMinutes = { everyMs: 10 * MINUTE, anchor: 0 };
    const gap = (catchUp: 'none' | 'one' | 'all', now: number) => planFires({ timing: tenMinutes, nextFireAt: 10 * MINUTE, now, catchUp, windowMs: 25 * MINUTE });
    // Due: +10 .. +50 min; the latest (+50) found 2 minutes late, later than ON_TIME_MS.
    const now = 52 * MINUTE;
    assert.ok(2 * MINUTE > ON_TIME_MS);
    assert.deepEqual(gap('none', now), { fire: [], dropped: 5, next: 60 * MINUTE });
    assert.deepEqual(gap('one', now), { fire: [50 * MINUTE], dropped: 4, next: 60 * MINUTE });
    assert.deepEqual(gap('all', now), { fire: [30, 40, 50].map((k) => k * MINUTE), dropped: 2, next: 60 * MINUTE });
    // Found later than the window (hourly, 10 minutes late, a 5-minute window): one drops it too.
    assert.deepEqual(planFires({ timing: { everyMs: 60 * MINUTE, anchor: 0 }, nextFireAt: 60 * MINUTE, now: 70 * MINUTE, catchUp: 'one', windowMs: 5 * MINUTE }).fire, []);
  });

  it('all is bounded: at most MAX_CATCH_UP, the most recent', () => {
    const every = planFires({ timing: { everyMs: 1_000, anchor: 0 }, nextFireAt: 1_000, now: 1_000_000, catchUp: 'all', windowMs: 1_000_000 });
    assert.equal(every.fire.length, MAX_CATCH_UP);
    assert.equal(every.fire.at(-1), 1_000_000);
    assert.equal(every.next, 1_001_000);
  });
});
