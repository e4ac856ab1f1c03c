// Schedules (issue 16, docs/schedules.md): their management, and their firing on the elected
// maintenance node, by a timer armed to the next fire time plus a bounded sweep.
//
// Exactly one task per fire time, whatever the nodes and restarts (decisions.md 98): a firing
// submits through TaskService with the idempotency key scheduleFireKey(name, at), and only
// then advances nextFireAt by compare-and-set. A crash between the two, or a second node
// firing during a leadership takeover, submits the same key again and gets the same task.

import type { ScheduleSpec, SchedulePatch, TaskSpec } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import { allows, SYSTEM_PRINCIPAL, type Principal } from '../core/permissions.ts';
import {
  DEFAULT_CATCH_UP_WINDOW_MS, nextFireAfter, planFires, scheduleFireKey, timingOf, timingProblem,
  type ScheduleDefinition, type ScheduleFire, type ScheduleOwner, type ScheduleRecord,
} from '../core/schedules.ts';
import { isTerminal } from '../core/task-machine.ts';
import type { Millis } from '../core/types.ts';
import { keyPrincipal, keyStatus } from './api-keys.ts';
import type { EngineContext } from './context.ts';
import type { TaskService } from './task-service.ts';

/** Schedules fired per sweep at most (the rest wait for the next one, which follows at once). */
const SWEEP_LIMIT = 100;
/** How often an update retries after the schedule changed under it (a firing never does: it does not touch updatedAt). */
const UPDATE_RETRIES = 5;

export class ScheduleService {
  #ctx: EngineContext;
  #tasks: TaskService;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = true;
  #lead: ((work: () => Promise<void>) => Promise<boolean>) | null = null;
  #sweeping: Promise<void> = Promise.resolve();

  constructor(params: { ctx: EngineContext; tasks: TaskService }) {
    this.#ctx = params.ctx;
    this.#tasks = params.tasks;
  }

  // -- management ---------------------------------------------------------------------------

  async create(principal: Principal, spec: ScheduleSpec, source: 'api' | 'config' = 'api'): Promise<ScheduleRecord> {
    const owner = ownerOf(principal);
    const definition = definitionOf(spec);
    await this.#check(principal, definition);
    const now = this.#ctx.now();
    const paused = spec.paused === true;
    const schedule: ScheduleRecord = {
      name: spec.name, definition, source, owner, paused, pausedReason: null,
      nextFireAt: paused ? null : nextFireAfter(timingOf(definition, now), now),
      lastFireAt: null, lastTaskId: null, lastFireNote: null, lastFireError: null, createdAt: now, updatedAt: now,
    };
    const { created } = await this.#ctx.store.scheduleCreate({ schedule });
    if (!created) throw new FlotillaError('SCHEDULE_EXISTS', `a schedule named "${spec.name}" exists already`);
    this.#rearm();
    return schedule;
  }

  async get(name: string): Promise<ScheduleRecord> {
    const schedule = await this.#ctx.store.scheduleGet({ name });
    if (!schedule) throw new FlotillaError('SCHEDULE_NOT_FOUND', `no schedule named "${name}"`);
    return schedule;
  }

  list(): Promise<ScheduleRecord[]> {
    return this.#ctx.store.scheduleList();
  }

  /** A new definition makes the principal changing it the owner (checked now, like at create). */
  async update(principal: Principal, name: string, patch: SchedulePatch): Promise<ScheduleRecord> {
    return this.#updateWithRetry(name, async (s, now) => {
      // A new cron alone keeps the time zone (a Paris schedule stays in Paris); everyMs has none.
      const timing = patch.cron !== undefined || patch.everyMs !== undefined
        ? { cron: patch.cron ?? null, timezone: patch.timezone ?? (patch.everyMs === undefined ? s.definition.timezone : null), everyMs: patch.everyMs ?? null }
        : { cron: s.definition.cron, timezone: patch.timezone ?? s.definition.timezone, everyMs: s.definition.everyMs };
      const definition = definitionOf({ ...specOf(s.definition), ...dropNull(timing), ...omitTiming(patch), name });
      await this.#check(principal, definition);
      return { ...s, definition, owner: ownerOf(principal), source: 'api', updatedAt: now, nextFireAt: s.paused ? null : nextFireAfter(timingOf(definition, s.createdAt), now) };
    });
  }

  /** Paused: no firing until resumed; fire times while paused are not caught up. */
  pause(name: string): Promise<ScheduleRecord> {
    return this.#updateWithRetry(name, async (s, now) => (s.paused ? null : { ...s, paused: true, pausedReason: null, nextFireAt: null, updatedAt: now }));
  }

  /** A schedule paused because its owner's key was revoked resumes only for a principal who then owns it. */
  resume(principal: Principal, name: string): Promise<ScheduleRecord> {
    return this.#updateWithRetry(name, async (s, now) => {
      if (!s.paused) return null;
      const owner = s.pausedReason === 'owner_revoked' ? ownerOf(principal) : s.owner;
      if (s.pausedReason === 'owner_revoked') await this.#check(principal, s.definition);
      return { ...s, owner, paused: false, pausedReason: null, updatedAt: now, nextFireAt: nextFireAfter(timingOf(s.definition, s.createdAt), now) };
    });
  }

  async delete(name: string): Promise<void> {
    const { deleted } = await this.#ctx.store.scheduleDelete({ name });
    if (!deleted) throw new FlotillaError('SCHEDULE_NOT_FOUND', `no schedule named "${name}"`);
  }

  /**
   * The config file's `schedules:`, owned by the server itself: created, or replaced when
   * their definition changed (a paused one stays paused; its firing state is kept).
   */
  async declare(specs: readonly ScheduleSpec[]): Promise<void> {
    for (const spec of specs) {
      const existing = await this.#ctx.store.scheduleGet({ name: spec.name });
      if (existing === null) {
        await this.create(SYSTEM_PRINCIPAL, spec, 'config').catch((err: unknown) => {
          if (!(err instanceof FlotillaError && err.code === 'SCHEDULE_EXISTS')) throw err;
        });
        continue;
      }
      const definition = definitionOf(spec);
      if (JSON.stringify(definition) === JSON.stringify(existing.definition) && existing.source === 'config') continue;
      await this.#check(SYSTEM_PRINCIPAL, definition);
      const now = this.#ctx.now();
      await this.#ctx.store.scheduleUpdate({
        expectedUpdatedAt: existing.updatedAt,
        schedule: { ...existing, definition, source: 'config', owner: ownerOf(SYSTEM_PRINCIPAL), updatedAt: now, nextFireAt: existing.paused ? null : nextFireAfter(timingOf(definition, existing.createdAt), now) },
      });
    }
  }

  /** A bad timing is INVALID_SCHEDULE; a template the owner could not submit is too, with the submit's code. */
  async #check(owner: Principal, d: ScheduleDefinition): Promise<void> {
    const problem = timingProblem({ ...(d.cron !== null ? { cron: d.cron } : {}), timezone: d.timezone, ...(d.everyMs !== null ? { everyMs: d.everyMs } : {}) });
    if (problem !== null) throw new FlotillaError('INVALID_SCHEDULE', problem, { field: d.cron !== null ? 'cron' : 'everyMs' });
    try {
      await this.#tasks.validate(owner, d.task as TaskSpec);
    } catch (err) {
      if (!(err instanceof FlotillaError)) throw err;
      throw new FlotillaError('INVALID_SCHEDULE', `the task template would be refused: ${err.message}`, { field: 'task', code: err.code, details: err.details ?? null });
    }
  }

  async #updateWithRetry(name: string, change: (s: ScheduleRecord, now: Millis) => Promise<ScheduleRecord | null>): Promise<ScheduleRecord> {
    for (let i = 0; i < UPDATE_RETRIES; i++) {
      const s = await this.get(name);
      const now = Math.max(this.#ctx.now(), s.updatedAt + 1);
      const next = await change(s, now);
      if (next === null) return s;
      if ((await this.#ctx.store.scheduleUpdate({ expectedUpdatedAt: s.updatedAt, schedule: next })).updated) {
        this.#rearm();
        return (await this.#ctx.store.scheduleGet({ name })) ?? next;
      }
    }
    throw new FlotillaError('INVALID_TRANSITION', `schedule ${name} kept changing; try again`);
  }

  // -- firing -------------------------------------------------------------------------------

  /**
   * Fires every due schedule (the maintenance node's duty; idempotent, so safe on any node).
   * One sweep at a time in a process: the timer's and a caller's run one after the other.
   */
  sweep(): Promise<void> {
    const run = this.#sweeping.then(() => this.#sweepOnce());
    this.#sweeping = run.catch(() => {});
    return run;
  }

  async #sweepOnce(): Promise<void> {
    const now = this.#ctx.now();
    const due = await this.#ctx.store.scheduleListDue({ now, limit: SWEEP_LIMIT });
    for (const s of due) await this.#fireDue(s, now);
  }

  async #fireDue(s: ScheduleRecord, now: Millis): Promise<void> {
    const plan = planFires({ timing: timingOf(s.definition, s.createdAt), nextFireAt: s.nextFireAt!, now, catchUp: s.definition.catchUp, windowMs: s.definition.catchUpWindowMs });
    if (plan.dropped > 0) this.#ctx.log.info({ schedule: s.name, dropped: plan.dropped, catchUp: s.definition.catchUp }, 'missed fire times not caught up');
    const owner = plan.fire.length === 0 ? null : await this.#ownerPrincipal(s.owner, now);
    if (plan.fire.length > 0 && owner === null) {
      await this.#ctx.store.scheduleAdvance({ name: s.name, expectedNextFireAt: s.nextFireAt!, nextFireAt: plan.next, fire: { at: plan.fire.at(-1)!, taskId: null, note: 'owner_revoked', error: null } });
      await this.#ctx.store.scheduleUpdate({ expectedUpdatedAt: s.updatedAt, schedule: { ...s, paused: true, pausedReason: 'owner_revoked', nextFireAt: null, updatedAt: Math.max(now, s.updatedAt + 1) } });
      this.#ctx.log.warn({ schedule: s.name, owner: s.owner.id }, 'schedule paused: the key that owns it is revoked or expired');
      return;
    }
    let last: ScheduleFire | null = null;
    let previous = s.lastTaskId;
    for (const at of plan.fire) {
      last = await this.#fireOne(s, at, owner!, previous);
      if (last.taskId !== null) previous = last.taskId;
    }
    await this.#ctx.store.scheduleAdvance({ name: s.name, expectedNextFireAt: s.nextFireAt!, nextFireAt: plan.next, fire: last });
  }

  /** One fire time: the overlap policy against the previous run, then the submit under the fire time's key. */
  async #fireOne(s: ScheduleRecord, at: Millis, owner: Principal, previousId: string | null): Promise<ScheduleFire> {
    const previous = previousId === null || s.definition.overlap === 'allow' ? null : await this.#ctx.store.taskGet({ id: previousId });
    if (previous !== null && !isTerminal(previous.status)) {
      // The skipped firing names the run it was skipped for: it stays the previous run, so the
      // next fire time is checked against it too (a null here let every other one through).
      if (s.definition.overlap === 'skip') return { at, taskId: previous.id, note: 'skipped_overlap', error: null };
      await this.#tasks.cancel(SYSTEM_PRINCIPAL, previous.id, { reason: `schedule ${s.name} fired again (overlap: cancel_previous)` }).catch((err: unknown) => {
        // Ended meanwhile: nothing to cancel.
        if (!(err instanceof FlotillaError)) throw err;
      });
    }
    const template = s.definition.task;
    const spec: TaskSpec = { ...template, idempotencyKey: scheduleFireKey(s.name, at), correlation: { ...template.correlation, schedule: s.name } };
    try {
      const { task } = await this.#tasks.submit(owner, spec, { scheduleFiring: true });
      return { at, taskId: task.id, note: null, error: null };
    } catch (err) {
      // Refused (the agent was deleted since, ...): recorded on the schedule, which goes on.
      // Not taken (the database unavailable): the sweep fails before the advance, so the
      // next one fires this fire time again (its key makes that safe), never given up.
      if (!(err instanceof FlotillaError) || err.code === 'STORE_UNAVAILABLE') throw err;
      this.#ctx.log.warn({ schedule: s.name, code: err.code, err: err.message }, 'a schedule\'s firing was refused');
      return { at, taskId: null, note: 'failed_to_submit', error: `${err.code}: ${err.message}` };
    }
  }

  /** Who the firing submits as: its owner as it is now; null once the key is revoked, expired or gone. */
  async #ownerPrincipal(owner: ScheduleOwner, now: Millis): Promise<Principal | null> {
    if (owner.kind === 'system') return SYSTEM_PRINCIPAL;
    const key = await this.#ctx.store.apiKeyGet({ id: owner.id });
    if (key === null || keyStatus(key, now) !== 'active') return null;
    const principal = keyPrincipal(key);
    return principal !== null && allows(principal, 'task.submit') ? principal : null;
  }

  // -- the timer ----------------------------------------------------------------------------

  /**
   * Runs sweeps under `lead` (the engine's maintenance leadership: it runs the work only on the
   * elected node and answers whether this node leads): after each, a timer is armed to the
   * next fire time when leading, never further than `scheduleSweepMs` (a schedule created on
   * another node is seen within that, and so is a leader's death).
   */
  start(lead: (work: () => Promise<void>) => Promise<boolean>): { stop: () => Promise<void> } {
    this.#lead = lead;
    this.#stopped = false;
    this.#arm(this.#ctx.config.scheduleSweepMs);
    return {
      stop: async () => {
        this.#stopped = true;
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = null;
        await this.#running;
      },
    };
  }

  #arm(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, delayMs));
    this.#timer.unref();
  }

  #tick(): void {
    this.#timer = null;
    if (this.#running !== null || this.#lead === null) return;
    const sweepMs = this.#ctx.config.scheduleSweepMs;
    this.#running = (async () => {
      let delay = sweepMs;
      try {
        const leading = await this.#lead!(() => this.sweep());
        const next = leading ? await this.#ctx.store.scheduleNextFireAt() : null;
        if (next !== null) delay = Math.min(sweepMs, next - this.#ctx.now());
      } catch (err) {
        this.#ctx.log.error({ err }, 'schedule sweep failed; will retry');
      }
      this.#running = null;
      this.#arm(delay);
    })();
  }

  /** A schedule changed on this node: look again now (re-arms the timer; a non-leader's look only checks leadership). */
  #rearm(): void {
    if (this.#lead !== null && this.#running === null) this.#arm(0);
  }
}

function ownerOf(principal: Principal): ScheduleOwner {
  // A token is bound to an attempt or a tree and expires: a schedule outlives it.
  if (principal.kind === 'token') throw new FlotillaError('FORBIDDEN', 'a schedule is owned by an API key: create it with a key, not a scoped token');
  return { id: principal.id, name: principal.name, kind: principal.kind };
}

function definitionOf(spec: ScheduleSpec): ScheduleDefinition {
  return {
    cron: spec.cron ?? null,
    timezone: spec.timezone ?? null,
    everyMs: spec.everyMs ?? null,
    task: spec.task,
    overlap: spec.overlap ?? 'skip',
    catchUp: spec.catchUp ?? 'none',
    catchUpWindowMs: spec.catchUpWindowMs ?? DEFAULT_CATCH_UP_WINDOW_MS,
  };
}

function specOf(d: ScheduleDefinition): Omit<ScheduleSpec, 'name'> {
  return { task: d.task, overlap: d.overlap, catchUp: d.catchUp, catchUpWindowMs: d.catchUpWindowMs };
}

function omitTiming(patch: SchedulePatch): SchedulePatch {
  const { cron: _c, everyMs: _e, timezone: _t, ...rest } = patch;
  return rest;
}

function dropNull(t: { cron: string | null; timezone: string | null; everyMs: number | null }): Partial<ScheduleSpec> {
  return { ...(t.cron !== null ? { cron: t.cron } : {}), ...(t.timezone !== null ? { timezone: t.timezone } : {}), ...(t.everyMs !== null ? { everyMs: t.everyMs } : {}) };
}
