// The MCP gateway against real MCP servers from npm (the reference "everything" server over
// stdio, the "memory" server over stdio), with the MCP SDK's own client, on both stores: it
// lists only the tools the attempt's set allows, proxies calls, refuses the rest naming the
// rule, records every call, and shows the worker no secret.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { EVERYTHING, MEMORY } from './fixtures/mcp/servers.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;
const SECRET = 'secret-value-that-must-not-leak-0123';
const LIST = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
const ACCEPT = { accept: 'application/json, text/event-stream' };

for (const store of stores) describe(`MCP gateway (${store})`, () => {
  let h: Harness;
  let base: string;
  before(async () => {
    process.env.FLOTILLA_SECRET_TEST_MCP = SECRET;
    h = await harness({ store, config: { mcpHealthIntervalMs: 3_600_000 } });
    base = await h.listen();
    const memoryFile = join(mkdtempSync(join(tmpdir(), 'flotilla-mcp-')), 'memory.jsonl');
    assert.equal((await h.api('PUT', '/tool-domains/every', { command: EVERYTHING, args: ['stdio'], env: { API_TOKEN: { env: 'FLOTILLA_SECRET_TEST_MCP' } } })).status, 201);
    assert.equal((await h.api('PUT', '/tool-domains/memory', { command: MEMORY, env: { MEMORY_FILE_PATH: memoryFile } })).status, 201);
    await h.engine.mcp.health.sweep();
    await h.agent({ name: 'tooler', tools: ['every:echo', 'every:get-sum', 'memory:*'], toolDomains: ['every', 'memory'] });
  });
  after(() => h.close());

  /** A running attempt's MCP client on the gateway, with the task's tools narrowed by `tools`. */
  async function attemptClient(tools?: { allow?: string[]; deny?: string[] }) {
    const task = await h.submit({ agent: 'tooler', ...(tools ? { tools } : {}) });
    const replica = await h.register('tooler');
    const [leased] = await h.lease(replica);
    assert.equal(leased?.task.id, task.id);
    assert.equal(leased!.mcp?.url, '/api/v1/mcp');
    const token = (await h.api('POST', `/assignments/${leased!.assignmentId}/token`, { replicaId: replica })).body.token as string;
    const client = new Client({ name: 'test-worker', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(leased!.mcp!.url, base), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return { client, task, replica, assignmentId: leased!.assignmentId, token };
  }

  it('checks both stdio servers: up, with their tool counts, in /mcp/health and /overview', async () => {
    const rows = (await h.api('GET', '/mcp/health')).body.items as Array<{ name: string; status: string; toolCount: number; transport: string }>;
    assert.deepEqual(rows.map((r) => [r.name, r.status, r.transport]), [['every', 'up', 'stdio'], ['memory', 'up', 'stdio']]);
    assert.ok(rows.every((r) => r.toolCount > 0));
    const overview = (await h.api('GET', '/overview')).body;
    assert.deepEqual(overview.toolDomains, { up: 2, down: 0, unknown: 0, downDomains: [] });
  });

  it('lists only the allowed tools, proxies calls, refuses the rest by rule, and records every call', async () => {
    const { client, task } = await attemptClient({ deny: ['every:get-sum', 'memory:delete_entities'] });
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.ok(names.includes('every:echo'));
    assert.ok(names.includes('memory:create_entities'));
    assert.ok(!names.includes('every:get-sum'), 'denied by the task');
    assert.ok(!names.includes('memory:delete_entities'), 'denied by the task, under the agent\'s memory:*');
    assert.ok(!names.some((n) => n === 'every:get-env'), 'outside the ceiling');
    const echoed = await client.callTool({ name: 'every:echo', arguments: { message: 'hello gateway' } });
    assert.match(JSON.stringify(echoed.content), /hello gateway/);
    const created = await client.callTool({ name: 'memory:create_entities', arguments: { entities: [{ name: 'flotilla', entityType: 'project', observations: ['routes tools'] }] } });
    assert.notEqual(created.isError, true);
    const refusals: Array<[string, string]> = [['every:get-sum', 'not_allowed'], ['every:get-env', 'not_allowed'], ['memory:no_such_tool', 'unknown_tool'], ['nowhere:thing', 'not_allowed']];
    for (const [name, rule] of refusals) {
      await assert.rejects(client.callTool({ name, arguments: { a: 1 } }), (err: unknown) => err instanceof McpError && (err.data as { rule: string }).rule === rule && err.message.includes(name.split(':')[0]!));
    }
    await client.close();
    const calls = (await h.api('GET', `/tool-calls?taskId=${task.id}`)).body;
    assert.equal(calls.items.length, 2 + refusals.length);
    assert.deepEqual(calls.items.map((c: { tool: string }) => c.tool), ['nowhere:thing', 'memory:no_such_tool', 'every:get-env', 'every:get-sum', 'memory:create_entities', 'every:echo']);
    const echo = calls.items.at(-1);
    assert.equal(echo.outcome, 'ok');
    assert.equal(echo.agent, 'tooler');
    assert.equal(echo.argsBytes, Buffer.byteLength(JSON.stringify({ message: 'hello gateway' })));
    assert.match(echo.argsSha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(calls.items.slice(0, 4).map((c: { outcome: string; rule: string }) => [c.outcome, c.rule]), [['refused', 'not_allowed'], ['refused', 'unknown_tool'], ['refused', 'not_allowed'], ['refused', 'not_allowed']]);
    // Filters and paging, newest first.
    const refused = (await h.api('GET', '/tool-calls?outcome=refused&limit=3')).body;
    assert.equal(refused.items.length, 3);
    assert.notEqual(refused.nextBefore, null);
    const rest = (await h.api('GET', `/tool-calls?outcome=refused&limit=3&before=${refused.nextBefore}`)).body;
    assert.equal(rest.items.length, 1);
    assert.equal((await h.api('GET', '/tool-calls?tool=every:echo')).body.items.length, 1);
  });

  it('shows no secret to the worker or in a view, and opens only to a live attempt\'s token', async () => {
    const { client, replica, assignmentId, token } = await attemptClient();
    const listed = JSON.stringify(await client.listTools());
    assert.ok(!listed.includes(SECRET));
    const view = (await h.api('GET', '/tool-domains/every')).body;
    assert.deepEqual(view.env, { API_TOKEN: { env: 'FLOTILLA_SECRET_TEST_MCP' } });
    assert.ok(!JSON.stringify((await h.api('GET', '/tool-domains')).body).includes(SECRET));
    // An API key is not an attempt: refused before any MCP.
    const byKey = await h.api('POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { accept: 'application/json, text/event-stream' });
    assert.equal(byKey.status, 403);
    assert.equal(byKey.body.error.code, 'ATTEMPT_TOKEN_REQUIRED');
    // The attempt ends: its token no longer opens the gateway.
    assert.equal((await h.api('POST', `/assignments/${assignmentId}/complete`, { replicaId: replica, result: null })).status, 200);
    const ended = await h.api('POST', '/mcp', LIST, { ...ACCEPT, authorization: `Bearer ${token}` });
    assert.equal(ended.status, 409);
    assert.equal(ended.body.error.code, 'ASSIGNMENT_SUPERSEDED');
    await assert.rejects(client.listTools(), (err: unknown) => { assert.match(String(err), /ASSIGNMENT_SUPERSEDED/); assert.equal((err as { code?: number }).code, 409); return true; });
    await client.close();
  });

  it('refuses a scoped token not bound to an attempt, and an earlier attempt\'s token while a later attempt runs', async () => {
    const scoped = (await h.api('POST', '/tokens', { scopes: ['task.read'] })).body.token as string;
    const byScoped = await h.api('POST', '/mcp', LIST, { ...ACCEPT, authorization: `Bearer ${scoped}` });
    assert.equal(byScoped.status, 403);
    assert.equal(byScoped.body.error.code, 'ATTEMPT_TOKEN_REQUIRED');
    // Attempt 1 fails and is retried: its token does not open the gateway for attempt 2.
    const first = await attemptClient();
    await first.client.close();
    assert.equal((await h.api('POST', `/assignments/${first.assignmentId}/fail`, { replicaId: first.replica, error: { message: 'again' } })).status, 200);
    h.advance(60_000);
    const [second] = await h.lease(first.replica);
    assert.equal(second?.task.id, first.task.id);
    assert.equal(second!.task.attempt, 2);
    const secondToken = (await h.api('POST', `/assignments/${second!.assignmentId}/token`, { replicaId: first.replica })).body.token as string;
    const stale = await h.api('POST', '/mcp', LIST, { ...ACCEPT, authorization: `Bearer ${first.token}` });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error.code, 'ASSIGNMENT_SUPERSEDED');
    const live = await h.api('POST', '/mcp', LIST, { ...ACCEPT, authorization: `Bearer ${secondToken}` });
    assert.equal(live.status, 200, JSON.stringify(live.body));
    assert.ok((live.body.result.tools as Array<{ name: string }>).some((t) => t.name === 'every:echo'));
    assert.equal((await h.api('POST', `/assignments/${second!.assignmentId}/complete`, { replicaId: first.replica, result: null })).status, 200);
  });

  it('refuses bad declarations with a clear 4xx and changes nothing', async () => {
    const both = await h.api('PUT', '/tool-domains/bad', { url: 'http://127.0.0.1:1/mcp', command: 'x' });
    assert.equal(both.status, 400);
    assert.equal(both.body.error.code, 'VALIDATION_FAILED');
    assert.equal((await h.api('PUT', '/tool-domains/flotilla', { command: 'x' })).status, 400);
    assert.equal((await h.api('PUT', '/tool-domains/bad', { url: 'ftp://127.0.0.1/x' })).status, 400);
    assert.equal((await h.api('GET', '/tool-domains/bad')).status, 404);
    assert.equal((await h.api('GET', '/tool-domains/bad')).body.error.code, 'TOOL_DOMAIN_NOT_FOUND');
    assert.equal((await h.api('DELETE', '/tool-domains/bad')).status, 404);
    assert.deepEqual((await h.api('GET', '/tool-domains')).body.items.map((d: { name: string }) => d.name), ['every', 'memory']);
  });
});
