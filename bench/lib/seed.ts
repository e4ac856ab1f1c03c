// A W3 store seeded with many tasks. The schema and the agents come from the server itself:
// a first server migrates the fresh store, the agents are created through the API, and one
// task submitted through the API shows what the server fills in for the bench's admin
// token (creator, owner, priority, attempts, timeout), which the seeded rows copy; that task
// is then cancelled. The server stops, the rows are written straight into the database
// (seed-sqlite.ts, seed-postgres.ts: bulk SQL, seconds for millions), and the caller starts
// a new server on the seeded store. Both stores are seeded while no server runs: SQLite has a
// single writer, and a server started afterwards finds the store as a restart would.

import { Flotilla } from '@flotilla/sdk';
import { makeInput } from './input.ts';
import { seedPostgres } from './seed-postgres.ts';
import type { SeedRows, TaskTemplate } from './seed-sql.ts';
import { seedSqlite } from './seed-sqlite.ts';
import { startServerOn, TOKEN, type BenchStore } from './server.ts';

const SEEDED_AGENT_PREFIX = 'w3-';
const SEEDED_AGENTS = 100;
/** The seeded queue that W3 drains (agent 0 of the seeded ones). */
export const DRAINED_AGENT = `${SEEDED_AGENT_PREFIX}00`;
/** An agent with nothing seeded, for W3's submits into a seeded store. */
export const LIVE_AGENT = 'w3-live';
const TEMPLATE_AGENT = 'w3-template';
const HISTORY_REPLICA = 'w3-history-replica';
/** The seeded tasks were created over the half hour that ended half an hour ago (well inside retention). */
const SPAN_MS = 1_800_000;
const AGE_MS = 3_600_000;
/** The server's default lease (config.ts): what a seeded attempt's lease expiry is written with. */
const LEASE_MS = 30_000;

export interface SeedPlan {
  kind: SeedRows['kind'];
  /** Tasks to write (0: none; the store is still prepared, and on PostgreSQL vacuumed, as a seeded one). */
  count: number;
  /** pending: how many of them are in DRAINED_AGENT's queue. */
  drained: number;
  inputBytes: number;
  concurrency: number;
}

export interface Seeded {
  /** Writing the rows (s). */
  seedSeconds: number;
  /** PostgreSQL's VACUUM (ANALYZE) afterwards (s); 0 on SQLite. */
  vacuumSeconds: number;
}

/** Migrates `store` through a server and creates the agents; returns what a submitted task gets. */
async function prepareStore(store: BenchStore, concurrency: number): Promise<TaskTemplate> {
  const server = await startServerOn(store);
  try {
    const admin = new Flotilla({ url: server.url, token: TOKEN });
    const names = [...Array.from({ length: SEEDED_AGENTS }, (_, k) => `${SEEDED_AGENT_PREFIX}${String(k).padStart(2, '0')}`), LIVE_AGENT, TEMPLATE_AGENT];
    for (const name of names) await admin.agents.create({ name, maxConcurrency: concurrency });
    const task = await admin.tasks.submit({ agent: TEMPLATE_AGENT, input: { template: true } });
    await admin.tasks.cancel(task.id, 'the bench only needed its defaults');
    return { priority: task.priority, maxAttempts: task.maxAttempts, timeoutMs: task.timeoutMs, createdBy: task.createdBy, ownerId: task.ownerId };
  } catch (err) {
    console.error(`server ${server.url} (preparing a W3 store), the end of its log:\n${server.output().slice(-4_000)}`);
    throw err;
  } finally {
    await server.stop();
  }
}

/** Prepares `store` and writes `plan.count` tasks into it; no server runs afterwards. */
export async function seedStore(store: BenchStore, plan: SeedPlan): Promise<Seeded> {
  const template = await prepareStore(store, plan.concurrency);
  const rows: SeedRows = {
    kind: plan.kind, count: plan.count, drained: plan.drained, agentPrefix: SEEDED_AGENT_PREFIX, agentCount: SEEDED_AGENTS,
    t0: Date.now() - AGE_MS, spanMs: SPAN_MS, pad: makeInput(0, plan.inputBytes).pad, template, replica: HISTORY_REPLICA, leaseMs: LEASE_MS,
  };
  const t0 = performance.now();
  let vacuumSeconds = 0;
  if (store.kind === 'sqlite') seedSqlite(store.database, rows);
  else ({ vacuumSeconds } = await seedPostgres(store.database, rows));
  return { seedSeconds: (performance.now() - t0) / 1000 - vacuumSeconds, vacuumSeconds };
}
