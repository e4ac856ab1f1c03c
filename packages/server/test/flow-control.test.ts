// Flow control end to end (issue 16, docs/flow-control.md): the real engine and HTTP API, workers
// speaking the HTTP lease protocol, on each store, with the harness clock (`advance`) instead of
// waiting. A rate key at rpm N hands out at most N in a minute; a token estimate holds a task
// back until the reported usage corrects the window; a provider's 429 pauses the whole key and
// reschedules the task without spending an attempt (waitingReason shows it; on PostgreSQL another
// node hands out none of the key meanwhile); the agent cap and
// the fleet cap hold across two replicas, on PostgreSQL across two nodes leasing at once.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Engine } from '../src/engine/engine.ts';
import { buildApp } from '../src/http/app.ts';
import { openStore } from '../src/store/open-store.ts';
import { TOKEN, withHarness, type Harness } from './helpers/harness.ts';

const KEY = 'openai:gpt-4o';

async function complete(h: Harness, replicaId: string, assignmentId: string, extra: Record<string, unknown> = {}): Promise<void> {
  const res = await h.api('POST', `/assignments/${assignmentId}/complete`, { replicaId, result: null, ...extra });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`flow control (${store})`, () => {
    it('a key at rpm N hands out at most N in a minute; the rest wait (rate_limited) and go as the window moves', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'llm', maxConcurrency: 10 });
        assert.equal((await h.api('PUT', `/rate-limits/${KEY}`, { rpm: 3 })).status, 201);
        const tasks = [];
        for (let i = 0; i < 5; i++) tasks.push(await h.submit({ agent: 'llm', rateKey: KEY, input: i }));
        const replica = await h.register('llm', { maxConcurrency: 10 });
        const first = await h.lease(replica, 10);
        assert.deepEqual(first.map((l) => l.task.input), [0, 1, 2]);
        for (const l of first) await complete(h, replica, l.assignmentId);
        // Slots are free, the minute is not: nothing more.
        assert.deepEqual(await h.lease(replica, 10), []);
        const held = await h.task(tasks[3]!.id);
        assert.equal(held.waitingReason, 'rate_limited');
        assert.deepEqual([held.rateLimit?.key, held.rateLimit?.reason], [KEY, 'rpm']);
        const [state] = (await h.api('GET', '/rate-limits')).body.items;
        assert.deepEqual([state.used.requests, state.remaining.requests], [3, 0]);
        h.advance(30_000);
        assert.deepEqual(await h.lease(replica, 10), [], 'half a minute later the first three are still in the window');
        h.advance(30_000);
        const second = await h.lease(replica, 10);
        assert.deepEqual(second.map((l) => l.task.input), [3, 4]);
        // A task without a key is never held by one.
        const free = await h.submit({ agent: 'llm' });
        assert.equal((await h.lease(replica, 10))[0]?.task.id, free.id);
      });
    });

    it('a token estimate holds a task back until the reported usage corrects the window', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'llm', maxConcurrency: 10 });
        await h.api('PUT', `/rate-limits/${KEY}`, { tpm: 1_000 });
        const a = await h.submit({ agent: 'llm', rateKey: KEY, estimatedTokens: 800 });
        const b = await h.submit({ agent: 'llm', rateKey: KEY, estimatedTokens: 800 });
        const replica = await h.register('llm', { maxConcurrency: 10 });
        const [leased, ...none] = await h.lease(replica, 10);
        assert.equal(leased?.task.id, a.id);
        assert.deepEqual(none, []);
        assert.equal((await h.task(b.id)).rateLimit?.reason, 'tpm');
        // A used 150 tokens, not 800: B fits in the minute now.
        await complete(h, replica, leased.assignmentId, { usage: { model: 'gpt-4o', inputTokens: 100, outputTokens: 50, costUsd: 0.002 } });
        assert.equal((await h.lease(replica, 10))[0]?.task.id, b.id);
        assert.equal((await h.api('GET', '/rate-limits')).body.items[0].used.tokens, 950);
        // A bad report is refused whole and changes nothing.
        const c = await h.submit({ agent: 'llm' });
        const [lc] = await h.lease(replica, 10);
        assert.equal(lc?.task.id, c.id);
        const bad = await h.api('POST', `/assignments/${lc.assignmentId}/complete`, { replicaId: replica, result: 1, usage: { inputTokens: -1 } });
        assert.deepEqual([bad.status, bad.body.error.code], [400, 'VALIDATION_FAILED']);
        assert.equal((await h.task(c.id)).status, 'dispatched');
        const noKey = await h.api('POST', '/tasks', { agent: 'llm', estimatedTokens: 5 });
        assert.deepEqual([noKey.status, noKey.body.error.code], [400, 'VALIDATION_FAILED']);
      });
    });

    it('a 429 with retryAfterMs pauses the whole key and reschedules the task without spending an attempt', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'llm', maxConcurrency: 10 });
        await h.api('PUT', `/rate-limits/${KEY}`, { rpm: 100 });
        // One attempt only: a counted failure would dead-letter it.
        const first = await h.submit({ agent: 'llm', rateKey: KEY, maxAttempts: 1 });
        const replica = await h.register('llm', { maxConcurrency: 10 });
        const [leased] = await h.lease(replica, 1);
        assert.equal(leased?.task.id, first.id);
        const other = await h.submit({ agent: 'llm', rateKey: KEY });
        const failed = await h.api('POST', `/assignments/${leased.assignmentId}/fail`, {
          replicaId: replica, error: { message: '429 Too Many Requests' }, rateLimited: true, retryAfterMs: 30_000,
          usage: { inputTokens: 10, outputTokens: 0 },
        });
        assert.equal(failed.status, 200, JSON.stringify(failed.body));
        const view = await h.task(first.id);
        assert.deepEqual([view.status, view.attempt, view.error], ['pending', 0, null]);
        assert.equal(view.waitingReason, 'rate_limited');
        assert.deepEqual([view.rateLimit?.key, view.rateLimit?.reason], [KEY, 'paused']);
        const attempts = (await h.api('GET', `/tasks/${first.id}/assignment`)).body.attempts;
        assert.deepEqual(attempts.map((x: { status: string; error: { code: string } }) => [x.status, x.error.code]), [['failed', 'PROVIDER_RATE_LIMITED']]);
        assert.equal(view.usage?.inputTokens, 10, "the refused attempt's usage is kept");
        // The key is paused for every task of it, not only the one that met the 429.
        assert.equal((await h.task(other.id)).waitingReason, 'rate_limited');
        assert.deepEqual(await h.lease(replica, 10), []);
        if (store === 'postgres') {
          // Another node honours the pause too: its replica gets nothing of the key.
          const second = await node(h);
          try {
            const inject = async (url: string, payload: object) => JSON.parse((await second.app.inject({ method: 'POST', url: `/api/v1${url}`, headers: { authorization: `Bearer ${TOKEN}` }, payload })).body);
            const elsewhere = (await inject('/workers/register', { agent: 'llm', maxConcurrency: 10 })).replica.id as string;
            assert.deepEqual((await inject(`/workers/${elsewhere}/lease`, { max: 10, waitMs: 0 })).assignments, []);
          } finally {
            await second.close();
          }
        }
        assert.ok((await h.api('GET', '/rate-limits')).body.items[0].pausedUntil);
        h.advance(30_000);
        const again = await h.lease(replica, 10);
        assert.deepEqual(again.map((l) => l.task.id).sort(), [first.id, other.id].sort());
        assert.equal(again.find((l) => l.task.id === first.id)?.task.attempt, 1, 'the same attempt number: none was spent');
        // retryAfterMs without rateLimited is refused.
        const odd = await h.api('POST', `/assignments/${again[0]!.assignmentId}/fail`, { replicaId: replica, error: { message: 'x' }, retryAfterMs: 5 });
        assert.equal(odd.status, 400);
      });
    });

    it("an operator's assign takes its request from the key's minute: counted when it goes, refused (rate_limited) when the key has no room", async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'llm', maxConcurrency: 10 });
        await h.api('PUT', `/rate-limits/${KEY}`, { rpm: 1 });
        const replica = await h.register('llm', { maxConcurrency: 10 });
        // Delayed: no pass hands them out; only the operator's assign does.
        const first = await h.submit({ agent: 'llm', rateKey: KEY, delayMs: 3_600_000 });
        const second = await h.submit({ agent: 'llm', rateKey: KEY, delayMs: 3_600_000 });
        const { leased } = await waitingLease(h, replica);
        const assigned = await h.api('POST', `/tasks/${first.id}/assign`, { agent: 'llm' });
        assert.equal(assigned.status, 200, JSON.stringify(assigned.body));
        assert.equal((await leased)[0]?.task.id, first.id);
        assert.equal((await h.api('GET', '/rate-limits')).body.items[0].used.requests, 1, "the assign's request is in the key's minute");
        // The minute is full: a task of the key that could go now waits for it.
        const queued = await h.submit({ agent: 'llm', rateKey: KEY });
        assert.deepEqual(await h.lease(replica, 10), []);
        assert.equal((await h.task(queued.id)).waitingReason, 'rate_limited');
        // And the operator's assign does not overrun it.
        await waitingLease(h, replica);
        const refused = await h.api('POST', `/tasks/${second.id}/assign`, { agent: 'llm' });
        assert.deepEqual([refused.status, refused.body.error.code, refused.body.error.details?.reason], [409, 'NOT_ASSIGNABLE', 'rate_limited'], JSON.stringify(refused.body));
        assert.match(refused.body.error.message, /openai:gpt-4o.*rpm/);
        assert.equal((await h.task(second.id)).status, 'pending');
        assert.equal((await h.api('GET', '/rate-limits')).body.items[0].used.requests, 1, 'a refused assign takes nothing');
      });
    });

    it('a late 429 report (the attempt ended meanwhile) is refused and pauses nothing', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'llm', maxConcurrency: 10 });
        const task = await h.submit({ agent: 'llm', rateKey: KEY });
        const replica = await h.register('llm', { maxConcurrency: 10 });
        const [leased] = await h.lease(replica, 1);
        assert.equal(leased?.task.id, task.id);
        // The operator fails the task for good: the attempt is over when the worker's 429 arrives.
        assert.equal((await h.api('POST', `/tasks/${task.id}/fail`, { reason: 'not needed' })).status, 200);
        const late = await h.api('POST', `/assignments/${leased.assignmentId}/fail`, {
          replicaId: replica, error: { message: '429' }, rateLimited: true, retryAfterMs: 30_000,
        });
        assert.equal(late.status, 409, JSON.stringify(late.body));
        assert.deepEqual((await h.api('GET', '/rate-limits')).body.items, [], 'no pause (not even a pause-only row) was written');
        const other = await h.submit({ agent: 'llm', rateKey: KEY });
        assert.equal((await h.lease(replica, 1))[0]?.task.id, other.id, 'the key is not paused');
      });
    });

    it('a node that wrote the pause and died before the rate_limited transition leaves the key paused and the attempt live: a retried report or the lease running out ends it, and the pause holds', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'llm', maxConcurrency: 10 });
        const a = await h.submit({ agent: 'llm', rateKey: KEY });
        const b = await h.submit({ agent: 'llm', rateKey: KEY });
        const replica = await h.register('llm', { maxConcurrency: 10 });
        const leased = await h.lease(replica, 2);
        assert.equal(leased.length, 2);
        const la = leased.find((l) => l.task.id === a.id)!;
        // The first of WorkerService.fail's two writes, as a node that then died left it.
        // Longer than a lease, so that the pause still holds when the other attempt's lease has run out.
        const until = h.now() + 4 * h.config.leaseMs;
        await h.store.rateLimitPause({ key: KEY, until, at: h.now() });
        assert.deepEqual([(await h.task(a.id)).status, (await h.task(a.id)).attempt], ['dispatched', 1]);
        // The worker retries its report (to this node, or another): it ends the attempt as a 429.
        const retried = await h.api('POST', `/assignments/${la.assignmentId}/fail`, { replicaId: replica, error: { message: '429' }, rateLimited: true, retryAfterMs: 10_000 });
        assert.equal(retried.status, 200, JSON.stringify(retried.body));
        const view = await h.task(a.id);
        assert.deepEqual([view.status, view.attempt, view.waitingReason], ['pending', 0, 'rate_limited']);
        assert.equal(Date.parse(view.rateLimit!.until), until, 'a shorter second pause does not shorten the first');
        // The other attempt's report never comes: its lease runs out, and the task waits for the pause too.
        h.advance(h.config.leaseMs + 1);
        await h.engine.reaper.sweep();
        assert.equal((await h.task(b.id)).status, 'pending');
        assert.equal((await h.task(b.id)).waitingReason, 'rate_limited');
        // (The silent worker's replica is lost by now: a fresh one.)
        const fresh = await h.register('llm', { maxConcurrency: 10 });
        assert.deepEqual(await h.lease(fresh, 10), [], 'nothing of the key goes while it is paused');
        h.advance(until - h.now());
        assert.deepEqual((await h.lease(fresh, 10)).map((l) => l.task.id).sort(), [a.id, b.id].sort());
      });
    });

    it("a key's room is not spent on tasks no replica can take now: another agent's tasks of the key go", async (t) => {
      await withHarness(t, store, async (h) => {
        // Two agents share one provider quota; the first is at its cap, its tasks first in line.
        await h.agent({ name: 'busy', maxInFlight: 1 });
        await h.agent({ name: 'free', maxConcurrency: 10 });
        await h.api('PUT', `/rate-limits/${KEY}`, { rpm: 3 });
        for (let i = 0; i < 3; i++) await h.submit({ agent: 'busy', rateKey: KEY });
        const free = [await h.submit({ agent: 'free', rateKey: KEY }), await h.submit({ agent: 'free', rateKey: KEY })];
        const b1 = await h.register('busy', { maxConcurrency: 5 });
        assert.equal((await h.lease(b1, 5)).length, 1, 'the agent cap: one of three; the minute: one of three');
        // The busy replica keeps asking (a long poll), so its agent's tasks are in every pass.
        const { leased } = await waitingLease(h, b1);
        leased.catch(() => {});
        const f1 = await h.register('free', { maxConcurrency: 10 });
        const got = await h.lease(f1, 10);
        assert.deepEqual(got.map((l) => l.task.id).sort(), free.map((x) => x.id).sort(), 'the two places left in the minute go to the tasks that can run');
      });
    });

    it('the agent cap and the fleet cap hold across replicas (and across two nodes leasing at once on PostgreSQL)', async (t) => {
      await withHarness(t, store, async (h) => {
        // The second node: another engine and app on the same database (PostgreSQL); SQLite is single-node.
        const second = store === 'postgres' ? await node(h) : null;
        t.after(async () => second?.close());
        const lease = async (on: 'a' | 'b', replicaId: string, max: number) => {
          if (on === 'a' || second === null) return h.lease(replicaId, max);
          const res = await second.app.inject({ method: 'POST', url: `/api/v1/workers/${replicaId}/lease`, headers: { authorization: `Bearer ${TOKEN}` }, payload: { max, waitMs: 0 } });
          assert.equal(res.statusCode, 200, res.body);
          return JSON.parse(res.body).assignments as Awaited<ReturnType<Harness['lease']>>;
        };
        const register = async (on: 'a' | 'b', agent: string) => {
          if (on === 'a' || second === null) return h.register(agent, { maxConcurrency: 5 });
          const res = await second.app.inject({ method: 'POST', url: '/api/v1/workers/register', headers: { authorization: `Bearer ${TOKEN}` }, payload: { agent, maxConcurrency: 5 } });
          return JSON.parse(res.body).replica.id as string;
        };
        await h.agent({ name: 'capped', maxInFlight: 2 });
        await h.agent({ name: 'other' });
        assert.equal((await h.api('GET', '/agents/capped')).body.maxInFlight, 2);
        const cappedTasks = [];
        for (let i = 0; i < 4; i++) cappedTasks.push(await h.submit({ agent: 'capped' }));
        const [c1, c2] = [await register('a', 'capped'), await register('b', 'capped')];
        const leased = (await Promise.all([lease('a', c1, 5), lease('b', c2, 5)])).flat();
        assert.equal(leased.length, 2, 'two replicas of five slots each, the agent capped at 2');
        const pendingCapped = cappedTasks.find((task) => !leased.some((l) => l.task.id === task.id))!;
        assert.equal((await h.task(pendingCapped.id)).waitingReason, 'agent_cap');
        // The fleet cap (4, both nodes): the other agent gets what is left of it.
        for (let i = 0; i < 5; i++) await h.submit({ agent: 'other' });
        const [o1, o2] = [await register('a', 'other'), await register('b', 'other')];
        const others = (await Promise.all([lease('a', o1, 5), lease('b', o2, 5)])).flat();
        assert.equal(others.length, 2, 'the fleet holds 4 live assignments at most');
        const pendingOther = (await h.api('GET', '/tasks?agent=other&status=pending')).body.items[0];
        assert.equal((await h.task(pendingOther.id)).waitingReason, 'fleet_cap');
        // One ends: one more of the capped agent may run (agent 2 of 2, fleet 4 of 4).
        const done = leased[0]!;
        await complete(h, (await h.task(done.task.id)).assignment!.replicaId, done.assignmentId);
        const next = [...await lease('a', c1, 5), ...await lease('b', c2, 5), ...await lease('a', o1, 5)];
        assert.equal(next.length, 1);
        assert.equal(next[0]!.task.agent, 'capped');
      }, { config: { maxConcurrentTasks: 4 } });
    });
  });
}

/** A long-poll lease that is waiting (its pass has ended), and what it will receive (as in operator-actions.test.ts). */
async function waitingLease(h: Harness, replica: string): Promise<{ leased: Promise<Awaited<ReturnType<Harness['lease']>>> }> {
  const leased = h.lease(replica, 1, 10_000);
  for (const until = Date.now() + 10_000; !h.engine.dispatcher.waitingReplicaIds().includes(replica);) {
    assert.ok(Date.now() < until, 'the lease request waits');
    await new Promise((r) => setTimeout(r, 2));
  }
  await h.engine.dispatcher.idle();
  return { leased };
}

/** Another node on the harness's PostgreSQL schema: its own store (pool), engine and app. */
async function node(h: Harness) {
  const log = pino({ level: 'silent' });
  const store = await openStore({ url: h.schema!.url });
  const engine = new Engine({ store, config: h.config, log });
  await engine.start();
  const app = await buildApp({ engine, log });
  return {
    app,
    async close() {
      await app.close();
      await engine.stop();
      await store.close();
    },
  };
}
