// The store alone: what one task's writes cost with no HTTP, no WebSocket, no engine around
// them. It runs a task's life through the Store interface exactly as the engine does (the
// transitions come from core/task-machine), in the shapes the W1 workload produces:
//   create    one task per taskCreate call, 50 calls in flight (they share group commits)
//   dispatch  one taskTransition call per 50 dispatches (a dispatch pass)
//   complete  one taskTransition call per task, 50 in flight (worker reports, no `start`)
// and prints the cost per task of each phase and the cycle rate they bound. It answers "how
// fast could the full benchmark be if everything but the store were free?".
//   node bench/store-floor.ts [--store sqlite|postgres] [--tasks N] [--drop-indexes a,b]
// --drop-indexes drops the named indexes after the migrations: it bounds what an index costs
// the hot path (decision 4's narrow row was measured this way).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { v7 as uuidv7 } from 'uuid';
import { decideComplete, decideDispatch } from '../packages/server/src/core/task-machine.ts';
import type { NewTask, TaskRecord, Transition } from '../packages/server/src/core/types.ts';
import { openPostgresStore } from '../packages/server/src/store/postgres/postgres-store.ts';
import { openSqliteStore } from '../packages/server/src/store/sqlite/sqlite-store.ts';
import type { Store } from '../packages/server/src/store/store.ts';
import { agentRecord, createdEvent, newTask } from '../packages/server/src/store/conformance/harness.ts';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { createDatabase } from './lib/postgres.ts';

const IN_FLIGHT = 50;
const { values } = parseArgs({ options: { store: { type: 'string', default: 'sqlite' }, tasks: { type: 'string', default: '20000' }, 'drop-indexes': { type: 'string', default: '' } } });
const N = Number(values.tasks);
const PAD = 'x'.repeat(180);
const DROP = values['drop-indexes'] ? values['drop-indexes'].split(',') : [];

/** The conformance suite's task, with a time-ordered id (as the server's) and a ~200-byte input. */
function floorTask(now: number): NewTask {
  const id = uuidv7();
  return newTask({ id, rootId: id, agent: 'floor', type: 'bench', input: { n: 1, pad: PAD }, runAt: now, createdAt: now, updatedAt: now, createdBy: 'bench', ownerId: 'bench' });
}

/** Runs `count` jobs with at most IN_FLIGHT at once; returns µs per job. */
async function pipelined(count: number, job: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < count) await job(next++);
  }));
  return ((performance.now() - t0) * 1000) / count;
}

async function main(): Promise<void> {
  let store: Store;
  let cleanup: () => Promise<void>;
  if (values.store === 'postgres') {
    const db = await createDatabase();
    store = await openPostgresStore({ url: db.url });
    cleanup = db.drop;
    if (DROP.length > 0) {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      for (const name of DROP) await client.query(`DROP INDEX ${name}`);
      await client.end();
    }
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-floor-'));
    store = await openSqliteStore({ path: join(dir, 'floor.db') });
    if (DROP.length > 0) {
      const db = new DatabaseSync(join(dir, 'floor.db'));
      for (const name of DROP) db.exec(`DROP INDEX ${name}`);
      db.close();
    }
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  }
  try {
    const now = Date.now();
    const none = { type: 'bench.setup', taskId: null, agent: 'floor', replicaId: null, assignmentId: null, data: {} };
    await store.agentCreate({
      agent: agentRecord({ name: 'floor', capabilities: [], maxConcurrency: N, createdAt: now, updatedAt: now }),
      event: none,
    });
    const { replica } = await store.replicaRegister({
      replica: { id: 'floor-1', agent: 'floor', site: null, maxConcurrency: N, registeredAt: now, lastSeenAt: now },
      event: { ...none, replicaId: 'floor-1' },
    });

    const tasks: NewTask[] = Array.from({ length: N }, () => floorTask(now));
    const createUs = await pipelined(N, (i) => store.taskCreate({ tasks: [{ task: tasks[i]!, events: [createdEvent(tasks[i]!)] }] }));

    const dispatches: Transition[] = tasks.map((task) => decideDispatch({
      task: { ...task, seq: 0 } as TaskRecord, replica: { id: replica.id, agent: 'floor' }, assignmentId: uuidv7(), now, leaseMs: 60_000, concurrencyLimit: null,
    }));
    let t0 = performance.now();
    for (let i = 0; i < N; i += IN_FLIGHT) {
      const results = await store.taskTransition({ transitions: dispatches.slice(i, i + IN_FLIGHT) });
      if (!results.every((r) => r.ok)) throw new Error('a dispatch conflicted');
    }
    const dispatchUs = ((performance.now() - t0) * 1000) / N;

    t0 = performance.now();
    const completeUs = await pipelined(N, async (i) => {
      const d = dispatches[i]!;
      const task = { ...tasks[i]!, seq: 0, status: 'dispatched', assignmentId: d.assignmentInsert!.id, attempt: 1 } as TaskRecord;
      const [r] = await store.taskTransition({ transitions: [decideComplete({ task, assignment: d.assignmentInsert!, result: { ok: true }, now })] });
      if (!r?.ok) throw new Error('a completion conflicted');
    });
    const cycleUs = dispatchUs + completeUs;
    console.log(`store floor, ${values.store}, ${N} tasks${DROP.length > 0 ? `, without ${DROP.join(', ')}` : ''} (µs per task, and the rate it bounds)`);
    console.log(`  create    ${createUs.toFixed(1).padStart(7)} µs  ${Math.round(1e6 / createUs).toLocaleString('en-US').padStart(8)}/s`);
    console.log(`  dispatch  ${dispatchUs.toFixed(1).padStart(7)} µs`);
    console.log(`  complete  ${completeUs.toFixed(1).padStart(7)} µs`);
    console.log(`  drain     ${cycleUs.toFixed(1).padStart(7)} µs  ${Math.round(1e6 / cycleUs).toLocaleString('en-US').padStart(8)}/s  (dispatch + complete)`);
  } finally {
    await store.close();
    await cleanup();
  }
}

await main();
