// How an A2A task's state maps onto a Flotilla attempt (issue 15, decisions.md 76). Pure: the
// adapter (engine/a2a/) turns the remote's answers into these steps and reports each through
// the same worker operations a pull worker uses, so the state machine stays the one in
// task-machine.ts.
//
// | A2A state       | step                                                        |
// | submitted       | wait (nothing to report yet)                                |
// | working         | running: the status message's text is the progress message |
// | input-required  | ask: the task becomes input_required with the text as prompt |
// | completed       | complete: the artifacts (and final message) are the result   |
// | failed          | fail, retryable (the task's retry policy decides)            |
// | rejected        | fail, not retried                                           |
// | canceled        | cancelled when Flotilla asked; else fail, not retried        |
// | auth-required   | fail, not retried (A2A_AUTH_REQUIRED)                        |
// | anything else   | fail, not retried (A2A_PROTOCOL)                             |

import type { Json, TaskErrorInfo } from '@flotilla/sdk';

export const A2A_STATES = ['submitted', 'working', 'input-required', 'completed', 'failed', 'canceled', 'rejected', 'auth-required', 'unknown'] as const;
export type A2aState = (typeof A2A_STATES)[number];

/** The stable codes of the failures an a2a attempt can end with (TaskErrorInfo.code). */
export const A2A_ERROR_CODES = {
  /** The remote task failed: retried per the task's retry policy. */
  failed: 'A2A_TASK_FAILED',
  /** The remote agent declined the task: not retried. */
  rejected: 'A2A_TASK_REJECTED',
  /** The remote agent asks for credentials Flotilla did not send: not retried (fix the agent's headers). */
  authRequired: 'A2A_AUTH_REQUIRED',
  /** The remote agent canceled the task without Flotilla asking: not retried. */
  canceled: 'A2A_TASK_CANCELED',
  /** The agent (or its card) could not be reached, or refused the request: retried, with the cause. */
  unreachable: 'A2A_UNREACHABLE',
  /** The agent answered with something the protocol does not allow here: not retried. */
  protocol: 'A2A_PROTOCOL',
} as const;

/** What a remote part becomes in a result (the engine converts the SDK's parts to these). */
export type A2aPartJson =
  | { kind: 'text'; text: string }
  | { kind: 'data'; data: Json }
  | { kind: 'file'; url: string | null; mediaType: string | null; filename: string | null };

export interface A2aArtifactJson {
  artifactId: string;
  name: string | null;
  parts: A2aPartJson[];
}

export type A2aStep =
  | { kind: 'wait' }
  | { kind: 'running'; message: string | null }
  | { kind: 'ask'; prompt: string }
  | { kind: 'complete' }
  | { kind: 'cancelled' }
  | { kind: 'fail'; error: TaskErrorInfo; retryable: boolean };

/**
 * The step for a remote state. `text` is the status message's text (may be empty);
 * `cancelRequested`: Flotilla asked the remote to cancel (a canceled task is then our cancel).
 */
export function a2aStep(state: A2aState, text: string, cancelRequested: boolean): A2aStep {
  const said = text.trim();
  const because = (what: string) => (said === '' ? what : `${what}: ${said}`);
  switch (state) {
    case 'submitted':
      return { kind: 'wait' };
    case 'working':
      return { kind: 'running', message: said === '' ? null : said };
    case 'input-required':
      return { kind: 'ask', prompt: said === '' ? 'the A2A agent asks for input' : said };
    case 'completed':
      return { kind: 'complete' };
    case 'failed':
      return { kind: 'fail', retryable: true, error: { code: A2A_ERROR_CODES.failed, message: because('the A2A agent failed the task') } };
    case 'rejected':
      return { kind: 'fail', retryable: false, error: { code: A2A_ERROR_CODES.rejected, message: because('the A2A agent rejected the task') } };
    case 'canceled':
      return cancelRequested
        ? { kind: 'cancelled' }
        : { kind: 'fail', retryable: false, error: { code: A2A_ERROR_CODES.canceled, message: because('the A2A agent canceled the task') } };
    case 'auth-required':
      return {
        kind: 'fail', retryable: false,
        error: { code: A2A_ERROR_CODES.authRequired, message: because('the A2A agent requires authentication: set the agent\'s a2a.headers (e.g. an Authorization header from { "env": NAME })') },
      };
    default:
      return { kind: 'fail', retryable: false, error: { code: A2A_ERROR_CODES.protocol, message: because(`the A2A agent reported the task in state "${state}"`) } };
  }
}

/** A completed task's result: its artifacts, and the final status message's text when it has one. */
export function a2aResult(artifacts: readonly A2aArtifactJson[], text: string): Json {
  return { artifacts: artifacts as unknown as Json, message: text.trim() === '' ? null : text.trim() };
}
