// End-to-end measurement of the core path against a real `flotilla serve` process:
//   1. throughput: submit over HTTP with 50 submissions in flight while HTTP-lease workers
//      lease and complete; tasks/s from the first submit to the last recorded completion;
//   2. latency: one idle worker waiting in a long-poll; tasks submitted one at a time at a
//      steady rate; time from just before the submit call to the worker receiving the lease.
// Durability stays on (SQLite WAL, synchronous=FULL). Results go to bench/results/.
//
// With --store postgres the servers share a fresh PostgreSQL database (created and dropped
// here); with --nodes N that many servers share it: submitters and workers are spread over
// them, and the latency probe submits on one node while its worker waits on another.
//
//   npm run bench -- [--store sqlite|postgres] [--nodes N] [--tasks N] [--latency-tasks N] [--rate PER_SECOND]

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values } = parseArgs({ options: { store: { type: 'string', default: 'sqlite' }, nodes: { type: 'string', default: '1' }, tasks: { type: 'string', default: '10000' }, 'latency-tasks': { type: 'string', default: '1000' }, rate: { type: 'string', default: '200' }, quiet: { type: 'boolean', default: false } } });
const TASKS = Number(values.tasks);
const LATENCY_TASKS = Number(values['latency-tasks']);
const RATE = Number(values.rate);
const IN_FLIGHT = 50;
const STORE = values.store === 'postgres' ? 'postgres' : 'sqlite';
const NODES = Math.max(1, Number(values.nodes));
const PG_ADMIN = process.env.FLOTILLA_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOKEN = 'bench-admin-token-0123456789';
const CLI = fileURLToPath(new URL('../packages/server/src/cli/main.ts', import.meta.url));
const log = (...a: unknown[]) => { if (!values.quiet) console.log(...a); };

async function startServer(database: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--database', database], {
    env: { ...process.env, FLOTILLA_ADMIN_TOKEN: TOKEN, FLOTILLA_LOG_LEVEL: 'info', FLOTILLA_RATE_LIMIT_PER_SECOND: '0' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /flotilla listening on (http:\/\/[^"\s]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  return { url, stop: async () => { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); } };
}

type Call = (method: string, path: string, body?: unknown) => Promise<any>;

function client(url: string): Call {
  return async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method, headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function throughput(calls: Call[]) {
  const call = calls[0]!;
  await call('POST', '/agents', { name: 'bench', maxConcurrency: 64 });
  let completed = 0;
  let lastCompletion = 0;
  let done!: () => void;
  const allDone = new Promise<void>((r) => (done = r));
  let stop = false;
  const worker = async (call: Call) => {
    const { replica } = await call('POST', '/workers/register', { agent: 'bench', maxConcurrency: 64 });
    while (!stop) {
      const { assignments } = await call('POST', `/workers/${replica.id}/lease`, { max: 64, waitMs: 1000 });
      await Promise.all(assignments.map(async (a: { assignmentId: string }) => {
        await call('POST', `/assignments/${a.assignmentId}/complete`, { replicaId: replica.id, result: { ok: true } });
        completed++;
        lastCompletion = performance.now();
        if (completed === TASKS) done();
      }));
    }
  };
  const workers = calls.flatMap((c) => (calls.length === 1 ? [worker(c), worker(c)] : [worker(c)]));
  const input = { payload: 'x'.repeat(160), n: 0 };
  let next = 0;
  const started = performance.now();
  let submitted = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, lane) => {
    const submit = calls[lane % calls.length]!;
    while (next < TASKS) {
      next++;
      await submit('POST', '/tasks', { agent: 'bench', input });
      submitted++;
    }
  }));
  const submitEnd = performance.now();
  await allDone;
  stop = true;
  await Promise.all(workers);
  const seconds = (lastCompletion - started) / 1000;
  return { tasks: TASKS, submitted, inFlight: IN_FLIGHT, submitPerSecond: Math.round(TASKS / ((submitEnd - started) / 1000)), endToEndPerSecond: Math.round(TASKS / seconds), wallSeconds: Number(seconds.toFixed(2)) };
}

async function latency(calls: Call[]) {
  const call = calls[0]!;
  const submitOn = calls[calls.length > 1 ? 1 : 0]!;
  // An idle worker that always has a lease request open: completions go out without
  // holding up the next lease, so the probe measures submit → lease, not worker throughput.
  await call('POST', '/agents', { name: 'latency', maxConcurrency: 16 });
  const { replica } = await call('POST', '/workers/register', { agent: 'latency', maxConcurrency: 16 });
  const completing = new Set<Promise<unknown>>();
  const samples: number[] = [];
  const sentAt = new Map<number, number>();
  let stop = false;
  const worker = (async () => {
    while (!stop) {
      const { assignments } = await call('POST', `/workers/${replica.id}/lease`, { max: 16, waitMs: 500 });
      const now = performance.now();
      for (const a of assignments as Array<{ assignmentId: string; task: { input: { i: number } } }>) {
        samples.push(now - sentAt.get(a.task.input.i)!);
        const done = call('POST', `/assignments/${a.assignmentId}/complete`, { replicaId: replica.id, result: null });
        completing.add(done);
        void done.finally(() => completing.delete(done));
      }
    }
    await Promise.all(completing);
  })();
  const interval = 1000 / RATE;
  const start = performance.now();
  for (let i = 0; i < LATENCY_TASKS; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(i, performance.now());
    await submitOn('POST', '/tasks', { agent: 'latency', input: { i } });
  }
  while (samples.length < LATENCY_TASKS) await new Promise((r) => setTimeout(r, 20));
  stop = true;
  await worker;
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x: number) => Number(x.toFixed(2));
  return { tasks: LATENCY_TASKS, ratePerSecond: RATE, p50Ms: round(percentile(sorted, 50)), p95Ms: round(percentile(sorted, 95)), p99Ms: round(percentile(sorted, 99)), maxMs: round(sorted[sorted.length - 1]!) };
}

const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
let database = join(dir, 'bench.db');
let dropDatabase = async () => {};
if (STORE === 'postgres') {
  const name = `flotilla_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN);
  url.pathname = `/${name}`;
  database = url.toString();
  dropDatabase = async () => {
    const c = new pg.Client({ connectionString: PG_ADMIN });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  };
}
if (STORE === 'sqlite' && NODES > 1) throw new Error('several nodes need --store postgres');
// The first node migrates; the others start on the migrated database.
const servers = [await startServer(database)];
servers.push(...await Promise.all(Array.from({ length: NODES - 1 }, () => startServer(database))));
try {
  const calls = servers.map((s) => client(s.url));
  log(`${NODES} node(s) ${servers.map((s) => s.url).join(', ')}, store: ${STORE === 'sqlite' ? `SQLite (WAL, synchronous=FULL) in ${dir}` : 'PostgreSQL (fresh database)'}`);
  const t = await throughput(calls);
  log('throughput', t);
  const l = await latency(calls);
  log('latency', l);
  const result = { at: new Date().toISOString(), node: process.version, store: STORE, nodes: NODES, throughput: t, latency: l };
  const outDir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `e2e-${STORE}-${NODES}n-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  log(`written ${file}`);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await dropDatabase();
  rmSync(dir, { recursive: true, force: true });
}
