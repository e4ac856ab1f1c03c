// Flotilla ↔ A2A shapes (decisions.md 74): a leased task becomes an A2A message, and the
// remote's tasks, states and artifacts become what core/a2a-states.ts decides on.

import { Role, TaskState, type Artifact, type Message, type Part, type Task } from '@a2a-js/sdk';
import type { Json, LeasedTask } from '@flotilla/sdk';
import type { A2aArtifactJson, A2aPartJson, A2aState } from '../../core/a2a-states.ts';

/**
 * The message id of an attempt's message: derived from the assignment id, so a message sent
 * again for the same attempt (a node that took the attempt over before its remote task id was
 * recorded) is the same message to a remote that dedupes by messageId.
 */
export function messageIdOf(assignmentId: string): string {
  return `flotilla-${assignmentId}`;
}

function textPart(text: string): Part {
  return { content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}

function dataPart(data: Json): Part {
  return { content: { $case: 'data', value: data }, metadata: undefined, filename: '', mediaType: 'application/json' };
}

/** The input as a data part, and as a text part too where it is a string. */
function partsOf(value: Json): Part[] {
  return typeof value === 'string' ? [textPart(value), dataPart(value)] : [dataPart(value)];
}

/**
 * The attempt's message. A first run sends the task's input; a run resumed after an answer
 * sends the answer to the SAME remote task (`remote`), never the first message again.
 */
export function messageFor(leased: LeasedTask, remote: { taskId: string; contextId: string | null } | null): Message {
  const t = leased.task;
  const answer = t.resumed?.reason === 'input' ? t.resumed.input : undefined;
  return {
    messageId: messageIdOf(leased.assignmentId),
    contextId: remote?.contextId ?? '',
    taskId: remote?.taskId ?? '',
    role: Role.ROLE_USER,
    parts: partsOf(answer !== undefined && remote !== null ? answer : t.input),
    metadata: {
      flotilla: { taskId: t.id, assignmentId: leased.assignmentId, attempt: t.attempt, type: t.type, agent: t.agent },
      correlation: t.correlation,
      ...(t.traceparent === null ? {} : { traceparent: t.traceparent }),
    },
    extensions: [],
    referenceTaskIds: [],
  };
}

const STATES: Partial<Record<TaskState, A2aState>> = {
  [TaskState.TASK_STATE_SUBMITTED]: 'submitted',
  [TaskState.TASK_STATE_WORKING]: 'working',
  [TaskState.TASK_STATE_INPUT_REQUIRED]: 'input-required',
  [TaskState.TASK_STATE_COMPLETED]: 'completed',
  [TaskState.TASK_STATE_FAILED]: 'failed',
  [TaskState.TASK_STATE_CANCELED]: 'canceled',
  [TaskState.TASK_STATE_REJECTED]: 'rejected',
  [TaskState.TASK_STATE_AUTH_REQUIRED]: 'auth-required',
};

export function stateOf(state: TaskState | undefined): A2aState {
  return (state === undefined ? undefined : STATES[state]) ?? 'unknown';
}

export function textOf(message: Message | undefined): string {
  return (message?.parts ?? []).map((p) => (p.content?.$case === 'text' ? p.content.value : '')).filter((s) => s !== '').join('\n');
}

function partJson(p: Part): A2aPartJson | null {
  switch (p.content?.$case) {
    case 'text': return { kind: 'text', text: p.content.value };
    case 'data': return { kind: 'data', data: (p.content.value ?? null) as Json };
    case 'url': return { kind: 'file', url: p.content.value, mediaType: p.mediaType || null, filename: p.filename || null };
    // Raw bytes are not copied into a task's result (JSON, size-limited): named, not carried.
    case 'raw': return { kind: 'file', url: null, mediaType: p.mediaType || null, filename: p.filename || null };
    default: return null;
  }
}

export function artifactsOf(artifacts: readonly Artifact[]): A2aArtifactJson[] {
  return artifacts.map((a) => ({
    artifactId: a.artifactId, name: a.name || null, parts: a.parts.map(partJson).filter((p): p is A2aPartJson => p !== null),
  }));
}

/** A direct reply (a Message instead of a Task) as an artifact, so a result always has one shape. */
export function replyArtifacts(message: Message): A2aArtifactJson[] {
  return [{ artifactId: message.messageId, name: null, parts: message.parts.map(partJson).filter((p): p is A2aPartJson => p !== null) }];
}

export function isTask(value: Message | Task): value is Task {
  return 'status' in value && 'artifacts' in value;
}
