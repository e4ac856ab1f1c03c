// A2A push notifications across `flotilla serve` processes on one PostgreSQL database: the
// config is set through one node, the task is done through another, only the maintenance
// node sends; when that node is killed while a notification is still being retried, the node
// that takes the duty over delivers it, and what was queued behind it, in order (the outbox
// is in the database: at least once).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { Task } from '@a2a-js/sdk';
import { data, userMessage, v1Client } from './helpers/a2a-clients.ts';
import { HttpWorker } from './helpers/http-worker.ts';
import { createTestSchema, postgresAvailable } from './helpers/postgres.ts';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const available = await postgresAvailable();
const env = { FLOTILLA_A2A_PUSH_INTERVAL_MS: '100', FLOTILLA_REAPER_INTERVAL_MS: '200' };

async function until(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('A2A push notifications on several nodes', { skip: available ? false : (process.env.CI === 'true' ? false : 'PostgreSQL is not reachable') }, () => {
  it('the maintenance node sends; killed while retrying, the next one delivers', { timeout: 120_000 }, async (t) => {
    const schema = await createTestSchema('flotilla_a2a_push');
    const nodes: ServerProcess[] = [];
    let worker: HttpWorker | null = null;
    let accepting = false;
    const attempts: Array<{ state: string; accepted: boolean }> = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        attempts.push({ state: JSON.parse(body).task.status.state, accepted: accepting });
        res.writeHead(accepting ? 200 : 503).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    t.after(async () => {
      receiver.close();
      await worker?.stop();
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await schema.drop();
    });
    for (let i = 0; i < 2; i++) nodes.push(await startServerProcess({ database: schema.url, env }));
    const [a, b] = nodes as [ServerProcess, ServerProcess];
    assert.equal((await callServer(a.url, 'POST', '/agents', { name: 'echo', a2aSkill: {} })).status, 201);

    // Sent and configured through node a, done by a worker of node b.
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const task = await (await v1Client(a.url)).sendMessage({
      tenant: '', message: userMessage([data('x')], { metadata: { skill: 'echo' } }), metadata: undefined,
      configuration: { acceptedOutputModes: [], returnImmediately: true, taskPushNotificationConfig: { tenant: '', id: 'hook', taskId: '', url, token: '', authentication: undefined } },
    }) as Task;
    worker = new HttpWorker({ urls: () => [b.url], agent: 'echo', maxConcurrency: 1, handle: async () => 'done' });
    worker.start();
    // The first notification is refused (and retried); the later ones wait behind it, in order.
    await until('a notification to be tried', () => attempts.length > 0);
    await until('the task to complete', () => worker!.acknowledged.has(task.id));

    // Kill the node running maintenance (the one sending): the other takes the duty over
    // and, the receiver now accepting, delivers what is still queued.
    const leader = nodes.find((n) => /this node now runs maintenance/.test(n.output()));
    assert.ok(leader, 'one node runs maintenance');
    assert.equal(nodes.filter((n) => /this node now runs maintenance/.test(n.output())).length, 1, 'only one node sends');
    const survivor = nodes.find((n) => n !== leader)!;
    // Which node POSTed: the failed sends so far are logged by the leader, none by the other.
    await until('the leader to log a failed send', () => /A2A push notification failed/.test(leader.output()));
    assert.doesNotMatch(survivor.output(), /A2A push notification/, 'the node without the duty sent nothing');
    await leader.kill('SIGKILL');
    accepting = true;
    await until('the completion to be delivered', () => attempts.some((x) => x.accepted && x.state === 'TASK_STATE_COMPLETED'));
    assert.match(survivor.output(), /this node now runs maintenance/);
    // In order: nothing after the final state, and the final state delivered.
    const states = attempts.map((x) => x.state);
    assert.equal(states.at(-1), 'TASK_STATE_COMPLETED');
    assert.deepEqual(states.slice(states.indexOf('TASK_STATE_COMPLETED')).filter((s) => s !== 'TASK_STATE_COMPLETED'), []);
    assert.equal((await callServer(survivor.url, 'GET', `/tasks/${task.id}`)).body.status, 'completed');
  });
});
