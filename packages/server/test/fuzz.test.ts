// Hostile input: thousands of random and malformed requests against every route (and some
// that do not exist), with random tokens, headers, query strings and bodies. For each: no
// 5xx, an error body with a stable code for every 4xx, and no change to the stored state from
// any request that was refused. Deterministic: FUZZ_SEED reproduces a run, FUZZ_COUNT sizes it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_STATUS } from '@flotilla/sdk';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';
import { ROUTE_ACTIONS } from '../src/http/route-actions.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261121);
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let h: Harness;
let viewerToken = '';
let replicaId = '';
let taskId = '';

before(async () => {
  // Rate limits off: thousands of requests from one address would otherwise be mostly 429s (limits.test.ts covers them).
  h = await harness({ config: { bodyLimitBytes: 64 * 1024, rateLimitPerSecond: 0, rateLimitAnonymousPerMinute: 0 } });
  await h.agent({ name: 'analyst', capabilities: ['nlp'] });
  viewerToken = (await h.api('POST', '/keys', { name: 'viewer', role: 'viewer' })).body.token;
  replicaId = await h.register('analyst');
  taskId = (await h.submit({ agent: 'analyst', input: { n: 1 } })).id;
});
after(() => h.close());

/** The stored state a refused request must not change (audit entries and key last-use times aside). */
async function snapshot(): Promise<string> {
  const s = h.store;
  const tasks = await s.taskList({ limit: 500 });
  const replicas = await s.replicaList({});
  return JSON.stringify({
    counts: await s.taskCountByStatus({}),
    tasks: tasks.items.map((t) => [t.id, t.status, t.attempt, t.cancelRequestedAt, t.priority, t.updatedAt]),
    agents: (await s.agentList()).map((a) => [a.name, a.maxConcurrency, a.capabilities, a.description]),
    replicas: replicas.map((r) => [r.id, r.status, r.inFlight, r.maxConcurrency, r.site]),
    keys: (await s.apiKeyList({ includeRevoked: true })).map((k) => [k.id, k.role, k.revokedAt]),
    lastEvent: await s.eventLastSeq(),
  });
}

describe('fuzz: hostile requests to every route', () => {
  it(`${COUNT} random requests (seed ${SEED}): no 5xx, stable error codes, no state change when refused`, { timeout: 300_000 }, async () => {
    const rnd = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const int = (n: number) => Math.floor(rnd() * n);

    const strings = [
      '', ' ', 'analyst', 'x'.repeat(300), 'ünïcödé ✓', '../../etc/passwd', '%00', '\u0000', '<script>', "' OR 1=1 --",
      '-1', '0', '1e309', 'NaN', 'null', 'true', '{}', '[]', 'some-id', taskId, replicaId, '🚀'.repeat(50),
    ];
    const scalars: unknown[] = [null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, '', 'x', 'x'.repeat(5000), [], {}];
    const knownKeys = [
      'agent', 'capabilities', 'input', 'priority', 'maxAttempts', 'timeoutMs', 'runAt', 'delayMs', 'idempotencyKey',
      'concurrencyKey', 'replica', 'site', 'correlation', 'traceparent', 'parentId', 'name', 'role', 'agents', 'expiresAt',
      'scopes', 'rootTaskId', 'ttlSeconds', 'replicaId', 'max', 'waitMs', 'percent', 'message', 'result', 'error',
      'retryable', 'reason', 'tasks', 'maxConcurrency', 'description', 'retry', 'runtime', 'level', '__proto__', 'constructor',
    ];
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.45) return rnd() < 0.5 ? pick(scalars) : pick(strings);
      if (r < 0.7) return Array.from({ length: int(4) }, () => value(depth + 1));
      return object(depth + 1);
    };
    const object = (depth: number): Record<string, unknown> => {
      const o: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) o[rnd() < 0.85 ? pick(knownKeys) : pick(strings)] = value(depth);
      return o;
    };
    const deep = (n: number): unknown => (n === 0 ? 1 : { a: deep(n - 1) });

    const body = (): { payload?: string | Buffer; type?: string } => {
      switch (int(12)) {
        case 0: return {};
        case 1: return { payload: '{"unterminated": ', type: 'application/json' };
        case 2: return { payload: 'not json at all', type: 'application/json' };
        case 3: return { payload: JSON.stringify(object(0)), type: 'text/plain' };
        case 4: return { payload: 'a=1&b=2', type: 'application/x-www-form-urlencoded' };
        case 5: return { payload: JSON.stringify({ input: 'x'.repeat(70 * 1024) }), type: 'application/json' };
        case 6: return { payload: JSON.stringify(deep(100)), type: 'application/json' };
        case 7: return { payload: JSON.stringify(pick(scalars)), type: 'application/json' };
        case 8: return { payload: Buffer.from([0xff, 0xfe, 0x00, 0x7b]), type: 'application/json' };
        case 9: return { payload: '', type: 'application/json' };
        default: return { payload: JSON.stringify(object(0)), type: 'application/json' };
      }
    };
    const query = (): string => {
      const n = int(4);
      if (n === 0) return '';
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(`${encodeURIComponent(rnd() < 0.8 ? pick(['status', 'agent', 'limit', 'cursor', 'waitMs', 'after', 'type', 'taskId', 'priority', 'includeRevoked', 'outcome', 'since', 'before', 'parentId']) : pick(strings))}=${encodeURIComponent(String(rnd() < 0.5 ? pick(strings) : pick(scalars)))}`);
      return `?${parts.join('&')}`;
    };
    const auth = (): Record<string, string> => {
      switch (int(8)) {
        case 0: return {};
        case 1: return { authorization: `Bearer ${viewerToken}` };
        case 2: return { authorization: 'Bearer garbage' };
        case 3: return { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` };
        case 4: return { authorization: `Bearer ${'x'.repeat(4000)}` };
        case 5: return { authorization: 'Bearer a.b.c' };
        default: return { authorization: `Bearer ${TOKEN}` };
      }
    };
    const routes = Object.keys(ROUTE_ACTIONS)
      .map((k) => k.split(' ') as [string, string])
      // The live event stream never ends by itself; it is fuzzed below with requests it must refuse.
      .filter(([method, url]) => !(method === 'GET' && url === '/api/v1/events'));

    let state = await snapshot();
    const seen = new Map<number, number>();
    for (let i = 0; i < COUNT; i++) {
      const [routeMethod, routeUrl] = pick(routes);
      const method = rnd() < 0.9 ? routeMethod : pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);
      const url = rnd() < 0.05
        ? `/api/v1/${encodeURIComponent(pick(strings))}`
        : routeUrl.replace(/:[A-Za-z]+/g, () => encodeURIComponent(pick(strings)) || 'x');
      const b = body();
      const headers: Record<string, string> = { ...auth(), ...(b.type ? { 'content-type': b.type } : {}) };
      if (rnd() < 0.05) headers['last-event-id'] = pick(strings);
      const res = await h.app.inject({ method: method as 'GET', url: url + query(), headers, ...(b.payload !== undefined && method !== 'GET' ? { payload: b.payload } : {}) });
      const where = `#${i} ${method} ${url} → ${res.statusCode} ${res.body.slice(0, 300)}`;
      seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
      assert.ok(res.statusCode < 500, `server error: ${where}`);
      if (res.statusCode >= 400 && method !== 'HEAD' && !(res.statusCode === 404 && res.body === '')) {
        const code = (JSON.parse(res.body) as { error?: { code?: string } }).error?.code;
        assert.ok(code !== undefined && code in ERROR_STATUS, `no stable error code: ${where}`);
        assert.equal(ERROR_STATUS[code as keyof typeof ERROR_STATUS], res.statusCode, `status does not match the code table: ${where}`);
      }
      await h.engine.dispatcher.idle();
      const now = await snapshot();
      if (res.statusCode >= 400) assert.equal(now, state, `a refused request changed the state: ${where}`);
      state = now;
    }
    // The run exercised refusals of every kind, and some requests got through.
    for (const status of [400, 401, 403, 404]) assert.ok((seen.get(status) ?? 0) > 0, `no ${status} in ${JSON.stringify([...seen])}`);
    assert.ok([...seen.keys()].some((s) => s < 300), 'some requests succeeded');
  });

  it('the event stream refuses malformed positions and filters', async () => {
    for (const [url, headers] of [
      ['/api/v1/events?after=-1', {}],
      ['/api/v1/events?after=abc', {}],
      ['/api/v1/events?type=' + 'x'.repeat(100), {}],
      ['/api/v1/events?bogus=1', {}],
      ['/api/v1/events', { 'last-event-id': 'not-a-number' }],
    ] as const) {
      const res = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
      assert.equal(res.statusCode, 400, url);
    }
  });
});
