// The smallest agent: returns its input. Run it with
//   npm run flotilla -- worker examples/echo.ts --agent echo
import type { TaskContext, WorkerTask } from '@flotilla/sdk';

export default async function echo(task: WorkerTask, ctx: TaskContext) {
  await ctx.progress(100, 'echoed');
  return { echo: task.input };
}
