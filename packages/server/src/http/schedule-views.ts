// Schedules on the wire (ScheduleView): records with their next fire times and the outcome of
// their last firing (the status its task has now).

import type { Json, ScheduleView, TaskStatus } from '@flotilla/sdk';
import { nextFireTimes, timingOf, type ScheduleRecord } from '../core/schedules.ts';
import { toIso } from '../engine/time.ts';

/** How many next fire times a view shows. */
const NEXT_SHOWN = 5;

export function scheduleView(s: ScheduleRecord, taskStatus: (id: string) => TaskStatus | undefined): ScheduleView {
  const d = s.definition;
  const next = s.paused || s.nextFireAt === null ? [] : [s.nextFireAt, ...nextFireTimes(timingOf(d, s.createdAt), s.nextFireAt, NEXT_SHOWN - 1)];
  return {
    name: s.name, cron: d.cron, timezone: d.timezone, everyMs: d.everyMs, task: d.task as unknown as Json,
    overlap: d.overlap, catchUp: d.catchUp, catchUpWindowMs: d.catchUpWindowMs,
    source: s.source, ownerId: s.owner.id, paused: s.paused, pausedReason: s.pausedReason,
    nextFireTimes: next.map(toIso),
    lastFire: s.lastFireAt === null ? null : {
      at: toIso(s.lastFireAt),
      taskId: s.lastTaskId,
      // A task deleted by retention since: its outcome is no longer known.
      outcome: s.lastFireNote ?? (s.lastTaskId === null ? 'unknown' : taskStatus(s.lastTaskId) ?? 'unknown'),
      ...(s.lastFireError !== null ? { error: s.lastFireError } : {}),
    },
    createdAt: toIso(s.createdAt), updatedAt: toIso(s.updatedAt),
  };
}
