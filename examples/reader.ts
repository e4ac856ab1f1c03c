// A third-level agent, at the server's maxDepth (3): it may not delegate any further. It
// tries anyway, to show the refusal (403 DEPTH_LIMIT, naming the depth and the limit), and
// does the work itself.
//   npx flotilla worker examples/reader.ts --agent reader
import { isFlotillaError, type Json, type TaskContext, type WorkerTask } from '@flotilla/sdk';

export default async function reader(task: WorkerTask, ctx: TaskContext) {
  const { topic } = task.input as { topic: string };
  try {
    await ctx.spawn({ agent: 'reader', input: { topic } });
    return { topic, summary: 'delegated' };
  } catch (err) {
    if (!isFlotillaError(err, 'DEPTH_LIMIT')) throw err;
    return { topic, summary: `${topic}: read it myself`, refused: { code: err.code, details: (err.details ?? null) as Json } };
  }
}
