// Schedules (issue 16) as rows, shared by both stores: the columns and the row → record
// mapping. Only how a JSON column is decoded differs per store.

import type { ScheduleDefinition, ScheduleFireNote, ScheduleOwner, ScheduleRecord } from '../core/schedules.ts';

export const SCHEDULE_COLUMNS = [
  'name', 'definition', 'source', 'owner', 'paused', 'paused_reason', 'next_fire_at',
  'last_fire_at', 'last_task_id', 'last_fire_note', 'last_fire_error', 'created_at', 'updated_at',
] as const;

type Row = Record<string, unknown>;

const num = (row: Row, col: string): number => {
  const v = row[col];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v !== '') return Number(v);
  throw new Error(`store row column ${col} is not a number`);
};
const numOrNull = (row: Row, col: string): number | null => (row[col] === null || row[col] === undefined ? null : num(row, col));
const strOrNull = (row: Row, col: string): string | null => (row[col] === null || row[col] === undefined ? null : String(row[col]));

export function scheduleFromRow(row: Row, decode: (raw: unknown) => unknown): ScheduleRecord {
  const source = String(row.source);
  if (source !== 'config' && source !== 'api') throw new Error(`schedule ${String(row.name)} has source ${source}`);
  return {
    name: String(row.name),
    definition: decode(row.definition) as ScheduleDefinition,
    source,
    owner: decode(row.owner) as ScheduleOwner,
    paused: num(row, 'paused') !== 0,
    pausedReason: strOrNull(row, 'paused_reason'),
    nextFireAt: numOrNull(row, 'next_fire_at'),
    lastFireAt: numOrNull(row, 'last_fire_at'),
    lastTaskId: strOrNull(row, 'last_task_id'),
    lastFireNote: strOrNull(row, 'last_fire_note') as ScheduleFireNote | null,
    lastFireError: strOrNull(row, 'last_fire_error'),
    createdAt: num(row, 'created_at'),
    updatedAt: num(row, 'updated_at'),
  };
}

/** A record's column values, in SCHEDULE_COLUMNS order (JSON columns as text). */
export function scheduleValues(s: ScheduleRecord): Array<string | number | null> {
  return [
    s.name, JSON.stringify(s.definition), s.source, JSON.stringify(s.owner), s.paused ? 1 : 0, s.pausedReason, s.nextFireAt,
    s.lastFireAt, s.lastTaskId, s.lastFireNote, s.lastFireError, s.createdAt, s.updatedAt,
  ];
}
