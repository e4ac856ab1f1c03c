// W2 latency. One worker process (concurrency 50) registered and idle; the submitter
// process submits `tasks` tasks at a steady `rate` per second (fixed schedule, open loop).
// For each task: the handler's start (worker's clock) minus the wall-clock time taken just
// before its submit call (submitter's clock, carried in the input). Both clocks are
// performance.timeOrigin + performance.now() on one machine; their agreement is measured
// over IPC and recorded. Every submitted task must be `completed` afterwards. The server's
// peak RSS (VmHWM, the server started fresh for the run) is read at the end.
// latencyPhase() is the measurement on servers already running (W3 adds an idle fleet first).

import type { ClientTransport } from '../lib/client.ts';
import { sleep } from '../lib/clock.ts';
import { cpuMeter } from '../lib/cpu.ts';
import type { SubmitOutcome, WorkerOutcome, WorkerStarted } from '../lib/protocol.ts';
import { withRunEnv, type RunEnv } from '../lib/run-env.ts';
import type { Store } from '../lib/server.ts';
import { TOKEN } from '../lib/server.ts';
import { peakRssMB } from '../lib/rss.ts';
import { percentile } from '../lib/stats.ts';
import { verifyCompleted } from '../lib/verify.ts';

export interface W2Settings {
  tasks: number;
  rate: number;
  concurrency: number;
  inputBytes: number;
  transport: ClientTransport;
}

export interface W2Run {
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Tasks the server lists as completed afterwards (must be all of them). */
  verifiedCompleted: number;
  workerTransport: WorkerStarted['transport'];
  clocks: RunEnv['clocks'];
  /** The achieved submit schedule: seconds taken and the worst lag behind it. */
  submitSeconds: number;
  maxScheduleLagMs: number;
  /** Every sample (ms), in the order the handlers started. */
  samplesMs: number[];
  /** The server's peak resident set over the whole run (MB; null off Linux). */
  serverPeakRssMB: number | null;
  /** CPU seconds each process used from the first submit to the last completion (null off Linux). */
  cpuSeconds: Record<'server' | 'submitter' | 'worker', number | null>;
}

/** How long the worker sits idle before the first submit. */
const IDLE_MS = 500;

export function runW2(store: Store, s: W2Settings): Promise<W2Run> {
  return withRunEnv(store, s.transport, (env) => latencyPhase(env, s));
}

export async function latencyPhase(env: RunEnv, s: W2Settings): Promise<W2Run> {
  await env.admin.agents.create({ name: 'w2', maxConcurrency: s.concurrency });
  const started = await env.worker.request<WorkerStarted>('start', { urls: env.urls, token: TOKEN, agent: 'w2', concurrency: s.concurrency, expect: s.tasks, latency: true });
  await sleep(IDLE_MS);
  const cpu = cpuMeter({ server: env.server.pid, submitter: env.submitter.pid, worker: env.worker.pid });
  const submit = await env.submitter.request<SubmitOutcome>('steady', { agent: 'w2', count: s.tasks, inputBytes: s.inputBytes, rate: s.rate });
  const outcome = await env.worker.request<WorkerOutcome>('done', { stallMs: 60_000 });
  const cpuSeconds = cpu.stop() as W2Run['cpuSeconds'];
  await env.worker.request('stop', {});
  const verified = await verifyCompleted(env.admin, 'w2', submit.ids);
  const samples = outcome.latenciesMs ?? [];
  if (samples.length !== s.tasks) throw new Error(`w2: ${samples.length} latency samples for ${s.tasks} tasks`);
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1]!,
    meanMs: samples.reduce((a, b) => a + b, 0) / samples.length,
    verifiedCompleted: verified.completed,
    workerTransport: started.transport,
    clocks: env.clocks,
    submitSeconds: (submit.endMs - submit.startMs) / 1000,
    maxScheduleLagMs: submit.maxLagMs ?? 0,
    samplesMs: samples.map((x) => Math.round(x * 1000) / 1000),
    serverPeakRssMB: peakRssMB(env.server.pid),
    cpuSeconds,
  };
}
