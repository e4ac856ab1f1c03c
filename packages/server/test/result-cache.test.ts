// Cached results (issue 16, docs/caching.md) through the HTTP API on both stores: a hit is a
// new task, completed at once from the source's result, that never ran (no dispatch, no
// attempt; its events say so); an open run of the key is shared; a failed run, an expired
// result, or another owner's result is not used; bad combinations are 400s.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskView } from '@flotilla/sdk';
import { withHarness, type Harness } from './helpers/harness.ts';

async function runOnce(h: Harness, replica: string, outcome: { result: unknown } | { error: { message: string } }): Promise<string> {
  const [leased] = await h.lease(replica);
  assert.ok(leased, 'a task to run');
  const path = 'result' in outcome ? 'complete' : 'fail';
  const res = await h.api('POST', `/assignments/${leased.assignmentId}/${path}`, { replicaId: replica, ...outcome, ...('error' in outcome ? { retryable: false } : {}) });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return leased.task.id;
}

async function eventTypes(h: Harness, id: string): Promise<Array<{ type: string; data: any }>> {
  return (await h.api('GET', `/tasks/${id}/events`)).body.items.map((e: { type: string; data: unknown }) => ({ type: e.type, data: e.data }));
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`cached results (${store})`, () => {
    it('a hit is a new task completed from the cached result, which never ran; past the TTL the work runs again', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize', maxAttempts: 1 });
        const replica = await h.register('summarize');
        const first = await h.submit({ agent: 'summarize', input: { doc: 1 }, cacheKey: 'doc-1', cacheTtlMs: 60_000 });
        assert.deepEqual([first.status, first.cacheKey, first.cachedFrom], ['pending', 'doc-1', null]);
        await runOnce(h, replica, { result: { summary: 'short' } });

        const res = await h.api<TaskView>('POST', '/tasks', { agent: 'summarize', input: { doc: 1 }, cacheKey: 'doc-1', cacheTtlMs: 60_000, idempotencyKey: 'mine-1' });
        assert.equal(res.status, 201);
        const hit = res.body;
        assert.notEqual(hit.id, first.id);
        assert.deepEqual([hit.status, hit.result, hit.cachedFrom, hit.attempt, hit.idempotencyKey], ['completed', { summary: 'short' }, first.id, 0, 'mine-1']);
        const events = await eventTypes(h, hit.id);
        assert.deepEqual(events.map((e) => e.type), ['task.created', 'task.completed'], 'no dispatch, no start: it never ran');
        assert.deepEqual(events[1]!.data, { cachedFrom: first.id });
        assert.deepEqual(await h.store.assignmentListByTask({ taskId: hit.id }), [], 'no attempt');
        assert.equal((await h.lease(replica)).length, 0, 'nothing was queued for the hit');
        // A copy is not a source: its age is the source's.
        h.advance(61_000);
        const again = await h.submit({ agent: 'summarize', input: { doc: 1 }, cacheKey: 'doc-1', cacheTtlMs: 60_000 });
        assert.deepEqual([again.status, again.cachedFrom], ['pending', null]);
      });
    });

    it('a submit while a run of the key is open shares it (200, that task); a failed run is not cached', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize', maxAttempts: 1 });
        const replica = await h.register('summarize');
        const running = await h.submit({ agent: 'summarize', cacheKey: 'doc-2' });
        const shared = await h.api<TaskView>('POST', '/tasks', { agent: 'summarize', cacheKey: 'doc-2' });
        assert.deepEqual([shared.status, shared.body.id], [200, running.id]);
        const batch = await h.api('POST', '/tasks/batch', { tasks: [{ agent: 'summarize', cacheKey: 'doc-2' }] });
        assert.deepEqual([batch.body.items[0].created, batch.body.items[0].task.id], [false, running.id]);
        assert.equal(await runOnce(h, replica, { error: { message: 'model down' } }), running.id);
        assert.equal((await h.task(running.id)).status, 'failed');
        const next = await h.submit({ agent: 'summarize', cacheKey: 'doc-2' });
        assert.deepEqual([next.status, next.cachedFrom, next.id === running.id], ['pending', null, false]);
        // Requeueing the failed run now would make a second open run of the key: refused, unchanged.
        const requeue = await h.api('POST', `/tasks/${running.id}/retry`, {});
        assert.deepEqual([requeue.status, requeue.body.error.code, requeue.body.error.details.openRun], [409, 'INVALID_TRANSITION', next.id]);
        assert.equal((await h.task(running.id)).status, 'failed');
      });
    });

    it('a requeue racing a submit of the key (past its check) is the same 409 naming the open run, not a 500; nothing changes', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize', maxAttempts: 1 });
        const replica = await h.register('summarize');
        const failed = await h.submit({ agent: 'summarize', cacheKey: 'doc-race' });
        await runOnce(h, replica, { error: { message: 'model down' } });
        // The submit lands between the requeue's check (no open run yet) and its write.
        const check = h.store.taskCacheOpenRun.bind(h.store);
        let racer: TaskView | null = null;
        h.store.taskCacheOpenRun = async (p) => {
          const found = await check(p);
          h.store.taskCacheOpenRun = check;
          racer = await h.submit({ agent: 'summarize', cacheKey: 'doc-race' });
          return found;
        };
        const requeue = await h.api('POST', `/tasks/${failed.id}/retry`, {});
        assert.ok(racer !== null, 'the submit ran inside the requeue');
        assert.deepEqual([requeue.status, requeue.body.error?.code, requeue.body.error?.details?.openRun], [409, 'INVALID_TRANSITION', (racer as TaskView).id], JSON.stringify(requeue.body));
        assert.equal((await h.task(failed.id)).status, 'failed');
        assert.equal((await h.task((racer as TaskView).id)).status, 'pending');
      });
    });

    it("a hit never returns what the submitter could not read: another owner's result is not used", async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize' });
        const replica = await h.register('summarize');
        await h.submit({ agent: 'summarize', cacheKey: 'secret-doc' });
        await runOnce(h, replica, { result: 'admin only' });
        const key = await h.api('POST', '/keys', { name: 'op', role: 'operator' });
        const as = { authorization: `Bearer ${key.body.token as string}` };
        const theirs = await h.api<TaskView>('POST', '/tasks', { agent: 'summarize', cacheKey: 'secret-doc' }, as);
        assert.deepEqual([theirs.status, theirs.body.status, theirs.body.cachedFrom], [201, 'pending', null]);
        // Their own run is theirs to share and to hit.
        const again = await h.api<TaskView>('POST', '/tasks', { agent: 'summarize', cacheKey: 'secret-doc' }, as);
        assert.deepEqual([again.status, again.body.id], [200, theirs.body.id]);
      });
    });

    it('a cacheKey needs an agent, and cacheTtlMs needs a cacheKey: 400, nothing written', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize', capabilities: ['text'] });
        for (const body of [{ capabilities: ['text'], cacheKey: 'k' }, { agent: 'summarize', cacheTtlMs: 1_000 }, { agent: 'summarize', cacheKey: '' }]) {
          const res = await h.api('POST', '/tasks', body);
          assert.deepEqual([res.status, res.body.error.code], [400, 'VALIDATION_FAILED'], JSON.stringify(body));
        }
        assert.deepEqual((await h.api('GET', '/tasks')).body.items, []);
      });
    });
  });
}
