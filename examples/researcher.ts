// A second-level agent: it hands its topic to a `reader` (a third-level agent) and waits for
// it without holding its slot, then reports what the reader found.
//   npx flotilla worker examples/researcher.ts --agent researcher
import type { TaskContext, WorkerTask } from '@flotilla/sdk';

export default async function researcher(task: WorkerTask, ctx: TaskContext) {
  const { topic } = task.input as { topic: string };
  if (task.resumed === null) return ctx.waitForChildren([await ctx.spawn({ agent: 'reader', input: { topic } })]);
  const [reader] = task.resumed.reason === 'children' ? task.resumed.children : [];
  return { topic, read: reader?.result ?? null };
}
