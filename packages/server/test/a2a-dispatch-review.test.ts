// Dispatching to A2A agents: the review's findings (issue 15, decisions 74-76), each a scenario
// that sent a message twice, sent it to the wrong remote task, hung, or leaked credentials.
// Real A2A agents (test/fixtures/a2a-agents/agent.ts) on loopback, both stores.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, holdStoreCall, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { eventually, startA2aAgent, type A2aAgentProcess } from './helpers/a2a-agent.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;
// The card fetch is bounded by half a lease (2 s here).
const LEASE_MS = 4_000;

for (const store of stores) describe(`a2a dispatch, review findings (${store})`, () => {
  let h: Harness;
  const started: A2aAgentProcess[] = [];
  async function agentProcess(kind: string, extra: string[] = []): Promise<A2aAgentProcess> {
    const a = await startA2aAgent(kind, extra);
    started.push(a);
    return a;
  }
  before(async () => {
    h = await harness({ store, config: { a2aPollIntervalMs: 50, leaseMs: LEASE_MS, retry: { baseDelayMs: 0, maxDelayMs: 0 } } });
  });
  after(async () => {
    await h.close();
    await Promise.all(started.map((a) => a.stop()));
  });

  async function settled(taskId: string, statuses = ['completed', 'failed', 'cancelled']) {
    return eventually(async () => {
      const t = await h.task(taskId);
      return statuses.includes(t.status) ? t : undefined;
    }, `task ${taskId} to reach ${statuses.join('/')}`);
  }
  const sentFor = async (a: A2aAgentProcess, taskId: string) => (await a.seen()).filter((s) => (s.metadata as any).flotilla?.taskId === taskId);

  it('a stop during the card fetch sends nothing: the next leader sends the message, once', async () => {
    const agent = await agentProcess('v1', ['--card-delay-ms', '1000']);
    await h.agent({ name: 'agent-late-card', runtime: 'a2a', a2a: { url: agent.url } });
    await h.engine.a2aRuntime.sync();
    const task = await h.submit({ agent: 'agent-late-card', input: 'once' });
    await eventually(async () => (await agent.cards()).asked >= 1, 'the attempt to fetch the card');
    // Leadership lost while the card is on its way; a new leader's worker takes the attempt over.
    h.engine.a2aRuntime.stopAll();
    await h.engine.a2aRuntime.sync();
    const done = await settled(task.id);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal((await agent.cards()).served >= 1, true);
    assert.equal((await sentFor(agent, task.id)).length, 1, 'the stopped attempt sent nothing');
  });

  it('raising maxConcurrency with tasks queued delivers each attempt once', async () => {
    const agent = await agentProcess('timed', ['--work-ms', '300']);
    await h.agent({ name: 'agent-widening', runtime: 'a2a', a2a: { url: agent.url }, maxConcurrency: 1 });
    await h.engine.a2aRuntime.sync();
    const tasks = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => h.submit({ agent: 'agent-widening', input: { n } })));
    await settled(tasks[0]!.id, ['running', 'completed']);
    assert.equal((await h.api('PATCH', '/agents/agent-widening', { maxConcurrency: 6 })).status, 200);
    // The worker re-registers with the new slots (its tick sees the change). The window: its
    // takeover has listed what the replica holds while the dispatcher (woken by the register)
    // has leased more and not yet delivered them. Held here: the listing until the dispatcher
    // reaches its delivery read (or a second: with the old lease removed first, it does not),
    // and the delivery until the takeover is done.
    const delivery = holdStoreCall(h.store, 'taskGetMany');
    const listing = holdStoreCall(h.store, 'assignmentListByReplica');
    const ticking = h.engine.a2aRuntime.worker('agent-widening')!.tick();
    await listing.inside;
    await Promise.race([delivery.inside, new Promise((r) => setTimeout(r, 1_000))]);
    listing.release();
    await ticking;
    delivery.release();
    for (const t of tasks) assert.equal((await settled(t.id)).status, 'completed');
    for (const t of tasks) assert.equal((await sentFor(agent, t.id)).length, 1, `task ${t.id} was sent once`);
  });

  it('a retry after an answered question that then failed starts a fresh remote task (it asks again)', async () => {
    const agent = await agentProcess('askfail', ['--stream', 'yes']);
    await h.agent({ name: 'agent-askfail', runtime: 'a2a', a2a: { url: agent.url }, maxAttempts: 3 });
    await h.engine.a2aRuntime.sync();
    const task = await h.submit({ agent: 'agent-askfail', input: { paint: 'door' } });
    await settled(task.id, ['input_required']);
    assert.equal((await h.api('POST', `/tasks/${task.id}/input`, { input: 'red' })).status, 200);
    // The answer fails the remote task; the retry must not send to that finished task.
    await eventually(async () => (await sentFor(agent, task.id)).length >= 3, 'the retry to send');
    const again = await settled(task.id, ['input_required', 'failed']);
    assert.equal(again.status, 'input_required', JSON.stringify(again.error));
    const sent = await sentFor(agent, task.id);
    assert.deepEqual(sent.map((s) => s.text), [JSON.stringify({ paint: 'door' }), JSON.stringify('red'), JSON.stringify({ paint: 'door' })]);
    assert.equal(sent[0]!.taskId, sent[1]!.taskId, 'the answer went to the task that asked');
    assert.notEqual(sent[2]!.taskId, sent[1]!.taskId, 'the retry started a fresh remote task');
  });

  it('the secret headers go only to the declared origin, not to a service URL the card names elsewhere', async () => {
    const elsewhere = await agentProcess('v1', ['--require-header', 'X-Agent-Key=s3cret']);
    const front = await agentProcess('v1', ['--service-url', `${elsewhere.url}/a2a/jsonrpc`]);
    await h.agent({ name: 'agent-pointing', runtime: 'a2a', a2a: { url: front.url, headers: { 'X-Agent-Key': 's3cret' } }, maxAttempts: 1 });
    await h.engine.a2aRuntime.sync();
    const done = await settled((await h.submit({ agent: 'agent-pointing', input: 'x' })).id);
    // Without the key the other origin answers 401: the attempt fails there, nothing leaked.
    assert.equal(done.status, 'failed');
    assert.equal((await elsewhere.seen()).length, 0);
  });

  it('a card that never comes fails the attempt after half a lease (retryable), not holding it', async () => {
    const agent = await agentProcess('v1', ['--card-delay-ms', '60000']);
    await h.agent({ name: 'agent-no-card', runtime: 'a2a', a2a: { url: agent.url }, maxAttempts: 1 });
    await h.engine.a2aRuntime.sync();
    const done = await settled((await h.submit({ agent: 'agent-no-card' })).id);
    assert.deepEqual([done.status, done.error?.code], ['failed', 'A2A_UNREACHABLE']);
    assert.match(done.error!.message, /card/);
  });

  it('a stream that closes before any event fails the attempt at once (A2A_PROTOCOL), not after its lease', async () => {
    const agent = await agentProcess('silent');
    await h.agent({ name: 'agent-silent', runtime: 'a2a', a2a: { url: agent.url }, maxAttempts: 2 });
    await h.engine.a2aRuntime.sync();
    const done = await settled((await h.submit({ agent: 'agent-silent' })).id);
    assert.deepEqual([done.status, done.attempt, done.error?.code], ['failed', 1, 'A2A_PROTOCOL']);
  });
});
