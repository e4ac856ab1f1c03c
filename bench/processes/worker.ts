// The worker process: one SDK worker per server (createWorker, its default transport:
// WebSocket; one server except for W3's several nodes), driven by the bench over IPC
// (bench/lib/link.ts). Each handler records when it started and returns a small JSON result
// at once; in latency mode it also records its start minus the wall-clock time the
// submitter put in the input (`t`).
//   start  registers a worker for `agent` on each of `urls`, `concurrency` slots in all
//          (split as evenly as they go), expecting `expect` tasks between them
//   done   resolves once `expect` completions were acknowledged by the server (fails when
//          nothing moves for `stallMs`, or a task failed)
//   stop   drains and leaves

import { createWorker, type FlotillaWorker, type WorkerTask } from '@flotilla/sdk';
import { sleep, wallNow } from '../lib/clock.ts';
import { serveParent } from '../lib/link.ts';
import type { WorkerOutcome, WorkerStarted } from '../lib/protocol.ts';

interface StartArgs {
  urls: string[];
  token: string;
  agent: string;
  concurrency: number;
  expect: number;
  latency: boolean;
}

let workers: FlotillaWorker[] = [];
let expected = 0;
let outcome: WorkerOutcome = fresh(false);

function fresh(latency: boolean): WorkerOutcome {
  return { handled: 0, completed: 0, failed: 0, firstStartMs: 0, lastStartMs: 0, lastAckMs: 0, ...(latency ? { latenciesMs: [] } : {}) };
}

async function start(args: StartArgs): Promise<WorkerStarted> {
  if (workers.length > 0) throw new Error('a worker is already running');
  if (args.concurrency < args.urls.length) throw new Error(`concurrency ${args.concurrency} is less than one slot per server (${args.urls.length})`);
  expected = args.expect;
  outcome = fresh(args.latency);
  const o = outcome;
  const handler = (task: WorkerTask) => {
    const now = wallNow();
    if (o.handled === 0) o.firstStartMs = now;
    o.lastStartMs = now;
    o.handled++;
    const input = task.input as { n: number; t?: number };
    if (o.latenciesMs && input.t !== undefined) o.latenciesMs.push(now - input.t);
    return { ok: true, n: input.n };
  };
  const n = args.urls.length;
  workers = args.urls.map((url, i) => createWorker({
    url, token: args.token, agent: args.agent, handler,
    concurrency: Math.floor(args.concurrency / n) + (i < args.concurrency % n ? 1 : 0),
  }));
  await Promise.all(workers.map((w) => w.start()));
  return { transport: workers[0]!.transport, replicaIds: workers.map((w) => w.replicaId) };
}

async function done({ stallMs }: { stallMs: number }): Promise<WorkerOutcome> {
  if (workers.length === 0) throw new Error('start first');
  let seen = -1;
  let movedAt = wallNow();
  for (;;) {
    let completed = 0;
    let failed = 0;
    for (const w of workers) {
      completed += w.stats.completed;
      failed += w.stats.failed;
    }
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
  const stopping = workers;
  workers = [];
  await Promise.all(stopping.map((w) => w.stop({ drainTimeoutMs: 5_000 })));
}

serveParent({ start, done, stop }, stop);
