// How a blocked task is shown (GET /tasks/:id): its waitingFor names only the dependencies
// that have not ended yet. The stored waitingFor keeps them all (the sweep's query reads it).

import { isTerminal } from '../core/task-machine.ts';
import type { TaskRecord } from '../core/types.ts';
import type { Store } from '../store/store.ts';

/** The task with `waitingFor` narrowed to the dependencies still awaited; any other task as it is (no read). */
export async function stillAwaited(store: Store, task: TaskRecord): Promise<TaskRecord> {
  if (task.status !== 'blocked' || task.waitingFor === null) return task;
  const ended = new Set((await store.taskGetMany({ ids: task.waitingFor })).filter((d) => isTerminal(d.status)).map((d) => d.id));
  return { ...task, waitingFor: task.waitingFor.filter((id) => !ended.has(id)) };
}
