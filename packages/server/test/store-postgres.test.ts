// The PostgreSQL store: the shared conformance suite, each test in a schema of its own, plus
// what only PostgreSQL has (concurrent migrations, outages, LISTEN/NOTIFY reconnection,
// advisory-lock leadership, row locks of claims, query plans).
//
// Needs a server: FLOTILLA_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test.
// Without one the file is skipped, except in CI (CI=true), where it fails.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import {
  decideCancel, decideCancelAck, decideComplete, decideDispatch, decideDispatchFailed, decideFail, decideRequeue, decideStart,
} from '../src/core/task-machine.ts';
import type { Transition } from '../src/core/types.ts';
import type { StoreSignal } from '../src/store/store.ts';
import { runStoreConformance, type StoreUnderTest } from '../src/store/conformance/index.ts';
import { LEASE_MS, POLICY, T0, auditEntry, createdEvent, ensureAgents, newTask, nextId, plainEvent } from '../src/store/conformance/harness.ts';
import { VERSION_1_ROWS_SQL, checkUpgradedFromVersion1 } from '../src/store/conformance/upgrade.ts';
import { channelName, createClient, lockKeys } from '../src/store/postgres/connection.ts';
import { MIGRATIONS, applyMigrations } from '../src/store/postgres/migrations.ts';
import { openPostgresStore, type OpenPostgresStoreParams, type PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { candidateStatement } from '../src/store/postgres/task-queries.ts';
import { DUE_DELIVERIES_SQL } from '../src/store/postgres/webhooks.ts';

const DATABASE_URL = process.env.FLOTILLA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** null when the server answers, else why not. */
async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err instanceof Error ? err.message || err.constructor.name : String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

const unreachable = await probe();
if (unreachable !== null) {
  const why = `PostgreSQL is not reachable at ${DATABASE_URL.replace(/\/\/[^@/]*@/, '//***@')} (${unreachable}); set FLOTILLA_TEST_DATABASE_URL`;
  if (process.env.CI === 'true') {
    it('PostgreSQL is reachable (required in CI)', () => assert.fail(why));
  } else {
    it('PostgreSQL store', { skip: why }, () => {});
  }
} else {
  await postgresTests();
}

async function postgresTests(): Promise<void> {
  // One admin session for the whole file: schemas are created and dropped through it.
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  admin.on('error', () => {});
  await admin.connect();
  after(() => admin.end());

  const newSchema = (): string => `flotilla_t_${randomBytes(6).toString('hex')}`;
  const dropSchema = async (schema: string): Promise<void> => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  };

  /** Stores on one schema; `cleanup` closes them all and drops the schema. */
  function harness(schema = newSchema()) {
    const opened: PostgresStore[] = [];
    const app = `flotilla-test-${schema.slice('flotilla_t_'.length)}`;
    let cleaned = false;
    return {
      schema,
      app,
      open: async (over: Partial<OpenPostgresStoreParams> = {}): Promise<PostgresStore> => {
        const store = await openPostgresStore({ url: DATABASE_URL, schema, poolSize: 4, applicationName: app, ...over });
        opened.push(store);
        return store;
      },
      cleanup: async (): Promise<void> => {
        if (cleaned) return;
        cleaned = true;
        await Promise.all(opened.map((s) => s.close()));
        await dropSchema(schema);
      },
    };
  }

  runStoreConformance('postgres', async (): Promise<StoreUnderTest> => {
    const h = harness();
    const store = await h.open();
    return { store, reopen: () => h.open(), peer: () => h.open(), cleanup: h.cleanup };
  });

  async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Backend pids of the sessions with this application name. */
  async function backends(applicationName: string): Promise<number[]> {
    const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    return rows.map((r) => r.pid);
  }

  async function terminate(applicationName: string): Promise<void> {
    const pids = await backends(applicationName);
    assert.ok(pids.length > 0, `a session named ${applicationName} exists`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
  }

  describe('postgres store specifics', () => {
    it('migrates once when several processes start at the same moment', async () => {
      const h = harness();
      try {
        const stores = await Promise.all(Array.from({ length: 5 }, () => h.open()));
        await Promise.all(stores.map((s) => s.migrate()));
        const { rows } = await admin.query(`SELECT version, count(*)::int AS n FROM "${h.schema}".schema_migrations GROUP BY version ORDER BY version`);
        assert.deepEqual(rows, MIGRATIONS.map((m) => ({ version: m.version, n: 1 })));
        // They all work on the one schema.
        await ensureAgents(stores[1]!, ['alpha']);
        const task = newTask();
        await stores[0]!.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
        assert.equal((await stores[4]!.taskGet({ id: task.id }))?.id, task.id);
      } finally {
        await h.cleanup();
      }
    });

    it('configures every session: schema, application name, lock and idle timeouts; URL options are kept', async () => {
      const url = new URL(DATABASE_URL);
      url.searchParams.set('options', '-c statement_timeout=12345');
      const client = createClient({ url: url.toString(), schema: 'Some_Schema', poolSize: 1, applicationName: 'flotilla-probe', connectTimeoutMs: 3_000 }, 'listen');
      await client.connect();
      try {
        const show = async (name: string): Promise<string> => String((await client.query(`SHOW ${name}`)).rows[0]?.[name]);
        assert.equal(await show('search_path'), '"Some_Schema"');
        assert.equal(await show('application_name'), 'flotilla-probe/listen');
        assert.equal(await show('lock_timeout'), '10s');
        assert.equal(await show('idle_in_transaction_session_timeout'), '1min');
        assert.equal(await show('statement_timeout'), '12345ms');
      } finally {
        await client.end();
      }
      assert.equal(channelName('flotilla_t_abc'), 'flotilla_flotilla_t_abc');
      assert.notEqual(channelName('Abc'), channelName('abc'), 'channels of schemas that differ only in case differ');
      assert.ok(Buffer.byteLength(channelName('x'.repeat(63))) <= 63);
    });

    it('refuses a schema migrated by a newer version', async () => {
      const h = harness();
      try {
        await (await h.open()).close();
        await admin.query(`INSERT INTO "${h.schema}".schema_migrations (version, name, applied_at) VALUES (9999, 'from the future', 0)`);
        await assert.rejects(h.open(), /newer/);
      } finally {
        await h.cleanup();
      }
    });

    it('upgrades a version 1 schema: task trees and owners are backfilled, new key fields empty', async () => {
      const h = harness();
      try {
        const settings = { url: DATABASE_URL, schema: h.schema, poolSize: 1, applicationName: h.app, connectTimeoutMs: 3_000 };
        const version1 = MIGRATIONS.filter((m) => m.version === 1);
        await applyMigrations(() => createClient(settings, 'migrate'), { schema: h.schema, lockKey: lockKeys(h.schema).migrations }, version1);
        await admin.query(`BEGIN; SET LOCAL search_path TO "${h.schema}"; ${VERSION_1_ROWS_SQL} COMMIT;`);
        await checkUpgradedFromVersion1(await h.open());
        const { rows } = await admin.query(`SELECT is_nullable FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = 'tasks' AND column_name = 'root_id'`, [h.schema]);
        assert.deepEqual(rows, [{ is_nullable: 'NO' }]);
      } finally {
        await h.cleanup();
      }
    });

    it('refuses to change an audit entry', async () => {
      const h = harness();
      try {
        const store = await h.open();
        await store.auditAppend({ entries: [auditEntry({ outcome: 'denied', status: 403 })] });
        await assert.rejects(admin.query(`UPDATE "${h.schema}".audit_log SET outcome = 'allowed'`), /append-only/);
        assert.equal((await store.auditList({ limit: 1 })).items[0]?.outcome, 'denied');
      } finally {
        await h.cleanup();
      }
    });

    it('keeps stores in different schemas apart, data and signals', async () => {
      const a = harness();
      const b = harness();
      try {
        const [sa, sb] = await Promise.all([a.open(), b.open()]);
        assert.notEqual(sa.channel, sb.channel);
        const heard: StoreSignal[] = [];
        const unsubscribe = await sb.signalSubscribe({ listener: (s) => heard.push(s) });
        await ensureAgents(sa, ['alpha']);
        const task = newTask();
        await sa.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
        assert.equal(await sb.taskGet({ id: task.id }), null);
        assert.equal(await sb.eventLastSeq(), 0);
        assert.equal(await sa.leadershipAcquire({ name: 'maintenance' }), true);
        assert.equal(await sb.leadershipAcquire({ name: 'maintenance' }), true, 'leadership is per schema');
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(heard, []);
        await unsubscribe();
      } finally {
        await Promise.all([a.cleanup(), b.cleanup()]);
      }
    });

    it("marks the signals of a store's own writes as own, and another process's as not", async () => {
      const h = harness();
      try {
        const sa = await h.open();
        const sb = await h.open();
        const heardByA: StoreSignal[] = [];
        const heardByB: StoreSignal[] = [];
        const offA = await sa.signalSubscribe({ listener: (s) => heardByA.push(s) });
        const offB = await sb.signalSubscribe({ listener: (s) => heardByB.push(s) });
        await ensureAgents(sa, ['alpha']);
        const task = newTask();
        await sa.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
        const wake = (list: StoreSignal[]) => list.find((s) => s.kind === 'wake');
        await eventually(() => wake(heardByA) !== undefined && wake(heardByB) !== undefined);
        assert.deepEqual(wake(heardByA), { kind: 'wake', own: true }, 'A wrote it');
        assert.deepEqual(wake(heardByB), { kind: 'wake', own: false }, 'B only heard of it');
        await offA();
        await offB();
      } finally {
        await h.cleanup();
      }
    });

    it('group-commits writes issued in the same tick, in call order', async () => {
      const h = harness();
      try {
        const store = await h.open();
        await ensureAgents(store, ['alpha']);
        const c0 = store.commitCount;
        const tasks = Array.from({ length: 100 }, () => newTask());
        const results = await Promise.all(tasks.map((task) => store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] })));
        assert.equal(store.commitCount - c0, 1);
        const seqs = results.map((r) => r[0]!.task.seq);
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'seqs follow call order');
        const logged = (await store.eventList({ after: 0, limit: 1_000 })).filter((e) => e.type === 'task.created');
        assert.deepEqual(logged.map((e) => e.taskId), tasks.map((t) => t.id), 'events numbered in call order');
      } finally {
        await h.cleanup();
      }
    });

    describe('events numbered after commit (decision 47)', () => {
      it('writers never take the events lock: they commit while a session holds it, and readers wait for it', async () => {
        const h = harness();
        const holder = new pg.Client({ connectionString: DATABASE_URL });
        holder.on('error', () => {});
        try {
          const store = await h.open();
          await ensureAgents(store, ['alpha']);
          await holder.connect();
          await holder.query('BEGIN');
          await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKeys(h.schema).events]);
          const task = newTask();
          await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
          await store.eventAppend({ events: [plainEvent('custom.note', { taskId: task.id })] });
          let read = false;
          const reading = store.eventList({ after: 0, limit: 10 }).then((events) => {
            read = true;
            return events;
          });
          await new Promise((r) => setTimeout(r, 200));
          assert.equal(read, false, 'the reader waits for the numbering lock');
          await holder.query('COMMIT');
          assert.deepEqual((await reading).filter((e) => e.taskId === task.id).map((e) => e.type), ['task.created', 'custom.note']);
        } finally {
          await holder.end().catch(() => {});
          await h.cleanup();
        }
      });

      it('the numbering step refuses to run outside READ COMMITTED, where its snapshot would predate the lock', async () => {
        const h = harness();
        const session = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${h.schema}` });
        session.on('error', () => {});
        try {
          const store = await h.open();
          await store.eventAppend({ events: [plainEvent('custom.queued')] });
          await session.connect();
          await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
          await assert.rejects(session.query('SELECT * FROM event_numbering_step($1::bigint, 10)', [lockKeys(h.schema).events]), /needs READ COMMITTED/);
          await session.query('ROLLBACK');
          // Run the way the store runs it, it numbers what is queued.
          await session.query('BEGIN ISOLATION LEVEL READ COMMITTED');
          const { rows } = await session.query('SELECT picked, moved, numbered FROM event_numbering_step($1::bigint, 10)', [lockKeys(h.schema).events]);
          await session.query('COMMIT');
          assert.deepEqual(rows.map((r) => [Number(r.picked), Number(r.moved), Number(r.numbered)]), [[1, 1, 1]]);
          assert.deepEqual((await store.eventList({ after: 0, limit: 10 })).map((e) => e.type), ['custom.queued']);
        } finally {
          await session.end().catch(() => {});
          await h.cleanup();
        }
      });

      it('an event committed after a later one is numbered after it, never skipped by a follower', async () => {
        const h = harness();
        const slow = new pg.Client({ connectionString: DATABASE_URL, options: `-c search_path=${h.schema}` });
        slow.on('error', () => {});
        try {
          const store = await h.open();
          await slow.connect();
          // A writer whose events were queued first but commit last.
          await slow.query('BEGIN');
          await slow.query(`INSERT INTO event_queue (type, at, data) VALUES ('custom.slow', $1::bigint, '{}')`, [T0]);
          await store.eventAppend({ events: [plainEvent('custom.fast')] });
          const first = await store.eventList({ after: 0, limit: 10 });
          assert.deepEqual(first.map((e) => e.type), ['custom.fast'], 'the uncommitted event is not visible, nor numbered');
          await slow.query('COMMIT');
          const next = await store.eventList({ after: first.at(-1)!.seq, limit: 10 });
          assert.deepEqual(next.map((e) => [e.type, e.seq]), [['custom.slow', first.at(-1)!.seq + 1]], 'numbered next, after the position the follower holds');
          assert.equal(await store.eventLastSeq(), first.at(-1)!.seq + 1);
          const { rows } = await admin.query(`SELECT count(*)::int AS n FROM "${h.schema}".event_queue`);
          assert.deepEqual(rows, [{ n: 0 }], 'the queue is empty once read');
        } finally {
          await slow.end().catch(() => {});
          await h.cleanup();
        }
      });

      it('a seq is never given twice, even when retention deleted the newest events', async () => {
        const h = harness();
        try {
          const store = await h.open();
          await store.eventAppend({ events: [plainEvent('custom.old'), plainEvent('custom.old')] });
          const before = await store.eventLastSeq();
          assert.equal(before, 2);
          // Both are older than the horizon: retention deletes them, the newest included.
          await store.taskPrune({ finishedBefore: Date.now() + 60_000, limit: 100 });
          assert.deepEqual(await store.eventList({ after: 0, limit: 10 }), []);
          await store.eventAppend({ events: [plainEvent('custom.new')] });
          assert.deepEqual((await store.eventList({ after: 0, limit: 10 })).map((e) => [e.type, e.seq]), [['custom.new', before + 1]]);
        } finally {
          await h.cleanup();
        }
      });

      it('upgrading to the numbering queue continues the seqs after the ones already handed out', async () => {
        const h = harness();
        const oldOnes = MIGRATIONS.filter((m) => m.version < 7);
        try {
          await applyMigrations(() => createClient({ url: DATABASE_URL, schema: h.schema, poolSize: 1, applicationName: h.app, connectTimeoutMs: 3_000 }, 'migrate'),
            { schema: h.schema, lockKey: lockKeys(h.schema).migrations }, oldOnes);
          // Seqs 1..3 were handed out; the newest (3) is gone already.
          await admin.query(`INSERT INTO "${h.schema}".events (type, at, data) SELECT 'old', 1, '{}' FROM generate_series(1, 3)`);
          await admin.query(`DELETE FROM "${h.schema}".events WHERE seq = 3`);
          const store = await h.open();
          assert.equal(await store.eventLastSeq(), 3);
          await store.eventAppend({ events: [plainEvent('custom.new')] });
          assert.deepEqual((await store.eventList({ after: 0, limit: 10 })).map((e) => [e.type, e.seq]), [['old', 1], ['old', 2], ['custom.new', 4]]);
        } finally {
          await h.cleanup();
        }
      });
    });

    it('counter writes wait behind a running counter batch and then commit as one; other writes do not wait', async () => {
      const h = harness();
      const blocker = new pg.Client({ connectionString: DATABASE_URL });
      await blocker.connect();
      try {
        // Two lanes: one for the waiting counter batch, one for everything else.
        const store = await h.open({ poolSize: 6, writeConcurrency: 2 });
        await ensureAgents(store, ['alpha']);
        const at = T0;
        const { replica } = await store.replicaRegister({
          replica: { id: nextId('replica'), agent: 'alpha', site: null, maxConcurrency: 100, registeredAt: at, lastSeenAt: at },
          event: plainEvent('replica.registered', { agent: 'alpha' }),
        });
        const tasks = Array.from({ length: 31 }, () => newTask());
        await store.taskCreate({ tasks: tasks.map((task) => ({ task, events: [createdEvent(task)] })) });
        const claim = (task: (typeof tasks)[number]) => store.taskTransition({
          transitions: [decideDispatch({ task: { ...task, seq: 0 }, replica, assignmentId: nextId('asg'), now: at, leaseMs: LEASE_MS, concurrencyLimit: null })],
        });
        // Another session holds the replica's row: the first counter batch waits on it.
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${h.schema}".replicas WHERE id = $1 FOR UPDATE`, [replica.id]);
        const c0 = store.commitCount;
        const first = claim(tasks[0]!);
        const rest: Array<Promise<unknown>> = [];
        for (let tick = 0; tick < 3; tick++) {
          await new Promise((resolve) => setImmediate(resolve));
          for (const task of tasks.slice(1 + tick * 10, 11 + tick * 10)) rest.push(claim(task));
        }
        // Meanwhile a write without counters commits on another lane.
        const other = newTask();
        await store.taskCreate({ tasks: [{ task: other, events: [createdEvent(other)] }] });
        assert.equal(store.commitCount - c0, 1, 'the create committed while the counter batch waited');
        await blocker.query('COMMIT');
        const results = await Promise.all([first, ...rest]) as Array<Array<{ ok: boolean }>>;
        assert.ok(results.every(([r]) => r?.ok));
        assert.equal(store.commitCount - c0, 3, 'the 30 claims queued behind the first went together into one batch');
        assert.equal((await store.replicaGet({ id: replica.id }))?.inFlight, 31);
      } finally {
        await blocker.end();
        await h.cleanup();
      }
    });

    it('releases in one call on a drifted counter apply as one by one: only while in_flight > 0', async () => {
      const h = harness();
      try {
        const store = await h.open();
        await ensureAgents(store, ['alpha']);
        const { replica } = await store.replicaRegister({
          replica: { id: nextId('replica'), agent: 'alpha', site: null, maxConcurrency: 5, registeredAt: T0, lastSeenAt: T0 },
          event: plainEvent('replica.registered', { agent: 'alpha' }),
        });
        const tasks = [newTask(), newTask()];
        await store.taskCreate({ tasks: tasks.map((task) => ({ task, events: [createdEvent(task)] })) });
        const claims = tasks.map((task) => decideDispatch({ task: { ...task, seq: 0 }, replica, assignmentId: nextId('asg'), now: T0, leaseMs: LEASE_MS, concurrencyLimit: null }));
        assert.ok((await store.taskTransition({ transitions: claims })).every((r) => r.ok));
        await admin.query(`UPDATE "${h.schema}".replicas SET in_flight = 1 WHERE id = $1`, [replica.id]);
        const completes = await Promise.all(tasks.map(async (task, i) => {
          const t = (await store.taskGet({ id: task.id }))!;
          return decideComplete({ task: t, assignment: claims[i]!.assignmentInsert!, result: i, now: T0 + 1 });
        }));
        assert.ok((await store.taskTransition({ transitions: completes })).every((r) => r.ok));
        const r = (await store.replicaGet({ id: replica.id }))!;
        assert.deepEqual([r.inFlight, r.completed], [0, 1], 'the second release found in_flight at 0 and counted nothing');
      } finally {
        await h.cleanup();
      }
    });

    it('enforces the live-assignment invariant and the JSON shapes in the schema', async () => {
      const h = harness();
      try {
        const store = await h.open();
        await ensureAgents(store, ['alpha']);
        const bad = newTask({ status: 'running', assignmentId: null });
        await assert.rejects(store.taskCreate({ tasks: [{ task: bad, events: [] }] }), /check constraint/);
        const good = newTask();
        await store.taskCreate({ tasks: [{ task: good, events: [] }] });
        await assert.rejects(admin.query(`UPDATE "${h.schema}".tasks SET capabilities = '{}' WHERE id = $1`, [good.id]), /check constraint/);
      } finally {
        await h.cleanup();
      }
    });

    it('refuses text PostgreSQL cannot store with VALIDATION_FAILED', async () => {
      const h = harness();
      try {
        const store = await h.open();
        await ensureAgents(store, ['alpha']);
        const task = newTask({ input: { text: 'nul \u0000 inside' } });
        await assert.rejects(store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] }), { code: 'VALIDATION_FAILED' });
      } finally {
        await h.cleanup();
      }
    });

    it('parses bigint per pool, leaving pg\'s global parsers alone', async () => {
      const h = harness();
      try {
        const store = await h.open();
        await ensureAgents(store, ['alpha']);
        const [result] = await store.taskCreate({ tasks: [{ task: newTask({ runAt: 2 ** 52 }), events: [] }] });
        assert.equal(typeof result!.task.seq, 'number');
        assert.equal((await store.taskGet({ id: result!.task.id }))?.runAt, 2 ** 52);
        assert.equal(pg.types.getTypeParser(20, 'text')('5'), '5');
      } finally {
        await h.cleanup();
      }
    });

    describe('outages', () => {
      const unavailable = { code: 'STORE_UNAVAILABLE' };

      it('answers STORE_UNAVAILABLE at once when nothing listens on the port, for reads and writes', async () => {
        await assert.rejects(openPostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test' }), unavailable);
        const store = await openPostgresStore({ url: 'postgres://postgres@127.0.0.1:1/test', migrate: false });
        try {
          const started = Date.now();
          await Promise.all([
            assert.rejects(store.taskGet({ id: 'x' }), unavailable),
            assert.rejects(store.taskCreate({ tasks: [{ task: newTask(), events: [] }] }), unavailable),
            assert.rejects(store.ping(), unavailable),
            assert.rejects(store.leadershipAcquire({ name: 'maintenance' }), unavailable),
          ]);
          assert.ok(Date.now() - started < 3_000, `failed in ${Date.now() - started} ms`);
        } finally {
          await store.close();
        }
      });

      it('answers STORE_UNAVAILABLE after the connect timeout when the server does not answer', async () => {
        // Accepts connections and never says a word.
        const sockets = new Set<net.Socket>();
        const silent = net.createServer((socket) => sockets.add(socket));
        await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
        const { port } = silent.address() as net.AddressInfo;
        const store = await openPostgresStore({ url: `postgres://postgres@127.0.0.1:${port}/test`, migrate: false, connectTimeoutMs: 300 });
        try {
          const started = Date.now();
          await Promise.all([
            assert.rejects(store.taskGet({ id: 'x' }), unavailable),
            assert.rejects(store.eventAppend({ events: [plainEvent('x')] }), unavailable),
          ]);
          assert.ok(Date.now() - started < 2_000, `failed in ${Date.now() - started} ms`);
        } finally {
          await store.close();
          for (const socket of sockets) socket.destroy();
          await new Promise((resolve) => silent.close(resolve));
        }
      });

      it('recovers by itself when its pooled sessions are terminated', async () => {
        const h = harness();
        try {
          const store = await h.open();
          await ensureAgents(store, ['alpha']);
          const task = newTask();
          await store.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
          await terminate(h.app);
          // Idle sessions learn of it asynchronously; the store must not crash, and soon works again.
          await eventually(async () => (await store.taskGet({ id: task.id }).catch(() => null)) !== null);
          const again = newTask();
          await store.taskCreate({ tasks: [{ task: again, events: [createdEvent(again)] }] });
          assert.ok(await store.taskGet({ id: again.id }));
        } finally {
          await h.cleanup();
        }
      });
    });

    describe('signals and leadership sessions', () => {
      it('reopens the LISTEN session after it is terminated and says so', async () => {
        const h = harness();
        try {
          const store = await h.open();
          const writer = await h.open({ applicationName: `${h.app}-w` });
          await ensureAgents(writer, ['alpha']);
          const got: StoreSignal['kind'][] = [];
          const unsubscribe = await store.signalSubscribe({ listener: (s) => got.push(s.kind) });
          await terminate(`${h.app}/listen`);
          await eventually(() => got.includes('reconnected'));
          got.length = 0;
          const task = newTask();
          await writer.taskCreate({ tasks: [{ task, events: [createdEvent(task)] }] });
          await eventually(() => got.includes('events') && got.includes('wake'));
          await unsubscribe();
          assert.deepEqual(await backends(`${h.app}/listen`), [], 'the last unsubscribe ends the session');
        } finally {
          await h.cleanup();
        }
      });

      it('moves leadership to a peer when the holder\'s session is terminated', async () => {
        const h = harness();
        try {
          const holder = await h.open();
          const peer = await h.open({ applicationName: `${h.app}-p` });
          assert.equal(await holder.leadershipAcquire({ name: 'maintenance' }), true);
          assert.equal(await peer.leadershipAcquire({ name: 'maintenance' }), false);
          await terminate(`${h.app}/leader`);
          await eventually(() => peer.leadershipAcquire({ name: 'maintenance' }));
          // The old holder notices, forgets, and finds the duty taken.
          await eventually(async () => (await holder.leadershipAcquire({ name: 'maintenance' }).catch(() => null)) === false);
          assert.equal(await peer.leadershipAcquire({ name: 'maintenance' }), true);
        } finally {
          await h.cleanup();
        }
      });
    });

    describe('row locks', () => {
      it('a claim skips a task another transaction holds; a cancellation waits for it', async () => {
        const h = harness();
        try {
          const store = await h.open();
          await ensureAgents(store, ['alpha']);
          const replica = nextId('replica');
          await store.replicaRegister({
            replica: { id: replica, agent: 'alpha', site: null, maxConcurrency: 5, registeredAt: T0, lastSeenAt: T0 },
            event: plainEvent('replica.registered'),
          });
          const [created] = await store.taskCreate({ tasks: [{ task: newTask(), events: [] }] });
          const task = created!.task;
          const blocker = new pg.Client({ connectionString: DATABASE_URL });
          await blocker.connect();
          try {
            await blocker.query('BEGIN');
            await blocker.query(`SELECT 1 FROM "${h.schema}".tasks WHERE id = $1 FOR UPDATE`, [task.id]);
            const claim = decideDispatch({ task, replica: { id: replica, agent: 'alpha' }, assignmentId: nextId('asg'), now: T0, leaseMs: LEASE_MS, concurrencyLimit: null });
            const started = Date.now();
            assert.deepEqual(await store.taskTransition({ transitions: [claim] }), [{ ok: false, conflict: 'task' }]);
            assert.ok(Date.now() - started < 1_000, 'the claim did not wait');

            let settled = false;
            const cancel = store.taskTransition({ transitions: [decideCancel({ task, assignment: null, now: T0 + 1 })!] })
              .finally(() => { settled = true; });
            await new Promise((r) => setTimeout(r, 200));
            assert.equal(settled, false, 'the cancellation waits for the lock');
            await blocker.query('COMMIT');
            const [result] = await cancel;
            assert.equal(result?.ok, true, 'and then applies');
          } finally {
            await blocker.end();
          }
        } finally {
          await h.cleanup();
        }
      });
    });

    describe('pipelined statements (BEGIN and locks with the first statement, events with COMMIT)', () => {
      async function withReplica(store: PostgresStore, maxConcurrency = 2): Promise<string> {
        await ensureAgents(store, ['alpha']);
        const replica = nextId('replica');
        await store.replicaRegister({
          replica: { id: replica, agent: 'alpha', site: null, maxConcurrency, registeredAt: T0, lastSeenAt: T0 },
          event: plainEvent('replica.registered', { replicaId: replica }),
        });
        return replica;
      }

      it('an events insert that fails commits nothing: the COMMIT behind it answers ROLLBACK', async () => {
        const h = harness();
        try {
          const store = await h.open();
          const replica = await withReplica(store);
          const task = newTask();
          const handOff = decideDispatch({ task: { ...task, seq: 0 }, replica: { id: replica, agent: 'alpha' }, assignmentId: nextId('asg'), now: T0, leaseMs: LEASE_MS, concurrencyLimit: null });
          // PostgreSQL refuses NUL in jsonb text: the task's own rows are fine, its event is not.
          const bad = { ...createdEvent(task), data: { note: 'nul \u0000 inside' } };
          await assert.rejects(store.taskCreate({ tasks: [{ task, events: [bad], dispatch: handOff }] }), { code: 'VALIDATION_FAILED' });
          assert.equal(await store.taskGet({ id: task.id }), null, 'the task was not committed');
          assert.equal(await store.assignmentGet({ id: handOff.assignmentInsert!.id }), null, 'nor its hand-off');
          assert.equal((await store.replicaGet({ id: replica }))?.inFlight, 0, 'nor the slot it took');
          const next = newTask();
          const [again] = await store.taskCreate({ tasks: [{ task: next, events: [createdEvent(next)] }] });
          assert.equal(again?.created, true, 'the store goes on');
        } finally {
          await h.cleanup();
        }
      });

      it('a counter lock that fails is the batch\'s error, not the statement behind it that the failure aborted', async () => {
        const h = harness();
        const blocker = new pg.Client({ connectionString: DATABASE_URL });
        blocker.on('error', () => {});
        try {
          const store = await h.open();
          const replica = await withReplica(store);
          const [created] = await store.taskCreate({ tasks: [{ task: newTask(), events: [] }] });
          const task = created!.task;
          await blocker.connect();
          await blocker.query('BEGIN');
          await blocker.query(`SELECT 1 FROM "${h.schema}".replicas WHERE id = $1 FOR UPDATE`, [replica]);
          const claim = decideDispatch({ task, replica: { id: replica, agent: 'alpha' }, assignmentId: nextId('asg'), now: T0, leaseMs: LEASE_MS, concurrencyLimit: null });
          const claimed = store.taskTransition({ transitions: [claim] });
          claimed.catch(() => {});
          // The batch's lock waits for the blocker's row lock; its claim statement is already sent behind it.
          let waiting: number[] = [];
          await eventually(async () => {
            const { rows } = await admin.query<{ pid: number }>(
              "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [h.app]);
            waiting = rows.map((r) => r.pid);
            return waiting.length === 1;
          });
          await admin.query('SELECT pg_cancel_backend($1)', [waiting[0]]);
          // 57014 (the cancelled lock) is an outage; the claim's 25P02 behind it would have been INTERNAL.
          await assert.rejects(claimed, { code: 'STORE_UNAVAILABLE' });
          await blocker.query('COMMIT');
          assert.equal((await store.taskGet({ id: task.id }))?.status, 'pending', 'nothing was written');
          assert.equal((await store.replicaGet({ id: replica }))?.inFlight, 0);
          assert.deepEqual((await store.taskTransition({ transitions: [claim] })).map((r) => r.ok), [true], 'and the same claim applies now');
        } finally {
          await blocker.end().catch(() => {});
          await h.cleanup();
        }
      });
    });

    describe('concurrency', () => {
      it('runs a batch again when the database aborts it to break a deadlock', async () => {
        const h = harness();
        const other = new pg.Client({ connectionString: DATABASE_URL });
        other.on('error', () => {});
        try {
          const store = await h.open();
          await ensureAgents(store, ['alpha']);
          const [x, y] = (await store.taskCreate({ tasks: [newTask(), newTask()].map((task) => ({ task, events: [] })) })).map((r) => r.task);
          await other.connect();
          await other.query('BEGIN');
          await other.query(`SELECT 1 FROM "${h.schema}".tasks WHERE id = $1 FOR UPDATE`, [x!.id]);
          // One batch: it locks y, then waits for x.
          const cancels = Promise.all([y!, x!].map((task) => store.taskTransition({ transitions: [decideCancel({ task, assignment: null, now: T0 + 1 })!] })));
          await new Promise((r) => setTimeout(r, 100));
          // The other transaction now wants y: a deadlock, which PostgreSQL breaks by aborting one side.
          await other.query(`SELECT 1 FROM "${h.schema}".tasks WHERE id = $1 FOR UPDATE`, [y!.id]).catch(() => {});
          await other.query('COMMIT').catch(() => {});
          const results = await cancels;
          assert.deepEqual(results.map(([r]) => r?.ok), [true, true]);
          assert.deepEqual([(await store.taskGet({ id: x!.id }))?.status, (await store.taskGet({ id: y!.id }))?.status], ['cancelled', 'cancelled']);
        } finally {
          await other.end().catch(() => {});
          await h.cleanup();
        }
      });


      it('keeps slot and key counts exact while several processes race transitions on the same rows', async () => {
        const h = harness();
        try {
          const stores = await Promise.all([0, 1, 2].map((i) => h.open({ applicationName: `${h.app}-${i}`, poolSize: 6, writeConcurrency: 3 })));
          const [first] = stores;
          await ensureAgents(first!, ['alpha']);
          const replicas = ['r-a', 'r-b', 'r-c', 'r-d'];
          for (const id of replicas) {
            await first!.replicaRegister({
              replica: { id, agent: 'alpha', site: null, maxConcurrency: 3, registeredAt: T0, lastSeenAt: T0 },
              event: plainEvent('replica.registered', { replicaId: id }),
            });
          }
          const keys = ['k1', 'k2', null];
          const created = await first!.taskCreate({
            tasks: Array.from({ length: 40 }, (_, i) => newTask({ concurrencyKey: keys[i % 3]!, maxAttempts: 50 })).map((task) => ({ task, events: [createdEvent(task)] })),
          });
          const ids = created.map((r) => r.task.id);
          const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
          let now = T0;

          /** Reads a task as one process would and decides something about it (often on stale data). */
          const decide = async (store: PostgresStore, id: string): Promise<Transition | null> => {
            const task = await store.taskGet({ id });
            if (!task) return null;
            now += 1;
            const assignment = task.assignmentId === null ? null : await store.assignmentGet({ id: task.assignmentId });
            if (task.status === 'pending') {
              return decideDispatch({
                task, replica: { id: pick(replicas), agent: 'alpha' }, assignmentId: nextId('asg'), now, leaseMs: LEASE_MS,
                concurrencyLimit: task.concurrencyKey === null ? null : 2,
              });
            }
            if (task.status === 'failed') return decideRequeue({ task, now });
            if (!assignment || (task.status !== 'dispatched' && task.status !== 'running')) return null;
            try {
              if (task.cancelRequestedAt !== null) return decideCancelAck({ task, assignment, now, reason: 'ack' });
              if (task.status === 'dispatched') {
                return Math.random() < 0.8 ? decideStart({ task, assignment, now, leaseMs: LEASE_MS }) : decideDispatchFailed({ task, assignment, now, reason: 'gone' });
              }
              const roll = Math.random();
              if (roll < 0.4) return decideComplete({ task, assignment, result: roll, now });
              if (roll < 0.8) {
                return decideFail({ task, assignment, error: { message: 'x' }, retryable: true, outcome: 'failed', now, policy: { ...POLICY, maxDelayMs: 0, baseDelayMs: 0 }, random: 0 });
              }
              return decideCancel({ task, assignment, now });
            } catch {
              return null; // the state machine refused (stale records): nothing to write
            }
          };

          for (let round = 0; round < 12; round++) {
            await Promise.all(stores.map(async (store) => {
              const transitions = (await Promise.all(Array.from({ length: 12 }, () => decide(store, pick(ids))))).filter((t) => t !== null);
              // Half as separate calls spread over a few milliseconds (so batches of one process
              // overlap in several lanes too), half as one multi-transition call.
              const half = Math.floor(transitions.length / 2);
              const results = await Promise.all([
                ...transitions.slice(0, half).map(async (t) => {
                  await new Promise((r) => setTimeout(r, Math.random() * 3));
                  return store.taskTransition({ transitions: [t] });
                }),
                store.taskTransition({ transitions: transitions.slice(half) }),
              ]);
              for (const r of results.flat()) if (!r.ok) assert.ok(['task', 'assignment', 'replica_slot', 'concurrency_key'].includes(r.conflict));
            }));
          }

          const s = `"${h.schema}"`;
          const live = `('dispatched', 'running')`;
          const { rows: replicaDrift } = await admin.query(`
            SELECT r.id, r.in_flight, r.max_concurrency,
              (SELECT count(*)::int FROM ${s}.assignments a WHERE a.replica_id = r.id AND a.status IN ${live}) AS live
            FROM ${s}.replicas r`);
          for (const r of replicaDrift) {
            assert.equal(r.in_flight, r.live, `replica ${r.id}: in_flight matches its live assignments`);
            assert.ok(r.in_flight <= r.max_concurrency, `replica ${r.id} is not overfilled`);
          }
          const { rows: keyDrift } = await admin.query(`
            SELECT k.key, coalesce(c.in_flight, 0) AS in_flight, count(a.id)::int AS live
            FROM (VALUES ('k1'), ('k2')) AS k (key)
            LEFT JOIN ${s}.concurrency_keys c ON c.key = k.key
            LEFT JOIN ${s}.tasks t ON t.concurrency_key = k.key
            LEFT JOIN ${s}.assignments a ON a.task_id = t.id AND a.status IN ${live}
            GROUP BY k.key, c.in_flight`);
          for (const k of keyDrift) {
            assert.equal(k.in_flight, k.live, `key ${k.key}: the count matches its live assignments`);
            assert.ok(k.in_flight <= 2, `key ${k.key} is within its limit`);
          }
          const { rows: [orphans] } = await admin.query(`
            SELECT
              (SELECT count(*)::int FROM ${s}.tasks t WHERE t.assignment_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM ${s}.assignments a WHERE a.id = t.assignment_id AND a.status IN ${live})) AS tasks_without_live,
              (SELECT count(*)::int FROM ${s}.assignments a WHERE a.status IN ${live} AND NOT EXISTS (
                SELECT 1 FROM ${s}.tasks t WHERE t.assignment_id = a.id)) AS live_without_task,
              (SELECT count(*)::int FROM ${s}.concurrency_keys WHERE in_flight = 0) AS idle_keys`);
          assert.deepEqual(orphans, { tasks_without_live: 0, live_without_task: 0, idle_keys: 0 });
          const history = await first!.eventList({ after: 0, limit: 100_000 });
          const seqs = history.map((e) => e.seq);
          assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
          assert.ok(history.filter((e) => e.type === 'task.dispatched').length > 20, 'the race did real work');
        } finally {
          await h.cleanup();
        }
      });
    });

    describe('query plans', () => {
      it('serves the candidate query from the partial queue index, without scanning tasks', async () => {
        const h = harness();
        try {
          await (await h.open()).close();
          const s = `"${h.schema}"`;
          // 5,000 tasks over 10 agents and the capability-routed queue, a tenth of them pending
          // (the queue is a small part of the history), and statistics.
          await admin.query(`INSERT INTO ${s}.tasks (id, root_id, status, priority, agent, attempt, max_attempts, timeout_ms, run_at, created_at,
              updated_at, finished_at)
            SELECT 'plan-' || g, 'plan-' || g, CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'completed' END, g % 10,
              CASE WHEN g % 11 = 0 THEN NULL ELSE 'agent-' || (g % 7) END, 0, 3, 60000, 0, 0, 0, CASE WHEN g % 10 = 0 THEN NULL ELSE 0 END
            FROM generate_series(1, 5000) AS g`);
          await admin.query(`ANALYZE ${s}.tasks`);
          const explain = async (params: Parameters<typeof candidateStatement>[0]): Promise<string> => {
            const stmt = candidateStatement(params);
            await admin.query('BEGIN');
            try {
              await admin.query(`SET LOCAL search_path TO ${s}`);
              const { rows } = await admin.query(`EXPLAIN ${stmt.text}`, stmt.values);
              return rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
            } finally {
              await admin.query('COMMIT');
            }
          };
          const base = { agents: ['agent-3'], includeCapabilityRouted: false, now: 1, limit: 10 };
          for (const params of [base, { ...base, includeCapabilityRouted: true }, { ...base, includeCapabilityRouted: true, after: { priority: 5, slaDeadline: null, seq: 100 } }]) {
            const plan = await explain(params);
            assert.match(plan, /tasks_pending_agent_order/, plan);
            assert.doesNotMatch(plan, /Seq Scan on tasks/, plan);
          }
        } finally {
          await h.cleanup();
        }
      });

      it('webhooks: the sender finds an earlier pending delivery of the same task through the order index, not a scan', async () => {
        const h = harness();
        try {
          await (await h.open()).close();
          const s = `"${h.schema}"`;
          // A receiver that was down: 4,000 tasks with 5 pending deliveries each, each task's first backed off.
          await admin.query(`INSERT INTO ${s}.webhook_subscriptions (id, url, events, enabled, description, owner_id, visibility, secret_sealed, from_seq, created_at, updated_at)
            VALUES ('w1', 'http://127.0.0.1:9/x', '["*"]', true, '', 'k', '{"all":true}', 'v1.a.b.c', 0, 0, 0)`);
          await admin.query(`INSERT INTO ${s}.webhook_deliveries (subscription_id, event_seq, event_type, task_id, body, status, attempts, next_at, created_at)
            SELECT 'w1', g, 'task.x', 't' || ((g - 1) / 5), '{}', 'pending', 0, CASE WHEN (g - 1) % 5 = 0 THEN 9999999 ELSE 0 END, 0
            FROM generate_series(1, 20000) AS g`);
          await admin.query(`ANALYZE ${s}.webhook_deliveries`);
          await admin.query('BEGIN');
          try {
            await admin.query(`SET LOCAL search_path TO ${s}`);
            const { rows } = await admin.query(`EXPLAIN ${DUE_DELIVERIES_SQL}`, [1000, 'notify', 64]);
            const plan = rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
            assert.match(plan, /Index (Only )?Scan using webhook_deliveries_order on webhook_deliveries e/, plan);
            assert.match(plan, /Index Cond: \(.*COALESCE\(task_id/, plan);
          } finally {
            await admin.query('COMMIT');
          }
        } finally {
          await h.cleanup();
        }
      });
    });
  });
}
