// Prepared statements, compiled once per SQL text and reused for the life of the connection.
// Keyed by the SQL text itself, so a call site keeps its SQL next to the code that uses it.
// The set of texts is finite: dynamic statements (patches, list filters) are assembled only
// from fixed column whitelists, so the number of distinct shapes is bounded and small.

//
// Every execution is counted here (CountedStatement), the one place the SQLite store runs
// statements: the write batch's BEGIN/COMMIT/savepoints are CountedStatements too.

import type { DatabaseSync, SQLOutputValue, StatementResultingChanges, StatementSync } from 'node:sqlite';
import { counterZero, type StoreCounters } from '../counters.ts';

type Row = Record<string, SQLOutputValue>;

/** A prepared statement whose every run counts one statement in `counters`. */
export class CountedStatement {
  readonly #stmt: StatementSync;
  readonly #counters: StoreCounters;

  constructor(stmt: StatementSync, counters: StoreCounters) {
    this.#stmt = stmt;
    this.#counters = counters;
  }

  run(...params: unknown[]): StatementResultingChanges {
    this.#counters.statements += 1;
    return Reflect.apply(this.#stmt.run, this.#stmt, params) as StatementResultingChanges;
  }

  get(...params: unknown[]): Row | undefined {
    this.#counters.statements += 1;
    return Reflect.apply(this.#stmt.get, this.#stmt, params) as Row | undefined;
  }

  all(...params: unknown[]): Row[] {
    this.#counters.statements += 1;
    return Reflect.apply(this.#stmt.all, this.#stmt, params) as Row[];
  }
}

export class StatementCache {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, CountedStatement>();
  /** Shared with the store's write batch, which counts its commits in it. */
  readonly counters: StoreCounters;

  constructor(db: DatabaseSync, counters: StoreCounters = counterZero()) {
    this.#db = db;
    this.counters = counters;
  }

  get db(): DatabaseSync {
    return this.#db;
  }

  /** The prepared statement for `sql`, compiled on first use. */
  sql(sql: string): CountedStatement {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = new CountedStatement(this.#db.prepare(sql), this.counters);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  get size(): number {
    return this.#statements.size;
  }
}
