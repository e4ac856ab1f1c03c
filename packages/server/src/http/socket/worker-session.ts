// One worker's WebSocket connection (docs/protocol.md, part 2). The worker says `hello`
// (register, and list what it still holds), then the server pushes assignments whenever the
// replica has free slots, and pushes cancellations and revocations as they happen; the
// worker's reports are request/reply messages over the same socket.
//
// Invariants:
// - Nothing but `hello` is handled before `hello` has succeeded; a second `hello` is refused.
// - The welcome reply is sent before the first `assign` push (the standing lease is opened
//   after the reply is written).
// - Reports about one assignment are applied in the order they were sent; reports about
//   different assignments run concurrently (so they share group commits).
// - Closing the socket never ends an attempt by itself: leases run on, and a reconnecting
//   worker keeps them by listing them in its next `hello`.
// - Every reply carries the `status` its HTTP twin would answer with (an error's: its code's),
//   and an op's `result` is its HTTP twin's body (docs/decisions.md 36): a caller gets the
//   same answer whichever transport it uses.
// - Each item of a `batch` frame is handled exactly as the same message arriving alone (the
//   same path: validation, permission, hello, ordering, in-flight count, audit), in order;
//   an item refused never affects another. Only a frame malformed as a whole is refused as one.
// - Frames leave in the order they were written. Once the client has sent a `batch` frame
//   (so it reads `replies` frames), the replies written in one event-loop turn leave as one
//   `replies` frame; a client that never sends one gets one frame per reply, as always.

import { ERROR_STATUS, type ErrorCode, type Json, type LeasedTask, type ReplicaHealth, type TaskSpec } from '@flotilla/sdk';
import type { ValidateFunction } from 'ajv';
import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import { FlotillaError } from '../../core/errors.ts';
import { inadmissibleJson } from '../../core/json-limits.ts';
import type { Engine } from '../../engine/engine.ts';
import { actionRefusal, type Action, type Principal } from '../../core/permissions.ts';
import { toIso } from '../../engine/time.ts';
import { BATCH_OPS, MAX_BATCH_ITEMS, type SocketOp } from '../../schemas/schemas.ts';
import { issuedTokenView, replicaView, submittedTaskView, taskDetailView, taskView } from '../views.ts';
import { outcomeOf } from '../audit-hook.ts';
import { heartbeatInterval, PROTOCOL_VERSION } from '../protocol.ts';
import { rateLimitedMessage, type RateLimiter } from '../rate-limit.ts';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from '../error-handler.ts';
import { flowFields, type ReportFields } from '../reports.ts';

/** Close codes the server uses (4000–4999 are the application's). */
export const CLOSE = {
  /** The server is stopping or restarting: reconnect (with backoff), possibly to another node. */
  serviceRestart: 1012,
  /** Binary frame: the protocol is JSON text. */
  unsupportedData: 1003,
  /** The replica is no longer live (declared lost, deregistered, or its agent deleted): say hello again. */
  replicaNotLive: 4001,
  /** A newer connection said hello with the same replica id. */
  replaced: 4002,
  /** No pong to two pings in a row. */
  unresponsive: 4003,
  /** The key or token the connection was opened with is no longer valid (revoked, expired). */
  unauthenticated: 4004,
  /** Too many requests without replies, or replies the client does not read. */
  overloaded: 1008,
} as const;

/** Requests being handled at once on one socket; beyond this the client is not waiting for replies. */
const MAX_IN_FLIGHT = 1_000;
const startsBeingWritten = new Map<string, Promise<void>>();
/** Replies queued for a client that does not read them. */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** The ops of requests (a `batch` frame is not one: its items are). */
type RequestOp = Exclude<SocketOp, 'batch'>;
type Message = { op: RequestOp; id: number | string } & Record<string, unknown>;

/** What an op answers: the status and body its HTTP twin would answer with. */
interface Answer { status: number; result: unknown }
const ok = (result: unknown = { ok: true }, status = 200): Answer => ({ status, result });

/** What each op requires (as the route table does for HTTP); worker ops also need a hello first. */
const OP_ACTIONS: Record<RequestOp, Action> = {
  hello: 'worker.work', start: 'worker.work', heartbeat: 'worker.work', progress: 'worker.work', complete: 'worker.work',
  fail: 'worker.work', cancelled: 'worker.work', wait: 'worker.work', ask: 'worker.work', token: 'worker.work', drain: 'worker.work',
  submit: 'task.submit', submitMany: 'task.submit', get: 'task.read', cancel: 'task.cancel',
};
const CLIENT_OPS = new Set<SocketOp>(['submit', 'submitMany', 'get', 'cancel']);
const BATCHED_OPS = new Set<unknown>(BATCH_OPS);
type Validators = Record<SocketOp, ValidateFunction>;

export interface SessionHub {
  /** False when a newer registration of the replica is already attached: this one must go. */
  attach(replicaId: string, session: WorkerSession): boolean;
  detach(replicaId: string, session: WorkerSession): void;
}

export class WorkerSession {
  readonly #socket: WebSocket;
  readonly #engine: Engine;
  readonly #principal: Principal;
  readonly #validators: Validators;
  readonly #hub: SessionHub;
  readonly #log: FastifyBaseLogger;
  readonly #source: string | null;
  #replicaId: string | null = null;
  #hello: Promise<void> | null = null;
  #closeLease: (() => void) | null = null;
  #chains = new Map<string, Promise<void>>();
  #pinger: NodeJS.Timeout | null = null;
  #missedPongs = 0;
  #closed = false;
  #inFlight = 0;
  #connectedSeq = 0;
  #draining = false;
  readonly #reauthenticate: () => Promise<Principal | null>;
  readonly #rateLimiter: RateLimiter;
  /** The client has sent a `batch` frame, so it reads `replies` frames: replies are coalesced. */
  #coalesce = false;
  /** Replies written this turn and not sent yet (serialized), while coalescing. */
  #queued: string[] = [];
  #flushScheduled = false;

  constructor(params: {
    socket: WebSocket; engine: Engine; principal: Principal; validators: Validators; hub: SessionHub; log: FastifyBaseLogger;
    source?: string; reauthenticate: () => Promise<Principal | null>; rateLimiter: RateLimiter;
  }) {
    this.#rateLimiter = params.rateLimiter;
    this.#source = params.source ?? null;
    this.#reauthenticate = params.reauthenticate;
    this.#socket = params.socket;
    this.#engine = params.engine;
    this.#principal = params.principal;
    this.#validators = params.validators;
    this.#hub = params.hub;
    this.#log = params.log;
    this.#socket.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    this.#socket.on('pong', () => {
      this.#missedPongs = 0;
      if (this.#replicaId) this.#engine.workers.seen(this.#replicaId);
    });
    this.#socket.on('close', () => this.#onClose());
    // From the start, not from hello: a socket that never says hello is found dead too.
    this.#startPinging(heartbeatInterval(this.#engine.ctx.config.leaseMs, this.#engine.ctx.config.replicaTtlMs));
  }

  /** The seq of this connection's replica.connected event (0 before hello). */
  get connectedSeq(): number {
    return this.#connectedSeq;
  }

  get replicaId(): string | null {
    return this.#replicaId;
  }

  /** Sends a server-initiated message (after the replies written before it); false when the socket can no longer take it. */
  push(message: Record<string, unknown>): boolean {
    this.#flush();
    return this.#write(JSON.stringify(message));
  }

  #write(text: string): boolean {
    if (this.#closed || this.#socket.readyState !== this.#socket.OPEN) return false;
    if (this.#socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.close(CLOSE.overloaded, 'the client does not read its messages');
      return false;
    }
    this.#socket.send(text);
    return true;
  }

  /** A reply: sent at once, or (coalescing) with the others of this turn. */
  #sendReply(frame: Record<string, unknown>): void {
    if (!this.#coalesce) {
      this.push(frame);
      return;
    }
    this.#queued.push(JSON.stringify(frame));
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /**
   * Sends the queued replies, in order: one alone as it is, several as `{"replies":[…]}`
   * frames of at most MAX_BATCH_ITEMS replies and (unless one reply alone is larger) at most
   * the server's own frame limit, so a client whose limit mirrors the server's reads them.
   */
  #flush(): void {
    if (this.#queued.length === 0) return;
    const texts = this.#queued;
    this.#queued = [];
    const limit = this.#engine.ctx.config.bodyLimitBytes;
    const envelope = '{"replies":[]}'.length;
    let frame: string[] = [];
    let bytes = envelope;
    const send = () => {
      if (frame.length === 1) this.#write(frame[0]!);
      else if (frame.length > 1) this.#write(`{"replies":[${frame.join(',')}]}`);
      frame = [];
      bytes = envelope;
    };
    for (const text of texts) {
      const size = Buffer.byteLength(text) + (frame.length > 0 ? 1 : 0);
      if (frame.length > 0 && (frame.length >= MAX_BATCH_ITEMS || bytes + size > limit)) send();
      frame.push(text);
      bytes += size;
    }
    send();
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    // Replies written before the close leave before it, as they did when each left at once.
    this.#flush();
    this.#onClose();
    this.#socket.close(code, reason);
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    const replicaId = this.#replicaId;
    if (replicaId !== null) {
      // A reconnection of this replica (on this node) judges its attempts only once these
      // starts are written: one the worker started must count as started. Ops still running
      // (a start being checked) finish first, so their starts are written too.
      const written = Promise.all([...this.#chains.values()]).then(() => this.#engine.workers.flushStarts(replicaId)).then(() => {
        if (startsBeingWritten.get(replicaId) === written) startsBeingWritten.delete(replicaId);
      });
      startsBeingWritten.set(replicaId, written);
    }
    this.#closeLease?.();
    this.#closeLease = null;
    if (this.#pinger) clearInterval(this.#pinger);
    if (this.#replicaId) this.#hub.detach(this.#replicaId, this);
  }

  #reply(id: number | string | null, answer: Answer): void {
    this.#sendReply({ re: id, ok: true, status: answer.status, result: answer.result });
  }

  #replyError(id: number | string | null, code: ErrorCode, message: string, details?: unknown): void {
    this.#sendReply({ re: id, ok: false, status: ERROR_STATUS[code], error: { code, message, ...(details === undefined ? {} : { details }) } });
  }

  /** Refuses a message its schema does not admit; false when it is admitted. */
  #invalid(id: number | string | null, validate: ValidateFunction, message: unknown): boolean {
    if (validate(message)) return false;
    const first = validate.errors?.[0];
    const property = first?.keyword === 'additionalProperties' ? ` (${String((first.params as { additionalProperty?: string }).additionalProperty)})` : '';
    this.#replyError(id, 'VALIDATION_FAILED', `message${first?.instancePath ?? ''} ${first?.message ?? 'is invalid'}${property}`,
      validate.errors?.map((e) => ({ path: e.instancePath, message: e.message })));
    return true;
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) return this.close(CLOSE.unsupportedData, 'send JSON text frames');
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return this.#replyError(null, 'INVALID_JSON', 'the message is not valid JSON');
    }
    if ((message as { op?: unknown } | null)?.op === 'batch') return this.#onBatch(message);
    this.#onRequest(message, false);
  }

  /**
   * A `batch` frame: each item goes the way of a message arriving alone, in order. The frame
   * is answered under its own id only when it is refused as a whole (its list is missing,
   * empty, or longer than MAX_BATCH_ITEMS; its id or a field beside the list is wrong), and
   * then none of its items is handled; otherwise only the items are answered.
   */
  #onBatch(message: unknown): void {
    const raw = message as { id?: unknown; items?: unknown[] };
    const id = typeof raw.id === 'number' || typeof raw.id === 'string' ? raw.id : null;
    const problem = inadmissibleJson(raw.id);
    if (problem !== null) return this.#replyError(id, 'VALIDATION_FAILED', problem);
    if (this.#invalid(id, this.#validators.batch, message)) return;
    this.#coalesce = true;
    for (const item of raw.items!) {
      // Closed by an item (too many requests unanswered): the rest is dropped with the socket.
      if (this.#closed) return;
      this.#onRequest(item, true);
    }
  }

  /** One request, alone or as an item of a batch (which carries only BATCH_OPS). */
  #onRequest(message: unknown, inBatch: boolean): void {
    const raw = message as { op?: unknown; id?: unknown } | null;
    const id = typeof raw?.id === 'number' || typeof raw?.id === 'string' ? raw.id : null;
    // The same rule as for HTTP bodies (core/json-limits.ts), before anything reads the message.
    const problem = inadmissibleJson(message);
    if (problem !== null) return this.#replyError(id, 'VALIDATION_FAILED', problem);
    if (inBatch && !BATCHED_OPS.has(raw?.op)) {
      return this.#replyError(id, 'VALIDATION_FAILED', `a batch carries only the reports ${BATCH_OPS.join(', ')}; send ${JSON.stringify(raw?.op ?? null)} as a message of its own`);
    }
    const validate = typeof raw?.op === 'string' && raw.op !== 'batch' && Object.hasOwn(this.#validators, raw.op) ? this.#validators[raw.op as RequestOp] : null;
    if (!validate) {
      return this.#replyError(id, 'VALIDATION_FAILED', `unknown op ${JSON.stringify(raw?.op ?? null)}; expected one of ${Object.keys(this.#validators).join(', ')}`);
    }
    if (this.#invalid(id, validate, message)) return;
    const m = message as Message;
    const refusal = actionRefusal(this.#principal, OP_ACTIONS[m.op]);
    if (refusal !== null) {
      this.#audit(m, 403);
      return this.#replyError(m.id, refusal.code, refusal.message, refusal.details);
    }
    // Client ops take from the principal's one budget, as the HTTP requests they stand for do
    // (decision 26); worker ops do not (several per task; throttling them only lapses leases).
    if (CLIENT_OPS.has(m.op)) {
      const verdict = this.#rateLimiter.tryConsume(this.#principal.id);
      if (!verdict.ok) return this.#replyError(m.id, 'RATE_LIMITED', rateLimitedMessage(verdict.retryAfterMs), { retryAfterMs: verdict.retryAfterMs });
    }
    if (m.op === 'hello' && this.#hello) return this.#replyError(m.id, 'VALIDATION_FAILED', 'hello was already sent on this connection');
    if (m.op !== 'hello' && !CLIENT_OPS.has(m.op) && !this.#hello) return this.#replyError(m.id, 'NOT_REGISTERED', `send hello before "${m.op}"`);
    // Counted from arrival, queued or running: a client that does not wait for replies is cut off.
    if (this.#inFlight >= MAX_IN_FLIGHT) return this.close(CLOSE.overloaded, `more than ${MAX_IN_FLIGHT} requests without replies`);
    this.#inFlight++;
    if (CLIENT_OPS.has(m.op)) {
      void this.#handle(m);
      return;
    }
    if (m.op === 'hello') {
      this.#hello = this.#handle(m);
      return;
    }
    const key = typeof m.assignmentId === 'string' ? m.assignmentId : null;
    if (key) void this.#chain(key, () => this.#handle(m));
    else void (this.#hello ?? Promise.resolve()).then(() => this.#handle(m));
  }

  /** Runs `work` after everything queued before it for the same assignment (`work` never rejects). */
  #chain(key: string, work: () => Promise<void>): Promise<void> {
    const after = this.#chains.get(key) ?? this.#hello;
    const run = (after ?? Promise.resolve()).then(work);
    this.#chains.set(key, run);
    void run.then(() => {
      if (this.#chains.get(key) === run) this.#chains.delete(key);
    });
    return run;
  }

  /** Socket ops are audited like the HTTP requests they stand for (heartbeats, progress and reads are not). */
  #audit(m: Message, status: number): void {
    if ((m.op === 'heartbeat' || m.op === 'progress' || m.op === 'get') && status < 400) return;
    const p = this.#principal;
    this.#engine.audit.record({
      principalId: p.id, principalName: p.name, role: p.role, action: OP_ACTIONS[m.op],
      target: typeof m.assignmentId === 'string' ? `assignmentId:${m.assignmentId}` : typeof m.taskId === 'string' ? m.taskId : this.#replicaId ? `replicaId:${this.#replicaId}` : null,
      outcome: outcomeOf(status), status, requestId: null, source: this.#source, details: { route: `socket ${m.op}` },
    });
  }

  /** Runs one op and replies; never rejects. Ends the in-flight count taken when the op arrived. */
  async #handle(m: Message): Promise<void> {
    try {
      if (m.op !== 'hello' && !CLIENT_OPS.has(m.op) && this.#replicaId === null) {
        return this.#replyError(m.id, 'NOT_REGISTERED', `hello failed; send hello again on a new connection before "${m.op}"`);
      }
      const answer = await this.#dispatch(m);
      this.#audit(m, answer.status);
      this.#reply(m.id, answer);
      if (m.op === 'hello') this.#openLease();
    } catch (err) {
      if (m.op === 'hello') this.#hello = null;
      this.#audit(m, err instanceof FlotillaError ? ERROR_STATUS[err.code] : 500);
      if (err instanceof FlotillaError) {
        // What Retry-After says over HTTP: when to send a report again the store refused.
        const details = err.details ?? (ERROR_STATUS[err.code] === 503 ? { retryAfterMs: UNAVAILABLE_RETRY_AFTER_SECONDS * 1000 } : undefined);
        return this.#replyError(m.id, err.code, err.message, details);
      }
      this.#log.error({ err, op: m.op }, 'worker socket message failed');
      this.#replyError(m.id, 'INTERNAL', 'internal error; see the server log');
    } finally {
      this.#inFlight--;
    }
  }

  /** Runs one op; its answer is what the op's HTTP twin answers (the worker protocol's heartbeat and drain have none). */
  async #dispatch(m: Message): Promise<Answer> {
    const workers = this.#engine.workers;
    const p = this.#principal;
    const replicaId = this.#replicaId!;
    const assignmentId = m.assignmentId as string;
    switch (m.op) {
      case 'hello':
        return ok(await this.#helloOp(m), 201);
      case 'start':
        // Checked now, written by the engine later or not at all (engine/deferred-starts.ts).
        await workers.start(p, { assignmentId, replicaId });
        return ok();
      case 'heartbeat': {
        // Also the replica's liveness: a worker heartbeats even when it holds nothing.
        await workers.heartbeatReplica(p, replicaId, m.health === undefined ? null : { health: m.health as ReplicaHealth, ...(m.healthDetail === undefined ? {} : { healthDetail: m.healthDetail as Record<string, Json> }) });
        const renewed = await workers.renew(p, { replicaId, assignmentIds: m.assignmentIds as string[] });
        return ok({ leases: renewed.kept.map((k) => ({ ...k, leaseExpiresAt: toIso(k.leaseExpiresAt) })), ended: renewed.ended });
      }
      case 'progress': {
        const beat = await workers.heartbeat(p, { assignmentId, replicaId, percent: m.percent as number, ...(m.message === undefined ? {} : { message: m.message as string }) });
        return ok({ leaseExpiresAt: toIso(beat.leaseExpiresAt), cancelRequested: beat.cancelRequested });
      }
      case 'complete':
        await workers.complete(p, { assignmentId, replicaId, result: (m.result ?? null) as never, ...flowFields(m as ReportFields) });
        return ok();
      case 'fail':
        await workers.fail(p, { assignmentId, replicaId, error: m.error as never, retryable: (m.retryable as boolean | undefined) ?? true, ...flowFields(m as ReportFields) });
        return ok();
      case 'cancelled':
        await workers.acknowledgeCancel(p, { assignmentId, replicaId });
        return ok();
      case 'wait':
        await workers.wait(p, { assignmentId, replicaId, children: m.children as string[] });
        return ok();
      case 'ask':
        await workers.askInput(p, {
          assignmentId, replicaId, prompt: m.prompt as string, schema: (m.schema ?? null) as never, timeoutMs: (m.timeoutMs as number | undefined) ?? null,
        });
        return ok();
      case 'token':
        return ok(issuedTokenView(await workers.assignmentToken(p, { assignmentId, replicaId })), 201);
      // Client ops: the status and body of POST /tasks, POST /tasks/batch, GET /tasks/{id}
      // and POST /tasks/{id}/cancel (http/routes/tasks.ts), exactly.
      case 'submit': {
        const result = await this.#engine.tasks.submit(p, m.task as TaskSpec);
        return ok(submittedTaskView(result), result.created ? 201 : 200);
      }
      case 'submitMany': {
        const results = await this.#engine.tasks.submitMany(p, m.tasks as TaskSpec[]);
        return ok({ items: results.map((r) => ({ created: r.created, task: submittedTaskView(r) })) }, 201);
      }
      case 'get': {
        // As GET /tasks/:id: the tool domains it waits for, what flow control holds it by, its usage.
        return ok(taskDetailView(await this.#engine.tasks.get(p, m.taskId as string)));
      }
      case 'cancel':
        return ok(taskView(await this.#engine.tasks.cancel(p, m.taskId as string, {
          ...(m.reason !== undefined ? { reason: m.reason as string } : {}), ...(m.cascade !== undefined ? { cascade: m.cascade as boolean } : {}),
        })));
      case 'drain':
        this.#draining = true;
        this.#closeLease?.();
        this.#closeLease = null;
        return ok();
    }
  }

  async #helloOp(m: Message): Promise<unknown> {
    const workers = this.#engine.workers;
    const { leaseMs, replicaTtlMs } = this.#engine.ctx.config;
    const { replica, connectedSeq } = await workers.register(this.#principal, {
      agent: m.agent as string,
      ...(m.replicaId === undefined ? {} : { replicaId: m.replicaId as string }),
      ...(m.site === undefined ? {} : { site: m.site as string }),
      ...(m.maxConcurrency === undefined ? {} : { maxConcurrency: m.maxConcurrency as number }),
    });
    if (this.#closed) throw new FlotillaError('SHUTTING_DOWN', 'the connection closed during hello');
    this.#replicaId = replica.id;
    this.#connectedSeq = connectedSeq;
    if (!this.#hub.attach(replica.id, this)) {
      // A newer connection registered this replica while this hello was under way.
      this.close(CLOSE.replaced, 'a newer connection registered this replica');
      throw new FlotillaError('REPLICA_MISMATCH', 'a newer connection registered this replica');
    }
    await startsBeingWritten.get(replica.id);
    const held = await workers.reconcile(this.#principal, { replicaId: replica.id, held: (m.held as string[] | undefined) ?? [] });
    if (this.#closed) throw new FlotillaError('SHUTTING_DOWN', 'the connection closed during hello');
    if (m.drain === true) this.#draining = true;
    const heartbeatIntervalMs = heartbeatInterval(leaseMs, replicaTtlMs);
    return {
      protocolVersion: PROTOCOL_VERSION,
      replica: replicaView(replica),
      leaseMs,
      replicaTtlMs,
      heartbeatIntervalMs,
      // The largest frame this server reads (ws maxPayload): a worker checks a report against it before sending.
      maxMessageBytes: this.#engine.ctx.config.bodyLimitBytes,
      // This server reads `batch` frames of up to this many reports (a client sends them only then).
      maxBatchItems: MAX_BATCH_ITEMS,
      held: { kept: held.kept.map((k) => ({ ...k, leaseExpiresAt: toIso(k.leaseExpiresAt) })), ended: held.ended, released: held.released },
    };
  }

  /** The standing lease: assignments are pushed whenever the replica has free slots. */
  #openLease(): void {
    if (this.#closed || this.#replicaId === null || this.#draining) return;
    this.#closeLease = this.#engine.workers.standingLease(this.#principal, {
      replicaId: this.#replicaId,
      deliver: (assignments: LeasedTask[]) => this.push({ push: 'assign', assignments }),
      ended: () => this.close(CLOSE.replicaNotLive, 'the replica is no longer live; say hello again'),
    });
  }

  /**
   * Protocol-level pings find dead connections (two unanswered in a row close it); a pong
   * counts as the replica being seen. Each tick also checks the credentials again, so a
   * revoked or expired key or token stops a connected worker too.
   */
  #startPinging(intervalMs: number): void {
    if (this.#pinger) return;
    this.#pinger = setInterval(() => {
      if (this.#missedPongs >= 2) return this.close(CLOSE.unresponsive, 'no pong to two pings');
      this.#missedPongs++;
      this.#socket.ping();
      void this.#reauthenticate().then((principal) => {
        if (principal === null) this.close(CLOSE.unauthenticated, 'the credentials of this connection are no longer valid');
      }, () => {});
    }, intervalMs);
    this.#pinger.unref();
  }
}
