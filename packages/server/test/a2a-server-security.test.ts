// Flotilla as an A2A agent: who may do what (issue 15's review; decisions 81-82), on both
// stores, over real HTTP with the SDK's own client and raw JSON-RPC where the exact answer
// matters. A push config is its owner's (its URL and credentials are where a client's results
// go); an answer needs task.answer however the message spells its task id; a message id is a
// principal's; streams end at input-required; the A2A state never goes back to submitted; a
// deleted or replaced config sends nothing more; configs per task are capped.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { TaskState, type StreamResponse, type Task } from '@a2a-js/sdk';
import type { Principal } from '../src/core/permissions.ts';
import { MAX_PUSH_CONFIGS_PER_TASK } from '../src/engine/a2a-server/a2a-service.ts';
import { PushNotifications } from '../src/engine/push-notifications.ts';
import type { Harness } from './helpers/harness.ts';
import { TOKEN, withHarness } from './helpers/harness.ts';
import { data, userMessage, v1Client } from './helpers/a2a-clients.ts';

async function fleet(h: Harness): Promise<string> {
  await h.agent({ name: 'echo', capabilities: ['text'], a2aSkill: {} });
  return h.listen();
}

async function rpc(base: string, token: string, method: string, params: object): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/a2a/jsonrpc`, {
    method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'a2a-version': '1.0' },
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

async function key(h: Harness, role: string): Promise<string> {
  const res = await h.api('POST', '/keys', { name: `${role}-${Math.random()}`, role });
  assert.equal(res.status, 201);
  return res.body.token as string;
}

/** A message for the echo skill, sent without waiting, optionally with a push config. */
function sendParams(messageId: string, push?: object): object {
  return {
    message: { messageId, role: 'ROLE_USER', parts: [{ data: 1 }], metadata: { skill: 'echo' } },
    configuration: { returnImmediately: true, ...(push ? { taskPushNotificationConfig: push } : {}) },
  };
}

async function sent(base: string, token: string, messageId: string, push?: object): Promise<string> {
  const res = await rpc(base, token, 'SendMessage', sendParams(messageId, push));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.ok(res.body.result?.task?.id, JSON.stringify(res.body));
  return res.body.result.task.id as string;
}

/** A loopback receiver answering each POST with the next of `statuses` (then 200). */
async function receiver(t: { after: (fn: () => void) => void }, statuses: number[] = []): Promise<{ url: string; got: any[] }> {
  const got: any[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push(JSON.parse(body));
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

async function ask(h: Harness, replica: string, prompt: string): Promise<{ taskId: string; assignmentId: string }> {
  const [leased] = await h.lease(replica, 1, 10_000);
  assert.ok(leased);
  assert.equal((await h.api('POST', `/assignments/${leased.assignmentId}/start`, { replicaId: replica })).status, 200);
  assert.equal((await h.api('POST', `/assignments/${leased.assignmentId}/ask`, { replicaId: replica, prompt })).status, 200);
  return { taskId: leased.task.id, assignmentId: leased.assignmentId };
}

function stateOf(e: StreamResponse): TaskState | undefined {
  if (e.payload?.$case === 'task') return e.payload.value.status?.state;
  if (e.payload?.$case === 'statusUpdate') return e.payload.value.status?.state;
  return undefined;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`A2A authorization and push configs (${store})`, () => {
    it('a push config is its owner\'s: others (a viewer, another operator, an attempt token) cannot read, replace or delete it; reads never show secrets', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const owner = await key(h, 'operator');
      const other = await key(h, 'operator');
      const viewer = await key(h, 'viewer');
      const hook = await receiver(t);
      const taskId = await sent(base, owner, 'm-1', { id: 'hook', url: hook.url, token: 'client-secret' });
      await rpc(base, owner, 'CreateTaskPushNotificationConfig', { taskId, id: 'auth', url: hook.url, authentication: { scheme: 'Bearer', credentials: 'bearer-secret' } });
      // The owner reads its configs back without the token or credentials.
      const mine = await rpc(base, owner, 'ListTaskPushNotificationConfigs', { taskId });
      assert.deepEqual(mine.body.result.configs.map((c: any) => [c.id, c.url, c.token ?? '', c.authentication?.scheme ?? '', c.authentication?.credentials ?? '']).sort(),
        [['auth', hook.url, '', 'Bearer', ''], ['hook', hook.url, '', '', '']]);
      const got = await rpc(base, owner, 'GetTaskPushNotificationConfig', { taskId, id: 'hook' });
      assert.deepEqual([got.body.result.id, got.body.result.token ?? ''], ['hook', '']);
      assert.doesNotMatch(JSON.stringify([mine.body, got.body]), /client-secret|bearer-secret/);
      // A viewer and another operator see the task, not the owner's configs.
      for (const reader of [viewer, other]) {
        assert.deepEqual((await rpc(base, reader, 'ListTaskPushNotificationConfigs', { taskId })).body.result.configs ?? [], []);
        assert.equal((await rpc(base, reader, 'GetTaskPushNotificationConfig', { taskId, id: 'hook' })).body.error.code, -32001);
      }
      // Another operator may neither replace nor delete it.
      const replaced = await rpc(base, other, 'CreateTaskPushNotificationConfig', { taskId, id: 'hook', url: 'http://127.0.0.1:9/evil', token: 'mine' });
      assert.ok(replaced.body.error, 'replacing another owner\'s config is refused');
      assert.match(replaced.body.error.message, /another client/);
      await rpc(base, other, 'DeleteTaskPushNotificationConfig', { taskId, id: 'hook' });
      // An attempt token of the task's worker (task.read, task.submit, task.answer on the tree) may not touch them at all.
      const replica = await h.register('echo');
      const [leased] = await h.lease(replica, 1, 10_000);
      const attemptToken = (await h.api('POST', `/assignments/${leased!.assignmentId}/token`, { replicaId: replica })).body.token as string;
      assert.ok(attemptToken);
      for (const [method, params] of [
        ['ListTaskPushNotificationConfigs', { taskId }], ['GetTaskPushNotificationConfig', { taskId, id: 'hook' }],
        ['CreateTaskPushNotificationConfig', { taskId, id: 'hook', url: 'http://127.0.0.1:9/evil' }], ['DeleteTaskPushNotificationConfig', { taskId, id: 'hook' }],
      ] as const) {
        const res = await rpc(base, attemptToken, method, params);
        assert.ok(res.status === 403 || res.body.error, `${method} refused for an attempt token`);
        assert.doesNotMatch(JSON.stringify(res.body), /client-secret/);
      }
      // Nothing changed: both configs are the owner's, with the owner's URL and token.
      const stored = await h.store.a2aPushConfigList({ taskIds: [taskId] });
      assert.deepEqual(stored.map((c) => [c.id, c.url, c.token, c.authCredentials]).sort(), [['auth', hook.url, null, 'bearer-secret'], ['hook', hook.url, 'client-secret', null]]);
      // An admin key administers every config (still without secrets); the owner deletes its own.
      assert.deepEqual((await rpc(base, TOKEN, 'ListTaskPushNotificationConfigs', { taskId })).body.result.configs.map((c: any) => [c.id, c.token ?? '']).sort(), [['auth', ''], ['hook', '']]);
      await rpc(base, owner, 'DeleteTaskPushNotificationConfig', { taskId, id: 'hook' });
      assert.deepEqual((await h.store.a2aPushConfigList({ taskIds: [taskId] })).map((c) => c.id), ['auth']);
    }));

    it('answering needs task.answer however the message names its task (taskId or task_id), over A2A and in the engine', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const sender = (await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit'] })).body.token as string;
      const taskId = await sent(base, sender, 'm-answer');
      const replica = await h.register('echo');
      await ask(h, replica, 'Which region?');
      for (const spelling of ['taskId', 'task_id']) {
        const res = await rpc(base, sender, 'SendMessage', { message: { messageId: `a-${spelling}`, role: 'ROLE_USER', parts: [{ data: 'eu' }], [spelling]: taskId }, configuration: { returnImmediately: true } });
        assert.equal(res.status, 403, `${spelling}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'FORBIDDEN');
      }
      assert.equal((await h.task(taskId)).status, 'input_required', 'nothing was answered');
      // The engine checks it too, whatever transport parsed the message.
      const scoped: Principal = {
        id: 'token:x', name: 'x', role: 'operator', kind: 'token', agents: null,
        scope: { jti: 'x', actions: ['task.read', 'task.read.all', 'task.submit'], agents: null, root: null, maxExpiresAt: Date.now() + 60_000, tools: null, spawnWithheld: null },
      } as Principal;
      await assert.rejects(h.engine.a2a.answer(scoped, taskId, 'eu'), (err: Error & { code?: string }) => err.code === 'FORBIDDEN');
      assert.equal((await h.task(taskId)).status, 'input_required');
    }));

    it('a message id is the sender\'s: another principal\'s same id is its own task; a resent message with a push config sets one config', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const a = await key(h, 'operator');
      const b = await key(h, 'operator');
      const scoped = (await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit'] })).body.token as string;
      const hook = await receiver(t);
      const push = { url: hook.url, token: 'tok' };
      const first = await sent(base, a, 'same-id', push);
      assert.equal(await sent(base, a, 'same-id', push), first, 'resent by its sender: the same task');
      const byB = await sent(base, b, 'same-id');
      assert.notEqual(byB, first, 'another principal\'s message is its own task');
      // One who cannot see the first task gets its own too, not IDEMPOTENCY_CONFLICT.
      const byScoped = await sent(base, scoped, 'same-id');
      assert.ok(![first, byB].includes(byScoped));
      // The resent message's config (no id) is the same config, not a second one.
      assert.equal((await h.store.a2aPushConfigList({ taskIds: [first] })).length, 1);
      assert.equal((await h.api('GET', '/tasks?agent=echo')).body.items.length, 3);
    }));

    it('a stream ends at input-required; the task answered reads working, never submitted again', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const client = await v1Client(base);
      const replica = await h.register('echo');
      const events: StreamResponse[] = [];
      let asked: { taskId: string } | null = null;
      const done = (async () => {
        for await (const e of client.sendMessageStream({ tenant: '', message: userMessage([data(1)], { metadata: { skill: 'echo' } }), configuration: undefined, metadata: undefined })) {
          events.push(e);
          if (events.length === 1) asked = await ask(h, replica, 'Which region?');
        }
      })();
      // The stream must end by itself; a deadline instead of hanging until the test's timeout.
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([done.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 15_000)))]);
      clearTimeout(timer);
      assert.equal(ended, true, 'the stream ended at input-required');
      // Submitted first and input-required last; the attempt's start may show as working in
      // between when the stream reads it before the ask commits (a loaded machine).
      const states = events.map(stateOf);
      assert.equal(states[0], TaskState.TASK_STATE_SUBMITTED, JSON.stringify(states));
      assert.equal(states.at(-1), TaskState.TASK_STATE_INPUT_REQUIRED, JSON.stringify(states));
      assert.ok(states.slice(1, -1).every((s) => s === TaskState.TASK_STATE_WORKING), JSON.stringify(states));
      const taskId = asked!.taskId;
      // Answered: the suspended attempt was given back, but the task ran: working.
      assert.equal((await h.api('POST', `/tasks/${taskId}/input`, { input: 'eu' })).status, 200);
      assert.equal((await h.task(taskId)).status, 'pending');
      assert.equal((await client.getTask({ tenant: '', id: taskId })).status?.state, TaskState.TASK_STATE_WORKING);
      await h.lease(replica, 1, 10_000);
      assert.equal((await h.task(taskId)).status, 'dispatched');
      assert.equal((await client.getTask({ tenant: '', id: taskId })).status?.state, TaskState.TASK_STATE_WORKING);
    }));

    it('a deleted or replaced config sends nothing more: its queued notifications go with it', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const failing = await receiver(t, [503, 503, 503, 503]);
      const fresh = await receiver(t);
      const taskId = await sent(base, TOKEN, 'm-del', { id: 'del', url: failing.url });
      await rpc(base, TOKEN, 'CreateTaskPushNotificationConfig', { taskId, id: 'rep', url: failing.url, token: 'old' });
      await h.engine.push.sweep();
      assert.equal(failing.got.length, 2, 'both first notifications failed');
      assert.equal((await h.store.a2aPushDue({ now: h.now() + 3_600_000, limit: 10 })).deliveries.length, 2, 'both are queued for a retry');
      await rpc(base, TOKEN, 'DeleteTaskPushNotificationConfig', { taskId, id: 'del' });
      const res = await rpc(base, TOKEN, 'CreateTaskPushNotificationConfig', { taskId, id: 'rep', url: fresh.url, token: 'new' });
      assert.equal(res.body.result?.id, 'rep', JSON.stringify(res.body));
      assert.deepEqual((await h.store.a2aPushDue({ now: h.now() + 3_600_000, limit: 10 })).deliveries, [], 'the old copies are gone');
      h.advance(600_000);
      await h.engine.push.sweep();
      await h.engine.push.sweep();
      assert.equal(failing.got.length, 2, 'nothing more to the old URL');
      assert.deepEqual(fresh.got.map((b) => b.task?.status?.state), ['TASK_STATE_SUBMITTED'], 'the replacement is notified afresh');
    }));

    it('configs per task are capped; a full pass reads them a page at a time; URLs with user:password and credentials with CR/LF are refused', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const url = 'http://127.0.0.1:9/hook';
      const taskId = await sent(base, TOKEN, 'm-cap');
      const other = await sent(base, TOKEN, 'm-cap-2');
      for (let i = 0; i < MAX_PUSH_CONFIGS_PER_TASK; i++) {
        const res = await rpc(base, TOKEN, 'CreateTaskPushNotificationConfig', { taskId, id: `c${i}`, url });
        assert.ok(res.body.result, JSON.stringify(res.body));
      }
      const over = await rpc(base, TOKEN, 'CreateTaskPushNotificationConfig', { taskId, id: 'one-too-many', url });
      assert.equal(over.body.error?.code, -32602);
      assert.match(over.body.error.message, /push configs already/);
      assert.equal(JSON.stringify(over.body).includes('A2A_PUSH_CONFIG_LIMIT'), true, 'the Flotilla code rides along');
      // Replacing one of them is not a new one.
      assert.ok((await rpc(base, TOKEN, 'CreateTaskPushNotificationConfig', { taskId, id: 'c0', url: `${url}2` })).body.result);
      await rpc(base, TOKEN, 'CreateTaskPushNotificationConfig', { taskId: other, id: 'x', url });
      assert.equal((await h.store.a2aPushConfigList({ taskIds: [taskId, other] })).length, MAX_PUSH_CONFIGS_PER_TASK + 1);
      // A full pass in pages of 3 still queues each config's first notification once.
      const feed = new PushNotifications({ ctx: h.engine.ctx, pageSize: 3 });
      assert.equal(await feed.feed(), MAX_PUSH_CONFIGS_PER_TASK + 1);
      assert.equal(await feed.feed(), 0);
      // Secrets that would leak into logs, errors or headers are refused when set.
      for (const bad of [
        { taskId, id: 'u', url: 'http://user:pw@127.0.0.1:9/hook' },
        { taskId: other, id: 'crlf', url, token: 'a\r\nX-Injected: 1' },
        { taskId: other, id: 'crlf2', url, authentication: { scheme: 'Bearer', credentials: 'x\ny' } },
      ]) {
        const res = await rpc(base, TOKEN, 'CreateTaskPushNotificationConfig', bad);
        assert.equal(res.body.error?.code, -32602, JSON.stringify(res.body));
        assert.doesNotMatch(res.body.error.message, /pw@|X-Injected/);
      }
      assert.deepEqual((await h.store.a2aPushConfigList({ taskIds: [other] })).map((c) => c.id), ['x']);
    }));

    it('a task the caller may not see is not found for get, cancel, subscribe and push configs', (t) => withHarness(t, store, async (h) => {
      const base = await fleet(h);
      const taskId = await sent(base, TOKEN, 'm-hidden');
      const stranger = (await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit', 'task.cancel'] })).body.token as string;
      for (const [method, params] of [
        ['GetTask', { id: taskId }], ['CancelTask', { id: taskId }],
        ['ListTaskPushNotificationConfigs', { taskId }], ['GetTaskPushNotificationConfig', { taskId, id: 'x' }],
        ['CreateTaskPushNotificationConfig', { taskId, id: 'x', url: 'http://127.0.0.1:9/hook' }],
      ] as const) {
        const res = await rpc(base, stranger, method, params);
        assert.equal(res.body.error?.code, -32001, `${method}: ${JSON.stringify(res.body)}`);
      }
      const stranger1 = await v1Client(base, stranger);
      await assert.rejects(async () => {
        for await (const _e of stranger1.resubscribeTask({ tenant: '', id: taskId })) { /* nothing may come */ }
      }, (err: Error) => err.name === 'TaskNotFoundError');
      assert.equal((await h.task(taskId)).status, 'pending', 'nothing changed');
      assert.deepEqual(await h.store.a2aPushConfigList({ taskIds: [taskId] }), []);
      const readable = await v1Client(base);
      assert.equal(((await readable.getTask({ tenant: '', id: taskId })) as Task).id, taskId, 'its owner reads it');
    }));
  });
}
