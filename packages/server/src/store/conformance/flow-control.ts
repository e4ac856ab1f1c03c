// Conformance: flow control and usage (issue 16). Rate limits declared, replaced (pause kept)
// and deleted; a take admits the prefix the window has room for and logs it; a give-back
// returns it; the window slides; a pause holds every take until it ends, a later pause wins;
// the log is pruned. Two peers taking one key at once never admit more than its limit (on a
// multi-node store; the same store twice elsewhere). The fleet and agent caps guard claims
// (conflicts fleet_cap / agent_cap, nothing written); a rate-limited attempt frees its slot,
// gives its attempt back and is pending again at the pause's end. Usage stored per attempt
// (a repeated report replaces the first), corrects its rate-log row, summed per agent, root,
// day and task within [since, until).

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideRateLimited } from '../../core/task-machine.ts';
import { RATE_WINDOW_MS } from '../../core/rate-limits.ts';
import type { UsageRecord } from '../../core/usage.ts';
import { T0, LEASE_MS, apply, createTask, dispatch, dispatchTransition, ensureAgents, getAssignment, getReplica, getTask, mustApply, nextId, registerReplica, run, storeTest, type OpenStore } from './harness.ts';

const KEY = 'openai:gpt-4o';
const req = (n: number, tokens = 0) => Array.from({ length: n }, () => ({ holder: nextId('asg'), tokens }));

function usage(over: Partial<UsageRecord> = {}): UsageRecord {
  return { assignmentId: nextId('asg'), taskId: 't1', rootId: 'r1', agent: 'alpha', model: 'gpt-4o', inputTokens: 100, outputTokens: 20, costUsd: 0.01, at: T0, ...over };
}

export function flowControlTests(open: OpenStore): void {
  describe('flow control: rate limits, caps, usage', () => {
    storeTest(open, 'a rate limit is declared, replaced with its pause kept, listed with its window, and deleted', async ({ store }) => {
      assert.deepEqual(await store.rateLimitPut({ key: KEY, rpm: 10, tpm: null, source: 'config', at: T0 }), { created: true });
      await store.rateLimitPause({ key: KEY, until: T0 + 5_000, at: T0 });
      assert.deepEqual(await store.rateLimitPut({ key: KEY, rpm: 20, tpm: 1_000, source: 'api', at: T0 + 1 }), { created: false });
      await store.rateLimitPut({ key: 'anthropic:claude', rpm: null, tpm: 500, source: 'api', at: T0 });
      const [a, b] = await store.rateLimitList({ now: T0 + 2 });
      assert.deepEqual([a!.key, b!.key], ['anthropic:claude', KEY]);
      assert.deepEqual({ ...b!, window: undefined }, { key: KEY, rpm: 20, tpm: 1_000, source: 'api', pausedUntil: T0 + 5_000, updatedAt: T0 + 1, window: undefined });
      assert.deepEqual(b!.window, { requests: 0, tokens: 0, oldestAt: null });
      assert.deepEqual((await store.rateLimitList({ keys: [KEY, 'nothing'], now: T0 })).map((s) => s.key), [KEY]);
      assert.deepEqual(await store.rateLimitDelete({ key: KEY }), { deleted: true });
      assert.deepEqual(await store.rateLimitDelete({ key: KEY }), { deleted: false });
      assert.deepEqual((await store.rateLimitList({ now: T0 })).map((s) => s.key), ['anthropic:claude']);
    });

    storeTest(open, 'a take admits the prefix the minute has room for (requests and tokens), logs it, and the window slides', async ({ store }) => {
      await store.rateLimitPut({ key: KEY, rpm: 3, tpm: 1_000, source: 'api', at: T0 });
      assert.deepEqual(await store.rateLimitTake({ key: KEY, now: T0, requests: req(2, 400) }), { taken: 2 });
      // 800 tokens used: a 300-token request does not fit, nor anything after it (FIFO).
      assert.deepEqual(await store.rateLimitTake({ key: KEY, now: T0 + 10, requests: [...req(1, 300), ...req(1, 100)] }), { taken: 0 });
      assert.deepEqual(await store.rateLimitTake({ key: KEY, now: T0 + 20, requests: req(2, 100) }), { taken: 1 });
      const [s] = await store.rateLimitList({ now: T0 + 30 });
      assert.deepEqual(s!.window, { requests: 3, tokens: 900, oldestAt: T0 });
      // rpm 3 reached; the first two leave the window a minute after T0.
      assert.deepEqual(await store.rateLimitTake({ key: KEY, now: T0 + RATE_WINDOW_MS - 1, requests: req(1) }), { taken: 0 });
      assert.deepEqual(await store.rateLimitTake({ key: KEY, now: T0 + RATE_WINDOW_MS, requests: req(3, 100) }), { taken: 2 });
      // A key without a limit admits everything and logs nothing.
      assert.deepEqual(await store.rateLimitTake({ key: 'free', now: T0, requests: req(5) }), { taken: 5 });
      assert.deepEqual(await store.rateLimitList({ keys: ['free'], now: T0 }), []);
    });

    storeTest(open, 'a give-back frees its requests; the log is pruned past the window', async ({ store }) => {
      await store.rateLimitPut({ key: KEY, rpm: 2, tpm: null, source: 'api', at: T0 });
      const two = req(2);
      assert.equal((await store.rateLimitTake({ key: KEY, now: T0, requests: two })).taken, 2);
      await store.rateLimitGiveBack({ holders: [two[0]!.holder] });
      assert.equal((await store.rateLimitTake({ key: KEY, now: T0 + 1, requests: req(2) })).taken, 1);
      assert.equal(await store.rateLogPrune({ before: T0 + 1, limit: 10 }), 1);
      assert.equal(await store.rateLogPrune({ before: T0 + 1, limit: 10 }), 0);
      assert.equal((await store.rateLimitList({ now: T0 + 2 }))[0]!.window.requests, 1);
    });

    storeTest(open, 'a pause holds every take until it ends; a later pause wins, an earlier one does not shorten it; an undeclared key can be paused', async ({ store }) => {
      await store.rateLimitPut({ key: KEY, rpm: 100, tpm: null, source: 'api', at: T0 });
      await store.rateLimitPause({ key: KEY, until: T0 + 2_000, at: T0 });
      await store.rateLimitPause({ key: KEY, until: T0 + 1_000, at: T0 });
      assert.equal((await store.rateLimitTake({ key: KEY, now: T0 + 1_999, requests: req(1) })).taken, 0);
      assert.equal((await store.rateLimitTake({ key: KEY, now: T0 + 2_000, requests: req(1) })).taken, 1);
      await store.rateLimitPause({ key: 'undeclared', until: T0 + 500, at: T0 });
      const [s] = await store.rateLimitList({ keys: ['undeclared'], now: T0 });
      assert.deepEqual([s!.source, s!.rpm, s!.tpm, s!.pausedUntil], ['pause', null, null, T0 + 500]);
      assert.equal((await store.rateLimitTake({ key: 'undeclared', now: T0 + 1, requests: req(1) })).taken, 0);
      assert.equal((await store.rateLimitTake({ key: 'undeclared', now: T0 + 500, requests: req(1) })).taken, 1);
    });

    storeTest(open, 'two nodes taking one key at once never admit more than its limit', async ({ store, peer }) => {
      const other = peer ? await peer() : store;
      // 40 concurrent takes of 1 (20 per node) for 25 requests: exactly 25 go, whatever the
      // interleaving. Several rounds, each on a key of its own: one round without the key's lock
      // over-admits only about every other time (each node's takes share a few batches).
      for (let round = 0; round < 6; round++) {
        const key = `${KEY}-${round}`;
        await store.rateLimitPut({ key, rpm: 25, tpm: null, source: 'api', at: T0 });
        const takes = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? store : other).rateLimitTake({ key, now: T0 + i, requests: req(1) })));
        assert.equal(takes.reduce((n, t) => n + t.taken, 0), 25, `round ${round}`);
        assert.equal((await store.rateLimitList({ keys: [key], now: T0 + 100 }))[0]!.window.requests, 25);
      }
    });

    storeTest(open, 'the fleet cap and the agent cap guard a claim: a full cap is a conflict that writes nothing', async ({ store }) => {
      await ensureAgents(store, ['alpha', 'beta']);
      const a1 = await registerReplica(store, { agent: 'alpha', maxConcurrency: 5 });
      const a2 = await registerReplica(store, { agent: 'alpha', maxConcurrency: 5 });
      const b1 = await registerReplica(store, { agent: 'beta', maxConcurrency: 5 });
      const caps = (agent: string, limit: number | null, fleet: number | null) => ({ fleet, agent: limit === null ? null : { name: agent, limit } });
      const claim = async (replica: typeof a1, c: ReturnType<typeof caps>) => {
        const task = await createTask(store, { agent: replica.agent });
        const t = dispatchTransition(task, replica);
        return apply(store, { ...t, slotAcquire: { ...t.slotAcquire!, caps: c } });
      };
      // Agent alpha at most 2 across its two replicas.
      assert.equal((await claim(a1, caps('alpha', 2, null))).ok, true);
      assert.equal((await claim(a2, caps('alpha', 2, null))).ok, true);
      const refused = await claim(a2, caps('alpha', 2, null));
      assert.deepEqual(refused, { ok: false, conflict: 'agent_cap' });
      assert.equal((await getReplica(store, a2.id)).inFlight, 1, 'the refused claim took no slot');
      // Fleet at most 3: beta takes the third, then the fleet is full for everyone.
      assert.equal((await claim(b1, caps('beta', null, 3))).ok, true);
      assert.deepEqual(await claim(b1, caps('beta', null, 3)), { ok: false, conflict: 'fleet_cap' });
      // Without caps the same claim goes (a cap is a guard the claim carries, nothing more).
      const free = await createTask(store, { agent: 'beta' });
      await mustApply(store, dispatchTransition(free, b1));
      // Several capped claims in one call: each is counted against the ones before it.
      const tasks = await Promise.all([1, 2, 3].map(() => createTask(store, { agent: 'beta' })));
      const results = await store.taskTransition({ transitions: tasks.map((task) => { const t = dispatchTransition(task, b1); return { ...t, slotAcquire: { ...t.slotAcquire!, caps: caps('beta', 4, null) } }; }) });
      assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.conflict)), ['ok', 'ok', 'agent_cap']);
    });

    storeTest(open, 'two nodes claiming under one cap at once never exceed it', async ({ store, peer }) => {
      const other = peer ? await peer() : store;
      await ensureAgents(store, ['alpha']);
      const replicas = [await registerReplica(store, { agent: 'alpha', maxConcurrency: 20 }), await registerReplica(store, { agent: 'alpha', maxConcurrency: 20 })];
      const tasks = await Promise.all(Array.from({ length: 24 }, () => createTask(store, { agent: 'alpha' })));
      // 24 claims at once, half through each node, each node on its own replica (so that no
      // replica's row lock orders them), the agent capped at 5 and the fleet at 7.
      const results = await Promise.all(tasks.map((task, i) => {
        const t = dispatchTransition(task, replicas[i % 2]!);
        return (i % 2 === 0 ? store : other).taskTransition({ transitions: [{ ...t, slotAcquire: { ...t.slotAcquire!, caps: { fleet: 7, agent: { name: 'alpha', limit: 5 } } } }] });
      }));
      assert.equal(results.flat().filter((r) => r.ok).length, 5);
      const inFlight = (await Promise.all(replicas.map((r) => getReplica(store, r.id)))).reduce((n, r) => n + r.inFlight, 0);
      assert.equal(inFlight, 5);
    });

    storeTest(open, 'a rate-limited attempt frees its slot, gives its attempt back and is pending again at the pause\'s end', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const replica = await registerReplica(store, { agent: 'alpha' });
      const task = await createTask(store, { agent: 'alpha', rateKey: KEY, estimatedTokens: 50 });
      assert.deepEqual([task.rateKey, task.estimatedTokens], [KEY, 50]);
      const live = await run(store, task, replica);
      assert.equal(live.task.attempt, 1);
      const events = await mustApply(store, decideRateLimited({ task: live.task, assignment: live.assignment, until: T0 + 30_000, message: '429 from provider', now: T0 + 10 }));
      assert.deepEqual(events.map((e) => e.type), ['task.rate_limited']);
      const after = await getTask(store, task.id);
      assert.deepEqual([after.status, after.attempt, after.runAt, after.assignmentId], ['pending', 0, T0 + 30_000, null]);
      const a = await getAssignment(store, live.assignment.id);
      assert.deepEqual([a.status, a.error?.code], ['failed', 'PROVIDER_RATE_LIMITED']);
      assert.equal((await getReplica(store, replica.id)).inFlight, 0);
      // Not counted against the agent's statistics.
      assert.equal((await store.agentStats({ agent: 'alpha', sample: 10 })).attemptsFailed, 0);
      // The next attempt carries the same number.
      const again = await dispatch(store, after, replica, { now: T0 + 30_000 });
      assert.equal(again.assignment.attempt, 1);
      void LEASE_MS;
    });

    storeTest(open, 'usage is stored per attempt (a repeated report replaces it), corrects the rate log, and is summed per agent, root, day and task', async ({ store }) => {
      await store.rateLimitPut({ key: KEY, rpm: null, tpm: 1_000, source: 'api', at: T0 });
      const holder = req(1, 900)[0]!;
      assert.equal((await store.rateLimitTake({ key: KEY, now: T0, requests: [holder] })).taken, 1);
      const day = 86_400_000;
      await store.usageRecord({ usage: usage({ assignmentId: holder.holder, inputTokens: 999, outputTokens: 1 }) });
      // Reported 150 in all, not the estimated 900: the window has room again.
      await store.usageRecord({ usage: usage({ assignmentId: holder.holder, inputTokens: 100, outputTokens: 50, costUsd: 0.5 }) });
      assert.equal((await store.rateLimitList({ now: T0 + 1 }))[0]!.window.tokens, 150);
      await store.usageRecord({ usage: usage({ taskId: 't2', rootId: 'r1', agent: 'beta', inputTokens: 10, outputTokens: 1, costUsd: 0.25, at: T0 + day }) });
      await store.usageRecord({ usage: usage({ taskId: 't3', rootId: 'r2', agent: 'beta', model: null, inputTokens: 1, outputTokens: 1, costUsd: 0, at: T0 + 2 * day }) });
      const by = (groupBy: 'agent' | 'root' | 'day' | 'task', since: number | null = null, until: number | null = null, taskId?: string) =>
        store.usageSummary({ groupBy, since, until, ...(taskId === undefined ? {} : { taskId }) });
      assert.deepEqual(await by('agent'), [
        { key: 'alpha', attempts: 1, inputTokens: 100, outputTokens: 50, costUsd: 0.5 },
        { key: 'beta', attempts: 2, inputTokens: 11, outputTokens: 2, costUsd: 0.25 },
      ]);
      assert.deepEqual((await by('root')).map((s) => [s.key, s.attempts, s.inputTokens]), [['r1', 2, 110], ['r2', 1, 1]]);
      const days = await by('day');
      assert.deepEqual(days.map((s) => s.key), ['2023-11-14', '2023-11-15', '2023-11-16']);
      assert.deepEqual((await by('agent', T0 + day, T0 + 2 * day)).map((s) => [s.key, s.attempts]), [['beta', 1]]);
      assert.deepEqual((await by('task', null, null, 't1')).map((s) => [s.key, s.inputTokens]), [['t1', 100]]);
      assert.deepEqual(await by('task', null, null, 'none'), []);
    });
  });
}
