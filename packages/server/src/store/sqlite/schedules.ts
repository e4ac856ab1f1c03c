// SQLite: schedules (issue 16). Mapping shared with PostgreSQL (../schedule-rows.ts). Each
// function is one place per database operation; the store runs them inside its read or write.

import type { ScheduleFire, ScheduleRecord } from '../../core/schedules.ts';
import type { Millis } from '../../core/types.ts';
import { SCHEDULE_COLUMNS, scheduleFromRow, scheduleValues } from '../schedule-rows.ts';
import type { StatementCache } from './statement-cache.ts';

const SELECT = `SELECT ${SCHEDULE_COLUMNS.join(', ')} FROM schedules`;
const decode = (raw: unknown): unknown => JSON.parse(String(raw));

export function getSchedule(cache: StatementCache, name: string): ScheduleRecord | null {
  const row = cache.sql(`${SELECT} WHERE name = ?`).get(name);
  return row ? scheduleFromRow(row, decode) : null;
}

export function listSchedules(cache: StatementCache): ScheduleRecord[] {
  return cache.sql(`${SELECT} ORDER BY name`).all().map((row) => scheduleFromRow(row, decode));
}

export function listDueSchedules(cache: StatementCache, p: { now: Millis; limit: number }): ScheduleRecord[] {
  return cache.sql(`${SELECT} WHERE paused = 0 AND next_fire_at IS NOT NULL AND next_fire_at <= ? ORDER BY next_fire_at, name LIMIT ?`)
    .all(p.now, p.limit).map((row) => scheduleFromRow(row, decode));
}

export function nextScheduleFireAt(cache: StatementCache): Millis | null {
  const row = cache.sql('SELECT min(next_fire_at) AS at FROM schedules WHERE paused = 0 AND next_fire_at IS NOT NULL').get();
  return row?.at === null || row?.at === undefined ? null : Number(row.at);
}

/** Nothing is written when the name is taken. */
export function createSchedule(cache: StatementCache, s: ScheduleRecord): { created: boolean } {
  const inserted = cache.sql(`INSERT INTO schedules (${SCHEDULE_COLUMNS.join(', ')}) VALUES (${SCHEDULE_COLUMNS.map(() => '?').join(', ')})
    ON CONFLICT (name) DO NOTHING`).run(...scheduleValues(s));
  return { created: Number(inserted.changes) > 0 };
}

/** Replaces what an update may change, only while updated_at is still `expectedUpdatedAt`. */
export function updateSchedule(cache: StatementCache, p: { expectedUpdatedAt: Millis; schedule: ScheduleRecord }): { updated: boolean } {
  const s = p.schedule;
  const changed = cache.sql(`UPDATE schedules SET definition = ?, source = ?, owner = ?, paused = ?, paused_reason = ?, next_fire_at = ?, updated_at = ?
    WHERE name = ? AND updated_at = ?`).run(
    JSON.stringify(s.definition), s.source, JSON.stringify(s.owner), s.paused ? 1 : 0, s.pausedReason, s.nextFireAt, s.updatedAt, s.name, p.expectedUpdatedAt,
  );
  return { updated: Number(changed.changes) > 0 };
}

/** The compare-and-set of a firing: only while next_fire_at is still `expectedNextFireAt` (and the schedule not paused). */
export function advanceSchedule(cache: StatementCache, p: { name: string; expectedNextFireAt: Millis; nextFireAt: Millis | null; fire: ScheduleFire | null }): { advanced: boolean } {
  const f = p.fire;
  const changed = cache.sql(`UPDATE schedules SET next_fire_at = ?,
      last_fire_at = coalesce(?, last_fire_at), last_task_id = CASE WHEN ? THEN ? ELSE last_task_id END,
      last_fire_note = CASE WHEN ? THEN ? ELSE last_fire_note END, last_fire_error = CASE WHEN ? THEN ? ELSE last_fire_error END
    WHERE name = ? AND next_fire_at = ? AND paused = 0`).run(
    p.nextFireAt, f?.at ?? null, f ? 1 : 0, f?.taskId ?? null, f ? 1 : 0, f?.note ?? null, f ? 1 : 0, f?.error ?? null, p.name, p.expectedNextFireAt,
  );
  return { advanced: Number(changed.changes) > 0 };
}

export function deleteSchedule(cache: StatementCache, name: string): { deleted: boolean } {
  return { deleted: Number(cache.sql('DELETE FROM schedules WHERE name = ?').run(name).changes) > 0 };
}
