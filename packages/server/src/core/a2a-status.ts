// How a Flotilla task's status reads as an A2A task state (decisions.md 80): the one mapping,
// used by the A2A request handler (tasks/get, streams) and the push-notification feed alike.
// Pure: A2A states are named by their v0.3/v1.0 wire names; the transport turns them into the
// SDK's enum.

import type { TaskStatus } from '@flotilla/sdk';

export const A2A_STATES = ['submitted', 'working', 'input-required', 'completed', 'failed', 'canceled'] as const;
export type A2aState = (typeof A2A_STATES)[number];

/**
 * - pending or dispatched before any attempt ran (attempt 0, or 1 while dispatched, and never
 *   resumed): submitted;
 * - pending again after an attempt (a retry waiting for its backoff), dispatched for a retry,
 *   running, or waiting for its children: working (the task is being worked on; the client
 *   need not see Flotilla's retries or suspensions as state changes);
 * - pending or dispatched after a suspension (`resumed` set): working too. A suspended attempt
 *   is given back (the attempt count drops back), so the count alone would read a task
 *   answered after input-required, or resumed after its children, as `submitted` again: an
 *   A2A state never goes back to submitted once the task ran;
 * - input_required: input-required; completed, failed, cancelled: completed, failed, canceled.
 */
export function a2aStateOf(task: { status: TaskStatus; attempt: number; resumed: unknown }): A2aState {
  const ran = task.resumed !== null && task.resumed !== undefined;
  switch (task.status) {
    case 'pending': return task.attempt === 0 && !ran ? 'submitted' : 'working';
    case 'dispatched': return task.attempt <= 1 && !ran ? 'submitted' : 'working';
    case 'running':
    case 'waiting': return 'working';
    case 'input_required': return 'input-required';
    case 'completed': return 'completed';
    case 'failed': return 'failed';
    case 'cancelled': return 'canceled';
    // Waiting for its dependencies: it has not run yet.
    case 'blocked': return 'submitted';
  }
}

/** A terminal A2A state: nothing follows it (streams end, the push config is done). */
export function a2aStateFinal(state: A2aState): boolean {
  return state === 'completed' || state === 'failed' || state === 'canceled';
}

/**
 * A state at which a blocking message/send answers (and a stream pauses its expectations):
 * final, or interrupted (the client must answer before anything moves).
 */
export function a2aStateSettled(state: A2aState): boolean {
  return a2aStateFinal(state) || state === 'input-required';
}
