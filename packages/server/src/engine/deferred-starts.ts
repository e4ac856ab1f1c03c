// A worker's `start`, checked and acknowledged at once but written a little later, or not at
// all (decision 35, moved here from the WebSocket session so both transports behave alike).
//
// A quick task's final report usually arrives within a few milliseconds of its start; a
// `complete` or `fail` applies from `dispatched` as well as from `running`, so when it comes
// first the start needs no write of its own: for quick tasks a third of their writes. The
// start is still known from the moment it is acknowledged, and written when the window ends,
// when the replica's connection closes, or before the replica's attempts are judged at a
// reconnection, so an attempt whose worker died right after starting it is judged as started
// (lost, and counted), never as undelivered.
//
// Invariants:
// - A final report of an attempt (`settle`) first drops its pending start and waits for a
//   write of it already under way, so the report is decided after the start, as if the
//   start had been written when it arrived.
// - A progress report writes its attempt's pending start first, so `task.progress` never
//   comes before `task.started`.
// - A start is written at most once; a write that finds the attempt over is dropped quietly
//   (the worker learns of the end through its next report or a revoke push).

import type { Logger } from 'pino';
import { FlotillaError } from '../core/errors.ts';

/** How long an acknowledged start waits before it is written. */
export const START_WRITE_DELAY_MS = 10;

export interface PendingStart {
  replicaId: string;
  write: () => Promise<void>;
}

export class DeferredStarts {
  readonly #pending = new Map<string, PendingStart>();
  /** Writes under way, by assignment. */
  readonly #writing = new Map<string, { replicaId: string; done: Promise<void> }>();
  readonly #delayMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;

  constructor(params: { log: Logger; delayMs?: number }) {
    this.#log = params.log;
    this.#delayMs = params.delayMs ?? START_WRITE_DELAY_MS;
  }

  /** Remembers a checked start; `write` writes it (it may find the attempt over). */
  defer(assignmentId: string, replicaId: string, write: () => Promise<void>): void {
    if (this.#pending.has(assignmentId) || this.#writing.has(assignmentId)) return;
    this.#pending.set(assignmentId, { replicaId, write });
    if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        void this.flush();
      }, this.#delayMs);
      this.#timer.unref();
    }
  }

  /**
   * Before a final report of the attempt is decided: its pending start is not written (the
   * report stands for it), and a write of it already under way is waited for.
   */
  async settle(assignmentId: string): Promise<PendingStart | undefined> {
    const pending = this.#pending.get(assignmentId);
    this.#pending.delete(assignmentId);
    await this.#writing.get(assignmentId)?.done;
    return pending;
  }

  /** A report that settled a start was refused: the start is written after all. */
  restore(assignmentId: string, start: PendingStart): void {
    this.defer(assignmentId, start.replicaId, start.write);
  }

  /** Writes the attempt's start now if it is pending, and waits for it (progress must not overtake it). */
  async writeNow(assignmentId: string): Promise<void> {
    const start = this.#pending.get(assignmentId);
    if (start) this.#write(assignmentId, start);
    await this.#writing.get(assignmentId)?.done;
  }

  #write(assignmentId: string, start: PendingStart): void {
    this.#pending.delete(assignmentId);
    const done = start.write().catch((err: unknown) => {
      if (err instanceof FlotillaError && (err.code === 'ASSIGNMENT_SUPERSEDED' || err.code === 'ASSIGNMENT_NOT_FOUND')) return;
      this.#log.warn({ err, assignmentId }, 'writing a start failed');
    }).finally(() => this.#writing.delete(assignmentId));
    this.#writing.set(assignmentId, { replicaId: start.replicaId, done });
  }

  /** Writes the pending starts now (of one replica, or all), and waits for every write of them under way. */
  async flush(replicaId?: string): Promise<void> {
    for (const [assignmentId, start] of this.#pending) {
      if (replicaId === undefined || start.replicaId === replicaId) this.#write(assignmentId, start);
    }
    if (this.#pending.size === 0 && this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    await Promise.all([...this.#writing.values()].flatMap((w) => (replicaId === undefined || w.replicaId === replicaId ? [w.done] : [])));
  }
}
