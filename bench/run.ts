// `npm run bench`: Flotilla's benchmark (the issue's workloads W1 burst, W2 latency and W3
// how cost grows) on SQLite and PostgreSQL. Each run of each workload gets a fresh server on
// a fresh store (a temporary SQLite file; a new PostgreSQL database, dropped after); the
// submitter and the worker are separate processes (bench/processes/). Prints a table (median
// [min–max] over the runs, targets, competitors' figures, the server's peak RSS), then W3's
// table (each figure against its control run), and writes every run's raw figures as JSON
// to bench/results/<timestamp>.json. Fails when any submitted task did not complete.
// Definitions: bench/workloads/w1.ts, w2.ts, w3.ts and docs/performance.md.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSettings, USAGE } from './lib/args.ts';
import { setProfileDir } from './lib/profile.ts';
import { cleanupAll, installSignalHandlers, interrupted } from './lib/cleanup.ts';
import { chooseClientTransport, clientHasTransportOption } from './lib/client.ts';
import { gitInfo, machineInfo } from './lib/machine.ts';
import { PG_ADMIN_URL, postgresInfo } from './lib/postgres.ts';
import type { Store } from './lib/server.ts';
import { summarize } from './lib/stats.ts';
import { renderTable, type Summaries } from './lib/table.ts';
import { COMPETITORS, meets, METRICS, TARGETS } from './lib/targets.ts';
import { runW1, type W1Run, type W1Settings } from './workloads/w1.ts';
import { runW2, type W2Run, type W2Settings } from './workloads/w2.ts';
import { runW3, type W3Run, type W3Settings } from './workloads/w3.ts';
import { metOf, ratioOf, renderW3Table, type Figure } from './lib/w3-table.ts';

const IN_FLIGHT = 50;
const BATCH = 1_000;
const CONCURRENCY = 50;
const INPUT_BYTES = 200;

interface StoreResult {
  runs: Array<{ w1?: W1Run; w2?: W2Run }>;
  w3?: W3Run;
}

const mb = (x: number | null) => (x === null ? 'RSS n/a' : `${x.toFixed(1)} MB`);

async function main(): Promise<void> {
  let settings;
  try {
    settings = parseSettings(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  installSignalHandlers();
  setProfileDir(settings.profile);
  const transport = chooseClientTransport(settings.transport);
  const w1: W1Settings = { tasks: settings.tasks, inFlight: IN_FLIGHT, batch: BATCH, concurrency: CONCURRENCY, inputBytes: INPUT_BYTES, transport };
  const w2: W2Settings = { tasks: settings.latencyTasks, rate: settings.rate, concurrency: CONCURRENCY, inputBytes: INPUT_BYTES, transport };
  const w3: W3Settings = { ...settings.w3, tasks: settings.tasks, inFlight: IN_FLIGHT, concurrency: CONCURRENCY, inputBytes: INPUT_BYTES, transport, w2 };
  const runsW1W2 = settings.workloads.includes('w1') || settings.workloads.includes('w2');
  const startedAt = new Date();
  const machine = machineInfo();
  const postgres = settings.stores.includes('postgres') ? await postgresInfo() : null;
  console.log(`Flotilla bench: ${settings.stores.join(', ')}; ${settings.runs} run(s); ${settings.workloads.join(', ')}; client transport ${transport}`);
  console.log(`  W1 ${w1.tasks} tasks, ${IN_FLIGHT} in flight, bulk ${BATCH}/call, worker concurrency ${CONCURRENCY}; W2 ${w2.tasks} tasks at ${w2.rate}/s`);
  if (settings.workloads.includes('w3')) {
    const nodes = settings.stores.includes('postgres') ? `, ${w3.nodes} PostgreSQL nodes` : '';
    console.log(`  W3 once per store: ${w3.pending} pending, ${w3.history} finished in history, ${w3.idleWorkers} idle workers + ${w3.subscribers} subscribers${nodes}`);
  }
  console.log(`  ${machine.cpuCount} × ${machine.cpuModel}, node ${machine.node}, load ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`);

  const results: Partial<Record<Store, StoreResult>> = {};
  for (const store of settings.stores) {
    const r: StoreResult = { runs: [] };
    results[store] = r;
    for (let i = 0; runsW1W2 && i < settings.runs; i++) {
      const run: StoreResult['runs'][number] = {};
      if (settings.workloads.includes('w1')) {
        const x = await runW1(store, w1);
        run.w1 = x;
        console.log(`${store} run ${i + 1}: W1 submit ${Math.round(x.submitPerSecond)}/s, bulk ${Math.round(x.bulkSubmitPerSecond)}/s, drain ${Math.round(x.drainPerSecond)}/s, wall ${x.wallSeconds.toFixed(2)} s, server peak ${mb(x.serverPeakRssMB)}`);
      }
      if (settings.workloads.includes('w2')) {
        const x = await runW2(store, w2);
        run.w2 = x;
        console.log(`${store} run ${i + 1}: W2 p50 ${x.p50Ms.toFixed(2)} ms, p95 ${x.p95Ms.toFixed(2)}, p99 ${x.p99Ms.toFixed(2)}, max ${x.maxMs.toFixed(2)}, server peak ${mb(x.serverPeakRssMB)}`);
      }
      r.runs.push(run);
    }
    if (settings.workloads.includes('w3')) r.w3 = await runW3(store, w3, (line) => console.log(`${store} ${line}`));
  }

  const summaries: Summaries = {};
  const judged: Record<string, unknown> = {};
  for (const store of settings.stores) {
    const s: NonNullable<Summaries[Store]> = {};
    const marks: Record<string, unknown> = {};
    for (const m of METRICS) {
      const values = results[store]!.runs.flatMap((run) => {
        const value = run[m.workload] ? (run[m.workload] as unknown as Record<string, number | null>)[m.field ?? m.key] : null;
        return typeof value === 'number' ? [value] : [];
      });
      if (values.length === 0) continue;
      const summary = summarize(values);
      s[m.key] = summary;
      const t = TARGETS[store][m.key];
      if (t) marks[m.key] = { ...t, met: meets(t, summary.median) };
    }
    summaries[store] = s;
    judged[store] = marks;
  }

  const table = runsW1W2 ? renderTable(summaries, settings.stores, settings.runs, BATCH) : null;
  if (table) console.log(`\n${table}\n`);
  const w3Figures: Partial<Record<Store, Figure[]>> = {};
  for (const store of settings.stores) {
    const figures = results[store]!.w3?.figures;
    if (!figures) continue;
    w3Figures[store] = figures;
    (judged[store] as Record<string, unknown>).w3 = figures.filter((f) => f.maxRatio !== null).map((f) => ({ figure: f.figure, ratio: ratioOf(f), maxRatio: f.maxRatio, met: metOf(f) }));
  }
  const w3Table = Object.keys(w3Figures).length > 0 ? renderW3Table(w3Figures) : null;
  if (w3Table) console.log(`W3, how cost grows (each figure against its control run of this sitting):\n${w3Table}\n`);
  const finishedAt = new Date();
  const out = settings.out ?? join(fileURLToPath(new URL('./results/', import.meta.url)), `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    argv: process.argv.slice(2),
    settings: {
      ...settings,
      w1,
      w2,
      w3,
      clientTransport: transport,
      clientHasTransportOption: clientHasTransportOption(),
      durability: { sqlite: 'WAL, synchronous=FULL (server default)', postgres: postgres ? `synchronous_commit=${postgres.synchronousCommit}, fsync=${postgres.fsync}` : null },
      rateLimits: 'off (FLOTILLA_RATE_LIMIT_PER_SECOND=0, FLOTILLA_RATE_LIMIT_ANONYMOUS_PER_MINUTE=0)',
    },
    machine: { ...machine, loadAverageAtEnd: os.loadavg() },
    git: gitInfo(),
    postgres: postgres ? { ...postgres, adminUrl: PG_ADMIN_URL.replace(/(\/\/[^:@/]+):[^@/]*@/, '$1:***@') } : null,
    summary: summaries,
    targets: judged,
    competitors: COMPETITORS,
    table,
    w3Table,
    results,
  }, null, 2)}\n`);
  console.log(`written ${out}`);
}

try {
  await main();
} catch (err) {
  if (!interrupted()) console.error(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
