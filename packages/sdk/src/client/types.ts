// Client-side shapes: call options and filters, and response envelopes of a few routes.
// Views the server also produces (AgentStats, Overview, TaskView, ...) live in wire.ts.

import type { AssignmentView, Priority, TaskStatus, TaskView } from '../wire.ts';
export type { AgentStats, Overview } from '../wire.ts';

export interface SubmitResult {
  /** False when the idempotency key matched an existing task. */
  created: boolean;
  task: TaskView;
}

export interface TaskAssignments {
  taskId: string;
  taskStatus: TaskStatus;
  assignment: AssignmentView | null;
  attempts: AssignmentView[];
}

export interface TaskListFilters {
  status?: TaskStatus | TaskStatus[];
  agent?: string;
  /** A value of the scale, or an alias (`P1` is 7). */
  priority?: Priority;
  /** Tasks whose SLA is at risk, or violated (indexed). */
  sla?: 'at_risk' | 'violated';
  parentId?: string;
  /** Every task of one tree (the root's id). */
  rootId?: string;
  /** Tasks at this depth of their tree (a root is 1). */
  depth?: number;
  /** Page size (server: 1..500, default 50). */
  limit?: number;
  cursor?: string;
  signal?: AbortSignal;
}

export interface QueueFilters {
  status?: TaskStatus | TaskStatus[];
  limit?: number;
  cursor?: string;
  signal?: AbortSignal;
}

export interface WaitOptions {
  /** Give up after this long and return the task as last seen (not terminal). Default: wait forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface CancelOptions extends CallOptions {
  /** Why (recorded in the events of the task and of its descendants). */
  reason?: string;
  /** Cancel the task's unfinished descendants too (default true). */
  cascade?: boolean;
}
