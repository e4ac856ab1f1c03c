// `npm run bench -- --smoke` (bench/run.ts) as a child process: it exits 0, writes its JSON
// with every figure present and positive, and every task it submitted completed (the bench
// verifies that itself and fails otherwise; the JSON records the server's count). No timing
// assertions: the figures depend on the machine. PostgreSQL runs W1 too where it is reachable
// (always in CI), alongside, to stay quick: most of a smoke run is starting servers, and
// the W2 path of the bench does not depend on the store.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresAvailable } from './helpers/postgres.ts';

const BENCH = fileURLToPath(new URL('../../../bench/run.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-smoke-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// --smoke: W1 300 tasks (one per call, then bulk), W2 100 tasks at 100/s, one run.
const W1_TASKS = 300;
const W2_TASKS = 100;
const W1_METRICS = ['submitPerSecond', 'bulkSubmitPerSecond', 'drainPerSecond', 'wallSeconds'];
const W2_METRICS = ['p50Ms', 'p95Ms', 'p99Ms', 'maxMs'];

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

const positive = (x: unknown, what: string) => assert.ok(typeof x === 'number' && Number.isFinite(x) && x > 0, `${what} = ${String(x)}`);

async function smoke(store: 'sqlite' | 'postgres', only?: 'w1'): Promise<void> {
  const out = join(dir, `${store}.json`);
  const { code, output } = await runBench(['--smoke', '--store', store, '--out', out, ...(only ? ['--only', only] : [])]);
  assert.equal(code, 0, output);
  assert.match(output, /W1 submit, one per call/);
  const json = JSON.parse(readFileSync(out, 'utf8'));
  assert.deepEqual(json.settings.stores, [store]);
  assert.ok(['websocket', 'http'].includes(json.settings.clientTransport));
  positive(json.machine.cpuCount, 'machine.cpuCount');
  assert.equal(typeof json.machine.node, 'string');
  for (const m of only ? W1_METRICS : [...W1_METRICS, ...W2_METRICS]) {
    for (const k of ['median', 'min', 'max']) positive(json.summary[store][m]?.[k], `summary.${store}.${m}.${k}`);
  }
  const runs = json.results[store].runs;
  assert.equal(runs.length, 1);
  const { w1, w2 } = runs[0];
  for (const m of [...W1_METRICS, 'bulkDrainPerSecond']) positive(w1[m], `w1.${m}`);
  // Every submitted task completed, by the server's own listing and by the worker's count.
  assert.equal(w1.raw.drain.verifiedCompleted, W1_TASKS);
  assert.equal(w1.raw.drain.completed, W1_TASKS);
  assert.equal(w1.raw.bulkDrain.verifiedCompleted, W1_TASKS);
  if (only) return;
  for (const m of W2_METRICS) positive(w2[m], `w2.${m}`);
  assert.equal(w2.verifiedCompleted, W2_TASKS);
  assert.equal(w2.samplesMs.length, W2_TASKS);
  for (const s of w2.samplesMs) positive(s, 'w2 sample');
}

describe('bench smoke (npm run bench -- --smoke)', { concurrency: true }, () => {
  // About 40 s alone on the project's machine kind (most of it starting servers, W3's
  // included); the rest of the suite runs beside it on the same two cores.
  it('SQLite: exits 0, writes every figure, every task completed', { timeout: 180_000 }, () => smoke('sqlite'));

  it('PostgreSQL, W1 (fresh database, dropped after): the same', { timeout: 120_000 }, async (t) => {
    if (!(await postgresAvailable())) {
      if (process.env.CI === 'true') assert.fail('PostgreSQL is not reachable (required in CI)');
      return t.skip('PostgreSQL is not reachable');
    }
    await smoke('postgres', 'w1');
  });
});
