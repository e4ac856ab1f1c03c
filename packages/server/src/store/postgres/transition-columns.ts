// The columns a transition's patches write, with their SQL types: shared by the statement per
// transition (transitions.ts) and the set statements (transition-set.ts).

import type { AssignmentPatch, TaskPatch } from '../../core/types.ts';

export type Column = readonly [name: string, type: string];

/** TaskPatch keys stored on the hot `tasks` row: column and SQL type. */
export const TASK_PATCH_COLUMNS = {
  status: ['status', 'text'],
  assignmentId: ['assignment_id', 'text'],
  attempt: ['attempt', 'integer'],
  maxAttempts: ['max_attempts', 'integer'],
  runAt: ['run_at', 'bigint'],
  finishedAt: ['finished_at', 'bigint'],
  cancelRequestedAt: ['cancel_requested_at', 'bigint'],
  waitingFor: ['waiting_for', 'jsonb'],
  inputExpiresAt: ['input_expires_at', 'bigint'],
  updatedAt: ['updated_at', 'bigint'],
} as const satisfies Partial<Record<keyof TaskPatch, Column>>;

/** TaskPatch keys stored in `task_payloads` (JSON). */
export const PAYLOAD_PATCH_COLUMNS = {
  result: ['result', 'jsonb'],
  error: ['error', 'jsonb'],
  inputRequest: ['input_request', 'jsonb'],
  resumed: ['resumed', 'jsonb'],
  input: ['input', 'jsonb'],
  dependencies: ['dependencies', 'jsonb'],
} as const satisfies Partial<Record<keyof TaskPatch, Column>>;

// Compile-time check: a field added to TaskPatch must be given a column here.
type UnmappedTaskPatchKey = Exclude<keyof TaskPatch, keyof typeof TASK_PATCH_COLUMNS | keyof typeof PAYLOAD_PATCH_COLUMNS>;
const _everyTaskPatchKeyMapped: [UnmappedTaskPatchKey] extends [never] ? true : UnmappedTaskPatchKey = true;
void _everyTaskPatchKeyMapped;

export const ASSIGNMENT_PATCH_COLUMNS = {
  status: ['status', 'text'],
  startedAt: ['started_at', 'bigint'],
  finishedAt: ['finished_at', 'bigint'],
  leaseExpiresAt: ['lease_expires_at', 'bigint'],
  deadlineAt: ['deadline_at', 'bigint'],
  error: ['error', 'jsonb'],
  counted: ['counted', 'boolean'],
} as const satisfies Record<keyof AssignmentPatch, Column>;
