// W3 deep queue: the drain of one agent's queue while a million tasks wait in the store.
// `pending` tasks are seeded over 100 agents, `tasks` of them (the W1 size) in the queue of
// agent w3-00, spread through the seeding order; the others round robin over w3-01..w3-99,
// which have no worker. The bench worker (concurrency 50) drains w3-00's queue. Control, in
// the same sitting: the same seeding with only w3-00's `tasks`. Compared: the cost per task
// of the drain (1e6 / drain rate, the rate as in W1); the bound is 1.5×.

import { drain, type Drained } from '../../lib/drain.ts';
import { withServers } from '../../lib/run-env.ts';
import { peakRssMB } from '../../lib/rss.ts';
import { DRAINED_AGENT, seedStore, type Seeded } from '../../lib/seed.ts';
import { createStore, type Store } from '../../lib/server.ts';
import type { Figure } from '../../lib/w3-table.ts';
import { count, loadNow, startSeeded, usPerTask, type W3Settings } from './settings.ts';

export interface DeepQueueCase {
  /** The 1-minute load average as the measurement began. */
  loadAverage: number;
  pending: number;
  drained: number;
  seeded: Seeded;
  /** The server's start on the seeded store (s). */
  startSeconds: number;
  drainPerSecond: number;
  usPerTask: number;
  serverPeakRssMB: number | null;
  drain: Drained;
}

export interface DeepQueueRun {
  control: DeepQueueCase;
  deep: DeepQueueCase;
  figures: Figure[];
}

async function deepQueueCase(kind: Store, pending: number, s: W3Settings): Promise<DeepQueueCase> {
  const store = await createStore(kind);
  try {
    const seeded = await seedStore(store, { kind: 'pending', count: pending, drained: s.tasks, inputBytes: s.inputBytes, concurrency: s.concurrency });
    let startSeconds = 0;
    const starting = startSeeded(store).then((x) => {
      startSeconds = x.startSeconds;
      return [x.server];
    });
    return await withServers(starting, s.transport, async (env) => {
      const ids: string[] = [];
      for await (const task of env.admin.tasks.list({ agent: DRAINED_AGENT, limit: 500 })) ids.push(task.id);
      if (ids.length !== s.tasks) throw new Error(`deep queue: ${ids.length} tasks in ${DRAINED_AGENT}'s queue, ${s.tasks} seeded`);
      const loadAverage = loadNow();
      const d = await drain(env, DRAINED_AGENT, ids, s.concurrency);
      return {
        loadAverage, pending, drained: s.tasks, seeded, startSeconds, drainPerSecond: d.perSecond, usPerTask: usPerTask(d.perSecond),
        serverPeakRssMB: peakRssMB(env.server.pid), drain: d.outcome,
      };
    });
  } finally {
    await store.dispose();
  }
}

export async function runDeepQueue(kind: Store, s: W3Settings): Promise<DeepQueueRun> {
  const control = await deepQueueCase(kind, s.tasks, s);
  const deep = await deepQueueCase(kind, s.pending, s);
  const p = count(s.pending);
  return {
    control,
    deep,
    figures: [
      { figure: `deep queue: seeding ${p} pending`, unit: 's', value: deep.seeded.seedSeconds + deep.seeded.vacuumSeconds, control: null, maxRatio: null },
      { figure: `deep queue: server start, ${p} pending`, unit: 's', value: deep.startSeconds, control: control.startSeconds, maxRatio: null },
      { figure: `deep queue: drain ${count(s.tasks)} of ${p} pending over 100 agents`, unit: 'µs/task', value: deep.usPerTask, control: control.usPerTask, maxRatio: 1.5 },
      { figure: `deep queue: server peak RSS, ${p} pending`, unit: 'MB', value: deep.serverPeakRssMB, control: control.serverPeakRssMB, maxRatio: null },
    ],
  };
}
