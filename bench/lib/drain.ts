// A drain phase: the worker process registers on the servers (concurrency slots in all) and
// runs `ids` to completion; then the server must list every one of them as completed.
//   rate  tasks / (last completion − first handler start): the last completion is the
//         latest `finishedAt` the server recorded (whole ms), the first handler start the
//         worker's clock

import type { WorkerOutcome, WorkerStarted } from './protocol.ts';
import type { RunEnv } from './run-env.ts';
import { TOKEN } from './server.ts';
import { verifyCompleted } from './verify.ts';

/** The worker's account, plus what the server says: tasks found completed, and the last `finishedAt`. */
export type Drained = Omit<WorkerOutcome, 'latenciesMs'> & { verifiedCompleted: number; lastFinishedMs: number };

const STALL_MS = 60_000;

export const perSecond = (n: number, ms: number): number => n / (ms / 1000);

export async function drain(env: RunEnv, agent: string, ids: string[], concurrency: number): Promise<{ started: WorkerStarted; outcome: Drained; perSecond: number }> {
  const started = await env.worker.request<WorkerStarted>('start', { urls: env.urls, token: TOKEN, agent, concurrency, expect: ids.length, latency: false });
  const outcome = await env.worker.request<WorkerOutcome>('done', { stallMs: STALL_MS });
  await env.worker.request('stop', {});
  const verified = await verifyCompleted(env.admin, agent, ids);
  return {
    started,
    outcome: { ...outcome, verifiedCompleted: verified.completed, lastFinishedMs: verified.lastFinishedMs },
    perSecond: perSecond(ids.length, verified.lastFinishedMs - outcome.firstStartMs),
  };
}
