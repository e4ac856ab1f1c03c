// Two `flotilla serve` processes on one PostgreSQL database and one tool domain (the reference
// "everything" server over streamable HTTP, declared in their shared config file): only the
// maintenance node checks it, and both agree on its health: its row, the waiting reason on
// either node, and a worker waiting on either node gets the waiting task when the domain is
// back (the event crosses nodes and wakes their dispatchers).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestSchema, postgresAvailable, type TestSchema } from './helpers/postgres.ts';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { freePort, startEverythingHttp, until } from './fixtures/mcp/servers.ts';

const available = await postgresAvailable();
let schema: TestSchema;
const nodes: ServerProcess[] = [];
let port: number;
let mcp: Awaited<ReturnType<typeof startEverythingHttp>>;

describe('tool domains across nodes (PostgreSQL)', { skip: available ? false : 'PostgreSQL is not reachable' }, () => {
  before(async () => {
    port = await freePort();
    mcp = await startEverythingHttp(port);
    schema = await createTestSchema('flotilla_mcp_nodes');
    const config = join(mkdtempSync(join(tmpdir(), 'flotilla-mcp-nodes-')), 'flotilla.config.yaml');
    writeFileSync(config, [
      'server:', '  mcpHealthIntervalMs: 300', '  mcpHealthTimeoutMs: 2000',
      'toolDomains:', '  - name: web', `    url: ${mcp.url}`,
      'agents:', '  - name: researcher', '    tools: ["web:*"]', '    toolDomains: [web]', '',
    ].join('\n'));
    for (let i = 0; i < 2; i++) nodes.push(await startServerProcess({ database: schema.url, env: { FLOTILLA_CONFIG: config } }));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await mcp?.stop();
    await schema?.drop();
  });

  it('both nodes see the domain go down and come back, and route by it', { timeout: 90_000 }, async () => {
    const [a, b] = nodes.map((n) => n.url) as [string, string];
    const status = async (url: string) => (await callServer(url, 'GET', '/mcp/health')).body.items[0]?.status as string | undefined;
    for (const url of [a, b]) await until(`up on ${url}`, async () => ((await status(url)) === 'up' ? true : undefined));

    await mcp.stop();
    for (const url of [a, b]) await until(`down on ${url}`, async () => ((await status(url)) === 'down' ? true : undefined));
    const task = (await callServer(a, 'POST', '/tasks', { agent: 'researcher' })).body;
    const { body: reg } = await callServer(b, 'POST', '/workers/register', { agent: 'researcher' });
    // Node b's snapshot follows the stored health (the event or its next read): the task waits there too.
    await until('the waiting reason on b', async () => ((await callServer(b, 'GET', `/tasks/${task.id}`)).body.waitingReason === 'tool_domain_down' ? true : undefined));
    const first = await callServer(b, 'POST', `/workers/${reg.replica.id}/lease`, { max: 1, waitMs: 0 });
    assert.deepEqual(first.body.assignments, []);

    const waiting = callServer(b, 'POST', `/workers/${reg.replica.id}/lease`, { max: 1, waitMs: 30_000 }, 40_000);
    mcp = await startEverythingHttp(port);
    const leased = await waiting;
    assert.equal(leased.body.assignments[0]?.task.id, task.id);
    const events = (await callServer(a, 'GET', '/events/page?after=0&limit=1000')).body.items as Array<{ type: string }>;
    // One event per change, whichever node checked: up, down, up.
    assert.deepEqual(events.filter((e) => e.type.startsWith('mcp.')).map((e) => e.type), ['mcp.domain_up', 'mcp.domain_down', 'mcp.domain_up']);
  });
});
