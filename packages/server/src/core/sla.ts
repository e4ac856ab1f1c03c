// Priorities and SLAs (issue 14). Pure: the engine asks, the stores write what this decides.
//
//   alias     P0..P3, a name for one value of the 0..9 scale (PRIORITY_ALIASES: 9, 7, 5, 2);
//             the stored priority is always the integer
//   band      the range of the scale a priority falls in: P0 8-9, P1 6-7, P2 4-5, P3 0-3; a
//             task's default SLA is its band's policy, however its priority was written
//   deadline  when the task must be terminal by: createdAt + slaMs, a `deadline` of its own,
//             or createdAt + its band's policy (none for P3 by default). Measured from submit
//             to terminal: waiting, retrying and being delayed all count
//   at risk   past createdAt + atRiskFraction x (deadline - createdAt) and still open
//   met       terminal at or before the deadline; violated: open at the deadline, or
//             terminal after it
//
// Exactly once: a task's SLA state moves forward only (ok → at_risk → violated | met, each at
// most once), by the maintenance sweep, as a write guarded on the state it read; the event
// (`sla.at_risk`, `sla.violated`) is written in the same write, so of two sweeps racing one
// writes it and the other finds nothing to do. `slaCheckAt` is when the sweep next looks
// (indexed): the at-risk time while ok, the deadline while at risk, null once settled.

import { PRIORITY_ALIASES, PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN, TERMINAL_TASK_STATUSES, type Priority, type PriorityBand, type SlaState } from '@flotilla/sdk';
import { FlotillaError } from './errors.ts';
import type { Millis, NewEvent, TaskRecord, TaskStatus } from './types.ts';

/** SLA policy per band (milliseconds from submit; null: no deadline) and when a task is at risk. */
export interface SlaPolicy {
  P0: Millis | null;
  P1: Millis | null;
  P2: Millis | null;
  P3: Millis | null;
  /** The fraction of its time after which an open task is at risk, in (0, 1]. */
  atRiskFraction: number;
}

const HOUR = 3_600_000;
export const DEFAULT_SLA_POLICY: SlaPolicy = { P0: HOUR, P1: 24 * HOUR, P2: 7 * 24 * HOUR, P3: null, atRiskFraction: 0.8 };

/** The lowest value of each band, highest band first. */
const BAND_FLOORS: ReadonlyArray<readonly [PriorityBand, number]> = [['P0', 8], ['P1', 6], ['P2', 4], ['P3', PRIORITY_MIN]];

/** The integer a request's priority stands for (the default when absent). */
export function resolvePriority(priority: Priority | undefined): number {
  if (priority === undefined) return PRIORITY_DEFAULT;
  if (typeof priority === 'number') return priority;
  return PRIORITY_ALIASES[priority];
}

/** The band a priority of the 0..9 scale falls in. */
export function priorityBand(priority: number): PriorityBand {
  if (priority > PRIORITY_MAX) return 'P0';
  for (const [band, floor] of BAND_FLOORS) if (priority >= floor) return band;
  return 'P3';
}

/** What a new task stores about its SLA. */
export interface SlaTerms {
  slaDeadline: Millis | null;
  slaState: SlaState;
  slaCheckAt: Millis | null;
}

/** When an open task with this deadline becomes at risk. */
export function atRiskAt(createdAt: Millis, deadline: Millis, fraction: number): Millis {
  return createdAt + Math.floor((deadline - createdAt) * fraction);
}

/**
 * A new task's SLA: its own `deadline` (epoch ms, after `createdAt`) or `slaMs`, else its
 * band's policy. Throws VALIDATION_FAILED for both at once, or a deadline not in the future.
 */
export function slaTerms(params: { createdAt: Millis; priority: number; deadline?: Millis | undefined; slaMs?: number | undefined; policy: SlaPolicy }): SlaTerms {
  const { createdAt, priority, deadline, slaMs, policy } = params;
  if (deadline !== undefined && slaMs !== undefined) {
    throw new FlotillaError('VALIDATION_FAILED', 'give either "deadline" or "slaMs", not both');
  }
  if (deadline !== undefined && !(deadline > createdAt)) {
    throw new FlotillaError('VALIDATION_FAILED', `"deadline" must be in the future (it is ${new Date(deadline).toISOString()}, the server's time is ${new Date(createdAt).toISOString()})`);
  }
  const ms = slaMs ?? policy[priorityBand(priority)];
  const at = deadline ?? (ms === null ? null : createdAt + ms);
  if (at === null) return { slaDeadline: null, slaState: 'none', slaCheckAt: null };
  return { slaDeadline: at, slaState: 'ok', slaCheckAt: atRiskAt(createdAt, at, policy.atRiskFraction) };
}

const TERMINAL: readonly TaskStatus[] = TERMINAL_TASK_STATUSES;

/** Where a task stands now: the stored state, or what a task that has ended since will be settled as. */
export function slaStateOf(task: Pick<TaskRecord, 'status' | 'finishedAt' | 'slaDeadline' | 'slaState'>): SlaState {
  const { slaState, slaDeadline, finishedAt } = task;
  if ((slaState === 'ok' || slaState === 'at_risk') && slaDeadline !== null && TERMINAL.includes(task.status) && finishedAt !== null) {
    return finishedAt <= slaDeadline ? 'met' : 'violated';
  }
  return slaState;
}

export type SlaEventType = 'sla.at_risk' | 'sla.violated';

/** One guarded SLA write: applies only while the task is still in `fromState` and `fromStatus`. */
export interface SlaMark {
  taskId: string;
  fromState: SlaState;
  fromStatus: TaskStatus;
  state: SlaState;
  /** When the sweep looks next; null: never again. */
  checkAt: Millis | null;
  event: (NewEvent & { type: SlaEventType }) | null;
}

type SlaTask = Pick<TaskRecord, 'id' | 'status' | 'agent' | 'priority' | 'createdAt' | 'finishedAt' | 'slaDeadline' | 'slaState' | 'slaCheckAt'>;

/**
 * What the sweep writes for a task whose check time has come (null: nothing yet). An open
 * task past its deadline is violated without first being at risk: a warning after the fact
 * says nothing `sla.violated` does not (the node was down, or the fraction is 1).
 */
export function decideSlaCheck(params: { task: SlaTask; now: Millis }): SlaMark | null {
  const { task, now } = params;
  const deadline = task.slaDeadline;
  if (deadline === null || (task.slaState !== 'ok' && task.slaState !== 'at_risk')) return null;
  const base = { taskId: task.id, fromState: task.slaState, fromStatus: task.status };
  const data = { band: priorityBand(task.priority), priority: task.priority, deadline: new Date(deadline).toISOString(), status: task.status };
  const event = (type: SlaEventType, extra: Record<string, string | number> = {}) => ({
    type, taskId: task.id, agent: task.agent, replicaId: null, assignmentId: null, data: { ...data, ...extra },
  });
  if (TERMINAL.includes(task.status)) {
    const finishedAt = task.finishedAt ?? now;
    if (finishedAt <= deadline) return { ...base, state: 'met', checkAt: null, event: null };
    return { ...base, state: 'violated', checkAt: null, event: event('sla.violated', { finishedAt: new Date(finishedAt).toISOString(), lateMs: finishedAt - deadline }) };
  }
  if (now >= deadline) return { ...base, state: 'violated', checkAt: null, event: event('sla.violated', { lateMs: now - deadline }) };
  if (task.slaState === 'ok' && task.slaCheckAt !== null && now >= task.slaCheckAt) {
    return { ...base, state: 'at_risk', checkAt: deadline, event: event('sla.at_risk', { remainingMs: deadline - now }) };
  }
  return null;
}
