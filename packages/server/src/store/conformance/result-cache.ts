// Conformance: cached results (issue 16, core/result-cache.ts): the lookup finds the latest
// completed run of (agent, key, scope) finished since a time, never a copy, a failed run or
// another scope's; a create never makes a second open run of a key: it answers the open one
// (created: false), also when two stores race; a copy, another scope, or a key whose runs
// have finished, is created.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { NewTask } from '../../core/types.ts';
import { T0, apply, createdEvent, ensureAgents, getTask, newTask, storeTest, type OpenStore } from './harness.ts';
import { decideRequeue } from '../../core/task-machine.ts';
import { isCacheRunOpen } from '../../core/result-cache.ts';
import type { Store } from '../store.ts';

const cached = (over: Partial<NewTask> = {}): NewTask => newTask({ cacheKey: 'k', cacheScope: 'owner:o', ...over });
const done = (finishedAt: number, over: Partial<NewTask> = {}): NewTask => cached({ status: 'completed', result: { at: finishedAt }, finishedAt, ...over });

async function create(store: Store, task: NewTask) {
  await ensureAgents(store, [task.agent]);
  const [result] = await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
  return result!;
}

export function resultCacheTests(open: OpenStore): void {
  describe('cached results', () => {
    storeTest(open, 'the lookup finds the latest completed run of the key in its scope since the time given; never a copy or a failure', async ({ store }) => {
      const older = done(T0 + 10);
      const newer = done(T0 + 20);
      for (const t of [older, newer,
        done(T0 + 30, { cachedFrom: older.id }),
        done(T0 + 40, { status: 'failed', result: null }),
        done(T0 + 50, { cacheScope: 'owner:other' }),
        done(T0 + 60, { cacheKey: 'other' }),
        done(T0 + 70, { agent: 'beta' }),
        newTask({ status: 'completed', finishedAt: T0 + 80 }),
      ]) assert.equal((await create(store, t)).created, true);
      const found = await store.taskCacheLookup({ agent: 'alpha', cacheKey: 'k', scope: 'owner:o', finishedAfter: T0 });
      assert.deepEqual([found?.id, found?.result, found?.cacheKey, found?.cacheScope, found?.cachedFrom], [newer.id, { at: T0 + 20 }, 'k', 'owner:o', null]);
      assert.equal(await store.taskCacheLookup({ agent: 'alpha', cacheKey: 'k', scope: 'owner:o', finishedAfter: T0 + 21 }), null);
      const copy = (await store.taskGet({ id: (await store.taskList({ limit: 10, statuses: ['completed'] })).items.find((t) => t.cachedFrom === older.id)!.id }))!;
      assert.equal(copy.cachedFrom, older.id);
    });

    storeTest(open, 'a create never makes a second open run of a key: it answers the open one', async ({ store }) => {
      await create(store, done(T0));
      const first = await create(store, cached());
      assert.equal(first.created, true, 'a finished run does not hold the key');
      const second = await create(store, cached());
      assert.deepEqual([second.created, second.task.id], [false, first.task.id]);
      // Another scope, agent or key, or a copy, is a task of its own.
      for (const t of [cached({ cacheScope: 'tree:r' }), cached({ agent: 'beta' }), cached({ cacheKey: 'k2' }), done(T0 + 1, { cachedFrom: first.task.id })]) {
        assert.equal((await create(store, t)).created, true);
      }
      // A task without a key is never matched.
      assert.equal((await create(store, newTask())).created, true);
      // The open run of a key, as a requeue asks for it.
      assert.equal((await store.taskCacheOpenRun({ agent: 'alpha', cacheKey: 'k', scope: 'owner:o', parentId: null }))?.id, first.task.id);
      assert.equal(await store.taskCacheOpenRun({ agent: 'alpha', cacheKey: 'k', scope: 'owner:nobody', parentId: null }), null);
    });

    storeTest(open, 'a child shares only an open run of its own parent: a parent never waits for a task that is not its child', async ({ store }) => {
      const [p1, p2] = [await create(store, newTask()), await create(store, newTask())];
      const root = await create(store, cached());
      const child = (parent: typeof p1) => cached({ parentId: parent.task.id, rootId: parent.task.id, depth: 1 });
      const first = await create(store, child(p1));
      assert.equal(first.created, true, "a root task's open run is not a child's");
      const sibling = await create(store, child(p1));
      assert.deepEqual([sibling.created, sibling.task.id], [false, first.task.id], 'the same parent shares its open run');
      const cousin = await create(store, child(p2));
      assert.equal(cousin.created, true, "another parent's child runs its own");
      assert.deepEqual([(await create(store, cached())).task.id], [root.task.id], 'root submits share the root run');
      assert.equal((await store.taskCacheOpenRun({ agent: 'alpha', cacheKey: 'k', scope: 'owner:o', parentId: p2.task.id }))?.id, cousin.task.id);
      assert.equal((await store.taskCacheOpenRun({ agent: 'alpha', cacheKey: 'k', scope: 'owner:o', parentId: null }))?.id, root.task.id);
    });

    storeTest(open, 'a create naming a task id that exists fails and writes none of its tasks (a skipped insert is never silently taken)', async ({ store }) => {
      const existing = await create(store, newTask());
      for (const dup of [newTask({ id: existing.task.id }), cached({ id: existing.task.id, cacheKey: 'dup' })]) {
        const fresh = newTask();
        await assert.rejects(store.taskCreate({ tasks: [{ task: fresh, events: [createdEvent(fresh)] }, { task: dup, events: [createdEvent(dup)] }] }));
        assert.equal(await store.taskGet({ id: fresh.id }), null, 'the call wrote nothing');
        assert.deepEqual((await store.taskGet({ id: existing.task.id }))?.cacheKey ?? null, null, 'the existing task is unchanged');
      }
    });

    storeTest(open, 'reopening a run of a key that has another open run (a requeue past its check) is a clear conflict, not a constraint error; nothing changes', async ({ store }) => {
      const failed = await create(store, cached({ status: 'failed', finishedAt: T0, error: { message: 'boom' } }));
      const open = await create(store, cached());
      assert.equal(open.created, true, 'a failed run does not hold the key');
      const err = await apply(store, decideRequeue({ task: failed.task, now: T0 + 1 })).then(() => null, (e: unknown) => e);
      assert.ok(isCacheRunOpen(err), `a 409 naming the reason, got ${String(err)}`);
      assert.deepEqual([(err as { code: string }).code], ['INVALID_TRANSITION']);
      assert.equal((await getTask(store, failed.task.id)).status, 'failed', 'the requeue changed nothing');
    });

    storeTest(open, 'two stores creating the same key at once make one run; the other answers it', async ({ store, peer }) => {
      const other = peer ? await peer() : store;
      await ensureAgents(store, ['alpha']);
      for (let round = 0; round < 5; round++) {
        const key = `race-${round}`;
        const [a, b] = [cached({ cacheKey: key }), cached({ cacheKey: key })];
        const results = await Promise.all([
          store.taskCreate({ tasks: [{ task: a, events: [createdEvent(a)] }] }),
          other.taskCreate({ tasks: [{ task: b, events: [createdEvent(b)] }] }),
        ]);
        const flat = results.map((r) => r[0]!);
        assert.equal(flat.filter((r) => r.created).length, 1, `round ${round}: one run`);
        assert.equal(flat[0]!.task.id, flat[1]!.task.id, `round ${round}: both answer the same task`);
      }
    });
  });
}
