// What W3's parts are given (bench/workloads/w3.ts), and what they share.

import os from 'node:os';
import type { ClientTransport } from '../../lib/client.ts';
import { startServerOn, type BenchServer, type BenchStore } from '../../lib/server.ts';
import type { W2Settings } from '../w2.ts';

export interface W3Settings {
  /** Deep queue: pending tasks seeded over 100 agents (0: the part is skipped). */
  pending: number;
  /** History: finished tasks seeded (0: skipped). */
  history: number;
  /** Idle fleet: idle connected workers and live event subscribers (both 0: skipped). */
  idleWorkers: number;
  subscribers: number;
  /** PostgreSQL nodes sharing one database, compared with one (1 or less: skipped). */
  nodes: number;
  /** Tasks each drain runs, and the history part submits: the W1 size. */
  tasks: number;
  inFlight: number;
  concurrency: number;
  inputBytes: number;
  transport: ClientTransport;
  /** The idle fleet's latency workload. */
  w2: W2Settings;
}

/** A server on millions of rows may take longer to start than one on a fresh store. */
const SEEDED_START_TIMEOUT_MS = 300_000;

/** A server on a seeded store, and how long it took to listen (s). */
export async function startSeeded(store: BenchStore): Promise<{ server: BenchServer; startSeconds: number }> {
  const t0 = performance.now();
  const server = await startServerOn(store, { startTimeoutMs: SEEDED_START_TIMEOUT_MS });
  return { server, startSeconds: (performance.now() - t0) / 1000 };
}

export const count = (n: number): string => n.toLocaleString('en-US');

/** Cost per task (µs) of a rate (tasks/s). */
export const usPerTask = (perSecond: number): number => 1e6 / perSecond;

/** The machine's 1-minute load average now: a control and its case compare only on a machine equally busy. */
export const loadNow = (): number => os.loadavg()[0]!;
