// After each phase: every task the bench submitted must have reached `completed`, and no
// other task may exist for the agent. Also yields the server's last completion time.

import type { Flotilla } from '@flotilla/sdk';

export interface Verified {
  completed: number;
  /** The latest `finishedAt` among the tasks (server clock, whole ms). */
  lastFinishedMs: number;
  /** The earliest `finishedAt`. */
  firstFinishedMs: number;
}

export async function verifyCompleted(client: Flotilla, agent: string, ids: readonly string[]): Promise<Verified> {
  const expected = new Set(ids);
  if (expected.size !== ids.length) throw new Error(`${agent}: ${ids.length - expected.size} duplicate task id(s) among the submitted`);
  const notCompleted = new Map<string, number>();
  let completed = 0;
  let unknown = 0;
  let lastFinishedMs = -Infinity;
  let firstFinishedMs = Infinity;
  for await (const task of client.tasks.list({ agent, limit: 500 })) {
    if (!expected.delete(task.id)) {
      unknown++;
      continue;
    }
    if (task.status !== 'completed' || task.finishedAt === null) {
      notCompleted.set(task.status, (notCompleted.get(task.status) ?? 0) + 1);
      continue;
    }
    completed++;
    const at = Date.parse(task.finishedAt);
    lastFinishedMs = Math.max(lastFinishedMs, at);
    firstFinishedMs = Math.min(firstFinishedMs, at);
  }
  const problems: string[] = [];
  if (expected.size > 0) problems.push(`${expected.size} submitted task(s) not found`);
  if (notCompleted.size > 0) problems.push(`not completed: ${[...notCompleted].map(([s, n]) => `${n} ${s}`).join(', ')}`);
  if (unknown > 0) problems.push(`${unknown} task(s) the bench did not submit`);
  if (problems.length > 0) throw new Error(`${agent}: ${completed}/${ids.length} completed; ${problems.join('; ')}`);
  return { completed, lastFinishedMs, firstFinishedMs };
}
