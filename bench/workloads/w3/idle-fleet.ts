// W3 idle fleet: W2 while the server also carries `idleWorkers` idle connected workers and
// `subscribers` live event streams. They come from a process of their own (bench/processes/
// idle-fleet.ts): the workers are registered (WebSocket, heartbeating) for an agent that is
// never given a task; the subscribers stream every event, W2's included. Then W2 runs as
// usual, on agent w2. Control, in the same sitting: plain W2 on a fresh server. Compared: p99
// (the bound is 2×), and the server's CPU time during W2 (the fleet process's own is
// in the results: on this machine it shares the cores with the server).
// Memory: the server's RSS settled before the workers connect, after, and after the
// subscribers; (after − before) / count is the memory per idle worker socket (and per
// subscriber): an estimate, since the garbage collector decides when the heap shrinks.

import { BenchChild } from '../../lib/child.ts';
import { sleep } from '../../lib/clock.ts';
import { cpuMeter } from '../../lib/cpu.ts';
import type { FleetStats } from '../../lib/protocol.ts';
import { withRunEnv } from '../../lib/run-env.ts';
import { processMemory } from '../../lib/rss.ts';
import { TOKEN, type Store } from '../../lib/server.ts';
import { summarize } from '../../lib/stats.ts';
import type { Figure } from '../../lib/w3-table.ts';
import { latencyPhase, runW2, type W2Run } from '../w2.ts';
import { count, type W3Settings } from './settings.ts';

const IDLE_AGENT = 'w3-idle';
/** Before reading RSS: let the connections' setup garbage be collected, then take the median of a few readings. */
const SETTLE_MS = 1_000;
const READINGS = 5;
const READING_MS = 100;

export interface IdleFleetRun {
  idleWorkers: number;
  subscribers: number;
  control: W2Run;
  fleet: W2Run;
  connectSeconds: { workers: number; subscribers: number };
  /** The server's settled RSS (MB): before the fleet, with the workers, with the subscribers too. */
  rssMB: { before: number | null; withWorkers: number | null; withSubscribers: number | null };
  kBPerIdleWorker: number | null;
  kBPerSubscriber: number | null;
  /** The fleet's account after W2. */
  fleetStats: FleetStats;
  /** CPU seconds the fleet's own process used during W2 (it shares the cores with the server). */
  fleetCpuSeconds: number | null;
  figures: Figure[];
}

async function settledRssMB(pid: number): Promise<number | null> {
  await sleep(SETTLE_MS);
  const readings: number[] = [];
  for (let i = 0; i < READINGS; i++) {
    const m = processMemory(pid);
    if (!m) return null;
    readings.push(m.rssMB);
    await sleep(READING_MS);
  }
  return summarize(readings).median;
}

/** kB (decimal) per connection between two RSS readings (MB). */
const perConnectionKB = (from: number | null, to: number | null, n: number) => (from === null || to === null || n === 0 ? null : ((to - from) * 1000) / n);

export async function runIdleFleet(kind: Store, s: W3Settings): Promise<IdleFleetRun> {
  const control = await runW2(kind, s.w2);
  const fleetRun = await withRunEnv(kind, s.transport, async (env) => {
    const pid = env.server.pid;
    await env.admin.agents.create({ name: IDLE_AGENT, maxConcurrency: Math.max(1, s.idleWorkers) });
    const fleet = await BenchChild.start('idle-fleet');
    try {
      const before = await settledRssMB(pid);
      const workers = await fleet.request<{ seconds: number }>('workers', { url: env.server.url, token: TOKEN, agent: IDLE_AGENT, count: s.idleWorkers });
      const withWorkers = await settledRssMB(pid);
      // Live subscribers: from the newest event on, not a replay of the store's events.
      let after = 0;
      for await (const e of env.admin.events.list({ pageSize: 1000 })) after = e.seq;
      const subscribers = await fleet.request<{ seconds: number }>('subscribers', { url: env.server.url, token: TOKEN, count: s.subscribers, after });
      const withSubscribers = await settledRssMB(pid);
      const cpu = cpuMeter({ fleet: fleet.pid });
      const w2 = await latencyPhase(env, s.w2);
      const fleetCpuSeconds = cpu.stop().fleet ?? null;
      // The events of the last tasks may still be on their way to the streams: wait (up to 30 s).
      let stats = await fleet.request<FleetStats>('stats', {});
      for (let waited = 0; waited < 30_000 && (stats.eventsPerSubscriber?.min ?? Infinity) < 3 * s.w2.tasks; waited += 100) {
        await new Promise((r) => setTimeout(r, 100));
        stats = await fleet.request<FleetStats>('stats', {});
      }
      const problems: string[] = [];
      if (stats.workersRegistered !== s.idleWorkers) problems.push(`${stats.workersRegistered}/${s.idleWorkers} idle workers registered`);
      if (stats.subscribersOpen !== s.subscribers) problems.push(`${stats.subscribersOpen}/${s.subscribers} event streams open`);
      // Every W2 task is at least created, dispatched and completed: a live subscriber saw them all.
      if (stats.eventsPerSubscriber !== null && stats.eventsPerSubscriber.min < 3 * s.w2.tasks) problems.push(`a subscriber received ${stats.eventsPerSubscriber.min} events for ${s.w2.tasks} tasks`);
      if (stats.tasksHandled > 0) problems.push(`the idle workers were handed ${stats.tasksHandled} task(s)`);
      if (problems.length > 0) throw new Error(`idle fleet: ${problems.join('; ')}`);
      return { w2, stats, fleetCpuSeconds, connectSeconds: { workers: workers.seconds, subscribers: subscribers.seconds }, rssMB: { before, withWorkers, withSubscribers } };
    } finally {
      await fleet.close();
    }
  });
  const { rssMB } = fleetRun;
  const kBPerIdleWorker = perConnectionKB(rssMB.before, rssMB.withWorkers, s.idleWorkers);
  const kBPerSubscriber = perConnectionKB(rssMB.withWorkers, rssMB.withSubscribers, s.subscribers);
  const load = `${count(s.idleWorkers)} idle workers, ${count(s.subscribers)} subscribers`;
  return {
    idleWorkers: s.idleWorkers,
    subscribers: s.subscribers,
    control,
    fleet: fleetRun.w2,
    connectSeconds: fleetRun.connectSeconds,
    rssMB,
    kBPerIdleWorker,
    kBPerSubscriber,
    fleetStats: fleetRun.stats,
    fleetCpuSeconds: fleetRun.fleetCpuSeconds,
    figures: [
      { figure: `idle fleet: W2 p50, ${load}`, unit: 'ms', value: fleetRun.w2.p50Ms, control: control.p50Ms, maxRatio: null },
      { figure: `idle fleet: W2 p99, ${load}`, unit: 'ms', value: fleetRun.w2.p99Ms, control: control.p99Ms, maxRatio: 2 },
      { figure: 'idle fleet: server memory per idle worker socket', unit: 'kB', value: kBPerIdleWorker, control: null, maxRatio: null },
      { figure: 'idle fleet: server memory per event subscriber', unit: 'kB', value: kBPerSubscriber, control: null, maxRatio: null },
      { figure: `idle fleet: server CPU during W2, ${load}`, unit: 's', value: fleetRun.w2.cpuSeconds.server, control: control.cpuSeconds.server, maxRatio: null },
      { figure: `idle fleet: server peak RSS, ${load}`, unit: 'MB', value: fleetRun.w2.serverPeakRssMB, control: control.serverPeakRssMB, maxRatio: null },
    ],
  };
}
