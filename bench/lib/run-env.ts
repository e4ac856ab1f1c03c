// What one run of a workload needs, started fresh and torn down after it: a server on a
// fresh store, an admin client for setup and verification (HTTP, in this process), and the
// two load processes (submitter, worker) connected to the server.

import { Flotilla } from '@flotilla/sdk';
import { BenchChild } from './child.ts';
import type { ClientTransport } from './client.ts';
import { startServer, TOKEN, type BenchServer, type Store } from './server.ts';

export interface RunEnv {
  server: BenchServer;
  admin: Flotilla;
  submitter: BenchChild;
  worker: BenchChild;
  /** Each load process's clock minus this one's (ms), and the bound on that estimate. */
  clocks: { submitterOffsetMs: number; workerOffsetMs: number; uncertaintyMs: number };
}

export async function withRunEnv<T>(store: Store, transport: ClientTransport, fn: (env: RunEnv) => Promise<T>): Promise<T> {
  const started = await Promise.allSettled([startServer(store), BenchChild.start('submitter'), BenchChild.start('worker')] as const);
  const [server, submitter, worker] = started;
  try {
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    if (server.status !== 'fulfilled' || submitter.status !== 'fulfilled' || worker.status !== 'fulfilled') throw new Error('unreachable');
    const s = submitter.value;
    const w = worker.value;
    await s.request('connect', { url: server.value.url, token: TOKEN, transport });
    const so = await s.clockOffset();
    const wo = await w.clockOffset();
    const clocks = { submitterOffsetMs: so.offsetMs, workerOffsetMs: wo.offsetMs, uncertaintyMs: Math.max(so.uncertaintyMs, wo.uncertaintyMs) };
    if (Math.abs(clocks.workerOffsetMs - clocks.submitterOffsetMs) > 0.1 + clocks.uncertaintyMs) {
      console.error(`warning: the worker's and the submitter's clocks differ by ${(clocks.workerOffsetMs - clocks.submitterOffsetMs).toFixed(3)} ms`);
    }
    return await fn({ server: server.value, admin: new Flotilla({ url: server.value.url, token: TOKEN }), submitter: s, worker: w, clocks });
  } finally {
    await Promise.allSettled([submitter, worker].map(async (r) => {
      if (r.status === 'fulfilled') await r.value.close();
    }));
    if (server.status === 'fulfilled') await server.value.stop();
  }
}
