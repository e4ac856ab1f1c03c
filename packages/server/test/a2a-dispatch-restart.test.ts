// An a2a attempt survives its server (decisions.md 75): a real `flotilla serve` process on a
// SQLite file is killed (SIGKILL) while an A2A agent works on its task, and started again on
// the same file; and, on PostgreSQL, the maintenance leader of two nodes is killed and the
// other takes over. Either way the new process takes the attempt over by its recorded remote
// task id: the agent saw the message once, and the task completes with the agent's result.
// Both agents here stream for one of the cases (re-subscribed) and are polled for the other.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { eventually, startA2aAgent, type A2aAgentProcess } from './helpers/a2a-agent.ts';
import { createTestSchema, postgresAvailable, type TestSchema } from './helpers/postgres.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-a2a-restart-'));
const database = join(dir, 'flotilla.db');
// Leases long enough to outlive the restart: the attempt is taken over, not lost and retried.
const env = { FLOTILLA_LEASE_MS: '60000', FLOTILLA_REPLICA_TTL_MS: '60000', FLOTILLA_REAPER_INTERVAL_MS: '100', FLOTILLA_A2A_POLL_INTERVAL_MS: '100', FLOTILLA_LOG_LEVEL: 'info' };
let server: ServerProcess | null = null;
let agent: A2aAgentProcess | null = null;
const nodes: ServerProcess[] = [];
const agents: A2aAgentProcess[] = [];
let schema: TestSchema | null = null;

describe('a2a dispatch across a restart (SIGKILL)', () => {
  // Cleanup per describe (a file-level hook ran before a filtered run's processes existed).
  after(async () => {
    await server?.kill('SIGKILL');
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
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

const pgAvailable = await postgresAvailable();

describe('a2a dispatch when the maintenance leader dies (PostgreSQL, two nodes)', { skip: pgAvailable ? false : 'PostgreSQL is not reachable' }, () => {
  after(async () => {
    await Promise.all([...nodes.map((n) => n.kill('SIGKILL')), ...agents.map((a) => a.stop())]);
    await schema?.drop();
  });
  it('the other node takes the attempt over: a streaming agent is re-subscribed, the message sent once', { timeout: 120_000 }, async () => {
    const streamer = await startA2aAgent('timed', ['--work-ms', '6000', '--stream', 'yes']);
    agents.push(streamer);
    schema = await createTestSchema('flotilla_a2a_failover');
    for (let i = 0; i < 2; i++) nodes.push(await startServerProcess({ database: schema.url, env }));
    const [first] = nodes;
    const call = (url: string, method: string, path: string, body?: unknown) => callServer(url, method, path, body);
    assert.equal((await call(first!.url, 'POST', '/agents', { name: 'streamer', runtime: 'a2a', a2a: { url: streamer.url } })).status, 201);
    const task = (await call(first!.url, 'POST', '/tasks', { agent: 'streamer', input: { job: 'fail over' } })).body;
    await eventually(async () => (await streamer.seen()).length === 1, 'the agent to receive the message');
    await eventually(async () => (await call(first!.url, 'GET', `/tasks/${task.id}`)).body.status === 'running', 'the task to run');
    // The node talking to the agent is the maintenance leader: it logged that it runs the agent.
    const leader = nodes.find((n) => n.output().includes('this node now dispatches to the agent'))!;
    const other = nodes.find((n) => n !== leader)!;
    assert.ok(leader, 'one node talks to the agent');
    await leader.kill('SIGKILL');
    const done = await eventually(async () => {
      const t = (await call(other.url, 'GET', `/tasks/${task.id}`)).body;
      return ['completed', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
    }, 'the task to end on the other node', 60_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempt, 1, 'the same attempt, taken over');
    assert.deepEqual(done.result.artifacts[0].parts, [{ kind: 'data', data: { echo: { job: 'fail over' } } }]);
    assert.ok(other.output().includes('this node now dispatches to the agent'), 'the other node took the agent over');
    assert.equal((await streamer.seen()).length, 1, 'the message was sent once');
    assert.equal(other.output().includes('the stream broke'), false, 'followed by its re-subscribed stream');
  });
});
