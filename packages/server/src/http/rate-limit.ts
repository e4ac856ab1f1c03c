// Rate limiting, per node, in memory (docs/decisions.md, "Rate limits").
//
// - Authenticated requests: one token bucket per principal (`request.principal.id`),
//   refilled at `rateLimitPerSecond` and holding at most `rateLimitBurst` requests. Applied
//   by @fastify/rate-limit in `preParsing`: after the auth hook (onRequest) has named the
//   principal, before the body is read. 0 requests per second turns it off.
// - Requests without a principal: one bucket per client address (an IPv6 /64) holding
//   `rateLimitAnonymousPerMinute`, refilled over a minute. Every request that ends without
//   a principal takes one: refused with 401, or sent to a route that needs no token. Not
//   one answered 5xx: its token could not be checked (the database is down, the server is
//   shutting down), which says nothing about the token, so valid principals are not charged
//   as anonymous during an outage and get their 503, not a 429. Those take from a second
//   budget per address, UNDECIDED_FACTOR times larger, so an outage is no window for
//   unlimited guesses either. While either is empty,
//   every request from the address is answered 429 before the auth
//   hook runs, even one with a valid token: the answer must not depend on the token, or a
//   blocked address could go on testing guesses. 0 turns it off.
// - Never limited: `/healthz`, `/readyz`, and CORS preflights of allowed origins.
// - Refusals are `429 {"error":{"code":"RATE_LIMITED",...}}` with `Retry-After` (seconds).
//
// For other transports (the WebSocket worker protocol): every message a principal sends
// should take a token from the same bucket as its HTTP requests, so splitting work across
// transports does not double the budget. The limiter is on the Fastify instance:
//
//   const verdict = request.server.rateLimiter.tryConsume(principal.id);
//   if (!verdict.ok) answer RATE_LIMITED; verdict.retryAfterMs says when to try again (ms).
//
// `tryConsume` always answers `{ ok: true }` when limiting is off.

import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_STATUS, type ErrorBody } from '@flotilla/sdk';
import type { ServerConfig } from '../config/config.ts';
import { FlotillaError } from '../core/errors.ts';
import { sendError } from './error-handler.ts';

export type RateVerdict = { ok: true } | { ok: false; retryAfterMs: number };

interface Bucket { tokens: number; at: number }

/** The budget per address for requests whose authentication could not be decided, as a multiple of the anonymous one. */
export const UNDECIDED_FACTOR = 10;

/** Below this many keys the map is never swept. */
const MIN_SWEEP = 10_000;

/**
 * Token buckets by key: `capacity` requests at once, refilled continuously at
 * `perSecond`. A bucket that has refilled to capacity is the same as no bucket, so idle
 * keys are dropped when the map grows; past `maxKeys` the oldest keys are dropped too (a
 * flood of addresses must not exhaust memory; it can only reset some of its own buckets).
 */
export class TokenBuckets {
  readonly capacity: number;
  readonly perSecond: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();
  #sweepAt: number;

  constructor(params: { capacity: number; perSecond: number; now: () => number; maxKeys?: number }) {
    if (!(params.capacity >= 1) || !(params.perSecond > 0)) throw new Error('a token bucket needs capacity >= 1 and a positive rate');
    this.capacity = params.capacity;
    this.perSecond = params.perSecond;
    this.#now = params.now;
    this.#maxKeys = params.maxKeys ?? 100_000;
    this.#sweepAt = Math.min(MIN_SWEEP, this.#maxKeys);
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one request from `key`'s bucket, or says how long until one is available. */
  tryConsume(key: string): RateVerdict {
    const bucket = this.#refilled(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: this.#msUntilOne(bucket) };
  }

  /** Whether `key` could make a request now, without taking one. */
  peek(key: string): RateVerdict {
    const bucket = this.#buckets.get(key);
    if (!bucket) return { ok: true };
    const tokens = this.#tokensAt(bucket, this.#now());
    return tokens >= 1 ? { ok: true } : { ok: false, retryAfterMs: this.#msUntilOne({ tokens, at: bucket.at }) };
  }

  /** Requests `key` may still make at once. */
  remaining(key: string): number {
    const bucket = this.#buckets.get(key);
    return Math.floor(bucket ? this.#tokensAt(bucket, this.#now()) : this.capacity);
  }

  #tokensAt(bucket: Bucket, now: number): number {
    // A clock that steps back refills nothing (and takes nothing back).
    const elapsed = Math.max(0, now - bucket.at);
    return Math.min(this.capacity, bucket.tokens + (elapsed * this.perSecond) / 1000);
  }

  #msUntilOne(bucket: Bucket): number {
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / this.perSecond));
  }

  #refilled(key: string): Bucket {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket) {
      bucket.tokens = this.#tokensAt(bucket, now);
      bucket.at = Math.max(bucket.at, now);
      return bucket;
    }
    if (this.#buckets.size >= this.#sweepAt) this.#sweep(now);
    bucket = { tokens: this.capacity, at: now };
    this.#buckets.set(key, bucket);
    return bucket;
  }

  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (this.#tokensAt(bucket, now) >= this.capacity) this.#buckets.delete(key);
    }
    // Still too many: drop the oldest tenth (Map order is insertion order), so the next
    // sweep is a while away.
    if (this.#buckets.size >= this.#maxKeys) {
      const keep = Math.floor(this.#maxKeys * 0.9);
      for (const key of this.#buckets.keys()) {
        if (this.#buckets.size <= keep) break;
        this.#buckets.delete(key);
      }
    }
    // Sweep again only once the map has grown well past what survived this sweep.
    this.#sweepAt = Math.min(this.#maxKeys, Math.max(MIN_SWEEP, this.#buckets.size * 2));
  }
}

/**
 * The limiter of one node: per-principal buckets (shared by every transport) and
 * per-address buckets for requests without a principal. Either is null when turned off.
 */
export class RateLimiter {
  readonly principals: TokenBuckets | null;
  readonly anonymous: TokenBuckets | null;
  /**
   * Per address, the requests whose authentication could not be decided (answered 5xx: the
   * store was down): UNDECIDED_FACTOR times the anonymous budget. They are not charged as
   * anonymous (a valid token is not a guess), but they are not free either: during an outage,
   * which a flood of guesses can itself provoke (pool timeouts), a right guess for a cached
   * key is told apart from a wrong one by its answer.
   */
  readonly undecided: TokenBuckets | null;

  constructor(config: Pick<ServerConfig, 'rateLimitPerSecond' | 'rateLimitBurst' | 'rateLimitAnonymousPerMinute'>, now: () => number = Date.now) {
    this.principals = config.rateLimitPerSecond > 0
      ? new TokenBuckets({ capacity: config.rateLimitBurst, perSecond: config.rateLimitPerSecond, now })
      : null;
    this.anonymous = config.rateLimitAnonymousPerMinute > 0
      ? new TokenBuckets({ capacity: config.rateLimitAnonymousPerMinute, perSecond: config.rateLimitAnonymousPerMinute / 60, now })
      : null;
    const undecided = config.rateLimitAnonymousPerMinute * UNDECIDED_FACTOR;
    this.undecided = undecided > 0 ? new TokenBuckets({ capacity: undecided, perSecond: undecided / 60, now }) : null;
  }

  /**
   * Takes one request from a principal's budget (for WebSocket messages and anything else
   * that is not an HTTP request). `retryAfterMs` is how long until one more is allowed.
   */
  tryConsume(principalId: string): RateVerdict {
    return this.principals ? this.principals.tryConsume(principalId) : { ok: true };
  }

  /** Takes one request from a client address's budget for requests without a principal. */
  tryConsumeAnonymous(address: string): RateVerdict {
    return this.anonymous ? this.anonymous.tryConsume(addressKey(address)) : { ok: true };
  }

  /** Takes one from an address's budget for requests whose authentication could not be decided. */
  tryConsumeUndecided(address: string): RateVerdict {
    return this.undecided ? this.undecided.tryConsume(addressKey(address)) : { ok: true };
  }

  /** Whether an address is blocked for having used either budget, without taking from it. */
  anonymousBlocked(address: string): RateVerdict {
    const key = addressKey(address);
    const anonymous = this.anonymous ? this.anonymous.peek(key) : { ok: true as const };
    return anonymous.ok && this.undecided ? this.undecided.peek(key) : anonymous;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This node's rate limiter (http/rate-limit.ts); `tryConsume(principalId)` for WebSocket messages. */
    rateLimiter: RateLimiter;
  }
}

/** An IPv6 client is one /64 (what one host or household gets), an IPv4 client one address. */
function addressKey(address: string): string {
  return normalizeIP(address, 64);
}

const HEALTH_CHECKS = new Set(['/healthz', '/readyz']);

function isHealthCheck(request: FastifyRequest): boolean {
  return HEALTH_CHECKS.has(request.routeOptions.url ?? '');
}

/** A CORS preflight answered by http/cors.ts (for an allowed origin): it needs no token and costs nothing. */
function isPreflight(request: FastifyRequest): boolean {
  return (request as FastifyRequest & { corsPreflightEnabled?: boolean }).corsPreflightEnabled === true;
}

function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

export function rateLimitedMessage(ms: number): string {
  return `too many requests; retry in ${retryAfterSeconds(ms)} s`;
}

function refuse(reply: FastifyReply, verdict: { retryAfterMs: number }): FastifyReply {
  return sendError(reply.header('retry-after', String(retryAfterSeconds(verdict.retryAfterMs))), 'RATE_LIMITED', rateLimitedMessage(verdict.retryAfterMs));
}

/**
 * Installs both limits and decorates the instance with `rateLimiter`. Must be called
 * before the auth hook (the address check runs first) and before any route (the principal
 * limit is added to each route as it is registered; it runs in `preParsing`, after the auth
 * hook has named the principal).
 */
export async function installRateLimit(app: FastifyInstance, ctx: { config: ServerConfig; now(): number }): Promise<RateLimiter> {
  const limiter = new RateLimiter(ctx.config, () => ctx.now());
  app.decorate('rateLimiter', limiter);

  if (limiter.principals) {
    const buckets = limiter.principals;
    // @fastify/rate-limit counts with a fixed window by default; this store gives it the
    // token bucket above, so HTTP and WebSocket traffic share one budget per principal.
    class PrincipalStore {
      incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, _timeWindow: number, max: number): void {
        const verdict = buckets.tryConsume(key);
        if (verdict.ok) callback(null, { current: max - buckets.remaining(key), ttl: 1000 });
        else callback(null, { current: max + 1, ttl: verdict.retryAfterMs });
      }
      child(): PrincipalStore {
        return this;
      }
    }
    await app.register(rateLimit, {
      global: true,
      hook: 'preParsing',
      max: buckets.capacity,
      timeWindow: 1000,
      store: PrincipalStore,
      // Requests without a principal (health checks, the API description, CORS preflights)
      // are the anonymous limiter's.
      // (The plugin asks for the key before it consults the allow list.)
      keyGenerator: (request) => request.principal?.id ?? '',
      allowList: (request) => request.principal === null,
      addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
      addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
      errorResponseBuilder: (_request, context) => new FlotillaError('RATE_LIMITED', rateLimitedMessage(context.ttl)),
    });
  }

  if (limiter.anonymous) {
    // Before the auth hook: a blocked address is answered 429 before its token is even
    // looked up, so it cannot tell a right guess from a wrong one, and a flood of guesses
    // costs no database reads.
    app.addHook('onRequest', async (request, reply) => {
      if (isHealthCheck(request)) return;
      const blocked = limiter.anonymousBlocked(request.ip);
      if (!blocked.ok) return refuse(reply, blocked);
    });
    // Charged once the answer is known (the auth hook decides whether there is a principal).
    // The 401 that finds the budget empty becomes a 429, so the last guess before the block
    // is not answered either. A 5xx is not charged: authentication was not decided (the
    // store could not be asked, or the server is shutting down), and a guess that gets no
    // verdict learns nothing; charging it would turn an outage into 429s for valid tokens.
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.principal !== null || reply.statusCode === ERROR_STATUS.RATE_LIMITED || isHealthCheck(request) || isPreflight(request)) return payload;
      if (reply.statusCode >= 500) {
        limiter.tryConsumeUndecided(request.ip);
        return payload;
      }
      const verdict = limiter.tryConsumeAnonymous(request.ip);
      if (verdict.ok || reply.statusCode !== ERROR_STATUS.UNAUTHENTICATED) return payload;
      const body: ErrorBody = { error: { code: 'RATE_LIMITED', message: rateLimitedMessage(verdict.retryAfterMs) } };
      reply.code(ERROR_STATUS.RATE_LIMITED).header('retry-after', String(retryAfterSeconds(verdict.retryAfterMs)));
      return JSON.stringify(body);
    });
  }
  return limiter;
}
