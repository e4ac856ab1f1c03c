// The agent registry (create, read, update, delete), per-agent views (queue, replicas,
// stats) and the system overview.

import type { AgentSpec, AgentStats, Overview, TaskSpec, TaskStatus } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import { toolListProblems } from '../core/tools.ts';
import type { AgentRecord, ReplicaRecord, TaskRecord } from '../core/types.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { announce, type EngineContext } from './context.ts';
import type { Principal } from '../core/permissions.ts';
import type { SubmitResult, TaskService } from './task-service.ts';

/** The wire shapes of GET /agents/:name/stats and GET /overview (shared with the SDK). */
export type AgentStatsView = AgentStats;

const STATS_SAMPLE = 1_000;

export function agentFromSpec(spec: AgentSpec, now: number, existing?: AgentRecord): AgentRecord {
  // Accepted but inert would be worse than refused: an a2a or process agent's tasks would
  // wait forever. The schema keeps the names, which the agent-runtime issues implement.
  // Only a runtime being set: an agent stored with one before this rule stays editable.
  if (spec.runtime !== undefined && spec.runtime !== 'pull' && spec.runtime !== existing?.runtime) {
    throw new FlotillaError('VALIDATION_FAILED', `agent "${spec.name}": runtime "${spec.runtime}" is not implemented yet: only "pull" agents (workers that connect) can run tasks`,
      [{ path: '/runtime', message: 'is not implemented yet' }]);
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
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
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

  constructor(params: { ctx: EngineContext; registry: AgentRegistry; tasks: TaskService }) {
    this.#ctx = params.ctx;
    this.#registry = params.registry;
    this.#tasks = params.tasks;
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

  async overview(_principal: Principal): Promise<Overview> {
    const [tasks, agents, replicas] = await Promise.all([
      this.#ctx.store.taskCountByStatus({}),
      this.#ctx.store.agentList(),
      this.#ctx.store.replicaList({}),
    ]);
    return {
      tasks,
      agents: agents.length,
      replicas: { live: replicas.filter((r) => r.status === 'live').length, total: replicas.length },
    };
  }
}
