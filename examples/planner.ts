// Plans a report, as a lead agent of a three-level tree: it asks a person to approve the
// plan (ctx.requestInput: no slot is held while nobody answers), then spawns one
// `researcher` per topic and waits for them without holding its slot either
// (ctx.waitForChildren). Each time it is resumed the handler runs again from the top, and
// `task.resumed` says what came back.
//   npx flotilla worker examples/planner.ts --agent planner
import type { Json, TaskContext, WorkerTask } from '@flotilla/sdk';

export default async function planner(task: WorkerTask, ctx: TaskContext) {
  const topics = (task.input as { topics?: string[] } | null)?.topics ?? [];
  const resumed = task.resumed;
  if (resumed === null) {
    return ctx.requestInput({ prompt: `Research ${topics.join(', ')}?`, schema: { type: 'boolean' } });
  }
  if (resumed.reason === 'input') {
    if (resumed.input !== true) return { approved: false };
    const children = await Promise.all(topics.map((topic) => ctx.spawn({ agent: 'researcher', input: { topic } })));
    return ctx.waitForChildren(children);
  }
  return { approved: true, findings: resumed.children.map((c) => c.result) as Json[] };
}
