// The scenario of the PostgreSQL outage tests (postgres-outage*.test.ts), run against a server
// whose database the test takes away and gives back (`Outage`): a cut network or a database
// that refuses connections. While the database is gone, every request that needs it (submits,
// reads, worker reports over HTTP, WebSocket upgrades) is answered 503 STORE_UNAVAILABLE with
// Retry-After, never 500, and never 429: a token that cannot be checked is not an anonymous
// request, so valid principals are not charged to their address's anonymous budget. When the
// database returns, everything recovers by itself: nothing accepted is lost, work flows again,
// and a real SDK worker whose handlers finished during the outage gets each result recorded
// once (its reports are retried, not dropped).

import assert from 'node:assert/strict';
import { pino } from 'pino';
import WebSocket from 'ws';
import { createWorker, type FlotillaWorker } from '@flotilla/sdk';
import { DEFAULT_CONFIG, type ServerConfig } from '../../src/config/config.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { TOKEN } from './harness.ts';

export interface Outage {
  /** Takes the database away. */
  begin(): Promise<void>;
  /** Gives it back. */
  end(): Promise<void>;
}

/** The address's anonymous budget: far fewer than the requests made during the outage. */
export const ANONYMOUS_PER_MINUTE = 5;
/** The authenticator caches a key this long (engine/api-keys.ts): after it, every request's token needs the database. */
const AUTH_CACHE_MS = 5_000;
/** Longer than the outage, so no lease lapses while the database is away (a lapse would be a second attempt). */
const LEASE_MS = 30_000;
const SDK_TASKS = 3;

export function outageConfig(databaseUrl: string): ServerConfig {
  return {
    ...DEFAULT_CONFIG,
    port: 0,
    databaseUrl,
    adminToken: TOKEN,
    reaperIntervalMs: 200,
    leaseMs: LEASE_MS,
    rateLimitAnonymousPerMinute: ANONYMOUS_PER_MINUTE,
    rateLimitPerSecond: 10_000,
    rateLimitBurst: 10_000,
  };
}

export function startOutageServer(databaseUrl: string): Promise<RunningServer> {
  return startServer({ config: outageConfig(databaseUrl), log: pino({ level: 'silent' }) });
}

interface Answer { status: number; body: any; headers: Headers; ms: number }

export async function call(server: RunningServer, method: string, path: string, body?: unknown): Promise<Answer> {
  const started = Date.now();
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers, ms: Date.now() - started };
}

/** Opens a WebSocket with the admin token; resolves with the upgrade's status (101 when accepted) and headers. */
function upgrade(server: RunningServer, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the upgrade of ${path}`));
    }, 10_000);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.close();
      resolve({ status: 101, headers: {}, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    ws.once('error', () => {});
  });
}

export async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what}: not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function assertRetryAfter(value: string | null | undefined, what: string): void {
  assert.ok(value !== null && value !== undefined, `${what}: a 503 carries Retry-After`);
  const seconds = Number(value);
  assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= 5, `${what}: Retry-After is a few whole seconds (${value})`);
}

/** 503 STORE_UNAVAILABLE with Retry-After, answered promptly. */
function assertUnavailable(answer: Answer, what: string): void {
  assert.notEqual(answer.status, 429, `${what}: a valid principal is not rate-limited as anonymous during an outage`);
  assert.equal(answer.status, 503, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body?.error?.code, 'STORE_UNAVAILABLE', `${what}: ${JSON.stringify(answer.body)}`);
  assertRetryAfter(answer.headers.get('retry-after'), what);
  assert.ok(answer.ms < 10_000, `${what}: answered in ${answer.ms} ms, not hanging`);
}

async function assertUpgradeUnavailable(server: RunningServer, path: string): Promise<void> {
  const res = await upgrade(server, path);
  const what = `upgrade of ${path}`;
  assert.notEqual(res.status, 429, `${what}: a valid worker is not rate-limited as anonymous during an outage`);
  assert.equal(res.status, 503, `${what}: ${res.status} ${res.body}`);
  assert.equal(JSON.parse(res.body).error.code, 'STORE_UNAVAILABLE', `${what}: ${res.body}`);
  const retryAfter = res.headers['retry-after'];
  assertRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, what);
}

export async function runOutageScenario(server: RunningServer, outage: Outage): Promise<void> {
  const api = (method: string, path: string, body?: unknown) => call(server, method, `/api/v1${path}`, body);
  assert.equal((await api('POST', '/agents', { name: 'steady' })).status, 201);
  assert.equal((await api('POST', '/agents', { name: 'sdk' })).status, 201);

  // A real SDK worker over the WebSocket transport; its handlers wait for `release`, which
  // comes while the database is away, so every one of its reports is made during the outage.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const runs = new Map<string, number>();
  let down = false;
  const worker: FlotillaWorker = createWorker({
    url: server.url, token: TOKEN, agent: 'sdk', concurrency: SDK_TASKS, transport: 'websocket', log: () => {},
    handler: async (task) => {
      runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
      await released;
      return { echo: task.input };
    },
  });
  try {
    await worker.start();
    assert.equal(worker.transport, 'websocket');
    const sdkTasks: string[] = [];
    for (let i = 0; i < SDK_TASKS; i++) {
      const submitted = await api('POST', '/tasks', { agent: 'sdk', input: `sdk-${i}` });
      assert.equal(submitted.status, 201);
      sdkTasks.push(submitted.body.id);
    }
    await eventually(async () => runs.size === SDK_TASKS, 10_000, 'the SDK worker runs its tasks');

    // An HTTP worker holds an attempt, to report on it during the outage.
    const before = await api('POST', '/tasks', { agent: 'steady', input: 'before' });
    assert.equal(before.status, 201);
    const reg = await api('POST', '/workers/register', { agent: 'steady', maxConcurrency: 2 });
    assert.equal(reg.status, 201);
    const replicaId: string = reg.body.replica.id;
    const leased = await api('POST', `/workers/${replicaId}/lease`, { max: 1, waitMs: 2_000 });
    assert.equal(leased.status, 200);
    assert.equal(leased.body.assignments.length, 1);
    const held = leased.body.assignments[0];
    assert.equal(held.task.id, before.body.id);

    down = true;
    await outage.begin();
    const outageAt = Date.now();
    await eventually(async () => (await call(server, 'GET', '/readyz')).status === 503, 15_000, '/readyz says 503');
    assert.equal((await call(server, 'GET', '/healthz')).status, 200, 'the process itself stays up');
    release();

    // Requests whose token is still cached (the route's own store call fails), then requests
    // whose token itself cannot be checked: far more of them than the anonymous budget.
    const requests = async (round: number): Promise<void> => {
      assertUnavailable(await api('POST', '/tasks', { agent: 'steady', input: 'during', idempotencyKey: 'during-1' }), `submit (round ${round})`);
      assertUnavailable(await api('GET', `/tasks/${before.body.id}`), `GET /tasks/:id (round ${round})`);
      assertUnavailable(await api('GET', '/tasks?limit=10'), `GET /tasks (round ${round})`);
      assertUnavailable(await api('POST', `/assignments/${held.assignmentId}/complete`, { replicaId, result: 'done during' }), `worker report (round ${round})`);
    };
    await requests(0);
    await new Promise((r) => setTimeout(r, Math.max(0, outageAt + AUTH_CACHE_MS + 500 - Date.now())));
    for (let round = 1; round <= 3; round++) {
      await requests(round);
      await assertUpgradeUnavailable(server, '/api/v1/workers/socket');
      await assertUpgradeUnavailable(server, '/api/v1/socket');
    }
    // 1 + 3 rounds of 4 requests, and 6 upgrades: 22 requests, against a budget of 5.

    down = false;
    await outage.end();
    await eventually(async () => (await call(server, 'GET', '/readyz')).status === 200, 15_000, '/readyz says 200 again');

    // The retried submit is accepted; the report refused during the outage goes through.
    const retried = await api('POST', '/tasks', { agent: 'steady', input: 'during', idempotencyKey: 'during-1' });
    assert.ok(retried.status === 201 || retried.status === 200, `the retried submit is accepted (${retried.status} ${JSON.stringify(retried.body)})`);
    const completed = await api('POST', `/assignments/${held.assignmentId}/complete`, { replicaId, result: 'done after' });
    assert.equal(completed.status, 200, `the report refused during the outage is accepted after it: ${JSON.stringify(completed.body)}`);

    // Work flows again, with nothing lost.
    const done = new Set<string>();
    await eventually(async () => {
      const { body } = await api('POST', `/workers/${replicaId}/lease`, { max: 2, waitMs: 500 });
      for (const a of body.assignments ?? []) {
        const r = await api('POST', `/assignments/${a.assignmentId}/complete`, { replicaId, result: a.task.input });
        if (r.status === 200) done.add(a.task.id);
      }
      return done.has(retried.body.id);
    }, 15_000, 'the task submitted after the outage runs');
    const beforeView = (await api('GET', `/tasks/${before.body.id}`)).body;
    assert.equal(beforeView.status, 'completed');
    assert.equal(beforeView.result, 'done after');
    assert.equal(beforeView.attempt, 1);
    const listed = await api('GET', '/tasks?limit=100');
    assert.equal(listed.status, 200);
    const ids = new Set((listed.body.items as Array<{ id: string }>).map((t) => t.id));
    for (const id of [before.body.id, retried.body.id, ...sdkTasks]) assert.ok(ids.has(id), `task ${id} is listed`);

    // The SDK worker's reports, refused while the database was away, are retried and recorded:
    // each task completed exactly once, in its first attempt.
    await eventually(async () => {
      const views = await Promise.all(sdkTasks.map(async (id) => (await api('GET', `/tasks/${id}`)).body));
      return views.every((v) => v.status === 'completed');
    }, 12_000, 'every SDK task completes soon after the database returns (its report was not dropped)').catch(async (err: unknown) => {
      const views = await Promise.all(sdkTasks.map(async (id) => (await api('GET', `/tasks/${id}`)).body));
      throw new Error(`${(err as Error).message}; tasks: ${JSON.stringify(views.map((v) => ({ id: v.id, status: v.status, attempt: v.attempt })))}`);
    });
    for (const id of sdkTasks) {
      const view = (await api('GET', `/tasks/${id}`)).body;
      assert.equal(view.status, 'completed', `SDK task ${id}`);
      assert.equal(view.attempt, 1, `SDK task ${id} completed in its first attempt`);
      assert.deepEqual(view.result, { echo: view.input }, `SDK task ${id}'s result is the one its handler returned`);
      assert.equal(runs.get(id), 1, `SDK task ${id}'s handler ran once`);
    }
  } finally {
    // A failed assertion during the outage must not leave the database away for what follows.
    if (down) await outage.end();
    release();
    await worker.stop({ drainTimeoutMs: 1_000 }).catch(() => {});
  }
}
