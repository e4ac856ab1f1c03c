// Database outage on PostgreSQL: the server stays up, /readyz says not ready, submits get
// 503 STORE_UNAVAILABLE (never a false 201), and everything recovers by itself when the
// database returns, with no accepted task lost. The outage is a cut TCP proxy between this
// server and the shared PostgreSQL, so other tests are not disturbed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DEFAULT_CONFIG } from '../src/config/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { TOKEN } from './helpers/harness.ts';
import { createTestSchema, PG_URL, postgresAvailable, type TestSchema } from './helpers/postgres.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';

const available = await postgresAvailable();
let proxy: TcpProxy;
let schema: TestSchema;
let server: RunningServer;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, ms: Date.now() - started };
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, 'condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('PostgreSQL outage', { skip: available ? false : 'PostgreSQL is not reachable' }, () => {
  before(async () => {
    const target = new URL(PG_URL);
    proxy = await new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }).start();
    const viaProxy = new URL(PG_URL);
    viaProxy.port = String(proxy.port);
    schema = await createTestSchema('flotilla_out', viaProxy.toString());
    server = await startServer({
      config: { ...DEFAULT_CONFIG, port: 0, databaseUrl: schema.url, adminToken: TOKEN, reaperIntervalMs: 200, leaseMs: 5_000 },
      log: pino({ level: 'silent' }),
    });
  });
  after(async () => {
    proxy.restore();
    await server?.close();
    await proxy?.close();
    await schema?.drop();
  });

  it('stays up, refuses honestly while the database is gone, and recovers by itself', { timeout: 60_000 }, async () => {
    assert.equal((await call('POST', '/api/v1/agents', { name: 'steady' })).status, 201);
    const before = await call('POST', '/api/v1/tasks', { agent: 'steady', input: 'before' });
    assert.equal(before.status, 201);

    proxy.cut();
    await eventually(async () => (await call('GET', '/readyz')).status === 503);
    assert.equal((await call('GET', '/healthz')).status, 200, 'the process itself stays up');
    const during = await call('POST', '/api/v1/tasks', { agent: 'steady', input: 'during', idempotencyKey: 'during-1' });
    assert.equal(during.status, 503);
    assert.equal(during.body.error.code, 'STORE_UNAVAILABLE');
    assert.ok(during.ms < 10_000, `answered in ${during.ms} ms, not hanging`);

    proxy.restore();
    await eventually(async () => (await call('GET', '/readyz')).status === 200);
    const retried = await call('POST', '/api/v1/tasks', { agent: 'steady', input: 'during', idempotencyKey: 'during-1' });
    assert.ok(retried.status === 201 || retried.status === 200, `the retried submit is accepted (${retried.status})`);

    // Work flows again, with nothing lost: both tasks run to completion.
    const { body: reg } = await call('POST', '/api/v1/workers/register', { agent: 'steady', maxConcurrency: 2 });
    const done = new Set<string>();
    await eventually(async () => {
      const { body } = await call('POST', `/api/v1/workers/${reg.replica.id}/lease`, { max: 2, waitMs: 500 });
      for (const a of body.assignments ?? []) {
        const r = await call('POST', `/api/v1/assignments/${a.assignmentId}/complete`, { replicaId: reg.replica.id, result: a.task.input });
        if (r.status === 200) done.add(a.task.id);
      }
      return done.size === 2;
    });
    assert.ok(done.has(before.body.id));
    assert.equal((await call('GET', `/api/v1/tasks/${before.body.id}`)).body.status, 'completed');
  });
});
