// An A2A Task built from the Flotilla task, each time it is asked for (decisions.md 80): A2A
// task ids ARE Flotilla task ids and nothing about an A2A task is stored apart from the task,
// so its state survives restarts and reads the same on every node.

import { Role, TaskState, type Artifact, type Message, type Part, type Task } from '@a2a-js/sdk';
import { a2aStateOf, type A2aState } from '../../core/a2a-status.ts';
import type { Json, TaskRecord } from '../../core/types.ts';

/** Where the A2A context id of a task is kept: the message's contextId, or the task's tree. */
export const A2A_CONTEXT_KEY = 'a2a.contextId';

const STATE_ENUM: Record<A2aState, TaskState> = {
  submitted: TaskState.TASK_STATE_SUBMITTED,
  working: TaskState.TASK_STATE_WORKING,
  'input-required': TaskState.TASK_STATE_INPUT_REQUIRED,
  completed: TaskState.TASK_STATE_COMPLETED,
  failed: TaskState.TASK_STATE_FAILED,
  canceled: TaskState.TASK_STATE_CANCELED,
};

export function contextIdOf(task: TaskRecord): string {
  return task.correlation[A2A_CONTEXT_KEY] ?? task.rootId;
}

function textPart(text: string): Part {
  return { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}

function dataPart(data: Json): Part {
  return { content: { $case: 'data', value: data }, metadata: undefined, filename: '', mediaType: 'application/json' };
}

function agentMessage(task: TaskRecord, suffix: string, parts: Part[]): Message {
  return {
    messageId: `${task.id}:${suffix}`, contextId: contextIdOf(task), taskId: task.id, role: Role.ROLE_AGENT, parts,
    metadata: undefined, extensions: [], referenceTaskIds: [],
  };
}

/**
 * The status message says what a client needs to act on: the prompt (and answer schema) of an
 * input request, the error of a failure, the reason of a cancellation.
 */
function statusMessage(task: TaskRecord, state: A2aState): Message | undefined {
  if (state === 'input-required' && task.inputRequest !== null) {
    const parts = [textPart(task.inputRequest.prompt)];
    if (task.inputRequest.schema !== null) parts.push(dataPart({ schema: task.inputRequest.schema }));
    return agentMessage(task, `input-${task.inputRequest.requestedAt}`, parts);
  }
  if ((state === 'failed' || state === 'canceled') && task.error !== null) {
    return agentMessage(task, state, [textPart(task.error.message), dataPart(task.error as unknown as Json)]);
  }
  return undefined;
}

/** The result of a completed task, as its one artifact: text when it is a string, else data. */
export function resultArtifact(task: TaskRecord): Artifact {
  const result = task.result;
  return {
    artifactId: `${task.id}:result`, name: 'result', description: `the result of task ${task.id}`,
    parts: [typeof result === 'string' ? textPart(result) : dataPart(result)], metadata: undefined, extensions: [],
  };
}

export function a2aTaskOf(task: TaskRecord): Task {
  const state = a2aStateOf(task);
  return {
    id: task.id,
    contextId: contextIdOf(task),
    status: { state: STATE_ENUM[state], message: statusMessage(task, state), timestamp: new Date(task.updatedAt).toISOString() },
    artifacts: state === 'completed' ? [resultArtifact(task)] : [],
    history: [],
    metadata: { flotilla: { status: task.status, agent: task.agent, attempt: task.attempt } },
  };
}
