// W3, how cost grows: the figures of W1 and W2 under a grown load, each against a control run
// of the same sitting (the machine's speed drifts over minutes, so a figure from another
// workload's run would compare unlike with unlike):
//   deep queue   a drain with a million pending tasks over 100 agents  (w3/deep-queue.ts)
//   history      submit and drain with five million finished tasks     (w3/history.ts)
//   idle fleet   W2 with a thousand idle workers and 200 subscribers    (w3/idle-fleet.ts)
//   nodes        W1 on three PostgreSQL servers against one             (w3/nodes.ts)
// Seeded stores are written with bulk SQL while no server runs (bench/lib/seed.ts). W3 runs
// once per store and bench invocation; a part sized 0 is skipped.

import type { Store } from '../lib/server.ts';
import type { Figure } from '../lib/w3-table.ts';
import { runDeepQueue, type DeepQueueRun } from './w3/deep-queue.ts';
import { runHistory, type HistoryRun } from './w3/history.ts';
import { runIdleFleet, type IdleFleetRun } from './w3/idle-fleet.ts';
import { runNodes, type NodesRun } from './w3/nodes.ts';
import { count, type W3Settings } from './w3/settings.ts';

export type { W3Settings };

export interface W3Run {
  deepQueue?: DeepQueueRun;
  history?: HistoryRun;
  idleFleet?: IdleFleetRun;
  nodes?: NodesRun;
  figures: Figure[];
}

const s1 = (x: number) => `${x.toFixed(1)} s`;
const us = (x: number) => `${Math.round(x).toLocaleString('en-US')} µs/task`;

export async function runW3(store: Store, s: W3Settings, log: (line: string) => void): Promise<W3Run> {
  const run: W3Run = { figures: [] };
  if (s.pending > 0) {
    const r = await runDeepQueue(store, s);
    run.deepQueue = r;
    run.figures.push(...r.figures);
    log(`W3 deep queue: ${count(s.pending)} pending seeded in ${s1(r.deep.seeded.seedSeconds)} (+ ${s1(r.deep.seeded.vacuumSeconds)} vacuum), server start ${s1(r.deep.startSeconds)}; `
      + `drain ${us(r.deep.usPerTask)} against ${us(r.control.usPerTask)} with ${count(s.tasks)} pending`);
  }
  if (s.history > 0) {
    const r = await runHistory(store, s);
    run.history = r;
    run.figures.push(...r.figures);
    log(`W3 history: ${count(s.history)} finished seeded in ${s1(r.history.seeded.seedSeconds)} (+ ${s1(r.history.seeded.vacuumSeconds)} vacuum), server start ${s1(r.history.startSeconds)}; `
      + `submit ${Math.round(r.history.submitPerSecond)}/s against ${Math.round(r.control.submitPerSecond)}/s, drain ${Math.round(r.history.drainPerSecond)}/s against ${Math.round(r.control.drainPerSecond)}/s empty`);
  }
  if (s.idleWorkers > 0 || s.subscribers > 0) {
    const r = await runIdleFleet(store, s);
    run.idleFleet = r;
    run.figures.push(...r.figures);
    const kB = (x: number | null) => (x === null ? '—' : `${x.toFixed(1)} kB`);
    log(`W3 idle fleet: ${count(s.idleWorkers)} workers connected in ${s1(r.connectSeconds.workers)}, ${count(s.subscribers)} subscribers in ${s1(r.connectSeconds.subscribers)}; `
      + `W2 p99 ${r.fleet.p99Ms.toFixed(2)} ms against ${r.control.p99Ms.toFixed(2)} ms; server ${kB(r.kBPerIdleWorker)} per idle worker, ${kB(r.kBPerSubscriber)} per subscriber`);
  }
  if (s.nodes > 1 && store === 'postgres') {
    const r = await runNodes(s);
    run.nodes = r;
    run.figures.push(...r.figures);
    log(`W3 nodes: ${s.nodes} nodes ${Math.round(r.several.totalPerSecond)}/s in total (submit ${Math.round(r.several.submitPerSecond)}/s, drain ${Math.round(r.several.drainPerSecond)}/s) `
      + `against 1 node ${Math.round(r.single.totalPerSecond)}/s (submit ${Math.round(r.single.submitPerSecond)}/s, drain ${Math.round(r.single.drainPerSecond)}/s)`);
  }
  return run;
}
