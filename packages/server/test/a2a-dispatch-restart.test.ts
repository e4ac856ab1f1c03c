// An a2a attempt survives its server (decisions.md 75): a real `flotilla serve` process on a
// SQLite file is killed (SIGKILL) while an A2A agent works on its task, and started again on
// the same file. The new process takes the attempt over by its recorded remote task id: the
// agent saw the message once, and the task completes with the agent's result.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { eventually, startA2aAgent, type A2aAgentProcess } from './helpers/a2a-agent.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-a2a-restart-'));
const database = join(dir, 'flotilla.db');
// Leases long enough to outlive the restart: the attempt is taken over, not lost and retried.
const env = { FLOTILLA_LEASE_MS: '60000', FLOTILLA_REPLICA_TTL_MS: '60000', FLOTILLA_REAPER_INTERVAL_MS: '100', FLOTILLA_A2A_POLL_INTERVAL_MS: '100', FLOTILLA_LOG_LEVEL: 'info' };
let server: ServerProcess | null = null;
let agent: A2aAgentProcess | null = null;
after(async () => {
  await server?.kill('SIGKILL');
  await agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a2a dispatch across a restart (SIGKILL)', () => {
  it('the remote agent saw the message once and the task completes', { timeout: 120_000 }, async () => {
    agent = await startA2aAgent('timed', ['--work-ms', '6000']);
    server = await startServerProcess({ database, env });
    const call = (method: string, path: string, body?: unknown) => callServer(server!.url, method, path, body);
    assert.equal((await call('POST', '/agents', { name: 'slowpoke', runtime: 'a2a', a2a: { url: agent.url }, maxAttempts: 3 })).status, 201);
    const task = (await call('POST', '/tasks', { agent: 'slowpoke', input: { job: 'survive' } })).body;
    // The agent has the message, and Flotilla knows the remote task (the attempt is running).
    await eventually(async () => (await agent!.seen()).length === 1, 'the agent to receive the message');
    await eventually(async () => (await call('GET', `/tasks/${task.id}`)).body.status === 'running', 'the task to run');
    await server.kill('SIGKILL');

    server = await startServerProcess({ database, env });
    const done = await eventually(async () => {
      const t = (await call('GET', `/tasks/${task.id}`)).body;
      return ['completed', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
    }, 'the task to end after the restart', 60_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempt, 1, 'the same attempt, taken over');
    assert.deepEqual(done.result.artifacts[0].parts, [{ kind: 'data', data: { echo: { job: 'survive' } } }]);
    const seen = await agent.seen();
    assert.equal(seen.length, 1, `the agent saw the message once: ${JSON.stringify(seen)}`);
  });
});
