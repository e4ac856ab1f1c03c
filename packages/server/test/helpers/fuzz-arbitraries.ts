// fast-check generators for the fuzz suite (helpers/fuzz-suite.ts): requests to every route
// of the HTTP API and messages for every op of the WebSocket protocol, valid in shape but
// with hostile leaves (NUL, unpaired UTF-16 surrogates, non-finite and huge numbers, deep
// nesting, prototype keys, very long strings, wrong types), plus hostile envelopes (wrong
// content types, broken or empty bodies, invalid UTF-8, bad tokens).
//
// Bodies are JSON *text* trees (JNode), rendered at run time: so a body can hold what no JS
// value serializes to (`1e400`, duplicate keys, `__proto__` as an own key), and refer to
// things that exist only on the server under test (`{ ref: 'assignment' }` becomes the id of
// a live assignment). Everything here is plain data: fast-check can shrink it and print it.

import fc from 'fast-check';
import { PRIORITY_MAX, PRIORITY_MIN, ROLES, TASK_STATUSES, TOKEN_SCOPES } from '@flotilla/sdk';
import { ROUTE_ACTIONS } from '../../src/http/route-actions.ts';

// ---------------------------------------------------------------------------------------
// JSON text trees

/** Things that exist only on the server under test, resolved when a request is sent (see fuzz-suite.ts). */
export const REFS = ['task', 'pendingTask', 'failedTask', 'assignment', 'replica', 'agent', 'victimAgent', 'key', 'jti', 'sockAssignment', 'sockReplica'] as const;
export type Ref = (typeof REFS)[number];

export type JNode =
  /** Raw JSON text, e.g. `1e400`, `-0`, a 3000-deep nesting. */
  | { lit: string }
  /** A string, written with JSON.stringify (so `\ud800` and `\u0000` travel as escapes). */
  | { str: string }
  /** The id of a live thing, optionally with text around it. */
  | { ref: Ref; pre?: string; post?: string }
  | { arr: JNode[] }
  /** Entries in order; keys may repeat. */
  | { obj: Array<[string, JNode]> };

export type Resolve = (ref: Ref) => string;

export function render(node: JNode, resolve: Resolve): string {
  if ('lit' in node) return node.lit;
  if ('str' in node) return JSON.stringify(node.str);
  if ('ref' in node) return JSON.stringify(`${node.pre ?? ''}${resolve(node.ref)}${node.post ?? ''}`);
  if ('arr' in node) return `[${node.arr.map((n) => render(n, resolve)).join(',')}]`;
  return `{${node.obj.map(([k, v]) => `${JSON.stringify(k)}:${render(v, resolve)}`).join(',')}}`;
}

// ---------------------------------------------------------------------------------------
// Leaves

/** NUL and unpaired surrogates (high, low; first and last of each range). */
export const HOSTILE_CHARS = ['\u0000', '\ud800', '\udbff', '\udc00', '\udfff'] as const;
const hostileChar = fc.constantFrom(...HOSTILE_CHARS);

const insertAt = (s: string, c: string, i: number): string => {
  const at = i % (s.length + 1);
  return s.slice(0, at) + c + s.slice(at);
};

/** Strings known to upset parsers, stores and validators. */
const oddString = fc.constantFrom(
  '', ' ', 'x'.repeat(129), 'x'.repeat(300), 'x'.repeat(5_000), '\u{1F680}'.repeat(50), 'ünïcödé ✓', '../../etc/passwd', '%00', '%ED%A0%80',
  '<script>', "' OR 1=1 --", '__proto__', 'constructor', 'prototype', 'toString', '1e400', '-1e400', 'NaN', 'Infinity', '-1', 'null',
  '\u2028\u2029', '\ufeff', '\uffff', '\ufffd', '\udc00\ud800', 'a\ud83d', '\ude80b', '\u{1F680}', 'a\\u0000b', '"', '\\',
);

/** A string with a NUL or an unpaired surrogate in it, or a known odd one. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: hostileChar },
  { weight: 3, arbitrary: fc.tuple(fc.string({ maxLength: 8 }), hostileChar, fc.nat()).map(([s, c, i]) => insertAt(s, c, i)) },
  { weight: 3, arbitrary: oddString },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('\u0000', '\ud800', '\udfff', 'a', 'é', '\u{1F680}', '"', '\\'), minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
);

/** Number literals: overflow to ±Infinity, underflow, -0, beyond 2^53, 2^63, 2^31, fractions. */
export const HOSTILE_NUMBERS = [
  '1e400', '-1e400', '1E400', '1e309', '-1e309', '-0', '1e-400', '123456789012345678901234567890', '9007199254740993',
  '9223372036854775808', '-9223372036854775809', '2147483648', '4294967296', '1.5', '-1', '0', '100.000001', '1e2', '0.0',
] as const;

const str = (a: fc.Arbitrary<string>): fc.Arbitrary<JNode> => a.map((s) => ({ str: s }));
const lit = (...texts: string[]): fc.Arbitrary<JNode> => fc.constantFrom(...texts).map((text) => ({ lit: text }));
const int = (min: number, max: number): fc.Arbitrary<JNode> => fc.integer({ min, max }).map((n) => ({ lit: String(n) }));
const arr = (a: fc.Arbitrary<JNode>, c: fc.ArrayConstraints = {}): fc.Arbitrary<JNode> => fc.array(a, c).map((items) => ({ arr: items }));
const ref = (r: Ref): fc.Arbitrary<JNode> => fc.constant({ ref: r });

export const hostileNumber: fc.Arbitrary<JNode> = lit(...HOSTILE_NUMBERS);

const deepNesting: fc.Arbitrary<JNode> = fc.tuple(fc.constantFrom(63, 64, 65, 200, 3_000), fc.boolean())
  .map(([n, asArray]) => ({ lit: asArray ? '['.repeat(n) + ']'.repeat(n) : '{"a":'.repeat(n) + '1' + '}'.repeat(n) }));

export const hostileKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'hasOwnProperty', '', 'x'.repeat(300), '\u0000', '\ud800', '\udfff', 'a\u0000b', 'k\udc00'),
  hostileString,
);

const shallowHostile: fc.Arbitrary<JNode> = fc.oneof(str(hostileString), hostileNumber);

/** A hostile value where a valid one is expected. */
export const hostileLeaf: fc.Arbitrary<JNode> = fc.oneof(
  { weight: 6, arbitrary: str(hostileString) },
  { weight: 4, arbitrary: hostileNumber },
  { weight: 1, arbitrary: lit('true', 'false', 'null', '[]', '{}', '""', '[null]', '{"":null}') },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: arr(str(hostileString), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.tuple(hostileKey, shallowHostile).map(([k, v]): JNode => ({ obj: [[k, v]] })) },
  // A real id with a NUL or a surrogate next to it.
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom<Ref>('task', 'assignment', 'replica', 'agent', 'key'), hostileChar, fc.boolean()).map(([r, c, before]): JNode => (before ? { ref: r, pre: c } : { ref: r, post: c })) },
);

/** Any JSON, hostile strings and numbers included (what `input` and `result` accept). */
const anyJson: fc.Arbitrary<JNode> = fc.letrec<{ node: JNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    shallowHostile,
    fc.jsonValue({ maxDepth: 2 }).map((v): JNode => ({ lit: JSON.stringify(v) })),
    arr(tie('node'), { maxLength: 3 }),
    fc.array(fc.tuple(fc.oneof(hostileKey, fc.string({ maxLength: 6 })), tie('node')), { maxLength: 3 }).map((obj): JNode => ({ obj })),
  ),
})).node;

type Fields = Record<string, fc.Arbitrary<JNode>>;

/** How many leaves of a body are made hostile: none, one or two. */
const hostileLeaves = fc.oneof(
  { weight: 9, arbitrary: fc.constant([] as Array<[number, JNode]>) },
  { weight: 8, arbitrary: fc.array(fc.tuple(fc.nat(), hostileLeaf), { minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.array(fc.tuple(fc.nat(), hostileLeaf), { minLength: 2, maxLength: 2 }) },
);

/**
 * An object of the given fields, valid in shape: the required ones (mostly), a few optional
 * ones, each with a valid value; then none, one or two of its leaves replaced by hostile
 * ones, and sometimes extra keys (unknown, hostile, or a duplicate of a known one).
 */
function shaped(fields: Fields, required: string[] = [], maxOptional = 4): fc.Arbitrary<JNode> {
  const names = Object.keys(fields);
  const optional = names.filter((n) => !required.includes(n));
  const extraKey = names.length ? fc.oneof(hostileKey, fc.constantFrom(...names)) : hostileKey;
  const extras = fc.oneof(
    { weight: 8, arbitrary: fc.constant([] as Array<[string, JNode]>) },
    { weight: 1, arbitrary: fc.array(fc.tuple(extraKey, fc.oneof(hostileLeaf, ...Object.values(fields))), { minLength: 1, maxLength: 2 }) },
  );
  const keys = fc.tuple(
    required.length ? fc.oneof({ weight: 8, arbitrary: fc.constant(required) }, { weight: 1, arbitrary: fc.subarray(required) }) : fc.constant([] as string[]),
    fc.subarray(optional, { maxLength: Math.min(maxOptional, optional.length) }),
  ).map(([r, o]) => [...r, ...o]);
  return keys.chain((ks) => fc.tuple(fc.tuple(...ks.map((k) => fields[k]!)), hostileLeaves, extras).map(([values, hostile, extra]): JNode => {
    const entries = ks.map((k, i): [string, JNode] => [k, values[i]!]);
    for (const [at, node] of hostile) if (entries.length > 0) entries[at % entries.length]![1] = node;
    return { obj: [...entries, ...extra] };
  }));
}

// ---------------------------------------------------------------------------------------
// Valid values

const word = str(fc.constantFrom('a', 'report', 'nlp', 'gpu', 'ünïcödé', 'x y', 'fz', '\u{1F680}'));
const text = fc.oneof(word, str(fc.string({ minLength: 1, maxLength: 12 })));
const bool = lit('true', 'false');
const iso = str(fc.constantFrom('2030-01-01T00:00:00.000Z', '2020-01-01T00:00:00Z', '2031-06-15T12:30:00+02:00', 'not-a-date'));
const existingAgent = fc.oneof(str(fc.constantFrom('echo', 'analyst', 'parked', 'sock', 'failer', 'nobody')), ref('agent'));
const newAgentName = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/).map((n): JNode => ({ str: `fz-${n}` }));
const tags = arr(word, { minLength: 1, maxLength: 3 });
const correlation = fc.array(fc.tuple(fc.oneof(fc.constantFrom('k', 'run', 'x'.repeat(65)), hostileKey), fc.oneof(word, str(hostileString))), { maxLength: 3 })
  .map((obj): JNode => ({ obj }));
const taskRef = fc.oneof(ref('task'), ref('pendingTask'), ref('failedTask'));

const taskFields: Fields = {
  type: text,
  agent: existingAgent,
  capabilities: tags,
  input: anyJson,
  priority: int(PRIORITY_MIN, PRIORITY_MAX),
  maxAttempts: int(1, 5),
  timeoutMs: int(1, 600_000),
  runAt: iso,
  // Nothing may come due during a run (see fuzz-suite.ts): now, or an hour from now.
  delayMs: lit('0', '3600000'),
  idempotencyKey: text,
  concurrencyKey: word,
  replica: ref('replica'),
  site: word,
  correlation,
  traceparent: str(fc.constantFrom('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '00-xyz')),
  parentId: taskRef,
};
const { agent: _agent, capabilities: _capabilities, ...assignFields } = taskFields;
const taskSpec = fc.oneof({ weight: 4, arbitrary: shaped(taskFields, ['agent']) }, { weight: 1, arbitrary: shaped(taskFields, ['capabilities']) });

const agentFields: Fields = {
  description: text,
  capabilities: tags,
  maxConcurrency: int(100, 10_000),
  maxAttempts: int(1, 5),
  timeoutMs: int(1, 600_000),
  level: int(1, 9),
  toolDomains: tags,
  concurrencyLimits: fc.array(fc.tuple(fc.oneof(fc.constantFrom('k', 'gpu'), hostileKey), int(0, 10)), { maxLength: 2 }).map((obj): JNode => ({ obj })),
  retry: shaped({ baseDelayMs: int(3_600_000, 86_400_000), maxDelayMs: int(3_600_000, 604_800_000) }),
  runtime: str(fc.constantFrom('pull', 'a2a', 'process', 'other')),
};

const replicaId = fc.oneof({ weight: 6, arbitrary: ref('replica') }, { weight: 1, arbitrary: ref('sockReplica') }, { weight: 1, arbitrary: str(fc.constantFrom('r-1', 'unknown-replica')) });
const percent = fc.oneof(int(0, 100), lit('12.5', '99.999'));
const errorInfo = shaped({ message: text, code: word, details: anyJson }, ['message']);

/** The body of each route (undefined: the route takes none; it still gets hostile ones). */
const BODIES: Record<string, fc.Arbitrary<JNode> | undefined> = {
  'POST /api/v1/tasks': taskSpec,
  'POST /api/v1/tasks/batch': shaped({ tasks: arr(taskSpec, { minLength: 1, maxLength: 3 }) }, ['tasks']),
  'POST /api/v1/tasks/:id/cancel': shaped({ reason: text }),
  'POST /api/v1/agents': shaped({ name: fc.oneof(newAgentName, existingAgent), ...agentFields }, ['name']),
  'PATCH /api/v1/agents/:name': shaped(agentFields),
  'POST /api/v1/agents/:name/assign': shaped(assignFields),
  'POST /api/v1/workers/register': shaped({ agent: existingAgent, replicaId: fc.oneof(replicaId, text), site: word, maxConcurrency: int(1, 1_000) }, ['agent']),
  'POST /api/v1/workers/:replicaId/lease': shaped({ max: int(1, 3), waitMs: int(0, 20) }),
  'POST /api/v1/assignments/:assignmentId/start': shaped({ replicaId }, ['replicaId']),
  'POST /api/v1/assignments/:assignmentId/heartbeat': shaped({ replicaId, percent, message: text }, ['replicaId']),
  'POST /api/v1/assignments/:assignmentId/progress': shaped({ replicaId, percent, message: text }, ['replicaId', 'percent']),
  'POST /api/v1/assignments/:assignmentId/complete': shaped({ replicaId, result: anyJson }, ['replicaId']),
  'POST /api/v1/assignments/:assignmentId/fail': shaped({ replicaId, error: errorInfo, retryable: bool }, ['replicaId', 'error']),
  'POST /api/v1/assignments/:assignmentId/cancelled': shaped({ replicaId }, ['replicaId']),
  'POST /api/v1/assignments/:assignmentId/token': shaped({ replicaId }, ['replicaId']),
  'POST /api/v1/keys': shaped({ name: text, role: str(fc.constantFrom(...ROLES, 'root')), agents: arr(existingAgent, { minLength: 1, maxLength: 2 }), expiresAt: iso }, ['name', 'role']),
  'POST /api/v1/tokens': shaped({
    scopes: arr(str(fc.constantFrom(...TOKEN_SCOPES, 'key.manage')), { minLength: 1, maxLength: 3 }),
    agents: arr(existingAgent, { maxLength: 2 }),
    rootTaskId: taskRef,
    ttlSeconds: int(60, 7_200),
    maxLifetimeSeconds: int(60, 86_400),
    name: text,
  }, ['scopes']),
};

// ---------------------------------------------------------------------------------------
// Query strings, path parameters

/** Query parameters that are numbers (a non-finite value there must be refused). */
export const NUMERIC_QUERY = new Set(['after', 'limit', 'before', 'waitMs', 'priority']);

type QueryFields = Record<string, fc.Arbitrary<string>>;
const q = (...values: string[]) => fc.constantFrom(...values);
const qInt = (min: number, max: number) => fc.integer({ min, max }).map(String);
const statuses = q(...TASK_STATUSES, 'bogus');
const QUERIES: Record<string, QueryFields> = {
  'GET /api/v1/tasks': { status: statuses, agent: q('echo', 'parked', 'nobody'), priority: qInt(0, 9), parentId: q('x'), limit: qInt(1, 500), cursor: q('abc', 'eyJ9') },
  'GET /api/v1/tasks/:id': { waitMs: qInt(0, 20) },
  'GET /api/v1/tasks/:id/events': { after: qInt(0, 1_000), limit: qInt(1, 1_000) },
  'GET /api/v1/events': { after: qInt(0, 1_000), taskId: q('x'), agent: q('echo'), type: q('task.created', 'x'.repeat(65)) },
  'GET /api/v1/events/page': { after: qInt(0, 1_000), taskId: q('x'), agent: q('echo'), type: q('task.created', 'x'.repeat(65)), limit: qInt(1, 1_000) },
  'GET /api/v1/agents/:name/queue': { status: q('pending', 'dispatched', 'running', 'completed'), limit: qInt(1, 500), cursor: q('abc') },
  'GET /api/v1/keys': { includeRevoked: q('true', 'false', '1', 'yes') },
  'GET /api/v1/audit': {
    principalId: q('x'), action: q('task.submit', 'agent.manage'), outcome: q('allowed', 'denied', 'failed', 'other'),
    since: q('2020-01-01T00:00:00Z', 'yesterday'), until: q('2030-01-01T00:00:00Z'), before: qInt(1, 1_000_000), limit: qInt(1, 1_000),
  },
};

/** Percent-encodes anything, unpaired surrogates included (as their WTF-8 bytes, which are not UTF-8). */
export function pct(s: string): string {
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch.length === 1 && code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}

/** Raw (already encoded) query values that are hostile. */
const rawHostileValue = fc.oneof(
  { weight: 4, arbitrary: q('1e400', '-1e400', '1E400', 'Infinity', '-Infinity', 'NaN', '1e309', '99999999999999999999999', '9223372036854775808', '9007199254740993', '-1', '-0', '1.5', '0x10', '%201', '') },
  { weight: 3, arbitrary: hostileString.map(pct) },
  { weight: 1, arbitrary: q('%00', 'a%00b', '%ED%A0%80', '%ED%BF%BF', '%ff', '%', '%zz', '%C0%80', '%E2%82') },
);
const rawHostileKey = fc.oneof(q('__proto__', 'constructor', 'constructor[prototype]', 'bogus', 'a%00b', '%00', '%ED%A0%80', 'status[]', ''), hostileKey.map(pct));

/** A query string for a route: its parameters with valid or hostile values, repeated keys, unknown keys. */
function queryFor(route: string): fc.Arbitrary<string> {
  const fields = QUERIES[route] ?? {};
  const names = Object.keys(fields);
  const pair: fc.Arbitrary<[string, string]> = names.length === 0
    ? fc.tuple(rawHostileKey, rawHostileValue)
    : fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...names).chain((n) => fc.tuple(fc.constant(n), fc.oneof({ weight: 3, arbitrary: fields[n]!.map(pct) }, { weight: 1, arbitrary: rawHostileValue }))) },
        { weight: 1, arbitrary: fc.tuple(rawHostileKey, rawHostileValue) },
      );
  return fc.array(pair, { maxLength: 3 }).map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));
}

/** What a path parameter is filled with: a live thing, or (already encoded) hostile text. */
export type PathParam = { ref: Ref; suffix?: string } | { raw: string };

const PARAM_REFS: Record<string, Ref[]> = {
  id: ['task', 'pendingTask', 'failedTask', 'key'],
  name: ['agent', 'victimAgent'],
  replicaId: ['replica', 'sockReplica'],
  assignmentId: ['assignment', 'sockAssignment'],
  jti: ['jti'],
};

function paramFor(name: string): fc.Arbitrary<PathParam> {
  const refs = PARAM_REFS[name] ?? ['task'];
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant<PathParam>({ ref: refs[0]! }) },
    { weight: 2, arbitrary: fc.constantFrom(...refs).map((r): PathParam => ({ ref: r })) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...refs), fc.constantFrom('%00', '%ED%A0%80', '%ff', 'x')).map(([r, suffix]): PathParam => ({ ref: r, suffix })) },
    { weight: 2, arbitrary: hostileString.map((s): PathParam => ({ raw: pct(s) || 'x' })) },
    { weight: 2, arbitrary: q('a%00b', '%00', '%ED%A0%80', '%ED%BF%BF', '%ff', '%', '%zz', '..', '.', '%2F', 'x'.repeat(2_000), '%2e%2e', 'nobody').map((raw): PathParam => ({ raw })) },
  );
}

// ---------------------------------------------------------------------------------------
// Who is asking

/** admin/operator/viewer/agent keys, a scoped token, a revoked key, and ways of not being anyone. */
export const AUTHS = ['admin', 'operator', 'viewer', 'agent', 'scoped', 'revoked', 'none', 'garbage', 'basic', 'long', 'jwt-garbage', 'nul', 'surrogate', 'lowercase'] as const;
export type Auth = (typeof AUTHS)[number];
/** Auths a real HTTP client can send (no NUL or non-Latin-1 characters in a header). */
export const WIRE_AUTHS = AUTHS.filter((a) => a !== 'nul' && a !== 'surrogate');
const authArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant<Auth>('admin') },
  { weight: 6, arbitrary: fc.constantFrom<Auth>('operator', 'viewer', 'agent', 'scoped') },
  { weight: 2, arbitrary: fc.constantFrom<Auth>(...AUTHS) },
);

// ---------------------------------------------------------------------------------------
// HTTP requests

export type Body =
  | { kind: 'none' }
  | { kind: 'json'; node: JNode }
  | { kind: 'text'; text: string }
  /** Text with raw bytes in the middle (invalid UTF-8). */
  | { kind: 'bytes'; before: string; bytes: number[]; after: string };

export interface HttpRequest {
  method: string;
  /** The route (ROUTE_ACTIONS key) the request was built for; its path may not match it. */
  route: string;
  /** Path template: `:name` segments are filled from `params`. */
  path: string;
  params: Record<string, PathParam>;
  /** Already encoded, with its `?`. */
  query: string;
  auth: Auth;
  headers: Record<string, string>;
  contentType: string | null;
  body: Body;
}

export const ROUTES = Object.keys(ROUTE_ACTIONS).map((key) => {
  const [method, path] = key.split(' ') as [string, string];
  return { key, method, path };
});

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8'];
const OTHER_CONTENT_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/jsonx', 'APPLICATION/JSON', ''];

const hostileBody: fc.Arbitrary<Body> = fc.oneof(
  fc.constant<Body>({ kind: 'none' }),
  fc.constantFrom('', ' ', 'null', '[]', '"x"', '1e400', '-1e400', '{}', 'true', '{"unterminated": ', 'not json at all', '{"a":1,}', "{'a':1}",
    '\ufeff{}', '{"a":1}{"b":2}', '{"__proto__":{"admin":true},"agent":"echo"}', '{"constructor":{"prototype":{"polluted":1}},"agent":"echo"}',
    '{"agent":"echo","agent":"analyst"}', '{"a":"\\ud800"}', '{"\\ud800":1}', '{"a":"\\u0000"}', '{"a":"\\x"}', '{"input":"' + 'x'.repeat(70 * 1024) + '"}')
    .map((t): Body => ({ kind: 'text', text: t })),
  deepNesting.map((n): Body => ({ kind: 'text', text: (n as { lit: string }).lit })),
  fc.constantFrom<number[]>([0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xff, 0xfe], [0xc0, 0x80], [0x00], [0xe2, 0x82])
    .map((bytes): Body => ({ kind: 'bytes', before: '{"agent":"echo","input":"', bytes, after: '"}' })),
);

const extraHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.record({
      'x-request-id': fc.oneof(hostileString, q('fz', 'x'.repeat(5_000))),
      'last-event-id': fc.oneof(q('0', '5', '1e400', '99999999999999999999999', '-1', 'abc', ''), hostileString),
      origin: q('https://evil.example', 'null', '\u0000'),
      accept: q('text/event-stream', '*/*', 'application/xml'),
      'x-forwarded-for': q('1.2.3.4', '\u0000', '\ud800'),
      'user-agent': hostileString,
    }, { requiredKeys: [] }).map((h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, String(v).replace(/[\r\n]/g, '')]))),
  },
);

/** A request aimed at one route (ROUTE_ACTIONS key). */
export function requestFor(route: { key: string; method: string; path: string }): fc.Arbitrary<HttpRequest> {
  const paramNames = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
  const shapedBody = BODIES[route.key];
  const body: fc.Arbitrary<Body> = shapedBody
    ? fc.oneof({ weight: 6, arbitrary: shapedBody.map((node): Body => ({ kind: 'json', node })) }, { weight: 1, arbitrary: hostileBody })
    : fc.oneof({ weight: 3, arbitrary: fc.constant<Body>({ kind: 'none' }) }, { weight: 1, arbitrary: hostileBody });
  return fc.record({
    method: fc.oneof({ weight: 12, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: q('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') }),
    route: fc.constant(route.key),
    path: fc.oneof({ weight: 30, arbitrary: fc.constant(route.path) }, { weight: 1, arbitrary: q('/api/v1/%00', '/api/v1/tasks/', '/api/v1//tasks', '/API/V1/TASKS', '/api/v2/tasks', '/api/v1/tasks/a/b/c') }),
    params: fc.record(Object.fromEntries(paramNames.map((n) => [n, paramFor(n)]))) as fc.Arbitrary<Record<string, PathParam>>,
    query: queryFor(route.key),
    auth: authArb,
    headers: extraHeaders,
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...CONTENT_TYPES) }, { weight: 1, arbitrary: fc.constantFrom<string | null>(...OTHER_CONTENT_TYPES, null) }),
    body,
  });
}

/** A request to any route of ROUTE_ACTIONS (all of them, equally often). */
export const httpRequest: fc.Arbitrary<HttpRequest> = fc.oneof(...ROUTES.map(requestFor));

// ---------------------------------------------------------------------------------------
// Socket messages

export type SocketFrame = { kind: 'json'; node: JNode } | { kind: 'text'; text: string } | { kind: 'binary' };

export interface SocketSession {
  path: '/api/v1/socket' | '/api/v1/workers/socket';
  /** Already encoded, with its `?`. */
  query: string;
  auth: Auth;
  /** Sent first when present (most sessions say hello). */
  hello: JNode | null;
  frames: SocketFrame[];
}

const sockAssignment = fc.oneof({ weight: 4, arbitrary: ref('sockAssignment') }, { weight: 1, arbitrary: ref('assignment') });
const messageId = fc.oneof(
  { weight: 8, arbitrary: fc.nat(1_000_000).map((n): JNode => ({ lit: String(n) })) },
  { weight: 2, arbitrary: str(fc.string({ minLength: 1, maxLength: 8 })) },
  { weight: 2, arbitrary: fc.oneof(hostileLeaf, lit('-1', '9007199254740993', '1e400', 'null', '1.5')) },
);

const OP_FIELDS: Record<string, [Fields, string[]]> = {
  hello: [{ agent: fc.oneof({ weight: 4, arbitrary: str(fc.constant('sock')) }, { weight: 1, arbitrary: existingAgent }), replicaId: fc.oneof(replicaId, text), site: word, maxConcurrency: int(1, 5), held: arr(sockAssignment, { maxLength: 2 }), drain: bool }, ['agent']],
  start: [{ assignmentId: sockAssignment }, ['assignmentId']],
  heartbeat: [{ assignmentIds: arr(sockAssignment, { maxLength: 2 }) }, ['assignmentIds']],
  progress: [{ assignmentId: sockAssignment, percent, message: text }, ['assignmentId', 'percent']],
  complete: [{ assignmentId: sockAssignment, result: anyJson }, ['assignmentId']],
  fail: [{ assignmentId: sockAssignment, error: errorInfo, retryable: bool }, ['assignmentId', 'error']],
  cancelled: [{ assignmentId: sockAssignment }, ['assignmentId']],
  token: [{ assignmentId: sockAssignment }, ['assignmentId']],
  drain: [{}, []],
  submit: [{ task: taskSpec }, ['task']],
  submitMany: [{ tasks: arr(taskSpec, { minLength: 1, maxLength: 3 }) }, ['tasks']],
  get: [{ taskId: taskRef }, ['taskId']],
  cancel: [{ taskId: taskRef, reason: text }, ['taskId']],
};

export const SOCKET_OPS = Object.keys(OP_FIELDS);

function messageFor(op: string): fc.Arbitrary<JNode> {
  const [fields, required] = OP_FIELDS[op]!;
  return fc.tuple(
    fc.oneof({ weight: 12, arbitrary: str(fc.constant(op)) }, { weight: 1, arbitrary: fc.oneof(hostileLeaf, str(q('bogus', 'constructor', '__proto__', 'toString', `${op}\u0000`, `${op}\ud800`, op.toUpperCase()))) }),
    fc.option(messageId, { freq: 12, nil: undefined }),
    shaped(fields, required),
  ).map(([opNode, id, body]): JNode => ({ obj: [['op', opNode], ...(id === undefined ? [] : [['id', id] as [string, JNode]]), ...(body as { obj: Array<[string, JNode]> }).obj] }));
}

export const socketMessage: fc.Arbitrary<JNode> = fc.oneof(...SOCKET_OPS.map(messageFor));

const junkFrame: fc.Arbitrary<SocketFrame> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('', 'null', '[]', '1e400', '"hello"', '{', 'not json', '{"op":"hello"}', '{"op":"submit","id":1,"task":{"agent":"echo","input":1e400}}', '{"id":"\\ud800","op":"get"}', '{"op":"get","id":1,"taskId":"x","__proto__":{"op":"hello"}}').map((text): SocketFrame => ({ kind: 'text', text })) },
  { weight: 1, arbitrary: fc.constant<SocketFrame>({ kind: 'binary' }) },
);

const validHello = fc.record({
  id: fc.nat(1_000).map((n): JNode => ({ lit: String(n) })),
  drain: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: bool }),
}).map(({ id, drain }): JNode => ({ obj: [['op', { str: 'hello' }], ['id', id], ['agent', { str: 'sock' }], ...(drain ? [['drain', drain] as [string, JNode]] : [])] }));

/**
 * A session on either socket: mostly a valid hello, then 1 to 5 messages of one op (or, for
 * `op` undefined, of any op, or not JSON at all, or binary).
 */
export function sessionFor(op: string | undefined): fc.Arbitrary<SocketSession> {
  const frame: fc.Arbitrary<SocketFrame> = op === undefined
    ? fc.oneof({ weight: 3, arbitrary: socketMessage.map((node): SocketFrame => ({ kind: 'json', node })) }, { weight: 1, arbitrary: junkFrame })
    : fc.oneof({ weight: 8, arbitrary: messageFor(op).map((node): SocketFrame => ({ kind: 'json', node })) }, { weight: 1, arbitrary: socketMessage.map((node): SocketFrame => ({ kind: 'json', node })) });
  return fc.record({
    path: fc.constantFrom<SocketSession['path']>('/api/v1/socket', '/api/v1/workers/socket'),
    query: fc.oneof({ weight: 10, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.tuple(rawHostileKey, rawHostileValue).map(([k, v]) => `?${k}=${v}`) }),
    auth: fc.oneof({ weight: 8, arbitrary: fc.constant<Auth>('admin') }, { weight: 4, arbitrary: fc.constantFrom<Auth>('agent', 'operator', 'viewer', 'scoped') }, { weight: 1, arbitrary: fc.constantFrom<Auth>(...WIRE_AUTHS) }),
    hello: op === 'hello'
      ? fc.oneof({ weight: 1, arbitrary: messageFor('hello') }, { weight: 1, arbitrary: fc.constant(null) })
      : fc.oneof({ weight: 6, arbitrary: validHello }, { weight: 1, arbitrary: messageFor('hello') }, { weight: 1, arbitrary: fc.constant(null) }),
    frames: fc.array(frame, { minLength: 1, maxLength: 5 }),
  });
}

export const socketSession: fc.Arbitrary<SocketSession> = sessionFor(undefined);

// ---------------------------------------------------------------------------------------
// Fixed examples: the reproducers from the issue, run first on every run.

const s = (v: string): JNode => ({ str: v });
const o = (...entries: Array<[string, JNode]>): JNode => ({ obj: entries });
const l = (v: string): JNode => ({ lit: v });

function example(route: string, opts: Partial<HttpRequest> & { json?: JNode } = {}): HttpRequest {
  const [method, path] = route.split(' ') as [string, string];
  const { json, ...rest } = opts;
  const params: Record<string, PathParam> = {};
  for (const m of path.matchAll(/:([A-Za-z]+)/g)) params[m[1]!] = { ref: PARAM_REFS[m[1]!]![0]! };
  return {
    method, route, path, params, query: '', auth: 'admin', headers: {}, contentType: 'application/json',
    body: json ? { kind: 'json', node: json } : { kind: 'none' }, ...rest,
  };
}

const live = (extra: Array<[string, JNode]>) => o(['replicaId', { ref: 'replica' }], ...extra);

export const HTTP_EXAMPLES: HttpRequest[] = [
  example('POST /api/v1/tasks/:id/cancel', { params: { id: { raw: 'a%00b' } }, auth: 'none', contentType: null }),
  example('POST /api/v1/tasks', { json: o(['agent', s('echo')], ['input', s('\ud800')]) }),
  example('POST /api/v1/tasks', { json: o(['agent', s('echo')], ['input', l('1e400')]) }),
  example('POST /api/v1/tasks', { json: o(['agent', s('echo')], ['type', s('\ud800')]) }),
  example('POST /api/v1/tasks', { json: o(['agent', s('echo')], ['correlation', o(['k', s('\udfff')])]) }),
  example('POST /api/v1/tasks', { json: o(['agent', s('echo')], ['correlation', o(['\ud800', s('v')])]) }),
  example('POST /api/v1/tasks', { json: o(['agent', s('echo')], ['site', s('\ud800')]) }),
  example('POST /api/v1/tasks', { json: o(['capabilities', { arr: [s('\ud800')] }]) }),
  example('POST /api/v1/tasks', { json: o(['agent', s('echo')], ['idempotencyKey', s('k\ud800')]) }),
  example('POST /api/v1/tasks/batch', { json: o(['tasks', { arr: [o(['agent', s('echo')], ['input', s('\udfff')])] }]) }),
  example('POST /api/v1/tasks/:id/cancel', { params: { id: { ref: 'pendingTask' } }, json: o(['reason', s('\ud800')]) }),
  example('POST /api/v1/assignments/:assignmentId/progress', { json: live([['percent', l('50')], ['message', s('\ud800')]]) }),
  example('POST /api/v1/assignments/:assignmentId/heartbeat', { json: live([['percent', l('50')], ['message', s('\udfff')]]) }),
  example('POST /api/v1/assignments/:assignmentId/complete', { json: live([['result', s('\ud800')]]) }),
  example('POST /api/v1/assignments/:assignmentId/complete', { json: live([['result', l('1e400')]]) }),
  example('POST /api/v1/assignments/:assignmentId/fail', { json: live([['error', o(['message', s('\ud800')], ['code', s('\udfff')])]]) }),
  example('POST /api/v1/agents', { json: o(['name', s('fz-surrogate')], ['capabilities', { arr: [s('\ud800')] }]) }),
  example('POST /api/v1/agents', { json: o(['name', s('fz-surrogate-2')], ['description', s('\udfff')]) }),
  example('POST /api/v1/workers/register', { json: o(['agent', s('echo')], ['replicaId', s('\ud800')]) }),
  example('POST /api/v1/workers/register', { json: o(['agent', s('echo')], ['site', s('\ud800')]) }),
  example('GET /api/v1/events/page', { query: '?after=1e400', contentType: null }),
  example('GET /api/v1/events/page', { query: '?limit=1e400', contentType: null }),
  example('GET /api/v1/events/page', { query: '?after=Infinity', contentType: null }),
  example('GET /api/v1/events/page', { query: '?after=99999999999999999999999', contentType: null }),
  example('GET /api/v1/events', { query: '?after=1e400', contentType: null }),
  example('GET /api/v1/events', { headers: { 'last-event-id': '99999999999999999999999' }, contentType: null }),
  example('GET /api/v1/tasks/:id/events', { query: '?after=1e400', contentType: null }),
  example('GET /api/v1/tasks/:id/events', { query: '?after=9223372036854775808', contentType: null }),
  example('GET /api/v1/audit', { query: '?before=1e400', contentType: null }),
  example('GET /api/v1/audit', { query: '?before=99999999999999999999999', contentType: null }),
  example('GET /api/v1/tasks', { query: '?limit=1e400', contentType: null }),
  example('GET /api/v1/tasks', { query: '?priority=1e400', contentType: null }),
  example('GET /api/v1/agents', { headers: { 'x-request-id': 'a\u0000b' }, contentType: null }),
  example('POST /api/v1/keys', { json: o(['name', s('\ud800')], ['role', s('viewer')]) }),
  example('POST /api/v1/tokens', { json: o(['scopes', { arr: [s('task.read')] }], ['name', s('\udfff')]) }),
];

/** A session with only the valid hello and then the given messages (op and id in front). */
function sessionExample(...frames: Array<Array<[string, JNode]>>): SocketSession {
  return {
    path: '/api/v1/workers/socket', query: '', auth: 'admin',
    hello: o(['op', s('hello')], ['id', l('0')], ['agent', s('sock')]),
    frames: frames.map((entries, i): SocketFrame => ({ kind: 'json', node: o(['id', l(String(i + 1))], ...entries) })),
  };
}

export const SOCKET_EXAMPLES: SocketSession[] = [
  sessionExample([['op', s('submit')], ['task', o(['agent', s('echo')], ['input', s('\ud800')])]]),
  sessionExample([['op', s('submit')], ['task', o(['agent', s('echo')], ['input', l('1e400')])]]),
  sessionExample([['op', s('submit')], ['task', o(['agent', s('echo')], ['type', s('\udfff')], ['correlation', o(['\ud800', s('x')])])]]),
  sessionExample([['op', s('submitMany')], ['tasks', { arr: [o(['agent', s('echo')], ['site', s('\ud800')])] }]]),
  sessionExample([['op', s('cancel')], ['taskId', { ref: 'pendingTask' }], ['reason', s('\ud800')]]),
  sessionExample([['op', s('progress')], ['assignmentId', { ref: 'sockAssignment' }], ['percent', l('5')], ['message', s('\ud800')]]),
  sessionExample([['op', s('complete')], ['assignmentId', { ref: 'sockAssignment' }], ['result', s('\udfff')]]),
  sessionExample([['op', s('fail')], ['assignmentId', { ref: 'sockAssignment' }], ['error', o(['message', s('\ud800')])]]),
  sessionExample([['op', s('get')], ['taskId', s('a\u0000b')]]),
  { path: '/api/v1/workers/socket', query: '', auth: 'admin', hello: o(['op', s('hello')], ['id', l('0')], ['agent', s('sock')], ['replicaId', s('\ud800')]), frames: [] },
  { path: '/api/v1/socket', query: '', auth: 'admin', hello: o(['op', s('hello')], ['id', s('\ud800')], ['agent', s('sock')], ['site', s('\udfff')]), frames: [] },
];
