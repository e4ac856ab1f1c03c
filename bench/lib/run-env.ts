// What one run of a workload needs, started fresh and torn down after it: a server on a
// fresh store (or several servers, started by the caller, on one store), an admin client for
// setup and verification (HTTP, in this process, on the first server), and the two load
// processes (submitter, worker) connected to the servers.

import { Flotilla } from '@flotilla/sdk';
import { BenchChild } from './child.ts';
import type { ClientTransport } from './client.ts';
import { startServer, TOKEN, type BenchServer, type Store } from './server.ts';

export interface RunEnv {
  /** The first server (the only one, mostly). */
  server: BenchServer;
  servers: BenchServer[];
  /** Every server's URL, in the order of `servers`. */
  urls: string[];
  admin: Flotilla;
  submitter: BenchChild;
  worker: BenchChild;
  /** Each load process's clock minus this one's (ms), and the bound on that estimate. */
  clocks: { submitterOffsetMs: number; workerOffsetMs: number; uncertaintyMs: number };
}

const LOG_TAIL_CHARS = 4_000;

export function withRunEnv<T>(store: Store, transport: ClientTransport, fn: (env: RunEnv) => Promise<T>): Promise<T> {
  return withServers(startServer(store).then((s) => [s]), transport, fn);
}

/** Runs `fn` with the load processes connected to `starting`'s servers; stops the servers after. */
export async function withServers<T>(starting: Promise<BenchServer[]>, transport: ClientTransport, fn: (env: RunEnv) => Promise<T>): Promise<T> {
  const started = await Promise.allSettled([starting, BenchChild.start('submitter'), BenchChild.start('worker')] as const);
  const [servers, submitter, worker] = started;
  try {
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    if (servers.status !== 'fulfilled' || submitter.status !== 'fulfilled' || worker.status !== 'fulfilled') throw new Error('unreachable');
    const s = submitter.value;
    const w = worker.value;
    const urls = servers.value.map((x) => x.url);
    await s.request('connect', { urls, token: TOKEN, transport });
    const so = await s.clockOffset();
    const wo = await w.clockOffset();
    const clocks = { submitterOffsetMs: so.offsetMs, workerOffsetMs: wo.offsetMs, uncertaintyMs: Math.max(so.uncertaintyMs, wo.uncertaintyMs) };
    if (Math.abs(clocks.workerOffsetMs - clocks.submitterOffsetMs) > 0.1 + clocks.uncertaintyMs) {
      console.error(`warning: the worker's and the submitter's clocks differ by ${(clocks.workerOffsetMs - clocks.submitterOffsetMs).toFixed(3)} ms`);
    }
    const env = { server: servers.value[0]!, servers: servers.value, urls, admin: new Flotilla({ url: urls[0]!, token: TOKEN }), submitter: s, worker: w, clocks };
    try {
      return await fn(env);
    } catch (err) {
      // The server's side of the failure (an "internal error" answer says no more than that).
      for (const x of servers.value) console.error(`server ${x.url}, the end of its log:\n${x.output().slice(-LOG_TAIL_CHARS)}`);
      throw err;
    }
  } finally {
    await Promise.allSettled([submitter, worker].map(async (r) => {
      if (r.status === 'fulfilled') await r.value.close();
    }));
    if (servers.status === 'fulfilled') await Promise.all(servers.value.map((x) => x.stop()));
  }
}
