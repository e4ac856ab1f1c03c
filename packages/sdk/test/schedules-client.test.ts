// The SDK client's schedules API and cached submits against a real `flotilla serve` process:
// create, list, get, update, pause, resume, delete; typed errors; a cached submit that shares
// the open run.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TOKEN } from '../../server/test/helpers/harness.ts';
import { startServerProcess, type ServerProcess } from '../../server/test/helpers/server-process.ts';
import { Flotilla, isFlotillaError } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-sdk-schedules-'));
let server: ServerProcess;
let client: Flotilla;

describe('SDK: schedules and cached submits', () => {
  before(async () => {
    server = await startServerProcess({ database: join(dir, 'flotilla.db') });
    client = new Flotilla({ url: server.url, token: TOKEN });
    await client.agents.create({ name: 'sdk-cron' });
  });
  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('manages a schedule', async () => {
    const created = await client.schedules.create({ name: 'sdk-nightly', cron: '0 0 2 * * *', timezone: 'Europe/Paris', task: { agent: 'sdk-cron', input: { n: 1 } } });
    assert.deepEqual([created.overlap, created.catchUp, created.nextFireTimes.length], ['skip', 'none', 5]);
    assert.deepEqual((await client.schedules.list()).map((s) => s.name), ['sdk-nightly']);
    const updated = await client.schedules.update('sdk-nightly', { everyMs: 60_000 });
    assert.deepEqual([updated.cron, updated.everyMs], [null, 60_000]);
    assert.equal((await client.schedules.pause('sdk-nightly')).paused, true);
    assert.equal((await client.schedules.resume('sdk-nightly')).paused, false);
    assert.equal((await client.schedules.get('sdk-nightly')).name, 'sdk-nightly');
    await client.schedules.delete('sdk-nightly');
    await assert.rejects(client.schedules.get('sdk-nightly'), (err) => isFlotillaError(err, 'SCHEDULE_NOT_FOUND'));
    await assert.rejects(client.schedules.create({ name: 'x', cron: 'nope', task: { agent: 'sdk-cron' } }), (err) => isFlotillaError(err, 'INVALID_SCHEDULE'));
  });

  it('submits with a cacheKey: a second submit shares the open run', async () => {
    const first = await client.tasks.submit({ agent: 'sdk-cron', cacheKey: 'sdk-work', cacheTtlMs: 60_000 });
    const second = await client.tasks.submit({ agent: 'sdk-cron', cacheKey: 'sdk-work' });
    assert.deepEqual([second.id, second.cacheKey, second.cachedFrom], [first.id, 'sdk-work', null]);
  });
});
