// A fingerprint of everything a Flotilla database stores, for the fuzz suite's "a refused
// request changes nothing" property: every row of every table (one hash per row, keyed by
// the table's first column), read through a connection of its own, so nothing the Store
// interface does not expose can change unnoticed. Left out: the audit log (refused requests
// are recorded, by design), the migration bookkeeping, and the two columns that record that
// a principal or a replica was seen (api_keys.last_used_at, replicas.last_seen_at: a refused
// request still authenticates, and an open socket's pongs keep its replica seen).

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import type { Harness } from './harness.ts';
import { PG_URL } from './postgres.ts';

const SKIPPED_TABLES = new Set(['audit_log', 'schema_migrations']);
const VOLATILE_COLUMNS = ['last_used_at', 'last_seen_at'];

/** table → (first column's value → hash of the row). */
export type Fingerprint = Map<string, Map<string, string>>;

export interface StateReader {
  read(): Promise<Fingerprint>;
  /** The rows of `table` now, as JSON text (for a diff: what a row became). */
  rows(table: string, keys: string[]): Promise<string[]>;
  close(): Promise<void>;
}

const json = (row: unknown) => JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

export async function stateReader(h: Harness): Promise<StateReader> {
  return h.schema ? postgresReader(h.schema.name) : sqliteReader(join(h.dir, 'flotilla.db'));
}

function sqliteReader(path: string): StateReader {
  const db = new DatabaseSync(path, { readOnly: true });
  db.exec('PRAGMA busy_timeout = 5000');
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>)
    .map((r) => r.name)
    .filter((name) => !SKIPPED_TABLES.has(name));
  const statements = tables.map((name) => [name, db.prepare(`SELECT * FROM "${name}"`)] as const);
  return {
    async rows(table, keys) {
      const statement = statements.find(([name]) => name === table)?.[1];
      if (!statement) return [];
      return (statement.all() as Array<Record<string, unknown>>).filter((row) => keys.includes(String(Object.values(row)[0]))).map(json);
    },
    async read() {
      const out: Fingerprint = new Map();
      for (const [table, statement] of statements) {
        const rows = new Map<string, string>();
        for (const row of statement.all() as Array<Record<string, unknown>>) {
          const [key] = Object.values(row);
          for (const column of VOLATILE_COLUMNS) delete row[column];
          rows.set(String(key), createHash('sha1').update(json(row)).digest('hex'));
        }
        out.set(table, rows);
      }
      return out;
    },
    async close() {
      db.close();
    },
  };
}

async function postgresReader(schema: string): Promise<StateReader> {
  const client = new pg.Client({ connectionString: PG_URL });
  client.on('error', () => {});
  await client.connect();
  const { rows: columns } = await client.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = $1 AND ordinal_position = 1 ORDER BY table_name`, [schema]);
  const tables = columns.filter((c) => !SKIPPED_TABLES.has(c.table_name));
  const drop = VOLATILE_COLUMNS.map((c) => ` - '${c}'`).join('');
  // One round trip for the whole database.
  const sql = tables.map((t) =>
    `SELECT '${t.table_name}' AS tbl, (to_jsonb(r) -> '${t.column_name}')::text AS k, md5((to_jsonb(r)${drop})::text) AS h FROM "${schema}"."${t.table_name}" r`,
  ).join('\nUNION ALL\n');
  return {
    async read() {
      const out: Fingerprint = new Map(tables.map((t) => [t.table_name, new Map<string, string>()]));
      const { rows } = await client.query<{ tbl: string; k: string; h: string }>(sql);
      for (const row of rows) out.get(row.tbl)!.set(row.k, row.h);
      return out;
    },
    async rows(table, keys) {
      const t = tables.find((c) => c.table_name === table);
      if (!t) return [];
      const { rows } = await client.query<{ j: string }>(
        `SELECT to_jsonb(r)::text AS j FROM "${schema}"."${table}" r WHERE (to_jsonb(r) -> '${t.column_name}')::text = ANY($1)`, [keys]);
      return rows.map((r) => r.j);
    },
    async close() {
      await client.end().catch(() => {});
    },
  };
}

/** What changed between two fingerprints, with the changed rows as they are now; null when nothing did. */
export async function diffFingerprints(before: Fingerprint, after: Fingerprint, reader?: StateReader): Promise<string | null> {
  const changes: string[] = [];
  for (const [table, rows] of after) {
    const old = before.get(table) ?? new Map<string, string>();
    const added = [...rows.keys()].filter((k) => !old.has(k));
    const removed = [...old.keys()].filter((k) => !rows.has(k));
    const changed = [...rows.keys()].filter((k) => old.has(k) && old.get(k) !== rows.get(k));
    const part = [
      added.length ? `${added.length} added (${added.slice(0, 3).join(', ')})` : '',
      removed.length ? `${removed.length} removed (${removed.slice(0, 3).join(', ')})` : '',
      changed.length ? `${changed.length} changed (${changed.slice(0, 3).join(', ')})` : '',
    ].filter(Boolean).join(', ');
    if (!part) continue;
    const now = reader ? await reader.rows(table, [...added, ...changed].slice(0, 3)) : [];
    changes.push(`${table}: ${part}${now.length ? `; now ${now.map((r) => (r.length > 600 ? `${r.slice(0, 600)}…` : r)).join(' ')}` : ''}`);
  }
  return changes.length ? changes.join('; ') : null;
}
