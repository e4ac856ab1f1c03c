// The SQLite store: the shared conformance suite on a temporary file, plus what only SQLite has
// (PRAGMAs, group commit, migrations bookkeeping, query plans).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runStoreConformance } from '../src/store/conformance/index.ts';
import { T0, auditEntry, createdEvent, ensureAgents, newTask, plainEvent } from '../src/store/conformance/harness.ts';
import { VERSION_1_ROWS_SQL, checkUpgradedFromVersion1 } from '../src/store/conformance/upgrade.ts';
import { openDatabase } from '../src/store/sqlite/connection.ts';
import { MIGRATIONS, applyMigrations } from '../src/store/sqlite/migrations.ts';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { WriteBatch, refuse } from '../src/store/sqlite/write-batch.ts';
import { DatabaseSync } from 'node:sqlite';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-sqlite-'));
}

runStoreConformance('sqlite', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'flotilla.db');
  let current: SqliteStore = await openSqliteStore({ path: file });
  return {
    store: current,
    reopen: async () => {
      current = await openSqliteStore({ path: file });
      return current;
    },
    cleanup: async () => {
      await current.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite store specifics', () => {
  let dir: string;
  before(() => {
    dir = tempDir();
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function withStore(fn: (store: SqliteStore, file: string) => Promise<void>, options: { synchronous?: 'FULL' | 'NORMAL'; now?: () => number } = {}): Promise<void> {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.db`);
    const store = await openSqliteStore({ path: file, ...options });
    await ensureAgents(store, ['alpha']);
    try {
      await fn(store, file);
    } finally {
      await store.close();
    }
  }

  it('runs in WAL mode with synchronous=FULL, foreign keys on and savepoint journals in memory by default', async () => {
    await withStore(async (store) => {
      const db = store.database;
      assert.equal(db.prepare('PRAGMA journal_mode').get()?.journal_mode, 'wal');
      assert.equal(db.prepare('PRAGMA synchronous').get()?.synchronous, 2);
      assert.equal(db.prepare('PRAGMA foreign_keys').get()?.foreign_keys, 1);
      assert.equal(db.prepare('PRAGMA busy_timeout').get()?.timeout, 5000);
      assert.equal(db.prepare('PRAGMA temp_store').get()?.temp_store, 2, 'temp_store = MEMORY (see connection.ts)');
      assert.deepEqual(store.capabilities, { multiNode: false, crossNodeNotify: false, eventSeqsOnWrite: true });
    });
    await withStore(async (store) => {
      assert.equal(store.database.prepare('PRAGMA synchronous').get()?.synchronous, 1);
    }, { synchronous: 'NORMAL' });
  });

  it('commits relaxed-only batches at synchronous=NORMAL and a batch with a durable write at FULL', async () => {
    const mode = (store: SqliteStore): unknown => store.database.prepare('PRAGMA synchronous').get()?.synchronous;
    await withStore(async (store) => {
      const replica = { id: 'r1', agent: 'alpha', site: null, maxConcurrency: 2, registeredAt: T0, lastSeenAt: T0 };
      await store.replicaRegister({ replica, event: plainEvent('replica.connected', { agent: 'alpha', replicaId: 'r1' }) });
      assert.equal(mode(store), 2, 'a registration is durable');
      await store.replicaTouch({ ids: ['r1'], at: T0 + 1 });
      assert.equal(mode(store), 1, 'a touch alone is relaxed');
      await store.eventAppend({ events: [plainEvent('x.relaxed', {})], durable: false });
      assert.equal(mode(store), 1);
      // Both in one batch: the durable one decides.
      await Promise.all([
        store.replicaTouch({ ids: ['r1'], at: T0 + 2 }),
        store.eventAppend({ events: [plainEvent('x.durable', {})] }),
      ]);
      assert.equal(mode(store), 2, 'a batch with a durable write is flushed');
      const task = newTask();
      await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
      assert.equal(mode(store), 2);
    });
    await withStore(async (store) => {
      await store.eventAppend({ events: [plainEvent('x.durable', {})] });
      assert.equal(mode(store), 1, 'a store opened with NORMAL never fsyncs');
    }, { synchronous: 'NORMAL' });
  });

  it('works in memory', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    await ensureAgents(store, ['alpha']);
    const task = newTask();
    await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
    assert.equal((await store.taskGet({ id: task.id }))?.id, task.id);
    await store.close();
  });

  it('group-commits writes issued in the same tick', async () => {
    await withStore(async (store) => {
      const commitsBefore = store.commitCount;
      const tasks = Array.from({ length: 500 }, () => newTask());
      const results = await Promise.all(tasks.map((task) => store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] })));
      assert.equal(results.length, 500);
      const commits = store.commitCount - commitsBefore;
      assert.ok(commits >= 1 && commits <= 2, `500 writes took ${commits} commits`);
      // Seqs follow submission order within a batch.
      const seqs = results.map((r) => r[0]!.task.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));

      // Writes in separate ticks commit separately.
      const c0 = store.commitCount;
      for (let i = 0; i < 3; i++) await store.eventAppend({ events: [plainEvent('tick')] });
      assert.equal(store.commitCount - c0, 3);
    });
  });

  it('caps a batch, so a burst is split into bounded commits', async () => {
    const store = await openSqliteStore({ path: ':memory:', maxBatchOps: 100 });
    try {
      const c0 = store.commitCount;
      await Promise.all(Array.from({ length: 250 }, () => store.eventAppend({ events: [plainEvent('burst')] })));
      assert.equal(store.commitCount - c0, 3);
    } finally {
      await store.close();
    }
  });

  it('records applied migrations and applies nothing twice', async () => {
    await withStore(async (store, file) => {
      const rows = store.database.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
      assert.deepEqual(rows.map((r) => Number(r.version)), MIGRATIONS.map((m) => m.version));
      assert.deepEqual(applyMigrations(store.database), []);
      await store.close();
      const again = await openSqliteStore({ path: file });
      assert.equal(Number(again.database.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()?.n), MIGRATIONS.length);
      await again.close();
    });
  });

  it('refuses a database migrated by a newer version', async () => {
    const file = path.join(dir, 'newer.db');
    const store = await openSqliteStore({ path: file });
    store.database.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from the future', 0)`);
    await store.close();
    await assert.rejects(openSqliteStore({ path: file }), /newer/);
  });

  it('upgrades a version 1 database: task trees and owners are backfilled, new key fields empty', async () => {
    const file = path.join(dir, 'version-1.db');
    const db = openDatabase({ path: file });
    applyMigrations(db, MIGRATIONS.filter((m) => m.version === 1));
    db.exec(VERSION_1_ROWS_SQL);
    db.close();
    const store = await openSqliteStore({ path: file });
    try {
      await checkUpgradedFromVersion1(store);
    } finally {
      await store.close();
    }
  });

  it('refuses to change an audit entry', async () => {
    await withStore(async (store) => {
      await store.auditAppend({ entries: [auditEntry({ outcome: 'denied', status: 403 })] });
      assert.throws(() => store.database.exec(`UPDATE audit_log SET outcome = 'allowed'`), /append-only/);
      assert.equal((await store.auditList({ limit: 1 })).items[0]?.outcome, 'denied');
    });
  });

  it('enforces the live-assignment invariant in the schema', async () => {
    await withStore(async (store) => {
      const bad = newTask({ status: 'running', assignmentId: null });
      await assert.rejects(store.taskCreate({ tasks: [{ task: bad, events: [] }] }), /CHECK constraint/);
    });
  });

  it('stamps task-less events with its clock and prunes them by it', async () => {
    let now = T0;
    await withStore(async (store) => {
      const [old] = await store.eventAppend({ events: [plainEvent('agent.created')] });
      now = T0 + 10_000;
      const [recent] = await store.eventAppend({ events: [plainEvent('agent.updated')] });
      assert.deepEqual([old!.at, recent!.at], [T0, T0 + 10_000]);
      assert.equal(await store.taskPrune({ finishedBefore: T0 + 5_000, limit: 10 }), 0);
      assert.deepEqual((await store.eventList({ after: 0, limit: 10 })).map((e) => e.type), ['agent.updated']);
    }, { now: () => now });
  });

  it('serves the hot queries from indexes, without scanning tables', async () => {
    await withStore(async (store) => {
      const db = store.database;
      const plan = (sql: string): string => db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all().map((r) => String(r.detail)).join('\n');
      const candidates = plan(`SELECT id FROM tasks WHERE status = 'pending' AND agent = 'a' AND run_at <= 1 ORDER BY priority DESC, sla_deadline, seq LIMIT 10`);
      assert.match(candidates, /tasks_pending_agent_order/);
      assert.doesNotMatch(candidates, /TEMP B-TREE|SCAN tasks/);
      const routed = plan(`SELECT id FROM tasks WHERE status = 'pending' AND agent IS NULL AND run_at <= 1 AND priority < 5 ORDER BY priority DESC, sla_deadline, seq LIMIT 10`);
      assert.match(routed, /tasks_pending_agent_order \(agent=\? AND priority<\?\)/);
      // The rest of one priority after a keyset position: two seeks, each on every column it names.
      const rest = plan(`SELECT id FROM tasks WHERE status = 'pending' AND agent = 'a' AND run_at <= 1 AND priority = 5 AND sla_deadline = 7 AND seq > 3 ORDER BY seq LIMIT 10`);
      assert.match(rest, /tasks_pending_agent_order \(agent=\? AND priority=\? AND sla_deadline=\? AND seq>\?\)/, rest);
      const later = plan(`SELECT id FROM tasks WHERE status = 'pending' AND agent = 'a' AND run_at <= 1 AND priority = 5 AND sla_deadline > 7 ORDER BY sla_deadline, seq LIMIT 10`);
      assert.match(later, /tasks_pending_agent_order \(agent=\? AND priority=\? AND sla_deadline>\?\)/, later);
      for (const p of [rest, later]) assert.doesNotMatch(p, /TEMP B-TREE|SCAN tasks/, p);
      // The SLA sweep and GET /tasks?sla=.
      assert.match(plan(`SELECT id FROM tasks INDEXED BY tasks_sla_check WHERE sla_check_at IS NOT NULL AND sla_check_at <= 5 ORDER BY sla_check_at LIMIT 10`), /tasks_sla_check/);
      for (const state of ['at_risk', 'violated']) {
        const p = plan(`SELECT id FROM tasks t WHERE t.sla_state = '${state}' ORDER BY t.seq DESC LIMIT 10`);
        assert.match(p, new RegExp(`tasks_sla_${state}`), p);
        assert.doesNotMatch(p, /TEMP B-TREE|SCAN tasks\b/, p);
      }
      const byReplica = plan(`SELECT id FROM assignments WHERE replica_id = 'r' AND status IN ('dispatched', 'running')`);
      assert.match(byReplica, /assignments_live_replica/);
      // A tree, newest first; the security reads (statement shapes of sqlite/auth.ts).
      const ordered = [
        [`SELECT id FROM tasks t WHERE t.root_id = 'r' AND t.seq < 9 ORDER BY t.seq DESC LIMIT 10`, /tasks_root_seq/],
        [`SELECT seq FROM audit_log WHERE principal_id = 'p' AND seq < 9 ORDER BY seq DESC LIMIT 10`, /audit_log_principal/],
        [`SELECT seq FROM audit_log WHERE outcome = 'denied' AND outcome <> 'allowed' ORDER BY seq DESC LIMIT 10`, /audit_log_not_allowed/],
        [`SELECT jti FROM token_revocations WHERE revoked_at >= 1 ORDER BY revoked_at, jti`, /token_revocations_revoked_at/],
        [`SELECT seq FROM audit_log WHERE at < 5 ORDER BY at LIMIT 10`, /audit_log_at/],
      ] as const;
      for (const [sql, index] of ordered) {
        const p = plan(sql);
        assert.match(p, index, sql);
        assert.doesNotMatch(p, /SCAN (tasks|audit_log|token_revocations)\b/, sql);
      }
      // A read while the store runs: nothing leaks from the batch's transaction.
      assert.equal(db.isTransaction, false);
    });
  });

  it('keeps payloads off the hot row', async () => {
    await withStore(async (store) => {
      const cols = store.database.prepare(`SELECT name FROM pragma_table_info('tasks')`).all().map((r) => String(r.name));
      for (const heavy of ['input', 'result', 'error', 'correlation', 'type']) assert.ok(!cols.includes(heavy), heavy);
    });
  });

  describe('write batch', () => {
    function memoryDb(): DatabaseSync {
      const db = new DatabaseSync(':memory:');
      db.exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY) STRICT;
               CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id)) STRICT;`);
      return db;
    }
    const count = (db: DatabaseSync, table: string): number => Number(db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get()?.n);

    it('settles each operation with its own outcome, in order', async () => {
      const db = memoryDb();
      const batch = new WriteBatch(db);
      const order: number[] = [];
      const results = await Promise.allSettled([
        batch.enqueue(() => { order.push(1); db.prepare('INSERT INTO parent (id) VALUES (1)').run(); return 'one'; }),
        batch.enqueue(() => { order.push(2); db.prepare('INSERT INTO parent (id) VALUES (2)').run(); throw new Error('two fails'); }),
        batch.enqueue(() => { order.push(3); db.prepare('INSERT INTO parent (id) VALUES (3)').run(); return 'three'; }),
      ]);
      // Without savepoints first; the throw rolls that attempt back and the batch runs again,
      // each operation in its own savepoint.
      assert.deepEqual(order, [1, 2, 1, 2, 3]);
      assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), ['one', 'two fails', 'three']);
      assert.deepEqual(db.prepare('SELECT id FROM parent ORDER BY id').all().map((r) => r.id), [1, 3]);
      assert.equal(batch.commits, 1);
      db.close();
    });

    it('a refusal rejects only its operation, with no rerun and nothing written', async () => {
      const db = memoryDb();
      const batch = new WriteBatch(db);
      const order: number[] = [];
      const results = await Promise.allSettled([
        batch.enqueue(() => { order.push(1); db.prepare('INSERT INTO parent (id) VALUES (1)').run(); return 'one'; }),
        batch.enqueue(() => { order.push(2); return refuse(new Error('two refused')); }),
        batch.enqueue(() => { order.push(3); db.prepare('INSERT INTO parent (id) VALUES (3)').run(); return 'three'; }),
      ]);
      assert.deepEqual(order, [1, 2, 3]);
      assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), ['one', 'two refused', 'three']);
      assert.deepEqual([count(db, 'parent'), batch.commits], [2, 1]);
      db.close();
    });

    it('an operation that ends the transaction itself fails the batch; nothing after it runs outside one', async () => {
      const db = memoryDb();
      const batch = new WriteBatch(db);
      const results = await Promise.allSettled([
        batch.enqueue(() => db.prepare('INSERT INTO parent (id) VALUES (1)').run()),
        batch.enqueue(() => db.exec('COMMIT')),
        batch.enqueue(() => db.prepare('INSERT INTO parent (id) VALUES (3)').run()),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
      assert.equal(db.isTransaction, false);
      assert.deepEqual(db.prepare('SELECT id FROM parent ORDER BY id').all().map((r) => r.id), [1], 'only what the rogue COMMIT itself committed');
      db.close();
    });

    it('rejects every operation of a batch whose COMMIT fails, and recovers', async () => {
      const db = memoryDb();
      db.exec('PRAGMA foreign_keys = ON; PRAGMA defer_foreign_keys = ON');
      const batch = new WriteBatch(db);
      // A deferred foreign key is only checked at COMMIT: the second operation makes it fail.
      const results = await Promise.allSettled([
        batch.enqueue(() => db.prepare('INSERT INTO parent (id) VALUES (1)').run()),
        batch.enqueue(() => db.prepare('INSERT INTO child (id, parent) VALUES (1, 99)').run()),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
      assert.match(String((results[0] as PromiseRejectedResult).reason), /FOREIGN KEY/);
      assert.equal(db.isTransaction, false);
      assert.deepEqual([count(db, 'parent'), count(db, 'child'), batch.commits], [0, 0, 0]);
      await batch.enqueue(() => db.prepare('INSERT INTO parent (id) VALUES (2)').run());
      assert.deepEqual([count(db, 'parent'), batch.commits], [1, 1]);
      db.close();
    });

    it('rejects the whole batch when an operation loses the transaction', async () => {
      const db = memoryDb();
      const batch = new WriteBatch(db);
      const results = await Promise.allSettled([
        batch.enqueue(() => db.prepare('INSERT INTO parent (id) VALUES (1)').run()),
        batch.enqueue(() => db.exec('ROLLBACK')),
        batch.enqueue(() => db.prepare('INSERT INTO parent (id) VALUES (3)').run()),
      ]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
      assert.equal(db.isTransaction, false);
      assert.equal(count(db, 'parent'), 0);
      db.close();
    });

    it('flushes on close and refuses work afterwards', async () => {
      const db = memoryDb();
      const batch = new WriteBatch(db);
      const pending = batch.enqueue(() => db.prepare('INSERT INTO parent (id) VALUES (1)').run());
      assert.equal(batch.pending, 1);
      batch.close();
      await pending;
      assert.equal(count(db, 'parent'), 1);
      await assert.rejects(batch.enqueue(() => 1), { code: 'STORE_UNAVAILABLE' });
      db.close();
    });

    it('refuses an asynchronous operation', async () => {
      const db = memoryDb();
      const batch = new WriteBatch(db);
      await assert.rejects(batch.enqueue(async () => 1), /synchronous/);
      db.close();
    });
  });
});
