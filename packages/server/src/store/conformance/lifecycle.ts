// Conformance: the store as a whole. Readiness, migrations, durability across a reopen, and
// many writes issued at once.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideComplete } from '../../core/task-machine.ts';
import type { Store } from '../store.ts';
import {
  T0, agentRecord, allEvents, apiKeyRecord, auditEntry, createTask, createTasks, createdEvent, getReplica, mustApply, newTask, nextId, plainEvent,
  registerReplica, run, storeTest, type OpenStore,
  ensureAgents,
} from './harness.ts';

export function lifecycleTests(open: OpenStore): void {
  describe('store lifecycle', () => {
    storeTest(open, 'answers ping and migrates again without losing data', async ({ store }) => {
      await store.ping();
      const task = await createTask(store);
      await store.migrate();
      await store.migrate();
      assert.deepEqual(await store.taskGet({ id: task.id }), task);
      assert.equal(typeof store.capabilities.multiNode, 'boolean');
      assert.equal(typeof store.capabilities.crossNodeNotify, 'boolean');
    });

    storeTest(open, 'commits all of many writes issued in the same tick', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const tasks = Array.from({ length: 200 }, (_, i) => newTask({ input: { i } }));
      const results = await Promise.all(tasks.map((task) => store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] })));
      assert.equal(results.length, 200);
      const seqs = results.map((r) => {
        assert.equal(r.length, 1);
        assert.equal(r[0]!.created, true);
        return r[0]!.task.seq;
      });
      assert.equal(new Set(seqs).size, 200, 'distinct seqs');
      assert.equal((await store.taskCountByStatus({})).pending, 200);
      assert.equal((await allEvents(store)).length, 200);
      for (const [i, t] of tasks.entries()) {
        if (i % 37 === 0) assert.deepEqual((await store.taskGet({ id: t.id }))?.input, { i });
      }
    });

    storeTest(open, 'a failing write does not take down the writes issued with it', async ({ store }) => {
      await ensureAgents(store, ['alpha']);
      const good1 = newTask();
      const bad = newTask({ priority: 99 });
      const good2 = newTask();
      const replica = nextId('replica');
      const settled = await Promise.allSettled([
        store.taskCreate({ tasks: [{ task: good1, events: [createdEvent(good1)] }] }),
        store.taskCreate({ tasks: [{ task: bad, events: [createdEvent(bad)] }] }),
        store.replicaRegister({
          replica: { id: replica, agent: 'alpha', site: null, maxConcurrency: 1, registeredAt: T0, lastSeenAt: T0 },
          event: plainEvent('replica.registered', { replicaId: replica }),
        }),
        store.agentCreate({ agent: agentRecord({ name: 'dup' }), event: plainEvent('agent.created') }),
        store.agentCreate({ agent: agentRecord({ name: 'dup' }), event: plainEvent('agent.created') }),
        store.taskCreate({ tasks: [{ task: good2, events: [createdEvent(good2)] }] }),
      ]);
      assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      assert.ok(await store.taskGet({ id: good1.id }));
      assert.ok(await store.taskGet({ id: good2.id }));
      assert.equal(await store.taskGet({ id: bad.id }), null);
      assert.ok(await store.replicaGet({ id: replica }));
      assert.deepEqual((await allEvents(store)).map((e) => e.type).sort(), ['agent.created', 'replica.registered', 'task.created', 'task.created']);
    });

    storeTest(open, 'refuses work after close', async ({ store }) => {
      await store.close();
      await assert.rejects(store.taskCreate({ tasks: [{ task: newTask(), events: [] }] }));
      await assert.rejects(store.taskGet({ id: 'x' }));
      await store.close();
    });
  });

  describe('durability', () => {
    storeTest(open, 'everything written is read back after close and reopen', async ({ store, reopen, t }) => {
      if (!reopen) {
        t.skip('this store cannot be reopened');
        return;
      }
      const replica = await registerReplica(store, { maxConcurrency: 2 });
      const [done, live, idem] = await createTasks(store, [newTask(), newTask({ concurrencyKey: 'k' }), newTask({ idempotencyKey: 'keep-me' })]);
      const l1 = await run(store, done!, replica);
      await mustApply(store, decideComplete({ task: l1.task, assignment: l1.assignment, result: { out: [1, 2] }, now: T0 + 10 }));
      const l2 = await run(store, live!, replica, { concurrencyLimit: 1 });
      const agent = agentRecord({ name: 'durable' });
      await store.agentCreate({ agent, event: plainEvent('agent.created', { agent: agent.name }) });
      await store.apiKeyCreate({ key: apiKeyRecord({ hash: 'h'.repeat(64), expiresAt: T0 + 1, createdBy: 'key-admin', agents: ['alpha'] }) });
      const revokedKey = apiKeyRecord();
      await store.apiKeyCreate({ key: revokedKey });
      await store.apiKeyRevoke({ id: revokedKey.id, at: T0 + 2 });
      await store.tokenRevoke({ jti: 'jti-1', at: T0 + 3, expiresAt: T0 + 60_000 });
      await store.auditAppend({ entries: [auditEntry({ details: { n: 1 } }), auditEntry({ outcome: 'denied', status: 403 })] });

      const before = {
        tasks: await Promise.all([done!, live!, idem!].map((t) => store.taskGet({ id: t.id }))),
        assignments: await Promise.all([l1.assignment.id, l2.assignment.id].map((id) => store.assignmentGet({ id }))),
        replica: await getReplica(store, replica.id),
        agent: await store.agentGet({ name: agent.name }),
        key: await store.apiKeyFindByHash({ hash: 'h'.repeat(64) }),
        apiKeys: await store.apiKeyList({ includeRevoked: true }),
        revocations: await store.tokenRevocationList({ since: 0 }),
        audit: await store.auditList({ limit: 10 }),
        keys: await store.concurrencyKeyInFlight({ keys: ['k'] }),
        events: await allEvents(store),
      };
      // A write that was issued but not awaited before close must still be committed by close.
      const late = newTask();
      const lateWrite = store.taskCreate({ tasks: [{ task: late, events: [] }] });
      await store.close();
      await lateWrite;

      const again: Store = await reopen();
      const after = {
        tasks: await Promise.all([done!, live!, idem!].map((t) => again.taskGet({ id: t.id }))),
        assignments: await Promise.all([l1.assignment.id, l2.assignment.id].map((id) => again.assignmentGet({ id }))),
        replica: await getReplica(again, replica.id),
        agent: await again.agentGet({ name: agent.name }),
        key: await again.apiKeyFindByHash({ hash: 'h'.repeat(64) }),
        apiKeys: await again.apiKeyList({ includeRevoked: true }),
        revocations: await again.tokenRevocationList({ since: 0 }),
        audit: await again.auditList({ limit: 10 }),
        keys: await again.concurrencyKeyInFlight({ keys: ['k'] }),
        events: await allEvents(again),
      };
      assert.deepEqual(after, before);
      assert.ok(await again.taskGet({ id: late.id }), 'the late write survived');
      // Sequence numbers continue after the reopen; they are never reused.
      const next = await createTask(again);
      assert.ok(next.seq > Math.max(...before.tasks.map((t) => t!.seq)));
      // Audit seqs continue too.
      const [entry] = await again.auditAppend({ entries: [auditEntry()] });
      assert.ok(entry!.seq > before.audit.items[0]!.seq);
      const [idemAgain] = await again.taskCreate({ tasks: [{ task: newTask({ idempotencyKey: 'keep-me' }), events: [] }] });
      assert.equal(idemAgain?.created, false);
      assert.equal(idemAgain?.task.id, idem!.id);
    });
  });
}
