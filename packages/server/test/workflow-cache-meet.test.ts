// Where cached results meet dependencies (issue 16): a task created completed from the cache
// ends at its commit, not through a transition, so nothing else tells its dependents in the
// same submit (a workflow's later task, its `then`) that they may run. They must not wait for
// the maintenance sweep (an hour in this harness).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskView } from '@flotilla/sdk';
import { withHarness, type Harness } from './helpers/harness.ts';

async function until(h: Harness, id: string, status: TaskView['status']): Promise<TaskView> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const t = await h.task(id);
    if (t.status === status) return t;
    if (Date.now() > deadline) throw new Error(`task ${id} is ${t.status}, not ${status}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`cached results and dependencies (${store})`, () => {
    it('a cache hit in a workflow and with a then: its dependents unblock at once, with its result', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize', maxAttempts: 1 });
        await h.agent({ name: 'translate', maxAttempts: 1 });
        const replica = await h.register('summarize');
        await h.submit({ agent: 'summarize', cacheKey: 'doc-1' });
        const [leased] = await h.lease(replica);
        assert.ok(leased);
        assert.equal((await h.api('POST', `/assignments/${leased.assignmentId}/complete`, { replicaId: replica, result: { summary: 'short' } })).status, 200);

        const res = await h.api('POST', '/workflows', {
          tasks: [
            { ref: 'sum', agent: 'summarize', cacheKey: 'doc-1', then: { agent: 'translate', input: { s: { $from: '/result/summary' } } } },
            { agent: 'translate', dependsOn: ['#sum'], inputFrom: { s: { $from: '#sum/result/summary' } } },
          ],
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        const items = (res.body as { items: TaskView[] }).items;
        assert.equal(items[0]!.status, 'completed', 'a cache hit');
        const dependent = await until(h, items[1]!.id, 'pending');
        assert.deepEqual(dependent.input, { s: 'short' });
        const then = await until(h, items[0]!.thenTaskId!, 'pending');
        assert.deepEqual(then.input, { s: 'short' });
      });
    });

    it('a workflow task answered with an open run of its key: its dependent fails at once with DEPENDENCY_GONE (a known limit), never hangs', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize', maxAttempts: 1 });
        await h.agent({ name: 'translate', maxAttempts: 1 });
        const open = await h.submit({ agent: 'summarize', cacheKey: 'doc-2' });
        const res = await h.api('POST', '/workflows', {
          tasks: [
            { ref: 'sum', agent: 'summarize', cacheKey: 'doc-2' },
            { agent: 'translate', dependsOn: ['#sum'], inputFrom: { s: { $from: '#sum/result/summary' } } },
          ],
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        const items = (res.body as { items: TaskView[] }).items;
        assert.equal(items[0]!.id, open.id, 'shared');
        const failed = await until(h, items[1]!.id, 'failed');
        assert.equal(failed.error?.code, 'DEPENDENCY_FAILED', JSON.stringify(failed.error));
      });
    });

    it('a schedule template whose dependsOn names an unknown task or a ref, or whose notify URL is bad, is refused at create', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'summarize' });
        for (const task of [
          { agent: 'summarize', dependsOn: ['#nothing'] },
          { agent: 'summarize', dependsOn: ['01a242c8-0000-7000-8000-000000000000'] },
          { agent: 'summarize', notify: { url: 'not a url' } },
        ]) {
          const res = await h.api('POST', '/schedules', { name: 's', everyMs: 5_000, task });
          assert.equal(res.status, 400, JSON.stringify([task, res.body]));
        }
        assert.deepEqual((await h.api('GET', '/schedules')).body.items, []);
      });
    });
  });
}
