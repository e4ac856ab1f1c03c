// Fans out: one child task per item (to the `echo` agent), waits for all of them, joins the
// results. The children carry this task as their parent, so the tree can be followed.
//   npm run flotilla -- worker examples/fan-out.ts --agent fan-out
import type { Json, TaskContext, WorkerTask } from '@flotilla/sdk';

export default async function fanOut(task: WorkerTask, ctx: TaskContext) {
  const items = (task.input as { items?: Json[] } | null)?.items ?? [];
  const children = await Promise.all(items.map((item) => ctx.spawn({ agent: 'echo', input: item })));
  await ctx.progress(50, `spawned ${children.length} children`);
  const done = await Promise.all(children.map((child) => child.wait({ timeoutMs: 60_000, signal: ctx.signal })));
  const failed = done.filter((child) => child.status !== 'completed');
  if (failed.length > 0) throw new Error(`${failed.length} of ${done.length} children did not complete`);
  return { results: done.map((child) => child.result) };
}
