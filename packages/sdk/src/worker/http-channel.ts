// The HTTP lease protocol (docs/protocol.md, part 1): one long-poll lease request open
// while there are free slots, so work arrives as soon as it is dispatched, without polling.
// For runtimes without WebSocket, and the reference for workers in other languages.
//
// Reports: a body above the limit the server announced (`maxMessageBytes`) is not sent (the
// worker fails the attempt instead); one refused with 413 is treated the same way. A report
// refused with a 5xx, or lost to a network error, is sent again with backoff while the
// attempt's lease may still be live (channel.ts, deliver), until giveUp(). The reports of
// one turn go together as one batch request where the server takes them (http-reports.ts).

import { FlotillaApiError, FlotillaNetworkError, isFlotillaError } from '../client/errors.ts';
import type { Transport } from '../client/transport.ts';
import type { LeasedTask } from '../wire.ts';
import {
  appliedBefore, deliver, kindForStatus, Leases, SizeLimit, utf8Length,
  type BeatResult, type ChannelHooks, type HealthReport, type Logger, type Registration, type ReportOp, type ReportOutcome, type ReportTry, type WorkerChannel,
} from './channel.ts';
import { HttpReports } from './http-reports.ts';

export interface HttpChannelOptions {
  transport: Transport;
  agent: string;
  concurrency: number;
  replicaId: string | null;
  site: string | undefined;
  leaseWaitMs: number;
  log: Logger;
}

const FATAL = ['UNKNOWN_AGENT', 'UNAUTHENTICATED', 'FORBIDDEN'];
/** Answers that say nothing about the report itself: try it again (429 too, after its Retry-After). */
const RETRY_STATUSES = [429, 500, 502, 503, 504];

export class HttpChannel implements WorkerChannel {
  readonly kind = 'http';
  readonly #o: HttpChannelOptions;
  #hooks: ChannelHooks | null = null;
  #replicaId: string | null;
  #loop: Promise<void> | null = null;
  #stopping = false;
  #leaseAbort: AbortController | null = null;
  #slotFreed: (() => void) | null = null;
  readonly #size = new SizeLimit();
  readonly #leases = new Leases();
  readonly #reports: HttpReports;
  /** The drain's time is up (giveUp) or the channel closed: reports stop being retried. */
  #gaveUp = false;
  readonly #stopRetrying: Promise<void>;
  #markStopRetrying!: () => void;

  constructor(options: HttpChannelOptions) {
    this.#o = options;
    this.#replicaId = options.replicaId;
    this.#stopRetrying = new Promise((resolve) => (this.#markStopRetrying = resolve));
    this.#reports = new HttpReports({ transport: options.transport, size: this.#size, log: options.log, replicaId: () => this.#replicaId });
  }

  async open(hooks: ChannelHooks): Promise<Registration> {
    this.#hooks = hooks;
    const registration = await this.#register();
    this.#loop = this.#run();
    return registration;
  }

  async #register(): Promise<Registration> {
    const body = {
      agent: this.#o.agent,
      maxConcurrency: this.#o.concurrency,
      ...(this.#replicaId ? { replicaId: this.#replicaId } : {}),
      ...(this.#o.site ? { site: this.#o.site } : {}),
    };
    // Re-registering with the same id is harmless, so it may be resent after a failure.
    const res = await this.#o.transport.request<{ replica: { id: string }; heartbeatIntervalMs: number; leaseMs?: number; maxMessageBytes?: number; maxBatchItems?: number }>('POST', '/workers/register', { body, idempotent: this.#replicaId !== null });
    this.#replicaId = res.replica.id;
    this.#size.announce(res.maxMessageBytes);
    this.#reports.announce(res.maxBatchItems);
    if (typeof res.leaseMs === 'number' && res.leaseMs > 0) this.#leases.leaseMs = res.leaseMs;
    return { replicaId: res.replica.id, heartbeatIntervalMs: res.heartbeatIntervalMs };
  }

  async #run(): Promise<void> {
    const hooks = this.#hooks!;
    let backoff = 100;
    while (!this.#stopping) {
      const free = hooks.freeSlots();
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        this.#slotFreed = null;
        continue;
      }
      try {
        this.#leaseAbort = new AbortController();
        const res = await this.#o.transport.request<{ assignments: LeasedTask[] }>('POST', `/workers/${this.#replicaId}/lease`, {
          body: { max: free, waitMs: this.#o.leaseWaitMs },
          idempotent: false,
          timeoutMs: this.#o.leaseWaitMs + 10_000,
          signal: this.#leaseAbort.signal,
        });
        backoff = 100;
        for (const a of res.assignments) this.#leases.renewed(a.assignmentId);
        if (res.assignments.length > 0) hooks.assign(res.assignments);
      } catch (err) {
        if (this.#stopping) break;
        if (isFlotillaError(err, 'REPLICA_NOT_LIVE') || isFlotillaError(err, 'REPLICA_NOT_FOUND')) {
          await this.#register().catch((e: unknown) => this.#o.log('warn', 're-registration failed', { error: String(e) }));
          continue;
        }
        const code = (err as FlotillaApiError).code;
        if (typeof code === 'string' && FATAL.includes(code)) {
          this.#stopping = true;
          hooks.fatal(code, (err as Error).message);
          break;
        }
        this.#o.log('warn', 'lease failed; retrying', { error: String(err), inMs: backoff });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(5_000, backoff * 2);
      }
    }
  }

  slotFreed(): void {
    this.#slotFreed?.();
  }

  async drain(): Promise<void> {
    this.#stopping = true;
    this.#leaseAbort?.abort();
    this.#slotFreed?.();
    await this.#loop;
  }

  async report(op: ReportOp, assignmentId: string, body: Record<string, unknown>): Promise<ReportOutcome> {
    const path = `/assignments/${assignmentId}/${op}`;
    // The size checked is the report's own route's body (a batch carries at most that much of it).
    const payload = { replicaId: this.#replicaId, ...body };
    // Exactly the bytes the transport sends (it serializes the body the same way).
    const bytes = utf8Length(JSON.stringify(payload));
    const tooLarge = this.#size.check(bytes);
    if (tooLarge) return { tooLarge };
    const outcome = await deliver({
      op, assignmentId, log: this.#o.log, leases: this.#leases,
      stopped: () => this.#gaveUp,
      stopping: this.#stopRetrying,
      send: async (): Promise<ReportTry> => {
        try {
          await this.#reports.post(op, assignmentId, body, false);
          if (op === 'start') this.#leases.renewed(assignmentId);
          return { outcome: 'ok' };
        } catch (err) {
          return this.#judge(op, path, bytes, err);
        }
      },
    });
    if (op !== 'start') this.#leases.forget(assignmentId);
    return outcome;
  }

  /** What a failed report call means: settled (and how), or worth another try. */
  #judge(op: ReportOp, path: string, bytes: number, err: unknown): ReportTry {
    if (isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED')) {
      if (appliedBefore(op, err.details)) return { outcome: 'ok' };
      this.#o.log('info', 'report not applied: the attempt was already ended', { path, details: err.details });
      return { outcome: 'superseded' };
    }
    if (isFlotillaError(err, 'PAYLOAD_TOO_LARGE')) {
      this.#o.log('warn', 'the server refused a report as too large (413)', { path, bytes });
      this.#size.refused(bytes);
      return { outcome: { tooLarge: { bytes, limit: this.#size.announced } } };
    }
    if (err instanceof FlotillaApiError && RETRY_STATUSES.includes(err.status)) {
      return { retry: `${err.status} ${err.code}: ${err.message}`, transient: err.status !== 500, retryAfterMs: err.retryAfterMs };
    }
    // It may or may not have been applied; a repeat that was says so (appliedBefore).
    if (err instanceof FlotillaNetworkError) return { retry: err.message, transient: true };
    // A 4xx about the report itself (or something unexpected): sending it again cannot help.
    this.#o.log('warn', 'report refused', { path, error: String(err) });
    return { outcome: 'failed' };
  }

  async progress(assignmentId: string, percent: number, message: string | undefined): Promise<{ cancelRequested: boolean } | 'superseded' | null> {
    const send = async (withMessage: boolean): Promise<{ cancelRequested: boolean } | 'superseded' | null | 'too_large'> => {
      const fields = { percent, ...(withMessage && message !== undefined ? { message } : {}) };
      if (this.#size.check(utf8Length(JSON.stringify({ replicaId: this.#replicaId, ...fields })))) return 'too_large';
      try {
        const res = await this.#reports.post<{ cancelRequested: boolean }>('progress', assignmentId, fields, true);
        this.#leases.renewed(assignmentId);
        return res;
      } catch (err) {
        if (isFlotillaError(err, 'PAYLOAD_TOO_LARGE')) return 'too_large';
        return isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED') ? 'superseded' : null;
      }
    };
    const res = await send(true);
    if (res !== 'too_large') return res;
    // Progress is worth sending without its message: it renews the lease, and says how far.
    this.#o.log('warn', 'progress message too large for the server; sent without it', { assignmentId, chars: message?.length, limit: this.#size.announced });
    const bare = message === undefined ? null : await send(false);
    return bare === 'too_large' ? null : bare;
  }

  async token(assignmentId: string): Promise<string> {
    const res = await this.#o.transport.request<{ token: string }>('POST', `/assignments/${assignmentId}/token`, { body: { replicaId: this.#replicaId }, idempotent: true });
    return res.token;
  }

  async heartbeat(assignmentIds: string[], health: HealthReport | null = null): Promise<BeatResult> {
    const result: BeatResult = { cancelRequested: [], ended: [] };
    this.#leases.retain(this.#hooks?.held() ?? assignmentIds);
    if (assignmentIds.length === 0 || health !== null) {
      // Keeps the replica seen while it holds nothing and has no lease request open, and says its health.
      await this.#o.transport.request('POST', `/workers/${this.#replicaId}/heartbeat`, { idempotent: true, ...(health === null ? {} : { body: health }) }).catch(() => {});
      if (assignmentIds.length === 0) return result;
    }
    await Promise.all(assignmentIds.map(async (assignmentId) => {
      try {
        const res = await this.#reports.post<{ cancelRequested: boolean }>('heartbeat', assignmentId, {}, true);
        this.#leases.renewed(assignmentId);
        if (res.cancelRequested) result.cancelRequested.push(assignmentId);
      } catch (err) {
        if (isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED')) {
          result.ended.push({ assignmentId, kind: kindForStatus((err.details as { assignmentStatus?: unknown } | undefined)?.assignmentStatus) });
        } else if (isFlotillaError(err, 'ASSIGNMENT_NOT_FOUND')) {
          result.ended.push({ assignmentId, kind: 'lease_lost' });
        }
        // Network errors: keep working; the next beat may get through before the lease lapses.
      }
    }));
    return result;
  }

  giveUp(): void {
    // Reports being retried stop at their next try (each call has its own timeout).
    this.#gaveUp = true;
    this.#markStopRetrying();
  }

  async close(): Promise<void> {
    this.giveUp();
    await this.drain();
    if (this.#replicaId) {
      await this.#o.transport.request('POST', `/workers/${this.#replicaId}/deregister`, { idempotent: true }).catch(() => {});
    }
  }
}
