// How a worker talks to the server: the WebSocket protocol (assignments pushed) or the HTTP
// lease protocol (a long-poll kept open). The worker runtime (worker.ts) runs handlers and
// does not care which; a channel registers, brings work, carries reports and heartbeats,
// and reconnects on its own.

import type { Json, LeasedTask, ReplicaHealth } from '../wire.ts';
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

/** The reports about one attempt; every one but `start` ends it (`wait` and `ask` suspend the task). */
/** What a worker's heartbeat may say of its replica (`WorkerOptions.health`). */
export interface HealthReport {
  health: ReplicaHealth;
  /** Anything worth showing beside it: cpu, memory (at most 4 KB as JSON). */
  healthDetail?: Record<string, Json>;
}

export type ReportOp = 'start' | 'complete' | 'fail' | 'cancelled' | 'wait' | 'ask';

/**
 * A report that was not delivered because it is larger than the server reads: refused
 * before sending (its size against the limit the server announced), or by the server
 * (413, or the socket closed with 1009). `limit` is null when the server did not say it.
 */
export interface TooLarge {
  tooLarge: { bytes: number; limit: number | null };
}

/**
 * What became of a report: applied, refused because the attempt is over, not delivered
 * (the channel gave up), or too large to send.
 */
export type ReportOutcome = 'ok' | 'superseded' | 'failed' | TooLarge;

export function isTooLarge(outcome: ReportOutcome): outcome is TooLarge {
  return typeof outcome === 'object';
}

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
  /**
   * Renews the leases of the assignments held; learns of cancellations and attempts the server
   * ended. `health`: what the replica says of itself (routing skips unhealthy replicas).
   */
  heartbeat(assignmentIds: string[], health?: HealthReport | null): Promise<BeatResult>;
  /** Leaves: deregisters (the HTTP channel) or closes the socket after draining. */
  close(): Promise<void>;
}

/**
 * Runs `fn` once this event-loop turn is over (every microtask of it run): where reports
 * written in one turn are sent together. setImmediate where the runtime has it (Node, Bun,
 * Deno), else a zero timeout. Not a microtask: the reports of one turn come in several waves
 * of microtasks (the starts of an `assign` push, then the completions of quick handlers), and
 * a microtask flush sends each wave on its own (measured: twice the frames, no less CPU).
 */
export function afterThisTurn(fn: () => void): void {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  if (immediate) immediate(fn);
  else setTimeout(fn, 0);
}

/**
 * The UTF-8 length of a string, counted without encoding it: what `Buffer.byteLength` and
 * `TextEncoder` give, and what the server measures a body or a frame by. (JSON.stringify
 * escapes lone surrogates, so its output has none; one would count as U+FFFD, 3 bytes.)
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * The largest message the server reads. `maxMessageBytes` comes with every registration (the
 * register answer, the socket's welcome); a server that does not announce one (older than the
 * field) gets no pre-check. A refusal by the server itself (413, 1009) teaches a bound too:
 * a message at least that big is not sent again.
 */
export class SizeLimit {
  #announced: number | null = null;
  #refusedAt = Infinity;

  get announced(): number | null {
    return this.#announced;
  }

  announce(limit: unknown): void {
    this.#announced = typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0 ? limit : null;
  }

  /** The server refused a message of this many bytes. */
  refused(bytes: number): void {
    this.#refusedAt = Math.min(this.#refusedAt, bytes);
  }

  /** Null when a message of `bytes` may be sent; otherwise why not. */
  check(bytes: number): TooLarge['tooLarge'] | null {
    if (this.#announced !== null && bytes > this.#announced) return { bytes, limit: this.#announced };
    if (bytes >= this.#refusedAt) return { bytes, limit: this.#announced };
    return null;
  }
}

/**
 * When each held attempt's lease runs out, as far as this worker knows: `leaseMs` from the
 * last time the server renewed it (the assignment arriving, `start`, a heartbeat or progress
 * answered). Measured on the worker's own clock, so clock skew does not matter.
 */
export class Leases {
  leaseMs = 30_000;
  readonly #renewedAt = new Map<string, number>();

  renewed(assignmentId: string, at = Date.now()): void {
    this.#renewedAt.set(assignmentId, at);
  }

  forget(assignmentId: string): void {
    this.#renewedAt.delete(assignmentId);
  }

  /** Drops the attempts the worker no longer has. */
  retain(held: string[]): void {
    if (this.#renewedAt.size <= held.length) return;
    const keep = new Set(held);
    for (const id of this.#renewedAt.keys()) if (!keep.has(id)) this.#renewedAt.delete(id);
  }

  /** When the lease lapses; for an attempt never seen renewed, `leaseMs` after `otherwiseFrom`. */
  expiresAt(assignmentId: string, otherwiseFrom: number): number {
    return (this.#renewedAt.get(assignmentId) ?? otherwiseFrom) + this.leaseMs;
  }
}

/**
 * Report retries (docs/protocol.md §5): capped, jittered exponential backoff, never sooner than
 * a `Retry-After`. A report is retried while the attempt's lease may still be live: until it
 * lapses as last renewed (heartbeats go on meanwhile and push that further), plus a grace, for
 * a store that comes back before its reaper has ended the attempt; at most MAX_MS in all.
 */
export const REPORT_RETRY = { baseMs: 250, capMs: 5_000, maxGraceMs: 10_000, maxMs: 10 * 60_000 } as const;

/**
 * One try of a report: its outcome, or why it should be tried again. `transient`: the server
 * or the way to it is unavailable (503, 429, a gateway's 502/504, the network), which may last
 * as long as heartbeats keep the lease; otherwise (500 INTERNAL) the same report may fail the
 * same way every time, and it is retried only within the lease as it stood at the first failure.
 */
export type ReportTry = { outcome: ReportOutcome } | { retry: string; transient: boolean; retryAfterMs?: number | undefined };

export interface DeliverParams {
  op: string;
  assignmentId: string;
  log: Logger;
  leases: Leases;
  /** True once retrying must stop: the drain's time is up (giveUp) or the channel closed. */
  stopped(): boolean;
  /** Resolves when `stopped()` becomes true (ends a wait between tries). */
  stopping: Promise<void>;
  send(): Promise<ReportTry>;
}

/** Sends a report, and again after a server error or a network failure, within the lease. */
export async function deliver(p: DeliverParams): Promise<ReportOutcome> {
  const firstAt = Date.now();
  let backoff: number = REPORT_RETRY.baseMs;
  /** For a failure that is not transient: the lease as it stood when the report first failed. */
  let fixedUntil: number | null = null;
  for (let tries = 1; ; tries++) {
    const t = await p.send();
    if ('outcome' in t) {
      if (tries > 1) {
        p.log(t.outcome === 'ok' ? 'info' : 'warn', t.outcome === 'ok' ? 'report delivered after retries' : 'report retried, then not applied',
          { op: p.op, assignmentId: p.assignmentId, tries, outcome: t.outcome });
      }
      return t.outcome;
    }
    const grace = Math.min(p.leases.leaseMs, REPORT_RETRY.maxGraceMs);
    const leaseUntil = p.leases.expiresAt(p.assignmentId, firstAt) + grace;
    if (!t.transient) fixedUntil ??= leaseUntil;
    const until = Math.min(t.transient ? leaseUntil : fixedUntil ?? leaseUntil, firstAt + REPORT_RETRY.maxMs);
    const remaining = until - Date.now();
    const retryAfter = t.retryAfterMs ?? 0;
    if (p.stopped() || remaining <= 0 || retryAfter > remaining) {
      p.log('warn', 'report not delivered; giving up', {
        op: p.op, assignmentId: p.assignmentId, error: t.retry, tries,
        why: p.stopped() ? 'the worker is stopping'
          : remaining <= 0 ? 'the attempt\'s lease has run out'
          : 'the server asks to wait longer than the attempt\'s lease lasts',
      });
      return 'failed';
    }
    const wait = Math.min(remaining, Math.max(retryAfter, backoff / 2 + Math.random() * (backoff / 2)));
    if (tries === 1) {
      p.log('warn', 'report refused; retrying with backoff while the attempt\'s lease lasts', { op: p.op, assignmentId: p.assignmentId, error: t.retry, untilMs: Math.round(remaining) });
    } else {
      p.log('debug', 'report retry', { op: p.op, assignmentId: p.assignmentId, error: t.retry, tries, inMs: Math.round(wait) });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, wait))), p.stopping]);
    clearTimeout(timer);
    backoff = Math.min(REPORT_RETRY.capMs, backoff * 2);
  }
}

/**
 * A refusal as superseded that means the report itself was applied earlier (a re-sent report
 * whose first copy got through but whose answer was lost, §5): `complete` finding the
 * attempt completed, `fail` finding it failed, `wait` or `ask` finding it suspended. Only this replica's reports end its attempts
 * that way.
 */
export function appliedBefore(op: ReportOp, details: unknown): boolean {
  const status = (details as { assignmentStatus?: unknown } | null | undefined)?.assignmentStatus;
  return (op === 'complete' && status === 'completed') || (op === 'fail' && status === 'failed')
    || ((op === 'wait' || op === 'ask') && status === 'suspended');
}

/** What an ended attempt's status means for its handler. */
export function kindForStatus(status: unknown): AbortKind {
  if (status === 'timed_out') return 'timeout';
  if (status === 'cancelled') return 'cancelled';
  return 'lease_lost';
}
