// The a2a runtime (decisions.md 75): one in-process worker per agent with `runtime: "a2a"`,
// on the maintenance leader only, so one node talks to each agent. `sync` runs on every
// maintenance tick of the leader (engine.ts): it starts workers for new a2a agents and stops
// those of agents deleted or no longer a2a. A node that stops leading stops its workers; the
// new leader's workers take the live attempts over (a2a-worker.ts).

import type { AgentRegistry } from '../agent-registry.ts';
import type { EngineContext } from '../context.ts';
import type { WorkerService } from '../worker-service.ts';
import { A2aAgentWorker } from './a2a-worker.ts';
import { A2aClients } from './clients.ts';

export class A2aRuntime {
  #ctx: EngineContext;
  #workers: WorkerService;
  #registry: AgentRegistry;
  readonly clients: A2aClients;
  #running = new Map<string, A2aAgentWorker>();
  #stopped = false;

  constructor(params: { ctx: EngineContext; workers: WorkerService; registry: AgentRegistry; env: Readonly<Record<string, string | undefined>> }) {
    this.#ctx = params.ctx;
    this.#workers = params.workers;
    this.#registry = params.registry;
    this.clients = new A2aClients({ ttlMs: params.ctx.config.a2aCardTtlMs, cardTimeoutMs: params.ctx.config.leaseMs / 2, now: () => params.ctx.now(), env: params.env });
  }

  /** The workers running on this node, by agent (tests and the log read it). */
  get agents(): string[] {
    return [...this.#running.keys()];
  }

  worker(agent: string): A2aAgentWorker | undefined {
    return this.#running.get(agent);
  }

  async sync(): Promise<void> {
    if (this.#stopped) return;
    const agents = [...(await this.#registry.map()).values()].filter((a) => a.runtime === 'a2a' && a.a2a !== null);
    const wanted = new Set(agents.map((a) => a.name));
    for (const [name, worker] of this.#running) {
      if (!wanted.has(name)) {
        // Deleted, or no longer a2a: its replica goes too, so what it held is retried at once
        // (on whatever serves the agent now) instead of when the replica's TTL runs out.
        this.#running.delete(name);
        this.clients.invalidate(name);
        await worker.retire();
      }
    }
    for (const agent of agents) {
      if (this.#running.has(agent.name)) continue;
      const worker = new A2aAgentWorker({ ctx: this.#ctx, workers: this.#workers, registry: this.#registry, clients: this.clients, agent: agent.name });
      this.#running.set(agent.name, worker);
      try {
        await worker.start();
        this.#ctx.log.info({ agent: agent.name, replicaId: worker.replicaId }, 'a2a: this node now dispatches to the agent');
      } catch (err) {
        worker.stop();
        this.#running.delete(agent.name);
        this.#ctx.log.warn({ err, agent: agent.name }, 'a2a: could not start the agent\'s worker; will retry');
      }
    }
  }

  /** This node no longer leads (or stops): its workers stop; their attempts stay live for the next leader. */
  stopAll(): void {
    for (const worker of this.#running.values()) worker.stop();
    this.#running.clear();
  }

  stop(): void {
    this.#stopped = true;
    this.stopAll();
  }
}
