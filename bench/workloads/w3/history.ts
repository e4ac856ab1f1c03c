// W3 history: W1's submit and drain with millions of finished tasks in the store. `history`
// completed tasks (each with its attempt and one event) are seeded over 100 agents; then
// `tasks` tasks are submitted one per call (50 in flight) to an agent with no history,
// w3-live, and drained by the bench worker (concurrency 50), rates as in W1. Control, in
// the same sitting: the same on a store prepared the same way with no history. Compared:
// the cost per task of the submit and of the drain; the bound is 1.2× for both.

import { drain, perSecond, type Drained } from '../../lib/drain.ts';
import { withoutIds, type SubmitOutcome } from '../../lib/protocol.ts';
import { withServers } from '../../lib/run-env.ts';
import { peakRssMB } from '../../lib/rss.ts';
import { LIVE_AGENT, seedStore, type Seeded } from '../../lib/seed.ts';
import { createStore, type Store } from '../../lib/server.ts';
import type { Figure } from '../../lib/w3-table.ts';
import { count, loadNow, startSeeded, usPerTask, type W3Settings } from './settings.ts';

export interface HistoryCase {
  /** The 1-minute load average as the measurement began. */
  loadAverage: number;
  history: number;
  seeded: Seeded;
  startSeconds: number;
  submitPerSecond: number;
  drainPerSecond: number;
  serverPeakRssMB: number | null;
  submit: Omit<SubmitOutcome, 'ids'>;
  drain: Drained;
}

export interface HistoryRun {
  control: HistoryCase;
  history: HistoryCase;
  figures: Figure[];
}

async function historyCase(kind: Store, history: number, s: W3Settings): Promise<HistoryCase> {
  const store = await createStore(kind);
  try {
    const seeded = await seedStore(store, { kind: 'history', count: history, drained: 0, inputBytes: s.inputBytes, concurrency: s.concurrency });
    let startSeconds = 0;
    const starting = startSeeded(store).then((x) => {
      startSeconds = x.startSeconds;
      return [x.server];
    });
    return await withServers(starting, s.transport, async (env) => {
      const loadAverage = loadNow();
      const submit = await env.submitter.request<SubmitOutcome>('single', { agent: LIVE_AGENT, count: s.tasks, inputBytes: s.inputBytes, inFlight: s.inFlight });
      const d = await drain(env, LIVE_AGENT, submit.ids, s.concurrency);
      return {
        loadAverage, history, seeded, startSeconds, submitPerSecond: perSecond(s.tasks, submit.endMs - submit.startMs), drainPerSecond: d.perSecond,
        serverPeakRssMB: peakRssMB(env.server.pid), submit: withoutIds(submit), drain: d.outcome,
      };
    });
  } finally {
    await store.dispose();
  }
}

export async function runHistory(kind: Store, s: W3Settings): Promise<HistoryRun> {
  const control = await historyCase(kind, 0, s);
  const history = await historyCase(kind, s.history, s);
  const h = count(s.history);
  return {
    control,
    history,
    figures: [
      { figure: `history: seeding ${h} finished`, unit: 's', value: history.seeded.seedSeconds + history.seeded.vacuumSeconds, control: null, maxRatio: null },
      { figure: `history: server start, ${h} finished`, unit: 's', value: history.startSeconds, control: control.startSeconds, maxRatio: null },
      { figure: `history: submit one per call, ${h} finished`, unit: 'µs/task', value: usPerTask(history.submitPerSecond), control: usPerTask(control.submitPerSecond), maxRatio: 1.2 },
      { figure: `history: drain, ${h} finished`, unit: 'µs/task', value: usPerTask(history.drainPerSecond), control: usPerTask(control.drainPerSecond), maxRatio: 1.2 },
      { figure: `history: server peak RSS, ${h} finished`, unit: 'MB', value: history.serverPeakRssMB, control: control.serverPeakRssMB, maxRatio: null },
    ],
  };
}
