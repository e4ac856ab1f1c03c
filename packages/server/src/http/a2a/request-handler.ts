// The A2A request handler the SDK's JSON-RPC transports (v1.0, and v0.3 through its compat
// layer) call: each method translated into A2aService (engine) calls and the answer built from
// the Flotilla task (engine/a2a-server/a2a-task.ts). It holds no rules and no state: the A2A
// task is the Flotilla task, read from the store each time (decisions.md 80).

import type { Message, Part, StreamResponse, Task, TaskPushNotificationConfig } from '@a2a-js/sdk';
import {
  ContentTypeNotSupportedError, ExtendedAgentCardNotConfiguredError, RequestMalformedError, TaskNotCancelableError,
  TaskNotFoundError, UnsupportedOperationError,
} from '@a2a-js/sdk/errors';
import type { A2ARequestHandler, ServerCallContext, User } from '@a2a-js/sdk/server';
import type {
  AgentCard, CancelTaskRequest, DeleteTaskPushNotificationConfigRequest, GetTaskPushNotificationConfigRequest, GetTaskRequest,
  ListTaskPushNotificationConfigsRequest, ListTaskPushNotificationConfigsResponse, ListTasksResponse, SendMessageRequest,
  SubscribeToTaskRequest,
} from '@a2a-js/sdk';
import { ERROR_STATUS } from '@flotilla/sdk';
import { a2aStateOf, a2aStateFinal, a2aStateSettled } from '../../core/a2a-status.ts';
import { FlotillaError } from '../../core/errors.ts';
import type { Principal } from '../../core/permissions.ts';
import type { Json, TaskRecord } from '../../core/types.ts';
import type { A2aPushConfigInput, A2aService } from '../../engine/a2a-server/a2a-service.ts';
import { a2aTaskOf, contextIdOf, resultArtifact } from '../../engine/a2a-server/a2a-task.ts';
import type { A2aPushConfigRecord } from '../../store/store.ts';

/** The authenticated principal, as the SDK carries a user through its context. */
export class PrincipalUser implements User {
  readonly principal: Principal;
  constructor(principal: Principal) {
    this.principal = principal;
  }
  get isAuthenticated(): boolean {
    return true;
  }
  get userName(): string {
    return this.principal.name;
  }
}

/** Where the route puts the request's abort signal (the client went away) in the context's state. */
export const ABORT_KEY = 'flotilla.abort';

function principalOf(context: ServerCallContext): Principal {
  const user = context.user;
  if (!(user instanceof PrincipalUser)) throw new Error('A2A request without a principal: the route must authenticate it');
  return user.principal;
}

function signalOf(context: ServerCallContext): AbortSignal {
  const signal = context.state.get(ABORT_KEY);
  return signal instanceof AbortSignal ? signal : new AbortController().signal;
}

/** Flotilla's refusals as A2A errors; the Flotilla code rides along in the error's metadata. */
function a2aError(err: unknown, cancel = false): unknown {
  if (!(err instanceof FlotillaError)) return err;
  const options = { message: err.message, metadata: { flotillaCode: err.code } };
  // A missing push config too, as the SDK's own handler answers it.
  if (err.code === 'TASK_NOT_FOUND' || err.code === 'A2A_PUSH_CONFIG_NOT_FOUND') return new TaskNotFoundError(options);
  if (cancel && err.code === 'INVALID_TRANSITION') return new TaskNotCancelableError(options);
  if (ERROR_STATUS[err.code] < 500) return new RequestMalformedError(options);
  return err;
}

async function translated<T>(fn: () => Promise<T>, cancel = false): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw a2aError(err, cancel);
  }
}

/**
 * A message's parts as the task's input (decisions.md 81): one data part alone is its data;
 * text parts alone are their text (joined by newlines); anything else is
 * `{ "text": <joined text or null>, "data": [<each data part>] }`. Files are refused: a task's
 * input is JSON, and Flotilla stores no blobs.
 */
export function inputOfParts(parts: readonly Part[]): Json {
  const texts: string[] = [];
  const data: Json[] = [];
  for (const part of parts) {
    const content = part.content;
    if (content?.$case === 'text') texts.push(content.value);
    else if (content?.$case === 'data') data.push((content.value ?? null) as Json);
    else throw new ContentTypeNotSupportedError('Flotilla takes text and data parts only (a task\'s input is JSON); send a file as a URL inside a data part');
  }
  if (data.length === 1 && texts.length === 0) return data[0]!;
  if (data.length === 0 && texts.length > 0) return texts.join('\n');
  return { text: texts.length > 0 ? texts.join('\n') : null, data };
}

function metaString(m: Record<string, unknown> | undefined, key: string): string | null {
  const v = m?.[key];
  return typeof v === 'string' && v !== '' ? v : null;
}

function metaStrings(m: Record<string, unknown> | undefined, key: string): string[] | null {
  const v = m?.[key];
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : null;
}

function pushConfigInput(c: TaskPushNotificationConfig): A2aPushConfigInput {
  return {
    id: c.id !== '' ? c.id : null, url: c.url, token: c.token !== '' ? c.token : null,
    authScheme: c.authentication?.scheme ? c.authentication.scheme : null,
    authCredentials: c.authentication?.credentials ? c.authentication.credentials : null,
  };
}

/**
 * A config as a read shows it: never its token or credentials (decisions.md 82), which prove
 * notifications to the client's receiver; the scheme tells the client which it set.
 */
function pushConfigOf(r: A2aPushConfigRecord): TaskPushNotificationConfig {
  return {
    tenant: '', id: r.id, taskId: r.taskId, url: r.url, token: '',
    authentication: r.authScheme === null ? undefined : { scheme: r.authScheme, credentials: '' },
  };
}

/** What a stream sends for one change of the task: its status, and its result before a completion. */
function streamEvents(task: TaskRecord, first: boolean): StreamResponse[] {
  const a2a = a2aTaskOf(task);
  if (first) return [{ payload: { $case: 'task', value: a2a } }];
  const events: StreamResponse[] = [];
  if (a2aStateOf(task) === 'completed') {
    events.push({ payload: { $case: 'artifactUpdate', value: { taskId: task.id, contextId: contextIdOf(task), artifact: resultArtifact(task), append: false, lastChunk: true, metadata: undefined } } });
  }
  events.push({ payload: { $case: 'statusUpdate', value: { taskId: task.id, contextId: contextIdOf(task), status: a2a.status, metadata: undefined } } });
  return events;
}

export class FlotillaA2aHandler implements A2ARequestHandler {
  #a2a: A2aService;
  #card: () => Promise<AgentCard>;

  constructor(params: { a2a: A2aService; card: () => Promise<AgentCard> }) {
    this.#a2a = params.a2a;
    this.#card = params.card;
  }

  getAgentCard(): Promise<AgentCard> {
    return this.#card();
  }

  getAuthenticatedExtendedAgentCard(): Promise<AgentCard> {
    return Promise.reject(new ExtendedAgentCardNotConfiguredError('Flotilla has one card for everyone: GET /.well-known/agent-card.json'));
  }

  /** The task the message made (or answered), once settled unless `returnImmediately`. */
  async sendMessage(params: SendMessageRequest, context: ServerCallContext): Promise<Message | Task> {
    const task = await this.#start(params, context);
    if (params.configuration?.returnImmediately === true || a2aStateSettled(a2aStateOf(task))) return a2aTaskOf(task);
    let last = task;
    for await (const t of this.#a2a.follow(principalOf(context), task.id, signalOf(context))) {
      last = t;
      if (a2aStateSettled(a2aStateOf(t))) break;
    }
    return a2aTaskOf(last);
  }

  async *sendMessageStream(params: SendMessageRequest, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    const task = await this.#start(params, context);
    yield* this.#stream(task.id, context, true);
  }

  async getTask(params: GetTaskRequest, context: ServerCallContext): Promise<Task> {
    return a2aTaskOf(await translated(() => this.#a2a.get(principalOf(context), params.id)));
  }

  async cancelTask(params: CancelTaskRequest, context: ServerCallContext): Promise<Task> {
    const principal = principalOf(context);
    const before = await translated(() => this.#a2a.get(principal, params.id));
    if (a2aStateFinal(a2aStateOf(before))) throw new TaskNotCancelableError(`task ${params.id} has ended (${before.status})`);
    return a2aTaskOf(await translated(() => this.#a2a.cancel(principal, params.id), true));
  }

  async createTaskPushNotificationConfig(params: TaskPushNotificationConfig, context: ServerCallContext): Promise<TaskPushNotificationConfig> {
    const record = await translated(() => this.#a2a.pushConfigSet(principalOf(context), params.taskId, pushConfigInput(params), context.requestedVersion));
    return pushConfigOf(record);
  }

  async getTaskPushNotificationConfig(params: GetTaskPushNotificationConfigRequest, context: ServerCallContext): Promise<TaskPushNotificationConfig> {
    return pushConfigOf(await translated(() => this.#a2a.pushConfigGet(principalOf(context), params.taskId, params.id)));
  }

  async listTaskPushNotificationConfigs(params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext): Promise<ListTaskPushNotificationConfigsResponse> {
    const configs = await translated(() => this.#a2a.pushConfigList(principalOf(context), params.taskId));
    return { configs: configs.map(pushConfigOf), nextPageToken: '' };
  }

  async deleteTaskPushNotificationConfig(params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext): Promise<void> {
    await translated(() => this.#a2a.pushConfigDelete(principalOf(context), params.taskId, params.id));
  }

  /** The task now, then its changes until it ends (after a restart too: nothing is held in memory). */
  async *resubscribe(params: SubscribeToTaskRequest, context: ServerCallContext): AsyncGenerator<StreamResponse, void, undefined> {
    yield* this.#stream(params.id, context, true);
  }

  listTasks(): Promise<ListTasksResponse> {
    return Promise.reject(new UnsupportedOperationError('ListTasks is not offered over A2A: list tasks with GET /api/v1/tasks'));
  }

  /** A new task, or (the message names a task) the answer to the task's input request; its push config, if it brings one. */
  async #start(params: SendMessageRequest, context: ServerCallContext): Promise<TaskRecord> {
    const message = params.message;
    if (message === undefined) throw new RequestMalformedError('message is required');
    const principal = principalOf(context);
    const input = inputOfParts(message.parts);
    const task = await translated(() => message.taskId !== ''
      ? this.#a2a.answer(principal, message.taskId, input)
      : this.#a2a.send(principal, {
        messageId: message.messageId,
        skill: metaString(message.metadata, 'skill') ?? metaString(params.metadata, 'skill'),
        capabilities: metaStrings(message.metadata, 'capabilities') ?? metaStrings(params.metadata, 'capabilities'),
        contextId: message.contextId !== '' ? message.contextId : null,
        input,
      }));
    const push = params.configuration?.taskPushNotificationConfig;
    if (push !== undefined && push.url !== '') {
      await translated(() => this.#a2a.pushConfigSet(principal, task.id, { ...pushConfigInput(push), messageId: message.messageId }, context.requestedVersion));
    }
    return task;
  }

  async *#stream(id: string, context: ServerCallContext, first: boolean): AsyncGenerator<StreamResponse, void, undefined> {
    const principal = principalOf(context);
    // A missing task is an error answer, not an empty stream.
    await translated(() => this.#a2a.get(principal, id));
    let isFirst = first;
    for await (const task of this.#a2a.follow(principal, id, signalOf(context))) {
      yield* streamEvents(task, isFirst);
      isFirst = false;
    }
  }
}
