// Shows retries and the dead-letter queue: fails the first `failTimes` attempts (default 1)
// with a retryable error, and refuses input marked `bad` for good (NonRetryableError).
// A task that keeps failing past its agent's maxAttempts ends `failed`: list them with
//   npm run flotilla -- ls --status failed   and requeue one with   npm run flotilla -- retry ID
//   npm run flotilla -- worker examples/flaky.ts --agent flaky
import { NonRetryableError, type TaskContext, type WorkerTask } from '@flotilla/sdk';

export default async function flaky(task: WorkerTask, ctx: TaskContext) {
  const input = (task.input ?? {}) as { bad?: boolean; failTimes?: number };
  if (input.bad) throw new NonRetryableError('input is marked bad; retrying cannot help', { code: 'BAD_INPUT' });
  if (task.attempt <= (input.failTimes ?? 1)) {
    ctx.log('failing on purpose', { attempt: task.attempt });
    throw Object.assign(new Error(`simulated upstream failure on attempt ${task.attempt}`), { code: 'UPSTREAM_UNAVAILABLE' });
  }
  return { succeededOnAttempt: task.attempt };
}
