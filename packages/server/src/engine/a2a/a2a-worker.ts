// The in-process worker of one a2a agent (decisions.md 75): a replica like any other
// (`a2a:<agent>`, its slots the agent's maxConcurrency) that takes its tasks through the
// dispatcher's standing lease and runs each as an A2aAttempt. Routing, leases, retries,
// timeouts and events are therefore the ones every worker gets: the runtime is an adapter.
//
// Started on the maintenance leader only (a2a-runtime.ts). On start it takes over the live
// attempts its replica holds, whoever started them: those with a remote task are followed,
// never sent again; one without (the node died between sending and recording) is sent again
// with the same messageId (wire.ts).

import type { LeasedTask } from '@flotilla/sdk';
import { SYSTEM_PRINCIPAL } from '../../core/permissions.ts';
import type { AssignmentRecord, TaskRecord } from '../../core/types.ts';
import type { AgentRegistry } from '../agent-registry.ts';
import type { EngineContext } from '../context.ts';
import { toIso } from '../time.ts';
import type { WorkerService } from '../worker-service.ts';
import { A2aAttempt, type AttemptHost } from './a2a-attempt.ts';
import type { A2aClients } from './clients.ts';

export function a2aReplicaId(agent: string): string {
  return `a2a:${agent}`;
}

/** What a taken-over attempt was leased with (the dispatcher's LeasedTask, rebuilt from the records). */
function leasedFrom(task: TaskRecord, a: AssignmentRecord): LeasedTask {
  return {
    assignmentId: a.id, leaseExpiresAt: toIso(a.leaseExpiresAt), deadlineAt: toIso(a.deadlineAt),
    task: {
      id: task.id, type: task.type, input: task.input, attempt: a.attempt, maxAttempts: task.maxAttempts, priority: task.priority,
      timeoutMs: task.timeoutMs, correlation: task.correlation, traceparent: task.traceparent, parentId: task.parentId,
      agent: task.agent, tools: task.tools, resumed: task.resumed,
    },
  };
}

export class A2aAgentWorker {
  readonly agent: string;
  readonly replicaId: string;
  #ctx: EngineContext;
  #workers: WorkerService;
  #registry: AgentRegistry;
  #host: AttemptHost;
  #attempts = new Map<string, A2aAttempt>();
  #unlease: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;
  #registered = false;
  #stopped = false;
  /** The slots it registered with: a changed maxConcurrency registers again. */
  slots = 0;

  constructor(params: { ctx: EngineContext; workers: WorkerService; registry: AgentRegistry; clients: A2aClients; agent: string }) {
    this.agent = params.agent;
    this.replicaId = a2aReplicaId(params.agent);
    this.#ctx = params.ctx;
    this.#workers = params.workers;
    this.#registry = params.registry;
    this.#host = {
      ctx: params.ctx, workers: params.workers, clients: params.clients, replicaId: this.replicaId,
      agent: () => this.#registry.get(this.agent).then((a) => a ?? null),
      ended: (id) => this.#attempts.delete(id),
    };
  }

  get attempts(): number {
    return this.#attempts.size;
  }

  async start(): Promise<void> {
    await this.#register();
    if (this.#stopped) return; // stopped while registering: no timer to leak
    this.#timer = setInterval(() => void this.tick(), this.#ctx.config.a2aPollIntervalMs);
    this.#timer.unref();
  }

  async #register(): Promise<void> {
    const agent = await this.#registry.get(this.agent);
    if (!agent) return;
    this.slots = agent.maxConcurrency;
    // The old standing lease goes first: while the takeover below reads the store, the
    // dispatcher (woken by register) must not deliver to it, or an assignment delivered in that
    // gap would be listed below as well and sent twice.
    this.#unlease?.();
    this.#unlease = null;
    await this.#workers.register(SYSTEM_PRINCIPAL, { agent: this.agent, replicaId: this.replicaId, maxConcurrency: agent.maxConcurrency });
    // Take over what the replica holds before taking anything new.
    for (const { assignment } of await this.#ctx.store.assignmentListByReplica({ replicaId: this.replicaId })) {
      if (this.#attempts.has(assignment.id) || this.#stopped) continue;
      const [task, remotes] = await Promise.all([
        this.#ctx.store.taskGet({ id: assignment.taskId }), this.#ctx.store.assignmentRemoteList({ taskId: assignment.taskId }),
      ]);
      const full = await this.#ctx.store.assignmentGet({ id: assignment.id });
      if (!task || !full) continue;
      const remote = remotes.find((r) => r.assignmentId === assignment.id);
      // Checked again after the reads: an attempt may have started here meanwhile.
      if (this.#stopped) return;
      this.#run(new A2aAttempt(this.#host, leasedFrom(task, full), remote ? { taskId: remote.remoteTaskId, contextId: remote.remoteContextId } : null));
    }
    if (this.#stopped) return;
    this.#unlease = this.#workers.standingLease(SYSTEM_PRINCIPAL, {
      replicaId: this.replicaId,
      deliver: (tasks) => {
        if (this.#stopped) return false;
        for (const leased of tasks) this.#run(new A2aAttempt(this.#host, leased, null));
        return true;
      },
      // The replica stopped being live (declared lost, deregistered): register again on the next tick.
      ended: () => {
        this.#registered = false;
      },
    });
    this.#registered = true;
  }

  /** Runs an attempt unless one for the same assignment already runs here (one message per attempt). */
  #run(attempt: A2aAttempt): void {
    if (this.#attempts.has(attempt.assignmentId)) return;
    this.#attempts.set(attempt.assignmentId, attempt);
    attempt.begin();
  }

  /** Every a2a poll interval: the replica is seen, and each attempt polls and renews. */
  async tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    try {
      const agent = await this.#registry.get(this.agent);
      if (!this.#registered || (agent && agent.maxConcurrency !== this.slots)) await this.#register();
      else await this.#workers.heartbeatReplica(SYSTEM_PRINCIPAL, this.replicaId);
      // Not awaited: one slow remote must not hold the replica's own liveness (the next tick)
      // or the other attempts; each attempt skips a tick while its previous one runs.
      for (const a of this.#attempts.values()) {
        a.tick().catch((err: unknown) => this.#ctx.log.warn({ err, assignmentId: a.assignmentId }, 'a2a attempt tick failed; will retry'));
      }
    } catch (err) {
      this.#ctx.log.warn({ err, agent: this.agent }, 'a2a worker tick failed; will retry');
      this.#registered = false;
    } finally {
      this.#ticking = false;
    }
  }

  /** The agent is no longer an a2a agent: stop, and deregister the replica (its live attempts are retried). */
  async retire(): Promise<void> {
    this.stop();
    try {
      await this.#workers.deregister(SYSTEM_PRINCIPAL, this.replicaId);
    } catch (err) {
      // Never registered, or already gone: nothing to release.
      this.#ctx.log.info({ err, agent: this.agent }, 'a2a: the retired agent\'s replica was not registered');
    }
  }

  /** Stops following its attempts here; they stay live on the server, for the next leader to take over. */
  stop(): void {
    this.#stopped = true;
    this.#unlease?.();
    this.#unlease = null;
    if (this.#timer) clearInterval(this.#timer);
    for (const a of this.#attempts.values()) a.stop();
    this.#attempts.clear();
  }
}
