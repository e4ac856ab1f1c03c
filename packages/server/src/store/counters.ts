// What a store asked of its database: a few plain counters, incremented where statements are
// run and transactions committed (one place per store), always on (an increment per statement
// is noise next to the statement). Read with Store.counterSnapshot() and compare two snapshots:
// the hot-path budget test (test/hot-path-budget.test.ts) divides the difference by the tasks
// it ran.

export interface StoreCounters {
  /** SQL statements executed (BEGIN, COMMIT and savepoints included). */
  statements: number;
  /** Transactions committed. */
  commits: number;
  /** Requests sent to the database server that waited for its answer (0 for an in-process database). */
  roundTrips: number;
}

export function counterZero(): StoreCounters {
  return { statements: 0, commits: 0, roundTrips: 0 };
}

export function counterCopy(counters: StoreCounters): StoreCounters {
  return { statements: counters.statements, commits: counters.commits, roundTrips: counters.roundTrips };
}
