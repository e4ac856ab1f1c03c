// Running statements. Every statement text is fixed or assembled from fixed whitelists, so
// the set of texts is small and bounded; each is a named prepared statement (parsed and
// planned once per connection, then only bound and executed), named after a hash of its text
// so that equal texts share a name on every connection and different texts never collide.

import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { StoreCounters } from '../counters.ts';

export type Row = Record<string, unknown>;

/** A pool (each call on any free connection) or one checked-out connection (a transaction). */
export interface Queryable {
  query(config: pg.QueryConfig): Promise<pg.QueryResult>;
  /** As query, but counted as a statement only: see `sendAhead`. */
  queryAhead?(config: pg.QueryConfig): Promise<pg.QueryResult>;
}

/**
 * `db` with every query counted in `counters`: one round trip each, and one statement each,
 * except an unprepared text of several statements (`BEGIN; SET LOCAL ...`), which counts each.
 * The one place the PostgreSQL store counts: its pool and every connection it checks out are
 * wrapped with this (the LISTEN and leadership sessions are not: they are outside the task path).
 */
export function countedQueryable(db: Queryable, counters: StoreCounters): Queryable {
  return {
    query(config: pg.QueryConfig): Promise<pg.QueryResult> {
      counters.roundTrips += 1;
      counters.statements += config.name === undefined ? statementCount(config.text) : 1;
      return db.query(config);
    },
    queryAhead(config: pg.QueryConfig): Promise<pg.QueryResult> {
      counters.statements += config.name === undefined ? statementCount(config.text) : 1;
      return db.query(config);
    },
  };
}

/** Statements in a simple-protocol text: `;`-separated parts that are not blank. Our texts quote no `;`. */
function statementCount(text: string): number {
  if (!text.includes(';')) return 1;
  return Math.max(1, text.split(';').filter((part) => part.trim() !== '').length);
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
 * Sends a statement in the round trip of a neighbour: the pool's connections are in pipeline
 * mode (connection.ts), so a statement issued before the answer of the previous one has
 * arrived goes out at once, and the server answers both in order. The caller issues it next
 * to a statement sent with `run`/`runOnce` (which counts the round trip they share) and must
 * handle its promise even when it does not need the answer: a pipelined statement behind one
 * that failed inside a transaction fails too ("current transaction is aborted"). Unprepared,
 * as runOnce: for fixed texts such as BEGIN and COMMIT.
 */
export async function sendAhead(db: Queryable, text: string): Promise<pg.QueryResult> {
  return db.queryAhead ? db.queryAhead({ text }) : db.query({ text });
}

/** As `run` (a prepared statement), sent in a neighbour's round trip (see `sendAhead`). */
export async function runAhead(db: Queryable, text: string, values: readonly unknown[] = []): Promise<Row[]> {
  const config = { name: statementName(text), text, values: [...values] };
  const result = await (db.queryAhead ? db.queryAhead(config) : db.query(config));
  return result.rows as Row[];
}

/**
 * `db` whose first statement is sent in a neighbour's round trip (see `sendAhead`): for a
 * run of statements (a function that issues them one after another) pipelined behind one
 * already sent.
 */
export function firstAhead(db: Queryable): Queryable {
  let first = true;
  return {
    query(config: pg.QueryConfig): Promise<pg.QueryResult> {
      const ahead = first && db.queryAhead !== undefined;
      first = false;
      return ahead ? db.queryAhead!(config) : db.query(config);
    },
    ...(db.queryAhead ? { queryAhead: (config: pg.QueryConfig) => db.queryAhead!(config) } : {}),
  };
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
