// Task trees (issue 14): GET /tasks/{id}/tree, and cancellation cascading down a tree (with
// `cascade: false` to opt out, and the race with a child submitted while its parent is being
// cancelled). On both stores.

import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { TaskTreeView, TaskView } from '@flotilla/sdk';
import { holdStoreCall, withHarness as withStore, type Harness } from './helpers/harness.ts';

/** A harness on `store` with the agents these tests use. */
function withHarness(t: TestContext, store: 'sqlite' | 'postgres', fn: (h: Harness) => Promise<void>): Promise<void> {
  // Trees of one agent at several levels: equal levels allowed (decision 59).
  return withStore(t, store, async (h) => {
    await h.agent({ name: 'planner', maxConcurrency: 10 });
    await h.agent({ name: 'writer', capabilities: ['prose'] });
    await fn(h);
  }, { config: { allowEqualLevel: true } });
}

const hold = (h: Harness, method: 'taskCreate' | 'taskGetMany' | 'taskTransition', skip = 0) => holdStoreCall(h.engine.ctx.store, method, skip);

const as = (token: string) => ({ authorization: `Bearer ${token}` });

async function key(h: Harness, role: string): Promise<string> {
  const res = await h.api('POST', '/keys', { name: `${role} key`, role });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token as string;
}

/** Leases the given tasks (and only those: nothing else is pending for the agent) and starts them. */
async function runAll(h: Harness, replica: string, ids: string[]): Promise<Map<string, string>> {
  const leased = await h.lease(replica, ids.length);
  assert.deepEqual(leased.map((l) => l.task.id).sort(), [...ids].sort());
  const byTask = new Map<string, string>();
  for (const l of leased) {
    assert.equal((await h.api('POST', `/assignments/${l.assignmentId}/start`, { replicaId: replica })).status, 200);
    byTask.set(l.task.id, l.assignmentId);
  }
  await h.engine.workers.flushStarts();
  return byTask;
}

async function events(h: Harness, taskId: string): Promise<Array<{ type: string; data: Record<string, unknown> }>> {
  return (await h.api('GET', `/tasks/${taskId}/events`)).body.items;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`GET /tasks/{id}/tree (${store})`, () => {
    it('answers the whole tree from its root, parents first, each node with status, agent, replica, attempt and progress', async (t) => {
      await withHarness(t, store, async (h) => {
        const replica = await h.register('planner', { maxConcurrency: 10 });
        const root = await h.submit({ agent: 'planner', type: 'plan' });
        const c1 = await h.submit({ agent: 'planner', parentId: root.id });
        const running = await runAll(h, replica, [root.id, c1.id]);
        const c2 = await h.submit({ capabilities: ['prose'], parentId: root.id });
        const g1 = await h.submit({ agent: 'planner', parentId: c1.id, delayMs: 3_600_000 });
        const other = await h.submit({ agent: 'planner', delayMs: 3_600_000 });
        const progress = await h.api('POST', `/assignments/${running.get(c1.id)}/progress`, { replicaId: replica, percent: 40, message: 'half way' });
        assert.equal(progress.status, 200);
        assert.equal((await h.api('POST', `/assignments/${running.get(root.id)}/complete`, { replicaId: replica, result: 1 })).status, 200);

        // Asked from a grandchild: the whole tree, from the root, the grandchild named.
        const res = await h.api<TaskTreeView>('GET', `/tasks/${g1.id}/tree`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.rootId, root.id);
        assert.equal(res.body.taskId, g1.id);
        assert.equal(res.body.nextCursor, null);
        assert.deepEqual(res.body.items.map((n) => n.id), [root.id, c1.id, c2.id, g1.id], 'submission order; another tree is not in it');
        assert.ok(!res.body.items.some((n) => n.id === other.id));
        const [r, n1, n2, n3] = res.body.items;
        assert.deepEqual(
          { status: r!.status, agent: r!.agent, replica: r!.replica, attempt: r!.attempt, depth: r!.depth, parentId: r!.parentId, type: r!.type, done: r!.finishedAt !== null },
          { status: 'completed', agent: 'planner', replica, attempt: 1, depth: 1, parentId: null, type: 'plan', done: true },
        );
        assert.deepEqual(
          { status: n1!.status, replica: n1!.replica, attempt: n1!.attempt, maxAttempts: n1!.maxAttempts, depth: n1!.depth, parentId: n1!.parentId, percent: n1!.progress?.percent, message: n1!.progress?.message },
          { status: 'running', replica, attempt: 1, maxAttempts: 3, depth: 2, parentId: root.id, percent: 40, message: 'half way' },
        );
        assert.deepEqual({ status: n2!.status, agent: n2!.agent, replica: n2!.replica, progress: n2!.progress, attempt: n2!.attempt }, { status: 'pending', agent: null, replica: null, progress: null, attempt: 0 });
        assert.deepEqual({ depth: n3!.depth, parentId: n3!.parentId, cancelRequested: n3!.cancelRequested, errorCode: n3!.errorCode }, { depth: 3, parentId: c1.id, cancelRequested: false, errorCode: null });
        // The same tree whichever of its tasks is asked for.
        const fromRoot = (await h.api<TaskTreeView>('GET', `/tasks/${root.id}/tree`)).body;
        assert.deepEqual({ ...fromRoot, taskId: g1.id }, res.body);
      });
    });

    it('pages in submission order (each page hangs from the ones before), bounded by limit', async (t) => {
      await withHarness(t, store, async (h) => {
        const root = await h.submit({ agent: 'planner', delayMs: 3_600_000 });
        const kids: TaskView[] = [];
        for (let i = 0; i < 3; i++) kids.push(await h.submit({ agent: 'planner', parentId: root.id, delayMs: 3_600_000 }));
        const grandchild = await h.submit({ agent: 'planner', parentId: kids[0]!.id, delayMs: 3_600_000 });
        const first = (await h.api<TaskTreeView>('GET', `/tasks/${grandchild.id}/tree?limit=2`)).body;
        assert.deepEqual(first.items.map((n) => n.id), [root.id, kids[0]!.id]);
        assert.notEqual(first.nextCursor, null, 'more follows');
        const second = (await h.api<TaskTreeView>('GET', `/tasks/${grandchild.id}/tree?limit=2&cursor=${first.nextCursor}`)).body;
        assert.deepEqual(second.items.map((n) => n.id), [kids[1]!.id, kids[2]!.id]);
        const third = (await h.api<TaskTreeView>('GET', `/tasks/${grandchild.id}/tree?limit=2&cursor=${second.nextCursor}`)).body;
        assert.deepEqual(third.items.map((n) => n.id), [grandchild.id]);
        assert.equal(third.nextCursor, null);
        for (const bad of ['limit=0', 'limit=5001', 'limit=x', 'cursor=not-a-cursor!', 'depth=2']) {
          const res = await h.api('GET', `/tasks/${root.id}/tree?${bad}`);
          assert.equal(res.status, 400, bad);
          assert.equal(res.body.error.code, 'VALIDATION_FAILED', bad);
        }
      });
    });

    it('follows the visibility of GET /tasks/{id}: unknown or out of sight is 404, a viewer sees it, an agent key does not', async (t) => {
      await withHarness(t, store, async (h) => {
        const root = await h.submit({ agent: 'planner', delayMs: 3_600_000 });
        await h.submit({ agent: 'planner', parentId: root.id, delayMs: 3_600_000 });
        assert.equal((await h.api('GET', '/tasks/no-such-task/tree')).body.error.code, 'TASK_NOT_FOUND');
        const viewer = await key(h, 'viewer');
        assert.equal((await h.api<TaskTreeView>('GET', `/tasks/${root.id}/tree`, undefined, as(viewer))).body.items.length, 2);
        const worker = (await h.api('POST', '/keys', { name: 'w', role: 'agent', agents: ['planner'] })).body.token as string;
        assert.equal((await h.api('GET', `/tasks/${root.id}/tree`, undefined, as(worker))).status, 403);
        // A token sees only the trees it created: this one is not its own.
        const operator = await key(h, 'operator');
        const token = (await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit'] }, as(operator))).body.token as string;
        const hidden = await h.api('GET', `/tasks/${root.id}/tree`, undefined, as(token));
        assert.equal(hidden.status, 404);
        assert.equal(hidden.body.error.code, 'TASK_NOT_FOUND');
        const own = (await h.api('POST', '/tasks', { agent: 'planner', delayMs: 3_600_000 }, as(token))).body as TaskView;
        assert.deepEqual((await h.api<TaskTreeView>('GET', `/tasks/${own.id}/tree`, undefined, as(token))).body.items.map((n) => n.id), [own.id]);
      });
    });
  });

  describe(`cancel cascades down the tree (${store})`, () => {
    /** root → (c1 → g1, c2 → g2, done): root, c2 and g2 running, c1 and g1 pending, done completed. */
    async function threeLevels(h: Harness) {
      const replica = await h.register('planner', { maxConcurrency: 10 });
      const root = await h.submit({ agent: 'planner' });
      const c2 = await h.submit({ agent: 'planner', parentId: root.id });
      const done = await h.submit({ agent: 'planner', parentId: root.id });
      const live = await runAll(h, replica, [root.id, c2.id, done.id]);
      assert.equal((await h.api('POST', `/assignments/${live.get(done.id)}/complete`, { replicaId: replica, result: null })).status, 200);
      const g2 = await h.submit({ agent: 'planner', parentId: c2.id });
      const more = await runAll(h, replica, [g2.id]);
      const c1 = await h.submit({ agent: 'planner', parentId: root.id, delayMs: 3_600_000 });
      const g1 = await h.submit({ agent: 'planner', parentId: c1.id, delayMs: 3_600_000 });
      return { replica, root, c1, c2, g1, g2, done, assignments: new Map([...live, ...more]) };
    }

    it('cancelling the root cancels every unfinished descendant: pending ones at once, live ones by a cancel request', async (t) => {
      await withHarness(t, store, async (h) => {
        const { replica, root, c1, c2, g1, g2, done, assignments } = await threeLevels(h);
        const res = await h.api('POST', `/tasks/${root.id}/cancel`, { reason: 'changed my mind' });
        assert.equal(res.status, 200);
        assert.notEqual(res.body.cancelRequestedAt, null);
        for (const pending of [c1, g1]) {
          const task = await h.task(pending.id);
          assert.equal(task.status, 'cancelled', `${pending.id} ended at once`);
          const cancelled = (await events(h, pending.id)).find((e) => e.type === 'task.cancelled');
          assert.deepEqual(cancelled?.data, { reason: 'changed my mind', cancelledBy: root.id });
        }
        for (const live of [c2, g2]) {
          const task = await h.task(live.id);
          assert.equal(task.status, 'running');
          assert.notEqual(task.cancelRequestedAt, null, `${live.id} was asked to stop`);
          const requested = (await events(h, live.id)).find((e) => e.type === 'task.cancel_requested');
          assert.deepEqual(requested?.data, { reason: 'changed my mind', cancelledBy: root.id });
          // Its worker learns it on its next heartbeat, as with any cancellation.
          const beat = await h.api('POST', `/assignments/${assignments.get(live.id)}/heartbeat`, { replicaId: replica });
          assert.equal(beat.body.cancelRequested, true);
        }
        assert.equal((await h.task(done.id)).status, 'completed', 'a finished descendant is left as it is');
        const tree = (await h.api<TaskTreeView>('GET', `/tasks/${root.id}/tree`)).body;
        assert.ok(tree.items.every((n) => n.id === done.id || n.cancelRequested), JSON.stringify(tree.items));
        // Cancelling again changes nothing (and repeats the cascade harmlessly).
        assert.equal((await h.api('POST', `/tasks/${root.id}/cancel`, {})).status, 200);
        assert.equal((await events(h, c1.id)).filter((e) => e.type === 'task.cancelled').length, 1);
      });
    });

    it('with cascade false only the task itself is cancelled', async (t) => {
      await withHarness(t, store, async (h) => {
        const { root, c1, c2, g1, g2 } = await threeLevels(h);
        assert.equal((await h.api('POST', `/tasks/${root.id}/cancel`, { cascade: false })).status, 200);
        assert.notEqual((await h.task(root.id)).cancelRequestedAt, null);
        for (const other of [c1, c2, g1, g2]) assert.equal((await h.task(other.id)).cancelRequestedAt, null, `${other.id} untouched`);
        assert.equal((await h.api('POST', `/tasks/${root.id}/cancel`, { cascade: 'no' })).status, 400);
      });
    });

    it('cancelling a task in the middle cancels its subtree, not its siblings or ancestors', async (t) => {
      await withHarness(t, store, async (h) => {
        const { root, c1, c2, g1, g2 } = await threeLevels(h);
        assert.equal((await h.api('POST', `/tasks/${c1.id}/cancel`, {})).status, 200);
        assert.equal((await h.task(c1.id)).status, 'cancelled');
        assert.equal((await h.task(g1.id)).status, 'cancelled');
        for (const other of [root, c2, g2]) assert.equal((await h.task(other.id)).cancelRequestedAt, null, `${other.id} untouched`);
        assert.equal((await h.api('POST', `/tasks/${c2.id}/cancel`, {})).status, 200);
        assert.notEqual((await h.task(g2.id)).cancelRequestedAt, null);
        assert.equal((await h.task(root.id)).cancelRequestedAt, null);
      });
    });

    it('a submit under a cancelled or cancel-requested parent is refused with 409 PARENT_CANCELLED, and creates nothing', async (t) => {
      await withHarness(t, store, async (h) => {
        const { root, c1 } = await threeLevels(h);
        await h.api('POST', `/tasks/${root.id}/cancel`, {});
        const before = (await h.api<TaskTreeView>('GET', `/tasks/${root.id}/tree`)).body.items.length;
        for (const parent of [root, c1]) {
          const res = await h.api('POST', '/tasks', { agent: 'planner', parentId: parent.id });
          assert.equal(res.status, 409);
          assert.equal(res.body.error.code, 'PARENT_CANCELLED');
        }
        assert.equal((await h.api<TaskTreeView>('GET', `/tasks/${root.id}/tree`)).body.items.length, before);
      });
    });

    it('a child committed while its tree is being cancelled does not survive: cancelled by its submit, or by the cascade', async (t) => {
      await withHarness(t, store, async (h) => {
        const { root, c1 } = await threeLevels(h);
        // 1. The child was checked before the cascade and commits after the cascade has walked the tree.
        const created = hold(h, 'taskCreate');
        const late = h.api('POST', '/tasks', { agent: 'planner', parentId: c1.id });
        await created.inside;
        assert.equal((await h.api('POST', `/tasks/${root.id}/cancel`, {})).status, 200);
        created.release();
        const answer = await late;
        assert.equal(answer.status, 201);
        assert.equal(answer.body.status, 'cancelled', 'its submit saw the parent cancelled and cancelled it');
        const event = (await events(h, answer.body.id)).find((e) => e.type === 'task.cancelled');
        assert.equal(event?.data.cancelledBy, c1.id);
      });
      await withHarness(t, store, async (h) => {
        const { root, c2 } = await threeLevels(h);
        // 2. The child committed, but its submit reads the parent again only after the cascade:
        // the cascade's walk finds it. Its own check then finds it cancelled already.
        const reread = hold(h, 'taskGetMany');
        const late = h.api('POST', '/tasks', { agent: 'planner', parentId: c2.id, delayMs: 3_600_000 });
        await reread.inside;
        assert.equal((await h.api('POST', `/tasks/${root.id}/cancel`, {})).status, 200);
        reread.release();
        const answer = await late;
        assert.equal(answer.body.status, 'cancelled');
        const cancelled = (await events(h, answer.body.id)).filter((e) => e.type === 'task.cancelled');
        assert.equal(cancelled.length, 1, 'cancelled once');
        assert.equal(cancelled[0]!.data.cancelledBy, root.id, 'by the cascade');
      });
      await withHarness(t, store, async (h) => {
        const { root, c1 } = await threeLevels(h);
        // 3. The child's submit finds its parent not yet marked, both before and after its
        // commit, because the cascade read the tree before the commit and marks the parent
        // after: the cascade's next walk finds it.
        const marking = hold(h, 'taskTransition', 1);
        const cancel = h.api('POST', `/tasks/${root.id}/cancel`, {});
        await marking.inside;
        const child = await h.api('POST', '/tasks', { agent: 'planner', parentId: c1.id, delayMs: 3_600_000 });
        assert.equal(child.status, 201);
        assert.equal(child.body.status, 'pending', 'its parent was not cancelled yet when it looked');
        marking.release();
        assert.equal((await cancel).status, 200);
        const task = await h.task(child.body.id);
        assert.equal(task.status, 'cancelled');
        assert.equal((await events(h, task.id)).find((e) => e.type === 'task.cancelled')?.data.cancelledBy, root.id);
      });
    });
  });
}
