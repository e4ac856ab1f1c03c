// A tool domain that goes down mid-test (the reference "everything" server over streamable
// HTTP, a process of its own, killed and started again on the same port), on both stores:
// the event and the health row, the waiting task's reason naming the domain, the agent
// degraded, a task that allows running degraded dispatched with the note, and the domain
// coming back (its event) dispatching the waiting task.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { freePort, startEverythingHttp } from './fixtures/mcp/servers.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;

for (const store of stores) describe(`a tool domain going down and coming back (${store})`, () => {
  let h: Harness;
  let port: number;
  let server: Awaited<ReturnType<typeof startEverythingHttp>>;
  before(async () => {
    port = await freePort();
    server = await startEverythingHttp(port);
    h = await harness({ store, config: { mcpHealthIntervalMs: 3_600_000, mcpHealthTimeoutMs: 3_000 } });
    assert.equal((await h.api('PUT', '/tool-domains/web', { url: server.url, headers: { 'x-api-key': 'literal-secret' } })).status, 201);
    await h.agent({ name: 'researcher', tools: ['web:*'], toolDomains: ['web', 'github.com'] });
  });
  after(async () => {
    await h.close();
    await server.stop();
  });

  async function events(type: string) {
    return ((await h.api('GET', '/events/page?after=0&limit=1000')).body.items as Array<{ type: string; data: Record<string, unknown> }>).filter((e) => e.type === type);
  }

  it('routes around the domain while it is down, and dispatches the waiting task when it is back', async () => {
    await h.engine.mcp.health.sweep();
    let row = (await h.api('GET', '/mcp/health')).body.items[0];
    assert.deepEqual([row.name, row.status, row.transport], ['web', 'up', 'streamable-http']);
    assert.ok(row.toolCount > 0);
    assert.equal((await events('mcp.domain_up')).length, 1);

    await server.stop();
    await h.engine.mcp.health.sweep();
    row = (await h.api('GET', '/mcp/health')).body.items[0];
    assert.equal(row.status, 'down');
    assert.notEqual(row.lastError, null);
    const down = await events('mcp.domain_down');
    assert.equal(down.length, 1);
    assert.equal(down[0]!.data.domain, 'web');
    // A second check that finds it down again writes no second event.
    await h.engine.mcp.health.sweep();
    assert.equal((await events('mcp.domain_down')).length, 1);

    const replica = await h.register('researcher', { maxConcurrency: 2 });
    assert.equal((await h.api('GET', '/agents/researcher')).body.state, 'degraded');
    assert.equal((await h.api('GET', '/overview')).body.agentStates.degraded, 1);
    assert.deepEqual((await h.api('GET', '/overview')).body.toolDomains.downDomains, ['web']);

    const waiting = await h.submit({ agent: 'researcher', input: { q: 'waits' } });
    const degraded = await h.submit({ agent: 'researcher', input: { q: 'runs degraded' }, allowDegraded: true });
    const leased = await h.lease(replica, 2);
    assert.deepEqual(leased.map((l) => l.task.id), [degraded.id]);
    assert.deepEqual(leased[0]!.mcp, { url: '/api/v1/mcp', downDomains: ['web'] });
    const view = await h.task(waiting.id);
    assert.equal(view.status, 'pending');
    assert.equal(view.waitingReason, 'tool_domain_down');
    assert.deepEqual(view.waitingDomains, ['web']);
    assert.equal((await h.task(degraded.id)).allowDegraded, true);
    // The degraded task's calls to the domain that is down are refused, naming the rule.
    const token = (await h.api('POST', `/assignments/${leased[0]!.assignmentId}/token`, { replicaId: replica })).body.token as string;
    const base = await h.listen();
    const mcp = new Client({ name: 'degraded-worker', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL('/api/v1/mcp', base), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    assert.deepEqual((await mcp.listTools()).tools, [], 'a domain down lists nothing');
    await assert.rejects(mcp.callTool({ name: 'web:echo', arguments: { message: 'x' } }), (err: unknown) => err instanceof McpError && (err.data as { rule: string }).rule === 'domain_down');

    // Back on the same port: the next check finds it up, and the waiting task dispatches.
    server = await startEverythingHttp(port);
    const longPoll = h.lease(replica, 1, 20_000);
    await h.engine.mcp.health.sweep();
    const [woken] = await longPoll;
    assert.equal(woken?.task.id, waiting.id);
    assert.deepEqual(woken!.mcp, { url: '/api/v1/mcp', downDomains: [] });
    const up = await events('mcp.domain_up');
    assert.equal(up.length, 2);
    assert.equal(up[1]!.data.from, 'down');
    assert.equal((await h.api('GET', '/mcp/health')).body.items[0].status, 'up');
    assert.notEqual((await h.api('GET', '/agents/researcher')).body.state, 'degraded');
    // Back up: the gateway's client reconnects (the restarted server knows no old session).
    assert.match(JSON.stringify(await mcp.callTool({ name: 'web:echo', arguments: { message: 'back' } })), /back/);
    // Killed again before any check notices: the call gets no answer and is recorded as failed.
    await server.stop();
    await assert.rejects(mcp.callTool({ name: 'web:echo', arguments: { message: 'lost' } }), (err: unknown) => err instanceof McpError && /did not answer/.test(err.message));
    await mcp.close();
    const calls = (await h.api('GET', `/tool-calls?taskId=${degraded.id}`)).body.items as Array<{ outcome: string; rule: string | null; error: string | null }>;
    assert.deepEqual(calls.map((c) => [c.outcome, c.rule]), [['failed', null], ['ok', null], ['refused', 'domain_down']]);
    assert.notEqual(calls[0]!.error, null);
    server = await startEverythingHttp(port);
    // The header's literal value is never shown.
    assert.deepEqual((await h.api('GET', '/tool-domains/web')).body.headers, { 'x-api-key': '***' });
  });
});
