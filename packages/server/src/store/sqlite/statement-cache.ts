// Prepared statements, compiled once per SQL text and reused for the life of the connection.
// Keyed by the SQL text itself, so a call site keeps its SQL next to the code that uses it.
// The set of texts is finite: dynamic statements (patches, list filters) are assembled only
// from fixed column whitelists, so the number of distinct shapes is bounded and small.

import type { DatabaseSync, StatementSync } from 'node:sqlite';

export class StatementCache {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  get db(): DatabaseSync {
    return this.#db;
  }

  /** The prepared statement for `sql`, compiled on first use. */
  sql(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  get size(): number {
    return this.#statements.size;
  }
}
