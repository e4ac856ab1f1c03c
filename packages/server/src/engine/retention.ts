// Retention: terminal tasks (and their assignments and events) older than `retentionMs`,
// audit entries and recorded tool calls older than `auditRetentionMs` (0 keeps them), and the revocations of tokens
// that have expired anyway are deleted in the background, in bounded batches so a large
// backlog never holds the database for long.

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
  await pruneAudit(ctx);
  await ctx.store.tokenRevocationPrune({ expiredBefore: ctx.now() });
  return total;
}

async function pruneAudit(ctx: EngineContext): Promise<void> {
  if (ctx.config.auditRetentionMs === 0) return;
  const before = ctx.now() - ctx.config.auditRetentionMs;
  for (let round = 0; round < 100; round++) {
    const n = await ctx.store.auditPrune({ before, limit: BATCH });
    if (n < BATCH) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  // The tool-call audit (issue 15) is kept as long as the audit log.
  for (let round = 0; round < 100; round++) {
    const n = await ctx.store.toolCallPrune({ before, limit: BATCH });
    if (n < BATCH) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
