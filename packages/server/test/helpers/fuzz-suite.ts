// The property-based fuzz suite (issue 11), run on each store by fuzz-sqlite.test.ts and
// fuzz-postgres.test.ts. Generated requests to every route of ROUTE_ACTIONS (in-process,
// app.inject) and sessions on both WebSocket endpoints (a real socket), valid in shape with
// hostile leaves (helpers/fuzz-arbitraries.ts), against a server holding live things to aim
// at: a live assignment, a pending task, a failed task, replicas, keys, a scoped token.
//
// Properties of every request and message:
// - no 5xx (nor a socket reply with a 5xx code: INTERNAL, STORE_UNAVAILABLE, SHUTTING_DOWN:
//   the database is up), and no socket closed on a message other than a binary frame;
// - every 4xx is {"error":{"code","message"}} with a code of ERROR_STATUS whose status is
//   the answer's (a socket reply: ok:false with such a code, and the reply's `status` is
//   the code's); one to a worker endpoint or a worker op has a code of WORKER_ERROR_CODES
//   (the codes docs/protocol.md §5 tells a worker what to do about);
// - a refused request (4xx, ok:false) changes nothing stored: every row of every table but
//   the audit log (helpers/fuzz-state.ts);
// - nothing with a non-finite number (1e400) in its body or in a numeric query parameter is
//   accepted (JSON.parse makes it Infinity, which is stored as null);
// - what a submit accepts is stored as sent (input, type, correlation, idempotency key).
// And afterwards the audit log still records (a fresh audited action shows in GET /audit),
// also right after each hostile (NUL, unpaired surrogate) request.
//
// One property per route and per socket op, so that one failure does not hide the others;
// the reproducers of issue 11 run first in each (fast-check `examples`). Nothing comes due
// during a run (hour-long leases, backoffs and delays; the reaper is off), so a change seen
// right after a refused request was made by it.
//
// Environment: FUZZ_SEED (default 20261121, in the suite's name) fixes the inputs; FUZZ_RUNS
// is the number of HTTP requests (spread over the routes; socket sessions and audit probes
// scale with it); a failure prints fast-check's seed and counterexample path, replayed with
// FUZZ_SEED=… FUZZ_PATH=… FUZZ_PROPERTY=<its name>. FUZZ_VERBOSE=1 prints
// the answers each route and op got; FUZZ_TRACE=1 prints every HTTP request before it is sent.

import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { ERROR_STATUS, WORKER_ERROR_CODES, type ErrorCode } from '@flotilla/sdk';
import { harness, TOKEN, type Harness } from './harness.ts';
import { diffFingerprints, stateReader, type Fingerprint, type StateReader } from './fuzz-state.ts';
import {
  HTTP_EXAMPLES, NUMERIC_QUERY, ROUTES, SOCKET_EXAMPLES, SOCKET_OPS, WIRE_AUTHS, httpRequest, pct, render, requestFor, sessionFor, socketSession,
  type Auth, type Body, type HttpRequest, type PathParam, type Ref, type SocketFrame, type SocketSession,
} from './fuzz-arbitraries.ts';

export const SEED = Number(process.env.FUZZ_SEED ?? 20261121);
const RUNS = process.env.FUZZ_RUNS === undefined ? undefined : Number(process.env.FUZZ_RUNS);

type Store = 'sqlite' | 'postgres';

// ---------------------------------------------------------------------------------------
// The server under test and the live things requests aim at

interface Ids extends Record<Ref, string> {
  failerReplica: string;
}

class World {
  readonly h: Harness;
  readonly reader: StateReader;
  readonly ids: Ids;
  readonly auth: Record<Auth, string | null>;
  readonly wsBase: string;
  state: Fingerprint = new Map();
  readonly seen = new Map<number, number>();
  #markers = 0;

  /** Answers not written yet (see inject). */
  readonly pending: Set<ServerResponse>;

  private constructor(h: Harness, reader: StateReader, ids: Ids, auth: Record<Auth, string | null>, wsBase: string, pending: Set<ServerResponse>) {
    this.pending = pending;
    this.h = h;
    this.reader = reader;
    this.ids = ids;
    this.auth = auth;
    this.wsBase = wsBase;
  }

  static async open(store: Store): Promise<World> {
    const h = await harness({
      store,
      config: {
        // Thousands of requests from one address would otherwise be mostly 429s (limits.test.ts covers them).
        rateLimitPerSecond: 0, rateLimitAnonymousPerMinute: 0,
        bodyLimitBytes: 64 * 1024,
        // Nothing expires or comes due during a run: leases, replicas and retried tasks stay
        // as the requests left them, so nothing changes between a request and the next.
        leaseMs: 3_600_000, replicaTtlMs: 3_600_000, retry: { baseDelayMs: 3_600_000, maxDelayMs: 7_200_000 },
      },
    });
    // The answers being written, so that a long poll the fuzz does not want to wait for can be hung up on.
    const pending = new Set<ServerResponse>();
    h.app.addHook('onRequest', async (_request, reply) => {
      pending.add(reply.raw);
      reply.raw.once('close', () => pending.delete(reply.raw));
    });
    try {
      for (const name of ['echo', 'sock', 'failer']) await h.agent({ name, maxConcurrency: 10_000 });
      await h.agent({ name: 'analyst', capabilities: ['nlp'] });
      await h.agent({ name: 'parked' });
      await h.agent({ name: 'victim' });
      const key = async (role: string, extra: Record<string, unknown> = {}) => {
        const res = await h.api('POST', '/keys', { name: `fz-${role}`, role, ...extra });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body as { token: string; key: { id: string } };
      };
      const operator = await key('operator');
      const viewer = await key('viewer');
      const agentKey = await key('agent', { agents: ['echo', 'sock', 'failer', 'analyst'] });
      const revoked = await key('viewer');
      assert.equal((await h.api('POST', `/keys/${revoked.key.id}/revoke`)).status, 200);
      const scoped = await h.api('POST', '/tokens', { scopes: ['task.submit', 'task.read', 'task.cancel', 'task.retry'] });
      assert.equal(scoped.status, 201, JSON.stringify(scoped.body));
      const first = await h.submit({ agent: 'parked', input: { first: true } });
      const ids: Ids = {
        task: first.id, pendingTask: first.id, failedTask: '', assignment: '', replica: '', agent: 'analyst', victimAgent: 'victim',
        key: '', jti: '', sockAssignment: 'no-such-assignment', sockReplica: 'no-such-replica', failerReplica: '',
      };
      const auth: Record<Auth, string | null> = {
        admin: `Bearer ${TOKEN}`, operator: `Bearer ${operator.token}`, viewer: `Bearer ${viewer.token}`, agent: `Bearer ${agentKey.token}`,
        scoped: `Bearer ${scoped.body.token as string}`, revoked: `Bearer ${revoked.token}`, none: null, garbage: 'Bearer garbage',
        basic: `Basic ${Buffer.from('a:b').toString('base64')}`, long: `Bearer ${'x'.repeat(4_000)}`,
        'jwt-garbage': `Bearer eyJhbGciOiJIUzI1NiJ9.e30.${'x'.repeat(43)}`, nul: `Bearer ${TOKEN}\u0000`, surrogate: `Bearer ${TOKEN}\ud800`,
        lowercase: `bearer ${TOKEN}`,
      };
      const wsBase = (await h.listen()).replace(/^http/, 'ws');
      const w = new World(h, await stateReader(h), ids, auth, wsBase, pending);
      await w.ensure();
      w.state = await w.reader.read();
      return w;
    } catch (err) {
      await h.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.reader.close();
    await this.h.close();
  }

  resolve = (r: Ref): string => this.ids[r];

  async #admin(method: string, url: string, body?: unknown): Promise<any> {
    const res = await this.h.api(method, url, body);
    if (res.status >= 300) throw new Error(`fuzz set-up: ${method} ${url} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /**
   * Puts back what earlier requests used up (a live assignment of the HTTP replica, a pending
   * task, a failed task, a victim key, token and agent), before the state is read for the
   * next request. True when it changed anything.
   */
  async ensure(): Promise<boolean> {
    const s = this.h.store;
    const ids = this.ids;
    let changed = false;
    for (const name of ['analyst', 'victim']) {
      if (!(await s.agentGet({ name }))) {
        await this.#admin('POST', '/agents', { name });
        changed = true;
      }
    }
    const liveReplica = async (id: string, agent: string) => {
      const r = id ? await s.replicaGet({ id }) : null;
      return r !== null && r.status === 'live' && r.agent === agent && r.maxConcurrency >= 1;
    };
    if (!(await liveReplica(ids.replica, 'echo'))) {
      ids.replica = (await this.#admin('POST', '/workers/register', { agent: 'echo', maxConcurrency: 1_000 })).replica.id;
      changed = true;
    }
    const a = ids.assignment ? await s.assignmentGet({ id: ids.assignment }) : null;
    if (!a || a.replicaId !== ids.replica || (a.status !== 'dispatched' && a.status !== 'running')) {
      const held = await s.assignmentListByReplica({ replicaId: ids.replica });
      if (held.length > 0) {
        ids.assignment = held[0]!.assignment.id;
      } else {
        await this.#admin('POST', '/tasks', { agent: 'echo', replica: ids.replica, input: 'for the live assignment' });
        const leased = await this.#admin('POST', `/workers/${ids.replica}/lease`, { max: 1, waitMs: 0 });
        if (leased.assignments.length !== 1) throw new Error(`fuzz set-up: the HTTP replica leased ${JSON.stringify(leased)}`);
        ids.assignment = leased.assignments[0].assignmentId;
      }
      changed = true;
    }
    if ((await s.taskGet({ id: ids.pendingTask }))?.status !== 'pending') {
      ids.pendingTask = (await this.#admin('POST', '/tasks', { agent: 'parked', input: 'stays pending' })).id;
      changed = true;
    }
    if (!ids.failedTask || (await s.taskGet({ id: ids.failedTask }))?.status !== 'failed') {
      if (!(await liveReplica(ids.failerReplica, 'failer'))) {
        ids.failerReplica = (await this.#admin('POST', '/workers/register', { agent: 'failer', maxConcurrency: 1_000 })).replica.id;
      }
      await this.#admin('POST', '/tasks', { agent: 'failer', maxAttempts: 1, input: 'fails' });
      const leased = await this.#admin('POST', `/workers/${ids.failerReplica}/lease`, { max: 1, waitMs: 0 });
      const got = leased.assignments[0];
      await this.#admin('POST', `/assignments/${got.assignmentId}/fail`, { replicaId: ids.failerReplica, error: { message: 'no' }, retryable: false });
      ids.failedTask = got.task.id;
      changed = true;
    }
    const key = ids.key ? await s.apiKeyGet({ id: ids.key }) : null;
    if (!key || key.revokedAt !== null) {
      ids.key = (await this.#admin('POST', '/keys', { name: 'fz-victim', role: 'viewer' })).key.id;
      changed = true;
    }
    if (!ids.jti || (await s.tokenRevocationList({ since: 0 })).some((r) => r.jti === ids.jti)) {
      ids.jti = (await this.#admin('POST', '/tokens', { scopes: ['task.read'] })).id;
      changed = true;
    }
    await this.h.engine.dispatcher.idle();
    return changed;
  }

  /** One pending task for the socket agent, so a session's hello is pushed an assignment. */
  async ensureSocketWork(): Promise<boolean> {
    if ((await this.h.store.taskCountByStatus({ agent: 'sock' })).pending > 0) return false;
    await this.#admin('POST', '/tasks', { agent: 'sock', input: 'for a socket session' });
    return true;
  }

  /** True from a request until its effect is read into `state` (a failed check skips that). */
  #dirty = false;

  /** Before each request: what requests need, and the state to compare with. */
  async prepare(socket = false): Promise<void> {
    const changed = (await this.ensure()) || (socket && (await this.ensureSocketWork()));
    if (changed || this.#dirty) {
      await this.settle();
      this.state = await this.reader.read();
    }
    this.#dirty = true;
  }

  /** Waits (up to 5 s) until an accepted start is written: the server defers it a few ms. */
  async untilStartWritten(assignmentId: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const a = await this.h.store.assignmentGet({ id: assignmentId });
      if (a === null || a.status !== 'dispatched') return;
      await sleep(5);
    }
    assert.fail(`the start of ${assignmentId} was accepted but not written within 5 s`);
  }

  /**
   * Waits for what an accepted request set going: dispatch, and the starts the engine
   * writes a few ms after answering them (engine/deferred-starts.ts), on either transport.
   */
  async settle(ms = 0): Promise<void> {
    await this.h.engine.dispatcher.idle();
    if (ms > 0) await sleep(ms);
    await this.h.engine.workers.flushStarts();
    await this.h.engine.dispatcher.idle();
    // Numbers the events already committed (a store that numbers after commit moves them from
    // its queue into the log whenever anyone reads; decision 47), so the state read is settled.
    await this.h.store.eventLastSeq();
  }

  readonly seenBy = new Map<string, Map<number, number>>();

  count(status: number, what?: string): void {
    this.seen.set(status, (this.seen.get(status) ?? 0) + 1);
    if (what !== undefined) {
      const m = this.seenBy.get(what) ?? new Map<number, number>();
      m.set(status, (m.get(status) ?? 0) + 1);
      this.seenBy.set(what, m);
    }
  }

  /** With FUZZ_VERBOSE: the answers each route or op got, by status. */
  report(title: string): void {
    if (!process.env.FUZZ_VERBOSE) return;
    console.log(`# ${title}: ${JSON.stringify([...this.seen].sort(([a], [b]) => a - b))}`);
    for (const [what, m] of this.seenBy) console.log(`#   ${what}: ${JSON.stringify([...m].sort(([a], [b]) => a - b))}`);
  }

  /** Checks that a refused request left everything as it was, and moves the state on. */
  async afterRequest(refused: boolean, where: () => string): Promise<void> {
    await this.settle();
    const now = await this.reader.read();
    const before = this.state;
    this.state = now;
    this.#dirty = false;
    if (refused) {
      const diff = await diffFingerprints(before, now, this.reader);
      assert.equal(diff, null, `a refused request changed the stored state (${diff}): ${where()}`);
    }
  }

  /** GET /audit (AuditLog.list flushes first) until an entry of this request id shows, for up to a second; returns the newest entries. */
  async auditFind(requestId: string): Promise<{ found: boolean; newest: unknown[] }> {
    let items: Array<{ requestId: string | null }> = [];
    for (let i = 0; i < 40; i++) {
      const audit = await this.h.app.inject({ method: 'GET', url: '/api/v1/audit?limit=50', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(audit.statusCode, 200, audit.body);
      items = (JSON.parse(audit.body) as { items: Array<{ requestId: string | null }> }).items;
      if (items.some((e) => e.requestId === requestId)) return { found: true, newest: items.slice(0, 3) };
      await sleep(25);
    }
    return { found: false, newest: items.slice(0, 3) };
  }

  nextMarker(kind: string): string {
    return `fz-${kind}-${++this.#markers}-${Date.now()}`;
  }

  /**
   * A fresh audited request, then GET /audit until it shows: fails when the audit writer is
   * stuck (e.g. on an entry the database refuses).
   */
  async assertAuditRecords(context: string, kind: 'agent' | 'refusal' = 'refusal'): Promise<void> {
    const marker = this.nextMarker('marker');
    const headers = { authorization: `Bearer ${TOKEN}`, 'x-request-id': marker };
    const res = kind === 'agent'
      ? await this.h.app.inject({ method: 'POST', url: '/api/v1/agents', headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify({ name: marker }) })
      : await this.h.app.inject({ method: 'POST', url: `/api/v1/keys/${marker}/revoke`, headers });
    assert.equal(res.statusCode, kind === 'agent' ? 201 : 404, res.body);
    const { found, newest } = await this.auditFind(marker);
    this.state = await this.reader.read();
    assert.ok(found,
      `the audit log no longer records: ${res.statusCode} ${kind === 'agent' ? 'POST /api/v1/agents' : `POST /api/v1/keys/${marker}/revoke`} (x-request-id ${marker}) is not in GET /api/v1/audit ${context}; newest entries: ${JSON.stringify(newest)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Checks shared by HTTP and sockets

/** JSON.stringify, cut short: shows NUL and lone surrogates as escapes. */
function show(value: unknown, max = 400): string {
  const s = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}

/** The error body of a 4xx, checked against the code table; returns the code. */
function checkErrorBody(status: number, text: string, where: () => string): string {
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`a ${status} answer is not JSON: ${where()}`);
  }
  const code = body?.error?.code;
  assert.ok(typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code), `no stable error code: ${where()}`);
  assert.equal(typeof body.error.message, 'string', `an error without a message: ${where()}`);
  assert.equal(ERROR_STATUS[code as keyof typeof ERROR_STATUS], status, `the status does not match the code table: ${where()}`);
  return code;
}

/** The worker protocol's HTTP endpoints (docs/protocol.md §4) and its socket's upgrade. */
function isWorkerRoute(route: string): boolean {
  return /^[A-Z]+ \/api\/v1\/(workers|assignments)\//.test(route);
}

const CLIENT_SOCKET_OPS = new Set(['submit', 'submitMany', 'get', 'cancel']);

/** True when JSON text holds a number that overflows to ±Infinity. */
function jsonHasNonFinite(text: string): boolean {
  let found = false;
  try {
    JSON.parse(text, (_k, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) found = true;
      return v;
    });
  } catch {
    return false;
  }
  return found;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** A numeric query parameter whose value is not a finite number (1e400, Infinity). */
function queryHasNonFinite(query: string): boolean {
  return query.replace(/^\?/, '').split('&').some((pair) => {
    const [k = '', v = ''] = pair.split('=');
    const value = decode(v).trim();
    return NUMERIC_QUERY.has(decode(k)) && /^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|Infinity)$/i.test(value) && !Number.isFinite(Number(value));
  });
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** NUL or an unpaired surrogate, raw or percent-encoded (as WTF-8). */
function hostileText(s: string): boolean {
  return s.includes('\u0000') || LONE_SURROGATE.test(s) || /%00|%ED%[A-B][0-9A-F]/i.test(s);
}
function jsonHostile(text: string): boolean {
  let found = false;
  try {
    JSON.parse(text, (k, v: unknown) => {
      if (hostileText(k) || (typeof v === 'string' && hostileText(v))) found = true;
      return v;
    });
  } catch {
    return /\\u0000|\\ud[89a-f][0-9a-f]{2}/i.test(text);
  }
  return found;
}

/** Compares JSON values as JSON does (key order, -0), but tells Infinity from null. */
function canonical(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? (Object.is(v, -0) ? 0 : v) : `non-finite ${v}`;
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, canonical(x)]));
  return v;
}

/** What a submit accepted is what the store holds. */
async function checkStoredAsSent(w: World, sentSpecs: unknown[], taskIds: string[], where: () => string): Promise<void> {
  for (const [i, spec] of sentSpecs.entries()) {
    if (spec === null || typeof spec !== 'object' || taskIds[i] === undefined) continue;
    const sent = spec as Record<string, unknown>;
    const stored = await w.h.store.taskGet({ id: taskIds[i]! });
    assert.ok(stored, `an accepted task is not stored: ${where()}`);
    const pairs: Array<[string, unknown, unknown]> = [['input', sent.input ?? null, stored.input]];
    if (typeof sent.type === 'string') pairs.push(['type', sent.type, stored.type]);
    if (sent.correlation !== undefined) pairs.push(['correlation', sent.correlation, stored.correlation]);
    if (typeof sent.idempotencyKey === 'string') pairs.push(['idempotencyKey', sent.idempotencyKey, stored.idempotencyKey]);
    for (const [name, a, b] of pairs) {
      assert.deepEqual(canonical(b), canonical(a), `an accepted ${name} was stored as ${show(b, 120)} instead of ${show(a, 120)}: ${where()}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// HTTP

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload: string | Buffer | undefined;
  /** The body as text (for the checks; bytes decoded as the server would). */
  text: string | undefined;
}

function paramText(w: World, p: PathParam): string {
  return 'raw' in p ? p.raw : pct(w.resolve(p.ref)) + (p.suffix ?? '');
}

function bodyOf(w: World, body: Body): { payload: string | Buffer; text: string } | undefined {
  switch (body.kind) {
    case 'none':
      return undefined;
    case 'json': {
      const text = render(body.node, w.resolve);
      return { payload: text, text };
    }
    case 'text':
      return { payload: body.text, text: body.text };
    case 'bytes': {
      const payload = Buffer.concat([Buffer.from(body.before), Buffer.from(body.bytes), Buffer.from(body.after)]);
      return { payload, text: payload.toString('utf8') };
    }
  }
}

function materialize(w: World, req: HttpRequest): Sent {
  const path = req.path.replace(/:([A-Za-z]+)/g, (_m, name: string) => (req.params[name] ? paramText(w, req.params[name]) : 'x'));
  const headers: Record<string, string> = { ...req.headers };
  const token = w.auth[req.auth];
  if (token !== null) headers.authorization = token;
  if (req.contentType !== null) headers['content-type'] = req.contentType;
  const withBody = req.method !== 'GET' && req.method !== 'HEAD';
  const body = withBody ? bodyOf(w, req.body) : undefined;
  return { method: req.method, url: path + req.query, headers, payload: body?.payload, text: body?.text };
}

function describeSent(w: World, sent: Sent): string {
  const { authorization, ...rest } = sent.headers;
  // Which principal, not its secret.
  const auth = authorization === undefined ? 'no token' : `auth=${Object.entries(w.auth).find(([, v]) => v === authorization)?.[0] ?? show(authorization, 60)}`;
  return `${sent.method} ${show(sent.url, 300)} [${auth}] headers=${show(rest, 300)}${sent.text === undefined ? '' : ` body=${show(sent.text)}`}`;
}

/** A lease that finds no work waits (30 s without a body): past this, it is an accepted long poll. */
const LONG_POLL_CUT_MS = 500;
/** The status recorded for a long poll that was hung up on (it had been accepted). */
export const LONG_POLL = 299;

/**
 * Sends a request in-process. An event stream (GET /api/v1/events, however its path is
 * spelled) answers headers and then never ends: read the status, then hang up. A lease
 * long-polls: hung up on when it is still waiting after LONG_POLL_CUT_MS (status LONG_POLL).
 */
async function inject(w: World, sent: Sent): Promise<{ status: number; body: string }> {
  const controller = new AbortController();
  const answer = w.h.app.inject({
    method: sent.method as 'GET', url: sent.url, headers: sent.headers, payloadAsStream: true, signal: controller.signal,
    ...(sent.payload === undefined ? {} : { payload: sent.payload }),
  });
  answer.catch(() => {});
  const path = sent.url.split('?')[0]!;
  if (sent.method === 'POST' && /^\/api\/v1\/workers\/[^/]+\/lease$/.test(path)) {
    const cut = await Promise.race([answer, sleep(LONG_POLL_CUT_MS).then(() => null)]);
    if (cut === null) {
      for (const res of w.pending) res.destroy();
      await sleep(10);
      return { status: LONG_POLL, body: '' };
    }
  }
  const res = await answer;
  const stream = res.stream();
  stream.on('error', () => {});
  if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    controller.abort();
    stream.destroy();
    for (const r of w.pending) r.destroy();
    return { status: res.statusCode, body: '' };
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') };
}

async function checkHttpRequest(w: World, req: HttpRequest): Promise<void> {
  await w.prepare();
  const sent = materialize(w, req);
  if (process.env.FUZZ_TRACE) console.log(`# → ${describeSent(w, sent)}`);
  const res = await inject(w, sent);
  w.count(res.status, req.route);
  const where = () => `${describeSent(w, sent)} → ${res.status} ${show(res.body, 300)}`;
  assert.ok(res.status < 500, `server error: ${where()}`);
  if (res.status >= 400 && sent.method !== 'HEAD') {
    const code = checkErrorBody(res.status, res.body, where);
    if (isWorkerRoute(req.route)) assert.ok(WORKER_ERROR_CODES.includes(code as ErrorCode), `a worker endpoint answered ${code}, which is not in WORKER_ERROR_CODES: ${where()}`);
  }
  await w.afterRequest(res.status >= 400, where);
  if (res.status < 300) {
    assert.ok(!(sent.text !== undefined && jsonHasNonFinite(sent.text)), `a body with a non-finite number was accepted: ${where()}`);
    assert.ok(!queryHasNonFinite(sent.url.slice(sent.url.indexOf('?') >>> 0)), `a non-finite number in the query was accepted: ${where()}`);
  }
  if (res.status < 300 && sent.method === 'POST' && sent.text !== undefined && (req.route === 'POST /api/v1/tasks' || req.route === 'POST /api/v1/tasks/batch') && sent.url.split('?')[0] === req.path) {
    const body = JSON.parse(res.body);
    const sentBody = JSON.parse(sent.text);
    if (req.route === 'POST /api/v1/tasks') await checkStoredAsSent(w, [sentBody], [body.id], where);
    else await checkStoredAsSent(w, sentBody.tasks, body.items.map((i: any) => i.task.id), where);
  }
}

// ---------------------------------------------------------------------------------------
// Sockets

type Frame = Record<string, any>;

class SocketClient {
  readonly ws: WebSocket;
  readonly replies: Frame[] = [];
  readonly assigned: string[] = [];
  closed: { code: number; reason: string } | null = null;
  #wake: (() => void) | null = null;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(data)) as Frame;
      } catch {
        frame = { unparsable: String(data) };
      }
      if (frame.push === 'assign') for (const a of frame.assignments ?? []) this.assigned.push(a.assignmentId);
      else if (frame.push === undefined) this.replies.push(frame);
      this.#wake?.();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.#wake?.();
    });
    ws.on('error', () => {});
  }

  /** The next reply, or null when the socket closed (or nothing came within the time). */
  async next(timeoutMs = 10_000): Promise<Frame | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0 && this.closed === null && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#wake = () => { clearTimeout(t); resolve(); };
      });
      this.#wake = null;
    }
    return this.replies.shift() ?? null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.ws.close(1000);
    const deadline = Date.now() + 5_000;
    while (!this.closed && Date.now() < deadline) await sleep(10);
    if (!this.closed) this.ws.terminate();
  }
}

type Opened = { client: SocketClient } | { status: number; body: string } | { error: string };

async function openSocket(url: string, authorization: string | null, requestId?: string): Promise<Opened> {
  const ws = new WebSocket(url, { headers: { ...(authorization === null ? {} : { authorization }), ...(requestId === undefined ? {} : { 'x-request-id': requestId }) } });
  return new Promise<Opened>((resolve) => {
    ws.once('open', () => resolve({ client: new SocketClient(ws) }));
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        req.destroy();
      });
    });
    ws.once('error', (err) => resolve({ error: err.message }));
  });
}

function frameText(w: World, frame: SocketFrame): string | Buffer {
  if (frame.kind === 'binary') return Buffer.from([0x7b, 0x00, 0xff]);
  return frame.kind === 'text' ? frame.text : render(frame.node, w.resolve);
}

/** The op and id a message carries, as the server reads them. */
function opAndId(text: string | Buffer): { op: unknown; id: unknown } {
  if (typeof text !== 'string') return { op: undefined, id: null };
  try {
    const m = JSON.parse(text);
    return { op: m?.op, id: typeof m?.id === 'number' || typeof m?.id === 'string' ? m.id : null };
  } catch {
    return { op: undefined, id: null };
  }
}

/** With `auditUpgrade`, only the upgrade is checked, and that a refused one (401, 403) is in the audit log. */
async function checkSocketSession(w: World, session: SocketSession, auditUpgrade = false): Promise<void> {
  await w.prepare(true);
  const url = w.wsBase + session.path + session.query;
  const describeSession = () => `${session.path}${session.query} [${session.auth}]`;
  // Its own request id, to find its audit entry if it is refused.
  const upgradeId = w.nextMarker('upgrade');
  const opened = await openSocket(url, w.auth[session.auth], upgradeId);
  if ('error' in opened) assert.fail(`the upgrade failed without an answer (${opened.error}): ${describeSession()}`);
  if ('status' in opened) {
    w.count(opened.status, 'upgrade');
    const where = () => `upgrade ${describeSession()} (x-request-id ${upgradeId}) → ${opened.status} ${show(opened.body, 300)}`;
    assert.ok(opened.status >= 400 && opened.status < 500, `the upgrade got ${opened.status}: ${where()}`);
    checkErrorBody(opened.status, opened.body, where);
    await w.afterRequest(true, where);
    // Every refused request is audited (docs/security.md), upgrades included.
    if (auditUpgrade && (opened.status === 401 || opened.status === 403)) {
      const { found, newest } = await w.auditFind(upgradeId);
      assert.ok(found, `a refused upgrade is not in the audit log: ${where()}; newest entries: ${JSON.stringify(newest)}`);
    }
    return;
  }
  if (auditUpgrade) {
    await opened.client.close();
    await w.settle(20);
    w.state = await w.reader.read();
    return;
  }
  const { client } = opened;
  const log: string[] = [];
  const where = () => `${describeSession()}: ${log.join(' | ')}`;
  try {
    const frames: SocketFrame[] = session.hello ? [{ kind: 'json', node: session.hello }, ...session.frames] : session.frames;
    for (const frame of frames) {
      const text = frameText(w, frame);
      const { op, id } = opAndId(text);
      log.push(`→ ${typeof text === 'string' ? show(text, 300) : '<binary frame>'}`);
      client.ws.send(text, { binary: typeof text !== 'string' });
      const reply = await client.next();
      if (reply === null) {
        const closed = client.closed as { code: number; reason: string } | null;
        if (frame.kind === 'binary' && closed?.code === 1003) break;
        assert.fail(closed ? `the server closed the socket (${closed.code} ${show(closed.reason)}): ${where()}` : `no reply within 10 s: ${where()}`);
      }
      log.push(`← ${show(reply, 300)}`);
      assert.equal(typeof reply.ok, 'boolean', `a reply without ok: ${where()}`);
      if (reply.ok) {
        assert.ok(reply.re === id, `a reply to another message: ${where()}`);
        assert.ok(!(typeof text === 'string' && jsonHasNonFinite(text)), `a message with a non-finite number was accepted: ${where()}`);
      } else {
        assert.ok(reply.re === null || reply.re === id, `a refusal for another message: ${where()}`);
        const code = reply.error?.code;
        assert.ok(typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code), `no stable error code: ${where()}`);
        assert.equal(typeof reply.error.message, 'string', `an error without a message: ${where()}`);
        assert.ok(ERROR_STATUS[code as keyof typeof ERROR_STATUS] < 500, `a server error: ${where()}`);
        assert.equal(reply.status, ERROR_STATUS[code as keyof typeof ERROR_STATUS], `the reply's status does not match the code table: ${where()}`);
        if (!CLIENT_SOCKET_OPS.has(String(op))) assert.ok(WORKER_ERROR_CODES.includes(code as ErrorCode), `a worker op was answered ${code}, which is not in WORKER_ERROR_CODES: ${where()}`);
        w.count(ERROR_STATUS[code as keyof typeof ERROR_STATUS], `${String(op)}`);
      }
      if (reply.ok) {
        assert.ok(typeof reply.status === 'number' && reply.status >= 200 && reply.status < 300, `an ok reply without a 2xx status: ${where()}`);
        w.count(reply.status, `${String(op)}`);
      }
      // An accepted start is written a few ms after its answer (deferred): wait until it is,
      // or the next message's "no change" baseline would see it land. A hello is followed by pushes.
      if (reply.ok && op === 'start' && typeof text === 'string') await w.untilStartWritten(String(JSON.parse(text).assignmentId));
      await w.settle(reply.ok && op === 'hello' ? 30 : 0);
      if (reply.ok && op === 'hello') {
        w.ids.sockReplica = reply.result?.replica?.id ?? w.ids.sockReplica;
        await w.settle(20);
      }
      if (client.assigned.length > 0) w.ids.sockAssignment = client.assigned.at(-1)!;
      await w.afterRequest(!reply.ok, where);
      if (reply.ok && typeof text === 'string' && (op === 'submit' || op === 'submitMany')) {
        const m = JSON.parse(text);
        const specs = op === 'submit' ? [m.task] : m.tasks;
        const taskIds = op === 'submit' ? [reply.result.id] : reply.result.items.map((i: any) => i.task.id);
        await checkStoredAsSent(w, specs, taskIds, where);
      }
    }
  } finally {
    await client.close();
    await w.settle(20);
    w.state = await w.reader.read();
  }
}

// ---------------------------------------------------------------------------------------
// Running a property

async function runProperty<T>(name: string, arb: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>, opts: { numRuns: number; examples: T[]; budgetMs: number; describe: (value: T) => string }): Promise<void> {
  type Tuple = [T];
  const replay = process.env.FUZZ_PATH !== undefined && name === process.env.FUZZ_PROPERTY;
  const started = Date.now();
  const details = await fc.check<Tuple>(fc.asyncProperty(arb, predicate), {
    seed: SEED,
    numRuns: opts.numRuns,
    examples: opts.examples.map((e): Tuple => [e]),
    ...(replay ? { path: process.env.FUZZ_PATH! } : {}),
    // Bounds the run, shrinking included; a run cut short before its numRuns fails too.
    plugins: [fc.interruptAfterTimeLimit(opts.budgetMs, { failOnInterrupt: true })],
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (!details.failed) return;
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  assert.fail([
    `fuzz property "${name}" failed after ${details.numRuns} runs and ${details.numShrinks} shrinks (${seconds} s${details.interrupted ? ', interrupted at the time limit' : ''})`,
    `seed ${details.seed}, counterexample path ${JSON.stringify(details.counterexamplePath)}`,
    `replay: FUZZ_SEED=${details.seed} FUZZ_PATH=${JSON.stringify(details.counterexamplePath)} FUZZ_PROPERTY=${JSON.stringify(name)}`,
    `counterexample: ${details.counterexample ? opts.describe(details.counterexample[0]) : '(none)'}`,
    `error: ${error}`,
  ].join('\n'));
}

function describeRequest(req: HttpRequest): string {
  return `${req.method} ${req.path}${req.query} params=${JSON.stringify(req.params)} auth=${req.auth} headers=${show(req.headers, 200)} content-type=${req.contentType} body=${show(req.body.kind === 'json' ? render(req.body.node, (r) => `<${r}>`) : req.body, 400)}`;
}

function describeSocketSession(s: SocketSession): string {
  const frames = (s.hello ? [{ kind: 'json', node: s.hello } as SocketFrame, ...s.frames] : s.frames)
    .map((f) => (f.kind === 'json' ? render(f.node, (r) => `<${r}>`) : f.kind === 'text' ? f.text : '<binary>'));
  return `${s.path}${s.query} auth=${s.auth} frames=${show(frames, 800)}`;
}

/** Whether a request carries a NUL or an unpaired surrogate anywhere. */
function isHostile(w: World, req: HttpRequest): boolean {
  const sent = materialize(w, req);
  return hostileText(sent.url) || Object.entries(sent.headers).some(([k, v]) => hostileText(k) || hostileText(v))
    || (sent.text !== undefined && (jsonHostile(sent.text) || (req.body.kind === 'bytes' && req.body.bytes[0] === 0xed)));
}

function socketIsHostile(w: World, s: SocketSession): boolean {
  const frames = s.hello ? [{ kind: 'json', node: s.hello } as SocketFrame, ...s.frames] : s.frames;
  return hostileText(s.query) || frames.some((f) => f.kind !== 'binary' && jsonHostile(frameText(w, f) as string));
}

// ---------------------------------------------------------------------------------------
// The suite

export interface FuzzCounts {
  /** Requests per route. */
  route: number;
  /** Sessions per socket op (and as many with messages of any op). */
  op: number;
  /** Hostile requests each followed by an audited one. */
  audit: number;
}

/** The op a fixed socket example is about: its first message's, or hello. */
function exampleOp(s: SocketSession): string {
  const first = s.frames[0];
  if (first?.kind !== 'json' || !('obj' in first.node)) return 'hello';
  const op = first.node.obj.find(([k]) => k === 'op')?.[1];
  return op && 'str' in op ? op.str : 'hello';
}

export function fuzzSuite(store: Store, defaults: FuzzCounts): void {
  const counts: FuzzCounts = RUNS === undefined
    ? defaults
    : { route: Math.max(1, Math.round(RUNS / ROUTES.length)), op: Math.max(1, Math.round(RUNS / 5 / (SOCKET_OPS.length + 1))), audit: Math.max(1, Math.round(RUNS / 10)) };
  const timeout = 300_000;
  const budgetMs = 120_000;

  describe(`fuzz on ${store} (seed ${SEED})`, () => {
    // One property per route, so that a failure on one does not hide the others.
    describe(`HTTP: every route, ${counts.route} requests each: no 5xx, stable error codes, no state change when refused, no non-finite number accepted, submits stored as sent`, () => {
      let w: World;
      before(async () => { w = await World.open(store); });
      after(() => w?.close());

      for (const route of ROUTES) {
        it(route.key, { timeout }, async () => {
          await runProperty(`HTTP ${route.key}`, requestFor(route), (req) => checkHttpRequest(w, req), {
            numRuns: counts.route, examples: HTTP_EXAMPLES.filter((e) => e.route === route.key), budgetMs, describe: describeRequest,
          });
        });
      }

      it('the run exercised refusals of every kind, and some requests got through', () => {
        w.report('HTTP answers by status');
        for (const status of [400, 401, 403, 404, 409, 415]) assert.ok((w.seen.get(status) ?? 0) > 0, `no ${status} in ${JSON.stringify([...w.seen])}`);
        assert.ok([...w.seen.keys()].some((s) => s < 300), `nothing succeeded: ${JSON.stringify([...w.seen])}`);
      });

      it('afterwards, the audit log still records', async () => {
        await w.assertAuditRecords('after the HTTP run', 'agent');
      });

      it('the event stream refuses malformed positions and filters', async () => {
        for (const [url, headers] of [
          ['/api/v1/events?after=-1', {}],
          ['/api/v1/events?after=abc', {}],
          ['/api/v1/events?after=1e400', {}],
          ['/api/v1/events?type=' + 'x'.repeat(100), {}],
          ['/api/v1/events?bogus=1', {}],
          ['/api/v1/events', { 'last-event-id': 'not-a-number' }],
          ['/api/v1/events', { 'last-event-id': '1e400' }],
        ] as const) {
          // An accepted one would stream forever: inject() hangs up on it.
          const res = await inject(w, { method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}`, ...headers }, payload: undefined, text: undefined });
          assert.equal(res.status, 400, `${url} ${JSON.stringify(headers)}: ${res.status} ${res.body}`);
        }
      });

      it('two idempotency keys that differ only in an unpaired surrogate never name the same task', async () => {
        const pairs: Array<[string, string]> = [['k\ud800', 'k\udfff'], ['\ud800', '\udc00'], ['fz-\udbff', 'fz-\ufffd']];
        for (const [i, [a, b]] of pairs.entries()) {
          const submit = (key: string) => w.h.app.inject({
            method: 'POST', url: '/api/v1/tasks', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
            payload: JSON.stringify({ agent: 'parked', idempotencyKey: `${key}-${i}`, input: key }),
          });
          const first = await submit(a);
          const second = await submit(b);
          const where = `keys ${show(`${a}-${i}`)} → ${first.statusCode} ${show(first.body, 200)}; ${show(`${b}-${i}`)} → ${second.statusCode} ${show(second.body, 200)}`;
          assert.ok(first.statusCode < 500 && second.statusCode < 500, `server error: ${where}`);
          if (first.statusCode < 300 && second.statusCode < 300) {
            assert.notEqual(JSON.parse(second.body).id, JSON.parse(first.body).id, `one task for two idempotency keys: ${where}`);
          }
        }
        await w.prepare();
      });
    });

    describe(`WebSocket: /api/v1/socket and /api/v1/workers/socket, ${counts.op} sessions per op: replies ok:false with a stable code (never a 5xx one), no state change when refused, no server close`, () => {
      let w: World;
      before(async () => { w = await World.open(store); });
      after(() => w?.close());

      for (const op of [...SOCKET_OPS, undefined]) {
        const name = op === undefined ? 'messages of any op, junk frames, binary frames' : `op ${op}`;
        it(name, { timeout }, async () => {
          await runProperty(`socket ${name}`, sessionFor(op), (s) => checkSocketSession(w, s), {
            numRuns: counts.op, examples: op === undefined ? [] : SOCKET_EXAMPLES.filter((e) => exampleOp(e) === op), budgetMs, describe: describeSocketSession,
          });
        });
      }

      it('refused upgrades (401, 403) are in the audit log', { timeout }, async () => {
        const upgrade: fc.Arbitrary<SocketSession> = fc.tuple(fc.constantFrom<SocketSession['path']>('/api/v1/socket', '/api/v1/workers/socket'), fc.constantFrom<Auth>(...WIRE_AUTHS))
          .map(([path, auth]): SocketSession => ({ path, query: '', auth, hello: null, frames: [] }));
        await runProperty('socket refused upgrades are audited', upgrade, (s) => checkSocketSession(w, s, true), {
          numRuns: Math.max(10, counts.op), examples: [{ path: '/api/v1/socket', query: '', auth: 'none', hello: null, frames: [] }], budgetMs, describe: describeSocketSession,
        });
      });

      it('some messages got through and some were refused', () => {
        w.report('socket replies by status');
        assert.ok((w.seen.get(200) ?? 0) > 0, `nothing succeeded: ${JSON.stringify([...w.seen])}`);
        assert.ok((w.seen.get(400) ?? 0) > 0, `nothing was refused: ${JSON.stringify([...w.seen])}`);
      });

      it('afterwards, the audit log still records', async () => {
        await w.assertAuditRecords('after the socket run', 'agent');
      });
    });

    describe('audit: entries recorded after a hostile (NUL, unpaired surrogate) request', () => {
      let w: World;
      before(async () => { w = await World.open(store); });
      after(() => w?.close());

      type Probe = { http: HttpRequest } | { socket: SocketSession };
      const probe: fc.Arbitrary<Probe> = fc.oneof(
        { weight: 4, arbitrary: httpRequest.map((http): Probe => ({ http })) },
        { weight: 1, arbitrary: socketSession.map((socket): Probe => ({ socket })) },
      );
      it(`${counts.audit} hostile requests, each followed by an audited one that must show in GET /api/v1/audit`, { timeout }, async () => {
        await runProperty('audit after hostile requests', probe, async (p) => {
          await w.prepare('socket' in p);
          fc.pre('http' in p ? isHostile(w, p.http) : socketIsHostile(w, p.socket));
          let what: string;
          if ('http' in p) {
            const sent = materialize(w, p.http);
            const res = await inject(w, sent);
            what = `${describeSent(w, sent)} → ${res.status} ${show(res.body, 200)}`;
          } else {
            const opened = await openSocket(w.wsBase + p.socket.path + p.socket.query, w.auth[p.socket.auth]);
            const log: string[] = [];
            if ('client' in opened) {
              for (const f of p.socket.hello ? [{ kind: 'json', node: p.socket.hello } as SocketFrame, ...p.socket.frames] : p.socket.frames) {
                const text = frameText(w, f);
                opened.client.ws.send(text, { binary: typeof text !== 'string' });
                const reply = await opened.client.next();
                log.push(`${typeof text === 'string' ? show(text, 200) : '<binary>'} → ${show(reply, 200)}`);
                if (reply === null) break;
              }
              await opened.client.close();
            }
            what = `socket ${describeSocketSession(p.socket)}: ${log.join(' | ')}`;
          }
          await w.settle(20);
          await w.assertAuditRecords(`after ${what}`);
        }, {
          numRuns: counts.audit,
          examples: [...HTTP_EXAMPLES.map((http): Probe => ({ http })), ...SOCKET_EXAMPLES.slice(0, 3).map((socket): Probe => ({ socket }))],
          budgetMs,
          describe: (p) => ('http' in p ? describeRequest(p.http) : describeSocketSession(p.socket)),
        });
      });
    });
  });
}
