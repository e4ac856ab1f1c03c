// What a hostile client sends that must be refused at the door, on both stores (issue 11):
// unpaired surrogates and non-finite numbers anywhere JSON enters (HTTP bodies, paths, query
// strings and both sockets) are 400 VALIDATION_FAILED and change nothing; the audit log keeps
// recording after a request whose path holds a NUL, and one entry a store refuses never
// blocks the others; client ops on the socket share the principal's rate limit with HTTP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import WebSocket from 'ws';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import pg from 'pg';
import { PG_URL, postgresAvailable } from './helpers/postgres.ts';

const stores = [{ kind: 'sqlite' as const, skip: false }, { kind: 'postgres' as const, skip: !(await postgresAvailable()) }];

/** A request with a raw JSON text body (JSON.stringify would escape what these tests send). */
async function raw(h: Harness, method: string, url: string, text: string, token: string | null = TOKEN): Promise<{ status: number; body: any }> {
  const res = await h.app.inject({
    method: method as 'POST', url: `/api/v1${url}`, payload: text,
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
  });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
}

function assertRefused(res: { status: number; body: any }, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body.error.code, 'VALIDATION_FAILED', what);
}

/** A socket on `path` that sends raw text frames and collects replies by id. */
async function socket(h: Harness, path: string): Promise<{ send(text: string, id: number): Promise<any>; close(): void }> {
  const port = (h.app.server.address() as AddressInfo).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const replies = new Map<unknown, any>();
  const waiters = new Map<unknown, (reply: any) => void>();
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if ('push' in frame) return;
    const waiter = waiters.get(frame.re);
    if (waiter) waiter(frame);
    else replies.set(frame.re, frame);
  });
  return {
    send(text, id) {
      ws.send(text);
      return replies.has(id) ? Promise.resolve(replies.get(id)) : new Promise((resolve) => waiters.set(id, resolve));
    },
    close: () => ws.close(),
  };
}

for (const { kind, skip } of stores) {
  describe(`hostile input (${kind})`, { skip: skip ? 'PostgreSQL is not reachable' : false }, () => {
    let h: Harness;
    let replicaId: string;
    let assignmentId: string;
    let taskId: string;

    before(async () => {
      h = await harness({ store: kind, config: { rateLimitPerSecond: 0, rateLimitAnonymousPerMinute: 0 } });
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      await h.agent({ name: 'echo', capabilities: ['nlp'] });
      taskId = (await h.submit({ agent: 'echo', input: { n: 1 } })).id;
      replicaId = await h.register('echo');
      assignmentId = (await h.lease(replicaId))[0]!.assignmentId;
    });
    after(() => h.close());

    it('refuses unpaired surrogates in every field that reaches a store, over HTTP', async () => {
      const before = await h.store.eventLastSeq();
      const lone = '\\ud800';
      const cases: Array<[string, string, string]> = [
        ['input', 'POST', `/tasks|{"agent":"echo","input":"${lone}"}`],
        ['input key', 'POST', `/tasks|{"agent":"echo","input":{"${lone}":1}}`],
        ['type', 'POST', `/tasks|{"agent":"echo","type":"t${lone}"}`],
        ['correlation', 'POST', `/tasks|{"agent":"echo","correlation":{"caseId":"c${lone}"}}`],
        ['idempotency key', 'POST', `/tasks|{"agent":"echo","idempotencyKey":"k${lone}"}`],
        ['idempotency key (low half)', 'POST', `/tasks|{"agent":"echo","idempotencyKey":"k\\udfff"}`],
        ['batch item', 'POST', `/tasks/batch|{"tasks":[{"agent":"echo","input":"${lone}"}]}`],
        ['capabilities', 'POST', `/agents|{"name":"surrogate","capabilities":["a${lone}"]}`],
        ['site', 'POST', `/workers/register|{"agent":"echo","site":"s${lone}"}`],
        ['replica id', 'POST', `/workers/register|{"agent":"echo","replicaId":"${lone}"}`],
        ['cancel reason', 'POST', `/tasks/${taskId}/cancel|{"reason":"r${lone}"}`],
        ['progress message', 'POST', `/assignments/${assignmentId}/progress|{"replicaId":"${replicaId}","percent":5,"message":"m${lone}"}`],
        ['result', 'POST', `/assignments/${assignmentId}/complete|{"replicaId":"${replicaId}","result":{"r":"${lone}"}}`],
        ['error', 'POST', `/assignments/${assignmentId}/fail|{"replicaId":"${replicaId}","error":{"message":"e${lone}"}}`],
      ];
      for (const [what, method, spec] of cases) {
        const [url, body] = spec.split('|') as [string, string];
        assertRefused(await raw(h, method, url, body), what);
      }
      // A path parameter with an unpaired surrogate cannot come from valid UTF-8; a replica id
      // in a query string is refused as well where it can (percent-encoded CESU-8 is not UTF-8).
      assert.equal(await h.store.eventLastSeq(), before, 'nothing was written');
      assert.equal((await h.task(taskId)).status, 'dispatched');
      assert.equal((await h.api('GET', '/agents/surrogate')).status, 404);
    });

    it('refuses an agent runtime that nothing runs yet (process), and an a2a agent without a target, instead of storing an agent whose tasks would wait forever', async () => {
      for (const [runtime, message] of [['a2a', /a2a is required/], ['process', /not implemented/]] as const) {
        const res = await h.api('POST', '/agents', { name: `rt-${runtime}`, runtime });
        assertRefused(res, runtime);
        assert.match(res.body.error.message, message);
        assert.equal((await h.api('GET', `/agents/rt-${runtime}`)).status, 404);
      }
      assert.equal((await h.api('POST', '/agents', { name: 'rt-pull', runtime: 'pull' })).status, 201);
      // An agent stored with such a runtime before this rule stays editable; setting one is refused.
      const { agentFromSpec } = await import('../src/engine/agent-service.ts');
      const stored = { ...agentFromSpec({ name: 'rt-old' }, h.now()), runtime: 'a2a' as const };
      await h.store.agentCreate({ agent: stored, event: { type: 'agent.created', taskId: null, assignmentId: null, replicaId: null, agent: 'rt-old', data: {}, at: h.now() } as never });
      const patched = await h.api('PATCH', '/agents/rt-old', { description: 'still editable' });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      const refused = await h.api('PATCH', '/agents/rt-pull', { runtime: 'process' });
      assertRefused(refused, 'setting an unimplemented runtime');
      assert.deepEqual(refused.body.error.details, [{ path: '/runtime', message: 'is not implemented yet' }]);
    });

    it('refuses numbers that are not finite, in bodies and query strings', async () => {
      const before = await h.store.eventLastSeq();
      assertRefused(await raw(h, 'POST', '/tasks', '{"agent":"echo","input":1e400}'), 'input');
      assertRefused(await raw(h, 'POST', '/tasks', '{"agent":"echo","input":{"n":[-1e400]}}'), 'nested input');
      assertRefused(await raw(h, 'POST', '/tasks', '{"agent":"echo","priority":1e400}'), 'priority');
      for (const query of ['after=1e400', 'after=-1e400', 'limit=1e400']) {
        assertRefused(await h.api('GET', `/events/page?${query}`), query);
      }
      assertRefused(await h.api('GET', '/tasks?limit=1e400'), 'task list limit');
      assert.equal(await h.store.eventLastSeq(), before, 'nothing was written');
    });

    it('refuses integers beyond what is exact (above 2^53) in query strings and Last-Event-ID, not a 500', async () => {
      for (const url of ['/events/page?after=9223372036854775808', '/events/page?after=99999999999999999999999', `/tasks/${taskId}/events?after=9223372036854775808`, '/audit?before=99999999999999999999999']) {
        assertRefused(await h.api('GET', url), url);
      }
      const sse = await h.app.inject({ method: 'GET', url: '/api/v1/events', headers: { authorization: `Bearer ${TOKEN}`, 'last-event-id': '99999999999999999999999' } });
      assert.equal(sse.statusCode, 400);
    });

    it('answers a plain HTTP request to a socket endpoint 426 UPGRADE_REQUIRED in the API error shape', async () => {
      for (const url of ['/socket', '/workers/socket']) {
        const res = await h.api('GET', url);
        assert.equal(res.status, 426, url);
        assert.equal(res.body.error.code, 'UPGRADE_REQUIRED');
        assert.equal(res.headers.upgrade, 'websocket');
      }
    });

    it('refuses the same over both sockets, and answers the next message as usual', async () => {
      for (const path of ['/socket', '/workers/socket']) {
        const s = await socket(h, path);
        try {
          const surrogate = await s.send('{"op":"submit","id":1,"task":{"agent":"echo","input":"\\ud800"}}', 1);
          assert.equal(surrogate.ok, false);
          assert.equal(surrogate.error.code, 'VALIDATION_FAILED', `${path}: ${JSON.stringify(surrogate)}`);
          const infinite = await s.send('{"op":"submit","id":2,"task":{"agent":"echo","input":1e400}}', 2);
          assert.equal(infinite.error.code, 'VALIDATION_FAILED');
          const key = await s.send('{"op":"get","id":3,"taskId":"t\\udc00"}', 3);
          assert.equal(key.error.code, 'VALIDATION_FAILED');
          const fine = await s.send(`{"op":"get","id":4,"taskId":"${taskId}"}`, 4);
          assert.equal(fine.ok, true, JSON.stringify(fine));
        } finally {
          s.close();
        }
      }
    });

    it('keeps auditing after a refused request whose path holds a NUL, and stores its target', async () => {
      const res = await h.app.inject({ method: 'POST', url: '/api/v1/tasks/a%00b/cancel' });
      assert.equal(res.statusCode, 401);
      await h.engine.audit.flush();
      assert.equal((await h.api('POST', '/agents', { name: 'after-nul' })).status, 201);
      const { body } = await h.api('GET', '/audit?limit=20');
      const actions = body.items.map((e: any) => [e.action, e.target, e.status]);
      assert.ok(actions.some(([a, t, s]: [string, string, number]) => a === 'agent.manage' && t === null && s === 201), JSON.stringify(actions));
      const refused = body.items.find((e: any) => e.status === 401 && e.action === 'task.cancel');
      assert.ok(refused, JSON.stringify(actions));
      assert.equal(refused.target, 'a\uFFFDb', 'the NUL is kept visible as U+FFFD');
    });

    it('writes the other entries of a batch when the store refuses one of them', async () => {
      // An entry no store can take (details a BigInt cannot be serialized), between two good ones, in one batch.
      const base = { principalId: null, principalName: null, role: null, outcome: 'allowed' as const, status: 200, requestId: null, source: 'test' };
      h.engine.audit.record({ ...base, action: 'test.before', target: 'one', details: null });
      h.engine.audit.record({ ...base, action: 'test.broken', target: 'two', details: { n: 10n } as never });
      h.engine.audit.record({ ...base, action: 'test.after', target: 'three\u0000\ud800', details: { 'k\u0000': 'v\udfff' } });
      await h.engine.audit.flush();
      const { items } = await h.store.auditList({ limit: 10 });
      const mine = items.filter((e) => e.action.startsWith('test.')).map((e) => [e.action, e.target, e.details]).reverse();
      assert.deepEqual(mine, [['test.before', 'one', null], ['test.after', 'three\uFFFD\uFFFD', { 'k\uFFFD': 'v\uFFFD' }]]);
      // And later entries still flow.
      h.engine.audit.record({ ...base, action: 'test.later', target: null, details: null });
      await h.engine.audit.flush();
      assert.ok((await h.store.auditList({ limit: 1 })).items[0]?.action === 'test.later');
    });
  });
}

describe('socket client ops and the rate limit', () => {
  let h: Harness;
  before(async () => {
    h = await harness({ config: { rateLimitPerSecond: 2, rateLimitBurst: 5 } });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    await h.agent({ name: 'echo' });
  });
  after(() => h.close());

  it('take from the same per-principal budget as HTTP requests; worker ops do not', async () => {
    const s = await socket(h, '/socket');
    try {
      const replies = await Promise.all(Array.from({ length: 50 }, (_, i) =>
        s.send(JSON.stringify({ op: 'submit', id: i + 1, task: { agent: 'echo', input: i } }), i + 1)));
      const limited = replies.filter((r) => !r.ok);
      assert.ok(replies.filter((r) => r.ok).length <= 6, `at most the burst (and a refill) is accepted: ${replies.filter((r) => r.ok).length}`);
      assert.ok(limited.length >= 44);
      for (const r of limited) {
        assert.equal(r.error.code, 'RATE_LIMITED');
        assert.ok(r.error.details.retryAfterMs > 0);
      }
      // The HTTP budget is the same one, now spent.
      const http = await h.api('GET', '/agents');
      assert.equal(http.status, 429);
      assert.ok(Number(http.headers['retry-after']) >= 1);
      // Worker ops are not charged: a hello on the spent budget still registers.
      const hello = await s.send(JSON.stringify({ op: 'hello', id: 100, agent: 'echo' }), 100);
      assert.equal(hello.ok, true, JSON.stringify(hello));
    } finally {
      s.close();
    }
  });
});

describe('a WebSocket frame over the size limit', () => {
  const lines: Array<Record<string, any>> = [];
  let h: Harness;
  before(async () => {
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
    h = await harness({ config: { bodyLimitBytes: 4096 }, log: pino({ level: 'info' }, sink) });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(() => h.close());

  it('closes that client with 1009 and is logged as the client’s error: a warning, no stack, at most one line a while', async () => {
    const port = (h.app.server.address() as AddressInfo).port;
    const codes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/socket`, { headers: { authorization: `Bearer ${TOKEN}` } });
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      ws.send(JSON.stringify({ op: 'get', id: 1, taskId: 'x'.repeat(8192) }));
      codes.push(await closed);
    }
    assert.deepEqual(codes, Array(10).fill(1009));
    const about = lines.filter((l) => JSON.stringify(l).includes('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') || /payload|protocol/i.test(String(l.msg)));
    assert.equal(about.length, 1, JSON.stringify(about));
    assert.equal(about[0]!.level, 40, 'warn');
    assert.ok(!JSON.stringify(about[0]).includes('stack'), 'no stack trace');
    assert.equal(lines.filter((l) => l.level >= 50).length, 0, `no error lines: ${JSON.stringify(lines.filter((l) => l.level >= 50))}`);
    // The server still serves sockets.
    const s = await socket(h, '/socket');
    try {
      assert.equal((await s.send('{"op":"get","id":9,"taskId":"missing"}', 9)).error.code, 'TASK_NOT_FOUND');
    } finally {
      s.close();
    }
  });
});

describe('the API contract for numbers', () => {
  it('gives every number it accepts a minimum and a maximum within ±(2^53 - 1) (routes and socket messages)', async () => {
    const h = await harness();
    try {
      const doc = (await h.api('GET', '/openapi.json')).body;
      const { socketMessageSchemas } = await import('../src/schemas/schemas.ts');
      const unbounded: string[] = [];
      const walk = (schema: unknown, where: string): void => {
        if (schema === null || typeof schema !== 'object') return;
        const s = schema as Record<string, unknown>;
        const numeric = ['integer', 'number'].some((t) => s.type === t || (Array.isArray(s.type) && s.type.includes(t)));
        // Response schemas describe what the server sends; only what it accepts must be bounded.
        if (numeric && !where.includes('/responses/')) {
          const bounded = (key: string) => typeof s[key] === 'number' && Math.abs(s[key] as number) <= Number.MAX_SAFE_INTEGER;
          if (!bounded('maximum') || !bounded('minimum')) unbounded.push(where);
        }
        for (const [k, v] of Object.entries(s)) walk(v, `${where}/${k}`);
      };
      walk(doc.paths, 'paths');
      walk(socketMessageSchemas, 'socket');
      assert.deepEqual(unbounded, []);
    } finally {
      await h.close();
    }
  });
});

/** Runs SQL on the harness's own database through a connection of the test's. */
async function sql(h: Harness, text: string): Promise<void> {
  if (h.schema === null) {
    const db = new DatabaseSync(join(h.dir, 'flotilla.db'));
    try { db.exec(text); } finally { db.close(); }
    return;
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${h.schema.name}"`);
    await client.query(text);
  } finally {
    await client.end();
  }
}

const REFUSE_AUDIT = {
  sqlite: ["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'refused by the test'); END", 'DROP TRIGGER refuse_audit'],
  postgres: [
    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    'DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit()',
  ],
} as const;

for (const { kind, skip } of stores) {
  describe(`the audit log when the store will not write (${kind})`, { skip: skip ? 'PostgreSQL is not reachable' : false }, () => {
    const base = { principalId: null, principalName: null, role: null, outcome: 'allowed' as const, status: 200, requestId: null, source: 'test', target: null, details: null };

    it('keeps every entry while nothing at all can be written, and writes them all once it can', async () => {
      const h = await harness({ store: kind });
      try {
        const [refuse, allow] = REFUSE_AUDIT[kind];
        await sql(h, refuse);
        for (let i = 0; i < 40; i++) h.engine.audit.record({ ...base, action: `kept.${i}` });
        await h.engine.audit.flush();
        await sql(h, allow);
        await h.engine.audit.flush();
        const { items } = await h.store.auditList({ limit: 100 });
        assert.equal(items.filter((e) => e.action.startsWith('kept.')).length, 40, 'none was dropped');
      } finally {
        await h.close();
      }
    });

    it('tries an unavailable store about once a second, not once per recorded entry', async () => {
      const h = await harness({ store: kind });
      let attempts = 0;
      const store = h.engine.ctx.store;
      const append = store.auditAppend.bind(store);
      // Counting calls to the real store, which answers for itself (closed: STORE_UNAVAILABLE).
      store.auditAppend = (params) => {
        attempts++;
        return append(params);
      };
      try {
        await h.store.close();
        const started = Date.now();
        for (let i = 0; i < 3_000; i++) {
          h.engine.audit.record({ ...base, action: 'during' });
          if (i % 100 === 0) await new Promise((r) => setTimeout(r, 20));
        }
        await new Promise((r) => setTimeout(r, 300));
        const seconds = (Date.now() - started) / 1000;
        assert.ok(attempts <= Math.ceil(seconds) + 2, `${attempts} attempts in ${seconds.toFixed(1)} s`);
      } finally {
        store.auditAppend = append;
        await h.close().catch(() => {});
      }
    });
  });
}
