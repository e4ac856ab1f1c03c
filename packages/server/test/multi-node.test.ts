// Several `flotilla serve` processes on one PostgreSQL database: wake-ups and live events
// cross nodes, maintenance moves when its node dies, and a SIGKILLed node loses nothing:
// every accepted task reaches a terminal state with its result recorded once, and the dead
// node's workers finish their work through the other nodes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TOKEN } from './helpers/harness.ts';
import { HttpWorker } from './helpers/http-worker.ts';
import { createTestSchema, postgresAvailable, type TestSchema } from './helpers/postgres.ts';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const available = await postgresAvailable();
const env = { FLOTILLA_LEASE_MS: '2000', FLOTILLA_REPLICA_TTL_MS: '2000', FLOTILLA_REAPER_INTERVAL_MS: '200', FLOTILLA_LOG_LEVEL: 'info' };

let schema: TestSchema;
const nodes: ServerProcess[] = [];
const workers: HttpWorker[] = [];

function call(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return callServer(url, method, path, body, 15_000);
}

/** Reads an SSE stream until `count` events of `type` arrived; returns their task ids. */
async function collect(url: string, type: string, count: number): Promise<string[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  const res = await fetch(`${url}/api/v1/events?type=${type}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: controller.signal });
  const ids: string[] = [];
  let buffer = '';
  try {
    for await (const chunk of res.body!) {
      buffer += Buffer.from(chunk).toString();
      for (const m of buffer.matchAll(/data: (.*)\n/g)) ids.push(JSON.parse(m[1]!).taskId);
      buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
      if (ids.length >= count) break;
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return ids;
}

describe('multi-node on PostgreSQL', { skip: available ? false : 'PostgreSQL is not reachable (set FLOTILLA_TEST_DATABASE_URL)' }, () => {
  before(async () => {
    schema = await createTestSchema('flotilla_mn');
    // Start together: migrations and the bootstrap key are safe under concurrent starts.
    // Each node is tracked as soon as it runs, so a failed start cannot leak the others.
    const started = await Promise.allSettled([0, 1, 2].map(async () => {
      const node = await startServerProcess({ database: schema.url, env });
      nodes.push(node);
      return node;
    }));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    nodes.sort((a, b) => a.url.localeCompare(b.url));
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await schema?.drop();
  });

  it('a worker on one node gets a task submitted on another at once, and every node streams every node\'s events', { timeout: 30_000 }, async () => {
    const [a, b, c] = nodes.map((n) => n.url) as [string, string, string];
    assert.equal((await call(a, 'POST', '/agents', { name: 'probe' })).status, 201);
    const { body: reg } = await call(c, 'POST', '/workers/register', { agent: 'probe' });
    const streamA = collect(a, 'task.created', 2);
    const streamC = collect(c, 'task.created', 2);
    await new Promise((r) => setTimeout(r, 300));
    const waiting = call(c, 'POST', `/workers/${reg.replica.id}/lease`, { max: 1, waitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const t1 = (await call(b, 'POST', '/tasks', { agent: 'probe', input: 1 })).body;
    const leased = await waiting;
    const waited = Date.now() - started;
    assert.equal(leased.body.assignments[0].task.id, t1.id);
    assert.ok(waited < 2_000, `woken through LISTEN/NOTIFY, not a poll (waited ${waited} ms)`);
    const t2 = (await call(c, 'POST', '/tasks', { agent: 'probe', input: 2 })).body;
    assert.deepEqual(await streamA, [t1.id, t2.id]);
    assert.deepEqual(await streamC, [t1.id, t2.id]);
  });

  it('a revoked scoped token and a revoked API key are refused by every node within seconds', { timeout: 30_000 }, async () => {
    const [a, b, c] = nodes.map((n) => n.url) as [string, string, string];
    const get = async (url: string, token: string) => (await fetch(`${url}/api/v1/overview`, { headers: { authorization: `Bearer ${token}` } })).status;
    const issued = await call(a, 'POST', '/tokens', { scopes: ['task.read'] });
    assert.equal(issued.status, 201);
    const key = await call(a, 'POST', '/keys', { name: 'every node', role: 'viewer' });
    assert.equal(key.status, 201);
    // A token with only task.read may not read the overview (agent.read): use the tasks list for it.
    const tokenStatus = async (url: string) => (await fetch(`${url}/api/v1/tasks?limit=1`, { headers: { authorization: `Bearer ${issued.body.token}` } })).status;
    for (const url of [a, b, c]) {
      assert.equal(await tokenStatus(url), 200);
      assert.equal(await get(url, key.body.token), 200);
    }
    assert.equal((await call(c, 'POST', `/tokens/${issued.body.id}/revoke`)).status, 200);
    assert.equal((await call(c, 'POST', `/keys/${key.body.key.id}/revoke`)).status, 200);
    const started = Date.now();
    const refusedEverywhere = async (probe: (url: string) => Promise<number>) => {
      for (;;) {
        const statuses = await Promise.all([a, b, c].map(probe));
        if (statuses.every((s) => s === 401)) return Date.now() - started;
        if (Date.now() - started > 15_000) assert.fail(`still accepted somewhere: ${statuses.join(', ')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const tokenMs = await refusedEverywhere(tokenStatus);
    const keyMs = await refusedEverywhere((url) => get(url, key.body.token));
    assert.ok(tokenMs < 5_000, `token refused everywhere after ${tokenMs} ms`);
    assert.ok(keyMs < 10_000, `key refused everywhere after ${keyMs} ms`);
  });

  it('SIGKILL of one node mid-run loses nothing; its workers finish through the others; maintenance moves', { timeout: 120_000 }, async () => {
    const urls = nodes.map((n) => n.url);
    assert.equal((await call(urls[0]!, 'POST', '/agents', { name: 'fleet', maxConcurrency: 4 })).status, 201);
    const leaderBefore = nodes.findIndex((n) => /this node now runs maintenance/.test(n.output()));
    assert.ok(leaderBefore >= 0, 'one node leads maintenance');
    const victim = leaderBefore; // kill the maintenance leader: expiries must still be handled
    // Two workers per node, each preferring its own node and failing over to the others.
    for (let i = 0; i < 6; i++) {
      const home = i % 3;
      workers.push(new HttpWorker({
        urls: () => [urls[home]!, ...urls.filter((_, j) => j !== home)], agent: 'fleet', maxConcurrency: 4,
        handle: async (task) => {
          await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
          return { echo: task.input };
        },
      }));
    }
    workers.forEach((w) => w.start());

    // A replica that leases and then vanishes: only a live maintenance leader ends its attempts.
    const { body: zombie } = await call(urls[(victim + 1) % 3]!, 'POST', '/workers/register', { agent: 'fleet', maxConcurrency: 3 });

    const TOTAL = 450;
    const accepted = new Set<string>();
    let killedAt = 0;
    let n = 0;
    const submitOne = async (i: number) => {
      for (let attempt = 0; attempt < 100; attempt++) {
        const url = urls[(i + attempt) % 3]!;
        if (killedAt && url === urls[victim]) continue;
        try {
          const res = await call(url, 'POST', '/tasks', { agent: 'fleet', input: { i }, idempotencyKey: `mn-${i}` });
          if (res.status === 201 || res.status === 200) {
            accepted.add(res.body.id);
            return;
          }
        } catch {
          // node down: try the next
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`task ${i} never accepted`);
    };
    const submitter = async () => {
      while (n < TOTAL) {
        const i = n++;
        await submitOne(i);
        if (i === 60) await call(urls[(victim + 1) % 3]!, 'POST', `/workers/${zombie.replica.id}/lease`, { max: 3, waitMs: 0 });
        if (i === Math.floor(TOTAL / 2) && !killedAt) {
          killedAt = Date.now();
          workers.forEach((w) => (w.markTime = killedAt));
          await nodes[victim]!.kill('SIGKILL');
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await Promise.all(Array.from({ length: 6 }, submitter));
    assert.ok(killedAt > 0);
    assert.equal(accepted.size, TOTAL);
    // The dead node's workers must show they carry on through the other nodes. Their slots
    // may still be held by dispatches the dead node never delivered (until those leases
    // lapse), so keep a paced trickle of work coming until they have done some — bounded.
    const orphans = workers.filter((_, i) => i % 3 === victim);
    const tailDeadline = Date.now() + 20_000;
    let extra = TOTAL;
    while (!orphans.every((w) => w.acknowledgedAfterMark > 0) && Date.now() < tailDeadline) {
      await Promise.all(Array.from({ length: 6 }, () => submitOne(extra++)));
      await new Promise((r) => setTimeout(r, 100));
    }

    const live = urls.filter((_, j) => j !== victim);
    const deadline = Date.now() + 60_000;
    for (const id of accepted) {
      for (;;) {
        const res = await call(live[0]!, 'GET', `/tasks/${id}?waitMs=5000`);
        assert.equal(res.status, 200);
        if (['completed', 'failed', 'cancelled'].includes(res.body.status)) {
          assert.equal(res.body.status, 'completed', `task ${id} completed`);
          break;
        }
        assert.ok(Date.now() < deadline, `task ${id} stuck in ${res.body.status}`);
      }
    }
    for (const id of accepted) {
      const events = (await call(live[1]!, 'GET', `/tasks/${id}/events`)).body.items as Array<{ type: string }>;
      assert.equal(events.filter((e) => e.type === 'task.completed').length, 1, `task ${id} completed once`);
    }
    assert.ok(orphans.every((w) => w.acknowledgedAfterMark > 0), 'the dead node\'s workers kept working through the other nodes');
    assert.ok(live.length === 2 && nodes.some((node, j) => j !== victim && /this node now runs maintenance/.test(node.output())), 'another node took over maintenance');
  });
});
