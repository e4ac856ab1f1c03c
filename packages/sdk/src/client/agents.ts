// Agent registry calls. Create and delete are not retried on another node after a failure
// that may have been applied (a resend would answer AGENT_EXISTS / AGENT_NOT_FOUND for a
// call that in fact succeeded); a PATCH sets the same fields again, so it is.

import type { AgentSpec, AgentView, Page, ReplicaView, TaskSpec, TaskView } from '../wire.ts';
import type { Transport } from './transport.ts';
import type { AgentStats, CallOptions, QueueFilters } from './types.ts';

const enc = encodeURIComponent;

export class AgentsApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  async list(opts: CallOptions = {}): Promise<AgentView[]> {
    return (await this.#t.request<{ items: AgentView[] }>('GET', '/agents', { idempotent: true, signal: opts.signal })).items;
  }

  get(name: string, opts: CallOptions = {}): Promise<AgentView> {
    return this.#t.request('GET', `/agents/${enc(name)}`, { idempotent: true, signal: opts.signal });
  }

  create(spec: AgentSpec, opts: CallOptions = {}): Promise<AgentView> {
    return this.#t.request('POST', '/agents', { body: spec, idempotent: false, signal: opts.signal });
  }

  update(name: string, patch: Omit<AgentSpec, 'name'>, opts: CallOptions = {}): Promise<AgentView> {
    return this.#t.request('PATCH', `/agents/${enc(name)}`, { body: patch, idempotent: true, signal: opts.signal });
  }

  /** Refused (409 AGENT_IN_USE) while the agent has unfinished tasks. */
  async delete(name: string, opts: CallOptions = {}): Promise<void> {
    await this.#t.request('DELETE', `/agents/${enc(name)}`, { idempotent: false, signal: opts.signal });
  }

  /** Manual assignment: a task for this agent, optionally pinned to a replica or preferring a site. */
  assign(name: string, spec: Omit<TaskSpec, 'agent' | 'capabilities'> = {}, opts: CallOptions = {}): Promise<TaskView> {
    return this.#t.request('POST', `/agents/${enc(name)}/assign`, { body: spec, idempotent: spec.idempotencyKey !== undefined, signal: opts.signal });
  }

  /** One page of the agent's open tasks (default statuses: pending, dispatched, running). */
  queue(name: string, filters: QueueFilters = {}): Promise<Page<TaskView>> {
    const { signal, ...query } = filters;
    return this.#t.request('GET', `/agents/${enc(name)}/queue`, { query: { ...query }, idempotent: true, signal });
  }

  async replicas(name: string, opts: CallOptions = {}): Promise<ReplicaView[]> {
    return (await this.#t.request<{ items: ReplicaView[] }>('GET', `/agents/${enc(name)}/replicas`, { idempotent: true, signal: opts.signal })).items;
  }

  stats(name: string, opts: CallOptions = {}): Promise<AgentStats> {
    return this.#t.request('GET', `/agents/${enc(name)}/stats`, { idempotent: true, signal: opts.signal });
  }

  /** Operators: nothing new is dispatched to the agent until `resume` (its tasks wait; work in flight goes on). Idempotent. */
  pause(name: string, opts: CallOptions = {}): Promise<AgentView> {
    return this.#t.request('POST', `/agents/${enc(name)}/pause`, { idempotent: true, signal: opts.signal });
  }

  resume(name: string, opts: CallOptions = {}): Promise<AgentView> {
    return this.#t.request('POST', `/agents/${enc(name)}/resume`, { idempotent: true, signal: opts.signal });
  }

  /** Drains every live replica of the agent: each finishes its work and takes no more. Returns them. */
  async drain(name: string, opts: CallOptions = {}): Promise<ReplicaView[]> {
    return (await this.#t.request<{ items: ReplicaView[] }>('POST', `/agents/${enc(name)}/drain`, { idempotent: true, signal: opts.signal })).items;
  }

  /** Drains one replica (it finishes what it holds, takes no more, also after reconnecting). */
  drainReplica(replicaId: string, opts: CallOptions = {}): Promise<ReplicaView> {
    return this.#t.request('POST', `/replicas/${enc(replicaId)}/drain`, { idempotent: true, signal: opts.signal });
  }

  /** A draining replica takes work again. */
  resumeReplica(replicaId: string, opts: CallOptions = {}): Promise<ReplicaView> {
    return this.#t.request('POST', `/replicas/${enc(replicaId)}/resume`, { idempotent: true, signal: opts.signal });
  }
}
