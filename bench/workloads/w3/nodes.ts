// W3 nodes (PostgreSQL only): W1's submit and drain on `nodes` servers sharing one database,
// against the same on one server, in the same sitting. The submitter holds one client per
// server and its 50 lanes go round robin over them; the worker process registers one worker
// per server, the 50 slots split between them (17 + 17 + 16 for three). Compared: the total
// cost per task, (last completion − first submit call) / tasks, which must not be higher
// with several nodes ("not slower in total than one"); the submit and the drain alone are
// shown beside it.

import { drain, perSecond, type Drained } from '../../lib/drain.ts';
import { withoutIds, type SubmitOutcome } from '../../lib/protocol.ts';
import { withServers } from '../../lib/run-env.ts';
import { createStore, startServerOn, type BenchServer, type BenchStore } from '../../lib/server.ts';
import type { Figure } from '../../lib/w3-table.ts';
import { loadNow, usPerTask, type W3Settings } from './settings.ts';

const AGENT = 'w3-nodes';

export interface NodesCase {
  /** The 1-minute load average as the measurement began. */
  loadAverage: number;
  nodes: number;
  submitPerSecond: number;
  drainPerSecond: number;
  /** tasks / (last completion − first submit call). */
  totalPerSecond: number;
  submit: Omit<SubmitOutcome, 'ids'>;
  drain: Drained;
}

export interface NodesRun {
  single: NodesCase;
  several: NodesCase;
  figures: Figure[];
}

/** The first server migrates the fresh database; the others start on the migrated one. */
async function startNodes(store: BenchStore, nodes: number): Promise<BenchServer[]> {
  const first = await startServerOn(store);
  try {
    return [first, ...await Promise.all(Array.from({ length: nodes - 1 }, () => startServerOn(store)))];
  } catch (err) {
    await first.stop();
    throw err;
  }
}

async function nodesCase(nodes: number, s: W3Settings): Promise<NodesCase> {
  const store = await createStore('postgres');
  try {
    return await withServers(startNodes(store, nodes), s.transport, async (env) => {
      await env.admin.agents.create({ name: AGENT, maxConcurrency: s.concurrency });
      const loadAverage = loadNow();
      const submit = await env.submitter.request<SubmitOutcome>('single', { agent: AGENT, count: s.tasks, inputBytes: s.inputBytes, inFlight: s.inFlight });
      const d = await drain(env, AGENT, submit.ids, s.concurrency);
      return {
        loadAverage, nodes, submitPerSecond: perSecond(s.tasks, submit.endMs - submit.startMs), drainPerSecond: d.perSecond,
        totalPerSecond: perSecond(s.tasks, d.outcome.lastFinishedMs - submit.startMs), submit: withoutIds(submit), drain: d.outcome,
      };
    });
  } finally {
    await store.dispose();
  }
}

export async function runNodes(s: W3Settings): Promise<NodesRun> {
  const single = await nodesCase(1, s);
  const several = await nodesCase(s.nodes, s);
  const vs = `${s.nodes} nodes (control: 1)`;
  return {
    single,
    several,
    figures: [
      { figure: `nodes: W1 submit one per call, ${vs}`, unit: 'µs/task', value: usPerTask(several.submitPerSecond), control: usPerTask(single.submitPerSecond), maxRatio: null },
      { figure: `nodes: W1 drain, ${vs}`, unit: 'µs/task', value: usPerTask(several.drainPerSecond), control: usPerTask(single.drainPerSecond), maxRatio: null },
      { figure: `nodes: W1 submit + drain in total, ${vs}`, unit: 'µs/task', value: usPerTask(several.totalPerSecond), control: usPerTask(single.totalPerSecond), maxRatio: 1 },
    ],
  };
}
