// Schedules across `flotilla serve` processes on one PostgreSQL database: a schedule every
// second fires on the maintenance node only; SIGKILL that node and the other takes the duty
// over: every fire time is still one task (none twice), and with `catchUp: "all"` none is
// lost across the takeover either.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskView } from '@flotilla/sdk';
import { createTestSchema, postgresAvailable } from './helpers/postgres.ts';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const available = await postgresAvailable();
const env = { FLOTILLA_REAPER_INTERVAL_MS: '200', FLOTILLA_SCHEDULE_SWEEP_MS: '300' };

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The fire times (ms) of the schedule's tasks, one entry per task. */
async function fireTimes(url: string): Promise<number[]> {
  const page = await callServer(url, 'GET', '/tasks?limit=500');
  assert.equal(page.status, 200);
  return (page.body.items as TaskView[])
    .filter((t) => t.correlation.schedule === 'every-second')
    .map((t) => Date.parse(t.idempotencyKey!.slice('schedule:every-second:'.length)))
    .sort((x, y) => x - y);
}

describe('schedules on several nodes', { skip: available ? false : (process.env.CI === 'true' ? false : 'PostgreSQL is not reachable') }, () => {
  it('fired by the maintenance node only; killed, the next node fires each fire time once', { timeout: 120_000 }, async (t) => {
    const schema = await createTestSchema('flotilla_schedules');
    const nodes: ServerProcess[] = [];
    t.after(async () => {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await schema.drop();
    });
    for (let i = 0; i < 2; i++) nodes.push(await startServerProcess({ database: schema.url, env }));
    const [a] = nodes as [ServerProcess, ServerProcess];
    assert.equal((await callServer(a.url, 'POST', '/agents', { name: 'cron-agent' })).status, 201);
    const created = await callServer(a.url, 'POST', '/schedules', {
      name: 'every-second', cron: '* * * * * *', overlap: 'allow', catchUp: 'all', catchUpWindowMs: 60_000, task: { agent: 'cron-agent' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    await until('three firings', async () => (await fireTimes(a.url)).length >= 3);
    const leaders = nodes.filter((n) => /this node now runs maintenance/.test(n.output()));
    assert.equal(leaders.length, 1, 'one node runs maintenance');
    const leader = leaders[0]!;
    const survivor = nodes.find((n) => n !== leader)!;
    await leader.kill('SIGKILL');
    const atKill = (await fireTimes(survivor.url)).length;
    await until('the other node to take over', () => /this node now runs maintenance/.test(survivor.output()));
    await until('three more firings', async () => (await fireTimes(survivor.url)).length >= atKill + 3);
    assert.equal((await callServer(survivor.url, 'POST', '/schedules/every-second/pause', {})).status, 200);

    const times = await fireTimes(survivor.url);
    assert.equal(new Set(times).size, times.length, 'no fire time has two tasks');
    // Every second from the first to the last: none lost across the takeover (catchUp: all).
    for (let i = 1; i < times.length; i++) assert.equal(times[i]! - times[i - 1]!, 1_000, `a fire time is missing after ${new Date(times[i - 1]!).toISOString()}`);
    const view = (await callServer(survivor.url, 'GET', '/schedules/every-second')).body;
    // The last firing recorded is one of those tasks (a sweep racing the pause may have submitted one more, unrecorded).
    assert.ok(times.includes(Date.parse(view.lastFire.at)));
  });
});
