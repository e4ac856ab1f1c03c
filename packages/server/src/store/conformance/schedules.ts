// Conformance: schedules (issue 16): created once per name, read back whole, listed by name,
// updated only while unchanged since read (updatedAt), advanced only by compare-and-set on
// nextFireAt (once when two stores race, never while paused), due ones listed soonest first,
// the earliest fire time of the unpaused ones, deleted.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { ScheduleRecord } from '../../core/schedules.ts';
import { T0, storeTest, type OpenStore } from './harness.ts';

function schedule(over: Partial<ScheduleRecord> = {}): ScheduleRecord {
  return {
    name: 'nightly',
    definition: { cron: '0 0 2 * * *', timezone: 'Europe/Paris', everyMs: null, task: { agent: 'a', input: { n: 1 }, priority: 'P1' }, overlap: 'skip', catchUp: 'none', catchUpWindowMs: 3_600_000 },
    source: 'api',
    owner: { id: 'key-1', name: 'ops', kind: 'key' },
    paused: false,
    pausedReason: null,
    nextFireAt: T0 + 1_000,
    lastFireAt: null,
    lastTaskId: null,
    lastFireNote: null,
    lastFireError: null,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

export function scheduleTests(open: OpenStore): void {
  describe('schedules', () => {
    storeTest(open, 'a schedule is created once per name, read back whole, listed by name and deleted', async ({ store }) => {
      assert.deepEqual(await store.scheduleCreate({ schedule: schedule() }), { created: true });
      assert.deepEqual(await store.scheduleCreate({ schedule: schedule({ source: 'config' }) }), { created: false });
      assert.deepEqual(await store.scheduleGet({ name: 'nightly' }), schedule());
      await store.scheduleCreate({ schedule: schedule({ name: 'Beta', definition: { ...schedule().definition, cron: null, timezone: null, everyMs: 5_000 } }) });
      assert.deepEqual((await store.scheduleList()).map((s) => s.name), ['Beta', 'nightly']);
      assert.deepEqual(await store.scheduleDelete({ name: 'Beta' }), { deleted: true });
      assert.deepEqual(await store.scheduleDelete({ name: 'Beta' }), { deleted: false });
      assert.equal(await store.scheduleGet({ name: 'Beta' }), null);
    });

    storeTest(open, 'an update applies only while updatedAt is the one read, and keeps the last firing', async ({ store }) => {
      await store.scheduleCreate({ schedule: schedule() });
      await store.scheduleAdvance({ name: 'nightly', expectedNextFireAt: T0 + 1_000, nextFireAt: T0 + 2_000, fire: { at: T0 + 1_000, taskId: 't1', note: null, error: null } });
      const paused = schedule({ paused: true, pausedReason: 'owner_revoked', nextFireAt: null, updatedAt: T0 + 5 });
      assert.deepEqual(await store.scheduleUpdate({ expectedUpdatedAt: T0, schedule: paused }), { updated: true });
      assert.deepEqual(await store.scheduleUpdate({ expectedUpdatedAt: T0, schedule: schedule({ updatedAt: T0 + 6 }) }), { updated: false });
      const read = (await store.scheduleGet({ name: 'nightly' }))!;
      assert.deepEqual([read.paused, read.pausedReason, read.nextFireAt, read.updatedAt, read.lastFireAt, read.lastTaskId], [true, 'owner_revoked', null, T0 + 5, T0 + 1_000, 't1']);
      assert.deepEqual(await store.scheduleUpdate({ expectedUpdatedAt: T0, schedule: schedule({ name: 'missing' }) }), { updated: false });
    });

    storeTest(open, 'an advance is a compare-and-set on nextFireAt: once when two race, never while paused', async ({ store, peer }) => {
      await store.scheduleCreate({ schedule: schedule() });
      const other = peer ? await peer() : store;
      const advance = (s: typeof store, taskId: string) => s.scheduleAdvance({ name: 'nightly', expectedNextFireAt: T0 + 1_000, nextFireAt: T0 + 2_000, fire: { at: T0 + 1_000, taskId, note: null, error: null } });
      const raced = await Promise.all([advance(store, 'ta'), advance(other, 'tb')]);
      assert.equal(raced.filter((r) => r.advanced).length, 1);
      const read = (await store.scheduleGet({ name: 'nightly' }))!;
      assert.equal(read.nextFireAt, T0 + 2_000);
      assert.equal(read.lastTaskId, raced[0]!.advanced ? 'ta' : 'tb');
      // A skipped firing is recorded with its note; an advance without a firing keeps the last one.
      await store.scheduleAdvance({ name: 'nightly', expectedNextFireAt: T0 + 2_000, nextFireAt: T0 + 3_000, fire: { at: T0 + 2_000, taskId: null, note: 'skipped_overlap', error: null } });
      await store.scheduleAdvance({ name: 'nightly', expectedNextFireAt: T0 + 3_000, nextFireAt: T0 + 4_000, fire: null });
      const skipped = (await store.scheduleGet({ name: 'nightly' }))!;
      assert.deepEqual([skipped.nextFireAt, skipped.lastFireAt, skipped.lastTaskId, skipped.lastFireNote], [T0 + 4_000, T0 + 2_000, null, 'skipped_overlap']);
      await store.scheduleUpdate({ expectedUpdatedAt: T0, schedule: schedule({ paused: true, nextFireAt: T0 + 4_000, updatedAt: T0 + 1 }) });
      assert.deepEqual(await store.scheduleAdvance({ name: 'nightly', expectedNextFireAt: T0 + 4_000, nextFireAt: T0 + 5_000, fire: null }), { advanced: false });
    });

    storeTest(open, 'due schedules are the unpaused ones at or before now, soonest first; the earliest fire time is the timer\'s', async ({ store }) => {
      await store.scheduleCreate({ schedule: schedule({ name: 'late', nextFireAt: T0 + 300 }) });
      await store.scheduleCreate({ schedule: schedule({ name: 'soon', nextFireAt: T0 + 100 }) });
      await store.scheduleCreate({ schedule: schedule({ name: 'paused', nextFireAt: T0 + 50, paused: true }) });
      await store.scheduleCreate({ schedule: schedule({ name: 'never', nextFireAt: null }) });
      await store.scheduleCreate({ schedule: schedule({ name: 'future', nextFireAt: T0 + 10_000 }) });
      assert.deepEqual((await store.scheduleListDue({ now: T0 + 300, limit: 10 })).map((s) => s.name), ['soon', 'late']);
      assert.deepEqual((await store.scheduleListDue({ now: T0 + 300, limit: 1 })).map((s) => s.name), ['soon']);
      assert.equal(await store.scheduleNextFireAt(), T0 + 100);
      await store.scheduleDelete({ name: 'soon' });
      await store.scheduleDelete({ name: 'late' });
      await store.scheduleDelete({ name: 'future' });
      assert.equal(await store.scheduleNextFireAt(), null);
    });
  });
}
