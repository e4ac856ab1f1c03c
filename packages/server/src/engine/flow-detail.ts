// What GET /tasks/:id shows of flow control and usage (issue 16): why a pending task waits on
// its rate key or a cap (waitingReason rate_limited, fleet_cap, agent_cap, with the key and until
// when), and what its attempts used. Read only for GET /tasks/:id, never on the hot path.

import type { TaskSpec, WaitingReason } from '@flotilla/sdk';
import { capWaitingReason } from '../core/flow-caps.ts';
import { checkTaskRate } from '../core/rate-limits.ts';
import type { Millis, TaskRecord } from '../core/types.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { EngineContext } from './context.ts';
import type { RateLimits } from './rate-limits.ts';
import type { UsageService, UsageTotals } from './usage-service.ts';

export interface FlowDetail {
  /** Replaces the base waiting reason when flow control is what holds the task. */
  waitingReason?: WaitingReason;
  rateLimit?: { key: string; until: Millis; reason: 'paused' | 'rpm' | 'tpm' };
  usage?: UsageTotals;
}

/** A submit's rate fields, checked (a bad one is a 400 before anything is written). */
export function rateFields(spec: Pick<TaskSpec, 'rateKey' | 'estimatedTokens'>): { rateKey: string | null; estimatedTokens: number | null } {
  const rateKey = spec.rateKey ?? null;
  const estimatedTokens = spec.estimatedTokens ?? null;
  checkTaskRate(rateKey, estimatedTokens);
  return { rateKey, estimatedTokens };
}

/** Base reasons a cap or a rate key may be the truer answer for: the task could otherwise run. */
const DISPATCHABLE: ReadonlySet<WaitingReason | null> = new Set<WaitingReason | null>(['queued', 'all_slots_full', 'scheduled']);

export class FlowDetails {
  #ctx: EngineContext;
  #registry: AgentRegistry;
  #rateLimits: RateLimits;
  #usage: UsageService;

  constructor(params: { ctx: EngineContext; registry: AgentRegistry; rateLimits: RateLimits; usage: UsageService }) {
    this.#ctx = params.ctx;
    this.#registry = params.registry;
    this.#rateLimits = params.rateLimits;
    this.#usage = params.usage;
  }

  async detail(task: TaskRecord, base: WaitingReason | null): Promise<FlowDetail> {
    const out: FlowDetail = {};
    const usage = await this.#usage.forTask(task.id);
    if (usage !== null) out.usage = usage;
    if (!DISPATCHABLE.has(base)) return out;
    // A task rescheduled by a 429 is `scheduled` until its key's pause ends: the key is the reason.
    const held = await this.#rateLimits.holding(task);
    if (held !== null && (base !== 'scheduled' || held.admission.reason === 'paused')) {
      out.waitingReason = 'rate_limited';
      out.rateLimit = { key: held.key, until: held.admission.retryAt!, reason: held.admission.reason! };
      return out;
    }
    if (base === 'scheduled') return out;
    const config = this.#ctx.config;
    const agent = task.agent === null ? null : (await this.#registry.get(task.agent)) ?? null;
    if (config.maxConcurrentTasks <= 0 && (agent?.maxInFlight ?? null) === null) return out;
    const replicas = await this.#ctx.store.replicaList({});
    const fleet = replicas.reduce((n, r) => n + r.inFlight, 0);
    const mine = agent === null ? 0 : replicas.filter((r) => r.agent === agent.name).reduce((n, r) => n + r.inFlight, 0);
    const cap = capWaitingReason(agent, mine, fleet, config.maxConcurrentTasks);
    if (cap !== null) out.waitingReason = cap;
    return out;
  }
}
