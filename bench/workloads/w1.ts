// W1 burst. `tasks` tasks with a ~200-byte JSON input are submitted one per call by the
// submitter process, at most 50 calls in flight; then the worker process (concurrency 50)
// drains them, each handler returning a small JSON result at once. Then the same count is
// submitted in calls of 1,000 (submitMany, one call at a time) to a second agent, and drained.
//
//   submit rate  tasks / (last submit answered − first submit call), submitter's clock
//   drain rate   tasks / (last completion − first handler start): the last completion is the
//                latest `finishedAt` the server recorded (whole ms), the first handler start
//                the worker's clock
//   wall time    last completion − first submit call (includes the worker registering)
//   bulk rate    tasks / (last submitMany answered − first submitMany call)
//   peak RSS     the server process's VmHWM at the end (it started fresh for this run)
// Every submitted task must be `completed` afterwards, or the run fails.

import type { ClientTransport } from '../lib/client.ts';
import { drain, perSecond, type Drained } from '../lib/drain.ts';
import { withoutIds, type SubmitOutcome, type WorkerStarted } from '../lib/protocol.ts';
import { withRunEnv, type RunEnv } from '../lib/run-env.ts';
import { peakRssMB } from '../lib/rss.ts';
import type { Store } from '../lib/server.ts';

export interface W1Settings {
  tasks: number;
  inFlight: number;
  batch: number;
  concurrency: number;
  inputBytes: number;
  transport: ClientTransport;
}

export interface W1Run {
  submitPerSecond: number;
  bulkSubmitPerSecond: number;
  drainPerSecond: number;
  wallSeconds: number;
  /** Not in the table: the drain of the bulk-submitted tasks. */
  bulkDrainPerSecond: number;
  /** The server's peak resident set over the whole run (MB; null off Linux). */
  serverPeakRssMB: number | null;
  workerTransport: WorkerStarted['transport'];
  clocks: RunEnv['clocks'];
  raw: {
    submit: Omit<SubmitOutcome, 'ids'>;
    drain: Drained;
    bulkSubmit: Omit<SubmitOutcome, 'ids'>;
    bulkDrain: Drained;
  };
}

export function runW1(store: Store, s: W1Settings): Promise<W1Run> {
  return withRunEnv(store, s.transport, async (env) => {
    await env.admin.agents.create({ name: 'w1', maxConcurrency: s.concurrency });
    await env.admin.agents.create({ name: 'w1-bulk', maxConcurrency: s.concurrency });

    const submit = await env.submitter.request<SubmitOutcome>('single', { agent: 'w1', count: s.tasks, inputBytes: s.inputBytes, inFlight: s.inFlight });
    const d = await drain(env, 'w1', submit.ids, s.concurrency);

    const bulk = await env.submitter.request<SubmitOutcome>('bulk', { agent: 'w1-bulk', count: s.tasks, inputBytes: s.inputBytes, batch: s.batch });
    const bd = await drain(env, 'w1-bulk', bulk.ids, s.concurrency);

    return {
      submitPerSecond: perSecond(s.tasks, submit.endMs - submit.startMs),
      bulkSubmitPerSecond: perSecond(s.tasks, bulk.endMs - bulk.startMs),
      drainPerSecond: d.perSecond,
      wallSeconds: (d.outcome.lastFinishedMs - submit.startMs) / 1000,
      bulkDrainPerSecond: bd.perSecond,
      serverPeakRssMB: peakRssMB(env.server.pid),
      workerTransport: d.started.transport,
      clocks: env.clocks,
      raw: { submit: withoutIds(submit), drain: d.outcome, bulkSubmit: withoutIds(bulk), bulkDrain: bd.outcome },
    };
  });
}
