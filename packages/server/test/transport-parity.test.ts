// One answer per operation, whatever the transport (docs/decisions.md 36): each client op of
// the WebSocket protocol answers with its HTTP twin's status (the reply's `status`) and body
// (the reply's `result`), the same TaskView to the byte for the same task in the same state;
// refusals have the same code and status; worker ops answer their twin's body too. HTTP
// through app.inject, the socket through a real connection to the same in-process server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_STATUS, type TaskSpec } from '@flotilla/sdk';
import { harness, type Harness } from './helpers/harness.ts';
import { SocketClient, type Frame } from './helpers/socket-client.ts';
import { freePort } from './fixtures/mcp/servers.ts';

let h: Harness;
let s: SocketClient;

before(async () => {
  h = await harness({ config: { rateLimitPerSecond: 0 } });
  await h.listen();
  await h.agent({ name: 'parity', maxConcurrency: 10 });
  s = await SocketClient.open(h);
});
after(async () => {
  s.close();
  await h.close();
});

/** A successful reply, as `{status, body}` like an HTTP answer. */
async function viaSocket(op: string, fields: Frame): Promise<{ status: number; body: any }> {
  const reply = await s.request(op, fields);
  assert.equal(reply.ok, true, `${op}: ${JSON.stringify(reply)}`);
  assert.deepEqual(Object.keys(reply).sort(), ['ok', 're', 'result', 'status'], `${op}: the reply is {re, ok, status, result}`);
  return { status: reply.status, body: reply.result };
}

async function viaHttp(method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await h.api(method, url, body);
  assert.ok(res.status < 300, `${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
  return { status: res.status, body: res.body };
}

let agents = 0;

/** A task of an agent of its own, leased to a fresh HTTP replica (dispatched), optionally started (running). */
async function liveTask(started: boolean): Promise<{ taskId: string; assignmentId: string; replicaId: string }> {
  const agent = `parity-live-${++agents}`;
  await h.agent({ name: agent });
  const task = await h.submit({ agent });
  const replicaId = await h.register(agent);
  const [leased] = await h.lease(replicaId);
  assert.equal(leased?.task.id, task.id);
  if (started) {
    await viaHttp('POST', `/assignments/${leased.assignmentId}/start`, { replicaId });
    // Answered once checked, written a few ms later (engine/deferred-starts.ts): now.
    await h.engine.workers.flushStarts();
  }
  return { taskId: task.id, assignmentId: leased.assignmentId, replicaId };
}

describe('one answer per operation: HTTP and the socket', () => {
  it('submit: 201 and the TaskView when created; 200 and the same TaskView when the idempotency key matched', async () => {
    const spec: TaskSpec = { agent: 'parity', input: { n: 1 }, idempotencyKey: 'parity-1' };
    const http = await viaHttp('POST', '/tasks', spec);
    const socket = await viaSocket('submit', { task: spec });
    assert.equal(http.status, 201);
    assert.equal(socket.status, 200);
    assert.deepEqual(socket.body, http.body);

    // And the other way round: created over the socket, found over HTTP.
    const other: TaskSpec = { agent: 'parity', input: { n: 2 }, idempotencyKey: 'parity-2' };
    const created = await viaSocket('submit', { task: other });
    const found = await viaHttp('POST', '/tasks', other);
    assert.equal(created.status, 201);
    assert.equal(found.status, 200);
    assert.deepEqual(created.body, found.body);
    assert.equal(typeof created.body.id, 'string', 'the result is the TaskView itself, not {created, task}');
    assert.ok(!('created' in created.body) && !('task' in created.body));
  });

  it('submit with a then: the same answer, with thenTaskId, and a repeat by key finds both tasks', async () => {
    const spec: TaskSpec = { agent: 'parity', idempotencyKey: 'parity-then', then: { agent: 'parity', input: { got: { $from: '/result' } } } };
    const http = await viaHttp('POST', '/tasks', spec);
    const socket = await viaSocket('submit', { task: spec });
    assert.deepEqual([http.status, socket.status], [201, 200]);
    assert.equal(typeof http.body.thenTaskId, 'string');
    assert.deepEqual(socket.body, http.body);
    assert.equal((await h.task(http.body.thenTaskId)).status, 'blocked');
  });

  it('submitMany: 201 and the same items ({created, task}) as POST /tasks/batch', async () => {
    const specs: TaskSpec[] = [{ agent: 'parity', idempotencyKey: 'batch-1' }, { agent: 'parity', idempotencyKey: 'batch-2' }];
    const http = await viaHttp('POST', '/tasks/batch', { tasks: specs });
    const socket = await viaSocket('submitMany', { tasks: [...specs, { agent: 'parity', idempotencyKey: 'batch-3' }] });
    assert.equal(http.status, 201);
    assert.equal(socket.status, 201);
    assert.deepEqual(http.body.items.map((i: any) => i.created), [true, true]);
    assert.deepEqual(socket.body.items.map((i: any) => i.created), [false, false, true]);
    assert.deepEqual(socket.body.items.slice(0, 2).map((i: any) => i.task), http.body.items.map((i: any) => i.task));
    const again = await viaHttp('POST', '/tasks/batch', { tasks: [{ agent: 'parity', idempotencyKey: 'batch-3' }] });
    assert.deepEqual(again.body.items, [{ created: false, task: socket.body.items[2].task }]);
  });

  it('get: 200 and the same TaskView with `assignment`, pending (null) and dispatched', async () => {
    const pending = await h.submit({ agent: 'parity', input: 'read me' });
    const [http, socket] = [await viaHttp('GET', `/tasks/${pending.id}`), await viaSocket('get', { taskId: pending.id })];
    assert.equal(socket.status, 200);
    assert.equal(http.body.assignment, null);
    assert.deepEqual(socket.body, http.body);

    const live = await liveTask(false);
    const [httpLive, socketLive] = [await viaHttp('GET', `/tasks/${live.taskId}`), await viaSocket('get', { taskId: live.taskId })];
    assert.equal(httpLive.body.assignment.id, live.assignmentId);
    assert.equal(httpLive.body.assignment.status, 'dispatched');
    assert.deepEqual(socketLive.body, httpLive.body);
  });

  it('get: the same TaskView for a task its rate key holds (rateLimit, usage) and one waiting for a tool domain down (waitingDomains)', async () => {
    await h.agent({ name: 'parity-rate' });
    assert.equal((await h.api('PUT', '/rate-limits/parity:key', { rpm: 10 })).status, 201);
    const limited = await h.submit({ agent: 'parity-rate', rateKey: 'parity:key', estimatedTokens: 5 });
    const replicaId = await h.register('parity-rate');
    const [leased] = await h.lease(replicaId);
    assert.equal(leased?.task.id, limited.id);
    await viaHttp('POST', `/assignments/${leased.assignmentId}/fail`, {
      replicaId, error: { message: '429' }, rateLimited: true, retryAfterMs: 60_000, usage: { model: 'm', inputTokens: 3 },
    });
    const [http, socket] = [await viaHttp('GET', `/tasks/${limited.id}`), await viaSocket('get', { taskId: limited.id })];
    assert.equal(http.body.waitingReason, 'rate_limited');
    assert.equal(http.body.rateLimit.key, 'parity:key');
    assert.equal(http.body.usage.inputTokens, 3);
    assert.deepEqual(socket.body, http.body);

    // A tool domain nobody answers for (a loopback port with no server): down after a check.
    const port = await freePort();
    assert.equal((await h.api('PUT', '/tool-domains/parity-dead', { url: `http://127.0.0.1:${port}/mcp` })).status, 201);
    await h.agent({ name: 'parity-tools', toolDomains: ['parity-dead'] });
    await h.engine.mcp.health.sweep();
    const gated = await h.submit({ agent: 'parity-tools' });
    await h.register('parity-tools');
    const [httpGated, socketGated] = [await viaHttp('GET', `/tasks/${gated.id}`), await viaSocket('get', { taskId: gated.id })];
    assert.deepEqual([httpGated.body.waitingReason, httpGated.body.waitingDomains], ['tool_domain_down', ['parity-dead']]);
    assert.deepEqual(socketGated.body, httpGated.body);
  });

  it('cancel: 200 and the same TaskView, for a running task (still running, cancelRequestedAt set) and a pending one', async () => {
    const live = await liveTask(true);
    const socket = await viaSocket('cancel', { taskId: live.taskId, reason: 'parity' });
    assert.equal(socket.status, 200);
    assert.equal(socket.body.status, 'running');
    assert.equal(typeof socket.body.cancelRequestedAt, 'string');
    assert.ok(!('assignment' in socket.body), 'the cancel answer has no assignment (GET /tasks/{id} has)');
    // A second cancel changes nothing and answers the same task.
    const http = await viaHttp('POST', `/tasks/${live.taskId}/cancel`, {});
    assert.equal(http.status, 200);
    assert.deepEqual(http.body, socket.body);

    const pending = await h.submit({ agent: 'parity' });
    const first = await viaHttp('POST', `/tasks/${pending.id}/cancel`, {});
    const second = await viaSocket('cancel', { taskId: pending.id });
    assert.equal(first.body.status, 'cancelled');
    assert.deepEqual(second, first);
  });

  it('refusals: the same code, status and details over both', async () => {
    const finished = await liveTask(false);
    await viaHttp('POST', `/assignments/${finished.assignmentId}/complete`, { replicaId: finished.replicaId });
    const cases: Array<[string, Frame, string, string, unknown]> = [
      ['get', { taskId: 'no-such-task' }, 'GET', '/tasks/no-such-task', undefined],
      ['cancel', { taskId: 'no-such-task' }, 'POST', '/tasks/no-such-task/cancel', {}],
      ['submit', { task: { agent: 'nobody' } }, 'POST', '/tasks', { agent: 'nobody' }],
      ['cancel', { taskId: finished.taskId }, 'POST', `/tasks/${finished.taskId}/cancel`, {}],
      ['submitMany', { tasks: [{ agent: 'parity' }, { agent: 'nobody' }] }, 'POST', '/tasks/batch', { tasks: [{ agent: 'parity' }, { agent: 'nobody' }] }],
    ];
    for (const [op, fields, method, url, body] of cases) {
      const http = await h.api(method, url, body);
      const reply = await s.request(op, fields);
      assert.equal(reply.ok, false, op);
      assert.ok(http.status >= 400, `${method} ${url}: ${http.status}`);
      assert.equal(reply.status, http.status, `${op}: the reply's status is HTTP's`);
      assert.equal(reply.status, ERROR_STATUS[reply.error.code as keyof typeof ERROR_STATUS]);
      assert.deepEqual(reply.error, http.body.error, op);
    }
    // Validation: the same code and status (the paths in `details` name the message's own fields).
    const http = await h.api('POST', '/tasks', { agent: 'parity', priority: 99 });
    const reply = await s.request('submit', { task: { agent: 'parity', priority: 99 } });
    assert.deepEqual([reply.status, reply.error.code], [http.status, http.body.error.code]);
    assert.deepEqual([reply.status, reply.error.code], [400, 'VALIDATION_FAILED']);
  });

  it('worker ops answer what their HTTP twins do: hello the register answer (201) plus `held`, reports {"ok":true}, token 201', async () => {
    await h.agent({ name: 'parity-worker' });
    const registered = await viaHttp('POST', '/workers/register', { agent: 'parity-worker' });
    const hello = await viaSocket('hello', { agent: 'parity-worker' });
    assert.equal(registered.status, 201);
    assert.equal(hello.status, 201);
    assert.deepEqual(Object.keys(hello.body).sort(), [...Object.keys(registered.body), 'held'].sort());
    const { replica: _r1, ...httpRest } = registered.body;
    const { replica: _r2, held: _held, ...socketRest } = hello.body;
    assert.deepEqual(socketRest, httpRest);
    // The HTTP replica has no lease open, so the task is pushed to the socket's replica.
    const task = await h.submit({ agent: 'parity-worker' });
    const [assigned] = (await s.next('assign')).assignments;
    assert.equal(assigned.task.id, task.id);
    const start = await viaSocket('start', { assignmentId: assigned.assignmentId });
    const progress = await viaSocket('progress', { assignmentId: assigned.assignmentId, percent: 50 });
    const token = await viaSocket('token', { assignmentId: assigned.assignmentId });
    const complete = await viaSocket('complete', { assignmentId: assigned.assignmentId, result: 1 });
    assert.deepEqual(start, { status: 200, body: { ok: true } });
    assert.deepEqual(Object.keys(progress.body).sort(), ['cancelRequested', 'leaseExpiresAt']);
    assert.equal(token.status, 201);
    assert.equal(typeof token.body.token, 'string');
    assert.deepEqual(complete, { status: 200, body: { ok: true } });
    assert.deepEqual(await viaSocket('heartbeat', { assignmentIds: [] }), { status: 200, body: { leases: [], ended: [] } });
    assert.deepEqual(await viaSocket('drain', {}), { status: 200, body: { ok: true } });
    // The same reports over HTTP answer the same bodies.
    const live = await liveTask(false);
    assert.deepEqual(await viaHttp('POST', `/assignments/${live.assignmentId}/start`, { replicaId: live.replicaId }), start);
    assert.deepEqual(await viaHttp('POST', `/assignments/${live.assignmentId}/complete`, { replicaId: live.replicaId, result: 1 }), complete);
  });

  it('a frame that is not JSON or not a known op: an error reply with its code\'s status', async () => {
    const notJson = await s.sendRaw('{not json');
    assert.deepEqual([notJson.re, notJson.status, notJson.error.code], [null, 400, 'INVALID_JSON']);
    const unknown = await s.request('nope');
    assert.deepEqual([unknown.status, unknown.error.code], [400, 'VALIDATION_FAILED']);
  });
});
