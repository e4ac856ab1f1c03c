// Retention: terminal tasks (and their assignments and events) older than `retentionMs`
// are deleted in the background, in bounded batches so a large backlog never holds the
// database for long.

import type { EngineContext } from './context.ts';

const BATCH = 1_000;

export async function pruneExpired(ctx: EngineContext): Promise<number> {
  const finishedBefore = ctx.now() - ctx.config.retentionMs;
  let total = 0;
  for (let round = 0; round < 100; round++) {
    const n = await ctx.store.taskPrune({ finishedBefore, limit: BATCH });
    total += n;
    if (n < BATCH) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (total > 0) ctx.log.info({ pruned: total, finishedBefore: new Date(finishedBefore).toISOString() }, 'pruned expired tasks');
  return total;
}
