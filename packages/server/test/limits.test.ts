// Limits: rate limiting per principal and per address, CORS allow-list, security headers,
// body size, the default bind address.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { pino } from 'pino';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../src/config/config.ts';
import { hashToken } from '../src/engine/api-keys.ts';
import { sendError, UNAVAILABLE_RETRY_AFTER_SECONDS } from '../src/http/error-handler.ts';
import { TokenBuckets, UNDECIDED_FACTOR } from '../src/http/rate-limit.ts';
import { startServer } from '../src/server.ts';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';

const SECOND_TOKEN = 'second-principal-token-0123456789';
const ORIGIN = 'https://console.example.com';

/** A second key with the admin key's role, so two principals can be compared. */
async function secondPrincipal(h: Harness): Promise<{ adminId: string; secondId: string }> {
  const admin = await h.store.apiKeyFindByHash({ hash: hashToken(TOKEN) });
  assert.ok(admin);
  const second = { ...admin, id: 'second-key', name: 'second', hash: hashToken(SECOND_TOKEN) };
  await h.store.apiKeyCreate({ key: second });
  return { adminId: admin.id, secondId: second.id };
}

async function get(h: Harness, url: string, headers: Record<string, string> = {}, remoteAddress?: string) {
  const res = await h.app.inject({ method: 'GET', url, headers, ...(remoteAddress ? { remoteAddress } : {}) });
  return { status: res.statusCode, headers: res.headers, body: res.body ? JSON.parse(res.body) : null };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('rate limiting per principal', () => {
  it('answers 429 RATE_LIMITED with Retry-After after the burst; another principal and the health checks are unaffected', async () => {
    const h = await harness({ config: { rateLimitPerSecond: 1, rateLimitBurst: 3 } });
    try {
      const { adminId } = await secondPrincipal(h);
      for (let i = 0; i < 3; i++) assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN))).status, 200, `request ${i + 1} of the burst`);
      const refused = await get(h, '/api/v1/agents', bearer(TOKEN));
      assert.equal(refused.status, 429);
      assert.equal(refused.body.error.code, 'RATE_LIMITED');
      assert.match(refused.body.error.message, /retry in 1 s/);
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(refused.headers['x-content-type-options'], 'nosniff');
      // POSTs are refused before the body is read or validated.
      const post = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: bearer(TOKEN), payload: { agent: 'nope' } });
      assert.equal(post.statusCode, 429);

      assert.equal((await get(h, '/api/v1/agents', bearer(SECOND_TOKEN))).status, 200, 'the other principal has its own budget');
      for (let i = 0; i < 10; i++) assert.equal((await get(h, '/healthz')).status, 200);
      assert.equal((await get(h, '/readyz')).status, 200);

      // The WebSocket protocol's messages take from the same bucket.
      const verdict = h.app.rateLimiter.tryConsume(adminId);
      assert.equal(verdict.ok, false);
      assert.ok(!verdict.ok && verdict.retryAfterMs > 0 && verdict.retryAfterMs <= 1000, JSON.stringify(verdict));
      assert.equal(h.app.rateLimiter.tryConsume('second-key').ok, true);

      h.advance(1_000);
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN))).status, 200, 'one request a second refills');
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN))).status, 429);
    } finally {
      await h.close();
    }
  });

  it('is off when the rate is 0', async () => {
    const h = await harness({ config: { rateLimitPerSecond: 0, rateLimitBurst: 1, rateLimitAnonymousPerMinute: 0 } });
    try {
      for (let i = 0; i < 30; i++) assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN))).status, 200);
      for (let i = 0; i < 30; i++) assert.equal((await get(h, '/api/v1/agents', bearer('wrong-token-0123456789'))).status, 401);
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN))).status, 200);
      assert.deepEqual(h.app.rateLimiter.tryConsume('anyone'), { ok: true });
    } finally {
      await h.close();
    }
  });

  it('default settings let a principal make thousands of requests a second', () => {
    const c = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'flotilla-limits-')) });
    assert.equal(c.rateLimitPerSecond, 2000);
    assert.equal(c.rateLimitBurst, 4000);
    assert.equal(c.rateLimitAnonymousPerMinute, 60);
    let now = 0;
    const buckets = new TokenBuckets({ capacity: c.rateLimitBurst, perSecond: c.rateLimitPerSecond, now: () => now });
    let allowed = 0;
    for (let i = 0; i < 5000; i++) if (buckets.tryConsume('p').ok) allowed++;
    assert.equal(allowed, 4000);
    now += 500;
    for (let i = 0; i < 1500; i++) if (buckets.tryConsume('p').ok) allowed++;
    assert.equal(allowed, 5000, 'half a second refills 1000');
    const refused = buckets.tryConsume('p');
    assert.deepEqual(refused, { ok: false, retryAfterMs: 1 });
  });

  it('idle buckets are dropped and the number of keys is bounded', () => {
    let now = 0;
    const buckets = new TokenBuckets({ capacity: 2, perSecond: 1, now: () => now, maxKeys: 10_000 });
    for (let i = 0; i < 10_000; i++) buckets.tryConsume(`a${i}`);
    now += 5_000;
    buckets.tryConsume('late');
    assert.equal(buckets.size, 1, 'refilled buckets are the same as none');
    for (let i = 0; i < 30_000; i++) buckets.tryConsume(`b${i}`);
    assert.ok(buckets.size <= 10_000, `size ${buckets.size}`);
  });
});

describe('rate limiting without a principal', () => {
  it('limits failed authentications per address, then refuses that address even with a valid token', async () => {
    const h = await harness({ config: { rateLimitAnonymousPerMinute: 3 } });
    try {
      const wrong = bearer('flt_wrong-guess-0123456789abcdef');
      for (let i = 0; i < 3; i++) {
        const res = await get(h, '/api/v1/agents', wrong, '203.0.113.7');
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'UNAUTHENTICATED');
      }
      const limited = await get(h, '/api/v1/agents', wrong, '203.0.113.7');
      assert.equal(limited.status, 429);
      assert.equal(limited.body.error.code, 'RATE_LIMITED');
      assert.equal(limited.headers['retry-after'], '20', '3 a minute: one more every 20 s');
      assert.equal(limited.headers['x-frame-options'], 'DENY');
      const noToken = await get(h, '/api/v1/agents', {}, '203.0.113.7');
      assert.equal(noToken.status, 429);
      // A blocked address cannot tell a right guess from a wrong one: its tokens are not
      // even looked up.
      const authenticate = h.engine.auth.authenticate.bind(h.engine.auth);
      let lookups = 0;
      h.engine.auth.authenticate = async (token: string) => { lookups++; return authenticate(token); };
      const valid = await get(h, '/api/v1/agents', bearer(TOKEN), '203.0.113.7');
      assert.equal(valid.status, 429);
      assert.equal(valid.body.error.code, 'RATE_LIMITED');
      assert.equal((await get(h, '/api/v1/agents', wrong, '203.0.113.7')).status, 429);
      assert.equal(lookups, 0);
      // Other addresses are not affected; health checks never are.
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN), '198.51.100.1')).status, 200);
      assert.equal((await get(h, '/api/v1/agents', wrong, '198.51.100.1')).status, 401);
      assert.equal((await get(h, '/healthz', {}, '203.0.113.7')).status, 200);
      assert.equal((await get(h, '/readyz', {}, '203.0.113.7')).status, 200);

      h.advance(20_000);
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN), '203.0.113.7')).status, 200, 'the address is unblocked as its budget refills');
      assert.equal((await get(h, '/api/v1/agents', wrong, '203.0.113.7')).status, 401);
      assert.equal((await get(h, '/api/v1/agents', wrong, '203.0.113.7')).status, 429);
    } finally {
      await h.close();
    }
  });

  it('does not charge requests whose token could not be checked: during a store outage valid principals get 503 with Retry-After, never 429, and a blocked address is still refused first', async () => {
    const h = await harness({ config: { rateLimitAnonymousPerMinute: 3 } });
    try {
      // A valid key not looked up yet: its first request needs the store.
      await secondPrincipal(h);
      const wrong = bearer('flt_wrong-guess-0123456789abcdef');
      const blocked = '203.0.113.7';
      for (let i = 0; i < 3; i++) assert.equal((await get(h, '/api/v1/agents', wrong, blocked)).status, 401);
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN), blocked)).status, 429, 'this address used its budget while the store answered');
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN))).status, 200, 'the admin key is now cached');

      // The store goes away: the real SQLite store, closed, refuses every call with
      // STORE_UNAVAILABLE (a SQLite file cannot be made to refuse a connection that is
      // already open; closing the store is the honest way to make it refuse).
      await h.store.close();
      const address = '198.51.100.1';
      for (let i = 0; i < 10; i++) {
        // The token's lookup fails: the request ends without a principal, undecided.
        const res = await get(h, '/api/v1/agents', bearer(SECOND_TOKEN), address);
        assert.equal(res.status, 503, `request ${i + 1}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'STORE_UNAVAILABLE');
        assert.equal(res.headers['retry-after'], '2');
      }
      // A cached key gets through the auth hook, and the route's own read fails.
      const cached = await get(h, '/api/v1/agents', bearer(TOKEN), address);
      assert.equal(cached.status, 503);
      assert.equal(cached.headers['retry-after'], '2');
      // A guess that cannot be checked gets no verdict either, and costs nothing.
      assert.equal((await get(h, '/api/v1/agents', bearer('flt_another-guess-0123456789abcdef'), address)).status, 503);
      assert.equal(h.app.rateLimiter.anonymous?.remaining(address), 3, 'none of those was charged to the address');
      // Requests that need no token are still counted.
      assert.equal((await get(h, '/api/v1/openapi.json', {}, address)).status, 200);
      assert.equal(h.app.rateLimiter.anonymous?.remaining(address), 2);

      // A blocked address is answered 429 before its token is looked up, store or no store.
      const refused = await get(h, '/api/v1/agents', bearer(SECOND_TOKEN), blocked);
      assert.equal(refused.status, 429);
      assert.equal(refused.body.error.code, 'RATE_LIMITED');
    } finally {
      await h.close();
    }
  });

  it('counts undecided requests in a budget of their own, ten times the anonymous one: an outage is no window for unlimited guesses', async () => {
    const h = await harness({ config: { rateLimitAnonymousPerMinute: 3 } });
    try {
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN))).status, 200, 'the admin key is cached');
      await h.store.close();
      const address = '198.51.100.2';
      for (let i = 0; i < 3 * UNDECIDED_FACTOR; i++) {
        assert.equal((await get(h, '/api/v1/agents', bearer(`flt_guess-${i}-0123456789abcdef`), address)).status, 503, `guess ${i + 1}`);
      }
      const next = await get(h, '/api/v1/agents', bearer('flt_one-more-guess-0123456789abcdef'), address);
      assert.equal(next.status, 429, 'past the undecided budget the address is blocked');
      // Blocked before the token is looked at: a cached right token gets the same answer.
      assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN), address)).status, 429);
      assert.equal(h.app.rateLimiter.anonymous?.remaining(address), 3, 'the anonymous budget itself was not charged');
      // Another address, valid principal with a cached key: its 503s are decided and free.
      for (let i = 0; i < 40; i++) assert.equal((await get(h, '/api/v1/agents', bearer(TOKEN), '198.51.100.3')).status, 503);
    } finally {
      await h.close();
    }
  });

  it('every 503 carries Retry-After, SHUTTING_DOWN as well as STORE_UNAVAILABLE', async () => {
    const app = Fastify();
    app.get('/down', (_request, reply) => sendError(reply, 'SHUTTING_DOWN', 'the server is shutting down'));
    app.get('/own', (_request, reply) => sendError(reply.header('retry-after', '30'), 'STORE_UNAVAILABLE', 'maintenance'));
    try {
      const down = await app.inject({ method: 'GET', url: '/down' });
      assert.equal(down.statusCode, 503);
      assert.equal(down.headers['retry-after'], String(UNAVAILABLE_RETRY_AFTER_SECONDS));
      assert.equal((await app.inject({ method: 'GET', url: '/own' })).headers['retry-after'], '30', 'a Retry-After already set is kept');
    } finally {
      await app.close();
    }
  });

  it('counts requests to routes that need no token (but the health checks), and IPv6 clients by /64', async () => {
    const h = await harness({ config: { rateLimitAnonymousPerMinute: 2 } });
    try {
      const a = '2001:db8:1:2::10';
      const b = '2001:db8:1:2::99'; // same /64
      assert.equal((await get(h, '/api/v1/openapi.json', {}, a)).status, 200);
      assert.equal((await get(h, '/api/v1/openapi.json', {}, b)).status, 200);
      const third = await get(h, '/api/v1/openapi.json', {}, a);
      assert.equal(third.status, 429);
      assert.equal(third.headers['retry-after'], '30');
      assert.equal((await get(h, '/api/v1/openapi.json', {}, '2001:db8:1:3::10')).status, 200, 'another /64');
    } finally {
      await h.close();
    }
  });

  it('CORS preflights of allowed origins are not counted', async () => {
    const h = await harness({ config: { rateLimitAnonymousPerMinute: 2, corsOrigins: [ORIGIN] } });
    try {
      for (let i = 0; i < 5; i++) {
        const pre = await h.app.inject({ method: 'OPTIONS', url: '/api/v1/tasks', headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
        assert.equal(pre.statusCode, 204);
      }
      assert.equal((await get(h, '/api/v1/agents')).status, 401);
      assert.equal((await get(h, '/api/v1/agents')).status, 401, 'the budget of 2 is whole');
      assert.equal((await get(h, '/api/v1/agents')).status, 429);
    } finally {
      await h.close();
    }
  });
});

describe('CORS', () => {
  const preflight = (origin: string) => ({
    method: 'OPTIONS' as const,
    url: '/api/v1/tasks',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });
  const corsHeaders = (headers: Record<string, unknown>) => Object.keys(headers).filter((name) => name.startsWith('access-control-'));

  it('an allowed origin gets its preflight answered without a token, and CORS headers on answers and errors', async () => {
    const h = await harness({ config: { corsOrigins: [ORIGIN, 'http://localhost:5173'] } });
    try {
      const pre = await h.app.inject(preflight(ORIGIN));
      assert.equal(pre.statusCode, 204);
      assert.equal(pre.headers['access-control-allow-origin'], ORIGIN);
      assert.equal(pre.headers['access-control-allow-headers'], 'Authorization, Content-Type, Last-Event-ID, X-Request-Id');
      assert.equal(pre.headers['access-control-allow-methods'], 'GET, HEAD, POST, PATCH, DELETE');
      assert.equal(pre.headers['access-control-max-age'], '600');
      assert.equal(pre.headers['access-control-allow-credentials'], undefined);
      assert.match(String(pre.headers.vary), /Origin/);
      assert.equal(pre.headers['x-content-type-options'], 'nosniff');

      const ok = await get(h, '/api/v1/agents', { ...bearer(TOKEN), origin: ORIGIN });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['access-control-allow-origin'], ORIGIN);
      assert.equal(ok.headers['access-control-expose-headers'], 'X-Request-Id, Retry-After');
      const unauthenticated = await get(h, '/api/v1/agents', { origin: 'http://localhost:5173' });
      assert.equal(unauthenticated.status, 401);
      assert.equal(unauthenticated.headers['access-control-allow-origin'], 'http://localhost:5173', 'the page can read the 401');
    } finally {
      await h.close();
    }
  });

  it('any other origin gets no CORS header, and its preflight is refused like any request without a token', async () => {
    const h = await harness({ config: { corsOrigins: [ORIGIN] } });
    try {
      for (const origin of ['https://evil.example', 'https://console.example.com.evil.example', 'null', 'http://console.example.com']) {
        const pre = await h.app.inject(preflight(origin));
        assert.equal(pre.statusCode, 401, origin);
        assert.deepEqual(corsHeaders(pre.headers), [], origin);
        const res = await get(h, '/api/v1/agents', { ...bearer(TOKEN), origin });
        assert.equal(res.status, 200);
        assert.deepEqual(corsHeaders(res.headers), [], origin);
      }
      const noOrigin = await get(h, '/api/v1/agents', bearer(TOKEN));
      assert.deepEqual(corsHeaders(noOrigin.headers), []);
    } finally {
      await h.close();
    }
  });

  it('is off by default', async () => {
    const h = await harness();
    try {
      const pre = await h.app.inject(preflight(ORIGIN));
      assert.equal(pre.statusCode, 401);
      assert.deepEqual(corsHeaders(pre.headers), []);
      assert.deepEqual(corsHeaders((await get(h, '/api/v1/agents', { ...bearer(TOKEN), origin: ORIGIN })).headers), []);
    } finally {
      await h.close();
    }
  });
});

describe('security headers', () => {
  const expected = {
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'cross-origin-resource-policy': 'same-origin',
    'cache-control': 'no-store',
  };
  const pick = (headers: Record<string, unknown>) => Object.fromEntries(Object.keys(expected).map((k) => [k, headers[k]]));

  it('are on a 200, a 404, a 401, a 400 and a 503, without HSTS unless asked for', async () => {
    const h = await harness();
    try {
      const responses = {
        ok: await get(h, '/api/v1/agents', bearer(TOKEN)),
        notFound: await get(h, '/api/v1/no-such-route', bearer(TOKEN)),
        unauthenticated: await get(h, '/api/v1/agents'),
        invalid: await get(h, '/api/v1/tasks?limit=abc', bearer(TOKEN)),
        health: await get(h, '/healthz'),
      };
      assert.deepEqual(Object.fromEntries(Object.entries(responses).map(([k, r]) => [k, r.status])), { ok: 200, notFound: 404, unauthenticated: 401, invalid: 400, health: 200 });
      for (const [name, res] of Object.entries(responses)) {
        assert.deepEqual(pick(res.headers), expected, name);
        assert.equal(res.headers['strict-transport-security'], undefined, name);
      }
    } finally {
      await h.close();
    }
    const hsts = await harness({ config: { hsts: true } });
    try {
      assert.equal((await get(hsts, '/api/v1/agents', bearer(TOKEN))).headers['strict-transport-security'], 'max-age=31536000');
      assert.equal((await get(hsts, '/api/v1/nothing')).headers['strict-transport-security'], 'max-age=31536000');
    } finally {
      await hsts.close();
    }
  });

  it('reach the event stream, which writes its own response, with the CORS headers of an allowed origin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-limits-'));
    const server = await startServer({ config: { ...DEFAULT_CONFIG, port: 0, databaseUrl: join(dir, 'f.db'), adminToken: TOKEN, corsOrigins: [ORIGIN] }, log: pino({ level: 'silent' }) });
    const controller = new AbortController();
    try {
      const res = await fetch(`${server.url}/api/v1/events`, { headers: { ...bearer(TOKEN), origin: ORIGIN }, signal: controller.signal });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('content-security-policy'), expected['content-security-policy']);
      assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform', 'the stream keeps its own');
    } finally {
      controller.abort();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('body size and binding', () => {
  it('a body over the limit is 413 PAYLOAD_TOO_LARGE, and WebSocket messages have the same limit', async () => {
    const h = await harness({ config: { bodyLimitBytes: 2048 } });
    try {
      const big = await h.app.inject({ method: 'POST', url: '/api/v1/agents', headers: bearer(TOKEN), payload: { name: 'big', description: 'x'.repeat(3000) } });
      assert.equal(big.statusCode, 413);
      assert.equal(JSON.parse(big.body).error.code, 'PAYLOAD_TOO_LARGE');
      assert.equal(big.headers['x-content-type-options'], 'nosniff');
      const small = await h.app.inject({ method: 'POST', url: '/api/v1/agents', headers: bearer(TOKEN), payload: { name: 'small', description: 'x'.repeat(1000) } });
      assert.equal(small.statusCode, 201);
      assert.equal(h.app.websocketServer.options.maxPayload, 2048);
    } finally {
      await h.close();
    }
  });

  it('the server binds to 127.0.0.1 unless told otherwise', () => {
    assert.equal(DEFAULT_CONFIG.host, '127.0.0.1');
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-limits-'));
    assert.equal(loadConfig({ env: {}, cwd: dir }).host, '127.0.0.1');
    assert.equal(loadConfig({ env: { FLOTILLA_HOST: '0.0.0.0' }, cwd: dir }).host, '0.0.0.0');
    rmSync(dir, { recursive: true });
  });
});

describe('limit settings', () => {
  it('come from the environment and the config file, range-checked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-limits-'));
    const defaults = loadConfig({ env: {}, cwd: dir });
    assert.deepEqual(defaults.corsOrigins, []);
    assert.equal(defaults.hsts, false);
    writeFileSync(join(dir, 'flotilla.config.yaml'), 'server:\n  rateLimitPerSecond: 50\n  rateLimitBurst: 100\n  rateLimitAnonymousPerMinute: 10\n  corsOrigins: ["https://a.example"]\n  hsts: true\n');
    const file = loadConfig({ env: {}, cwd: dir });
    assert.deepEqual([file.rateLimitPerSecond, file.rateLimitBurst, file.rateLimitAnonymousPerMinute, file.corsOrigins, file.hsts], [50, 100, 10, ['https://a.example'], true]);
    const env = loadConfig({
      env: {
        FLOTILLA_RATE_LIMIT_PER_SECOND: '0', FLOTILLA_RATE_LIMIT_BURST: '7', FLOTILLA_RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
        FLOTILLA_CORS_ORIGINS: ' https://b.example , http://localhost:5173,', FLOTILLA_HSTS: 'false',
      },
      cwd: dir,
    });
    assert.deepEqual([env.rateLimitPerSecond, env.rateLimitBurst, env.rateLimitAnonymousPerMinute, env.corsOrigins, env.hsts], [0, 7, 0, ['https://b.example', 'http://localhost:5173'], false]);

    const fails = (vars: Record<string, string>, pattern: RegExp) =>
      assert.throws(() => loadConfig({ env: vars, cwd: dir }), (e: unknown) => e instanceof ConfigError && pattern.test(e.message), JSON.stringify(vars));
    fails({ FLOTILLA_RATE_LIMIT_BURST: '0' }, /rateLimitBurst/);
    fails({ FLOTILLA_RATE_LIMIT_PER_SECOND: '-1' }, /FLOTILLA_RATE_LIMIT_PER_SECOND/);
    fails({ FLOTILLA_RATE_LIMIT_PER_SECOND: '2000000' }, /rateLimitPerSecond/);
    fails({ FLOTILLA_RATE_LIMIT_ANONYMOUS_PER_MINUTE: 'lots' }, /FLOTILLA_RATE_LIMIT_ANONYMOUS_PER_MINUTE/);
    fails({ FLOTILLA_HSTS: 'yes' }, /FLOTILLA_HSTS/);
    fails({ FLOTILLA_CORS_ORIGINS: '*' }, /"\*" is not allowed/);
    fails({ FLOTILLA_CORS_ORIGINS: 'https://a.example,https://*.example' }, /not allowed/);
    fails({ FLOTILLA_CORS_ORIGINS: 'https://a.example/' }, /not an origin/);
    fails({ FLOTILLA_CORS_ORIGINS: 'https://a.example/app' }, /not an origin/);
    fails({ FLOTILLA_CORS_ORIGINS: 'HTTPS://A.example' }, /not an origin/);
    fails({ FLOTILLA_CORS_ORIGINS: 'null' }, /not an origin/);
    fails({ FLOTILLA_CORS_ORIGINS: 'file:///tmp' }, /not an origin/);
    writeFileSync(join(dir, 'flotilla.config.yaml'), 'server:\n  corsOrigins: "https://a.example"\n');
    assert.throws(() => loadConfig({ env: {}, cwd: dir }), /corsOrigins must be array/);
    rmSync(dir, { recursive: true });
  });
});
