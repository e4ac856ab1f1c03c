// Conformance: creating, reading, listing, counting and pruning tasks, and the dispatcher's
// candidate queries.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideCancel, decideComplete, decideFail } from '../../core/task-machine.ts';
import { compareDispatchOrder, type DispatchPosition } from '../../core/routing.ts';
import type { NewTask, TaskRecord } from '../../core/types.ts';
import {
  T0, POLICY, allEvents, createTask, createTasks, createdEvent, getTask, mustApply, newTask, nextId, plainEvent,
  registerReplica, run, storeTest, type OpenStore,
  ensureAgents,
} from './harness.ts';

function ids(tasks: ReadonlyArray<{ id: string }>): string[] {
  return tasks.map((t) => t.id);
}

export function taskTests(open: OpenStore): void {
  describe('tasks: create and read', () => {
    storeTest(open, 'round-trips every field of a task', async ({ store }) => {
      const task = newTask({
        type: 'code.review',
        priority: 7,
        agent: null,
        capabilities: ['gpu', 'python'],
        replica: 'replica-pinned',
        site: 'eu-west',
        concurrencyKey: 'host:vllm-1',
        maxAttempts: 4,
        timeoutMs: 12_345,
        runAt: T0 + 500,
        input: { repo: 'a/b', files: ['x.ts', 'y.ts'], nested: { n: 1.5, ok: true, none: null }, unicode: 'é✓' },
        createdAt: T0 + 1,
        updatedAt: T0 + 2,
        idempotencyKey: 'idem-round-trip',
        correlation: { runId: 'run-9', step: '3' },
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        parentId: 'task-parent',
        createdBy: 'key-worker',
        rootId: 'task-root',
        ownerId: 'key-admin',
        tools: ['flotilla:spawn', 'web:*', '!web:delete'],
      });
      const [result] = await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
      assert.ok(result?.created);
      assert.ok(Number.isInteger(result.task.seq) && result.task.seq > 0);
      assert.deepEqual(result.task, { ...task, seq: result.task.seq });
      assert.equal(result.events.length, 1);
      assert.equal(result.events[0]!.type, 'task.created');
      assert.equal(result.events[0]!.taskId, task.id);
      assert.deepEqual(result.events[0]!.data, { priority: 7 });
      assert.deepEqual(await store.taskGet({ id: task.id }), { ...task, seq: result.task.seq });
    });

    storeTest(open, 'round-trips input of every JSON type', async ({ store }) => {
      const inputs = [null, 'text', 42, -0.25, true, [1, 'a', null, { b: [] }], {}];
      const created = await createTasks(store, inputs.map((input) => newTask({ input })));
      for (const [i, t] of created.entries()) {
        assert.deepEqual((await getTask(store, t.id)).input, inputs[i]);
      }
    });

    storeTest(open, 'returns null for an unknown id', async ({ store }) => {
      assert.equal(await store.taskGet({ id: 'no-such-task' }), null);
    });

    storeTest(open, 'taskGetMany reads the existing tasks among many ids, each as taskGet does', async ({ store }) => {
      const created = await createTasks(store, [newTask({ input: 1 }), newTask({ input: { two: [2] } }), newTask({ input: 'three' })]);
      const ids = [created[2]!.id, 'no-such-task', created[0]!.id, created[2]!.id];
      const got = await store.taskGetMany({ ids });
      assert.deepEqual(got.map((t) => t.id).sort(), [created[0]!.id, created[2]!.id].sort());
      for (const t of got) assert.deepEqual(t, await store.taskGet({ id: t.id }));
      assert.deepEqual(await store.taskGetMany({ ids: [] }), []);
    });

    storeTest(open, 'assigns strictly increasing seq in submission order', async ({ store }) => {
      const batch = await createTasks(store, [newTask(), newTask(), newTask()]);
      const a = await createTask(store);
      const b = await createTask(store);
      const seqs = [...batch, a, b].map((t) => t.seq);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `seq ${seqs[i]} after ${seqs[i - 1]}`);
      for (const t of [...batch, a, b]) assert.equal((await getTask(store, t.id)).seq, t.seq);
    });

    storeTest(open, 'an existing idempotency key returns the existing task and writes nothing', async ({ store }) => {
      const first = await createTask(store, { idempotencyKey: 'once', input: { v: 1 } });
      const eventsBefore = await allEvents(store);
      const again = newTask({ idempotencyKey: 'once', input: { v: 2 }, priority: 9 });
      const [result] = await store.taskCreate({ tasks: [{ task: again, events: [createdEvent(again)] }] });
      assert.ok(result);
      assert.equal(result.created, false);
      assert.deepEqual(result.task, first);
      assert.equal(await store.taskGet({ id: again.id }), null);
      assert.deepEqual(await allEvents(store), eventsBefore);
      assert.equal((await store.taskCountByStatus({})).pending, 1);
    });

    storeTest(open, 'an idempotency key repeated within one call creates the task once', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const a = newTask({ idempotencyKey: 'dup' });
      const b = newTask({ idempotencyKey: 'dup' });
      const results = await store.taskCreate({ tasks: [{ task: a, events: [createdEvent(a)] }, { task: b, events: [createdEvent(b)] }] });
      assert.equal(results[0]?.created, true);
      assert.equal(results[1]?.created, false);
      assert.equal(results[1]?.task.id, a.id);
      assert.equal(await store.taskGet({ id: b.id }), null);
      assert.equal((await allEvents(store)).length, 1);
    });

    storeTest(open, 'refuses a task for an agent that does not exist, in the same write, and writes nothing', async ({ store }) => {
      const orphan = newTask({ agent: 'nobody-here' });
      const fine = newTask({ agent: null, capabilities: ['text'] });
      await assert.rejects(
        store.taskCreate({ tasks: [{ task: fine, events: [createdEvent(fine)] }, { task: orphan, events: [createdEvent(orphan)] }] }),
        (err: unknown) => (err as { code?: unknown }).code === 'UNKNOWN_AGENT',
      );
      assert.equal(await store.taskGet({ id: fine.id }), null, 'the whole call is refused');
      assert.deepEqual(await allEvents(store), []);
      // A delete and a create racing: whichever commits first, no task is left for a missing agent.
      await ensureAgents(store, ['racer']);
      const racing = newTask({ agent: 'racer' });
      const [created, deleted] = await Promise.allSettled([
        store.taskCreate({ tasks: [{ task: racing, events: [createdEvent(racing)] }] }),
        store.agentDelete({ name: 'racer', event: plainEvent('agent.deleted') }),
      ]);
      const agentGone = deleted.status === 'fulfilled' && deleted.value.outcome === 'deleted';
      const taskThere = created.status === 'fulfilled' && (await store.taskGet({ id: racing.id })) !== null;
      assert.ok(!(agentGone && taskThere), 'never both: a task left for a deleted agent');
    });

    storeTest(open, 'concurrent calls keep their own outcomes: a refused or invalid call fails alone', async ({ store }) => {
      // A store may run calls queued together as one statement (PostgreSQL does): each call
      // must still commit or fail on its own, and share idempotency keys as if one by one.
      await ensureAgents(store, ['alpha']);
      const one = (over: Partial<NewTask> = {}) => {
        const task = newTask(over);
        return { task, call: store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] }) };
      };
      const calls = [one(), one({ agent: 'nobody-here' }), one({ idempotencyKey: 'shared' }), one({ priority: 10 }), one({ idempotencyKey: 'shared' }), one()];
      const settled = await Promise.allSettled(calls.map((c) => c.call));
      assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      assert.equal(((settled[1] as PromiseRejectedResult).reason as { code?: unknown }).code, 'UNKNOWN_AGENT');
      const value = (i: number) => (settled[i] as PromiseFulfilledResult<Awaited<typeof calls[0]['call']>>).value[0]!;
      assert.deepEqual([value(0).created, value(2).created, value(4).created, value(5).created], [true, true, false, true]);
      assert.equal(value(4).task.id, calls[2]!.task.id, 'the second call with the key gets the first call\'s task');
      for (const i of [1, 3, 4]) assert.equal(await store.taskGet({ id: calls[i]!.task.id }), null);
      assert.equal((await store.taskCountByStatus({})).pending, 3);
      assert.deepEqual((await allEvents(store)).map((e) => e.taskId), [0, 2, 5].map((i) => calls[i]!.task.id));
    });

    storeTest(open, 'the database rejects a priority outside 0..9', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      for (const priority of [10, -1]) {
        const bad = newTask({ priority });
        await assert.rejects(store.taskCreate({ tasks: [{ task: bad, events: [createdEvent(bad)] }] }));
        assert.equal(await store.taskGet({ id: bad.id }), null);
      }
      for (const priority of [0, 9]) assert.equal((await createTask(store, { priority })).priority, priority);
      assert.equal((await allEvents(store)).length, 2);
    });

    storeTest(open, 'a call with one invalid task writes none of its tasks', async ({ store }) => {
      const good = newTask();
      const bad = newTask({ priority: 10 });
      await assert.rejects(store.taskCreate({ tasks: [{ task: good, events: [createdEvent(good)] }, { task: bad, events: [createdEvent(bad)] }] }));
      assert.equal(await store.taskGet({ id: good.id }), null);
      assert.deepEqual(await allEvents(store), []);
    });

    storeTest(open, 'a duplicate task id is rejected, not overwritten', async ({ store }) => {
      const first = await createTask(store, { input: 'original' });
      const dup = newTask({ id: first.id, input: 'impostor' });
      await assert.rejects(store.taskCreate({ tasks: [{ task: dup, events: [] }] }));
      assert.deepEqual(await store.taskGet({ id: first.id }), first);
    });
  });

  describe('tasks: dispatch candidates', () => {
    storeTest(open, 'orders by priority, highest first, then FIFO', async ({ store }) => {
      const created = await createTasks(store, [5, 9, 5, 0, 9, 7].map((priority) => newTask({ priority })));
      const [p5a, p9a, p5b, p0, p9b, p7] = created;
      const got = await store.taskCandidates({ agents: ['alpha'], includeCapabilityRouted: false, now: T0, limit: 10 });
      assert.deepEqual(ids(got), ids([p9a!, p9b!, p7!, p5a!, p5b!, p0!]));
      // Heads carry the routing fields.
      assert.deepEqual(got[0], {
        id: p9a!.id, seq: p9a!.seq, status: 'pending', priority: 9, agent: 'alpha', capabilities: [], replica: null, site: null,
        concurrencyKey: null, attempt: 0, maxAttempts: 3, timeoutMs: 60_000, runAt: T0, assignmentId: null, cancelRequestedAt: null, parentId: null,
        slaDeadline: null,
        hasDependents: false,
        rateKey: null, estimatedTokens: null,
      });
    });

    storeTest(open, 'excludes tasks whose runAt is still in the future', async ({ store }) => {
      const now = await createTask(store, { runAt: T0 });
      const later = await createTask(store, { runAt: T0 + 1_000, priority: 9 });
      const q = (at: number) => store.taskCandidates({ agents: ['alpha'], includeCapabilityRouted: false, now: at, limit: 10 });
      assert.deepEqual(ids(await q(T0)), [now.id]);
      assert.deepEqual(ids(await q(T0 + 999)), [now.id]);
      assert.deepEqual(ids(await q(T0 + 1_000)), [later.id, now.id]);
    });

    storeTest(open, 'selects by agent and includes capability-routed tasks only when asked', async ({ store }) => {
      const [alpha, beta, routed, gamma] = await createTasks(store, [
        newTask({ agent: 'alpha', priority: 1 }),
        newTask({ agent: 'beta', priority: 3 }),
        newTask({ agent: null, capabilities: ['gpu'], priority: 2 }),
        newTask({ agent: 'gamma', priority: 9 }),
      ]);
      const q = (agents: string[], includeCapabilityRouted: boolean) =>
        store.taskCandidates({ agents, includeCapabilityRouted, now: T0, limit: 10 }).then(ids);
      assert.deepEqual(await q(['alpha'], false), [alpha!.id]);
      assert.deepEqual(await q(['alpha'], true), [routed!.id, alpha!.id]);
      assert.deepEqual(await q([], true), [routed!.id]);
      assert.deepEqual(await q([], false), []);
      assert.deepEqual(await q(['alpha', 'beta'], true), [beta!.id, routed!.id, alpha!.id]);
      assert.deepEqual(await q(['beta', 'gamma', 'alpha'], false), [gamma!.id, beta!.id, alpha!.id]);
    });

    storeTest(open, 'pages with the keyset position without gaps or repeats', async ({ store }) => {
      const d = (ms: number) => ({ slaDeadline: T0 + ms, slaState: 'ok' as const, slaCheckAt: T0 + ms });
      const specs: Array<Partial<NewTask>> = [
        { priority: 5 }, { priority: 5, agent: null, ...d(500) }, { priority: 8 }, { priority: 5, ...d(900) }, { priority: 2, agent: null },
        { priority: 8, agent: null, ...d(100) }, { priority: 5, ...d(500) }, { priority: 2 }, { priority: 9, agent: 'other' },
        { priority: 5, ...d(500) }, { priority: 5, agent: null },
      ];
      await createTasks(store, specs.map((s) => newTask(s)));
      const params = { agents: ['alpha'], includeCapabilityRouted: true, now: T0 };
      const all = await store.taskCandidates({ ...params, limit: 100 });
      assert.equal(all.length, 10);
      for (let i = 1; i < all.length; i++) assert.ok(compareDispatchOrder(all[i - 1]!, all[i]!) < 0, 'dispatch order');
      for (const size of [1, 2, 3]) {
        const paged: string[] = [];
        let after: DispatchPosition | null = null;
        for (;;) {
          const page = await store.taskCandidates({ ...params, limit: size, after });
          if (page.length === 0) break;
          assert.ok(paged.length < all.length, 'paging ends');
          assert.ok(page.length <= size);
          paged.push(...ids(page));
          const last = page.at(-1)!;
          after = { priority: last.priority, slaDeadline: last.slaDeadline, seq: last.seq };
        }
        assert.deepEqual(paged, ids(all), `pages of ${size}`);
      }
    });

    storeTest(open, 'within a priority, the earlier SLA deadline first; tasks without one after, FIFO', async ({ store }) => {
      const sla = (ms: number) => ({ slaDeadline: T0 + ms, slaState: 'ok' as const, slaCheckAt: T0 + ms / 2 });
      const [none1, late, none2, soon, high, alsoSoon] = await createTasks(store, [
        newTask(), newTask(sla(60_000)), newTask(), newTask(sla(1_000)), newTask({ priority: 6 }), newTask(sla(1_000)),
      ]);
      const got = await store.taskCandidates({ agents: ['alpha'], includeCapabilityRouted: true, now: T0, limit: 10 });
      // Priority first (a deadline does not jump a priority); equal deadlines keep submission order.
      assert.deepEqual(ids(got), ids([high!, soon!, alsoSoon!, late!, none1!, none2!]));
      assert.equal(got[1]!.slaDeadline, T0 + 1_000);
      assert.equal(got.at(-1)!.slaDeadline, null);
    });

    storeTest(open, 'excludes tasks that are not pending and respects the limit', async ({ store }) => {
      const replica = await registerReplica(store);
      const [a, b, c] = await createTasks(store, [newTask({ priority: 9 }), newTask(), newTask()]);
      await run(store, a!, replica);
      const q = (limit: number) => store.taskCandidates({ agents: ['alpha'], includeCapabilityRouted: true, now: T0, limit }).then(ids);
      assert.deepEqual(await q(10), [b!.id, c!.id]);
      assert.deepEqual(await q(1), [b!.id]);
      assert.deepEqual(await q(0), []);
    });

    storeTest(open, 'taskNextRunAt is the earliest future runAt of a pending task', async ({ store }) => {
      assert.equal(await store.taskNextRunAt({ now: T0 }), null);
      await createTasks(store, [
        newTask({ runAt: T0 - 100 }),
        newTask({ runAt: T0 + 5_000 }),
        newTask({ runAt: T0 + 2_000 }),
        newTask({ runAt: T0 + 1_000, status: 'cancelled', finishedAt: T0, cancelRequestedAt: T0 }),
      ]);
      assert.equal(await store.taskNextRunAt({ now: T0 }), T0 + 2_000);
      assert.equal(await store.taskNextRunAt({ now: T0 + 2_000 }), T0 + 5_000);
      assert.equal(await store.taskNextRunAt({ now: T0 + 5_000 }), null);
    });
  });

  describe('tasks: list and count', () => {
    storeTest(open, 'lists newest first and pages with the cursor without gaps or repeats', async ({ store }) => {
      const created = await createTasks(store, Array.from({ length: 25 }, () => newTask()));
      const expected = ids([...created].reverse());
      for (const size of [7, 5, 25, 30]) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page: { items: TaskRecord[]; nextCursor: string | null } = await store.taskList({ limit: size, cursor });
          pages += 1;
          assert.ok(pages <= 26, 'paging ends');
          assert.ok(page.items.length <= size);
          seen.push(...ids(page.items));
          cursor = page.nextCursor;
        } while (cursor !== null);
        assert.deepEqual(seen, expected, `page size ${size}`);
        // The last page is the one that has items and no next cursor: no empty trailing page.
        assert.equal(pages, Math.max(1, Math.ceil(25 / size)), `page count for size ${size}`);
      }
      const first = await store.taskList({ limit: 1 });
      assert.deepEqual(first.items[0], created.at(-1));
    });

    storeTest(open, 'filters by statuses (several), agent, priority and parent', async ({ store }) => {
      const done = { finishedAt: T0 + 10 };
      const [p1, p2, c1, f1, x1, c2, child1, child2] = await createTasks(store, [
        newTask({ agent: 'alpha', priority: 5 }),
        newTask({ agent: 'beta', priority: 7 }),
        newTask({ agent: 'alpha', status: 'completed', result: { ok: 1 }, ...done }),
        newTask({ agent: 'beta', status: 'failed', error: { message: 'boom', code: 'E' }, ...done }),
        newTask({ agent: 'alpha', status: 'cancelled', cancelRequestedAt: T0, ...done }),
        newTask({ agent: 'beta', status: 'completed', priority: 7, ...done }),
        newTask({ agent: 'alpha', parentId: 'parent-1', priority: 1 }),
        newTask({ agent: 'beta', parentId: 'parent-1', status: 'completed', ...done }),
      ]);
      const list = (params: Parameters<typeof store.taskList>[0]) => store.taskList(params).then((p) => ids(p.items));
      assert.deepEqual(await list({ limit: 50, statuses: ['pending'] }), ids([child1!, p2!, p1!]));
      assert.deepEqual(await list({ limit: 50, statuses: ['completed', 'cancelled'] }), ids([child2!, c2!, x1!, c1!]));
      assert.deepEqual(await list({ limit: 50, statuses: ['failed', 'failed'] }), ids([f1!]));
      assert.deepEqual(await list({ limit: 50, agent: 'alpha' }), ids([child1!, x1!, c1!, p1!]));
      assert.deepEqual(await list({ limit: 50, priority: 7 }), ids([c2!, p2!]));
      assert.deepEqual(await list({ limit: 50, parentId: 'parent-1' }), ids([child2!, child1!]));
      assert.deepEqual(await list({ limit: 50, agent: 'beta', statuses: ['completed', 'pending'] }), ids([child2!, c2!, p2!]));
      assert.deepEqual(await list({ limit: 50, agent: 'nobody' }), []);
      assert.deepEqual(await list({ limit: 50, statuses: ['running'] }), []);
      // Records from a list are whole records.
      const [listed] = (await store.taskList({ limit: 1, statuses: ['failed'] })).items;
      assert.deepEqual(listed, f1);
      // Paging through a multi-status filter.
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: TaskRecord[]; nextCursor: string | null } = await store.taskList({ limit: 2, statuses: ['completed', 'pending', 'cancelled'], cursor });
        seen.push(...ids(page.items));
        assert.ok(seen.length <= 7, 'paging ends');
        cursor = page.nextCursor;
      } while (cursor !== null);
      assert.deepEqual(seen, ids([child2!, child1!, c2!, x1!, c1!, p2!, p1!]));
    });

    storeTest(open, 'keeps each task\'s depth and filters by it, alone and within a tree', async ({ store }) => {
      const [a, b] = await createTasks(store, [newTask(), newTask()]);
      const [a1, b1] = await createTasks(store, [
        newTask({ rootId: a!.id, parentId: a!.id, depth: 2 }),
        newTask({ rootId: b!.id, parentId: b!.id, depth: 2 }),
      ]);
      const [a11] = await createTasks(store, [newTask({ rootId: a!.id, parentId: a1!.id, depth: 3 })]);
      assert.equal((await store.taskGet({ id: a11!.id }))?.depth, 3);
      assert.equal((await store.taskGet({ id: a!.id }))?.depth, 1);
      const list = (params: Omit<Parameters<typeof store.taskList>[0], 'limit'>) => store.taskList({ limit: 50, ...params }).then((p) => ids(p.items));
      assert.deepEqual(await list({ depth: 2 }), ids([b1!, a1!]));
      assert.deepEqual(await list({ depth: 1 }), ids([b!, a!]));
      assert.deepEqual(await list({ rootId: a!.id, depth: 2 }), ids([a1!]));
      assert.deepEqual(await list({ rootId: a!.id, depth: 3 }), ids([a11!]));
      assert.deepEqual(await list({ depth: 4 }), []);
    });

    storeTest(open, 'filters by tree and by owner, with the other filters', async ({ store }) => {
      const done = { status: 'completed' as const, finishedAt: T0 + 10 };
      // Two trees (alice's and bob's), a task owned by nobody; children are submitted by
      // other principals (createdBy) but stay in their tree's ownership, as the engine sets them.
      const [a, b] = await createTasks(store, [newTask({ ownerId: 'alice', createdBy: 'alice' }), newTask({ ownerId: 'bob', createdBy: 'bob' })]);
      const inA = (over: Partial<NewTask>) => newTask({ rootId: a!.id, ownerId: 'alice', createdBy: 'worker-key', ...over });
      const [a1, b1, a2, loose, a3] = await createTasks(store, [
        inA({ parentId: a!.id, agent: 'beta' }),
        newTask({ rootId: b!.id, parentId: b!.id, ownerId: 'bob', createdBy: 'worker-key' }),
        inA({ parentId: a!.id, ...done }),
        newTask({ ownerId: null }),
        inA({ parentId: nextId('task'), priority: 9 }),
      ]);
      const list = (params: Omit<Parameters<typeof store.taskList>[0], 'limit'>) => store.taskList({ limit: 50, ...params }).then((p) => ids(p.items));
      assert.deepEqual(await list({ rootId: a!.id }), ids([a3!, a2!, a1!, a!]));
      assert.deepEqual(await list({ rootId: b!.id }), ids([b1!, b!]));
      assert.deepEqual(await list({ rootId: loose!.id }), ids([loose!]));
      assert.deepEqual(await list({ ownerId: 'alice' }), ids([a3!, a2!, a1!, a!]));
      assert.deepEqual(await list({ ownerId: 'bob' }), ids([b1!, b!]));
      assert.deepEqual(await list({ ownerId: 'worker-key' }), [], 'the owner is not the submitter');
      assert.deepEqual(await list({ rootId: a!.id, ownerId: 'bob' }), []);
      assert.deepEqual(await list({ rootId: a!.id, statuses: ['completed'] }), ids([a2!]));
      assert.deepEqual(await list({ ownerId: 'alice', statuses: ['pending', 'completed'] }), ids([a3!, a2!, a1!, a!]));
      assert.deepEqual(await list({ ownerId: 'alice', agent: 'beta' }), ids([a1!]));
      assert.deepEqual(await list({ ownerId: 'alice', priority: 9 }), ids([a3!]));
      assert.deepEqual(await list({ rootId: a!.id, parentId: a!.id }), ids([a2!, a1!]));
      assert.deepEqual(await list({ rootId: 'no-such-tree' }), []);
      // Paging through a tree.
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: TaskRecord[]; nextCursor: string | null } = await store.taskList({ limit: 3, rootId: a!.id, ownerId: 'alice', cursor });
        seen.push(...ids(page.items));
        assert.ok(seen.length <= 4, 'paging ends');
        cursor = page.nextCursor;
      } while (cursor !== null);
      assert.deepEqual(seen, ids([a3!, a2!, a1!, a!]));
      // The records carry what was written.
      assert.deepEqual([(await getTask(store, a1!.id)).rootId, (await getTask(store, a1!.id)).ownerId], [a!.id, 'alice']);
      assert.equal((await getTask(store, loose!.id)).ownerId, null);
    });

    storeTest(open, 'lists oldest first when asked (a tree parents first), paging forward with its own cursor', async ({ store }) => {
      const [root] = await createTasks(store, [newTask()]);
      const [c1, other, c2] = await createTasks(store, [
        newTask({ rootId: root!.id, parentId: root!.id, depth: 2 }),
        newTask(),
        newTask({ rootId: root!.id, parentId: root!.id, depth: 2, status: 'completed', finishedAt: T0 + 1 }),
      ]);
      const [g1, g2] = await createTasks(store, [
        newTask({ rootId: root!.id, parentId: c1!.id, depth: 3, status: 'cancelled', finishedAt: T0 + 2 }),
        newTask({ rootId: root!.id, parentId: c2!.id, depth: 3 }),
      ]);
      const oldest = (params: Omit<Parameters<typeof store.taskList>[0], 'limit' | 'oldestFirst'>, limit = 50) =>
        store.taskList({ limit, oldestFirst: true, ...params });
      assert.deepEqual(ids((await oldest({ rootId: root!.id })).items), ids([root!, c1!, c2!, g1!, g2!]));
      assert.deepEqual(ids((await oldest({})).items), ids([root!, c1!, other!, c2!, g1!, g2!]));
      // Several statuses are merged in the same order.
      assert.deepEqual(ids((await oldest({ rootId: root!.id, statuses: ['cancelled', 'pending'] })).items), ids([root!, c1!, g1!, g2!]));
      assert.deepEqual(ids((await oldest({ rootId: root!.id, statuses: ['completed', 'pending'] }, 2)).items), ids([root!, c1!]));
      // Pages follow on without gaps or repeats, and the last one says there is no more.
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { items: TaskRecord[]; nextCursor: string | null } = await oldest({ rootId: root!.id, cursor }, 2);
        seen.push(...ids(page.items));
        cursor = page.nextCursor;
        assert.ok(++pages <= 3, 'paging ends');
      } while (cursor !== null);
      assert.deepEqual(seen, ids([root!, c1!, c2!, g1!, g2!]));
      // The default order is unchanged.
      assert.deepEqual(ids((await store.taskList({ limit: 50, rootId: root!.id })).items), ids([g2!, g1!, c2!, c1!, root!]));
    });

    storeTest(open, 'rejects a cursor it did not issue', async ({ store }) => {
      await createTask(store);
      await assert.rejects(store.taskList({ limit: 5, cursor: 'not-a-cursor!' }), { code: 'VALIDATION_FAILED' });
    });

    storeTest(open, 'counts tasks by status, overall and per agent', async ({ store }) => {
      const empty = await store.taskCountByStatus({});
      assert.deepEqual(empty, { pending: 0, dispatched: 0, running: 0, waiting: 0, input_required: 0, completed: 0, failed: 0, cancelled: 0, blocked: 0 });
      const replica = await registerReplica(store);
      const [a] = await createTasks(store, [
        newTask(), newTask(), newTask({ agent: 'beta' }),
        newTask({ status: 'completed', finishedAt: T0 }), newTask({ agent: 'beta', status: 'failed', finishedAt: T0 }),
      ]);
      await run(store, a!, replica);
      assert.deepEqual(await store.taskCountByStatus({}), { pending: 2, dispatched: 0, running: 1, waiting: 0, input_required: 0, completed: 1, failed: 1, cancelled: 0, blocked: 0 });
      assert.deepEqual(await store.taskCountByStatus({ agent: 'beta' }), { pending: 1, dispatched: 0, running: 0, waiting: 0, input_required: 0, completed: 0, failed: 1, cancelled: 0, blocked: 0 });
      assert.deepEqual(await store.taskCountByStatus({ agent: 'nobody' }), { pending: 0, dispatched: 0, running: 0, waiting: 0, input_required: 0, completed: 0, failed: 0, cancelled: 0, blocked: 0 });
    });
  });

  describe('tasks: prune', () => {
    storeTest(open, 'deletes only old terminal tasks, with their assignments and events', async ({ store }) => {
      const replica = await registerReplica(store, { maxConcurrency: 10 });
      const [oldDone, oldFailed, oldCancelled, recentDone, oldPending, live] = await createTasks(store, [
        newTask(), newTask({ maxAttempts: 1 }), newTask(), newTask(), newTask(), newTask(),
      ]);
      // Old completed task, with a full history.
      const r1 = await run(store, oldDone!, replica);
      await mustApply(store, decideComplete({ task: r1.task, assignment: r1.assignment, result: 'ok', now: T0 + 100 }));
      const r2 = await run(store, oldFailed!, replica);
      await mustApply(store, decideFail({
        task: r2.task, assignment: r2.assignment, error: { message: 'no' }, retryable: false, outcome: 'failed', now: T0 + 200, policy: POLICY, random: 0,
      }));
      await mustApply(store, decideCancel({ task: oldCancelled!, assignment: null, now: T0 + 300 }));
      const r4 = await run(store, recentDone!, replica);
      await mustApply(store, decideComplete({ task: r4.task, assignment: r4.assignment, result: 'ok', now: T0 + 10_000 }));
      const r6 = await run(store, live!, replica);

      const deleted = await store.taskPrune({ finishedBefore: T0 + 5_000, limit: 100 });
      assert.equal(deleted, 3);
      for (const gone of [oldDone!, oldFailed!, oldCancelled!]) {
        assert.equal(await store.taskGet({ id: gone.id }), null);
        assert.deepEqual(await store.assignmentListByTask({ taskId: gone.id }), []);
        assert.deepEqual(await store.eventList({ after: 0, limit: 100, taskId: gone.id }), []);
      }
      assert.equal(await store.assignmentGet({ id: r1.assignment.id }), null);
      for (const kept of [recentDone!, oldPending!, live!]) {
        assert.ok(await store.taskGet({ id: kept.id }), `${kept.id} kept`);
        assert.ok((await store.eventList({ after: 0, limit: 100, taskId: kept.id })).length >= 1);
      }
      assert.equal((await store.assignmentListByTask({ taskId: recentDone!.id })).length, 1);
      assert.equal((await store.assignmentListByTask({ taskId: live!.id }))[0]?.id, r6.assignment.id);
      assert.equal(await store.taskPrune({ finishedBefore: T0 + 5_000, limit: 100 }), 0);
    });

    storeTest(open, 'deletes at most `limit` tasks per call, oldest first', async ({ store }) => {
      const created = await createTasks(store, [5, 1, 4, 2, 3].map((k) => newTask({ status: 'completed', finishedAt: T0 + k })));
      assert.equal(await store.taskPrune({ finishedBefore: T0 + 100, limit: 2 }), 2);
      const left = async () => (await store.taskList({ limit: 10 })).items.map((t) => t.finishedAt ?? -1).sort((a, b) => a - b);
      assert.deepEqual(await left(), [T0 + 3, T0 + 4, T0 + 5]);
      assert.equal(await store.taskPrune({ finishedBefore: T0 + 100, limit: 2 }), 2);
      assert.equal(await store.taskPrune({ finishedBefore: T0 + 100, limit: 2 }), 1);
      assert.equal(await store.taskPrune({ finishedBefore: T0 + 100, limit: 2 }), 0);
      assert.equal(created.length, 5);
      assert.deepEqual(await left(), []);
    });

    storeTest(open, 'deletes old events that belong to no task', async ({ store }) => {
      const [agentEvent] = await store.eventAppend({ events: [plainEvent('agent.created', { agent: nextId('agent') })] });
      const task = await createTask(store);
      // Events are stamped with the store's clock: a horizon in the future covers them.
      await store.taskPrune({ finishedBefore: Date.now() + 60_000, limit: 100 });
      const left = await allEvents(store);
      assert.ok(!left.some((e) => e.seq === agentEvent!.seq), 'the task-less event is pruned');
      assert.deepEqual(left.map((e) => e.taskId), [task.id], 'events of live tasks are kept');
    });
  });
}
