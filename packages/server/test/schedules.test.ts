// Schedules (issue 16, docs/schedules.md) through the HTTP API on both stores, on the
// harness's clock (sweeps are called by the test after `advance`): validation that writes
// nothing, permissions, one task per fire time however often a sweep runs, the overlap
// policies, the catch-up policies after a gap, pause/resume, a revoked owner, config-declared
// schedules.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduleView, TaskView } from '@flotilla/sdk';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { scheduleFireKey } from '../src/core/schedules.ts';
import { FlotillaError } from '../src/core/errors.ts';
import { pino } from 'pino';
import { Engine } from '../src/engine/engine.ts';
import { withHarness, type Harness } from './helpers/harness.ts';

const MINUTE = 60_000;
// The background sweep stays out of the way: the tests sweep themselves.
const config = { scheduleSweepMs: 3_600_000 };

async function createKey(h: Harness, role: string): Promise<{ id: string; token: string }> {
  const res = await h.api('POST', '/keys', { name: `${role}-${Math.random()}`, role });
  assert.equal(res.status, 201);
  return { id: res.body.key.id as string, token: res.body.token as string };
}

/** The tasks a schedule submitted, oldest first. */
async function firedTasks(h: Harness, name: string): Promise<TaskView[]> {
  const page = await h.api<{ items: TaskView[] }>('GET', '/tasks?limit=500');
  return page.body.items.filter((t) => t.correlation.schedule === name).reverse();
}

async function schedule(h: Harness, body: object): Promise<ScheduleView> {
  const res = await h.api<ScheduleView>('POST', '/schedules', body);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function finish(h: Harness, taskId: string): Promise<void> {
  const res = await h.api('POST', `/tasks/${taskId}/cancel`, {});
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`schedules (${store})`, () => {
    it('a bad cron, an unknown time zone, an unknown agent or an invalid template is a 400 that writes nothing', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        await h.agent({ name: 'c', capabilities: ['x'] });
        const refused = [
          { name: 's', cron: 'every day', task: { agent: 'a' } },
          { name: 's', cron: '0 0 * * *', timezone: 'Mars/Olympus', task: { agent: 'a' } },
          { name: 's', everyMs: 5_000, timezone: 'UTC', task: { agent: 'a' } },
          { name: 's', everyMs: 5_000, task: { agent: 'ghost' } },
          { name: 's', everyMs: 5_000, task: { agent: 'a', capabilities: ['x'] } },
          { name: 's', task: { agent: 'a' } },
          // The submit's cache rules too, not only at the first firing.
          { name: 's', everyMs: 5_000, task: { capabilities: ['x'], cacheKey: 'k' } },
          { name: 's', everyMs: 5_000, task: { agent: 'a', cacheTtlMs: 1_000 } },
        ];
        for (const body of refused) {
          const res = await h.api('POST', '/schedules', body);
          assert.equal(res.status, 400, JSON.stringify(body));
          assert.equal(res.body.error.code, 'INVALID_SCHEDULE', JSON.stringify(res.body));
        }
        const ghost = await h.api('POST', '/schedules', refused[3]);
        assert.equal(ghost.body.error.details.code, 'UNKNOWN_AGENT');
        // The schema's own refusals (an unknown field, a template with an idempotency key).
        assert.equal((await h.api('POST', '/schedules', { name: 's', everyMs: 5_000, task: { agent: 'a', idempotencyKey: 'k' } })).status, 400);
        assert.deepEqual((await h.api('GET', '/schedules')).body.items, []);
        await schedule(h, { name: 's', everyMs: 5_000, task: { agent: 'a' } });
        const again = await h.api('POST', '/schedules', { name: 's', everyMs: 9_000, task: { agent: 'a' } });
        assert.deepEqual([again.status, again.body.error.code], [409, 'SCHEDULE_EXISTS']);
        assert.deepEqual([(await h.api('GET', '/schedules/nope')).status, (await h.api('GET', '/schedules/nope')).body.error.code], [404, 'SCHEDULE_NOT_FOUND']);
      }, { config });
    });

    it('operators manage schedules, viewers only read them', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        const operator = await createKey(h, 'operator');
        const viewer = await createKey(h, 'viewer');
        const as = (token: string) => ({ authorization: `Bearer ${token}` });
        const created = await h.api('POST', '/schedules', { name: 'ops', everyMs: MINUTE, task: { agent: 'a' } }, as(operator.token));
        assert.equal(created.status, 201);
        assert.equal(created.body.ownerId, operator.id);
        assert.equal((await h.api('GET', '/schedules/ops', undefined, as(viewer.token))).status, 200);
        assert.equal((await h.api('POST', '/schedules/ops/pause', {}, as(viewer.token))).status, 403);
        assert.equal((await h.api('POST', '/schedules', { name: 'v', everyMs: MINUTE, task: { agent: 'a' } }, as(viewer.token))).status, 403);
        assert.equal((await h.api('DELETE', '/schedules/ops', undefined, as(viewer.token))).status, 403);
      }, { config });
    });

    it("a submit cannot take a schedule's fire key ahead of it (400, nothing written): the firing submits the schedule's own task", async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        await h.agent({ name: 'b' });
        const s = await schedule(h, { name: 'nightly', everyMs: MINUTE, task: { agent: 'a', input: { job: 'nightly' } } });
        const operator = await createKey(h, 'operator');
        const squat = await h.api('POST', '/tasks', { agent: 'b', input: { job: 'squatter' }, idempotencyKey: scheduleFireKey('nightly', Date.parse(s.nextFireTimes[0]!)) }, { authorization: `Bearer ${operator.token}` });
        assert.deepEqual([squat.status, squat.body.error?.code], [400, 'VALIDATION_FAILED'], JSON.stringify(squat.body));
        assert.deepEqual((await h.api('GET', '/tasks')).body.items, [], 'nothing written');
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        const fired = await firedTasks(h, 'nightly');
        assert.deepEqual(fired.map((x) => [x.agent, x.input]), [['a', { job: 'nightly' }]]);
      }, { config });
    });

    it('a firing the database could not take (unavailable) is not given up: the next sweep fires that fire time', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        const s = await schedule(h, { name: 'blip', everyMs: MINUTE, task: { agent: 'a' } });
        const first = Date.parse(s.nextFireTimes[0]!);
        const taskCreate = h.store.taskCreate.bind(h.store);
        h.store.taskCreate = async () => {
          h.store.taskCreate = taskCreate;
          throw new FlotillaError('STORE_UNAVAILABLE', 'the database is unavailable: a blip');
        };
        h.advance(MINUTE);
        await h.engine.schedules.sweep().catch(() => {});
        assert.equal(h.store.taskCreate, taskCreate, 'the firing met the outage');
        assert.equal((await h.store.scheduleGet({ name: 'blip' }))?.nextFireAt, first, 'the fire time is still due');
        await h.engine.schedules.sweep();
        const fired = await firedTasks(h, 'blip');
        assert.deepEqual(fired.map((x) => x.idempotencyKey), [scheduleFireKey('blip', first)]);
      }, { config });
    });

    it('each fire time is one task, keyed by the schedule and the fire time, however often the sweep runs', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        const s = await schedule(h, { name: 'tick', everyMs: MINUTE, task: { agent: 'a', input: { hello: 1 }, priority: 'P1' }, overlap: 'allow' });
        assert.equal(s.nextFireTimes.length, 5);
        const first = Date.parse(s.nextFireTimes[0]!);
        assert.equal(Date.parse(s.nextFireTimes[1]!) - first, MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'tick')).length, 0, 'nothing is due yet');
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        await h.engine.schedules.sweep();
        const fired = await firedTasks(h, 'tick');
        assert.equal(fired.length, 1);
        assert.equal(fired[0]!.idempotencyKey, scheduleFireKey('tick', first));
        assert.deepEqual([fired[0]!.input, fired[0]!.priority, fired[0]!.agent], [{ hello: 1 }, 7, 'a']);
        // A sweep that fired but lost its advance (a crash) fires the same key again: the same task.
        await h.store.scheduleUpdate({ expectedUpdatedAt: Date.parse((await h.api('GET', '/schedules/tick')).body.updatedAt), schedule: { ...(await h.store.scheduleGet({ name: 'tick' }))!, nextFireAt: first } });
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'tick')).length, 1);
        const view = (await h.api<ScheduleView>('GET', '/schedules/tick')).body;
        assert.deepEqual([view.lastFire?.taskId, view.lastFire?.outcome, Date.parse(view.lastFire!.at)], [fired[0]!.id, 'pending', first]);
        assert.equal(Date.parse(view.nextFireTimes[0]!), first + MINUTE);
      }, { config });
    });

    it('overlap: skip leaves a fire time out while the previous run is open; allow fires it; cancel_previous cancels the previous', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        for (const overlap of ['skip', 'allow', 'cancel_previous']) await schedule(h, { name: overlap, everyMs: MINUTE, overlap, task: { agent: 'a' } });
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        const skip = await firedTasks(h, 'skip');
        assert.equal(skip.length, 1, 'skip: the second fire time found the first run pending');
        assert.equal((await h.api<ScheduleView>('GET', '/schedules/skip')).body.lastFire?.outcome, 'skipped_overlap');
        assert.deepEqual((await firedTasks(h, 'allow')).map((x) => x.status), ['pending', 'pending']);
        const cancelled = await firedTasks(h, 'cancel_previous');
        assert.deepEqual(cancelled.map((x) => x.status), ['cancelled', 'pending']);
        // A skipped firing names the run it was skipped for, and the next fire time still finds it open.
        assert.equal((await h.api<ScheduleView>('GET', '/schedules/skip')).body.lastFire?.taskId, skip[0]!.id);
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'skip')).length, 1, 'skip: the third fire time found the first run still pending');
        // Once the previous run is over, skip fires again.
        await finish(h, skip[0]!.id);
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'skip')).length, 2);
      }, { config });
    });

    it('catch-up after a gap: none fires nothing missed, one fires the latest, all fires each within the window', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        for (const catchUp of ['none', 'one', 'all']) {
          await schedule(h, { name: catchUp, everyMs: MINUTE, overlap: 'allow', catchUp, catchUpWindowMs: 5 * MINUTE, task: { agent: 'a' } });
        }
        const created = new Map((await h.api<{ items: ScheduleView[] }>('GET', '/schedules')).body.items.map((v) => [v.name, Date.parse(v.createdAt)]));
        const at = (name: string, k: number) => scheduleFireKey(name, created.get(name)! + k * MINUTE);
        const fired = async (name: string) => (await firedTasks(h, name)).map((x) => x.idempotencyKey);
        // Down for ten minutes and a half: fire times at +1..+10 min were missed; the latest
        // (+10 min) is found 30 s late, which is on time.
        h.advance(10 * MINUTE + 30_000);
        await h.engine.schedules.sweep();
        assert.deepEqual(await fired('none'), [at('none', 10)]);
        assert.deepEqual(await fired('one'), [at('one', 10)]);
        assert.deepEqual(await fired('all'), [6, 7, 8, 9, 10].map((k) => at('all', k)));
        // Down again for longer than the window: all fires only what is within it, none nothing at all.
        h.advance(20 * MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await fired('none')).length, 2, 'none: the latest fire time (+30 min) is on time');
        assert.deepEqual((await fired('all')).slice(5), [26, 27, 28, 29, 30].map((k) => at('all', k)), 'all: +26..+30 min, within the window');
        const next = (await h.api<ScheduleView>('GET', '/schedules/all')).body.nextFireTimes[0]!;
        assert.ok(Date.parse(next) > h.now(), 'the next fire time is after now');
      }, { config });
    });

    it('after a restart with a gap, the new engine catches up from the stored next fire time', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        await schedule(h, { name: 'restarted', everyMs: MINUTE, overlap: 'allow', catchUp: 'all', catchUpWindowMs: 3 * MINUTE, task: { agent: 'a' } });
        const created = Date.parse((await h.api<ScheduleView>('GET', '/schedules/restarted')).body.createdAt);
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        // The server stops; it starts again 10 minutes later (a new engine on the same database).
        await h.engine.stop();
        const later = h.now() + 10 * MINUTE;
        const engine = new Engine({ store: h.store, config: h.config, log: pino({ level: 'silent' }), clock: { now: () => later } });
        await engine.start();
        try {
          await engine.schedules.sweep();
        } finally {
          await engine.stop();
        }
        const keys = (await h.store.taskList({ limit: 100, oldestFirst: true })).items.filter((x) => x.correlation.schedule === 'restarted').map((x) => x.idempotencyKey);
        // +1 before the stop; then +9, +10, +11 (within 3 minutes of +11.x), not +2 .. +8.
        assert.deepEqual(keys, [1, 9, 10, 11].map((k) => scheduleFireKey('restarted', created + k * MINUTE)));
        assert.equal((await h.store.scheduleGet({ name: 'restarted' }))!.nextFireAt, created + 12 * MINUTE);
      }, { config });
    });

    it('a paused schedule does not fire and does not catch up; resumed, it fires from its next fire time', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        await schedule(h, { name: 'p', everyMs: MINUTE, catchUp: 'all', overlap: 'allow', task: { agent: 'a' } });
        const paused = await h.api<ScheduleView>('POST', '/schedules/p/pause', {});
        assert.deepEqual([paused.status, paused.body.paused, paused.body.nextFireTimes], [200, true, []]);
        h.advance(5 * MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'p')).length, 0);
        const resumed = await h.api<ScheduleView>('POST', '/schedules/p/resume', {});
        assert.equal(resumed.body.paused, false);
        assert.ok(Date.parse(resumed.body.nextFireTimes[0]!) > h.now());
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'p')).length, 0, 'nothing from the paused time is caught up');
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'p')).length, 1);
        // PATCH recomputes the timing; DELETE removes the schedule, not its tasks.
        const patched = await h.api<ScheduleView>('PATCH', '/schedules/p', { cron: '0 0 3 * * *', timezone: 'Europe/Paris' });
        assert.deepEqual([patched.status, patched.body.cron, patched.body.everyMs], [200, '0 0 3 * * *', null]);
        assert.equal(new Date(patched.body.nextFireTimes[0]!).toLocaleString('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }), '03:00');
        assert.equal((await h.api('PATCH', '/schedules/p', { timezone: 'Nowhere/Land' })).body.error.code, 'INVALID_SCHEDULE');
        // A new cron alone keeps the schedule's time zone (02:00 in Paris, not in UTC).
        const recron = await h.api<ScheduleView>('PATCH', '/schedules/p', { cron: '0 0 2 * * *' });
        assert.deepEqual([recron.status, recron.body.timezone], [200, 'Europe/Paris'], JSON.stringify(recron.body));
        assert.equal(new Date(recron.body.nextFireTimes[0]!).toLocaleString('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }), '02:00');
        assert.equal((await h.api('DELETE', '/schedules/p')).status, 200);
        assert.equal((await h.api('GET', '/schedules/p')).status, 404);
        assert.equal((await firedTasks(h, 'p')).length, 1);
      }, { config });
    });

    it('tasks are submitted as the owner; once its key is revoked the schedule pauses itself and submits nothing', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'a' });
        const operator = await createKey(h, 'operator');
        const res = await h.api('POST', '/schedules', { name: 'owned', everyMs: MINUTE, overlap: 'allow', task: { agent: 'a' } }, { authorization: `Bearer ${operator.token}` });
        assert.equal(res.status, 201);
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        const [task] = await firedTasks(h, 'owned');
        assert.deepEqual([task?.createdBy, task?.ownerId], [operator.id, operator.id]);
        assert.equal((await h.api('POST', `/keys/${operator.id}/revoke`, {})).status, 200);
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'owned')).length, 1);
        const view = (await h.api<ScheduleView>('GET', '/schedules/owned')).body;
        assert.deepEqual([view.paused, view.pausedReason, view.lastFire?.outcome], [true, 'owner_revoked', 'owner_revoked']);
        // Resumed by an admin, who then owns it.
        const resumed = await h.api<ScheduleView>('POST', '/schedules/owned/resume', {});
        assert.deepEqual([resumed.body.paused, resumed.body.ownerId === operator.id], [false, false]);
      }, { config });
    });

    it('schedules from the config file are created at start, owned by the server, and fire', async (t) => {
      await withHarness(t, store, async (h) => {
        const view = (await h.api<ScheduleView>('GET', '/schedules/from-config')).body;
        assert.deepEqual([view.source, view.ownerId, view.everyMs, view.catchUp], ['config', 'system', MINUTE, 'one']);
        h.advance(MINUTE);
        await h.engine.schedules.sweep();
        assert.equal((await firedTasks(h, 'from-config')).length, 1);
        // Declared again unchanged (a restart): the firing state is kept.
        await h.engine.schedules.declare(h.config.schedules);
        assert.ok((await h.api<ScheduleView>('GET', '/schedules/from-config')).body.lastFire !== null);
        // Declared with another interval: replaced.
        await h.engine.schedules.declare([{ ...h.config.schedules[0]!, everyMs: 2 * MINUTE }]);
        assert.equal((await h.api<ScheduleView>('GET', '/schedules/from-config')).body.everyMs, 2 * MINUTE);
      }, {
        config: {
          ...config,
          agents: [{ name: 'cfg-agent' }],
          schedules: [{ name: 'from-config', everyMs: MINUTE, catchUp: 'one', task: { agent: 'cfg-agent', input: { from: 'config' } } }],
        },
      });
    });
  });
}

describe('schedules in the config file', () => {
  const load = (yaml: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-sched-config-'));
    try {
      writeFileSync(join(dir, 'flotilla.config.yaml'), yaml);
      return loadConfig({ cwd: dir, env: {} });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('are read with their task templates (dates included); a bad cron, a duplicate or an unknown field stops the start', () => {
    const config = load('schedules:\n  - name: nightly\n    cron: "0 30 2 * * *"\n    timezone: Europe/Paris\n    catchUp: one\n    task: { agent: a, deadline: "2030-01-01T00:00:00Z", priority: P1 }\nserver:\n  scheduleSweepMs: 500\n');
    assert.deepEqual(config.schedules, [{ name: 'nightly', cron: '0 30 2 * * *', timezone: 'Europe/Paris', catchUp: 'one', task: { agent: 'a', deadline: '2030-01-01T00:00:00Z', priority: 'P1' } }]);
    assert.equal(config.scheduleSweepMs, 500);
    assert.throws(() => load('schedules:\n  - { name: s, cron: "every day", task: { agent: a } }\n'), /schedules\/s invalid cron expression/);
    assert.throws(() => load('schedules:\n  - { name: s, everyMs: 5000, task: { agent: a } }\n  - { name: s, everyMs: 6000, task: { agent: a } }\n'), /declares schedule "s" twice/);
    assert.throws(() => load('schedules:\n  - { name: s, everyMs: 5000, task: { agent: a, runAt: "2030-01-01T00:00:00Z" } }\n'), ConfigError);
  });
});
