// The worker process: one SDK worker (createWorker, its default transport: WebSocket),
// driven by the bench over IPC (bench/lib/link.ts). Each handler records when it started
// and returns a small JSON result at once; in latency mode it also records its start
// minus the wall-clock time the submitter put in the input (`t`).
//   start  registers a worker for `agent` with `concurrency` slots, expecting `expect` tasks
//   done   resolves once `expect` completions were acknowledged by the server (fails when
//          nothing moves for `stallMs`, or a task failed)
//   stop   drains and leaves

import { createWorker, type FlotillaWorker } from '@flotilla/sdk';
import { sleep, wallNow } from '../lib/clock.ts';
import { serveParent } from '../lib/link.ts';
import type { WorkerOutcome, WorkerStarted } from '../lib/protocol.ts';

interface StartArgs {
  url: string;
  token: string;
  agent: string;
  concurrency: number;
  expect: number;
  latency: boolean;
}

let worker: FlotillaWorker | null = null;
let expected = 0;
let outcome: WorkerOutcome = fresh(false);

function fresh(latency: boolean): WorkerOutcome {
  return { handled: 0, completed: 0, failed: 0, firstStartMs: 0, lastStartMs: 0, lastAckMs: 0, ...(latency ? { latenciesMs: [] } : {}) };
}

async function start(args: StartArgs): Promise<WorkerStarted> {
  if (worker) throw new Error('a worker is already running');
  expected = args.expect;
  outcome = fresh(args.latency);
  const o = outcome;
  worker = createWorker({
    url: args.url,
    token: args.token,
    agent: args.agent,
    concurrency: args.concurrency,
    handler: (task) => {
      const now = wallNow();
      if (o.handled === 0) o.firstStartMs = now;
      o.lastStartMs = now;
      o.handled++;
      const input = task.input as { n: number; t?: number };
      if (o.latenciesMs && input.t !== undefined) o.latenciesMs.push(now - input.t);
      return { ok: true, n: input.n };
    },
  });
  await worker.start();
  return { transport: worker.transport, replicaId: worker.replicaId };
}

async function done({ stallMs }: { stallMs: number }): Promise<WorkerOutcome> {
  const w = worker;
  if (!w) throw new Error('start first');
  let seen = -1;
  let movedAt = wallNow();
  for (;;) {
    const { completed, failed } = w.stats;
    if (failed > 0) throw new Error(`${failed} task(s) failed in the worker`);
    if (completed >= expected) {
      outcome.lastAckMs = wallNow();
      outcome.completed = completed;
      outcome.failed = failed;
      return outcome;
    }
    if (completed !== seen) {
      seen = completed;
      movedAt = wallNow();
    } else if (wallNow() - movedAt > stallMs) {
      throw new Error(`stalled: ${completed}/${expected} completed, ${outcome.handled} handled, nothing for ${stallMs} ms`);
    }
    await sleep(2);
  }
}

async function stop(): Promise<void> {
  const w = worker;
  worker = null;
  if (w) await w.stop({ drainTimeoutMs: 5_000 });
}

serveParent({ start, done, stop }, stop);
