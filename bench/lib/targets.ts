// The figures the table shows: each metric, the targets per store from the hot-path issue
// (issue 13; the server's peak RSS in W1 under 250 MB on both), and the competitors' figures
// that issue quotes (for reference; measured elsewhere).

import type { Store } from './server.ts';

export type MetricKey = 'submitPerSecond' | 'bulkSubmitPerSecond' | 'drainPerSecond' | 'wallSeconds' | 'p50Ms' | 'p95Ms' | 'p99Ms' | 'maxMs'
  | 'w1ServerPeakRssMB' | 'w2ServerPeakRssMB';

export interface Metric {
  key: MetricKey;
  workload: 'w1' | 'w2';
  /** The run's property holding the figure, where it is not `key` (a figure both workloads have). */
  field?: string;
  label: string;
  unit: 'tasks/s' | 's' | 'ms' | 'MB';
}

export const METRICS: readonly Metric[] = [
  { key: 'submitPerSecond', workload: 'w1', label: 'W1 submit, one per call', unit: 'tasks/s' },
  { key: 'bulkSubmitPerSecond', workload: 'w1', label: 'W1 bulk submit (submitMany)', unit: 'tasks/s' },
  { key: 'drainPerSecond', workload: 'w1', label: 'W1 drain', unit: 'tasks/s' },
  { key: 'wallSeconds', workload: 'w1', label: 'W1 wall time', unit: 's' },
  { key: 'p50Ms', workload: 'w2', label: 'W2 submit → handler p50', unit: 'ms' },
  { key: 'p95Ms', workload: 'w2', label: 'W2 p95', unit: 'ms' },
  { key: 'p99Ms', workload: 'w2', label: 'W2 p99', unit: 'ms' },
  { key: 'maxMs', workload: 'w2', label: 'W2 max', unit: 'ms' },
  { key: 'w1ServerPeakRssMB', workload: 'w1', field: 'serverPeakRssMB', label: 'W1 server peak RSS', unit: 'MB' },
  { key: 'w2ServerPeakRssMB', workload: 'w2', field: 'serverPeakRssMB', label: 'W2 server peak RSS', unit: 'MB' },
];

export interface Target {
  op: '>=' | '<=';
  value: number;
}

export const TARGETS: Record<Store, Partial<Record<MetricKey, Target>>> = {
  // Issue 13's targets: each ahead of the best peer in its row, measured on this machine kind.
  sqlite: {
    submitPerSecond: { op: '>=', value: 35_000 },
    bulkSubmitPerSecond: { op: '>=', value: 60_000 },
    drainPerSecond: { op: '>=', value: 30_000 },
    p50Ms: { op: '<=', value: 0.6 },
    p99Ms: { op: '<=', value: 1.8 },
    w1ServerPeakRssMB: { op: '<=', value: 250 },
  },
  postgres: {
    submitPerSecond: { op: '>=', value: 10_000 },
    bulkSubmitPerSecond: { op: '>=', value: 50_000 },
    drainPerSecond: { op: '>=', value: 30_000 },
    p50Ms: { op: '<=', value: 1.0 },
    p99Ms: { op: '<=', value: 2.4 },
    w1ServerPeakRssMB: { op: '<=', value: 250 },
  },
};

export function meets(target: Target, value: number): boolean {
  return target.op === '>=' ? value >= target.value : value <= target.value;
}

/**
 * As issue 13 quotes them (measured side by side on this machine kind, 3-run medians, one
 * producer and one worker process; graphile-worker with batched jobs): submit one per call,
 * bulk, drain (tasks/s), W2 p50 and p99 (ms). For reference; this bench does not run them.
 */
export const COMPETITORS: Record<string, Partial<Record<MetricKey, string>>> = {
  BullMQ: { submitPerSecond: '26,800', bulkSubmitPerSecond: '25,600', drainPerSecond: '15,000', p50Ms: '0.84', p99Ms: '2.95' },
  'pg-boss': { submitPerSecond: '1,340', bulkSubmitPerSecond: '39,300', drainPerSecond: '14,000', p50Ms: '2.70', p99Ms: '9.71' },
  'graphile-worker': { submitPerSecond: '1,340', bulkSubmitPerSecond: '48,400', drainPerSecond: '23,000', p50Ms: '2.13', p99Ms: '8.23' },
};

export const STORE_LABEL: Record<Store, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };
