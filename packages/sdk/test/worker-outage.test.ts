// Reports refused with 5xx are retried (issue 11, defect 10). A real server on PostgreSQL
// loses its database (a TCP proxy between them, cut by the test) while handlers are running;
// they finish during the outage, so their `complete` is refused (503 STORE_UNAVAILABLE over
// HTTP, `ok:false` with STORE_UNAVAILABLE or INTERNAL over the socket). The worker must keep
// retrying within the lease, so once the database is back each task is completed once, as
// the same attempt, not run again after its lease lapsed. With CI=true PostgreSQL must be
// reachable (postgres.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createWorker, Flotilla, type FlotillaWorker, type TaskView } from '../src/index.ts';
import { DEFAULT_CONFIG } from '../../server/src/config/config.ts';
import { startServer, type RunningServer } from '../../server/src/server.ts';
import { TOKEN } from '../../server/test/helpers/harness.ts';
import { createTestSchema, PG_URL, postgresAvailable, type TestSchema } from '../../server/test/helpers/postgres.ts';
import { TcpProxy } from '../../server/test/helpers/tcp-proxy.ts';

const available = await postgresAvailable();
const LEASE_MS = 8_000;
let proxy: TcpProxy;
let schema: TestSchema;
let server: RunningServer;
let client: Flotilla;
const workers: FlotillaWorker[] = [];

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what}: not in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ready(): Promise<boolean> {
  const res = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(5_000) }).catch(() => null);
  await res?.body?.cancel();
  return res?.status === 200;
}

describe('worker reports during a database outage', { skip: available ? false : 'PostgreSQL is not reachable' }, () => {
  before(async () => {
    const target = new URL(PG_URL);
    proxy = await new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }).start();
    const viaProxy = new URL(PG_URL);
    viaProxy.port = String(proxy.port);
    schema = await createTestSchema('flotilla_wout', viaProxy.toString());
    server = await startServer({
      config: { ...DEFAULT_CONFIG, port: 0, databaseUrl: schema.url, adminToken: TOKEN, reaperIntervalMs: 200, leaseMs: LEASE_MS, replicaTtlMs: 20_000 },
      log: pino({ level: 'silent' }),
    });
    client = new Flotilla({ url: server.url, token: TOKEN });
  });
  after(async () => {
    proxy?.restore();
    await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 500 })));
    await server?.close();
    await proxy?.close();
    await schema?.drop();
  });

  for (const transport of ['websocket', 'http'] as const) {
    it(`over ${transport}: results finished while the store is down are delivered once it is back, as the same attempt`, { timeout: 30_000 }, async () => {
      await eventually(ready, 'the server is ready');
      const agent = `outage-${transport}`;
      await client.agents.create({ name: agent, maxConcurrency: 2 });
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const logs: Array<{ level: string; message: string; data?: Record<string, unknown> }> = [];
      const worker = createWorker({
        url: server.url, token: TOKEN, agent, transport, concurrency: 2, leaseWaitMs: 1_000,
        log: (level, message, data) => logs.push({ level, message, ...(data ? { data } : {}) }),
        handler: async (task) => {
          await released;
          return { done: task.input };
        },
      });
      workers.push(worker);
      await worker.start();
      const tasks = await Promise.all([1, 2].map((i) => client.tasks.submit({ agent, input: i })));
      await eventually(async () => (await Promise.all(tasks.map((t) => client.tasks.get(t.id)))).every((t) => t.status === 'running'), 'both tasks running');

      try {
        proxy.cut();
        await eventually(async () => !(await ready()), 'the server notices the outage');
        // The handlers finish while the database is gone: their reports are refused, and
        // refused again for a while.
        release();
        await new Promise((r) => setTimeout(r, 2_500));
        assert.equal(worker.stats.completed, 0, 'nothing could be delivered during the outage');
      } finally {
        proxy.restore();
      }
      // Well within the lease (8 s): a dropped report shows as a second attempt once it lapsed.
      const done: TaskView[] = await Promise.all(tasks.map((t) => client.tasks.wait(t.id, { timeoutMs: 15_000 })));
      for (const [i, t] of done.entries()) {
        assert.equal(t.status, 'completed', `task ${i + 1}: ${JSON.stringify(t.error)}`);
        assert.equal(t.attempt, 1, 'the same attempt: not run again after its lease lapsed');
        assert.deepEqual(t.result, { done: i + 1 });
        const events = await client.tasks.events(t.id);
        assert.equal(events.filter((e) => e.type === 'task.completed').length, 1, 'completed exactly once');
        assert.equal(events.filter((e) => e.type === 'task.dispatched').length, 1, 'dispatched once');
      }
      await eventually(() => worker.stats.completed === 2, 'the worker counts both as completed', 5_000);
      // Each refused report is logged once as it starts being retried, not once per try.
      assert.ok(!logs.some((l) => l.message.includes('giving up')));
      const retrying = logs.filter((l) => l.level === 'warn' && l.message.startsWith('report refused; retrying'));
      assert.equal(retrying.length, 2, `one warning per report: ${JSON.stringify(logs.filter((l) => l.level === 'warn'))}`);
    });
  }

  for (const transport of ['websocket', 'http'] as const) {
    it(`over ${transport}: stop() during the outage gives up retrying when its drain time is up`, { timeout: 30_000 }, async () => {
      await eventually(ready, 'the server is ready');
      const agent = `outage-stop-${transport}`;
      await client.agents.create({ name: agent });
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const logs: Array<{ level: string; message: string }> = [];
      const worker = createWorker({
        url: server.url, token: TOKEN, agent, transport, leaseWaitMs: 1_000,
        log: (level, message) => logs.push({ level, message }),
        handler: async () => {
          await released;
          return 'late';
        },
      });
      workers.push(worker); // stopped by after() too, should this test fail before its own stop()
      await worker.start();
      const task = await client.tasks.submit({ agent });
      await eventually(async () => (await client.tasks.get(task.id)).status === 'running', 'the task running');
      try {
        proxy.cut();
        await eventually(async () => !(await ready()), 'the server notices the outage');
        release();
        await eventually(() => logs.some((l) => l.message.startsWith('report refused; retrying')), 'the completion refused', 10_000);
        const t0 = Date.now();
        await worker.stop({ drainTimeoutMs: 1_000 });
        const took = Date.now() - t0;
        // The drain time, then the socket close / deregister attempts (bounded by their own timeouts).
        assert.ok(took < 10_000, `stop took ${took} ms`);
        assert.ok(logs.some((l) => l.level === 'warn' && l.message.startsWith('report not delivered; giving up')), 'it gave up, and said so');
        assert.equal(worker.stats.completed, 0);
      } finally {
        proxy.restore();
      }
    });
  }
});
