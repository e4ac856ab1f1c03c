// How a worker talks to the server: the WebSocket protocol (assignments pushed) or the HTTP
// lease protocol (a long-poll kept open). The worker runtime (worker.ts) runs handlers and
// does not care which; a channel registers, brings work, carries reports and heartbeats,
// and reconnects on its own.

import type { LeasedTask } from '../wire.ts';
import type { AbortKind } from './errors.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string, data?: Record<string, unknown>) => void;

export interface ChannelHooks {
  /** New assignments for this replica. */
  assign(tasks: LeasedTask[]): void;
  /** Someone cancelled the task: abort the handler, then report `cancelled`. */
  cancel(assignmentId: string): void;
  /** The server ended the attempt itself (timeout, lost lease): abort, report nothing. */
  revoke(assignmentId: string, kind: AbortKind): void;
  /** Slots currently free (the HTTP channel asks for at most this many). */
  freeSlots(): number;
  /** Assignments this process is still working on (listed when reconnecting). */
  held(): string[];
  /** The server refuses this worker for good (bad token, unknown agent): stop. */
  fatal(code: string, message: string): void;
}

export interface Registration {
  replicaId: string;
  heartbeatIntervalMs: number;
}

export type ReportOp = 'start' | 'complete' | 'fail' | 'cancelled';

/** What became of a report: applied, refused because the attempt is over, or not delivered. */
export type ReportOutcome = 'ok' | 'superseded' | 'failed';

export interface BeatResult {
  cancelRequested: string[];
  ended: Array<{ assignmentId: string; kind: AbortKind }>;
}

export interface WorkerChannel {
  readonly kind: 'websocket' | 'http';
  /** Registers and starts bringing work. Rejects when the first registration fails. */
  open(hooks: ChannelHooks): Promise<Registration>;
  /** A slot was freed (the HTTP channel opens a lease request). */
  slotFreed(): void;
  /** Stop taking new work; reports keep working (and wait for a reconnection) until giveUp(). */
  drain(): Promise<void>;
  /**
   * The drain's time is up: reports still waiting for a reconnection (or for an answer on a
   * connection that dropped) stop waiting and count as not delivered.
   */
  giveUp(): void;
  report(op: ReportOp, assignmentId: string, body: Record<string, unknown>): Promise<ReportOutcome>;
  progress(assignmentId: string, percent: number, message: string | undefined): Promise<{ cancelRequested: boolean } | 'superseded' | null>;
  /** A scoped token for the attempt's task tree (to submit children as the tree's owner). */
  token(assignmentId: string): Promise<string>;
  /** Renews the leases of the assignments held; learns of cancellations and attempts the server ended. */
  heartbeat(assignmentIds: string[]): Promise<BeatResult>;
  /** Leaves: deregisters (the HTTP channel) or closes the socket after draining. */
  close(): Promise<void>;
}

/** What an ended attempt's status means for its handler. */
export function kindForStatus(status: unknown): AbortKind {
  if (status === 'timed_out') return 'timeout';
  if (status === 'cancelled') return 'cancelled';
  return 'lease_lost';
}
