// The SDK client against real `flotilla serve` processes: pagination, long-poll wait, typed
// errors, URL failover, and an event stream that survives a server SIGKILL + restart.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TOKEN } from '../../server/test/helpers/harness.ts';
import { startServerProcess, type ServerProcess } from '../../server/test/helpers/server-process.ts';
import type { EventView } from '../src/index.ts';
import { Flotilla, FlotillaApiError, FlotillaNetworkError, isFlotillaError, SseParser } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-sdk-client-'));
const servers: ServerProcess[] = [];
let server: ServerProcess;
let client: Flotilla;

/** A port nothing listens on (bound, then released): a "dead node" URL. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function raw(path: string, body: unknown): Promise<any> {
  const res = await fetch(`${server.url}/api/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  assert.ok(res.ok, `${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

before(async () => {
  // Trees of one agent (echo under echo): equal levels allowed (decision 59).
  server = await startServerProcess({ database: join(dir, 'main.db'), env: { FLOTILLA_ALLOW_EQUAL_LEVEL: 'true' } });
  servers.push(server);
  client = new Flotilla({ url: server.url, token: TOKEN, timeoutMs: 10_000 });
  await client.agents.create({ name: 'echo', maxConcurrency: 4 });
});

after(async () => {
  await Promise.all(servers.map((s) => s.kill('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

describe('Flotilla client', () => {
  it('submits, gets, and walks cursor pages through the list iterator', async () => {
    await client.agents.create({ name: 'pager' });
    const submitted: string[] = [];
    for (let i = 0; i < 7; i++) submitted.push((await client.tasks.submit({ agent: 'pager', input: { i } })).id);
    const got = await client.tasks.get(submitted[0]!);
    assert.equal(got.agent, 'pager');
    assert.deepEqual(got.input, { i: 0 });

    const first = await client.tasks.page({ agent: 'pager', limit: 3 });
    assert.equal(first.items.length, 3);
    assert.ok(first.nextCursor);

    const seen: string[] = [];
    for await (const task of client.tasks.list({ agent: 'pager', limit: 3 })) seen.push(task.id);
    assert.equal(seen.length, 7);
    assert.deepEqual(new Set(seen), new Set(submitted));
    assert.equal(new Set(seen).size, 7);

    const batch = await client.tasks.submitMany([{ agent: 'pager' }, { agent: 'pager', idempotencyKey: 'b-1' }]);
    assert.equal(batch.length, 2);
    assert.ok(batch.every((r) => r.created));
    const again = await client.tasks.submit({ agent: 'pager', idempotencyKey: 'b-1' });
    assert.equal(again.id, batch[1]!.task.id);

    const stats = await client.agents.stats('pager');
    assert.equal(stats.totals.pending, 9);
    assert.ok((await client.overview()).agents >= 2);
    const queue = await client.agents.queue('pager', { limit: 5 });
    assert.equal(queue.items.length, 5);
  });

  it('trees: tree() joins the pages parents first; cancel takes a reason or options ({cascade}); fail and assign', async () => {
    const root = await client.tasks.submit({ agent: 'echo', delayMs: 3_600_000 });
    const kids = [];
    for (let i = 0; i < 3; i++) kids.push(await client.tasks.submit({ agent: 'echo', parentId: root.id, delayMs: 3_600_000 }));
    const whole = await client.tasks.tree(kids[2]!.id, { pageSize: 2 });
    assert.deepEqual([whole.rootId, whole.taskId, whole.truncated, whole.items.map((n) => n.id)], [root.id, kids[2]!.id, false, [root.id, ...kids.map((k) => k.id)]]);
    const cut = await client.tasks.tree(root.id, { max: 3, pageSize: 2 });
    assert.deepEqual([cut.items.length, cut.truncated], [3, true]);
    assert.equal((await client.tasks.cancel(kids[0]!.id, 'as before')).status, 'cancelled');
    assert.equal((await client.tasks.cancel(root.id, { cascade: false, reason: 'only the root' })).status, 'cancelled');
    assert.equal((await client.tasks.get(kids[1]!.id)).status, 'pending', 'cascade: false left the children');
    const failed = await client.tasks.fail(kids[1]!.id, 'not wanted');
    assert.deepEqual([failed.status, failed.error?.code], ['failed', 'OPERATOR_FAILED']);
    await assert.rejects(client.tasks.assign(kids[2]!.id, { agent: 'echo' }), (err: unknown) =>
      err instanceof FlotillaApiError && err.code === 'NOT_ASSIGNABLE' && (err.details as { reason: string }).reason === 'no_live_replica');
  });

  it('wait() returns when a worker completes the task, and times out with the task as it is', async () => {
    const task = await client.tasks.submit({ agent: 'echo', input: 'hello' });
    const pending = await client.tasks.wait(task.id, { timeoutMs: 150 });
    assert.equal(pending.status, 'pending');

    const waiting = client.tasks.wait(task.id, { timeoutMs: 10_000 });
    const { replica } = await raw('/workers/register', { agent: 'echo' });
    const { assignments } = await raw(`/workers/${replica.id}/lease`, { max: 1, waitMs: 5_000 });
    assert.equal(assignments.length, 1);
    assert.equal(assignments[0].task.id, task.id);
    await raw(`/assignments/${assignments[0].assignmentId}/complete`, { replicaId: replica.id, result: { echoed: 'hello' } });

    const done = await waiting;
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { echoed: 'hello' });
    const events = await client.tasks.events(task.id);
    assert.deepEqual(events.map((e) => e.type).slice(0, 1), ['task.created']);
    assert.ok(events.some((e) => e.type === 'task.completed'));
    assert.equal((await client.agents.replicas('echo')).length, 1);
  });

  it('wait() rejects when its signal aborts', async () => {
    const task = await client.tasks.submit({ agent: 'echo' });
    const controller = new AbortController();
    const waiting = client.tasks.wait(task.id, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop waiting')), 100);
    await assert.rejects(waiting, /stop waiting/);
  });

  it('turns error answers into typed errors', async () => {
    const notFound = await client.tasks.get('no-such-task').catch((e: unknown) => e);
    assert.ok(notFound instanceof FlotillaApiError);
    assert.equal(notFound.code, 'TASK_NOT_FOUND');
    assert.equal(notFound.status, 404);
    assert.ok(notFound.requestId);
    assert.ok(isFlotillaError(notFound, 'TASK_NOT_FOUND'));
    assert.ok(!isFlotillaError(notFound, 'AGENT_NOT_FOUND'));

    const invalid = await client.tasks.submit({ agent: 'echo', priority: 10 }).catch((e: unknown) => e);
    assert.ok(isFlotillaError(invalid, 'VALIDATION_FAILED'));
    assert.equal(invalid.status, 400);
    assert.ok(invalid.details);

    const exists = await client.agents.create({ name: 'echo' }).catch((e: unknown) => e);
    assert.ok(isFlotillaError(exists, 'AGENT_EXISTS'));

    // A body that is not a Flotilla error (a proxy's page) still becomes a typed error.
    const proxied = new Flotilla({ url: server.url, token: TOKEN, fetch: async () => new Response('<html>bad gateway</html>', { status: 502 }) });
    const bad = await proxied.tasks.get('x').catch((e: unknown) => e);
    assert.ok(isFlotillaError(bad, 'INTERNAL'));
    assert.equal(bad.status, 502);
  });

  it('fails over from a dead URL for reads and keyed submits; never resends an unkeyed POST that may have landed', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const onlyDead = new Flotilla({ url: dead, token: TOKEN, timeoutMs: 2_000 });
    await assert.rejects(onlyDead.tasks.get('x'), FlotillaNetworkError);

    const failover = new Flotilla({ url: [dead, server.url], token: TOKEN, timeoutMs: 5_000 });
    const submitted = await failover.tasks.submit({ agent: 'echo', idempotencyKey: 'failover-1' });
    assert.equal((await failover.tasks.get(submitted.id)).id, submitted.id);
    const viaDeadFirst = new Flotilla({ url: [dead, server.url], token: TOKEN });
    assert.equal((await viaDeadFirst.tasks.get(submitted.id)).id, submitted.id);

    // A transport error with no proof that the request never left (as in a browser): an
    // unkeyed submit is surfaced, not sent again to the next node; a GET is retried.
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      calls += 1;
      if (calls === 1) throw new TypeError('network connection lost');
      return fetch(input, init);
    };
    const careful = new Flotilla({ url: [server.url, server.url], token: TOKEN, fetch: flaky });
    await assert.rejects(careful.tasks.submit({ agent: 'echo' }), FlotillaNetworkError);
    assert.equal(calls, 1);
    calls = 0;
    assert.equal((await careful.tasks.get(submitted.id)).id, submitted.id);
    assert.equal(calls, 2);

    // A 503 (node shutting down) moves on: a GET is retried on the next URL, an unkeyed
    // submit is surfaced with its code.
    let served = 0;
    const draining: typeof fetch = async (input, init) => {
      served += 1;
      if (served === 1) return new Response('{"error":{"code":"SHUTTING_DOWN","message":"bye"}}', { status: 503 });
      return fetch(input, init);
    };
    const drainingClient = new Flotilla({ url: [server.url, server.url], token: TOKEN, fetch: draining });
    assert.equal((await drainingClient.tasks.get(submitted.id)).id, submitted.id);
    served = 0;
    const refused = await drainingClient.tasks.submit({ agent: 'echo' }).catch((e: unknown) => e);
    assert.ok(isFlotillaError(refused, 'SHUTTING_DOWN'));
    assert.equal(refused.status, 503);
  });

  it('ends the event stream when the consumer breaks out', async () => {
    let n = 0;
    for await (const e of client.events.stream({ after: 0, types: ['task.created'] })) {
      assert.equal(e.type, 'task.created');
      if (++n === 2) break;
    }
    assert.equal(n, 2);
  });

  it('streams events across a server SIGKILL and restart: each task.created once, in seq order', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const database = join(dir, 'restart.db');
    let node = await startServerProcess({ database, port });
    servers.push(node);
    // Records each /events connection's Last-Event-ID, to see that the stream resumed
    // rather than replayed from the start (the client would hide a replay by de-duplicating).
    const resumedFrom: (string | null)[] = [];
    const recording: typeof fetch = (input, init) => {
      if (String(input).includes('/events')) resumedFrom.push(new Headers(init?.headers).get('last-event-id'));
      return fetch(input, init);
    };
    const c = new Flotilla({ url: `http://127.0.0.1:${port}`, token: TOKEN, timeoutMs: 5_000, fetch: recording });
    await c.agents.create({ name: 'sse' });

    const controller = new AbortController();
    const received: EventView[] = [];
    const submitted: string[] = [];
    let notify: () => void = () => {};
    const consumer = (async () => {
      for await (const e of c.events.stream({ signal: controller.signal, minBackoffMs: 50 })) {
        received.push(e);
        notify();
      }
    })();
    const createdCount = () => received.filter((e) => e.type === 'task.created').length;
    const until = async (n: number) => {
      while (createdCount() < n) await new Promise<void>((resolve) => (notify = resolve));
    };

    for (let i = 0; i < 5; i++) submitted.push((await c.tasks.submit({ agent: 'sse', input: { i } })).id);
    await until(5);

    const lastBeforeKill = received.at(-1)!.seq;
    await node.kill('SIGKILL');
    // Submitted while the node is down would fail; the stream is reconnecting meanwhile.
    node = await startServerProcess({ database, port });
    servers.push(node);
    for (let i = 5; i < 10; i++) submitted.push((await c.tasks.submit({ agent: 'sse', input: { i } })).id);
    await until(10);
    controller.abort();
    await consumer;

    const created = received.filter((e) => e.type === 'task.created').map((e) => e.taskId);
    assert.deepEqual(created, submitted);
    for (let i = 1; i < received.length; i++) assert.ok(received[i]!.seq > received[i - 1]!.seq, `seq order at ${i}`);
    assert.equal(resumedFrom[0], null);
    assert.ok(resumedFrom.length >= 2);
    assert.equal(resumedFrom.at(-1), String(lastBeforeKill));
  });
});

describe('SseParser', () => {
  it('parses split chunks, CRLF, comments and multi-line data', () => {
    const p = new SseParser();
    assert.deepEqual(p.push(': hello\r\nretry: 2000\r\n\r\nid: 7\r'), []);
    assert.equal(p.retryMs, 2000);
    assert.deepEqual(p.push('\nevent: x\ndata: {"a":\ndata: 1}\n'), []);
    assert.deepEqual(p.push('\n'), [{ id: '7', event: 'x', data: '{"a":\n1}' }]);
  });
});

describe('transport: websocket (pipelined submits)', () => {
  it('submits one by one and in batches over one socket, with typed errors; reads stay on HTTP', async () => {
    await raw('/agents', { name: 'piped' });
    const ws = new Flotilla({ url: server.url, token: TOKEN, transport: 'websocket' });
    try {
      const tasks = await Promise.all(Array.from({ length: 200 }, (_, i) => ws.tasks.submit({ agent: 'piped', input: { i } })));
      assert.equal(new Set(tasks.map((t) => t.id)).size, 200);
      assert.deepEqual(tasks.map((t) => (t.input as { i: number }).i), Array.from({ length: 200 }, (_, i) => i));
      assert.equal((await ws.tasks.get(tasks[0]!.id)).status, 'pending');
      const batch = await ws.tasks.submitMany([{ agent: 'piped', input: 'a' }, { agent: 'piped', input: 'b' }]);
      assert.deepEqual(batch.map((r) => [r.created, r.task.input]), [[true, 'a'], [true, 'b']]);
      const again = await ws.tasks.submit({ agent: 'piped', idempotencyKey: 'once' });
      assert.equal((await ws.tasks.submit({ agent: 'piped', idempotencyKey: 'once' })).id, again.id);
      await assert.rejects(ws.tasks.submit({ agent: 'nobody' }), (err: unknown) => isFlotillaError(err, 'UNKNOWN_AGENT') && err.status === 422);
      await assert.rejects(ws.tasks.submit({ agent: 'piped', priority: 99 }), (err: unknown) => isFlotillaError(err, 'VALIDATION_FAILED'));
    } finally {
      ws.close();
    }
  });

  it('a role without task.submit is refused per message; a bad token cannot connect', async () => {
    const viewer = await raw('/keys', { name: 'ws viewer', role: 'viewer' });
    const asViewer = new Flotilla({ url: server.url, token: viewer.token, transport: 'websocket' });
    try {
      await assert.rejects(asViewer.tasks.submit({ agent: 'piped' }), (err: unknown) => isFlotillaError(err, 'FORBIDDEN'));
    } finally {
      asViewer.close();
    }
    const bad = new Flotilla({ url: server.url, token: 'not-a-token', transport: 'websocket' });
    await assert.rejects(bad.tasks.submit({ agent: 'piped' }), (err: unknown) => err instanceof FlotillaNetworkError);
    bad.close();
  });
});
