// Webhook deliveries survive restarts and node changes (the outbox and the feed's cursor are
// in the store): `flotilla serve` processes, killed with SIGKILL.
// - SQLite: events that arrived while no node fed the outbox are delivered by the next start;
//   deliveries being retried when a process is killed are delivered by the next one, in order.
// - PostgreSQL, two nodes: only the maintenance node sends; killed while retrying, the node
//   that takes the duty over delivers everything, in order per task.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createTestSchema, postgresAvailable } from './helpers/postgres.ts';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';
import { webhookReceiver, type Receiver } from './helpers/webhook-receiver.ts';

const available = await postgresAvailable();
const FAST = { FLOTILLA_WEBHOOK_INTERVAL_MS: '100', FLOTILLA_WEBHOOK_RETRY_BASE_MS: '100', FLOTILLA_WEBHOOK_RETRY_MAX_MS: '300' };
const OFF = { FLOTILLA_WEBHOOK_INTERVAL_MS: '3600000' };

async function until(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The event types each task's accepted deliveries had, once each (a receiver dedupes on the delivery id). */
function perTask(r: Receiver): Map<string, string[]> {
  const seen = new Set<string>();
  const out = new Map<string, string[]>();
  for (const x of r.accepted()) {
    if (seen.has(x.body.id)) continue;
    seen.add(x.body.id);
    const id = x.body.event.taskId ?? '';
    out.set(id, [...(out.get(id) ?? []), x.body.event.type]);
  }
  return out;
}

async function subscribe(node: ServerProcess, r: Receiver): Promise<void> {
  const res = await callServer(node.url, 'POST', '/webhooks', { url: r.url, events: ['task.created', 'task.cancelled'] });
  assert.equal(res.status, 201);
  r.secret = res.body.secret;
}

/** Two tasks of agent a (no workers: they stay pending), each then cancelled. */
async function twoCancelledTasks(node: ServerProcess): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await callServer(node.url, 'POST', '/tasks', { agent: 'a', input: i });
    assert.equal(res.status, 201);
    ids.push(res.body.id);
  }
  for (const id of ids) assert.equal((await callServer(node.url, 'POST', `/tasks/${id}/cancel`)).status, 200);
  return ids;
}

describe('webhooks across restarts', () => {
  it('SQLite: a backlog fed after a restart, and deliveries retried across a kill', { timeout: 120_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-webhooks-'));
    const database = join(dir, 'flotilla.db');
    const r = await webhookReceiver();
    const nodes: ServerProcess[] = [];
    t.after(async () => {
      await r.close();
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    });
    // 1. The duty does not run: the events stay in the events table only.
    nodes.push(await startServerProcess({ database, env: OFF }));
    assert.equal((await callServer(nodes[0]!.url, 'POST', '/agents', { name: 'a' })).status, 201);
    await subscribe(nodes[0]!, r);
    const notifySecret = (await callServer(nodes[0]!.url, 'GET', '/webhooks/notify-secret')).body.secret as string;
    const ids = await twoCancelledTasks(nodes[0]!);
    const notify = await webhookReceiver();
    notify.secret = notifySecret;
    t.after(() => notify.close());
    const noted = await callServer(nodes[0]!.url, 'POST', '/tasks', { agent: 'a', notify: { url: notify.url } });
    assert.equal((await callServer(nodes[0]!.url, 'POST', `/tasks/${noted.body.id}/cancel`)).status, 200);
    await nodes[0]!.kill('SIGKILL');
    assert.equal(r.all.length, 0);

    // 2. The next process feeds the backlog; the receiver fails everything, and the process is killed while retrying.
    r.status = 503;
    nodes.push(await startServerProcess({ database, env: FAST }));
    await until('deliveries to be tried', () => r.all.length >= 4);
    assert.ok(r.all.every((x) => x.body.event.type === 'task.created'), 'a task\'s later event waits behind its first');
    await nodes[1]!.kill('SIGKILL');

    // 3. The receiver back, the next process delivers all of it, in order per task.
    r.status = 200;
    nodes.push(await startServerProcess({ database, env: FAST }));
    await until('everything delivered', () => ids.every((id) => perTask(r).get(id)?.length === 2) && notify.accepted().length > 0);
    for (const id of ids) assert.deepEqual(perTask(r).get(id), ['task.created', 'task.cancelled']);
    assert.deepEqual(notify.accepted().map((x) => [x.body.event.taskId, x.body.event.type]), [[noted.body.id, 'task.cancelled']]);
  });

  it('PostgreSQL, two nodes: the maintenance node sends; killed while retrying, the next one delivers', {
    timeout: 120_000, skip: available ? false : (process.env.CI === 'true' ? false : 'PostgreSQL is not reachable'),
  }, async (t) => {
    const schema = await createTestSchema('flotilla_webhooks');
    const r = await webhookReceiver();
    const nodes: ServerProcess[] = [];
    t.after(async () => {
      await r.close();
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await schema.drop();
    });
    for (let i = 0; i < 2; i++) nodes.push(await startServerProcess({ database: schema.url, env: FAST }));
    const [a, b] = nodes as [ServerProcess, ServerProcess];
    assert.equal((await callServer(a.url, 'POST', '/agents', { name: 'a' })).status, 201);
    r.status = 503;
    // Subscribed through one node, the tasks made through the other.
    await subscribe(a, r);
    const ids = await twoCancelledTasks(b);
    await until('deliveries to be tried', () => r.all.length >= 2);
    const leader = nodes.find((n) => /this node now runs maintenance/.test(n.output()));
    assert.ok(leader, 'one node runs maintenance');
    assert.equal(nodes.filter((n) => /this node now runs maintenance/.test(n.output())).length, 1, 'only one node sends');
    const survivor = nodes.find((n) => n !== leader)!;
    await until('the leader to log a failed send', () => /webhook delivery failed/.test(leader.output()));
    assert.doesNotMatch(survivor.output(), /webhook delivery/, 'the node without the duty sent nothing');
    await leader.kill('SIGKILL');
    r.status = 200;
    await until('everything delivered', () => ids.every((id) => perTask(r).get(id)?.length === 2));
    assert.match(survivor.output(), /this node now runs maintenance/);
    for (const id of ids) assert.deepEqual(perTask(r).get(id), ['task.created', 'task.cancelled']);
    // In order on the wire too: no task's cancellation was ever sent before its creation was accepted.
    for (const id of ids) {
      const sent = r.all.filter((x) => x.body.event.taskId === id);
      const firstCancel = sent.findIndex((x) => x.body.event.type === 'task.cancelled');
      assert.ok(sent.slice(0, firstCancel).some((x) => x.body.event.type === 'task.created' && x.status === 200));
    }
  });
});
