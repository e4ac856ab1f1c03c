// The property-based fuzz suite (helpers/fuzz-suite.ts) on the SQLite store: every route and
// both sockets with hostile input. FUZZ_SEED reproduces a run, FUZZ_RUNS sizes it.
import { fuzzSuite } from './helpers/fuzz-suite.ts';

fuzzSuite('sqlite', { route: 100, op: 30, audit: 200 });
