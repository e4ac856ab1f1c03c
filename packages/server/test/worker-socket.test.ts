// The WebSocket worker protocol (docs/protocol.md, part 2) over a real socket, against the
// in-process server with a controlled clock: hello and welcome, pushed assignments within
// the replica's slots, reports, pushed cancellations and revocations, reconnection with the
// assignments a worker still holds, drain, replacement, shutdown, and hostile frames.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';

let h: Harness;
let url: string;

beforeEach(async () => {
  h = await harness({ config: { leaseMs: 30_000, replicaTtlMs: 60_000, cancelGraceMs: 5_000, retry: { baseDelayMs: 1_000, maxDelayMs: 10_000 } } });
  await h.agent({ name: 'analyst', maxConcurrency: 4 });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  url = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/api/v1/workers/socket`;
});
afterEach(() => h.close());

type Frame = Record<string, any>;

/** A bare protocol client: requests get replies by id; pushes queue up until taken. */
class Client {
  readonly ws: WebSocket;
  readonly pushes: Frame[] = [];
  readonly replies = new Map<unknown, Frame>();
  readonly #waiters: Array<() => void> = [];
  #nextId = 1;
  closed: Promise<{ code: number; reason: string }>;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      if ('push' in frame) this.pushes.push(frame);
      else this.replies.set(frame.re, frame);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  static async open(headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }, options: { autoPong?: boolean } = {}): Promise<Client> {
    const ws = new WebSocket(url, { headers, ...options });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Client(ws);
  }

  async until<T>(pick: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = pick();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  async request(op: string, fields: Frame = {}): Promise<Frame> {
    const id = this.#nextId++;
    this.ws.send(JSON.stringify({ op, id, ...fields }));
    return this.until(() => this.replies.get(id), `reply to ${op}`);
  }

  async ok(op: string, fields: Frame = {}): Promise<Frame> {
    const reply = await this.request(op, fields);
    assert.equal(reply.ok, true, `${op} failed: ${JSON.stringify(reply.error)}`);
    return reply.result;
  }

  /** Takes the next push of a kind (assignments are flattened from `assign` frames). */
  async next(kind: string): Promise<Frame> {
    return this.until(() => {
      const i = this.pushes.findIndex((p) => p.push === kind);
      return i === -1 ? undefined : this.pushes.splice(i, 1)[0];
    }, `a ${kind} push`);
  }

  async assignments(n: number): Promise<Frame[]> {
    const out: Frame[] = [];
    while (out.length < n) out.push(...(await this.next('assign')).assignments);
    return out;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A socket `start` is written a few ms after its answer (worker-session.ts START_WRITE_DELAY_MS). */
async function statusBecomes(taskId: string, status: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while ((await h.task(taskId)).status !== status) {
    if (Date.now() > deadline) assert.fail(`task ${taskId} did not become ${status}`);
    await sleep(5);
  }
}

describe('WebSocket worker protocol', () => {
  it('refuses an upgrade without a valid token (401, nothing registered)', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }]) {
      const ws = new WebSocket(url, { headers });
      const status = await new Promise<number>((resolve, reject) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => reject(new Error('opened without a valid token')));
        ws.once('error', () => {});
      });
      assert.equal(status, 401);
    }
    assert.equal((await h.api('GET', '/agents/analyst/replicas')).body.items.length, 0);
  });

  it('hello registers; assignments are pushed within free slots; reports end attempts', async () => {
    const c = await Client.open();
    const welcome = await c.ok('hello', { agent: 'analyst', site: 'eu-1', maxConcurrency: 2 });
    assert.equal(welcome.protocolVersion, 1);
    assert.equal(welcome.replica.agent, 'analyst');
    assert.equal(welcome.replica.maxConcurrency, 2);
    assert.equal(welcome.leaseMs, 30_000);
    assert.equal(welcome.heartbeatIntervalMs, 10_000);
    assert.deepEqual(welcome.held, { kept: [], ended: [], released: 0 });
    const replicaId = welcome.replica.id as string;

    const tasks = [];
    for (let i = 0; i < 3; i++) tasks.push(await h.submit({ agent: 'analyst', input: { n: i } }));
    const [a, b] = await c.assignments(2);
    assert.deepEqual([a!.task.input.n, b!.task.input.n].sort(), [0, 1]);
    // Two slots: the third task waits for a slot to free.
    await sleep(100);
    assert.equal(c.pushes.length, 0);
    assert.equal((await h.task(tasks[2]!.id)).status, 'pending');

    await c.ok('start', { assignmentId: a!.assignmentId });
    await statusBecomes(a!.task.id, 'running');
    const progress = await c.ok('progress', { assignmentId: a!.assignmentId, percent: 50, message: 'half' });
    assert.equal(progress.cancelRequested, false);
    assert.equal((await h.task(a!.task.id)).assignment!.progress!.percent, 50);
    await c.ok('complete', { assignmentId: a!.assignmentId, result: { done: true } });
    const done = await h.task(a!.task.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { done: true });

    // The freed slot brings the third task, without any request from the worker.
    const [third] = await c.assignments(1);
    assert.equal(third!.task.id, tasks[2]!.id);
    await c.ok('fail', { assignmentId: b!.assignmentId, error: { message: 'bad input', code: 'E_INPUT' }, retryable: false });
    assert.equal((await h.task(b!.task.id)).status, 'failed');

    // A report about an attempt that is over is refused and changes nothing.
    const again = await c.request('complete', { assignmentId: a!.assignmentId, result: 2 });
    assert.equal(again.ok, false);
    assert.equal(again.error.code, 'ASSIGNMENT_SUPERSEDED');
    assert.deepEqual((await h.task(a!.task.id)).result, { done: true });

    const beat = await c.ok('heartbeat', { assignmentIds: [third!.assignmentId, a!.assignmentId] });
    assert.deepEqual(beat.leases.map((l: Frame) => l.assignmentId), [third!.assignmentId]);
    assert.deepEqual(beat.ended, [{ assignmentId: a!.assignmentId, status: 'completed' }]);
    const replicas = (await h.api('GET', '/agents/analyst/replicas')).body.items;
    assert.equal(replicas.find((r: Frame) => r.id === replicaId).inFlight, 1);
    c.ws.close();
  });

  it('pushes a cancellation to the holder; the worker acknowledges and the task ends cancelled', async () => {
    const c = await Client.open();
    await c.ok('hello', { agent: 'analyst' });
    const task = await h.submit({ agent: 'analyst' });
    const [a] = await c.assignments(1);
    await c.ok('start', { assignmentId: a!.assignmentId });
    assert.equal((await h.api('POST', `/tasks/${task.id}/cancel`, { reason: 'user' })).status, 200);
    const cancel = await c.next('cancel');
    assert.deepEqual(cancel, { push: 'cancel', assignmentId: a!.assignmentId, taskId: task.id });
    await c.ok('cancelled', { assignmentId: a!.assignmentId });
    assert.equal((await h.task(task.id)).status, 'cancelled');
    c.ws.close();
  });

  it('pushes a revocation when the server times the attempt out', async () => {
    const c = await Client.open();
    await c.ok('hello', { agent: 'analyst' });
    const task = await h.submit({ agent: 'analyst', timeoutMs: 1_000, maxAttempts: 1 });
    const [a] = await c.assignments(1);
    await c.ok('start', { assignmentId: a!.assignmentId });
    h.advance(1_500);
    await h.engine.reaper.sweep();
    const revoke = await c.next('revoke');
    assert.deepEqual(revoke, { push: 'revoke', assignmentId: a!.assignmentId, taskId: task.id, reason: 'timed_out' });
    assert.equal((await h.task(task.id)).status, 'failed');
    c.ws.close();
  });

  it('an operator\'s assign pushes the task to a connected replica; an operator\'s fail pushes a revocation', async () => {
    const c = await Client.open();
    const welcome = await c.ok('hello', { agent: 'analyst' });
    const task = await h.submit({ agent: 'analyst', delayMs: 3_600_000 });
    await h.engine.dispatcher.idle();
    const assigned = await h.api('POST', `/tasks/${task.id}/assign`, { replica: welcome.replica.id });
    assert.equal(assigned.status, 200, JSON.stringify(assigned.body));
    const [a] = await c.assignments(1);
    assert.equal(a!.task.id, task.id);
    await c.ok('start', { assignmentId: a!.assignmentId });
    assert.equal((await h.api('POST', `/tasks/${task.id}/fail`, { reason: 'wrong customer' })).status, 200);
    const revoke = await c.next('revoke');
    assert.deepEqual(revoke, { push: 'revoke', assignmentId: a!.assignmentId, taskId: task.id, reason: 'failed' });
    c.ws.close();
  });

  it('reconnecting: held assignments are kept; the ones not listed are released at once', async () => {
    const first = await Client.open();
    const welcome = await first.ok('hello', { agent: 'analyst', maxConcurrency: 3 });
    const replicaId = welcome.replica.id as string;
    const [t1, t2, t3] = [await h.submit({ agent: 'analyst' }), await h.submit({ agent: 'analyst' }), await h.submit({ agent: 'analyst' })];
    const got = await first.assignments(3);
    const byTask = new Map(got.map((a) => [a.task.id as string, a]));
    await first.ok('start', { assignmentId: byTask.get(t1.id)!.assignmentId });
    await first.ok('start', { assignmentId: byTask.get(t2.id)!.assignmentId });
    first.ws.terminate();
    await first.closed;
    // Leases are untouched by the disconnect itself (the starts are written on the close).
    await statusBecomes(t1.id, 'running');

    // The worker kept t1 only; t2 (running) and t3 (never started) are not listed.
    const second = await Client.open();
    const back = await second.ok('hello', { agent: 'analyst', replicaId, maxConcurrency: 3, held: [byTask.get(t1.id)!.assignmentId, 'no-such-assignment'] });
    assert.equal(back.replica.id, replicaId);
    assert.deepEqual(back.held.kept.map((k: Frame) => k.assignmentId), [byTask.get(t1.id)!.assignmentId]);
    assert.deepEqual(back.held.ended, [{ assignmentId: 'no-such-assignment', status: 'unknown' }]);
    assert.equal(back.held.released, 2);
    assert.equal((await h.task(t1.id)).status, 'running');
    // Running and not held: the attempt is lost and retried (it counted).
    const t2now = await h.task(t2.id);
    assert.equal(t2now.status, 'pending');
    assert.equal(t2now.attempt, 1);
    assert.equal(t2now.error?.code, 'NOT_HELD');
    // Never started: the dispatch is undone and does not count as an attempt.
    const t3now = await h.task(t3.id);
    assert.equal(t3now.status, 'pending');
    assert.equal(t3now.attempt, 0);
    // The reconnected worker can complete what it kept.
    await second.ok('complete', { assignmentId: byTask.get(t1.id)!.assignmentId, result: 'kept' });
    assert.equal((await h.task(t1.id)).status, 'completed');
    second.ws.close();
  });

  it('a start is written a moment later, or not at all when the final report comes first', async () => {
    const c = await Client.open();
    await c.ok('hello', { agent: 'analyst', maxConcurrency: 2 });
    const quick = await h.submit({ agent: 'analyst' });
    const slow = await h.submit({ agent: 'analyst' });
    const got = await c.assignments(2);
    const of = (id: string) => got.find((a) => a.task.id === id)!.assignmentId as string;
    await c.ok('start', { assignmentId: of(quick.id) });
    await c.ok('complete', { assignmentId: of(quick.id), result: 1 });
    await c.ok('start', { assignmentId: of(slow.id) });
    await statusBecomes(slow.id, 'running');
    await c.ok('complete', { assignmentId: of(slow.id), result: 2 });
    const types = async (id: string) => (await h.api('GET', `/tasks/${id}/events`)).body.items.map((e: Frame) => e.type);
    assert.deepEqual(await types(quick.id), ['task.created', 'task.dispatched', 'task.completed']);
    assert.deepEqual(await types(slow.id), ['task.created', 'task.dispatched', 'task.started', 'task.completed']);

    // A final report that is refused does not stand for the start: it is still written.
    const refused = await h.submit({ agent: 'analyst' });
    const [r] = await c.assignments(1);
    await c.ok('start', { assignmentId: r!.assignmentId });
    let deep: unknown = 0;
    for (let i = 0; i < 100; i++) deep = [deep];
    const bad = await c.request('complete', { assignmentId: r!.assignmentId, result: deep });
    assert.equal(bad.ok, false);
    await statusBecomes(refused.id, 'running');
  });

  it('a worker that dies right after start: its reconnection finds the attempt started (lost and counted), not undelivered', async () => {
    const first = await Client.open();
    const welcome = await first.ok('hello', { agent: 'analyst', maxConcurrency: 1 });
    const task = await h.submit({ agent: 'analyst', maxAttempts: 2 });
    const [a] = await first.assignments(1);
    await first.ok('start', { assignmentId: a!.assignmentId });
    // The process dies at once and comes back at once, holding nothing.
    first.ws.terminate();
    await first.closed;
    const second = await Client.open();
    const back = await second.ok('hello', { agent: 'analyst', replicaId: welcome.replica.id, maxConcurrency: 1, held: [] });
    assert.equal(back.held.released, 1);
    const after = await h.task(task.id);
    assert.equal(after.attempt, 1, 'the attempt counted');
    const assignments = (await h.api('GET', `/tasks/${task.id}/assignment`)).body.attempts as Frame[];
    assert.equal(assignments[0]!.status, 'lost');
    assert.equal(assignments[0]!.error.code, 'NOT_HELD');
  });

  it('drain stops pushes while reports still work', async () => {
    const c = await Client.open();
    await c.ok('hello', { agent: 'analyst' });
    await h.submit({ agent: 'analyst' });
    const [a] = await c.assignments(1);
    await c.ok('drain');
    const later = await h.submit({ agent: 'analyst' });
    await c.ok('complete', { assignmentId: a!.assignmentId });
    await h.engine.dispatcher.passed();
    await sleep(50);
    assert.equal(c.pushes.length, 0);
    assert.equal((await h.task(later.id)).status, 'pending');
    c.ws.close();
  });

  it('a newer connection for the same replica replaces the older one', async () => {
    const first = await Client.open();
    const { replica } = await first.ok('hello', { agent: 'analyst' });
    const second = await Client.open();
    await second.ok('hello', { agent: 'analyst', replicaId: replica.id });
    assert.equal((await first.closed).code, 4002);
    const task = await h.submit({ agent: 'analyst' });
    const [a] = await second.assignments(1);
    assert.equal(a!.task.id, task.id);
    second.ws.close();
  });

  it('refuses bad frames with stable codes and changes nothing', async () => {
    const c = await Client.open();
    c.ws.send('{not json');
    assert.equal((await c.until(() => c.replies.get(null), 'an INVALID_JSON reply')).error.code, 'INVALID_JSON');
    const before = await c.request('start', { assignmentId: 'x' });
    assert.equal(before.error.code, 'NOT_REGISTERED');
    const unknownOp = await c.request('lease', {});
    assert.equal(unknownOp.error.code, 'VALIDATION_FAILED');
    const extra = await c.request('hello', { agent: 'analyst', sneaky: true });
    assert.equal(extra.error.code, 'VALIDATION_FAILED');
    assert.match(extra.error.message, /sneaky/);
    const nul = await c.request('hello', { agent: 'analyst', site: 'a\u0000b' });
    assert.equal(nul.error.code, 'VALIDATION_FAILED');
    const unknownAgent = await c.request('hello', { agent: 'nobody' });
    assert.equal(unknownAgent.error.code, 'UNKNOWN_AGENT');
    assert.equal((await h.api('GET', '/agents/analyst/replicas')).body.items.length, 0);
    // After a refused hello, a valid one still works on the same connection.
    await c.ok('hello', { agent: 'analyst' });
    const twice = await c.request('hello', { agent: 'analyst' });
    assert.equal(twice.error.code, 'VALIDATION_FAILED');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await c.closed).code, 1003);
  });

  it('closes worker sockets with 1012 (reconnect) when the server shuts down', async () => {
    const c = await Client.open();
    await c.ok('hello', { agent: 'analyst' });
    const idle = await Client.open();
    await h.app.close();
    assert.equal((await c.closed).code, 1012);
    assert.equal((await idle.closed).code, 1012);
  });

  it('a newer registration of the replica elsewhere (here: over HTTP) closes the socket with 4002', async () => {
    const c = await Client.open();
    const { replica } = await c.ok('hello', { agent: 'analyst' });
    assert.equal((await h.api('POST', '/workers/register', { agent: 'analyst', replicaId: replica.id })).status, 201);
    assert.equal((await c.closed).code, 4002);
  });
});

describe('WebSocket worker protocol: liveness and credentials', () => {
  // Short windows: heartbeat interval = 600 / 3 = 200 ms.
  let fast: Harness;
  let fastUrl: string;
  beforeEach(async () => {
    fast = await harness({ config: { leaseMs: 600, replicaTtlMs: 600 } });
    await fast.agent({ name: 'analyst' });
    await fast.app.listen({ host: '127.0.0.1', port: 0 });
    fastUrl = `ws://127.0.0.1:${(fast.app.server.address() as AddressInfo).port}/api/v1/workers/socket`;
  });
  afterEach(() => fast.close());

  it('a client that answers no pings is closed with 4003 after two unanswered ones', async () => {
    url = fastUrl;
    const c = await Client.open(undefined, { autoPong: false });
    const started = Date.now();
    assert.equal((await c.closed).code, 4003);
    assert.ok(Date.now() - started >= 400, 'not before two intervals');
  });

  it('revoking the key a worker connected with closes its socket with 4004', async () => {
    url = fastUrl;
    const created = await fast.api('POST', '/keys', { name: 'w', role: 'agent', agents: ['analyst'] });
    assert.equal(created.status, 201);
    const c = await Client.open({ authorization: `Bearer ${created.body.token}` });
    await c.ok('hello', { agent: 'analyst' });
    assert.equal((await fast.api('POST', `/keys/${created.body.key.id}/revoke`)).status, 200);
    assert.equal((await c.closed).code, 4004);
    // And it cannot come back.
    const again = new WebSocket(fastUrl, { headers: { authorization: `Bearer ${created.body.token}` } });
    const status = await new Promise<number>((resolve) => {
      again.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      again.once('error', () => {});
    });
    assert.equal(status, 401);
  });
});

