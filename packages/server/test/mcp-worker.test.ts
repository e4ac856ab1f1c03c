// The README walk-through's MCP step, with real processes: a server started with a config
// file that declares a tool domain (the reference "everything" server over stdio, started and
// kept by the server), the example worker (examples/mcp-worker.ts) run by the CLI, a task
// submitted; the worker lists its tools through the gateway and calls one, and the call is in
// GET /tool-calls. Also: a tool domain declared in the config file is checked and in
// /mcp/health.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Flotilla } from '@flotilla/sdk';
import { TOKEN } from './helpers/harness.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { EVERYTHING, until } from './fixtures/mcp/servers.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../../examples/mcp-worker.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'flotilla-mcp-worker-'));
let server: ServerProcess;
let worker: ChildProcess | null = null;

before(async () => {
  const config = join(dir, 'flotilla.config.yaml');
  writeFileSync(config, [
    'server:',
    '  mcpHealthIntervalMs: 500',
    'toolDomains:',
    '  - name: everything',
    `    command: ${JSON.stringify(EVERYTHING)}`,
    '    args: [stdio]',
    'agents:',
    '  - name: mcp-worker',
    '    tools: ["everything:echo", "everything:get-sum"]',
    '    toolDomains: [everything]',
    '',
  ].join('\n'));
  server = await startServerProcess({ database: join(dir, 'f.db'), env: { FLOTILLA_CONFIG: config } });
});
after(async () => {
  if (worker !== null && worker.exitCode === null) worker.kill('SIGKILL');
  await server.kill('SIGKILL');
});

describe('the MCP worker example', () => {
  it('lists its tools through the gateway, calls one, and the call is audited', async () => {
    const get = async (path: string) => (await fetch(`${server.url}/api/v1${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as Promise<any>;
    // The config file's domain, checked by the maintenance node within its interval.
    const row = await until('the domain to be up', async () => ((await get('/mcp/health')).items as Array<{ name: string; status: string; toolCount: number }>).find((r) => r.status === 'up'));
    assert.equal(row.name, 'everything');
    worker = spawn(process.execPath, [CLI, 'worker', EXAMPLE, '--agent', 'mcp-worker'], {
      env: { ...process.env, FLOTILLA_URL: server.url, FLOTILLA_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const client = new Flotilla({ url: server.url, token: TOKEN });
    const task = await client.tasks.submit({ agent: 'mcp-worker', input: { message: 'walk-through' } });
    const done = await client.tasks.wait(task.id, { timeoutMs: 60_000 });
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const result = done.result as { tools: string[]; called: string; content: unknown };
    assert.deepEqual(result.tools.sort(), ['everything:echo', 'everything:get-sum']);
    assert.match(JSON.stringify(result.content), /walk-through/);
    const calls = await until('the call in the audit', async () => {
      const page = await get(`/tool-calls?taskId=${task.id}`);
      return page.items.length > 0 ? page.items : undefined;
    });
    assert.deepEqual(calls.map((c: { tool: string; outcome: string; agent: string }) => [c.tool, c.outcome, c.agent]), [['everything:echo', 'ok', 'mcp-worker']]);
  });
});
