// Command-line flags of `npm run bench`. Explicit flags win over --smoke, which wins over
// the defaults.

import { parseArgs } from 'node:util';
import type { Store } from './server.ts';

export interface Settings {
  stores: Store[];
  runs: number;
  /** W1 task count (each of: one per call, bulk). */
  tasks: number;
  latencyTasks: number;
  rate: number;
  workloads: Workload[];
  /** W3's sizes (0 skips that part; see bench/workloads/w3.ts). */
  w3: { pending: number; history: number; idleWorkers: number; subscribers: number; nodes: number };
  /** Requested SDK client transport (undefined: the best the client offers). */
  transport: string | undefined;
  smoke: boolean;
  /** Where the JSON goes; default bench/results/<timestamp>.json. */
  out: string | undefined;
  /** Write CPU profiles of the server and load processes here. */
  profile: string | undefined;
}

export type Workload = 'w1' | 'w2' | 'w3';
const WORKLOADS: readonly Workload[] = ['w1', 'w2', 'w3'];

export const USAGE = `npm run bench -- [--store sqlite|postgres|both] [--runs N] [--tasks N] [--latency-tasks N]
                    [--rate N] [--only w1|w2|w3] [--transport websocket|http] [--smoke] [--out FILE] [--profile DIR]
                    [--w3-pending N] [--w3-history N] [--w3-idle-workers N] [--w3-subscribers N] [--w3-nodes N]`;

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, not ${value}`);
  return n;
}

function countOrZero(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, not ${value}`);
  return n;
}

export function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      store: { type: 'string' },
      runs: { type: 'string' },
      tasks: { type: 'string' },
      'latency-tasks': { type: 'string' },
      rate: { type: 'string' },
      only: { type: 'string' },
      transport: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      out: { type: 'string' },
      profile: { type: 'string' },
      'w3-pending': { type: 'string' },
      'w3-history': { type: 'string' },
      'w3-idle-workers': { type: 'string' },
      'w3-subscribers': { type: 'string' },
      'w3-nodes': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const smoke = values.smoke;
  const store = values.store ?? (smoke ? 'sqlite' : 'both');
  if (!['sqlite', 'postgres', 'both'].includes(store)) throw new Error(`--store must be sqlite, postgres or both, not ${store}`);
  if (values.only !== undefined && !(WORKLOADS as string[]).includes(values.only)) throw new Error(`--only must be w1, w2 or w3, not ${values.only}`);
  if (values.transport !== undefined && !['websocket', 'http'].includes(values.transport)) throw new Error(`--transport must be websocket or http, not ${values.transport}`);
  const tasks = positiveInt('tasks', values.tasks ?? (smoke ? '300' : '20000'));
  const w3 = {
    pending: countOrZero('w3-pending', values['w3-pending'] ?? (smoke ? '2000' : '1000000')),
    history: countOrZero('w3-history', values['w3-history'] ?? (smoke ? '2000' : '5000000')),
    idleWorkers: countOrZero('w3-idle-workers', values['w3-idle-workers'] ?? (smoke ? '20' : '1000')),
    subscribers: countOrZero('w3-subscribers', values['w3-subscribers'] ?? (smoke ? '5' : '200')),
    nodes: countOrZero('w3-nodes', values['w3-nodes'] ?? '3'),
  };
  // The deep queue drains `tasks` of its pending tasks.
  if (w3.pending > 0 && w3.pending < tasks) throw new Error(`--w3-pending (${w3.pending}) must be at least --tasks (${tasks}), or 0`);
  return {
    stores: store === 'both' ? ['sqlite', 'postgres'] : [store as Store],
    runs: positiveInt('runs', values.runs ?? (smoke ? '1' : '3')),
    tasks,
    latencyTasks: positiveInt('latency-tasks', values['latency-tasks'] ?? (smoke ? '100' : '2000')),
    rate: positiveInt('rate', values.rate ?? (smoke ? '100' : '200')),
    workloads: values.only === undefined ? [...WORKLOADS] : [values.only as Workload],
    w3,
    transport: values.transport,
    smoke,
    out: values.out,
    profile: values.profile,
  };
}
