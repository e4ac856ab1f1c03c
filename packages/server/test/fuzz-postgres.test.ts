// The property-based fuzz suite (helpers/fuzz-suite.ts) on the PostgreSQL store, in a schema
// of its own. Unreachable PostgreSQL skips the file locally and fails it in CI (CI=true).
// FUZZ_SEED reproduces a run, FUZZ_RUNS sizes it.
import { it } from 'node:test';
import { PG_URL, postgresAvailable } from './helpers/postgres.ts';
import { fuzzSuite } from './helpers/fuzz-suite.ts';

if (await postgresAvailable()) {
  fuzzSuite('postgres', { route: 70, op: 25, audit: 120 });
} else {
  it('fuzz on postgres', { skip: `PostgreSQL is not reachable at ${PG_URL.replace(/\/\/[^@/]*@/, '//***@')}` }, () => {});
}
