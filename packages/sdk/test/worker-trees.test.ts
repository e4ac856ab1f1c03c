// Parents that wait without a slot, against a real server process on both stores and both
// worker transports: a three-level fan-out tree where every task runs on the same agent at
// concurrency 1 completes (holding the slot while waiting would deadlock it at the root),
// the parents' attempts are not counted, and each resumed attempt gets its children's
// outcomes; a waiting parent survives a kill -9 of the server; input requests are answered.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorker, Flotilla, FlotillaApiError, type FlotillaWorker, type Json, type TaskView } from '../src/index.ts';
import { TOKEN } from '../../server/test/helpers/harness.ts';
import { createTestSchema, postgresAvailable, type TestSchema } from '../../server/test/helpers/postgres.ts';
import { startServerProcess, type ServerProcess } from '../../server/test/helpers/server-process.ts';

const pgAvailable = await postgresAvailable();
// Equal levels allowed: the fan-out tree runs one agent at every level (decision 59).
const ENV = { FLOTILLA_LEASE_MS: '2000', FLOTILLA_REPLICA_TTL_MS: '4000', FLOTILLA_REAPER_INTERVAL_MS: '100', FLOTILLA_ALLOW_EQUAL_LEVEL: 'true' };

for (const store of ['sqlite', 'postgres'] as const) describe(`parents that wait, on ${store}`, { skip: store === 'postgres' && !pgAvailable ? 'PostgreSQL is not reachable' : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-trees-'));
  let schema: TestSchema | null = null;
  let database = join(dir, 'f.db');
  let server: ServerProcess;
  let client: Flotilla;
  const workers: FlotillaWorker[] = [];

  before(async () => {
    if (store === 'postgres') {
      schema = await createTestSchema('trees');
      database = schema.url;
    }
    server = await startServerProcess({ database, env: ENV });
    client = new Flotilla({ url: server.url, token: TOKEN });
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 100 })));
    await server.kill('SIGKILL');
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const terminal = (id: string, c = client): Promise<TaskView> => c.tasks.wait(id, { timeoutMs: 20_000 });

  for (const transport of ['websocket', 'http'] as const) {
    it(`a three-level fan-out tree with every agent at concurrency 1 completes (${transport})`, async () => {
      const agent = `fanout-${transport}`;
      // maxAttempts 1: a wait that counted as an attempt would leave no attempt to resume with.
      await client.agents.create({ name: agent, maxConcurrency: 1, maxAttempts: 1 });
      const runs: Array<{ id: string; depth: number; resumed: boolean }> = [];
      const w = createWorker({
        url: server.url, token: TOKEN, agent, concurrency: 1, transport, leaseWaitMs: 2_000, log: () => {},
        handler: async (task, ctx) => {
          const { depth } = task.input as { depth: number };
          runs.push({ id: task.id, depth, resumed: task.resumed !== null });
          if (depth === 3) return { leaf: task.id };
          const resumed = task.resumed;
          if (resumed === null) {
            const children = await Promise.all([0, 1].map(() => ctx.spawn({ agent, input: { depth: depth + 1 }, maxAttempts: 1 })));
            return ctx.waitForChildren(children);
          }
          assert.equal(resumed.reason, 'children');
          if (resumed.reason !== 'children') throw new Error('resumed without children');
          assert.deepEqual(resumed.children.map((c) => c.status), ['completed', 'completed']);
          return { depth, children: resumed.children.map((c) => c.result) } as Json;
        },
      });
      workers.push(w);
      await w.start();
      const root = await client.tasks.submit({ agent, input: { depth: 1 }, maxAttempts: 1 });
      const done = await terminal(root.id);
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      // Root and the two middle tasks ran twice (first run, resumed run); four leaves once.
      assert.equal(runs.length, 3 * 2 + 4);
      assert.equal(runs.filter((r) => r.resumed).length, 3);
      const result = done.result as { depth: number; children: Array<{ depth: number; children: Array<{ leaf: string }> }> };
      assert.equal(result.depth, 1);
      assert.deepEqual(result.children.map((c) => c.depth), [2, 2]);
      assert.equal(result.children.flatMap((c) => c.children).length, 4);
      // Not counted: the resumed attempt carries the number of the one that waited.
      assert.equal(done.attempt, 1);
      const attempts = await client.tasks.assignment(root.id);
      assert.deepEqual(attempts.attempts.map((a: { attempt: number; status: string }) => [a.attempt, a.status]), [[1, 'suspended'], [1, 'completed']]);
      const types = (await client.tasks.events(root.id)).map((e) => e.type);
      assert.deepEqual(types.filter((t) => t !== 'task.started'), [
        'task.created', 'task.dispatched', 'task.waiting', 'task.resumed', 'task.dispatched', 'task.completed',
      ]);
      await w.stop();
    });
  }

  it('a waiting parent survives a kill -9 of the server and resumes when its children end', async () => {
    await client.agents.create({ name: 'planner', maxConcurrency: 1 });
    await client.agents.create({ name: 'helper', maxConcurrency: 1, level: 2 });
    let plannerRuns = 0;
    const planner = createWorker({
      url: server.url, token: TOKEN, agent: 'planner', log: () => {},
      handler: async (task, ctx) => {
        plannerRuns += 1;
        if (task.resumed === null) return ctx.waitForChildren([await ctx.spawn({ agent: 'helper', input: 'x' })]);
        return { resumedWith: task.resumed } as Json;
      },
    });
    await planner.start();
    const root = await client.tasks.submit({ agent: 'planner' });
    // Nobody serves `helper` yet: the parent waits.
    const deadline = Date.now() + 10_000;
    while ((await client.tasks.get(root.id)).status !== 'waiting') {
      assert.ok(Date.now() < deadline, 'the parent never started waiting');
      await new Promise((r) => setTimeout(r, 50));
    }
    const waiting = await client.tasks.get(root.id);
    assert.equal(waiting.waitingFor?.length, 1);
    await planner.stop({ drainTimeoutMs: 100 });
    await server.kill('SIGKILL');
    server = await startServerProcess({ database, env: ENV });
    client = new Flotilla({ url: server.url, token: TOKEN });
    assert.equal((await client.tasks.get(root.id)).status, 'waiting');
    const helper = createWorker({ url: server.url, token: TOKEN, agent: 'helper', log: () => {}, handler: (task) => ({ helped: task.input }) });
    const planner2 = createWorker({
      url: server.url, token: TOKEN, agent: 'planner', log: () => {},
      handler: async (task) => ({ resumedWith: task.resumed } as Json),
    });
    workers.push(helper, planner2);
    await helper.start();
    await planner2.start();
    const done = await terminal(root.id);
    assert.equal(done.status, 'completed');
    const resumed = (done.result as { resumedWith: { reason: string; children: Array<{ id: string; status: string; result: Json }> } }).resumedWith;
    assert.equal(resumed.reason, 'children');
    assert.deepEqual(resumed.children.map((c) => [c.id, c.status, c.result]), [[waiting.waitingFor![0], 'completed', { helped: 'x' }]]);
    assert.equal(plannerRuns, 1);
  });

  it('a handler asks for input; a wrong answer is refused, a right one resumes it with the answer', async () => {
    await client.agents.create({ name: 'asker', maxConcurrency: 1, maxAttempts: 1 });
    const w = createWorker({
      url: server.url, token: TOKEN, agent: 'asker', log: () => {},
      handler: (task, ctx) => {
        if (task.resumed?.reason === 'input') return { approved: task.resumed.input } as Json;
        return ctx.requestInput({ prompt: 'Approve the refund?', schema: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } } } });
      },
    });
    workers.push(w);
    await w.start();
    const task = await client.tasks.submit({ agent: 'asker' });
    const deadline = Date.now() + 10_000;
    let asked = await client.tasks.get(task.id);
    while (asked.status !== 'input_required') {
      assert.ok(Date.now() < deadline, 'the task never asked for input');
      await new Promise((r) => setTimeout(r, 50));
      asked = await client.tasks.get(task.id);
    }
    assert.equal(asked.inputRequest?.prompt, 'Approve the refund?');
    const listed = await client.tasks.page({ status: ['input_required'] });
    assert.ok(listed.items.some((t: TaskView) => t.id === task.id));
    await assert.rejects(client.tasks.answer(task.id, { ok: 'yes' }), (err: unknown) => err instanceof FlotillaApiError && err.status === 400 && err.code === 'VALIDATION_FAILED');
    assert.equal((await client.tasks.get(task.id)).status, 'input_required');
    const answered = await client.tasks.answer(task.id, { ok: true });
    assert.equal(answered.status, 'pending');
    const done = await terminal(task.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { approved: { ok: true } });
    await assert.rejects(client.tasks.answer(task.id, { ok: true }), (err: unknown) => err instanceof FlotillaApiError && err.status === 409);
  });
});
