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
// Every submitted task must be `completed` afterwards, or the run fails.

import type { ClientTransport } from '../lib/client.ts';
import type { SubmitOutcome, WorkerOutcome, WorkerStarted } from '../lib/protocol.ts';
import { withRunEnv, type RunEnv } from '../lib/run-env.ts';
import type { Store } from '../lib/server.ts';
import { TOKEN } from '../lib/server.ts';
import { verifyCompleted } from '../lib/verify.ts';

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
  workerTransport: WorkerStarted['transport'];
  clocks: RunEnv['clocks'];
  raw: {
    submit: Omit<SubmitOutcome, 'ids'>;
    drain: Drained;
    bulkSubmit: Omit<SubmitOutcome, 'ids'>;
    bulkDrain: Drained;
  };
}

/** The worker's account, plus what the server says: tasks found completed, and the last `finishedAt`. */
type Drained = Omit<WorkerOutcome, 'latenciesMs'> & { verifiedCompleted: number; lastFinishedMs: number };

const STALL_MS = 60_000;
const perSecond = (n: number, ms: number) => n / (ms / 1000);

async function drain(env: RunEnv, agent: string, ids: string[], concurrency: number): Promise<{ started: WorkerStarted; outcome: Drained }> {
  const started = await env.worker.request<WorkerStarted>('start', { url: env.server.url, token: TOKEN, agent, concurrency, expect: ids.length, latency: false });
  const outcome = await env.worker.request<WorkerOutcome>('done', { stallMs: STALL_MS });
  await env.worker.request('stop', {});
  const verified = await verifyCompleted(env.admin, agent, ids);
  return { started, outcome: { ...outcome, verifiedCompleted: verified.completed, lastFinishedMs: verified.lastFinishedMs } };
}

function strip({ ids: _ids, ...rest }: SubmitOutcome): Omit<SubmitOutcome, 'ids'> {
  return rest;
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
      drainPerSecond: perSecond(s.tasks, d.outcome.lastFinishedMs - d.outcome.firstStartMs),
      wallSeconds: (d.outcome.lastFinishedMs - submit.startMs) / 1000,
      bulkDrainPerSecond: perSecond(s.tasks, bd.outcome.lastFinishedMs - bd.outcome.firstStartMs),
      workerTransport: d.started.transport,
      clocks: env.clocks,
      raw: { submit: strip(submit), drain: d.outcome, bulkSubmit: strip(bulk), bulkDrain: bd.outcome },
    };
  });
}
