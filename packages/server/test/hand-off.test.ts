// Direct hand-off (docs/decisions.md 42): a task submitted while a replica waits with a free
// slot and the queue is empty is created and dispatched in one commit and pushed right after;
// otherwise it goes through the queue as before. On both stores.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { harness, holdStoreCall, withHarness, type Harness } from './helpers/harness.ts';

/** A long-poll lease that is waiting, after the pass that saw it has ended. */
async function waitingLease(h: Harness, replica: string, max = 1): Promise<{ leased: Promise<Array<{ assignmentId: string; task: { id: string } }>> }> {
  const leased = h.lease(replica, max, 10_000);
  while (!h.engine.dispatcher.waitingReplicaIds().includes(replica)) await new Promise((r) => setTimeout(r, 2));
  await h.engine.dispatcher.idle();
  return { leased };
}

function holdInside(h: Harness, method: 'taskCandidates' | 'taskGetMany'): { inside: Promise<void>; release: () => void } {
  return holdStoreCall(h.engine.ctx.store, method);
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`direct hand-off (${store})`, () => {
    it('creates and dispatches a task for a waiting replica in one commit, and pushes it', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'quick' });
        const replica = await h.register('quick');
        const { leased } = await waitingLease(h, replica);
        const passes = h.engine.dispatcher.passes;
        // One commit for both is the store's part (conformance: hand-off.ts); here, no pass ran.
        const task = await h.submit({ agent: 'quick' });
        assert.equal(task.status, 'dispatched', 'the answer shows the task as it is now');
        const [got] = await leased;
        assert.equal(got?.task.id, task.id);
        assert.equal(h.engine.dispatcher.handOffs, 1);
        assert.equal(h.engine.dispatcher.passes, passes, 'no dispatch pass was needed');
        const events = (await h.api('GET', `/tasks/${task.id}/events`)).body.items.map((e: { type: string }) => e.type);
        assert.deepEqual(events, ['task.created', 'task.dispatched']);
      });
    });

    it('goes through the queue when the replica is full, and a later pass dispatches it in order', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'quick' });
        const replica = await h.register('quick', { maxConcurrency: 1 });
        const first = await waitingLease(h, replica);
        const a = await h.submit({ agent: 'quick' });
        const [held] = await first.leased;
        assert.equal(held?.task.id, a.id);
        const b = await h.submit({ agent: 'quick' });
        const c = await h.submit({ agent: 'quick' });
        assert.equal(b.status, 'pending');
        assert.equal(c.status, 'pending');
        assert.equal((await h.api('POST', `/assignments/${held!.assignmentId}/complete`, { replicaId: replica, result: null })).status, 200);
        // The freed slot goes to the oldest pending task, not to whatever is submitted next.
        const next = await h.lease(replica, 1, 5_000);
        assert.equal(next[0]?.task.id, b.id);
        assert.equal(h.engine.dispatcher.handOffs, 1);
      });
    });

    it('a submit made while a pass reads the queue waits for the pass, and is handed off', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'quick' });
        const replica = await h.register('quick', { maxConcurrency: 5 });
        const { leased } = await waitingLease(h, replica, 5);
        // Hold the next pass inside its read of the queue (the store itself is untouched).
        const { inside, release } = holdInside(h, 'taskCandidates');
        let submitted: Promise<Awaited<ReturnType<typeof h.submit>>>;
        try {
          h.engine.dispatcher.wake();
          await inside;
          submitted = h.submit({ agent: 'quick' });
          for (let i = 0; i < 1_000 && h.engine.dispatcher.handOffsWaiting === 0; i++) await new Promise((r) => setTimeout(r, 2));
          assert.equal(h.engine.dispatcher.handOffsWaiting, 1, 'the submit waits for the pass to decide');
          // Had it been written during the pass, it would be pending, and a work-wake: that pass
          // would leave no slots, and each submit of a steady stream would wait for a pass.
          assert.equal((await h.api('GET', '/tasks?agent=quick')).body.items.length, 0, 'nothing is written while the pass decides');
        } finally {
          release();
        }
        const task = await submitted;
        assert.equal(task.status, 'dispatched');
        assert.equal(h.engine.dispatcher.handOffs, 1);
        const [got] = await leased;
        assert.equal(got?.task.id, task.id);
      });
    });

    it('a long-poll a pass is answering is not a hand-off slot, even before its answer leaves', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'quick' });
        const replica = await h.register('quick', { maxConcurrency: 10 });
        const queued = [await h.submit({ agent: 'quick' }), await h.submit({ agent: 'quick' })];
        // Hold the pass between its claims and its answer to the long-poll (its payload read).
        const { inside, release } = holdInside(h, 'taskGetMany');
        let later;
        let leased;
        try {
          leased = h.lease(replica, 10, 5_000);
          await inside;
          // The long-poll asked for 10 and gets 2: the 8 left are not slots, it is answered once.
          later = await h.submit({ agent: 'quick' });
        } finally {
          release();
        }
        assert.equal(later.status, 'pending');
        assert.deepEqual((await leased).map((l) => l.task.id), queued.map((q) => q.id));
        assert.equal(h.engine.dispatcher.handOffs, 0);
      });
    });

    it('never hands off a delayed task or one with a concurrency key', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'quick' });
        const replica = await h.register('quick', { maxConcurrency: 5 });
        const { leased } = await waitingLease(h, replica, 5);
        const delayed = await h.submit({ agent: 'quick', delayMs: 60_000 });
        assert.equal(delayed.status, 'pending');
        const keyed = await h.submit({ agent: 'quick', concurrencyKey: 'host-1' });
        assert.equal(h.engine.dispatcher.handOffs, 0);
        // The keyed one is dispatched by a pass instead.
        const [got] = await leased;
        assert.equal(got?.task.id, keyed.id);
      });
    });
  });
}

describe('direct hand-off: when it is allowed', () => {
  it('a concurrency key given back unblocks the task waiting for it before a new submit is handed off', async () => {
    const h = await harness();
    try {
      await h.agent({ name: 'llm', concurrencyLimits: { 'host-1': 1 }, maxConcurrency: 2 });
      const r2 = await h.register('llm', { maxConcurrency: 1 });
      const t1 = await h.submit({ agent: 'llm', concurrencyKey: 'host-1' });
      const [held] = await h.lease(r2, 1);
      assert.equal(held?.task.id, t1.id);
      const t2 = await h.submit({ agent: 'llm', concurrencyKey: 'host-1' });
      // R waits with a free slot; T2 is blocked by the key, so the pass leaves R's slot free.
      const r = await h.register('llm', { maxConcurrency: 1 });
      const { leased } = await waitingLease(h, r);
      assert.equal((await h.api('POST', `/assignments/${held!.assignmentId}/complete`, { replicaId: r2, result: null })).status, 200);
      const t3 = await h.submit({ agent: 'llm' });
      const [got] = await leased;
      assert.equal(got?.task.id, t2.id, 'the task the key held back, not the newer one');
      assert.notEqual(t3.status, 'dispatched');
    } finally {
      await h.close();
    }
  });

  it('is refused from a wake until the next pass has read the queue', async () => {
    const h = await harness();
    try {
      await h.agent({ name: 'quick' });
      const replica = await h.register('quick');
      const { leased } = await waitingLease(h, replica);
      const now = h.engine.ctx.now();
      const task = {
        id: 'x', type: 'quick', status: 'pending', priority: 5, agent: 'quick', capabilities: [], replica: null, site: null,
        concurrencyKey: null, attempt: 0, maxAttempts: 3, timeoutMs: 1_000, runAt: now, assignmentId: null, cancelRequestedAt: null,
        input: null, result: null, error: null, createdAt: now, updatedAt: now, finishedAt: null, idempotencyKey: null,
        correlation: {}, traceparent: null, parentId: null, createdBy: null, rootId: 'x', depth: 1, ownerId: null,
        waitingFor: null, inputRequest: null, resumed: null, slaDeadline: null, slaState: 'none', slaCheckAt: null,
      } as const;
      h.engine.dispatcher.wake();
      assert.equal(h.engine.dispatcher.planHandOff({ ...task, capabilities: [], correlation: {}, tools: [] }, now), null);
      await h.engine.dispatcher.idle();
      assert.notEqual(h.engine.dispatcher.planHandOff({ ...task, capabilities: [], correlation: {}, tools: [] }, now), null);
      h.engine.dispatcher.wake();
      await h.submit({ agent: 'quick' });
      assert.equal((await leased).length, 1);
    } finally {
      await h.close();
    }
  });
});

describe('the deferred start, the same over HTTP', () => {
  it('is written after the window, not at all when the final report comes first, and before progress', async () => {
    // A 1 s window rather than 10 ms: the quick task's complete must arrive inside it,
    // and on a loaded machine two HTTP calls in a row took longer than 10 ms.
    const h = await harness({ startWriteDelayMs: 1_000 });
    try {
      await h.agent({ name: 'quick' });
      const replica = await h.register('quick', { maxConcurrency: 3 });
      for (let i = 0; i < 3; i++) await h.submit({ agent: 'quick' });
      const [slow, quick, busy] = await h.lease(replica, 3);
      const start = (a: { assignmentId: string }) => h.api('POST', `/assignments/${a.assignmentId}/start`, { replicaId: replica });
      const events = async (a: { task: { id: string } }) => (await h.api('GET', `/tasks/${a.task.id}/events`)).body.items.map((e: { type: string }) => e.type);
      for (const a of [slow!, quick!, busy!]) assert.equal((await start(a)).status, 200);
      // A quick task: its complete, inside the window, stands for its start.
      assert.equal((await h.api('POST', `/assignments/${quick!.assignmentId}/complete`, { replicaId: replica, result: null })).status, 200);
      // Progress writes the start first.
      assert.equal((await h.api('POST', `/assignments/${busy!.assignmentId}/progress`, { replicaId: replica, percent: 10 })).status, 200);
      assert.deepEqual(await events(busy!), ['task.created', 'task.dispatched', 'task.started', 'task.progress']);
      assert.equal((await h.task(slow!.task.id)).status, 'dispatched', 'not written inside the window');
      await new Promise((r) => setTimeout(r, 1_200));
      assert.equal((await h.task(slow!.task.id)).status, 'running', 'written when the window ended');
      assert.deepEqual(await events(quick!), ['task.created', 'task.dispatched', 'task.completed']);
    } finally {
      await h.close();
    }
  });
});
