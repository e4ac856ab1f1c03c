// The agent registry (create, read, update, delete), per-agent views (queue, replicas,
// stats), the delegation report and the system overview.

import { AGENT_STATES, REPLICA_HEALTHS, REPLICA_STATUSES, type AgentSpec, type AgentStats, type DelegationReport, type Overview, type TaskSpec, type TaskStatus } from '@flotilla/sdk';
import { downDomainsOf, type ToolDomainRecord } from '../core/tool-domains.ts';
import { agentState, isOverloaded, type AgentLoad, type AgentState, type OverloadThresholds } from '../core/agent-state.ts';
import { FlotillaError } from '../core/errors.ts';
import { toolListProblems } from '../core/tools.ts';
import { a2aTargetProblems } from '../core/a2a-target.ts';
import type { AgentRecord, Millis, ReplicaHealth, ReplicaRecord, ReplicaStatus, TaskRecord } from '../core/types.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { announce, type EngineContext } from './context.ts';
import type { Principal } from '../core/permissions.ts';
import type { SubmitResult, TaskService } from './task-service.ts';
import { toIso } from './time.ts';
import type { UsageService, UsageTotals } from './usage-service.ts';

/** The wire shapes of GET /agents/:name/stats and GET /overview (shared with the SDK). */
export type AgentStatsView = AgentStats;

const STATS_SAMPLE = 1_000;
/** The delegation report's window when `since` is not given. */
const DELEGATION_WINDOW_MS = 24 * 3_600_000;

export function agentFromSpec(spec: AgentSpec, now: number, existing?: AgentRecord): AgentRecord {
  // Accepted but inert would be worse than refused: a process agent's tasks would wait
  // forever (issue 18 implements it). Only a runtime being set: an agent stored with one
  // before this rule stays editable.
  if (spec.runtime === 'process' && spec.runtime !== existing?.runtime) {
    throw new FlotillaError('VALIDATION_FAILED', `agent "${spec.name}": runtime "${spec.runtime}" is not implemented yet: "pull" agents (workers that connect) and "a2a" agents (A2A servers Flotilla calls) can run tasks`,
      [{ path: '/runtime', message: 'is not implemented yet' }]);
  }
  // An a2a agent stored before agents had a target (accepted once, never run) stays editable
  // as it is; it gets a worker once it is given one.
  const untargetedBefore = existing?.runtime === 'a2a' && existing.a2a === null && spec.runtime === 'a2a' && spec.a2a == null;
  const a2aProblems = untargetedBefore ? [] : a2aTargetProblems(spec.runtime ?? 'pull', spec.a2a);
  if (a2aProblems.length > 0) {
    throw new FlotillaError('VALIDATION_FAILED', `agent "${spec.name}": a2a ${a2aProblems.map((p) => p.message).join('; ')}`, a2aProblems);
  }
  const toolProblems = toolListProblems(spec.tools ?? [], '/tools');
  if (toolProblems.length > 0) {
    throw new FlotillaError('VALIDATION_FAILED', `agent "${spec.name}": ${toolProblems.map((p) => p.message).join('; ')}`, toolProblems);
  }
  return {
    name: spec.name,
    description: spec.description ?? '',
    capabilities: spec.capabilities ?? [],
    maxConcurrency: spec.maxConcurrency ?? 1,
    maxAttempts: spec.maxAttempts ?? null,
    timeoutMs: spec.timeoutMs ?? null,
    level: spec.level ?? 1,
    toolDomains: spec.toolDomains ?? [],
    // Stored as declared (deduplicated), so the agent reads back what was written.
    tools: [...new Set(spec.tools ?? [])],
    maxDepth: spec.maxDepth ?? null,
    concurrencyLimits: spec.concurrencyLimits ?? {},
    retryBaseDelayMs: spec.retry?.baseDelayMs ?? null,
    retryMaxDelayMs: spec.retry?.maxDelayMs ?? null,
    runtime: spec.runtime ?? 'pull',
    a2a: spec.a2a ?? null,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
    // Operator state, not part of a declaration: kept as it is (the stores never write it here).
    pausedAt: existing?.pausedAt ?? null,
    overloadedAt: existing?.overloadedAt ?? null,
    a2aSkill: spec.a2aSkill == null ? null : { inputModes: spec.a2aSkill.inputModes ?? [], outputModes: spec.a2aSkill.outputModes ?? [], examples: spec.a2aSkill.examples ?? [] },
    maxInFlight: spec.maxInFlight ?? null,
  };
}

function specFromAgent(a: AgentRecord): AgentSpec {
  const retry: { baseDelayMs?: number; maxDelayMs?: number } = {};
  if (a.retryBaseDelayMs !== null) retry.baseDelayMs = a.retryBaseDelayMs;
  if (a.retryMaxDelayMs !== null) retry.maxDelayMs = a.retryMaxDelayMs;
  return {
    name: a.name, description: a.description, capabilities: a.capabilities, maxConcurrency: a.maxConcurrency,
    ...(a.maxAttempts !== null ? { maxAttempts: a.maxAttempts } : {}),
    ...(a.timeoutMs !== null ? { timeoutMs: a.timeoutMs } : {}),
    level: a.level, toolDomains: a.toolDomains, tools: a.tools, maxDepth: a.maxDepth, concurrencyLimits: a.concurrencyLimits, retry, runtime: a.runtime,
    ...(a.a2a !== null ? { a2a: a.a2a } : {}),
    a2aSkill: a.a2aSkill,
    maxInFlight: a.maxInFlight ?? null,
  };
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export class AgentService {
  #ctx: EngineContext;
  #registry: AgentRegistry;
  #tasks: TaskService;

  #toolDomains: { down(): ReadonlySet<string>; domains(): ReadonlyMap<string, ToolDomainRecord> } | null;

  /** Usage per agent for the delegation report (issue 16); null: zeros. */
  #usage: UsageService | null;

  constructor(params: { ctx: EngineContext; registry: AgentRegistry; tasks: TaskService; toolDomains?: { down(): ReadonlySet<string>; domains(): ReadonlyMap<string, ToolDomainRecord> }; usage?: UsageService }) {
    this.#usage = params.usage ?? null;
    this.#ctx = params.ctx;
    this.#registry = params.registry;
    this.#tasks = params.tasks;
    this.#toolDomains = params.toolDomains ?? null;
  }

  /** The agent's tool domains that are down now. */
  #down(a: AgentRecord): string[] {
    const down = this.#toolDomains?.down();
    return down === undefined || down.size === 0 ? [] : downDomainsOf(a.toolDomains, down);
  }

  async create(_principal: Principal, spec: AgentSpec): Promise<AgentRecord> {
    const agent = agentFromSpec(spec, this.#ctx.now());
    const events = await this.#ctx.store.agentCreate({
      agent, event: { type: 'agent.created', taskId: null, agent: agent.name, replicaId: null, assignmentId: null, data: {} },
    });
    this.#registry.invalidate();
    announce(this.#ctx, events);
    this.#ctx.wakeDispatcher('view');
    return agent;
  }

  /** Config-file declarations: create or replace, keeping the original creation time. */
  async declare(specs: AgentSpec[]): Promise<void> {
    const now = this.#ctx.now();
    for (const spec of specs) {
      const existing = await this.#ctx.store.agentGet({ name: spec.name });
      const events = await this.#ctx.store.agentUpsert({
        agent: agentFromSpec(spec, now, existing ?? undefined),
        event: { type: 'agent.declared', taskId: null, agent: spec.name, replicaId: null, assignmentId: null, data: { source: 'config' } },
      });
      announce(this.#ctx, events);
    }
    this.#registry.invalidate();
  }

  async list(_principal: Principal): Promise<AgentRecord[]> {
    return this.#ctx.store.agentList();
  }

  async get(_principal: Principal, name: string): Promise<AgentRecord> {
    const agent = await this.#ctx.store.agentGet({ name });
    if (!agent) throw new FlotillaError('AGENT_NOT_FOUND', `agent "${name}" does not exist`);
    return agent;
  }

  async update(principal: Principal, name: string, patch: Omit<AgentSpec, 'name'>): Promise<AgentRecord> {
    const existing = await this.get(principal, name);
    const merged: AgentSpec = { ...specFromAgent(existing), ...patch, name };
    if (patch.retry) merged.retry = { ...specFromAgent(existing).retry, ...patch.retry };
    const agent = agentFromSpec(merged, this.#ctx.now(), existing);
    const { updated, events } = await this.#ctx.store.agentUpdate({
      agent, event: { type: 'agent.updated', taskId: null, agent: name, replicaId: null, assignmentId: null, data: { fields: Object.keys(patch) } },
    });
    if (!updated) throw new FlotillaError('AGENT_NOT_FOUND', `agent "${name}" does not exist`);
    announce(this.#ctx, events);
    this.#registry.invalidate();
    this.#ctx.wakeDispatcher('view');
    return agent;
  }

  /** Refused while the agent still has tasks that are not terminal: they would be stranded. */
  async delete(_principal: Principal, name: string): Promise<void> {
    const { outcome, events } = await this.#ctx.store.agentDelete({
      name, event: { type: 'agent.deleted', taskId: null, agent: name, replicaId: null, assignmentId: null, data: {} },
    });
    if (outcome === 'not_found') throw new FlotillaError('AGENT_NOT_FOUND', `agent "${name}" does not exist`);
    if (outcome === 'in_use') {
      const counts = await this.#ctx.store.taskCountByStatus({ agent: name });
      const open = counts.pending + counts.dispatched + counts.running;
      throw new FlotillaError('AGENT_IN_USE', `agent "${name}" has ${open} unfinished task(s); cancel them first`);
    }
    this.#registry.invalidate();
    announce(this.#ctx, events);
    // The dispatcher's hand-off slots were routed with the old registry: a pass refreshes them.
    this.#ctx.wakeDispatcher('view');
  }

  /** Manual assignment: a task for this agent, optionally pinned to a replica or preferring a site. */
  async assign(principal: Principal, name: string, spec: Omit<TaskSpec, 'agent' | 'capabilities'>): Promise<SubmitResult> {
    await this.get(principal, name);
    return this.#tasks.submit(principal, { ...spec, agent: name });
  }

  async queue(principal: Principal, name: string, params: { statuses: TaskStatus[]; limit: number; cursor: string | null }): Promise<{ items: TaskRecord[]; nextCursor: string | null }> {
    await this.get(principal, name);
    return this.#ctx.store.taskList({ agent: name, statuses: params.statuses, limit: params.limit, cursor: params.cursor });
  }

  async replicas(principal: Principal, name: string): Promise<ReplicaRecord[]> {
    await this.get(principal, name);
    return this.#ctx.store.replicaList({ agent: name });
  }

  async stats(principal: Principal, name: string): Promise<AgentStatsView> {
    await this.get(principal, name);
    const s = await this.#ctx.store.agentStats({ agent: name, sample: STATS_SAMPLE });
    const sorted = [...s.recentDurationsMs].sort((a, b) => a - b);
    const average = sorted.length === 0 ? null : Math.round(sorted.reduce((x, y) => x + y, 0) / sorted.length);
    const finished = s.byStatus.completed + s.byStatus.failed;
    return {
      agent: name,
      totals: s.byStatus,
      executionMs: { average, p95: percentile(sorted, 95), sampleSize: sorted.length },
      successRate: finished === 0 ? null : s.byStatus.completed / finished,
      attempts: { completed: s.attemptsCompleted, failed: s.attemptsFailed },
    };
  }

  /**
   * The delegation report (GET /reports/delegation): per registered agent, from `since`
   * (default: 24 hours ago) to now. Reliability is completed / (completed + failed) attempts.
   */
  async delegation(_principal: Principal, since?: Millis): Promise<DelegationReport> {
    const now = this.#ctx.now();
    const from = since ?? now - DELEGATION_WINDOW_MS;
    if (from > now) throw new FlotillaError('VALIDATION_FAILED', `"since" is in the future (${toIso(from)}; the server's time is ${toIso(now)})`);
    const figures = await this.#ctx.store.reportDelegation({ since: from, now });
    const usage = this.#usage === null ? new Map<string, UsageTotals>() : await this.#usage.perAgent(from, now);
    return {
      since: toIso(from),
      until: toIso(now),
      agents: figures.map((f) => ({
        agent: f.agent,
        assigned: f.assigned,
        completed: f.completed,
        failed: f.failed,
        inFlight: f.inFlight,
        durationMs: { median: f.medianMs, p95: f.p95Ms },
        sla: { met: f.slaMet, violated: f.slaViolated },
        reliability: f.completed + f.failed === 0 ? null : f.completed / (f.completed + f.failed),
        usage: usage.get(f.agent) ?? { attempts: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 },
      })),
    };
  }

  /** The overload thresholds of core/agent-state.ts, from the server's config. */
  #thresholds(): OverloadThresholds {
    return { pendingAgeMs: this.#ctx.config.overloadPendingAgeMs, queueDepth: this.#ctx.config.overloadQueueDepth };
  }

  /** Each agent's load: its connected replicas and its due queue (one read of each, for all agents). */
  async #loads(): Promise<{ loads: Map<string, AgentLoad>; replicas: ReplicaRecord[] }> {
    const now = this.#ctx.now();
    const [replicas, queues] = await Promise.all([this.#ctx.store.replicaList({}), this.#ctx.store.agentQueueStats({ now })]);
    const loads = new Map<string, AgentLoad>();
    const load = (name: string) => {
      let l = loads.get(name);
      if (!l) loads.set(name, l = { replicas: [], pending: 0, oldestRunAt: null });
      return l;
    };
    for (const r of replicas) if (r.status === 'live' || r.status === 'draining') (load(r.agent).replicas as ReplicaRecord[]).push(r);
    for (const q of queues) {
      if (q.agent === null) continue;
      const l = load(q.agent);
      l.pending = q.pending;
      l.oldestRunAt = q.oldestRunAt;
    }
    return { loads, replicas };
  }

  /** The derived state of each of `agents` (core/agent-state.ts). */
  async states(agents: readonly AgentRecord[]): Promise<Map<string, AgentState>> {
    const { loads } = await this.#loads();
    const now = this.#ctx.now();
    const empty: AgentLoad = { replicas: [], pending: 0, oldestRunAt: null };
    return new Map(agents.map((a) => [a.name, agentState(loads.get(a.name) ?? empty, now, this.#thresholds(), this.#down(a))]));
  }

  async overview(_principal: Principal): Promise<Overview> {
    const [tasks, agents, { loads, replicas }] = await Promise.all([
      this.#ctx.store.taskCountByStatus({}),
      this.#ctx.store.agentList(),
      this.#loads(),
    ]);
    const now = this.#ctx.now();
    const agentStates = Object.fromEntries(AGENT_STATES.map((s) => [s, 0])) as Record<AgentState, number>;
    const empty: AgentLoad = { replicas: [], pending: 0, oldestRunAt: null };
    for (const a of agents) agentStates[agentState(loads.get(a.name) ?? empty, now, this.#thresholds(), this.#down(a))] += 1;
    const replicaStatuses = Object.fromEntries(REPLICA_STATUSES.map((s) => [s, 0])) as Record<ReplicaStatus, number>;
    const replicaHealth = Object.fromEntries(REPLICA_HEALTHS.map((h) => [h, 0])) as Record<ReplicaHealth, number>;
    for (const r of replicas) {
      replicaStatuses[r.status] += 1;
      if (r.status === 'live' || r.status === 'draining') replicaHealth[r.health] += 1;
    }
    return {
      tasks,
      agents: agents.length,
      replicas: { live: replicaStatuses.live, total: replicas.length },
      agentStates, replicaStatuses, replicaHealth,
      toolDomains: this.#toolDomainCounts(),
    };
  }

  /** The tool domains' health as this node last read it (engine/mcp/domain-health.ts). */
  #toolDomainCounts(): Overview['toolDomains'] {
    const counts = { up: 0, down: 0, unknown: 0, downDomains: [] as string[] };
    for (const d of this.#toolDomains?.domains().values() ?? []) counts[d.health.status] += 1;
    counts.downDomains = [...(this.#toolDomains?.down() ?? [])].sort();
    counts.down = counts.downDomains.length;
    return counts;
  }

  /**
   * An operator pauses an agent: its tasks stay pending and its replicas stay connected, but
   * nothing new is dispatched to them until it is resumed. Work in flight goes on. Pausing a
   * paused agent (or resuming one that is not) changes nothing.
   */
  async setPaused(_principal: Principal, name: string, paused: boolean): Promise<AgentRecord> {
    const now = this.#ctx.now();
    const { found, events } = await this.#ctx.store.agentSetControl({
      name, control: 'paused', at: paused ? now : null,
      event: { type: paused ? 'agent.paused' : 'agent.resumed', taskId: null, agent: name, replicaId: null, assignmentId: null, data: {} },
    });
    if (!found) throw new FlotillaError('AGENT_NOT_FOUND', `agent "${name}" does not exist`);
    this.#registry.invalidate();
    announce(this.#ctx, events);
    // Both ways: a pause must also drop the hand-off slots the last pass left (a submit would
    // otherwise be handed straight to the paused agent's waiting replica).
    this.#ctx.wakeDispatcher('view');
    return this.get(_principal, name);
  }

  /**
   * Drain or resume one replica (`draining`: it finishes what it holds and is offered nothing
   * more, also after it reconnects; `live` again on resume), or every replica of an agent.
   * Returns the replicas as they are now.
   */
  async setReplicaDraining(principal: Principal, target: { replicaId: string } | { agent: string }, draining: boolean): Promise<ReplicaRecord[]> {
    let replicas: ReplicaRecord[];
    if ('replicaId' in target) {
      const replica = await this.#ctx.store.replicaGet({ id: target.replicaId });
      if (!replica) throw new FlotillaError('REPLICA_NOT_FOUND', `replica ${target.replicaId} is not registered`);
      const from = draining ? 'live' : 'draining';
      if (replica.status !== from && replica.status !== (draining ? 'draining' : 'live')) {
        throw new FlotillaError('REPLICA_NOT_LIVE', `replica ${replica.id} is ${replica.status}; only a live replica can be drained, and only a draining one resumed`);
      }
      replicas = [replica];
    } else {
      await this.get(principal, target.agent);
      replicas = await this.#ctx.store.replicaList({ agent: target.agent, statuses: [draining ? 'live' : 'draining'] });
    }
    for (const r of replicas) {
      const { events } = await this.#ctx.store.replicaSetStatus({
        id: r.id, from: [draining ? 'live' : 'draining'], to: draining ? 'draining' : 'live',
        event: { type: draining ? 'replica.draining' : 'replica.resumed', taskId: null, agent: r.agent, replicaId: r.id, assignmentId: null, data: {} },
      });
      announce(this.#ctx, events);
    }
    // Both ways: a drained replica's hand-off slots go with the pass this asks for.
    this.#ctx.wakeDispatcher('view');
    const ids = new Set(replicas.map((r) => r.id));
    return (await this.#ctx.store.replicaList('replicaId' in target ? {} : { agent: target.agent })).filter((r) => ids.has(r.id));
  }

  /**
   * The maintenance sweep: records each change of an agent into or out of `overloaded`, with
   * `agent.overloaded` / `agent.recovered`. The write is guarded on the stored flag, so two
   * nodes sweeping at once write each change once.
   */
  async sweepOverload(): Promise<number> {
    const [agents, { loads }] = await Promise.all([this.#ctx.store.agentList(), this.#loads()]);
    const now = this.#ctx.now();
    let changed = 0;
    for (const a of agents) {
      const load = loads.get(a.name) ?? { replicas: [], pending: 0, oldestRunAt: null };
      const overloaded = isOverloaded(load, now, this.#thresholds());
      if (overloaded === (a.overloadedAt !== null)) continue;
      const live = load.replicas.filter((r) => r.status === 'live');
      const data = {
        pending: load.pending, oldestWaitMs: load.oldestRunAt === null ? 0 : now - load.oldestRunAt,
        slots: live.reduce((n, r) => n + r.maxConcurrency, 0), inFlight: live.reduce((n, r) => n + r.inFlight, 0),
      };
      const result = await this.#ctx.store.agentSetControl({
        name: a.name, control: 'overloaded', at: overloaded ? now : null,
        event: { type: overloaded ? 'agent.overloaded' : 'agent.recovered', taskId: null, agent: a.name, replicaId: null, assignmentId: null, data },
      });
      if (result.changed) changed += 1;
      announce(this.#ctx, result.events);
    }
    return changed;
  }

}
