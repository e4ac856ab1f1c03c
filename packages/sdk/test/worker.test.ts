// The worker runtime against a real server process, over both of its transports (the
// WebSocket protocol and the HTTP lease protocol), with short leases so heartbeats,
// cancellation and timeouts show within a second or two.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorker, Flotilla, NonRetryableError, TaskAbortedError, type FlotillaWorker, type TaskView } from '../src/index.ts';
import { TOKEN } from '../../server/test/helpers/harness.ts';
import { startServerProcess, type ServerProcess } from '../../server/test/helpers/server-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-worker-'));
let server: ServerProcess;
let client: Flotilla;
const workers: FlotillaWorker[] = [];

before(async () => {
  server = await startServerProcess({
    database: join(dir, 'f.db'),
    env: { FLOTILLA_LEASE_MS: '900', FLOTILLA_REPLICA_TTL_MS: '3000', FLOTILLA_REAPER_INTERVAL_MS: '100', FLOTILLA_CANCEL_GRACE_MS: '5000' },
  });
  client = new Flotilla({ url: server.url, token: TOKEN });
});
after(async () => {
  await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 100 })));
  await server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

type Transport = 'websocket' | 'http';

async function terminal(id: string): Promise<TaskView> {
  return client.tasks.wait(id, { timeoutMs: 15_000 });
}

for (const transport of ['websocket', 'http'] as const satisfies Transport[]) describe(`worker runtime over ${transport}`, () => {
  // Agent names carry the transport: both suites share one server.
  const n = (name: string) => `${name}-${transport}`;
  function worker(agent: string, handler: Parameters<typeof createWorker>[0]['handler'], concurrency = 2): FlotillaWorker {
    const w = createWorker({ url: server.url, token: TOKEN, agent, concurrency, handler, transport, leaseWaitMs: 2_000, log: () => {} });
    workers.push(w);
    assert.equal(w.transport, transport);
    return w;
  }

  it('runs tasks with the handler\'s return value as the result, reporting progress', async () => {
    await client.agents.create({ name: n('echo'), maxConcurrency: 2 });
    const w = worker(n('echo'), async (task, ctx) => {
      await ctx.progress(50, 'halfway');
      return { echo: task.input };
    });
    await w.start();
    const tasks = await Promise.all([1, 2, 3, 4, 5].map((i) => client.tasks.submit({ agent: n('echo'), input: { i } })));
    const done = await Promise.all(tasks.map((t) => terminal(t.id)));
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    assert.deepEqual(done.map((t) => t.result), tasks.map((t) => ({ echo: t.input })));
    const events = await client.tasks.events(tasks[0]!.id);
    assert.ok(events.some((e) => e.type === 'task.progress' && e.data.message === 'halfway'));
  });

  it('a thrown error is retried; a NonRetryableError fails the task for good', async () => {
    await client.agents.create({ name: n('flaky'), maxAttempts: 3, retry: { baseDelayMs: 50, maxDelayMs: 100 } });
    const w = worker(n('flaky'), async (task) => {
      if ((task.input as { kind: string }).kind === 'fatal') throw new NonRetryableError('bad input', { code: 'BAD_INPUT' });
      if (task.attempt === 1) throw new Error('transient');
      return 'ok';
    });
    await w.start();
    const retried = await client.tasks.submit({ agent: n('flaky'), input: { kind: 'transient' } });
    const fatal = await client.tasks.submit({ agent: n('flaky'), input: { kind: 'fatal' } });
    const [a, b] = await Promise.all([terminal(retried.id), terminal(fatal.id)]);
    assert.equal(a.status, 'completed');
    assert.equal(a.attempt, 2);
    assert.equal(b.status, 'failed');
    assert.equal(b.attempt, 1);
    assert.equal(b.error?.code, 'BAD_INPUT');
  });

  it('cancelling a running task aborts ctx.signal, and the task ends cancelled', async () => {
    await client.agents.create({ name: n('slow') });
    let reason: unknown = null;
    const w = worker(n('slow'), (_task, ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        reason = ctx.signal.reason;
        reject(ctx.signal.reason as Error);
      });
    }));
    await w.start();
    const task = await client.tasks.submit({ agent: n('slow') });
    for (let i = 0; i < 50 && (await client.tasks.get(task.id)).status !== 'running'; i++) await new Promise((r) => setTimeout(r, 50));
    await client.tasks.cancel(task.id, 'no longer needed');
    const done = await terminal(task.id);
    assert.equal(done.status, 'cancelled');
    assert.ok(reason instanceof TaskAbortedError);
    assert.equal((reason as TaskAbortedError).kind, 'cancelled');
  });

  it('an attempt past its timeout aborts ctx.signal with kind timeout', async () => {
    await client.agents.create({ name: n('stuck'), maxAttempts: 1 });
    let kind: string | null = null;
    const w = worker(n('stuck'), (_task, ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        kind = (ctx.signal.reason as TaskAbortedError).kind;
        reject(ctx.signal.reason as Error);
      });
    }));
    await w.start();
    const task = await client.tasks.submit({ agent: n('stuck'), timeoutMs: 600 });
    const done = await terminal(task.id);
    assert.equal(done.status, 'failed');
    for (let i = 0; i < 40 && kind === null; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(kind, 'timeout');
  });

  it('spawns children in the background and awaited; they inherit correlation and a span of the trace; the assignment carries the tools', async () => {
    await client.agents.create({ name: n('parent'), tools: ['web:*', 'flotilla:spawn'] });
    // A level below the parent's (a task delegates only to greater levels); its own depth limit is 2.
    await client.agents.create({ name: n('child'), level: 2, tools: ['web:*', 'flotilla:spawn'], maxDepth: 2 });
    const seen: Array<{ tools: string[]; correlation: Record<string, string>; traceparent: string | null }> = [];
    let grandchildError: unknown = null;
    const child = worker(n('child'), async (task, ctx) => {
      seen.push({ tools: task.tools, correlation: task.correlation, traceparent: task.traceparent });
      // At its depth limit: its token carries no spawn right, and the server says why.
      if (task.input === 'try-spawn') await ctx.spawn({ agent: n('child') }).catch((err: unknown) => { grandchildError = err; });
      return { doubled: (task.input as number) * 2 };
    });
    const parent = worker(n('parent'), async (task, ctx) => {
      seen.push({ tools: task.tools, correlation: task.correlation, traceparent: task.traceparent });
      const handle = await ctx.spawn({ agent: n('child'), input: 21, correlation: { step: 'child' } });
      assert.ok(!['completed', 'failed', 'cancelled'].includes(handle.task.status), 'background: answered before the child ran');
      const awaited = await ctx.spawn({ agent: n('child'), input: 5 }, { wait: true });
      await ctx.spawn({ agent: n('child'), input: 'try-spawn' }, { wait: true, timeoutMs: 10_000 });
      const finished = await handle.wait({ timeoutMs: 10_000 });
      return { child: handle.id, result: finished.result, awaited: { status: awaited.status, result: awaited.result } };
    });
    await Promise.all([child.start(), parent.start()]);
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const task = await client.tasks.submit({ agent: n('parent'), correlation: { caseId: 'C-7', step: 'root' }, traceparent: tp });
    const done = await terminal(task.id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const { child: childId, result, awaited } = done.result as { child: string; result: unknown; awaited: unknown };
    assert.deepEqual(result, { doubled: 42 });
    assert.deepEqual(awaited, { status: 'completed', result: { doubled: 10 } }, 'awaited: resolved with the terminal child');
    assert.equal((await client.tasks.get(childId)).parentId, task.id);

    assert.deepEqual(seen[0]!.tools, ['flotilla:spawn', 'web:*'], 'the parent\'s assignment carries its effective set');
    const children = seen.slice(1);
    assert.equal(children.length, 3);
    for (const c of children) {
      assert.deepEqual(c.tools, ['web:*'], 'the children are at their depth limit: no delegation tool');
      const [, trace, span, flags] = c.traceparent!.split('-');
      assert.deepEqual([trace, flags], ['4bf92f3577b34da6a3ce929d0e0e4736', '01']);
      assert.notEqual(span, '00f067aa0ba902b7');
    }
    assert.deepEqual(children.map((c) => c.correlation).sort((a, b) => a.step!.localeCompare(b.step!)), [
      { caseId: 'C-7', step: 'child' }, { caseId: 'C-7', step: 'root' }, { caseId: 'C-7', step: 'root' },
    ]);
    assert.equal((grandchildError as { code?: string } | null)?.code, 'DEPTH_LIMIT');
  });

  it('a worker process killed mid-task: the task is retried on another worker and completes', { timeout: 30_000 }, async () => {
    await client.agents.create({ name: n('mortal'), retry: { baseDelayMs: 50, maxDelayMs: 100 } });
    const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/slow-worker.ts', import.meta.url))], {
      env: { ...process.env, FLOTILLA_URL: server.url, FLOTILLA_TOKEN: TOKEN, AGENT: n('mortal'), TRANSPORT: transport },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
    const task = await client.tasks.submit({ agent: n('mortal'), input: 'survive' });
    for (let i = 0; i < 100 && !out.includes(`started ${task.id}`); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes(`started ${task.id}`), 'the doomed worker started the task');
    child.kill('SIGKILL');
    const rescuer = worker(n('mortal'), (t) => ({ rescued: t.input }));
    await rescuer.start();
    const done = await terminal(task.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { rescued: 'survive' });
    assert.equal(done.attempt, 2, 'the killed attempt counted as lost, the second completed');
  });

  it('the server restarted under a running worker: it reconnects and work continues', { timeout: 40_000 }, async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    const database = join(dir, `restart-${transport}.db`);
    const env = { FLOTILLA_LEASE_MS: '900', FLOTILLA_REPLICA_TTL_MS: '3000', FLOTILLA_REAPER_INTERVAL_MS: '100' };
    let node = await startServerProcess({ database, env, port });
    const local = new Flotilla({ url: node.url, token: TOKEN });
    try {
      await local.agents.create({ name: n('steadfast') });
      const w = createWorker({ url: node.url, token: TOKEN, agent: n('steadfast'), concurrency: 2, transport, leaseWaitMs: 1_000, log: () => {}, handler: (t) => ({ ok: t.input }) });
      workers.push(w);
      await w.start();
      const before = await local.tasks.submit({ agent: n('steadfast'), input: 1 });
      assert.equal((await local.tasks.wait(before.id, { timeoutMs: 10_000 })).status, 'completed');
      await node.kill('SIGKILL');
      node = await startServerProcess({ database, env, port });
      const afterRestart = await local.tasks.submit({ agent: n('steadfast'), input: 2 });
      const done = await local.tasks.wait(afterRestart.id, { timeoutMs: 20_000 });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result, { ok: 2 });
    } finally {
      await node.kill('SIGKILL');
    }
  });

  it('capabilities: a worker naming one its agent lacks refuses to start; matching ones start', async () => {
    await client.agents.create({ name: n('capable'), capabilities: ['pdf', 'ocr'] });
    const wrong = createWorker({ url: server.url, token: TOKEN, agent: n('capable'), transport, capabilities: ['pdf', 'gpu'], handler: () => null, log: () => {} });
    await assert.rejects(wrong.start(), /does not declare the capabilities gpu/);
    assert.equal((await client.agents.replicas(n('capable'))).length, 0, 'nothing was registered');
    const right = createWorker({ url: server.url, token: TOKEN, agent: n('capable'), transport, capabilities: ['ocr'], handler: () => 'ok', log: () => {} });
    workers.push(right);
    const task = await client.tasks.submit({ capabilities: ['ocr'], input: 1 });
    await right.start();
    assert.equal((await terminal(task.id)).status, 'completed');
  });

  it('graceful stop: a running task finishes and is recorded, no new task is taken', async () => {
    await client.agents.create({ name: n('drain') });
    const w = worker(n('drain'), async () => {
      await new Promise((r) => setTimeout(r, 400));
      return 'finished';
    }, 1);
    await w.start();
    const first = await client.tasks.submit({ agent: n('drain') });
    for (let i = 0; i < 50 && (await client.tasks.get(first.id)).status !== 'running'; i++) await new Promise((r) => setTimeout(r, 20));
    const stopping = w.stop({ drainTimeoutMs: 5_000 });
    const second = await client.tasks.submit({ agent: n('drain') });
    await stopping;
    assert.equal((await client.tasks.get(first.id)).status, 'completed');
    assert.equal((await client.tasks.get(second.id)).status, 'pending');
  });
});

describe('worker runtime over websocket: connection loss', () => {
  async function freePort(): Promise<number> {
    return new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
  }
  // Leases long enough to outlive a server restart.
  // Generous: a restart under a loaded CI machine can take seconds, and a lapsed lease would be a new attempt.
  const env = { FLOTILLA_LEASE_MS: '30000', FLOTILLA_REPLICA_TTL_MS: '30000', FLOTILLA_REAPER_INTERVAL_MS: '100' };

  it('a task running across a server restart completes as the same attempt (held assignments are kept)', { timeout: 40_000 }, async () => {
    const port = await freePort();
    const database = join(dir, 'midflight.db');
    let node = await startServerProcess({ database, env, port });
    const local = new Flotilla({ url: node.url, token: TOKEN });
    try {
      await local.agents.create({ name: 'midflight' });
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const w = createWorker({
        url: node.url, token: TOKEN, agent: 'midflight', log: () => {},
        handler: async (t) => {
          started();
          await released;
          return { survived: t.input };
        },
      });
      workers.push(w);
      await w.start();
      const task = await local.tasks.submit({ agent: 'midflight', input: 'yes' });
      await running;
      await node.kill('SIGKILL');
      node = await startServerProcess({ database, env, port });
      // The handler finishes while the worker is (re)connecting; its report waits and is sent after hello.
      release();
      const done = await local.tasks.wait(task.id, { timeoutMs: 20_000 });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result, { survived: 'yes' });
      assert.equal(done.attempt, 1, 'the same attempt: the reconnecting worker listed it as held');
    } finally {
      await node.kill('SIGKILL');
    }
  });

  it('stop() while disconnected still delivers a finished result when the server is back within the drain time', { timeout: 40_000 }, async () => {
    const port = await freePort();
    const database = join(dir, 'comeback.db');
    let node = await startServerProcess({ database, env, port });
    const local = new Flotilla({ url: node.url, token: TOKEN });
    try {
      await local.agents.create({ name: 'comeback' });
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const w = createWorker({
        url: node.url, token: TOKEN, agent: 'comeback', log: () => {},
        handler: async (t) => {
          started();
          await released;
          return { kept: t.input };
        },
      });
      await w.start();
      const task = await local.tasks.submit({ agent: 'comeback', input: 'yes' });
      await running;
      await node.kill('SIGKILL');
      // Let the worker see the connection drop (a few ms; the close is a TCP reset).
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The handler finishes after the connection dropped, and the worker is told to stop
      // before the server is back: the result must still reach it, as the same attempt.
      release();
      const stopped = w.stop({ drainTimeoutMs: 20_000 });
      node = await startServerProcess({ database, env, port });
      await stopped;
      const done = await local.tasks.wait(task.id, { timeoutMs: 10_000 });
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.result, { kept: 'yes' });
      assert.equal(done.attempt, 1, 'delivered by the stopping worker, not run again');
      assert.equal(w.stats.completed, 1);
    } finally {
      await node.kill('SIGKILL');
    }
  });

  it('stop() returns even when the server is gone for good', { timeout: 30_000 }, async () => {
    const node = await startServerProcess({ database: join(dir, 'gone.db'), env });
    const local = new Flotilla({ url: node.url, token: TOKEN });
    await local.agents.create({ name: 'orphan' });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const w = createWorker({ url: node.url, token: TOKEN, agent: 'orphan', log: () => {}, handler: async () => { started(); await released; return 1; } });
    await w.start();
    await local.tasks.submit({ agent: 'orphan' });
    await running;
    await node.kill('SIGKILL');
    release();
    const t0 = Date.now();
    await w.stop({ drainTimeoutMs: 200 });
    assert.ok(Date.now() - t0 < 15_000, `stop took ${Date.now() - t0} ms`);
  });

  it('start() can be retried after it failed', async () => {
    const w = createWorker({ url: server.url, token: TOKEN, agent: 'not-yet', log: () => {}, handler: () => 1 });
    await assert.rejects(w.start());
    await client.agents.create({ name: 'not-yet' });
    workers.push(w);
    await w.start();
    assert.ok(w.replicaId, 'registered on the second try');
  });
});
