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
  workloads: Array<'w1' | 'w2'>;
  /** Requested SDK client transport (undefined: the best the client offers). */
  transport: string | undefined;
  smoke: boolean;
  /** Where the JSON goes; default bench/results/<timestamp>.json. */
  out: string | undefined;
  /** Write CPU profiles of the server and load processes here. */
  profile: string | undefined;
}

export const USAGE = `npm run bench -- [--store sqlite|postgres|both] [--runs N] [--tasks N] [--latency-tasks N]
                    [--rate N] [--only w1|w2] [--transport websocket|http] [--smoke] [--out FILE] [--profile DIR]`;

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, not ${value}`);
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
  if (values.only !== undefined && !['w1', 'w2'].includes(values.only)) throw new Error(`--only must be w1 or w2, not ${values.only}`);
  if (values.transport !== undefined && !['websocket', 'http'].includes(values.transport)) throw new Error(`--transport must be websocket or http, not ${values.transport}`);
  return {
    stores: store === 'both' ? ['sqlite', 'postgres'] : [store as Store],
    runs: positiveInt('runs', values.runs ?? (smoke ? '1' : '3')),
    tasks: positiveInt('tasks', values.tasks ?? (smoke ? '300' : '20000')),
    latencyTasks: positiveInt('latency-tasks', values['latency-tasks'] ?? (smoke ? '100' : '2000')),
    rate: positiveInt('rate', values.rate ?? (smoke ? '100' : '200')),
    workloads: values.only === undefined ? ['w1', 'w2'] : [values.only as 'w1' | 'w2'],
    transport: values.transport,
    smoke,
    out: values.out,
    profile: values.profile,
  };
}
