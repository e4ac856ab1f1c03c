// The CLI's `flotilla schedules` commands and `submit --cache-key/--cache-ttl`, as real
// processes against a real server process: a schedule created from flags fires (the server
// is its own maintenance node), is listed, shown, paused, resumed and removed; a bad cron is
// the server's INVALID_SCHEDULE (exit 1); a second cached submit shares the running task.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serverApi, type CliResult } from './helpers/cli-process.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

describe('flotilla schedules and cached submits', () => {
  let dir: string;
  let server: ServerProcess;
  const cli = (...args: string[]) => runCli(server.url, args);
  const json = (r: CliResult): any => {
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-sched-'));
    server = await startServerProcess({ database: join(dir, 'flotilla.db'), env: { FLOTILLA_SCHEDULE_SWEEP_MS: '200' } });
    await serverApi(server.url, 'POST', '/agents', { name: 'cli-cron' });
  });

  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('create, fire, ls, show, pause, resume, rm', async () => {
    const created = json(await cli('schedules', 'create', 'tick', '--every', '1s', '--agent', 'cli-cron', '--input', '{"n":1}', '--priority', 'P1',
      '--overlap', 'allow', '--catch-up', 'all', '--catch-up-window', '1m', '--json'));
    assert.deepEqual([created.everyMs, created.overlap, created.catchUp, created.catchUpWindowMs, created.task], [1000, 'allow', 'all', 60_000, { agent: 'cli-cron', input: { n: 1 }, priority: 'P1' }]);
    assert.equal(created.nextFireTimes.length, 5);
    const deadline = Date.now() + 20_000;
    let shown: any;
    do {
      await new Promise((resolve) => setTimeout(resolve, 250));
      shown = json(await cli('schedules', 'show', 'tick', '--json'));
    } while (shown.lastFire === null && Date.now() < deadline);
    assert.ok(shown.lastFire?.taskId, 'it fired');
    const task = await serverApi(server.url, 'GET', `/tasks/${shown.lastFire.taskId}`);
    assert.deepEqual([task.agent, task.input, task.priority, task.correlation.schedule], ['cli-cron', { n: 1 }, 7, 'tick']);
    const table = await cli('schedules', 'ls');
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^NAME\s+WHEN\s+STATUS/);
    assert.match(table.stdout, /tick\s+every 1000ms\s+active/);
    assert.equal(json(await cli('schedules', 'pause', 'tick', '--json')).paused, true);
    assert.match((await cli('schedules', 'show', 'tick')).stdout, /status:\s+paused/);
    assert.equal(json(await cli('schedules', 'resume', 'tick', '--json')).paused, false);
    assert.equal((await cli('schedules', 'rm', 'tick')).code, 0);
    const gone = await cli('schedules', 'show', 'tick');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /SCHEDULE_NOT_FOUND/);
  });

  it('a bad cron is refused by the server; a flag mistake is a usage error', async () => {
    const bad = await cli('schedules', 'create', 'bad', '--cron', 'every day', '--agent', 'cli-cron');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /INVALID_SCHEDULE/);
    const usage = await cli('schedules', 'create', 'bad', '--agent', 'cli-cron');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--cron or --every/);
  });

  it('submit --cache-key shares the open run; --cache-ttl is sent as cacheTtlMs', async () => {
    const first = json(await cli('submit', '--agent', 'cli-cron', '--cache-key', 'same-work', '--cache-ttl', '10m', '--json'));
    assert.deepEqual([first.status, first.cacheKey, first.cachedFrom], ['pending', 'same-work', null]);
    const second = json(await cli('submit', '--agent', 'cli-cron', '--cache-key', 'same-work', '--json'));
    assert.equal(second.id, first.id);
    const noKey = await cli('submit', '--agent', 'cli-cron', '--cache-ttl', '10m');
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /cacheTtlMs/);
  });
});
