// PostgreSQL: schedules (issue 16). Mapping shared with SQLite (../schedule-rows.ts). Reads
// take any connection; writes are write-batch operations (see write-batch.ts).

import type { ScheduleFire, ScheduleRecord } from '../../core/schedules.ts';
import type { Millis } from '../../core/types.ts';
import { SCHEDULE_COLUMNS, scheduleFromRow, scheduleValues } from '../schedule-rows.ts';
import { run, type Queryable } from './sql.ts';
import { written, type WriteOp } from './write-batch.ts';

const SELECT = `SELECT ${SCHEDULE_COLUMNS.join(', ')} FROM schedules`;
// jsonb arrives parsed.
const decode = (raw: unknown): unknown => raw;
const TYPES = ['text', 'jsonb', 'text', 'jsonb', 'integer', 'text', 'bigint', 'bigint', 'text', 'text', 'text', 'bigint', 'bigint'];

export async function getSchedule(db: Queryable, name: string): Promise<ScheduleRecord | null> {
  const [row] = await run(db, `${SELECT} WHERE name = $1::text`, [name]);
  return row ? scheduleFromRow(row, decode) : null;
}

export async function listSchedules(db: Queryable): Promise<ScheduleRecord[]> {
  return (await run(db, `${SELECT} ORDER BY name COLLATE "C"`)).map((row) => scheduleFromRow(row, decode));
}

export async function listDueSchedules(db: Queryable, p: { now: Millis; limit: number }): Promise<ScheduleRecord[]> {
  return (await run(db, `${SELECT} WHERE paused = 0 AND next_fire_at IS NOT NULL AND next_fire_at <= $1::bigint ORDER BY next_fire_at, name COLLATE "C" LIMIT $2::integer`, [p.now, p.limit]))
    .map((row) => scheduleFromRow(row, decode));
}

export async function nextScheduleFireAt(db: Queryable): Promise<Millis | null> {
  const [row] = await run(db, 'SELECT min(next_fire_at) AS at FROM schedules WHERE paused = 0 AND next_fire_at IS NOT NULL');
  return row?.at === null || row?.at === undefined ? null : Number(row.at);
}

/** Nothing is written when the name is taken. */
export function createSchedule(s: ScheduleRecord): WriteOp<{ created: boolean }> {
  return async (tx) => {
    const rows = await run(tx, `INSERT INTO schedules (${SCHEDULE_COLUMNS.join(', ')}) VALUES (${TYPES.map((t, i) => `$${i + 1}::${t}`).join(', ')})
      ON CONFLICT (name) DO NOTHING RETURNING name`, scheduleValues(s));
    return written({ created: rows.length > 0 });
  };
}

/** Replaces what an update may change, only while updated_at is still `expectedUpdatedAt`. */
export function updateSchedule(p: { expectedUpdatedAt: Millis; schedule: ScheduleRecord }): WriteOp<{ updated: boolean }> {
  const s = p.schedule;
  return async (tx) => {
    const rows = await run(tx, `UPDATE schedules SET definition = $2::jsonb, source = $3::text, owner = $4::jsonb, paused = $5::integer,
        paused_reason = $6::text, next_fire_at = $7::bigint, updated_at = $8::bigint
      WHERE name = $1::text AND updated_at = $9::bigint RETURNING name`,
    [s.name, JSON.stringify(s.definition), s.source, JSON.stringify(s.owner), s.paused ? 1 : 0, s.pausedReason, s.nextFireAt, s.updatedAt, p.expectedUpdatedAt]);
    return written({ updated: rows.length > 0 });
  };
}

/** The compare-and-set of a firing: only while next_fire_at is still `expectedNextFireAt` (and the schedule not paused). */
export function advanceSchedule(p: { name: string; expectedNextFireAt: Millis; nextFireAt: Millis | null; fire: ScheduleFire | null }): WriteOp<{ advanced: boolean }> {
  const f = p.fire;
  return async (tx) => {
    const rows = await run(tx, `UPDATE schedules SET next_fire_at = $3::bigint,
        last_fire_at = CASE WHEN $4::boolean THEN $5::bigint ELSE last_fire_at END,
        last_task_id = CASE WHEN $4::boolean THEN $6::text ELSE last_task_id END,
        last_fire_note = CASE WHEN $4::boolean THEN $7::text ELSE last_fire_note END,
        last_fire_error = CASE WHEN $4::boolean THEN $8::text ELSE last_fire_error END
      WHERE name = $1::text AND next_fire_at = $2::bigint AND paused = 0 RETURNING name`,
    [p.name, p.expectedNextFireAt, p.nextFireAt, f !== null, f?.at ?? null, f?.taskId ?? null, f?.note ?? null, f?.error ?? null]);
    return written({ advanced: rows.length > 0 });
  };
}

export function deleteSchedule(name: string): WriteOp<{ deleted: boolean }> {
  return async (tx) => written({ deleted: (await run(tx, 'DELETE FROM schedules WHERE name = $1::text RETURNING name', [name])).length > 0 });
}
