// Schedules (issue 16, docs/schedules.md): when a schedule fires, and which of its fire times a
// sweep fires after a delay or downtime. Pure: croner computes cron times (seconds, time
// zones, DST); nothing here reads a clock or a store.
//
// Invariants:
// - A fire time is one task: its idempotency key is scheduleFireKey(name, at), so a firing
//   repeated (a crash before the advance, two nodes during a takeover) finds the same task.
// - nextFireAt only moves forward, by a compare-and-set on its previous value (the store's
//   scheduleAdvance); the times a sweep fires are all before the new value.
// - Every plan is bounded: at most MAX_DUE_SCAN fire times are looked at, MAX_CATCH_UP fired.

import { Cron } from 'croner';
import type { ScheduleTaskTemplate } from '@flotilla/sdk';
import type { Millis } from './types.ts';

export const OVERLAP_POLICIES = ['skip', 'allow', 'cancel_previous'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];
export const CATCH_UP_POLICIES = ['none', 'one', 'all'] as const;
export type CatchUpPolicy = (typeof CATCH_UP_POLICIES)[number];

/** The shortest interval a schedule may have (croner's resolution is a second too). */
export const MIN_EVERY_MS = 1_000;
/** A fire time found at most this late is on time (a sweep's delay, a leader's takeover), whatever the catch-up policy. */
export const ON_TIME_MS = 60_000;
/** The default of `catchUpWindowMs`: missed fire times older than this are never fired. */
export const DEFAULT_CATCH_UP_WINDOW_MS = 3_600_000;
/** The most missed fire times one sweep fires for a schedule with `catchUp: "all"` (the most recent ones). */
export const MAX_CATCH_UP = 100;
/** The most due fire times a plan walks through (a schedule every second, down for a day, stops here). */
const MAX_DUE_SCAN = 10_000;

/** When a schedule fires: a cron expression (5 or 6 fields, in `timezone`, default UTC), or every `everyMs` from `anchor`. */
export type ScheduleTiming =
  | { cron: string; timezone: string | null }
  | { everyMs: number; anchor: Millis };

/** Why a timing cannot be used, or null. */
export function timingProblem(t: { cron?: string; timezone?: string | null; everyMs?: number }): string | null {
  if ((t.cron === undefined) === (t.everyMs === undefined)) return 'give exactly one of "cron" or "everyMs"';
  if (t.everyMs !== undefined) {
    if (!Number.isInteger(t.everyMs) || t.everyMs < MIN_EVERY_MS) return `"everyMs" must be an integer of at least ${MIN_EVERY_MS}`;
    if (t.timezone !== undefined && t.timezone !== null) return '"timezone" applies to "cron" only';
    return null;
  }
  if (t.timezone !== undefined && t.timezone !== null) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: t.timezone });
    } catch {
      return `unknown time zone "${t.timezone}" (use an IANA name such as "Europe/Paris")`;
    }
  }
  try {
    const cron = new Cron(t.cron!, { paused: true, ...(t.timezone ? { timezone: t.timezone } : { utcOffset: 0 }) });
    if (cron.nextRun(new Date(0)) === null && cron.nextRun() === null) return `cron expression "${t.cron}" never fires`;
  } catch (err) {
    return `invalid cron expression "${t.cron}": ${(err as Error).message}`;
  }
  return null;
}

/** The first fire time strictly after `after`, or null when there is none (a cron that never fires again). */
export function nextFireAfter(timing: ScheduleTiming, after: Millis): Millis | null {
  if ('everyMs' in timing) {
    if (after < timing.anchor) return timing.anchor;
    return timing.anchor + (Math.floor((after - timing.anchor) / timing.everyMs) + 1) * timing.everyMs;
  }
  const cron = new Cron(timing.cron, { paused: true, ...(timing.timezone ? { timezone: timing.timezone } : { utcOffset: 0 }) });
  const next = cron.nextRun(new Date(after));
  return next === null ? null : next.getTime();
}

/** The next `n` fire times strictly after `after` (the view's "next fire times"). */
export function nextFireTimes(timing: ScheduleTiming, after: Millis, n: number): Millis[] {
  const out: Millis[] = [];
  let at: Millis | null = after;
  while (out.length < n && (at = nextFireAfter(timing, at)) !== null) out.push(at);
  return out;
}

export interface FirePlan {
  /** The fire times to fire now, oldest first. */
  fire: Millis[];
  /** Missed fire times the policy drops (counted, for the log and the view). */
  dropped: number;
  /** The schedule's nextFireAt after this sweep: the first fire time after `now` (null: never again). */
  next: Millis | null;
}

/**
 * Which due fire times (from `nextFireAt` up to `now`) to fire. The latest due time fires when
 * it is on time (at most ON_TIME_MS late). Older or later ones are missed firings (the node
 * was down, the schedule's leader changed slowly): `none` drops them, `one` fires only the
 * latest within `windowMs`, `all` fires each within `windowMs`, the most recent MAX_CATCH_UP.
 */
export function planFires(p: { timing: ScheduleTiming; nextFireAt: Millis; now: Millis; catchUp: CatchUpPolicy; windowMs: Millis }): FirePlan {
  const due: Millis[] = [];
  let at: Millis | null = p.nextFireAt;
  while (at !== null && at <= p.now && due.length < MAX_DUE_SCAN) {
    due.push(at);
    at = nextFireAfter(p.timing, at);
  }
  // Stopped by the scan bound: the next fire time is the first after now, not after the last scanned.
  const next = at !== null && at <= p.now ? nextFireAfter(p.timing, p.now) : at;
  const latest = due.at(-1);
  if (latest === undefined) return { fire: [], dropped: 0, next };
  const window = Math.max(p.windowMs, ON_TIME_MS);
  let fire: Millis[];
  if (p.catchUp === 'none') fire = p.now - latest <= ON_TIME_MS ? [latest] : [];
  else if (p.catchUp === 'one') fire = p.now - latest <= window ? [latest] : [];
  else fire = due.filter((t) => p.now - t <= window).slice(-MAX_CATCH_UP);
  return { fire, dropped: due.length - fire.length, next };
}

/**
 * The prefix of the schedules' fire keys, reserved: any other submit naming such a key is
 * refused, or it could take a fire time ahead of the schedule (the firing would then answer
 * that task, or an IDEMPOTENCY_CONFLICT, instead of running the schedule's own).
 */
export const SCHEDULE_KEY_PREFIX = 'schedule:';

/** The idempotency key of a schedule's firing at `at`: the same whichever node fires it, however often. */
export function scheduleFireKey(name: string, at: Millis): string {
  return `${SCHEDULE_KEY_PREFIX}${name}:${new Date(at).toISOString()}`;
}

/** Why a submit that is not a schedule's firing cannot use this idempotency key, or null. */
export function reservedKeyProblem(idempotencyKey: string | undefined): string | null {
  return idempotencyKey?.startsWith(SCHEDULE_KEY_PREFIX) === true
    ? `idempotency keys starting with "${SCHEDULE_KEY_PREFIX}" are reserved for schedules' firings; choose another key`
    : null;
}

/** What a schedule is, as stored (`spec`): its timing, the task it submits and its policies. */
export interface ScheduleDefinition {
  cron: string | null;
  timezone: string | null;
  everyMs: number | null;
  task: ScheduleTaskTemplate;
  overlap: OverlapPolicy;
  catchUp: CatchUpPolicy;
  catchUpWindowMs: Millis;
}

/** Whose tasks a schedule submits: the principal that created it, as it was then (re-checked at every firing). */
export interface ScheduleOwner {
  id: string;
  name: string;
  kind: 'key' | 'system';
}

/** Why no task was submitted for a fire time (the view's `lastFire.outcome`). */
export type ScheduleFireNote = 'skipped_overlap' | 'owner_revoked' | 'failed_to_submit';

export interface ScheduleRecord {
  name: string;
  definition: ScheduleDefinition;
  source: 'config' | 'api';
  owner: ScheduleOwner;
  paused: boolean;
  /** Set when the server paused it (its owner's key was revoked); null otherwise. */
  pausedReason: string | null;
  /** The next fire time not yet fired; null while paused or when it never fires again. */
  nextFireAt: Millis | null;
  lastFireAt: Millis | null;
  lastTaskId: string | null;
  lastFireNote: ScheduleFireNote | null;
  /** The submit's refusal, with `failed_to_submit`. */
  lastFireError: string | null;
  createdAt: Millis;
  /** Changed by an update (PATCH, pause, resume, re-declaration), never by a firing: the guard of scheduleUpdate. */
  updatedAt: Millis;
}

/** The last firing, as scheduleAdvance records it. */
export interface ScheduleFire {
  at: Millis;
  taskId: string | null;
  note: ScheduleFireNote | null;
  error: string | null;
}

export function timingOf(d: Pick<ScheduleDefinition, 'cron' | 'timezone' | 'everyMs'>, anchor: Millis): ScheduleTiming {
  return d.cron !== null ? { cron: d.cron, timezone: d.timezone } : { everyMs: d.everyMs!, anchor };
}
