// Flotilla as an A2A agent: the engine side of the A2A transports (http/a2a/). Every A2A
// method is a call of the task service, so an A2A client gets exactly the rules a client of
// POST /tasks gets (visibility, idempotency, trees, cancellation, answers); what is A2A's own
// (which agents are skills, where a message goes, its input, its push configs) is decided here.

import { TERMINAL_TASK_STATUSES } from '@flotilla/sdk';
import { createHash, randomUUID } from 'node:crypto';
import { a2aStateOf, a2aStateSettled } from '../../core/a2a-status.ts';
import { FlotillaError } from '../../core/errors.ts';
import { actionRefusal, type Principal } from '../../core/permissions.ts';
import type { AgentRecord, Json, TaskRecord } from '../../core/types.ts';
import type { A2aPushConfigRecord } from '../../store/store.ts';
import type { AgentRegistry } from '../agent-registry.ts';
import type { EngineContext } from '../context.ts';
import type { TaskService } from '../task-service.ts';
import { A2A_CONTEXT_KEY } from './a2a-task.ts';

/** What a message asks for, as the transport read it from the A2A message. */
export interface A2aMessage {
  messageId: string;
  /** The skill named in the message's (or the request's) metadata `skill`; null: route. */
  skill: string | null;
  /** Metadata `capabilities`: route to any agent with all of them. */
  capabilities: string[] | null;
  contextId: string | null;
  input: Json;
}

/** A push config as a client gives it (id empty or absent: one is made). */
export interface A2aPushConfigInput {
  id: string | null;
  /**
   * The message it came with, when it came with one: a config without an id then gets one
   * derived from the message id, so a resent message sets the same config, not another.
   */
  messageId?: string;
  url: string;
  token: string | null;
  authScheme: string | null;
  authCredentials: string | null;
}

/**
 * Idempotency keys of A2A messages: one message id of one principal, one task (decisions.md
 * 81): `a2a:` and a hash of the principal's id and the message id (a fixed length, within the
 * key's limit), so two clients' message ids never meet.
 */
export const A2A_IDEMPOTENCY_PREFIX = 'a2a:';
const MAX_MESSAGE_ID = 256;
/** The configs a task may have at once (decisions.md 82): each state change is a POST to each. */
export const MAX_PUSH_CONFIGS_PER_TASK = 10;
/** Control characters (CR/LF above all) in a header value: refused when set, never sent. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export function a2aIdempotencyKey(principal: Principal, messageId: string): string {
  return `${A2A_IDEMPOTENCY_PREFIX}${createHash('sha256').update(`${principal.id}\u0000${messageId}`).digest('base64url')}`;
}

/** Whether the principal administers every push config (an unscoped admin key), not only its own. */
function pushAdmin(principal: Principal): boolean {
  return principal.role === 'admin' && principal.scope === null;
}
const MAX_CONTEXT_ID = 512;
/** A push config's URL: http(s) only, of a sane length. */
const MAX_URL = 2048;

export class A2aService {
  #ctx: EngineContext;
  #registry: AgentRegistry;
  #tasks: TaskService;

  constructor(params: { ctx: EngineContext; registry: AgentRegistry; tasks: TaskService }) {
    this.#ctx = params.ctx;
    this.#registry = params.registry;
    this.#tasks = params.tasks;
  }

  /** The agents published as skills of the fleet's card (a2aSkill set), by name. */
  async skills(): Promise<AgentRecord[]> {
    return [...(await this.#registry.map()).values()].filter((a) => a.a2aSkill !== null).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * A new message: a task for the skill it names; or, naming capabilities, for whichever agent
   * has them (the dispatcher routes it); or, naming neither, for the fleet's only skill. Only
   * published agents are reachable over A2A: an A2A client cannot address an agent the card
   * does not show. The message id is the idempotency key: resending it answers the same task.
   */
  async send(principal: Principal, m: A2aMessage): Promise<TaskRecord> {
    if (m.messageId.length === 0 || m.messageId.length > MAX_MESSAGE_ID) {
      throw new FlotillaError('VALIDATION_FAILED', `messageId must be 1..${MAX_MESSAGE_ID} characters`);
    }
    if (m.contextId !== null && m.contextId.length > MAX_CONTEXT_ID) throw new FlotillaError('VALIDATION_FAILED', `contextId is longer than ${MAX_CONTEXT_ID} characters`);
    const skills = await this.skills();
    const target = this.#target(skills, m);
    const { task } = await this.#tasks.submit(principal, {
      ...target,
      input: m.input,
      idempotencyKey: a2aIdempotencyKey(principal, m.messageId),
      ...(m.contextId !== null && m.contextId !== '' ? { correlation: { [A2A_CONTEXT_KEY]: m.contextId } } : {}),
    });
    return task;
  }

  #target(skills: AgentRecord[], m: A2aMessage): { agent: string; type: string } | { capabilities: string[]; type: string } {
    if (m.skill !== null) {
      if (!skills.some((s) => s.name === m.skill)) {
        throw new FlotillaError('UNKNOWN_AGENT', `no skill "${m.skill}" on this agent card (skills: ${skills.map((s) => s.name).join(', ') || 'none'})`);
      }
      return { agent: m.skill, type: m.skill };
    }
    if (m.capabilities !== null && m.capabilities.length > 0) {
      const caps = m.capabilities;
      if (!skills.some((s) => caps.every((c) => s.capabilities.includes(c)))) {
        throw new FlotillaError('NO_AGENT_FOR_CAPABILITIES', `no skill on this agent card has the capabilities ${caps.join(', ')}`);
      }
      return { capabilities: caps, type: 'a2a.message' };
    }
    if (skills.length === 1) return { agent: skills[0]!.name, type: skills[0]!.name };
    throw new FlotillaError('VALIDATION_FAILED', skills.length === 0
      ? 'this Flotilla publishes no skills (no agent has a2aSkill)'
      : `name a skill in the message's metadata ("skill": one of ${skills.map((s) => s.name).join(', ')}) or capabilities ("capabilities": [...])`);
  }

  /**
   * A message for an existing task: the answer to its input request (task.answer's rules).
   * The action is checked here, on the task id the SDK parsed (`taskId` or `task_id`), not only
   * by the route on the raw body: a spelling the route missed cannot answer with task.submit.
   */
  answer(principal: Principal, taskId: string, input: Json): Promise<TaskRecord> {
    const refusal = actionRefusal(principal, 'task.answer');
    if (refusal !== null) return Promise.reject(new FlotillaError(refusal.code, refusal.message, refusal.details));
    return this.#tasks.answer(principal, taskId, input);
  }

  async get(principal: Principal, id: string): Promise<TaskRecord> {
    return (await this.#tasks.get(principal, id)).task;
  }

  cancel(principal: Principal, id: string): Promise<TaskRecord> {
    return this.#tasks.cancel(principal, id, { reason: 'cancelled over A2A' });
  }

  /**
   * The task now, then again each time its A2A state changes, until a settled state (final,
   * or input-required: the client must act before anything moves; as the SDK's own server
   * and A2A v1.0, a stream runs until interrupted or terminal) or `signal`. Listens to the task's events on the bus (subscribed before the first read, so
   * no change falls between them) and re-reads the task on each: the stream shows what the
   * store holds, never a state built from events.
   */
  async *follow(principal: Principal, id: string, signal: AbortSignal): AsyncGenerator<TaskRecord, void, undefined> {
    let wake: () => void = () => {};
    let changed = true;
    const unsubscribe = this.#ctx.bus.subscribeTask(id, () => {
      changed = true;
      wake();
    });
    const onAbort = () => wake();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      let last: string | null = null;
      while (!signal.aborted) {
        if (!changed) await new Promise<void>((resolve) => (wake = resolve));
        if (signal.aborted) return;
        changed = false;
        const task = await this.get(principal, id);
        const state = a2aStateOf(task);
        // A change of A2A state only: Flotilla's own steps (dispatched, started, a retry) that
        // keep it "working" are not news to an A2A client.
        if (state !== last) {
          last = state;
          yield task;
        }
        if (a2aStateSettled(state) || TERMINAL_TASK_STATUSES.includes(task.status)) return;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      unsubscribe();
    }
  }

  // -- push-notification configs (decisions.md 82) ------------------------------------------
  //
  // A config is its owner's (the principal that set it): its URL and credentials are where the
  // client's results go and what proves them to its receiver. Only the owner (or an unscoped
  // admin key) reads, replaces or deletes it; a token bound to a task tree (an attempt's token
  // of a worker in the tree, which sees the A2A task as its root) may not touch configs at all;
  // and no read ever returns the token or credentials (request-handler.ts blanks them).

  /** The task, when the principal may handle push configs of it; TASK_NOT_FOUND or FORBIDDEN else. */
  async #pushTask(principal: Principal, taskId: string): Promise<TaskRecord> {
    if (principal.scope?.root) {
      throw new FlotillaError('FORBIDDEN', 'a token bound to a task tree (an attempt\'s) may not read or set A2A push configs: they belong to the A2A client that set them');
    }
    return this.get(principal, taskId);
  }

  /**
   * Stored for a task the caller may see; its notifications follow from the next state change.
   * Setting the same config again (a resent message) changes nothing; replacing one of another
   * owner is refused; a new one beyond MAX_PUSH_CONFIGS_PER_TASK is refused.
   */
  async pushConfigSet(principal: Principal, taskId: string, input: A2aPushConfigInput, wireVersion: string): Promise<A2aPushConfigRecord> {
    const task = await this.#pushTask(principal, taskId);
    pushUrlProblem(input.url);
    for (const [name, value] of [['token', input.token], ['authentication.scheme', input.authScheme], ['authentication.credentials', input.authCredentials]] as const) {
      if (value !== null && CONTROL_CHARS.test(value)) throw new FlotillaError('VALIDATION_FAILED', `a push config's ${name} may not contain control characters (CR, LF): it is sent as a header`);
    }
    const id = input.id !== null && input.id !== ''
      ? input.id
      : input.messageId !== undefined ? `m-${createHash('sha256').update(input.messageId).digest('base64url').slice(0, 32)}` : randomUUID();
    if (id.length > 128) throw new FlotillaError('VALIDATION_FAILED', 'a push config id is at most 128 characters');
    const config: A2aPushConfigRecord = {
      taskId: task.id, id, url: input.url, token: input.token,
      authScheme: input.authScheme, authCredentials: input.authCredentials, wireVersion, ownerId: principal.id,
      createdAt: this.#ctx.now(), lastState: null,
    };
    const existing = await this.#ctx.store.a2aPushConfigGet({ taskId: task.id, id });
    if (existing !== null && existing.ownerId === config.ownerId && existing.url === config.url && existing.token === config.token
      && existing.authScheme === config.authScheme && existing.authCredentials === config.authCredentials && existing.wireVersion === wireVersion) {
      return existing;
    }
    const saved = await this.#ctx.store.a2aPushConfigSave({ config, ownerOnly: !pushAdmin(principal), maxPerTask: MAX_PUSH_CONFIGS_PER_TASK });
    if (!saved.saved && saved.reason === 'not_owner') {
      throw new FlotillaError('FORBIDDEN', `push config ${id} of task ${task.id} was set by another client: choose another id`);
    }
    if (!saved.saved) {
      throw new FlotillaError('A2A_PUSH_CONFIG_LIMIT', `task ${task.id} has ${MAX_PUSH_CONFIGS_PER_TASK} push configs already (the most a task may have): delete one first`, { max: MAX_PUSH_CONFIGS_PER_TASK });
    }
    return config;
  }

  /** One of the caller's configs (any, for an admin); another's reads as not found. */
  async pushConfigGet(principal: Principal, taskId: string, id: string): Promise<A2aPushConfigRecord> {
    await this.#pushTask(principal, taskId);
    const config = await this.#ctx.store.a2aPushConfigGet({ taskId, id });
    if (config === null || (!pushAdmin(principal) && config.ownerId !== principal.id)) {
      throw new FlotillaError('A2A_PUSH_CONFIG_NOT_FOUND', `task ${taskId} has no push config ${id}`);
    }
    return config;
  }

  /** The caller's configs of the task (every config, for an admin). */
  async pushConfigList(principal: Principal, taskId: string): Promise<A2aPushConfigRecord[]> {
    await this.#pushTask(principal, taskId);
    const configs = await this.#ctx.store.a2aPushConfigList({ taskIds: [taskId] });
    return pushAdmin(principal) ? configs : configs.filter((c) => c.ownerId === principal.id);
  }

  /** Deletes one of the caller's configs (any, for an admin) and its queued notifications; another's is left alone. */
  async pushConfigDelete(principal: Principal, taskId: string, id: string): Promise<void> {
    await this.#pushTask(principal, taskId);
    await this.#ctx.store.a2aPushConfigDelete({ taskId, id, ownerId: pushAdmin(principal) ? null : principal.id });
  }
}

/** Throws VALIDATION_FAILED unless `url` is an absolute http(s) URL without user:password (a fetch error, logged and stored, shows the URL). */
function pushUrlProblem(url: string): void {
  let parsed: URL | null = null;
  try {
    parsed = url.length <= MAX_URL ? new URL(url) : null;
  } catch {
    parsed = null;
  }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new FlotillaError('VALIDATION_FAILED', `a push notification URL must be an absolute http(s) URL of at most ${MAX_URL} characters`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new FlotillaError('VALIDATION_FAILED', 'a push notification URL may not carry user:password (it would show in logs and errors): put credentials in the config\'s authentication');
  }
}
