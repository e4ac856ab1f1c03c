// How a failed tool call treats the domain's shared client (review of issue 15, findings 2 and
// 3), against a real stdio MCP server (fixtures/mcp/probe-server.ts) on both stores: a server's
// JSON-RPC error is the call's `error` and is passed on as the server said it (its `data.rule`
// included); a call slower than mcpCallTimeoutMs fails alone; neither drops the client nor
// restarts the stdio server (the same pid answers after both). Clients asked for concurrently
// with a new spec share one process, and a removed domain's or a stopped server's process exits.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { PROBE, until } from './fixtures/mcp/servers.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}
function gone(pid: number) {
  return until(`process ${pid} exits`, async () => (alive(pid) ? undefined : true));
}
function textOf(result: unknown): string {
  return ((result as { content: Array<{ text: string }> }).content[0]!).text;
}

for (const store of stores) describe(`MCP call failures (${store})`, () => {
  let h: Harness;
  let base: string;
  before(async () => {
    h = await harness({ store, config: { mcpHealthIntervalMs: 3_600_000, mcpHealthTimeoutMs: 60_000, mcpCallTimeoutMs: 1_000 } });
    base = await h.listen();
    assert.equal((await h.api('PUT', '/tool-domains/probe', PROBE)).status, 201);
    await h.engine.mcp.health.sweep();
    await h.agent({ name: 'prober', tools: ['probe:*'], toolDomains: ['probe'] });
  });
  after(() => h.close());

  async function attemptClient() {
    const task = await h.submit({ agent: 'prober' });
    const replica = await h.register('prober');
    const [leased] = await h.lease(replica);
    const token = (await h.api('POST', `/assignments/${leased!.assignmentId}/token`, { replicaId: replica })).body.token as string;
    const client = new Client({ name: 'test-worker', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(leased!.mcp!.url, base), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return { client, task };
  }

  it('a server\'s error is the call\'s error, a slow call fails alone: the client and its process stay', async () => {
    const { client, task } = await attemptClient();
    const pid = Number(textOf(await client.callTool({ name: 'probe:pid', arguments: {} })));
    assert.ok(alive(pid));
    await assert.rejects(client.callTool({ name: 'probe:fail', arguments: {} }), (err: unknown) => err instanceof McpError && err.code === -32050 && (err.data as { rule: string }).rule === 'server_rule');
    // 60 s of work against a 1 s timeout: fails by the timeout whatever the load.
    await assert.rejects(client.callTool({ name: 'probe:slow', arguments: { ms: 60_000 } }), (err: unknown) => err instanceof McpError && /did not answer/.test(err.message));
    assert.equal(Number(textOf(await client.callTool({ name: 'probe:pid', arguments: {} }))), pid, 'the same stdio server answers');
    await client.close();
    const calls = (await h.api('GET', `/tool-calls?taskId=${task.id}`)).body.items as Array<{ tool: string; outcome: string; rule: string | null; error: string | null }>;
    assert.deepEqual(calls.map((c) => [c.tool, c.outcome, c.rule]), [['probe:pid', 'ok', null], ['probe:slow', 'failed', null], ['probe:fail', 'error', null], ['probe:pid', 'ok', null]]);
    assert.match(calls[2]!.error!, /the server says no/);
  });

  it('clients asked for at once with a changed spec share one process; the old one exits', async () => {
    const clients = h.engine.mcp.clients;
    const old = { name: 'race', ...PROBE };
    const pidOf = async (c: Client) => Number(textOf(await c.callTool({ name: 'pid', arguments: {} })));
    const oldPid = await pidOf(await clients.client(old, 60_000));
    const changed = { name: 'race', command: PROBE.command, args: [...PROBE.args, 'v2'] };
    const [a, b] = await Promise.all([clients.client(changed, 60_000), clients.client(changed, 60_000)]);
    assert.equal(a, b, 'one client for the new spec, none left behind');
    const newPid = await pidOf(a);
    await gone(oldPid);
    await clients.drop('race');
    await gone(newPid);
  });

  it('a flush returns only once the calls recorded before it are written, however many flushes wait', async () => {
    const task = await h.submit({ agent: 'prober' });
    const replica = await h.register('prober');
    const [leased] = await h.lease(replica);
    const log = h.engine.mcp.calls;
    const call = (tool: string) => ({
      at: h.now(), taskId: task.id, assignmentId: leased!.assignmentId, attempt: 1, agent: 'prober', tool,
      argsBytes: 2, argsSha256: '0'.repeat(64), durationMs: 1, outcome: 'ok' as const, rule: null, error: null,
    });
    log.record(call('probe:one'));
    const first = log.flush();
    log.record(call('probe:two'));
    // Both wait on the first write; the first to resume writes `two`, the other must wait for it.
    const waiters = [log.flush(), log.flush()];
    await waiters[1];
    const written = await h.store.toolCallList({ taskId: task.id, limit: 10 });
    assert.deepEqual(written.items.map((c) => c.tool), ['probe:two', 'probe:one']);
    await Promise.all([first, ...waiters]);
  });

  it('a removed domain\'s stdio process exits, and so does every one when the server stops', async () => {
    const { client } = await attemptClient();
    const pid = Number(textOf(await client.callTool({ name: 'probe:pid', arguments: {} })));
    await client.close();
    assert.equal((await h.api('DELETE', '/tool-domains/probe')).status, 200);
    await gone(pid);
    assert.equal((await h.api('PUT', '/tool-domains/probe2', PROBE)).status, 201);
    const pid2 = await (async () => {
      const c = await h.engine.mcp.clients.client({ name: 'probe2', ...PROBE }, 60_000);
      return Number(textOf(await c.callTool({ name: 'pid', arguments: {} })));
    })();
    assert.ok(alive(pid2));
    await h.engine.mcp.stop();
    await gone(pid2);
  });
});
