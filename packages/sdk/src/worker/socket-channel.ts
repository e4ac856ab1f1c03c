// The WebSocket worker protocol (docs/protocol.md, part 2): one socket per worker; the
// server pushes assignments whenever this replica has free slots, and pushes cancellations
// and revocations as they happen. Reports are request/reply messages.
//
// Reconnection: when the socket drops (server restart, node death, network), the channel
// reconnects with backoff, trying the configured URLs in turn, says `hello` again with the
// same replica id and the assignments still being worked on, and re-sends the reports that
// had no reply. Re-sending is safe: the server applies a report at most once and refuses
// one about an attempt that is over.
//
// Sizes: a message above the limit the welcome announces (`maxMessageBytes`) is never sent
// (the server would close the socket with 1009, and a re-sent report would close the next
// one too, for ever). Should the server close with 1009 anyway (it announced no limit), the
// largest unanswered message sent on that socket is the one it refused (it is at least as
// big): it is not sent again, and the report reads as too large.
//
// Retries: a report answered STORE_UNAVAILABLE, INTERNAL or SHUTTING_DOWN is sent again with
// backoff while the attempt's lease may still be live (channel.ts, deliver).
//
// Batches: to a server whose welcome announces `maxBatchItems`, the reports (start, complete,
// fail, cancelled, progress, heartbeat) written in one event-loop turn leave together at its
// end, as one `batch` frame (several if they exceed maxBatchItems or maxMessageBytes); a report
// alone leaves as a plain message. Each keeps its own id and reply (the server answers the
// items, possibly coalesced into `replies` frames), so retries, re-sending after a reconnect
// and size checks stay per report. Other messages (hello, token, drain) leave at once, after
// the reports written before them, so the order on the wire is the order written.

import { apiErrorFromReply, FlotillaApiError, FlotillaNetworkError } from '../client/errors.ts';
import { socketUrl, type Transport } from '../client/transport.ts';
import type { LeasedTask } from '../wire.ts';
import {
  afterThisTurn, appliedBefore, deliver, kindForStatus, Leases, SizeLimit, utf8Length,
  type BeatResult, type ChannelHooks, type HealthReport, type Logger, type Registration, type ReportOp, type ReportOutcome, type ReportTry, type WorkerChannel,
} from './channel.ts';

/** The constructor of a WHATWG WebSocket; Node's global one accepts `{ headers }` (undici). */
export type WebSocketConstructor = new (url: string, init?: { headers?: Record<string, string>; protocols?: string[] } | string[]) => WebSocket;

export interface SocketChannelOptions {
  urls: string[];
  token: string;
  transport: Transport;
  agent: string;
  concurrency: number;
  replicaId: string | null;
  site: string | undefined;
  log: Logger;
  WebSocket: WebSocketConstructor;
}

type Reply = { re: number | string | null; ok: boolean; result?: unknown; error?: { code: string; message: string; details?: unknown } };
/** Replies the server wrote in one turn, in order (to a client that has sent a batch frame). */
type Replies = { replies: Reply[] };
type Push =
  | { push: 'assign'; assignments: LeasedTask[] }
  | { push: 'cancel'; assignmentId: string }
  | { push: 'revoke'; assignmentId: string; reason: string };

interface Pending {
  /** The message as sent (JSON text), and its size in bytes. */
  text: string;
  bytes: number;
  /** The socket it was last sent on (null: not sent yet). */
  sentOn: WebSocket | null;
  /** The size of the frame it was last sent in: its own, or its batch frame's. */
  frameBytes: number;
  /** The batch frame it was last sent in, until the server answers one of that frame's items. */
  batchId: number | null;
  /** Waiting in the outbox for the end of this turn. */
  queued: boolean;
  resolve(reply: Reply): void;
  /** Reports go again on the next socket; hello and heartbeats belong to the socket they were sent on. */
  resend: boolean;
}

/** The bytes of a batch frame around its items, with the longest id (a safe integer). */
const BATCH_ENVELOPE_BYTES = utf8Length(`{"op":"batch","id":${Number.MAX_SAFE_INTEGER},"items":[]}`);

const DISCONNECTED: Reply = { re: null, ok: false, error: { code: 'DISCONNECTED', message: 'the connection closed before the reply' } };

/** The reply a message gets when it is too large to send (locally; the server itself closes with 1009). */
function tooLargeReply(bytes: number, limit: number | null, why: string): Reply {
  return { re: null, ok: false, error: { code: 'PAYLOAD_TOO_LARGE', message: why, details: { bytes, limit } } };
}

interface Welcome {
  replica: { id: string };
  heartbeatIntervalMs: number;
  leaseMs?: number;
  /** The largest frame the server reads (absent from servers older than the field). */
  maxMessageBytes?: number;
  /** The most reports a batch frame may carry (absent from servers older than batches). */
  maxBatchItems?: number;
  held: { kept: Array<{ assignmentId: string; cancelRequested: boolean }>; ended: Array<{ assignmentId: string; status: string }> };
}

/** Server close codes that mean "this worker must stop", not "reconnect". */
const REPLACED = 4002;
const UNAUTHENTICATED = 4004;
/** The server read a frame above its limit (ws maxPayload). */
const MESSAGE_TOO_BIG = 1009;
/** Replies that say nothing about the report itself: send it again. */
const RETRY_CODES = ['STORE_UNAVAILABLE', 'INTERNAL', 'SHUTTING_DOWN', 'RATE_LIMITED'];
/**
 * The wait before sending again after these when the reply does not say it: the server sends
 * `details.retryAfterMs` with them (what `Retry-After` says over HTTP); a server older than
 * that field gets the same 2 s.
 */
const UNAVAILABLE = ['STORE_UNAVAILABLE', 'SHUTTING_DOWN'];
const UNAVAILABLE_RETRY_AFTER_MS = 2_000;
/** How long a hello may go unanswered before the connection is given up. */
const HELLO_TIMEOUT_MS = 15_000;
const FATAL_HELLO = ['UNKNOWN_AGENT', 'REPLICA_MISMATCH', 'UNAUTHENTICATED', 'FORBIDDEN', 'VALIDATION_FAILED'];

export class SocketChannel implements WorkerChannel {
  readonly kind = 'websocket';
  readonly #o: SocketChannelOptions;
  #hooks: ChannelHooks | null = null;
  #replicaId: string | null;
  #socket: WebSocket | null = null;
  /** Resolves when a socket has said hello and is ready for reports. */
  #ready: Promise<void> | null = null;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #closing = false;
  #draining = false;
  #urlIndex = 0;
  #heartbeatMs = 10_000;
  #lastReplyAt = 0;
  #watchdog: ReturnType<typeof setInterval> | null = null;
  /** A connect (open + hello) is under way; its own failure handling owns the socket. */
  #connecting = false;
  /** Resolves on close(): nothing waits for a reconnection after that. */
  #closed: Promise<void>;
  #markClosed!: () => void;
  /**
   * Resolves when the worker's drain time is up (giveUp): reports waiting for a reconnection
   * stop waiting. Until then a stopping worker still delivers what its handlers finish, over
   * a reconnection if need be; after it, a server that may never come back holds nothing up.
   */
  #stopWaiting: Promise<void>;
  #markStopWaiting!: () => void;
  #gaveUp = false;
  readonly #size = new SizeLimit();
  readonly #leases = new Leases();
  /** The most reports per batch frame this connection's server takes; 0: each report alone. */
  #batchItems = 0;
  /** The server closed the socket (1009) on a batch frame within its announced limit: no more batches. */
  #batchesRefused = false;
  /** Reports written this turn, by id, to be sent when it ends (#flush). */
  #outbox: number[] = [];
  #flushScheduled = false;
  /** Batch frames sent on this socket that the server has not answered an item of yet: their item ids. */
  #batches = new Map<number, number[]>();

  constructor(options: SocketChannelOptions) {
    this.#o = options;
    this.#replicaId = options.replicaId;
    this.#closed = new Promise((resolve) => (this.#markClosed = resolve));
    this.#stopWaiting = new Promise((resolve) => (this.#markStopWaiting = resolve));
  }

  async open(hooks: ChannelHooks): Promise<Registration> {
    this.#hooks = hooks;
    const welcome = await this.#connect();
    this.#ready = Promise.resolve();
    // A server that has sent nothing for two heartbeat intervals is gone, even if TCP has not
    // noticed (a half-open connection): checked often, so it is found within about two intervals.
    this.#watchdog = setInterval(() => this.#checkAlive(), Math.max(50, Math.floor(this.#heartbeatMs / 4)));
    return { replicaId: welcome.replica.id, heartbeatIntervalMs: welcome.heartbeatIntervalMs };
  }

  #url(): string {
    return socketUrl(this.#o.urls[this.#urlIndex % this.#o.urls.length]!, '/workers/socket');
  }

  /** Opens a socket and says hello; rejects (and closes it) on failure. */
  async #connect(): Promise<Welcome> {
    this.#connecting = true;
    try {
      return await this.#connectOnce();
    } finally {
      this.#connecting = false;
    }
  }

  async #connectOnce(): Promise<Welcome> {
    const url = this.#url();
    const socket = new this.#o.WebSocket(url, { headers: { authorization: `Bearer ${this.#o.token}` } });
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`could not open ${url}`));
      socket.onclose = (e) => reject(new Error(`${url} closed before opening (${e.code})`));
    }).catch((err: unknown) => {
      if (this.#socket === socket) this.#socket = null;
      throw err;
    });
    if (this.#closing) {
      socket.onclose = null;
      socket.close(1000, 'worker stopped');
      throw new Error('the worker stopped while connecting');
    }
    socket.onmessage = (e) => this.#onMessage(e.data);
    socket.onerror = () => {};
    socket.onclose = (e) => this.#onClose(socket, e.code, e.reason);
    this.#lastReplyAt = Date.now();
    let helloTimer: ReturnType<typeof setTimeout> | undefined;
    const reply = await Promise.race([
      this.#send({
        op: 'hello',
        agent: this.#o.agent,
        maxConcurrency: this.#o.concurrency,
        held: this.#hooks!.held(),
        ...(this.#draining ? { drain: true } : {}),
        ...(this.#replicaId ? { replicaId: this.#replicaId } : {}),
        ...(this.#o.site ? { site: this.#o.site } : {}),
      }, socket),
      new Promise<Reply>((resolve) => (helloTimer = setTimeout(() => resolve({ re: null, ok: false, error: { code: 'DISCONNECTED', message: 'no answer to hello' } }), HELLO_TIMEOUT_MS))),
    ]);
    clearTimeout(helloTimer);
    if (!reply.ok) {
      socket.onclose = null;
      this.#socket = null;
      socket.close(1000, 'hello refused');
      throw apiErrorFromReply(reply.error!) ?? new FlotillaNetworkError(`${url}: ${reply.error!.message}`, { url });
    }
    const welcome = reply.result as Welcome;
    this.#replicaId = welcome.replica.id;
    this.#heartbeatMs = Math.max(100, welcome.heartbeatIntervalMs);
    this.#size.announce(welcome.maxMessageBytes);
    // Batches need a size limit to keep each frame under (a server announcing batches has one).
    const batchItems = welcome.maxBatchItems;
    this.#batchItems = !this.#batchesRefused && this.#size.announced !== null && typeof batchItems === 'number' && Number.isSafeInteger(batchItems) && batchItems > 1 ? batchItems : 0;
    if (typeof welcome.leaseMs === 'number' && welcome.leaseMs > 0) this.#leases.leaseMs = welcome.leaseMs;
    for (const k of welcome.held.kept) this.#leases.renewed(k.assignmentId);
    for (const k of welcome.held.kept) if (k.cancelRequested) this.#hooks!.cancel(k.assignmentId);
    for (const e of welcome.held.ended) this.#hooks!.revoke(e.assignmentId, kindForStatus(e.status));
    this.#o.log('info', 'connected', { url, replicaId: this.#replicaId, kept: welcome.held.kept.length, ended: welcome.held.ended.length });
    return welcome;
  }

  #onMessage(data: unknown): void {
    let frame: Reply | Replies | Push;
    try {
      frame = JSON.parse(String(data)) as Reply | Replies | Push;
    } catch {
      return;
    }
    this.#lastReplyAt = Date.now();
    if ('replies' in frame) {
      for (const reply of frame.replies) this.#onReply(reply);
      return;
    }
    if ('push' in frame) {
      const hooks = this.#hooks!;
      if (frame.push === 'assign') {
        for (const a of frame.assignments) this.#leases.renewed(a.assignmentId);
        hooks.assign(frame.assignments);
      }
      else if (frame.push === 'cancel') hooks.cancel(frame.assignmentId);
      else if (frame.push === 'revoke') hooks.revoke(frame.assignmentId, kindForStatus(frame.reason === 'lost' ? 'lost' : frame.reason));
      return;
    }
    this.#onReply(frame);
  }

  #onReply(reply: Reply): void {
    if (typeof reply.re !== 'number') {
      if (reply.error) this.#o.log('warn', 'the server refused a message', { error: reply.error });
      return;
    }
    const pending = this.#pending.get(reply.re);
    if (!pending) {
      const items = this.#batches.get(reply.re);
      if (items) this.#batchRefused(reply.re, items, reply);
      return;
    }
    // The server answers a batch's items only once it accepted the batch.
    if (pending.batchId !== null) this.#batches.delete(pending.batchId);
    this.#pending.delete(reply.re);
    pending.resolve(reply);
  }

  /**
   * A batch frame refused as a whole (answered under its own id): none of its items was
   * handled, so each goes again, alone, and no batch frame is sent to this server again.
   */
  #batchRefused(batchId: number, items: number[], reply: Reply): void {
    this.#batches.delete(batchId);
    this.#batchesRefused = true;
    this.#batchItems = 0;
    this.#o.log('warn', 'the server refused a batch of reports; sending each alone from now on', { error: reply.error, reports: items.length });
    const socket = this.#socket;
    for (const id of items) {
      const pending = this.#pending.get(id);
      if (!pending || pending.batchId !== batchId) continue;
      pending.batchId = null;
      if (socket !== null && socket.readyState === socket.OPEN) this.#sendAlone(pending, socket);
    }
  }

  #onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.#socket) return;
    this.#socket = null;
    // What was not sent yet goes with the rest on the next socket (reports), or is answered as disconnected (below).
    for (const id of this.#outbox) {
      const pending = this.#pending.get(id);
      if (pending) pending.queued = false;
    }
    this.#outbox = [];
    this.#batches.clear();
    if (code === MESSAGE_TOO_BIG) this.#refuseLargest(socket);
    for (const [id, pending] of this.#pending) {
      if (pending.resend) continue;
      this.#pending.delete(id);
      pending.resolve(DISCONNECTED);
    }
    // Closed, out of drain time, or refused for good: nothing will answer the reports still
    // waiting. (A draining worker keeps them: they go again on the next connection.)
    if (this.#closing || this.#gaveUp || code === REPLACED) this.#failPending();
    if (this.#closing || this.#connecting) return;
    if (code === REPLACED) {
      this.#hooks!.fatal('REPLICA_REPLACED', `another connection registered replica ${this.#replicaId}: ${reason}`);
      return;
    }
    if (code === UNAUTHENTICATED) this.#o.log('warn', 'the server no longer accepts this worker\'s credentials', { reason });
    this.#o.log('warn', 'connection lost; reconnecting', { code, reason });
    this.#ready = this.#reconnect();
  }

  /**
   * The server closed the socket because a frame was above its limit. That frame had no reply,
   * and the largest frame still unanswered on this socket is at least as big: that one is over
   * the limit for certain. A message alone is not sent again (nor anything as big): its sender
   * reads a too-large refusal. Any other too-large message left would close the next socket
   * the same way, and be removed then, so this ends. A batch frame (within the limit the
   * server announced, so the server reads less than it says) refuses none of its reports: no
   * batch is sent again, and its reports go again alone.
   */
  #refuseLargest(socket: WebSocket): void {
    let largest: [number, Pending] | null = null;
    for (const entry of this.#pending) if (entry[1].sentOn === socket && (largest === null || entry[1].frameBytes > largest[1].frameBytes)) largest = entry;
    if (largest === null) return;
    const [id, pending] = largest;
    if (pending.frameBytes > pending.bytes) {
      this.#batchesRefused = true;
      this.#batchItems = 0;
      this.#o.log('warn', 'the server closed the connection on a batch of reports within its announced size limit (1009); sending each alone from now on', { bytes: pending.frameBytes });
      return;
    }
    this.#pending.delete(id);
    this.#size.refused(pending.bytes);
    this.#o.log('warn', 'the server closed the connection: a message was above its size limit (1009); it is not sent again', { bytes: pending.bytes });
    pending.resolve(tooLargeReply(pending.bytes, this.#size.announced, 'the server closed the connection: the message is above its size limit'));
  }

  /** Reconnects with backoff until it succeeds, the server refuses the worker, or close(). */
  async #reconnect(): Promise<void> {
    let backoff = 100;
    for (;;) {
      if (this.#closing) return;
      try {
        await this.#connect();
        // Reports sent on the old socket that got no reply go again on this one, each alone.
        const socket = this.#socket;
        if (socket === null) continue;
        for (const pending of this.#pending.values()) this.#sendAlone(pending, socket);
        return;
      } catch (err) {
        if (err instanceof FlotillaApiError && FATAL_HELLO.includes(err.code)) {
          this.#hooks!.fatal(err.code, err.message);
          return;
        }
        if (await this.#refusedOverHttp()) return;
        this.#urlIndex++;
        const jittered = backoff / 2 + Math.random() * (backoff / 2);
        this.#o.log('warn', 'reconnect failed; retrying', { error: String(err), inMs: Math.round(jittered) });
        await new Promise((r) => setTimeout(r, jittered));
        backoff = Math.min(5_000, backoff * 2);
      }
    }
  }

  /**
   * A browser-style WebSocket cannot see the status of a refused upgrade (401), so a failed
   * connect asks over HTTP whether the token is still accepted.
   */
  async #refusedOverHttp(): Promise<boolean> {
    try {
      await this.#o.transport.request('GET', `/agents/${encodeURIComponent(this.#o.agent)}`, { idempotent: true, timeoutMs: 5_000 });
      return false;
    } catch (err) {
      if (err instanceof FlotillaApiError && (err.code === 'UNAUTHENTICATED' || err.code === 'FORBIDDEN')) {
        this.#hooks!.fatal(err.code, err.message);
        return true;
      }
      return false;
    }
  }

  /**
   * Sends a request and waits for its reply; kept for re-sending if the socket drops first.
   * A message above the server's limit is not sent: it is answered PAYLOAD_TOO_LARGE here.
   * A report (`batched`) waits for the end of the turn, to leave with the others (#flush).
   */
  #send(fields: Record<string, unknown>, socket: WebSocket | null = this.#socket, batched = false): Promise<Reply> {
    const id = this.#nextId++;
    const text = JSON.stringify({ ...fields, id });
    const bytes = utf8Length(text);
    const tooLarge = this.#size.check(bytes);
    if (tooLarge) {
      return Promise.resolve(tooLargeReply(bytes, tooLarge.limit, tooLarge.limit === null
        ? `the message is ${bytes} bytes; the server refused one as large before`
        : `the message is ${bytes} bytes; the server reads at most ${tooLarge.limit}`));
    }
    const resend = fields.op !== 'hello' && fields.op !== 'heartbeat';
    if (!resend && (socket === null || socket.readyState !== socket.OPEN)) return Promise.resolve(DISCONNECTED);
    return new Promise<Reply>((resolve) => {
      const pending: Pending = { text, bytes, sentOn: null, frameBytes: bytes, batchId: null, queued: false, resolve, resend };
      this.#pending.set(id, pending);
      if (socket === null || socket.readyState !== socket.OPEN) return;
      if (batched && this.#batchItems > 0 && socket === this.#socket) {
        pending.queued = true;
        this.#outbox.push(id);
        if (!this.#flushScheduled) {
          this.#flushScheduled = true;
          afterThisTurn(() => {
            this.#flushScheduled = false;
            this.#flush();
          });
        }
        return;
      }
      // The reports written before this message leave before it.
      if (socket === this.#socket) this.#flush();
      this.#sendAlone(pending, socket);
    }).finally(() => this.#pending.delete(id));
  }

  #sendAlone(pending: Pending, socket: WebSocket): void {
    pending.queued = false;
    pending.sentOn = socket;
    pending.frameBytes = pending.bytes;
    pending.batchId = null;
    socket.send(pending.text);
  }

  /**
   * Sends the reports of the outbox, in the order written: as few `batch` frames as the
   * server's limits allow (at most #batchItems reports and maxMessageBytes bytes each), a
   * report that would be alone in one as itself.
   */
  #flush(): void {
    const socket = this.#socket;
    // A socket closing: #onClose takes the outbox (its reports go again on the next socket).
    if (this.#outbox.length === 0 || socket === null || socket.readyState !== socket.OPEN) return;
    const ids = this.#outbox;
    this.#outbox = [];
    const limit = this.#size.announced ?? Infinity;
    let frame: Array<[number, Pending]> = [];
    let bytes = BATCH_ENVELOPE_BYTES;
    const send = () => {
      if (frame.length === 1) this.#sendAlone(frame[0]![1], socket);
      else if (frame.length > 1) {
        const batchId = this.#nextId++;
        const head = `{"op":"batch","id":${batchId},"items":[`;
        const text = `${head}${frame.map(([, p]) => p.text).join(',')}]}`;
        // Counted, not measured again: the head is ASCII, then the items, their commas, and `]}`.
        const frameBytes = head.length + (bytes - BATCH_ENVELOPE_BYTES) + 2;
        for (const [, p] of frame) {
          p.queued = false;
          p.sentOn = socket;
          p.frameBytes = frameBytes;
          p.batchId = batchId;
        }
        this.#batches.set(batchId, frame.map(([id]) => id));
        socket.send(text);
      }
      frame = [];
      bytes = BATCH_ENVELOPE_BYTES;
    };
    for (const id of ids) {
      const pending = this.#pending.get(id);
      if (!pending?.queued) continue;
      // Each item after the first adds a comma.
      if (frame.length > 0 && (frame.length >= this.#batchItems || bytes + 1 + pending.bytes > limit)) send();
      bytes += (frame.length > 0 ? 1 : 0) + pending.bytes;
      frame.push([id, pending]);
    }
    send();
  }

  #failPending(): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.resolve(DISCONNECTED);
    }
  }

  #checkAlive(): void {
    const socket = this.#socket;
    if (!socket || this.#connecting || socket.readyState !== socket.OPEN) return;
    if (Date.now() - this.#lastReplyAt > 2 * this.#heartbeatMs) {
      socket.close(4003, 'no reply from the server');
      this.#onClose(socket, 4003, 'no reply from the server');
    }
  }

  async #request(fields: Record<string, unknown>, batched = false): Promise<Reply | null> {
    // Out of drain time, a report does not wait for a reconnection that may never come.
    if (this.#gaveUp && this.#socket === null) return null;
    await Promise.race([this.#ready, this.#closed, this.#stopWaiting]);
    // Closed, or the server refused this worker while reconnecting: nothing will answer.
    if (this.#socket === null) return null;
    return this.#send(fields, this.#socket, batched);
  }

  slotFreed(): void {
    // The server frees the slot itself when the attempt ends, and pushes the next task.
  }

  async drain(): Promise<void> {
    this.#draining = true;
    // While disconnected there is nothing to stop: the next hello says `drain`.
    const socket = this.#socket;
    if (socket === null || this.#connecting || socket.readyState !== socket.OPEN) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.#send({ op: 'drain' }, socket), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
  }

  giveUp(): void {
    this.#gaveUp = true;
    this.#markStopWaiting();
    // Reports waiting for a reconnection stop waiting, also while a reconnect attempt holds a
    // socket that is not open yet (it may never open: the server is gone). Those sent on an
    // open socket get their reply, or are failed when it closes (#onClose).
    const socket = this.#socket;
    if (socket === null || this.#connecting || socket.readyState !== socket.OPEN) this.#failPending();
  }

  async report(op: ReportOp, assignmentId: string, body: Record<string, unknown>): Promise<ReportOutcome> {
    const outcome = await deliver({
      op, assignmentId, log: this.#o.log, leases: this.#leases,
      stopped: () => this.#gaveUp || this.#closing,
      stopping: Promise.race([this.#stopWaiting, this.#closed]),
      send: async () => this.#judge(op, assignmentId, await this.#request({ op, assignmentId, ...body }, true)),
    });
    if (op !== 'start') this.#leases.forget(assignmentId);
    return outcome;
  }

  /** What a report's reply means: settled (and how), or worth another try. */
  #judge(op: ReportOp, assignmentId: string, reply: Reply | null): ReportTry {
    if (reply?.ok) {
      if (op === 'start') this.#leases.renewed(assignmentId);
      return { outcome: 'ok' };
    }
    const error = reply?.error;
    if (error?.code === 'ASSIGNMENT_SUPERSEDED') {
      // A report re-sent on a new connection whose first copy had been applied.
      if (appliedBefore(op, error.details)) return { outcome: 'ok' };
      this.#o.log('info', 'report not applied: the attempt was already ended', { op, assignmentId, details: error.details });
      return { outcome: 'superseded' };
    }
    if (error?.code === 'PAYLOAD_TOO_LARGE') {
      const { bytes, limit } = error.details as { bytes: number; limit: number | null };
      return { outcome: { tooLarge: { bytes, limit } } };
    }
    if (error && RETRY_CODES.includes(error.code)) {
      const given = (error.details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
      const retryAfterMs = typeof given === 'number' ? given : UNAVAILABLE.includes(error.code) ? UNAVAILABLE_RETRY_AFTER_MS : undefined;
      return { retry: `${error.code}: ${error.message}`, transient: error.code !== 'INTERNAL', retryAfterMs };
    }
    // Closed, out of drain time, or refused for the report itself (a 4xx code): not again.
    this.#o.log('warn', 'report failed', { op, assignmentId, error: error ?? 'connection closed' });
    return { outcome: 'failed' };
  }

  async progress(assignmentId: string, percent: number, message: string | undefined): Promise<{ cancelRequested: boolean } | 'superseded' | null> {
    let reply = await this.#request({ op: 'progress', assignmentId, percent, ...(message !== undefined ? { message } : {}) }, true);
    if (reply?.error?.code === 'PAYLOAD_TOO_LARGE' && message !== undefined) {
      // Progress is worth sending without its message: it renews the lease, and says how far.
      this.#o.log('warn', 'progress message too large for the server; sent without it', { assignmentId, chars: message.length, limit: this.#size.announced });
      reply = await this.#request({ op: 'progress', assignmentId, percent }, true);
    }
    if (reply?.ok) {
      this.#leases.renewed(assignmentId);
      return reply.result as { cancelRequested: boolean };
    }
    return reply?.error?.code === 'ASSIGNMENT_SUPERSEDED' ? 'superseded' : null;
  }

  async token(assignmentId: string): Promise<string> {
    const reply = await this.#request({ op: 'token', assignmentId });
    if (reply?.ok) return (reply.result as { token: string }).token;
    const e = reply?.error ?? { code: 'DISCONNECTED', message: 'the connection closed' };
    throw apiErrorFromReply(e) ?? new FlotillaNetworkError(e.message, { url: this.#url() });
  }

  async heartbeat(assignmentIds: string[], health: HealthReport | null = null): Promise<BeatResult> {
    const result: BeatResult = { cancelRequested: [], ended: [] };
    this.#leases.retain(this.#hooks?.held() ?? assignmentIds);
    const socket = this.#socket;
    if (!socket || this.#connecting) return result;
    const reply = await this.#send({ op: 'heartbeat', assignmentIds, ...(health ?? {}) }, socket, true);
    if (!reply.ok) {
      // Declared lost while connected (a missed close): register again on a new connection.
      if (reply.error?.code === 'REPLICA_NOT_LIVE' || reply.error?.code === 'REPLICA_NOT_FOUND') {
        socket.close(4001, 'replica not live');
        this.#onClose(socket, 4001, 'replica not live');
      }
      return result;
    }
    const r = reply.result as { leases: Array<{ assignmentId: string; cancelRequested: boolean }>; ended: Array<{ assignmentId: string; status: string }> };
    for (const l of r.leases) this.#leases.renewed(l.assignmentId);
    for (const l of r.leases) if (l.cancelRequested) result.cancelRequested.push(l.assignmentId);
    for (const e of r.ended) result.ended.push({ assignmentId: e.assignmentId, kind: kindForStatus(e.status) });
    return result;
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#markClosed();
    if (this.#watchdog) clearInterval(this.#watchdog);
    // Reports written before close() leave, as they did when each left at once.
    this.#flush();
    const socket = this.#socket;
    this.#socket = null;
    for (const pending of this.#pending.values()) pending.resolve({ re: null, ok: false, error: { code: 'SHUTTING_DOWN', message: 'the worker closed' } });
    this.#pending.clear();
    this.#outbox = [];
    if (socket && socket.readyState !== socket.CLOSED) {
      const closed = new Promise<void>((resolve) => socket.addEventListener('close', () => resolve(), { once: true }));
      socket.close(1000, 'worker stopped');
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, 2_000)))]);
      clearTimeout(timer);
    }
    // Leave at once rather than be declared lost after the replica TTL.
    if (this.#replicaId) {
      await this.#o.transport.request('POST', `/workers/${this.#replicaId}/deregister`, { idempotent: true, timeoutMs: 5_000 }).catch(() => {});
    }
  }
}
