// Which action (core/permissions.ts) each A2A JSON-RPC method needs: the A2A counterpart of
// route-actions.ts, checked by the route before the SDK sees the request, so that a refusal
// is the API's 403 FORBIDDEN (A2A leaves authorization to HTTP) and nothing is changed.
// Methods are named as in A2A v1.0; v0.3 names are translated by the SDK's own table.

import { isLegacyJsonRpcMethod, legacyJsonRpcToV1Method } from '@a2a-js/sdk/compat/v0_3';
import type { Action } from '../../core/permissions.ts';

const METHOD_ACTIONS: Readonly<Record<string, Action>> = {
  SendMessage: 'task.submit',
  SendStreamingMessage: 'task.submit',
  GetTask: 'task.read',
  ListTasks: 'task.read',
  CancelTask: 'task.cancel',
  SubscribeToTask: 'task.read',
  // A push config is a standing read of the task, written by its sender: sending's right.
  CreateTaskPushNotificationConfig: 'task.submit',
  GetTaskPushNotificationConfig: 'task.read',
  ListTaskPushNotificationConfigs: 'task.read',
  DeleteTaskPushNotificationConfig: 'task.submit',
  GetExtendedAgentCard: 'task.read',
};

/**
 * The action a JSON-RPC request needs; null when the body is not a request of a known method
 * (the SDK then answers it with the spec's error). A message naming a task answers its input
 * request: `task.answer`, as POST /tasks/:id/input.
 */
export function actionOfRequest(body: unknown, legacy: boolean): Action | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const { method, params } = body as { method?: unknown; params?: unknown };
  if (typeof method !== 'string') return null;
  const name = legacy && isLegacyJsonRpcMethod(method) ? legacyJsonRpcToV1Method(method) : method;
  const action = METHOD_ACTIONS[name] ?? null;
  if (action === 'task.submit' && (name === 'SendMessage' || name === 'SendStreamingMessage')) {
    // Both spellings the SDK's Message.fromJSON accepts; A2aService.answer checks the action
    // again on the id the SDK parsed, so a spelling missed here still cannot answer.
    const message = (params as { message?: { taskId?: unknown; task_id?: unknown } } | undefined)?.message;
    for (const taskId of [message?.taskId, message?.task_id]) {
      if (typeof taskId === 'string' && taskId !== '') return 'task.answer';
    }
  }
  return action;
}
