// Dispatching to A2A agents (issue 15, decisions 73-78), in process on both stores, against
// real A2A agents built with the official SDK (test/fixtures/a2a-agents/agent.ts) on loopback:
// v1.0 and v0.3, send + polling and streaming, input-required answered on the same remote task,
// failed / rejected / auth-required, cancellation, an unreachable agent, and the declaration's
// refusals.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { eventually, startA2aAgent, type A2aAgentProcess } from './helpers/a2a-agent.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;
const KINDS = ['v1', 'v03', 'stream', 'ask', 'fail', 'reject', 'auth', 'slow'] as const;

const agents = new Map<string, A2aAgentProcess>();
before(async () => {
  await Promise.all(KINDS.map(async (k) => agents.set(k, await startA2aAgent(k))));
});
after(async () => {
  await Promise.all([...agents.values()].map((a) => a.stop()));
});

for (const store of stores) describe(`a2a dispatch (${store})`, () => {
  let h: Harness;
  before(async () => {
    h = await harness({ store, config: { a2aPollIntervalMs: 50, leaseMs: 30_000, retry: { baseDelayMs: 0, maxDelayMs: 0 } } });
    for (const k of KINDS) await h.agent({ name: `agent-${k}`, runtime: 'a2a', a2a: { url: agents.get(k)!.url }, maxAttempts: 2, maxConcurrency: 2 });
    // What the maintenance leader's tick does (the harness's reaper loop is idle).
    await h.engine.a2aRuntime.sync();
  });
  after(() => h.close());

  async function settled(taskId: string, statuses = ['completed', 'failed', 'cancelled']) {
    return eventually(async () => {
      const t = await h.task(taskId);
      return statuses.includes(t.status) ? t : undefined;
    }, `task ${taskId} to reach ${statuses.join('/')}`);
  }

  it('an a2a agent is a replica a2a:<agent> with the agent\'s slots, on the leader', async () => {
    const replicas = (await h.api('GET', '/agents/agent-v1/replicas')).body.items;
    assert.deepEqual(replicas.map((r: { id: string; maxConcurrency: number; status: string }) => [r.id, r.maxConcurrency, r.status]), [['a2a:agent-v1', 2, 'live']]);
    assert.deepEqual(h.engine.a2aRuntime.agents.sort(), KINDS.map((k) => `agent-${k}`).sort());
  });

  it('v1.0, send + polling: the input as a data part, ids and trace as metadata, the artifacts as the result', async () => {
    const task = await h.submit({ agent: 'agent-v1', input: { question: 42 }, correlation: { case: 'c-1' }, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    const done = await settled(task.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, {
      artifacts: [{ artifactId: (done.result as any).artifacts[0].artifactId, name: 'result', parts: [{ kind: 'data', data: { echo: { question: 42 }, kind: 'v1' } }] }],
      message: 'done',
    });
    const seen = (await agents.get('v1')!.seen()).filter((s) => (s.metadata as any).flotilla?.taskId === task.id);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.messageId, `flotilla-${done.assignment!.id}`);
    assert.deepEqual((seen[0]!.metadata as any).correlation, { case: 'c-1' });
    assert.equal((seen[0]!.metadata as any).traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    assert.equal((seen[0]!.metadata as any).flotilla.attempt, 1);
    // The remote task is recorded with the attempt.
    const remotes = await h.store.assignmentRemoteList({ taskId: task.id });
    assert.deepEqual(remotes.map((r) => [r.assignmentId, r.remoteTaskId]), [[done.assignment!.id, seen[0]!.taskId]]);
  });

  it('v0.3 agents are spoken to through the SDK\'s compatibility layer, chosen by the card', async () => {
    const task = await h.submit({ agent: 'agent-v03', input: 'plain text' });
    const done = await settled(task.id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual((done.result as any).artifacts[0].parts, [{ kind: 'data', data: { echo: 'plain text', kind: 'v03' } }]);
    const connection = await h.engine.a2aRuntime.clients.get((await h.engine.registry.get('agent-v03'))!);
    assert.equal(connection.protocolVersion, '0.3');
    assert.equal((await h.engine.a2aRuntime.clients.get((await h.engine.registry.get('agent-v1'))!)).protocolVersion, '1.0');
  });

  it('a streaming agent: working updates become progress, the streamed artifact the result', async () => {
    const task = await h.submit({ agent: 'agent-stream', input: { n: 1 } });
    const done = await settled(task.id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual((done.result as any).artifacts[0].parts, [{ kind: 'data', data: { echo: { n: 1 }, streamed: true } }]);
    const events = (await h.api('GET', `/tasks/${task.id}/events?limit=100`)).body.items.map((e: { type: string; data: any }) => [e.type, e.data.message]);
    assert.deepEqual(events.filter((e: string[]) => e[0] === 'task.progress').map((e: string[]) => e[1]), ['step 1 of 2', 'step 2 of 2']);
    assert.ok(events.some((e: string[]) => e[0] === 'task.started'));
  });

  it('input-required: the task asks; the answer goes to the same remote task, never the first message again', async () => {
    const task = await h.submit({ agent: 'agent-ask', input: { paint: 'wall' } });
    const asked = await settled(task.id, ['input_required']);
    assert.equal(asked.inputRequest?.prompt, 'which colour?');
    assert.equal((await h.api('POST', `/tasks/${task.id}/input`, { input: 'blue' })).status, 200);
    const done = await settled(task.id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual((done.result as any).artifacts[0].parts, [{ kind: 'data', data: { answer: 'blue' } }]);
    const seen = (await agents.get('ask')!.seen()).filter((s) => (s.metadata as any).flotilla?.taskId === task.id);
    assert.deepEqual(seen.map((s) => s.text), [JSON.stringify({ paint: 'wall' }), JSON.stringify('blue')]);
    assert.equal(seen[0]!.taskId, seen[1]!.taskId, 'the answer went to the remote task that asked');
    assert.notEqual(seen[0]!.messageId, seen[1]!.messageId);
  });

  it('failed is retried per the policy; rejected and auth-required fail at once with stable codes', async () => {
    const failed = await settled((await h.submit({ agent: 'agent-fail' })).id);
    assert.deepEqual([failed.status, failed.attempt, failed.error?.code], ['failed', 2, 'A2A_TASK_FAILED']);
    assert.match(failed.error!.message, /the model is down/);
    const rejected = await settled((await h.submit({ agent: 'agent-reject' })).id);
    assert.deepEqual([rejected.status, rejected.attempt, rejected.error?.code], ['failed', 1, 'A2A_TASK_REJECTED']);
    const auth = await settled((await h.submit({ agent: 'agent-auth' })).id);
    assert.deepEqual([auth.status, auth.attempt, auth.error?.code], ['failed', 1, 'A2A_AUTH_REQUIRED']);
    assert.match(auth.error!.message, /a2a\.headers/);
  });

  it('cancelling the Flotilla task cancels the remote task', async () => {
    const task = await h.submit({ agent: 'agent-slow', input: 'forever' });
    await settled(task.id, ['running']);
    const [remote] = await eventually(async () => {
      const r = await h.store.assignmentRemoteList({ taskId: task.id });
      return r.length === 1 ? r : undefined;
    }, 'the remote task to be recorded');
    assert.equal((await h.api('POST', `/tasks/${task.id}/cancel`, {})).status, 200);
    const done = await settled(task.id);
    // Acknowledged because the remote said canceled (the cancel grace, 30 s, is far off).
    assert.equal(done.status, 'cancelled');
    assert.equal(done.assignment?.status, 'cancelled');
    assert.ok((await agents.get('slow')!.canceled()).includes(remote!.remoteTaskId));
  });

  it('an attempt the server ends first (its timeout) cancels its remote task', async () => {
    const task = await h.submit({ agent: 'agent-slow', input: 'too long', timeoutMs: 60_000, maxAttempts: 1 });
    await settled(task.id, ['running']);
    const [remote] = await eventually(async () => {
      const r = await h.store.assignmentRemoteList({ taskId: task.id });
      return r.length === 1 ? r : undefined;
    }, 'the remote task to be recorded');
    h.advance(61_000);
    await h.engine.reaper.sweep();
    const done = await settled(task.id);
    assert.deepEqual([done.status, done.error?.code], ['failed', 'TIMED_OUT']);
    await eventually(async () => (await agents.get('slow')!.canceled()).includes(remote!.remoteTaskId), 'tasks/cancel to reach the agent');
  });

  it('headers are secret references, resolved from the environment at use and sent to the agent', async () => {
    const guarded = await startA2aAgent('v1', ['--require-header', 'authorization=Bearer agent-secret-1']);
    try {
      process.env.FLOTILLA_SECRET_TEST_A2A_TOKEN = 'Bearer agent-secret-1';
      await h.agent({ name: 'agent-guarded', runtime: 'a2a', a2a: { url: guarded.url, headers: { authorization: { env: 'FLOTILLA_SECRET_TEST_A2A_TOKEN' } } }, maxAttempts: 1 });
      await h.agent({ name: 'agent-unkeyed', runtime: 'a2a', a2a: { url: guarded.url }, maxAttempts: 1 });
      await h.engine.a2aRuntime.sync();
      const ok = await settled((await h.submit({ agent: 'agent-guarded', input: 'let me in' })).id);
      assert.equal(ok.status, 'completed', JSON.stringify(ok.error));
      const refused = await settled((await h.submit({ agent: 'agent-unkeyed', input: 'let me in' })).id);
      assert.deepEqual([refused.status, refused.error?.code], ['failed', 'A2A_UNREACHABLE']);
      assert.match(refused.error!.message, /401/);
      // The secret is never shown: the view names the variable.
      assert.deepEqual((await h.api('GET', '/agents/agent-guarded')).body.a2a.headers, { authorization: { env: 'FLOTILLA_SECRET_TEST_A2A_TOKEN' } });
    } finally {
      delete process.env.FLOTILLA_SECRET_TEST_A2A_TOKEN;
      await guarded.stop();
    }
  });

  it('an agent no longer a2a: its worker stops and its replica is deregistered', async () => {
    await h.agent({ name: 'agent-moving', runtime: 'a2a', a2a: { url: agents.get('v1')!.url } });
    await h.engine.a2aRuntime.sync();
    assert.ok(h.engine.a2aRuntime.agents.includes('agent-moving'));
    assert.equal((await h.api('PATCH', '/agents/agent-moving', { runtime: 'pull', a2a: null })).status, 200);
    await h.engine.a2aRuntime.sync();
    assert.equal(h.engine.a2aRuntime.agents.includes('agent-moving'), false);
    assert.equal((await h.store.replicaGet({ id: 'a2a:agent-moving' }))?.status, 'gone');
  });

  it('an unreachable agent: the attempt fails retryable, with the network cause', async () => {
    const gone = await startA2aAgent('v1');
    await h.agent({ name: 'agent-gone', runtime: 'a2a', a2a: { url: gone.url }, maxAttempts: 2 });
    await gone.stop();
    await h.engine.a2aRuntime.sync();
    const done = await settled((await h.submit({ agent: 'agent-gone' })).id);
    assert.deepEqual([done.status, done.attempt, done.error?.code], ['failed', 2, 'A2A_UNREACHABLE']);
    assert.match(done.error!.message, /ECONNREFUSED|fetch failed/);
  });

  it('an agent that stops answering: no lease renewal, so the attempt is lost by the lease rules and retried', async () => {
    const dying = await startA2aAgent('slow');
    await h.agent({ name: 'agent-dying', runtime: 'a2a', a2a: { url: dying.url }, maxAttempts: 2 });
    await h.engine.a2aRuntime.sync();
    const task = await h.submit({ agent: 'agent-dying', input: 'long' });
    await settled(task.id, ['running']);
    await eventually(async () => (await h.store.assignmentRemoteList({ taskId: task.id })).length === 1, 'the remote task to be recorded');
    const first = (await h.task(task.id)).assignment!;
    // While it answers, its polls renew the lease (a renewal moves leaseExpiresAt forward).
    await eventually(async () => (await h.task(task.id)).assignment!.leaseExpiresAt! > first.leaseExpiresAt!, 'a renewal');
    await dying.stop();
    // Past the lease: a renewal now would have to come after a poll, and none can succeed.
    h.advance(h.config.leaseMs + 1_000);
    await eventually(async () => (await h.engine.reaper.sweep(), (await h.store.assignmentGet({ id: first.id }))?.status === 'lost'), 'the attempt to be lost');
    const lost = await h.store.assignmentGet({ id: first.id });
    assert.equal(lost?.error?.code, 'LEASE_EXPIRED');
    // Retried; the agent is gone, so the second attempt fails with the network cause.
    const done = await settled(task.id);
    assert.deepEqual([done.status, done.attempt, done.error?.code], ['failed', 2, 'A2A_UNREACHABLE']);
  });

  it('the declaration: a2a required for runtime a2a, refused for others, one of cardUrl/url; headers redacted; process still refused', async () => {
    const refused = async (spec: Record<string, unknown>, path: string) => {
      const res = await h.api('POST', '/agents', { name: `bad-${Math.random().toString(36).slice(2)}`, ...spec });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.ok(res.body.error.details.some((d: { path: string }) => d.path === path), JSON.stringify(res.body.error.details));
    };
    await refused({ runtime: 'a2a' }, '/a2a');
    await refused({ runtime: 'pull', a2a: { url: 'http://127.0.0.1:1' } }, '/a2a');
    await refused({ a2a: { url: 'http://127.0.0.1:1' } }, '/a2a');
    await refused({ runtime: 'a2a', a2a: { url: 'http://127.0.0.1:1', cardUrl: 'http://127.0.0.1:1/card.json' } }, '/a2a');
    await refused({ runtime: 'a2a', a2a: {} }, '/a2a');
    await refused({ runtime: 'a2a', a2a: { url: 'ftp://127.0.0.1/' } }, '/a2a/url');
    await refused({ runtime: 'process' }, '/runtime');
    const created = await h.api('POST', '/agents', {
      name: 'agent-keyed', runtime: 'a2a', a2a: { cardUrl: 'http://127.0.0.1:1/card.json', headers: { authorization: 'Bearer literal-secret', 'x-api-key': { env: 'FLOTILLA_SECRET_SOME_KEY' } } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const view = (await h.api('GET', '/agents/agent-keyed')).body;
    assert.deepEqual(view.a2a, { cardUrl: 'http://127.0.0.1:1/card.json', headers: { authorization: '***', 'x-api-key': { env: 'FLOTILLA_SECRET_SOME_KEY' } } });
    assert.equal(JSON.stringify(view).includes('literal-secret'), false);
    assert.equal((await h.api('GET', '/agents/agent-v1')).body.a2a.url, agents.get('v1')!.url);
    // Back to pull: a2a must go with it.
    assert.equal((await h.api('PATCH', '/agents/agent-keyed', { runtime: 'pull' })).status, 400);
    const pulled = await h.api('PATCH', '/agents/agent-keyed', { runtime: 'pull', a2a: null });
    assert.equal(pulled.status, 200, JSON.stringify(pulled.body));
    assert.equal('a2a' in pulled.body, false, 'a pull agent shows no a2a');
  });
});

describe('a2a in the config file', () => {
  it('declares an a2a agent (its headers as references) and the a2a settings; the environment wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-a2a-config-'));
    try {
      const file = join(dir, 'flotilla.config.yaml');
      writeFileSync(file, [
        'server:', '  a2aPollIntervalMs: 250', '  a2aCardTtlMs: 60000',
        'agents:', '  - name: remote', '    runtime: a2a', '    a2a:', '      url: http://127.0.0.1:9400', '      headers:', '        authorization: { env: FLOTILLA_SECRET_REMOTE_TOKEN }',
      ].join('\n'));
      const config = loadConfig({ flags: { configFile: file }, env: { FLOTILLA_A2A_CARD_TTL_MS: '5000' } });
      assert.deepEqual([config.a2aPollIntervalMs, config.a2aCardTtlMs], [250, 5000]);
      assert.deepEqual(config.agents[0]?.a2a, { url: 'http://127.0.0.1:9400', headers: { authorization: { env: 'FLOTILLA_SECRET_REMOTE_TOKEN' } } });
      writeFileSync(file, ['server:', '  a2aPollIntervalMs: 1'].join('\n'));
      assert.throws(() => loadConfig({ flags: { configFile: file }, env: {} }), /a2aPollIntervalMs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
