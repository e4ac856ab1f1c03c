// Flotilla as an A2A agent: the engine side of the A2A transports (http/a2a/). Every A2A
// method is a call of the task service, so an A2A client gets exactly the rules a client of
// POST /tasks gets (visibility, idempotency, trees, cancellation, answers); what is A2A's own
// (which agents are skills, where a message goes, its input, its push configs) is decided here.

import { TERMINAL_TASK_STATUSES } from '@flotilla/sdk';
import { randomUUID } from 'node:crypto';
import { a2aStateOf, a2aStateFinal } from '../../core/a2a-status.ts';
import { FlotillaError } from '../../core/errors.ts';
import type { Principal } from '../../core/permissions.ts';
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
  url: string;
  token: string | null;
  authScheme: string | null;
  authCredentials: string | null;
}

/** Idempotency keys of A2A messages: one message id, one task (decisions.md 81). */
export const A2A_IDEMPOTENCY_PREFIX = 'a2a:';
const MAX_MESSAGE_ID = 256 - A2A_IDEMPOTENCY_PREFIX.length;
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
      idempotencyKey: `${A2A_IDEMPOTENCY_PREFIX}${m.messageId}`,
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

  /** A message for an existing task: the answer to its input request (task.answer's rules). */
  answer(principal: Principal, taskId: string, input: Json): Promise<TaskRecord> {
    return this.#tasks.answer(principal, taskId, input);
  }

  async get(principal: Principal, id: string): Promise<TaskRecord> {
    return (await this.#tasks.get(principal, id)).task;
  }

  cancel(principal: Principal, id: string): Promise<TaskRecord> {
    return this.#tasks.cancel(principal, id, { reason: 'cancelled over A2A' });
  }

  /**
   * The task now, then again each time its A2A state changes, until a final state (or
   * `signal`). Listens to the task's events on the bus (subscribed before the first read, so
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
        if (a2aStateFinal(state) || TERMINAL_TASK_STATUSES.includes(task.status)) return;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      unsubscribe();
    }
  }

  // -- push-notification configs (decisions.md 82) ------------------------------------------

  /** Stored for a task the caller may see; its notifications follow from the next state change. */
  async pushConfigSet(principal: Principal, taskId: string, input: A2aPushConfigInput, wireVersion: string): Promise<A2aPushConfigRecord> {
    const task = await this.get(principal, taskId);
    pushUrlProblem(input.url);
    const config: A2aPushConfigRecord = {
      taskId: task.id, id: input.id !== null && input.id !== '' ? input.id : randomUUID(), url: input.url, token: input.token,
      authScheme: input.authScheme, authCredentials: input.authCredentials, wireVersion, ownerId: principal.id,
      createdAt: this.#ctx.now(), lastState: null,
    };
    if (config.id.length > 128) throw new FlotillaError('VALIDATION_FAILED', 'a push config id is at most 128 characters');
    await this.#ctx.store.a2aPushConfigSave({ config });
    return config;
  }

  async pushConfigGet(principal: Principal, taskId: string, id: string): Promise<A2aPushConfigRecord> {
    await this.get(principal, taskId);
    const config = await this.#ctx.store.a2aPushConfigGet({ taskId, id });
    if (config === null) throw new FlotillaError('A2A_PUSH_CONFIG_NOT_FOUND', `task ${taskId} has no push config ${id}`);
    return config;
  }

  async pushConfigList(principal: Principal, taskId: string): Promise<A2aPushConfigRecord[]> {
    await this.get(principal, taskId);
    return this.#ctx.store.a2aPushConfigList({ taskIds: [taskId] });
  }

  async pushConfigDelete(principal: Principal, taskId: string, id: string): Promise<void> {
    await this.get(principal, taskId);
    await this.#ctx.store.a2aPushConfigDelete({ taskId, id });
  }
}

/** Throws VALIDATION_FAILED unless `url` is an absolute http(s) URL. */
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
}
