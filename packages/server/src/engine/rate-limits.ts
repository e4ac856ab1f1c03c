// Provider rate limits in the engine (issue 16, docs/flow-control.md): declaring them (config,
// API), what the dispatcher asks before it hands out tasks of a key, a worker's 429, and what
// GET /tasks/:id shows of a task held by its key. The window math is core/rate-limits.ts; the
// fleet-wide bookkeeping is the store's (rateLimitTake: exact under the key's lock).

import { admit, pauseUntil, rateLimitProblem, RATE_WINDOW_MS, type Admission, type RateLimitState } from '../core/rate-limits.ts';
import { FlotillaError } from '../core/errors.ts';
import type { Millis, TaskHead } from '../core/types.ts';
import type { EngineContext } from './context.ts';

/** What a pass learned of its page's rate keys: the tasks that must wait, and when to look again. */
export interface PageAdmission {
  /** Tasks of the page their key has no room for now. */
  held: Set<string>;
  /** Keys with a limit (their dispatches must be taken from the store's window). */
  limited: Set<string>;
  /** The earliest time a held task's key has room again; null: none held. */
  retryAt: Millis | null;
}

export interface RateLimitEntry {
  key: string;
  rpm: number | null;
  tpm: number | null;
}

/** How long a worker's 429 without retryAfterMs pauses its key: one window. */
export const DEFAULT_RETRY_AFTER_MS = RATE_WINDOW_MS;

export class RateLimits {
  #ctx: EngineContext;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  /** The config file's limits, declared at start (the API's stay as they are). */
  async declareConfigured(): Promise<void> {
    const now = this.#ctx.now();
    for (const [key, spec] of Object.entries(this.#ctx.config.rateLimits)) {
      await this.#ctx.store.rateLimitPut({ key, rpm: spec.rpm ?? null, tpm: spec.tpm ?? null, source: 'config', at: now });
    }
  }

  async put(key: string, spec: { rpm?: number | null; tpm?: number | null }): Promise<{ created: boolean; state: RateLimitState }> {
    const problem = rateLimitProblem(key, spec);
    if (problem !== null) throw new FlotillaError('VALIDATION_FAILED', problem);
    const now = this.#ctx.now();
    const { created } = await this.#ctx.store.rateLimitPut({ key, rpm: spec.rpm ?? null, tpm: spec.tpm ?? null, source: 'api', at: now });
    // A limit raised (or a new key) may let held tasks go.
    this.#ctx.wakeDispatcher();
    const [state] = await this.#ctx.store.rateLimitList({ keys: [key], now });
    return { created, state: state! };
  }

  async remove(key: string): Promise<void> {
    const { deleted } = await this.#ctx.store.rateLimitDelete({ key });
    if (!deleted) throw new FlotillaError('RATE_LIMIT_NOT_FOUND', `no rate limit is declared for key "${key}"`);
    this.#ctx.wakeDispatcher();
  }

  list(): Promise<RateLimitState[]> {
    return this.#ctx.store.rateLimitList({ now: this.#ctx.now() });
  }

  /**
   * Which tasks of a page their keys hold back now, in dispatch order per key. One read, and
   * only when a task of the page names a key (a page without one costs nothing).
   */
  async admitPage(tasks: readonly TaskHead[], now: Millis): Promise<PageAdmission | null> {
    const byKey = new Map<string, TaskHead[]>();
    for (const t of tasks) {
      if (t.rateKey == null) continue;
      const queued = byKey.get(t.rateKey);
      if (queued === undefined) byKey.set(t.rateKey, [t]);
      else queued.push(t);
    }
    if (byKey.size === 0) return null;
    const states = await this.#ctx.store.rateLimitList({ keys: [...byKey.keys()], now });
    const out: PageAdmission = { held: new Set(), limited: new Set(), retryAt: null };
    for (const state of states) {
      out.limited.add(state.key);
      const queued = byKey.get(state.key)!;
      const a = admit(state, state.window, queued.map((t) => ({ tokens: t.estimatedTokens ?? 0 })), now);
      for (const t of queued.slice(a.admitted)) out.held.add(t.id);
      if (a.retryAt !== null) out.retryAt = Math.min(out.retryAt ?? Infinity, a.retryAt);
    }
    return out;
  }

  /**
   * Takes the planned dispatches' requests from their keys' windows (one write per key); the
   * ids of those a key refused (another node took its room meanwhile) are returned.
   */
  async take(planned: ReadonlyArray<{ key: string; holder: string; tokens: number }>, now: Millis): Promise<Set<string>> {
    const byKey = new Map<string, Array<{ holder: string; tokens: number }>>();
    for (const p of planned) {
      const requests = byKey.get(p.key);
      if (requests === undefined) byKey.set(p.key, [{ holder: p.holder, tokens: p.tokens }]);
      else requests.push({ holder: p.holder, tokens: p.tokens });
    }
    const refused = new Set<string>();
    for (const [key, requests] of byKey) {
      const { taken } = await this.#ctx.store.rateLimitTake({ key, now, requests });
      for (const r of requests.slice(taken)) refused.add(r.holder);
    }
    return refused;
  }

  /**
   * Gives back the requests of claims that did not commit. Never throws: it runs after a pass's
   * other claims committed, which must still be delivered; a request not given back stays in
   * its minute until it ages out (fewer dispatched, never more).
   */
  async giveBack(holders: string[]): Promise<void> {
    try {
      await this.#ctx.store.rateLimitGiveBack({ holders });
    } catch (err) {
      this.#ctx.log.warn({ err, holders: holders.length }, 'rate-limit give-back failed; the requests age out of their minute');
    }
  }

  /** A worker's 429: the key pauses fleet-wide until the returned time. */
  async pause(key: string | null, retryAfterMs: number | undefined): Promise<Millis> {
    const now = this.#ctx.now();
    const until = pauseUntil(now, retryAfterMs ?? DEFAULT_RETRY_AFTER_MS);
    if (key !== null) await this.#ctx.store.rateLimitPause({ key, until, at: now });
    return until;
  }

  /** Why a pending task waits on its key (GET /tasks/:id); null: its key has room (or it names none). */
  async holding(task: Pick<TaskHead, 'status' | 'rateKey' | 'estimatedTokens'>): Promise<{ key: string; admission: Admission } | null> {
    if (task.status !== 'pending' || task.rateKey == null) return null;
    const now = this.#ctx.now();
    const [state] = await this.#ctx.store.rateLimitList({ keys: [task.rateKey], now });
    if (!state) return null;
    const admission = admit(state, state.window, [{ tokens: task.estimatedTokens ?? 0 }], now);
    return admission.admitted === 0 ? { key: task.rateKey, admission } : null;
  }

  /** Drops log rows past the window (the maintenance node's retention duty). */
  async prune(): Promise<void> {
    const before = this.#ctx.now() - RATE_WINDOW_MS;
    while ((await this.#ctx.store.rateLogPrune({ before, limit: 1_000 })) === 1_000);
  }
}
