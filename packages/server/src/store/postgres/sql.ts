// Running statements. Every statement text is fixed or assembled from fixed whitelists, so
// the set of texts is small and bounded; each is a named prepared statement (parsed and
// planned once per connection, then only bound and executed), named after a hash of its text
// so that equal texts share a name on every connection and different texts never collide.

import { createHash } from 'node:crypto';
import type pg from 'pg';

export type Row = Record<string, unknown>;

/** A pool (each call on any free connection) or one checked-out connection (a transaction). */
export interface Queryable {
  query(config: pg.QueryConfig): Promise<pg.QueryResult>;
}

const names = new Map<string, string>();

function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `fl_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/** Runs one prepared statement; rows come back typed by the pool's parsers (see connection.ts). */
export async function run(db: Queryable, text: string, values: readonly unknown[] = []): Promise<Row[]> {
  const result = await db.query({ name: statementName(text), text, values: [...values] });
  return result.rows as Row[];
}

/** Runs a statement without preparing it: one-off SQL (migrations, session commands). */
export async function runOnce(db: Queryable, text: string, values: readonly unknown[] = []): Promise<Row[]> {
  const result = await db.query({ text, values: [...values] });
  return result.rows as Row[];
}

/**
 * Collects positional parameters while a statement is assembled: `p.add(v, 'bigint')` returns
 * `$n::bigint`. Explicit casts keep every parameter's type independent of where it appears
 * (a parameter in a SELECT list has no column to infer its type from).
 */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}
