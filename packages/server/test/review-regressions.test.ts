// Where the parts of issue 14 meet (found by a second reader; each test failed before its fix),
// on both stores: a pause stops direct hand-offs; a cancellation requested while a handler
// suspends is not lost; an attempt's token answers its own children only; an operator's assign
// respects pauses and health; an operator's fail does not count against the agent; a requeue
// starts afresh; a replica's health starts again when it registers again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideCancel } from '../src/core/task-machine.ts';
import type { Store } from '../src/store/store.ts';
import { holdStoreCall, withHarness, type Harness } from './helpers/harness.ts';

const STORES = ['sqlite', 'postgres'] as const;

async function openLease(h: Harness, replica: string, waitMs = 3_000) {
  const leased = h.lease(replica, 1, waitMs);
  while (!h.engine.dispatcher.waitingReplicaIds().includes(replica)) await new Promise((r) => setTimeout(r, 2));
  await h.engine.dispatcher.idle();
  return leased;
}

for (const store of STORES) describe(`where the parts meet (${store})`, () => {
  it('pausing an agent stops a direct hand-off to its waiting replica', async (t) => {
    await withHarness(t, store, async (h) => {
      await h.agent({ name: 'quick' });
      const replica = await h.register('quick');
      const leased = await openLease(h, replica, 500);
      assert.equal((await h.api('POST', '/agents/quick/pause')).status, 200);
      const task = await h.submit({ agent: 'quick' });
      assert.equal(task.status, 'pending');
      assert.deepEqual(await leased, []);
    });
  });

  it('a cancellation requested between a suspension\'s read and its commit ends the task', async (t) => {
    await withHarness(t, store, async (h) => {
      await h.agent({ name: 'planner', maxConcurrency: 1, maxAttempts: 1 });
      const replica = await h.register('planner');
      const task = await h.submit({ agent: 'planner' });
      const [leased] = await h.lease(replica);
      await h.api('POST', `/assignments/${leased!.assignmentId}/start`, { replicaId: replica });
      await h.engine.workers.flushStarts();
      const s = h.engine.ctx.store as Store;
      const hold = holdStoreCall(s, 'taskTransition');
      const ask = h.api('POST', `/assignments/${leased!.assignmentId}/ask`, { replicaId: replica, prompt: 'ok?' });
      await hold.inside;
      // The cancel request commits first, behind the ask's back (straight to the store).
      const running = (await s.taskGet({ id: task.id }))!;
      const request = decideCancel({ task: running, assignment: await s.assignmentGet({ id: running.assignmentId! }), now: h.now() })!;
      const [applied] = await Object.getPrototypeOf(s).taskTransition.call(s, { transitions: [request] });
      assert.equal(applied.ok, true);
      hold.release();
      assert.equal((await ask).status, 200);
      const after = await h.task(task.id);
      assert.deepEqual([after.status, after.inputRequest], ['cancelled', null]);
    });
  });

  it("an attempt's token answers the requests of its own children only", async (t) => {
    await withHarness(t, store, async (h) => {
      await h.agent({ name: 'planner', maxConcurrency: 3 });
      const replica = await h.register('planner', { maxConcurrency: 3 });
      const root = await h.submit({ agent: 'planner' });
      const [r] = await h.lease(replica);
      const child = await h.submit({ agent: 'planner', parentId: root.id });
      const [c] = await h.lease(replica);
      const grandchild = await h.submit({ agent: 'planner', parentId: child.id });
      const [g] = await h.lease(replica);
      const token = async (assignmentId: string) => (await h.api('POST', `/assignments/${assignmentId}/token`, { replicaId: replica })).body.token as string;
      const childToken = await token(c!.assignmentId);
      assert.equal((await h.api('POST', `/assignments/${r!.assignmentId}/ask`, { replicaId: replica, prompt: 'approve the spend?' })).status, 200);
      assert.equal((await h.api('POST', `/assignments/${g!.assignmentId}/ask`, { replicaId: replica, prompt: 'which file?' })).status, 200);
      const up = await h.api('POST', `/tasks/${root.id}/input`, { input: 'yes' }, { authorization: `Bearer ${childToken}` });
      assert.deepEqual([up.status, up.body.error?.code], [403, 'FORBIDDEN']);
      assert.equal((await h.task(root.id)).status, 'input_required');
      const down = await h.api('POST', `/tasks/${grandchild.id}/input`, { input: 'a.txt' }, { authorization: `Bearer ${childToken}` });
      assert.equal(down.status, 200);
    }, { config: { allowEqualLevel: true } });
  });

  it("an operator's assign respects a pause and a replica's health", async (t) => {
    await withHarness(t, store, async (h) => {
      await h.agent({ name: 'quick' });
      const replica = await h.register('quick');
      const task = await h.submit({ agent: 'quick' });
      assert.equal((await h.api('POST', `/workers/${replica}/heartbeat`, { health: 'unhealthy' })).status, 200);
      const leased = await openLease(h, replica, 500);
      const sick = await h.api('POST', `/tasks/${task.id}/assign`, {});
      assert.deepEqual([sick.status, sick.body.error?.details?.reason], [409, 'replica_unhealthy']);
      assert.equal((await h.api('POST', '/agents/quick/pause')).status, 200);
      const paused = await h.api('POST', `/tasks/${task.id}/assign`, {});
      assert.deepEqual([paused.status, paused.body.error?.details?.reason], [409, 'agent_paused']);
      assert.deepEqual(await leased, []);
    });
  });

  it("an operator's fail is not counted against the agent; a requeue starts afresh; health starts again on registration", async (t) => {
    await withHarness(t, store, async (h) => {
      await h.agent({ name: 'planner', maxConcurrency: 2, maxAttempts: 1 });
      const replica = await h.register('planner', { maxConcurrency: 2 });
      const parent = await h.submit({ agent: 'planner' });
      const [p] = await h.lease(replica);
      const child = await h.submit({ agent: 'planner', parentId: parent.id });
      const [c] = await h.lease(replica);
      assert.equal((await h.api('POST', `/tasks/${child.id}/fail`, { reason: 'not needed' })).status, 200);
      const stats = (await h.api('GET', '/agents/planner/stats')).body;
      assert.equal(stats.attempts.failed, 0);
      // The parent waits for the failed child and is resumed with it; then it fails and is requeued.
      assert.equal((await h.api('POST', `/assignments/${p!.assignmentId}/wait`, { replicaId: replica, children: [child.id] })).status, 200);
      await h.engine.resumer.sweep();
      const [again] = await h.lease(replica);
      assert.equal(again?.task.resumed?.reason, 'children');
      await h.api('POST', `/assignments/${again!.assignmentId}/fail`, { replicaId: replica, error: { message: 'x' }, retryable: false });
      assert.equal((await h.api('POST', `/tasks/${parent.id}/retry`)).status, 200);
      const [fresh] = await h.lease(replica);
      assert.equal(fresh?.task.resumed, null);
      void c;
      await h.api('POST', `/workers/${replica}/heartbeat`, { health: 'unhealthy' });
      assert.equal(await h.register('planner', { replicaId: replica, maxConcurrency: 2 }), replica);
      assert.equal((await h.api('GET', '/agents/planner/replicas')).body.items[0].health, 'healthy');
    }, { config: { allowEqualLevel: true } });
  });
});
