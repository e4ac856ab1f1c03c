// The SDK's side of workflows (docs/workflows.md), against a real in-process server: a client
// submits a workflow (tasks naming each other by ref), and socket workers run it, each handler
// reading what it depended on from `ctx.dependencies` (by ref and by id) and its mapped input.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createWorker, Flotilla, type FlotillaWorker, type Json } from '../src/index.ts';
import { DEFAULT_CONFIG } from '../../server/src/config/config.ts';
import { startServer, type RunningServer } from '../../server/src/server.ts';
import { TOKEN } from '../../server/test/helpers/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-workflows-'));
let server: RunningServer;
let client: Flotilla;
const workers: FlotillaWorker[] = [];

before(async () => {
  server = await startServer({
    config: { ...DEFAULT_CONFIG, port: 0, databaseUrl: join(dir, 'f.db'), adminToken: TOKEN, reaperIntervalMs: 100 },
    log: pino({ level: 'silent' }),
  });
  client = new Flotilla({ url: server.url, token: TOKEN });
});
after(async () => {
  await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 100 })));
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('workflows through the SDK', () => {
  it('submitWorkflow creates the tasks; the dependent reads ctx.dependencies by ref and id, and its templated input', async () => {
    for (const name of ['fetch', 'count']) await client.agents.create({ name });
    const seen: Array<{ input: Json; byRef: Json | undefined; byId: Json | undefined; all: number }> = [];
    workers.push(createWorker({ url: server.url, token: TOKEN, agent: 'fetch', handler: (task) => ({ text: `page of ${(task.input as { url: string }).url}` }) }));
    workers.push(createWorker({
      url: server.url, token: TOKEN, agent: 'count', handler: (task, ctx) => {
        const fetched = ctx.dependencies.get('#fetch');
        seen.push({ input: task.input, byRef: fetched?.result, byId: ctx.dependencies.get(fetched!.id)?.result, all: ctx.dependencies.all.length });
        return { words: String((task.input as { text: string }).text).split(' ').length };
      },
    }));
    await Promise.all(workers.map((w) => w.start()));
    const wf = await client.tasks.submitWorkflow({
      tasks: [
        { ref: 'fetch', agent: 'fetch', input: { url: 'http://127.0.0.1/a' } },
        { ref: 'count', agent: 'count', dependsOn: ['#fetch'], inputFrom: { text: { $from: '#fetch/result/text' } } },
      ],
    });
    assert.deepEqual(wf.items.map((t) => t.ref), ['fetch', 'count']);
    const done = await client.tasks.wait(wf.ids.count!, { timeoutMs: 30_000 });
    assert.deepEqual([done.status, done.result], ['completed', { words: 3 }]);
    assert.deepEqual(seen, [{ input: { text: 'page of http://127.0.0.1/a' }, byRef: { text: 'page of http://127.0.0.1/a' }, byId: { text: 'page of http://127.0.0.1/a' }, all: 1 }]);
  });
});
