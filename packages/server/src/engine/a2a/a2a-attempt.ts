// One attempt of a task on an A2A agent (decisions.md 75): sends the attempt's message once,
// follows the remote task (its stream, or tasks/get on every tick), and reports what happens
// through WorkerService, exactly as a pull worker would (start, progress, complete, fail, ask,
// cancel ack). Nothing here decides a transition: core/a2a-states.ts maps the remote's state to
// a step, and the worker operations ask core/task-machine.ts.
//
// Invariants:
// - The message is sent at most once per attempt by this node, and never when the attempt
//   already names a remote task (assignmentSetRemote, recorded as soon as the remote answers):
//   a node that takes the attempt over follows that task instead.
// - The lease is renewed only right after the remote answered (a poll, or a stream event less
//   than half a lease ago): an agent that stops answering loses its attempts by the lease
//   rules, as any replica does.
// - Reports are serialized per attempt (#serial): a stream event and a tick never race.

import type { Message, StreamResponse, Task, TaskStatus } from '@a2a-js/sdk';
import type { LeasedTask } from '@flotilla/sdk';
import { A2A_ERROR_CODES, a2aResult, a2aStep, type A2aArtifactJson } from '../../core/a2a-states.ts';
import { FlotillaError } from '../../core/errors.ts';
import { SYSTEM_PRINCIPAL } from '../../core/permissions.ts';
import type { AgentRecord } from '../../core/types.ts';
import type { EngineContext } from '../context.ts';
import type { WorkerService } from '../worker-service.ts';
import type { A2aClients, A2aConnection } from './clients.ts';
import { artifactsOf, isTask, messageFor, replyArtifacts, stateOf, textOf } from './wire.ts';

export interface AttemptHost {
  ctx: EngineContext;
  workers: WorkerService;
  clients: A2aClients;
  replicaId: string;
  /** The agent as the registry has it now (null: deleted). */
  agent(): Promise<AgentRecord | null>;
  /** The attempt is over for this node (reported, superseded, or stopped). */
  ended(assignmentId: string): void;
}

function statusKey(status: TaskStatus | undefined): string {
  return `${status?.timestamp ?? ''}|${status?.message?.messageId ?? ''}`;
}

function causeOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

export class A2aAttempt {
  readonly assignmentId: string;
  readonly taskId: string;
  #host: AttemptHost;
  #leased: LeasedTask;
  #remote: { taskId: string; contextId: string | null } | null;
  #artifacts = new Map<string, A2aArtifactJson>();
  #lastHeardAt = -Infinity;
  /**
   * Aborted when the attempt is over here (stop, finish): every call to the remote that could
   * send (message/send, message/stream, resubscribe) carries it, so nothing goes out after stop().
   */
  #abort = new AbortController();
  /** A stream is being read (message/stream or resubscribe): polls give way to it while it speaks. */
  #streaming = false;
  #started = false;
  #cancelSent = false;
  #lastProgress: string | null = null;
  /**
   * On an attempt resumed with an answer: the remote's status that asked (its timestamp and
   * message id). Seen again (the task event a stream starts with, a poll racing the answer) it
   * is the old question, not a new one.
   */
  #staleAsk: string | null = null;
  #done = false;
  #ticking = false;
  #chain: Promise<void> = Promise.resolve();

  constructor(host: AttemptHost, leased: LeasedTask, remote: { taskId: string; contextId: string | null } | null) {
    this.#host = host;
    this.#leased = leased;
    this.assignmentId = leased.assignmentId;
    this.taskId = leased.task.id;
    this.#remote = remote;
    if (remote !== null) this.#started = true;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Starts the attempt: sends its message, or (taken over) follows the remote task it already has. */
  begin(): void {
    void this.#run().catch((err: unknown) => this.#host.ctx.log.error({ err, assignmentId: this.assignmentId }, 'a2a attempt failed unexpectedly'));
  }

  /** This node stops following the attempt (leadership lost, shutdown); it stays live for the next leader. */
  stop(): void {
    this.#done = true;
    this.#abort.abort();
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(() => (this.#done ? undefined : fn()));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#abort.abort();
    this.#host.ended(this.assignmentId);
  }

  async #connection(): Promise<A2aConnection> {
    const agent = await this.#host.agent();
    if (agent === null || agent.a2a === null) throw new Error(`agent "${this.#leased.task.agent}" is no longer an a2a agent`);
    return this.#host.clients.get(agent);
  }

  /** A call to the remote that is never left hanging: the attempt's abort, and at most `ms`. */
  #signal(ms: number): AbortSignal {
    return AbortSignal.any([this.#abort.signal, AbortSignal.timeout(ms)]);
  }

  // Every await in #run is followed by a #done check: a stop() during the card fetch, the
  // store read or the old question's tasks/get (leadership lost, shutdown) must not send; the
  // next leader takes the attempt over and sends it then (decisions.md 75).
  async #run(): Promise<void> {
    let conn: A2aConnection;
    try {
      conn = await this.#connection();
      if (this.#done) return;
    } catch (err) {
      if (this.#done) return;
      // No card, no message sent: a retry may find the agent up (or its card fixed).
      if (this.#remote === null) return this.#serial(() => this.#report({ kind: 'fail', retryable: true, error: { code: A2A_ERROR_CODES.unreachable, message: `cannot reach the A2A agent's card: ${causeOf(err)}` } }));
      this.#host.ctx.log.warn({ err, assignmentId: this.assignmentId }, 'a2a: cannot fetch the agent card; will poll again');
      return;
    }
    if (this.#remote !== null) {
      // Taken over: follow the task it already has. Streaming agents are re-subscribed; the
      // others are polled by tick().
      if (conn.streaming) await this.#follow(conn.client.resubscribeTask({ tenant: '', id: this.#remote.taskId }, { signal: this.#abort.signal }));
      return;
    }
    const previous = await this.#previousRemote(conn);
    if (this.#done) return;
    const message = messageFor(this.#leased, previous);
    try {
      if (conn.streaming) {
        await this.#follow(conn.client.sendMessageStream({ tenant: '', message, configuration: undefined, metadata: undefined }, { signal: this.#abort.signal }));
        return;
      }
      const reply = await conn.client.sendMessage(
        { tenant: '', message, configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true }, metadata: undefined },
        { signal: this.#signal(this.#host.ctx.config.leaseMs) },
      );
      if (this.#done) return;
      this.#lastHeardAt = this.#host.ctx.now();
      await this.#serial(() => (isTask(reply) ? this.#onTask(reply) : this.#onReply(reply)));
    } catch (err) {
      if (this.#done) return; // stopped (aborted) or ended meanwhile: not the agent's failure
      this.#host.clients.invalidate(this.#leased.task.agent ?? '');
      if (this.#remote === null) {
        await this.#serial(() => this.#report({ kind: 'fail', retryable: true, error: { code: A2A_ERROR_CODES.unreachable, message: `the A2A agent did not take the message: ${causeOf(err)}` } }));
      }
    }
  }

  /**
   * After an answer, the resumed attempt talks to the remote task that asked (never a new one).
   * Only while that task still waits for it: the previous attempt ended `suspended` (it asked),
   * or the remote task is input-required. A retry after the answered attempt failed (`resumed`
   * stays on the task across retries) starts a fresh remote task: a finished one refuses
   * messages, and sending there would burn every attempt (decisions.md 76).
   */
  async #previousRemote(conn: A2aConnection): Promise<{ taskId: string; contextId: string | null } | null> {
    if (this.#leased.task.resumed?.reason !== 'input') return null;
    const attempts = await this.#host.ctx.store.assignmentRemoteList({ taskId: this.taskId });
    const last = attempts.filter((a) => a.assignmentId !== this.assignmentId).at(-1);
    if (!last || this.#done) return null;
    const [ended, asked] = await Promise.all([
      this.#host.ctx.store.assignmentGet({ id: last.assignmentId }),
      conn.client.getTask({ tenant: '', id: last.remoteTaskId }, { signal: this.#signal(this.#host.ctx.config.leaseMs / 2) }).catch(() => null),
    ]);
    const waiting = ended?.status === 'suspended' || stateOf(asked?.status?.state) === 'input-required';
    if (!waiting) return null;
    // Seen again (the task event a stream starts with, a poll racing the answer), its question is the old one.
    if (asked !== null) this.#staleAsk = statusKey(asked.status);
    return { taskId: last.remoteTaskId, contextId: last.remoteContextId };
  }

  /** Reads a stream until the remote task is final or interrupted; a broken stream falls back to polling. */
  async #follow(stream: AsyncGenerator<StreamResponse, void, undefined>): Promise<void> {
    this.#streaming = true;
    try {
      for await (const event of stream) {
        this.#lastHeardAt = this.#host.ctx.now();
        await this.#serial(() => this.#onStreamEvent(event));
        if (this.#done) break;
      }
      // Closed before any task or reply: nothing will ever renew or end this attempt, so it
      // would wait out its lease. The agent broke the protocol: fail it now, not retried.
      if (!this.#done && this.#remote === null) {
        await this.#serial(() => this.#report({ kind: 'fail', retryable: false, error: { code: A2A_ERROR_CODES.protocol, message: 'the A2A agent closed the stream before naming a task or replying' } }));
      }
    } catch (err) {
      if (this.#done) return;
      this.#host.clients.invalidate(this.#leased.task.agent ?? '');
      if (this.#remote === null) {
        await this.#serial(() => this.#report({ kind: 'fail', retryable: true, error: { code: A2A_ERROR_CODES.unreachable, message: `the A2A agent did not take the message: ${causeOf(err)}` } }));
        return;
      }
      this.#host.ctx.log.warn({ err, assignmentId: this.assignmentId }, 'a2a: the stream broke; polling the remote task');
    } finally {
      this.#streaming = false;
    }
  }

  async #onStreamEvent(event: StreamResponse): Promise<void> {
    const payload = event.payload;
    if (payload === undefined) return;
    switch (payload.$case) {
      case 'task': return this.#onTask(payload.value);
      case 'message': return this.#onReply(payload.value);
      case 'statusUpdate':
        await this.#remember(payload.value.taskId, payload.value.contextId);
        return this.#onStatus(payload.value.status);
      case 'artifactUpdate': {
        const a = payload.value.artifact;
        if (a === undefined) return;
        const [json] = artifactsOf([a]);
        const known = this.#artifacts.get(a.artifactId);
        this.#artifacts.set(a.artifactId, payload.value.append && known ? { ...known, parts: [...known.parts, ...json!.parts] } : json!);
        return;
      }
    }
  }

  async #remember(taskId: string, contextId: string): Promise<void> {
    if (this.#remote !== null || taskId === '') return;
    this.#remote = { taskId, contextId: contextId === '' ? null : contextId };
    const recorded = await this.#host.ctx.store.assignmentSetRemote({ assignmentId: this.assignmentId, replicaId: this.#host.replicaId, remoteTaskId: taskId, remoteContextId: this.#remote.contextId });
    if (!recorded) {
      // The attempt ended meanwhile (timed out, lost, cancelled): the remote work is not wanted.
      await this.#cancelRemoteQuietly();
      this.#finish();
      return;
    }
    await this.#ensureStarted();
  }

  async #onTask(task: Task): Promise<void> {
    await this.#remember(task.id, task.contextId);
    for (const [json, a] of artifactsOf(task.artifacts).map((j, i) => [j, task.artifacts[i]!] as const)) this.#artifacts.set(a.artifactId, json);
    return this.#onStatus(task.status);
  }

  /** A direct reply (a Message, no task): the attempt is complete with it. */
  async #onReply(message: Message): Promise<void> {
    await this.#ensureStarted();
    return this.#report({ kind: 'complete' }, { artifacts: replyArtifacts(message), text: '' });
  }

  async #onStatus(status: TaskStatus | undefined): Promise<void> {
    if (this.#done) return;
    const step = a2aStep(stateOf(status?.state), textOf(status?.message), this.#cancelSent);
    if (step.kind === 'ask' && this.#staleAsk !== null && statusKey(status) === this.#staleAsk) return;
    if (step.kind === 'complete' && this.#remote !== null && this.#streaming) {
      // A stream's final status may come without the artifacts sent before it: read them whole.
      try {
        const full = await (await this.#connection()).client.getTask({ tenant: '', id: this.#remote.taskId });
        for (const [i, json] of artifactsOf(full.artifacts).entries()) this.#artifacts.set(full.artifacts[i]!.artifactId, json);
      } catch (err) {
        this.#host.ctx.log.warn({ err, assignmentId: this.assignmentId }, 'a2a: could not read the completed task; using the streamed artifacts');
      }
    }
    const percent = Number(status?.message?.metadata?.percent);
    return this.#report(step, { artifacts: [...this.#artifacts.values()], text: textOf(status?.message) }, Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0);
  }

  async #ensureStarted(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#host.workers.start(SYSTEM_PRINCIPAL, { assignmentId: this.assignmentId, replicaId: this.#host.replicaId });
  }

  /** Reports a step through the worker operations; an attempt the server already ended is over here too. */
  async #report(step: ReturnType<typeof a2aStep>, out: { artifacts: A2aArtifactJson[]; text: string } = { artifacts: [], text: '' }, percent = 0): Promise<void> {
    if (this.#done) return;
    const p = { assignmentId: this.assignmentId, replicaId: this.#host.replicaId };
    const w = this.#host.workers;
    try {
      switch (step.kind) {
        case 'wait':
          return;
        case 'running':
          await this.#ensureStarted();
          if (step.message !== null && step.message !== this.#lastProgress) {
            this.#lastProgress = step.message;
            await w.heartbeat(SYSTEM_PRINCIPAL, { ...p, percent, message: step.message });
          }
          return;
        case 'ask':
          await this.#ensureStarted();
          await w.askInput(SYSTEM_PRINCIPAL, { ...p, prompt: step.prompt, schema: null, timeoutMs: null });
          break;
        case 'complete':
          await w.complete(SYSTEM_PRINCIPAL, { ...p, result: a2aResult(out.artifacts, out.text) });
          break;
        case 'cancelled':
          await w.acknowledgeCancel(SYSTEM_PRINCIPAL, p);
          break;
        case 'fail':
          await w.fail(SYSTEM_PRINCIPAL, { ...p, error: step.error, retryable: step.retryable });
          break;
      }
      this.#finish();
    } catch (err) {
      if (!(err instanceof FlotillaError)) throw err;
      // Superseded (the reaper ended it, an operator failed it): nothing more to report.
      this.#host.ctx.log.info({ assignmentId: this.assignmentId, code: err.code }, 'a2a: the attempt ended on the server first');
      if (step.kind === 'running' || step.kind === 'wait') await this.#cancelRemoteQuietly();
      this.#finish();
    }
  }

  /**
   * Every a2a tick: polls the remote task (unless a stream spoke within half a lease), renews
   * the lease only when the remote answered, and passes on a cancellation request.
   */
  async tick(): Promise<void> {
    if (this.#done || this.#ticking) return;
    this.#ticking = true;
    try {
      const now = this.#host.ctx.now();
      const streamHeard = this.#streaming && now - this.#lastHeardAt < this.#host.ctx.config.leaseMs / 2;
      if (this.#remote !== null && !streamHeard) {
        try {
          // At most half a lease: an answer still leaves time to renew before the lease lapses.
          const task = await (await this.#connection()).client.getTask({ tenant: '', id: this.#remote.taskId }, { signal: AbortSignal.timeout(this.#host.ctx.config.leaseMs / 2) });
          this.#lastHeardAt = this.#host.ctx.now();
          await this.#serial(() => this.#onTask(task));
        } catch (err) {
          // Not answering: no renewal; the lease rules decide (decisions.md 75).
          this.#host.clients.invalidate(this.#leased.task.agent ?? '');
          this.#host.ctx.log.warn({ err: causeOf(err), assignmentId: this.assignmentId }, 'a2a: the agent did not answer tasks/get');
          return;
        }
      }
      if (this.#done) return;
      if (this.#remote === null) return await this.#endIfOver();
      await this.#serial(async () => {
        try {
          const beat = await this.#host.workers.heartbeat(SYSTEM_PRINCIPAL, { assignmentId: this.assignmentId, replicaId: this.#host.replicaId });
          if (beat.cancelRequested && !this.#cancelSent) await this.#cancelRemote();
        } catch (err) {
          if (!(err instanceof FlotillaError)) throw err;
          await this.#cancelRemoteQuietly();
          this.#finish();
        }
      });
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * Its message is not answered yet, so nothing renews it: the reaper may end it (lease,
   * timeout). Then it is over here too, and its open stream (a remote that accepted the
   * connection and never spoke) is closed. One read per tick, only for such attempts.
   */
  async #endIfOver(): Promise<void> {
    const a = await this.#host.ctx.store.assignmentGet({ id: this.assignmentId });
    if (a === null || a.replicaId !== this.#host.replicaId || (a.status !== 'dispatched' && a.status !== 'running')) this.#finish();
  }

  /** Flotilla's cancellation, passed on: tasks/cancel, then the remote's answer is reported. */
  async #cancelRemote(): Promise<void> {
    this.#cancelSent = true;
    try {
      const task = await (await this.#connection()).client.cancelTask({ tenant: '', id: this.#remote!.taskId, metadata: undefined }, { signal: AbortSignal.timeout(this.#host.ctx.config.leaseMs / 2) });
      await this.#onTask(task);
    } catch (err) {
      // Tried again on the next tick; the cancel grace ends the attempt if the remote never answers.
      this.#cancelSent = false;
      this.#host.ctx.log.warn({ err: causeOf(err), assignmentId: this.assignmentId }, 'a2a: tasks/cancel failed; will try again');
    }
  }

  async #cancelRemoteQuietly(): Promise<void> {
    if (this.#remote === null) return;
    try {
      await (await this.#connection()).client.cancelTask({ tenant: '', id: this.#remote.taskId, metadata: undefined }, { signal: AbortSignal.timeout(this.#host.ctx.config.leaseMs / 2) });
    } catch {
      // Best effort: the remote task may be over already, or the agent gone.
    }
  }
}
