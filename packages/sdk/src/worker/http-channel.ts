// The HTTP lease protocol (docs/protocol.md, part 1): one long-poll lease request open
// while there are free slots, so work arrives as soon as it is dispatched, without polling.
// For runtimes without WebSocket, and the reference for workers in other languages.

import { isFlotillaError, type FlotillaApiError } from '../client/errors.ts';
import type { Transport } from '../client/transport.ts';
import type { LeasedTask } from '../wire.ts';
import { kindForStatus, type BeatResult, type ChannelHooks, type Logger, type Registration, type ReportOp, type ReportOutcome, type WorkerChannel } from './channel.ts';

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

export class HttpChannel implements WorkerChannel {
  readonly kind = 'http';
  readonly #o: HttpChannelOptions;
  #hooks: ChannelHooks | null = null;
  #replicaId: string | null;
  #loop: Promise<void> | null = null;
  #stopping = false;
  #leaseAbort: AbortController | null = null;
  #slotFreed: (() => void) | null = null;

  constructor(options: HttpChannelOptions) {
    this.#o = options;
    this.#replicaId = options.replicaId;
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
    const res = await this.#o.transport.request<{ replica: { id: string }; heartbeatIntervalMs: number }>('POST', '/workers/register', { body, idempotent: this.#replicaId !== null });
    this.#replicaId = res.replica.id;
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
    try {
      await this.#o.transport.request('POST', path, { body: { replicaId: this.#replicaId, ...body }, idempotent: false });
      return 'ok';
    } catch (err) {
      if (isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED')) {
        this.#o.log('info', 'report not applied: the attempt was already ended', { path, details: err.details });
        return 'superseded';
      }
      this.#o.log('warn', 'report failed', { path, error: String(err) });
      return 'failed';
    }
  }

  async progress(assignmentId: string, percent: number, message: string | undefined): Promise<{ cancelRequested: boolean } | 'superseded' | null> {
    try {
      return await this.#o.transport.request<{ cancelRequested: boolean }>('POST', `/assignments/${assignmentId}/progress`, {
        body: { replicaId: this.#replicaId, percent, ...(message !== undefined ? { message } : {}) }, idempotent: true,
      });
    } catch (err) {
      return isFlotillaError(err, 'ASSIGNMENT_SUPERSEDED') ? 'superseded' : null;
    }
  }

  async token(assignmentId: string): Promise<string> {
    const res = await this.#o.transport.request<{ token: string }>('POST', `/assignments/${assignmentId}/token`, { body: { replicaId: this.#replicaId }, idempotent: true });
    return res.token;
  }

  async heartbeat(assignmentIds: string[]): Promise<BeatResult> {
    const result: BeatResult = { cancelRequested: [], ended: [] };
    if (assignmentIds.length === 0) {
      // Keeps the replica seen while it holds nothing and has no lease request open.
      await this.#o.transport.request('POST', `/workers/${this.#replicaId}/heartbeat`, { idempotent: true }).catch(() => {});
      return result;
    }
    await Promise.all(assignmentIds.map(async (assignmentId) => {
      try {
        const res = await this.#o.transport.request<{ cancelRequested: boolean }>('POST', `/assignments/${assignmentId}/heartbeat`, {
          body: { replicaId: this.#replicaId }, idempotent: true,
        });
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
    // Each HTTP report has its own timeout and retries; nothing waits for a connection.
  }

  async close(): Promise<void> {
    await this.drain();
    if (this.#replicaId) {
      await this.#o.transport.request('POST', `/workers/${this.#replicaId}/deregister`, { idempotent: true }).catch(() => {});
    }
  }
}
