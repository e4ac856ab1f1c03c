// Flotilla as an A2A agent (issue 15; decisions 79-84), on both stores, driven by the A2A
// SDK's own clients (v1.0 and v0.3) over real HTTP against the in-process server, with the
// work done by a worker speaking Flotilla's HTTP protocol. The same against a real
// `flotilla serve` process, restarted in between, is a2a-server-process.test.ts.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { TaskState, type StreamResponse, type Task } from '@a2a-js/sdk';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import type { Harness } from './helpers/harness.ts';
import { TOKEN, withHarness } from './helpers/harness.ts';
import { data, text, userMessage, v03Client, v1Client } from './helpers/a2a-clients.ts';

const SKILL = { inputModes: ['application/json'], outputModes: ['application/json'], examples: ['{"text": "hello"}'] };

async function fleet(h: Harness): Promise<string> {
  await h.agent({ name: 'echo', description: 'returns its input', capabilities: ['text', 'echo'], a2aSkill: SKILL });
  await h.agent({ name: 'hidden', capabilities: ['text'] });
  return h.listen();
}

/** A worker's attempt of the next task of `agent`: leased (waiting for it) and started. */
async function attempt(h: Harness, replica: string): Promise<{ taskId: string; assignmentId: string; input: unknown }> {
  const [leased] = await h.lease(replica, 1, 10_000);
  assert.ok(leased, 'a task was leased');
  assert.equal((await h.api('POST', `/assignments/${leased.assignmentId}/start`, { replicaId: replica })).status, 200);
  return { taskId: leased.task.id, assignmentId: leased.assignmentId, input: leased.task.input };
}

async function complete(h: Harness, replica: string, assignmentId: string, result: unknown): Promise<void> {
  assert.equal((await h.api('POST', `/assignments/${assignmentId}/complete`, { replicaId: replica, result })).status, 200);
}

function resultOf(task: Task): unknown {
  const part = task.artifacts[0]?.parts[0]?.content;
  return part?.$case === 'data' || part?.$case === 'text' ? part.value : undefined;
}

async function collect(stream: AsyncGenerator<StreamResponse, void, undefined>, onEvent: (e: StreamResponse, i: number) => Promise<void> = async () => {}): Promise<StreamResponse[]> {
  const events: StreamResponse[] = [];
  for await (const e of stream) {
    events.push(e);
    await onEvent(e, events.length - 1);
  }
  return events;
}

function stateOf(e: StreamResponse): TaskState | undefined {
  if (e.payload?.$case === 'task') return e.payload.value.status?.state;
  if (e.payload?.$case === 'statusUpdate') return e.payload.value.status?.state;
  return undefined;
}

/** A loopback webhook receiver answering each request with the next of `statuses` (then 200). */
async function receiver(t: { after: (fn: () => void) => void }, statuses: number[] = []): Promise<{ url: string; got: Array<{ headers: IncomingMessage['headers']; body: any }> }> {
  const got: Array<{ headers: IncomingMessage['headers']; body: any }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

async function rpc(base: string, path: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, 'a2a-version': '1.0', ...headers },
  });
  return { status: res.status, body: await res.json() };
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`Flotilla as an A2A agent (${store})`, () => {
    it('publishes one card: a skill per opted-in agent, bearer auth, the v1.0 and v0.3 interfaces, streaming and push', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const client = await v1Client(base);
      const card = await client.getAgentCard();
      assert.deepEqual(card.skills.map((s) => [s.id, s.description, s.tags, s.inputModes, s.examples]), [['echo', 'returns its input', ['text', 'echo'], ['application/json'], ['{"text": "hello"}']]]);
      assert.deepEqual(card.supportedInterfaces.map((i) => [i.url, i.protocolBinding, i.protocolVersion]), [
        [`${base}/a2a/jsonrpc`, 'JSONRPC', '1.0'], [`${base}/a2a/v0.3/jsonrpc`, 'JSONRPC', '0.3'],
      ]);
      assert.equal(card.capabilities?.streaming, true);
      assert.equal(card.capabilities?.pushNotifications, true);
      assert.equal(card.securitySchemes.bearer?.scheme?.$case, 'httpAuthSecurityScheme');
      // Without A2A-Version, the card a v0.3 client reads; the agent field reads back.
      const legacy = await (await fetch(`${base}/.well-known/agent-card.json`)).json() as Record<string, unknown>;
      assert.deepEqual([legacy.protocolVersion, legacy.url, legacy.preferredTransport], ['0.3', `${base}/a2a/v0.3/jsonrpc`, 'JSONRPC']);
      assert.deepEqual((await h.api('GET', '/agents/echo')).body.a2aSkill, SKILL);
      assert.equal((await h.api('GET', '/agents/hidden')).body.a2aSkill, null);
      // Unpublishing takes the skill off the card.
      assert.equal((await h.api('PATCH', '/agents/echo', { a2aSkill: null })).status, 200);
      h.engine.registry.invalidate();
      assert.deepEqual((await (await v1Client(base)).getAgentCard()).skills, []);
    }));

    it('message/send: a task for the skill, done by a worker, answered with the result as an artifact; the same messageId is the same task', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const client = await v1Client(base);
      const replica = await h.register('echo');
      const message = userMessage([data({ text: 'hello' })], { metadata: { skill: 'echo' }, contextId: 'conversation-1' });
      const sent = client.sendMessage({ tenant: '', message, configuration: undefined, metadata: undefined });
      const work = await attempt(h, replica);
      assert.deepEqual(work.input, { text: 'hello' });
      await complete(h, replica, work.assignmentId, { echoed: 'hello' });
      const task = await sent as Task;
      assert.equal(task.id, work.taskId, 'the A2A task id is the Flotilla task id');
      assert.equal(task.status?.state, TaskState.TASK_STATE_COMPLETED);
      assert.equal(task.contextId, 'conversation-1');
      assert.deepEqual(resultOf(task), { echoed: 'hello' });
      // Sent again (a client's retry): the same task, no second one.
      const again = await client.sendMessage({ tenant: '', message, configuration: undefined, metadata: undefined }) as Task;
      assert.equal(again.id, task.id);
      assert.equal((await h.api('GET', '/tasks?agent=echo')).body.items.length, 1);
      // tasks/get reads the Flotilla task.
      const got = await client.getTask({ tenant: '', id: task.id });
      assert.deepEqual([got.status?.state, resultOf(got)], [TaskState.TASK_STATE_COMPLETED, { echoed: 'hello' }]);
      // Text parts are the input's text; the fleet's only skill takes a message naming none.
      const plain = await client.sendMessage({ tenant: '', message: userMessage([text('just text')]), configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true }, metadata: undefined }) as Task;
      assert.equal(plain.status?.state, TaskState.TASK_STATE_SUBMITTED);
      assert.deepEqual((await h.task(plain.id)).input, 'just text');
      assert.equal((await h.task(plain.id)).agent, 'echo');
    }));

    it('message/stream streams the states and the result; tasks/cancel cancels; resubscribe follows a task', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const client = await v1Client(base);
      const replica = await h.register('echo');
      let work: { assignmentId: string } | null = null;
      const events = await collect(client.sendMessageStream({ tenant: '', message: userMessage([data(1)], { metadata: { skill: 'echo' } }), configuration: undefined, metadata: undefined }), async (_e, i) => {
        if (i === 0) work = await attempt(h, replica);
        if (i === 1) await complete(h, replica, work!.assignmentId, 2);
      });
      assert.equal(events[0]?.payload?.$case, 'task');
      assert.deepEqual(events.map(stateOf), [TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING, undefined, TaskState.TASK_STATE_COMPLETED]);
      const artifact = events[2]?.payload?.$case === 'artifactUpdate' ? events[2].payload.value.artifact : undefined;
      assert.deepEqual(artifact?.parts[0]?.content, { $case: 'data', value: 2 });

      // Cancel a queued task; cancelling it again is refused with the spec's error.
      const queued = await client.sendMessage({ tenant: '', message: userMessage([data(3)], { metadata: { skill: 'echo' } }), configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true }, metadata: undefined }) as Task;
      const resubscribed = collect(client.resubscribeTask({ tenant: '', id: queued.id }));
      const cancelled = await client.cancelTask({ tenant: '', id: queued.id, metadata: undefined });
      assert.equal(cancelled.status?.state, TaskState.TASK_STATE_CANCELED);
      assert.equal((await h.task(queued.id)).status, 'cancelled');
      await assert.rejects(client.cancelTask({ tenant: '', id: queued.id, metadata: undefined }), (err: Error) => err.name === 'TaskNotCancelableError');
      assert.deepEqual((await resubscribed).map(stateOf), [TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_CANCELED]);
      await assert.rejects(client.getTask({ tenant: '', id: 'no-such-task' }), (err: Error) => err.name === 'TaskNotFoundError');
    }));

    it('a v0.3 client: send, and an input request answered over A2A', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const client = await v03Client(base);
      assert.equal(client.protocolVersion, '0.3');
      const replica = await h.register('echo');
      const sent = client.sendMessage({ tenant: '', message: userMessage([text('deploy')], { metadata: { skill: 'echo' } }), configuration: undefined, metadata: undefined });
      const work = await attempt(h, replica);
      assert.equal((await h.api('POST', `/assignments/${work.assignmentId}/ask`, { replicaId: replica, prompt: 'Which region?', schema: { enum: ['eu', 'us'] } })).status, 200);
      const asked = await sent as Task;
      assert.equal(asked.status?.state, TaskState.TASK_STATE_INPUT_REQUIRED);
      assert.deepEqual(asked.status?.message?.parts[0]?.content, { $case: 'text', value: 'Which region?' });
      // An answer outside the schema is refused and changes nothing; a viewer may not answer.
      await assert.rejects(client.sendMessage({ tenant: '', message: userMessage([data('mars')], { taskId: asked.id }), configuration: undefined, metadata: undefined }));
      assert.equal((await h.task(asked.id)).status, 'input_required');
      const viewer = (await h.api('POST', '/keys', { name: 'v', role: 'viewer' })).body.token as string;
      await assert.rejects((await v03Client(base, viewer)).sendMessage({ tenant: '', message: userMessage([data('eu')], { taskId: asked.id }), configuration: undefined, metadata: undefined }));
      assert.equal((await h.task(asked.id)).status, 'input_required');
      const answered = client.sendMessage({ tenant: '', message: userMessage([data('eu')], { taskId: asked.id }), configuration: undefined, metadata: undefined });
      const [resumed] = await h.lease(replica, 1, 10_000);
      assert.deepEqual(resumed?.task.resumed, { reason: 'input', prompt: 'Which region?', input: 'eu' });
      assert.equal((await h.api('POST', `/assignments/${resumed!.assignmentId}/start`, { replicaId: replica })).status, 200);
      await complete(h, replica, resumed!.assignmentId, 'deployed to eu');
      const done = await answered as Task;
      assert.equal(done.id, asked.id);
      assert.deepEqual([done.status?.state, resultOf(done)], [TaskState.TASK_STATE_COMPLETED, 'deployed to eu']);
    }));

    it('push notifications: delivered to the receiver at least once, retried with backoff when it first fails, with the token', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const client = await v1Client(base);
      const hook = await receiver(t, [503]);
      const url = hook.url;
      const replica = await h.register('echo');
      const task = await client.sendMessage({
        tenant: '', message: userMessage([data(5)], { metadata: { skill: 'echo' } }), metadata: undefined,
        configuration: { acceptedOutputModes: [], returnImmediately: true, taskPushNotificationConfig: { tenant: '', id: 'hook-1', taskId: '', url, token: 'secret-token', authentication: undefined } },
      }) as Task;
      const configs = await client.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 0, pageToken: '' });
      // Read back without its token (decisions.md 82): the secret is the receiver's proof.
      assert.deepEqual(configs.configs.map((c) => [c.id, c.url, c.token]), [['hook-1', url, '']]);
      assert.equal((await client.getTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: 'hook-1' })).url, url);
      await assert.rejects(client.getTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: 'nope' }), (err: Error) => err.name === 'TaskNotFoundError');
      // A config that is not http(s) is refused; one set and deleted is gone.
      await assert.rejects(client.createTaskPushNotificationConfig({ tenant: '', id: 'bad', taskId: task.id, url: 'file:///etc/passwd', token: '', authentication: undefined }));
      await client.createTaskPushNotificationConfig({ tenant: '', id: 'gone', taskId: task.id, url, token: '', authentication: undefined });
      await client.deleteTaskPushNotificationConfig({ tenant: '', taskId: task.id, id: 'gone' });
      assert.deepEqual((await client.listTaskPushNotificationConfig({ tenant: '', taskId: task.id, pageSize: 0, pageToken: '' })).configs.map((c) => c.id), ['hook-1']);
      // The first pass queues the task's state and sends it: the receiver fails, so it is
      // retried after a backoff (at least half of the first second).
      const sentAt = h.now();
      await h.engine.push.sweep();
      assert.equal(hook.got.length, 1);
      const [queued] = (await h.store.a2aPushDue({ now: h.now() + 10_000, limit: 10 })).deliveries;
      assert.equal(queued?.attempts, 1);
      assert.match(queued?.lastError ?? '', /503/);
      assert.ok(queued!.nextAt >= sentAt + 500, 'retried with backoff');
      const work = await attempt(h, replica);
      await complete(h, replica, work.assignmentId, 10);
      h.advance(2_000);
      await h.engine.push.sweep();
      await h.engine.push.sweep();
      // The refused one again (at least once), then the next, in order.
      assert.deepEqual(hook.got.map((r) => [r.headers['x-a2a-notification-token'], r.body.task?.status?.state]), [
        ['secret-token', 'TASK_STATE_SUBMITTED'], ['secret-token', 'TASK_STATE_SUBMITTED'], ['secret-token', 'TASK_STATE_COMPLETED'],
      ]);
      assert.equal(hook.got[2]!.body.task.id, task.id);
      // The final notification was the config's last: it is gone, and nothing is left to send.
      assert.deepEqual(await h.store.a2aPushConfigList({ taskIds: [task.id] }), []);
      assert.deepEqual((await h.store.a2aPushDue({ now: h.now() + 3_600_000, limit: 10 })).deliveries, []);
    }));

    it('refuses without a token, a viewer\'s send, bad JSON and unknown methods, and changes nothing', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const send = { jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: 'm-1', role: 'ROLE_USER', parts: [{ text: 'hi' }], metadata: { skill: 'echo' } } } };
      const noToken = await fetch(`${base}/a2a/jsonrpc`, { method: 'POST', body: JSON.stringify(send), headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
      assert.equal(noToken.status, 401);
      assert.equal(((await noToken.json()) as any).error.code, 'UNAUTHENTICATED');
      const viewer = (await h.api('POST', '/keys', { name: 'v', role: 'viewer' })).body.token as string;
      const refused = await rpc(base, '/a2a/jsonrpc', send, { authorization: `Bearer ${viewer}` });
      assert.deepEqual([refused.status, refused.body.error.code], [403, 'FORBIDDEN']);
      await assert.rejects(v1Client(base, viewer).then((c) => c.sendMessage({ tenant: '', message: userMessage([text('x')]), configuration: undefined, metadata: undefined })));
      assert.equal((await h.api('GET', '/tasks')).body.items.length, 0);
      // A scoped token is a bearer too, with its scopes: reading only, it may not send.
      const reader = (await h.api('POST', '/tokens', { scopes: ['task.read'] })).body.token as string;
      assert.equal((await rpc(base, '/a2a/jsonrpc', send, { authorization: `Bearer ${reader}` })).status, 403);
      const sender = (await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit'] })).body.token as string;
      const byToken = await rpc(base, '/a2a/jsonrpc', { ...send, params: { configuration: { returnImmediately: true }, message: { ...send.params.message, messageId: 'm-0' } } }, { authorization: `Bearer ${sender}` });
      assert.equal(byToken.body.result.task.status.state, 'TASK_STATE_SUBMITTED');
      assert.equal((await h.api('POST', `/tasks/${byToken.body.result.task.id}/cancel`)).status, 200);
      // The viewer may read: a task it can see answers tasks/get.
      const read = await rpc(base, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 9, method: 'GetTask', params: { id: byToken.body.result.task.id } }, { authorization: `Bearer ${viewer}` });
      assert.deepEqual([read.status, read.body.result?.id], [200, byToken.body.result.task.id]);
      const parse = await rpc(base, '/a2a/jsonrpc', '{"jsonrpc": "2.0", "id": 1, "method": ');
      assert.deepEqual([parse.status, parse.body.error.code], [200, -32700]);
      const unknown = await rpc(base, '/a2a/jsonrpc', { jsonrpc: '2.0', id: 2, method: 'NoSuchMethod', params: {} });
      assert.equal(unknown.body.error.code, -32601);
      const legacyUnknown = await rpc(base, '/a2a/v0.3/jsonrpc', { jsonrpc: '2.0', id: 3, method: 'tasks/nothing', params: {} });
      assert.equal(legacyUnknown.body.error.code, -32601);
      const badVersion = await rpc(base, '/a2a/jsonrpc', send, { 'a2a-version': '9.9' });
      assert.equal(badVersion.body.error.code, -32009);
      const noSkill = await rpc(base, '/a2a/jsonrpc', { ...send, params: { message: { ...send.params.message, messageId: 'm-2', metadata: { skill: 'hidden' } } } });
      assert.equal(noSkill.body.error.code, -32602);
      assert.match(noSkill.body.error.message, /no skill "hidden"/);
      assert.equal((await h.api('GET', '/tasks')).body.items.length, 1);
      // A file part is refused (a task's input is JSON); an inadmissible body too.
      const file = await rpc(base, '/a2a/jsonrpc', { ...send, params: { message: { ...send.params.message, messageId: 'm-3', parts: [{ url: 'http://127.0.0.1:1/x.pdf' }] } } });
      assert.equal(file.body.error.code, -32005);
      const huge = await rpc(base, '/a2a/jsonrpc', `{"jsonrpc": "2.0", "id": 4, "method": "GetTask", "params": {"id": "x", "n": 1e400}}`);
      assert.equal(huge.body.error.code, -32602);
      assert.equal((await h.api('GET', '/tasks')).body.items.length, 1);
      // Capabilities route, when a published skill has them; others are refused.
      const routed = await rpc(base, '/a2a/jsonrpc', { ...send, params: { configuration: { returnImmediately: true }, message: { ...send.params.message, messageId: 'm-4', metadata: { capabilities: ['echo'] } } } });
      const routedTask = await h.task(routed.body.result.task.id);
      assert.deepEqual([routedTask.agent, routedTask.capabilities, routedTask.input], [null, ['echo'], 'hi']);
      const unroutable = await rpc(base, '/a2a/jsonrpc', { ...send, params: { message: { ...send.params.message, messageId: 'm-5', metadata: { capabilities: ['nope'] } } } });
      assert.equal(unroutable.body.error.code, -32602);
    }));

    it('push notifications: the v0.3 body to a config set over v0.3, authentication as Authorization, a receiver that keeps failing given up', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const ok = await receiver(t);
      const failing = await receiver(t, [500, 500, 500]);
      const legacy = await v03Client(base);
      const task = await legacy.sendMessage({
        tenant: '', message: userMessage([data(7)], { metadata: { skill: 'echo' } }), metadata: undefined,
        configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true },
      }) as Task;
      await legacy.createTaskPushNotificationConfig({ tenant: '', id: 'a', taskId: task.id, url: ok.url, token: '', authentication: { scheme: 'Bearer', credentials: 'hook-secret' } });
      await (await v1Client(base)).createTaskPushNotificationConfig({ tenant: '', id: 'b', taskId: task.id, url: failing.url, token: '', authentication: undefined });
      const replica = await h.register('echo');
      const work = await attempt(h, replica);
      await complete(h, replica, work.assignmentId, 14);
      await h.engine.push.sweep();
      assert.deepEqual(ok.got.map((r) => [r.headers.authorization, r.body.kind, r.body.id, r.body.status?.state]), [['Bearer hook-secret', 'task', task.id, 'completed']]);
      assert.equal(failing.got.length, 1);
      assert.equal(failing.got[0]!.body.task.status.state, 'TASK_STATE_COMPLETED');
      // The second failure is the last of a2aPushMaxAttempts (2): given up, nothing left to send.
      h.advance(2_000);
      await h.engine.push.sweep();
      assert.equal(failing.got.length, 2);
      h.advance(600_000);
      await h.engine.push.sweep();
      assert.equal(failing.got.length, 2);
      assert.deepEqual((await h.store.a2aPushDue({ now: h.now() + 3_600_000, limit: 10 })), { deliveries: [], nextAt: null });
      assert.deepEqual(await h.store.a2aPushConfigList({ taskIds: [task.id] }), []);
    }, { config: { a2aPushMaxAttempts: 2 } }));

    it('a stream whose client goes away ends, leaving no listener behind', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const client = await v1Client(base);
      const before = h.engine.ctx.bus.listenerCount;
      const controller = new AbortController();
      const stream = client.sendMessageStream({ tenant: '', message: userMessage([data(1)], { metadata: { skill: 'echo' } }), configuration: undefined, metadata: undefined }, { signal: controller.signal });
      const first = await stream.next();
      assert.equal(first.value && stateOf(first.value), TaskState.TASK_STATE_SUBMITTED);
      assert.ok(h.engine.ctx.bus.listenerCount > before, 'the stream listens to its task');
      controller.abort();
      await stream.return(undefined).catch(() => {});
      const deadline = Date.now() + 10_000;
      while (h.engine.ctx.bus.listenerCount > before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(h.engine.ctx.bus.listenerCount, before);
    }));
  });
}

describe('A2A settings', () => {
  it('a2aPublicUrl is the base of the card\'s URLs (a trailing slash dropped); one that is not http(s) stops the start', async (t) => {
    const config = loadConfig({ env: { FLOTILLA_A2A_PUBLIC_URL: 'https://flotilla.example.com/' } });
    assert.equal(config.a2aPublicUrl, 'https://flotilla.example.com');
    assert.throws(() => loadConfig({ env: { FLOTILLA_A2A_PUBLIC_URL: 'ftp://x' } }), ConfigError);
    assert.throws(() => loadConfig({ env: { FLOTILLA_A2A_PUSH_MAX_ATTEMPTS: '0' } }), ConfigError);
    await withHarness(t, 'sqlite', async (h) => {
      await h.agent({ name: 'echo', a2aSkill: {} });
      const res = await h.app.inject({ method: 'GET', url: '/.well-known/agent-card.json', headers: { 'a2a-version': '1.0' } });
      assert.deepEqual(JSON.parse(res.body).supportedInterfaces.map((i: { url: string }) => i.url), [
        'https://flotilla.example.com/a2a/jsonrpc', 'https://flotilla.example.com/a2a/v0.3/jsonrpc',
      ]);
    }, { config: { a2aPublicUrl: config.a2aPublicUrl } });
  });
});
