// Replica liveness without a write per request: workers are marked seen in memory on every
// call, and the marks are written in one batch per reaper sweep, each with the time it was
// actually seen (not the time of the flush, which would make a silent replica look alive).
// A replica holding an open lease request is alive by definition and is marked at flush time.

import type { EngineContext } from './context.ts';

export class ReplicaLiveness {
  #ctx: EngineContext;
  #seen = new Map<string, number>();
  #waiting: () => string[];

  constructor(params: { ctx: EngineContext; waiting: () => string[] }) {
    this.#ctx = params.ctx;
    this.#waiting = params.waiting;
  }

  seen(replicaId: string): void {
    this.#seen.set(replicaId, this.#ctx.now());
  }

  async flush(): Promise<void> {
    const now = this.#ctx.now();
    for (const id of this.#waiting()) this.#seen.set(id, now);
    if (this.#seen.size === 0) return;
    // Group by second: one write per distinct time, all in the same group commit.
    const byTime = new Map<number, string[]>();
    for (const [id, at] of this.#seen) {
      const bucket = Math.floor(at / 1000) * 1000;
      const ids = byTime.get(bucket);
      if (ids) ids.push(id);
      else byTime.set(bucket, [id]);
    }
    this.#seen.clear();
    await Promise.all([...byTime].map(([at, ids]) => this.#ctx.store.replicaTouch({ ids, at })));
  }
}
