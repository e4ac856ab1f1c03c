// Seeding a PostgreSQL store: the statements of seed-sql.ts, each one INSERT ... SELECT over
// generate_series for all the rows. The session does not wait for its commits to be flushed
// (synchronous_commit off: a crash while seeding means seeding again) and skips the foreign
// key triggers (session_replication_role = replica, as a restore does: the rows are
// consistent by construction). Then VACUUM (ANALYZE) the seeded tables: a database that grew
// by use has statistics and a visibility map, and the measurement should not pay for setting
// hint bits on millions of fresh rows, nor plan without statistics.

import pg from 'pg';
import { seedStatements, type Dialect, type SeedRows } from './seed-sql.ts';

const TABLES = ['tasks', 'task_payloads', 'assignments', 'events'];

function postgres(count: number): Dialect {
  return {
    series: `s(i) AS (SELECT generate_series(0::bigint, ${count - 1}::bigint))`,
    hex: (x, width) => `lpad(to_hex(${x}), ${width}, '0')`,
    zeroPad: (x, width) => `lpad((${x})::text, ${width}, '0')`,
    iso: (x) => `to_char(to_timestamp((${x}) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
    json: (x) => `(${x})::jsonb`,
    // Above every seq handed out so far; the counter is moved past them after the inserts.
    eventSeq: (i) => `(SELECT last FROM event_counter) + 1 + ${i}`,
  };
}

/** Seeds, then vacuums; returns how long the vacuum took (s), which is not part of the seeding. */
export async function seedPostgres(url: string, rows: SeedRows): Promise<{ vacuumSeconds: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET synchronous_commit = off');
    await client.query('SET session_replication_role = replica');
    await client.query('SET maintenance_work_mem = \'512MB\'');
    await client.query('BEGIN');
    for (const sql of seedStatements(postgres(rows.count), rows)) await client.query(sql);
    await client.query(`UPDATE event_counter SET last = last + ${rows.count}`);
    await client.query('COMMIT');
    const t0 = performance.now();
    await client.query(`VACUUM (ANALYZE) ${TABLES.join(', ')}`);
    return { vacuumSeconds: (performance.now() - t0) / 1000 };
  } finally {
    await client.end().catch(() => {});
  }
}
