// Scoped, short-lived tokens: JWTs (HS256, signed with a key every node reads from the
// database) that carry a subset of their issuer's actions, optionally bound to one task tree
// and to a list of agents. Renewal issues a new token with the same id (`jti`) and the same
// hard end (`max`), so revoking the id revokes every renewal. Revocations are stored and
// every node polls them every second (`RevocationWatcher`), so a revoked token is refused
// everywhere within about a second.

import { randomBytes } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { FlotillaError } from '../core/errors.ts';
import { allows, isRole, TOKEN_ACTIONS, type Principal, type TokenAction, type TokenScope } from '../core/permissions.ts';
import type { Store } from '../store/store.ts';

const ISSUER = 'flotilla';
const ALG = 'HS256';
export const SIGNING_SECRET_NAME = 'token-signing-key';

export interface TokenLimits {
  /** Lifetime of one token (and of each renewal). */
  defaultTtlMs: number;
  /** The longest a token and all its renewals may live, from its first issue. */
  maxLifetimeMs: number;
}

export interface IssueParams {
  actions: TokenAction[];
  agents?: string[] | null;
  rootTaskId?: string | null;
  ttlMs?: number;
  maxLifetimeMs?: number;
  name?: string;
  /** Ties the token to one attempt (assignment tokens): it dies with the attempt. */
  assignmentId?: string;
  /** Assignment tokens: the attempt's effective tool set. */
  tools?: readonly string[];
  /** Assignment tokens at the depth limit: why `task.submit` is not among `actions`. */
  spawnWithheld?: { depth: number; maxDepth: number };
}

export interface IssuedToken {
  token: string;
  jti: string;
  expiresAt: number;
  maxExpiresAt: number;
  scope: TokenScope;
}

interface Claims {
  flt: {
    name: string;
    role: string;
    actions: string[];
    agents: string[] | null;
    root: string | null;
    max: number;
    asg?: string;
    /** The attempt's effective tool set (assignment tokens). */
    tools?: string[];
    /** Spawn right withheld at the depth limit: `[depth, maxDepth]` (assignment tokens). */
    nsp?: [number, number];
  };
}

/** The claims a scope adds beyond actions, agents and tree (shared by issue and renew). */
function scopeClaims(s: TokenScope): Pick<Claims['flt'], 'tools' | 'nsp'> {
  return {
    ...(s.tools !== null ? { tools: [...s.tools] } : {}),
    ...(s.spawnWithheld !== null ? { nsp: [s.spawnWithheld.depth, s.spawnWithheld.maxDepth] as [number, number] } : {}),
  };
}

/** A verified token's principal, plus what the services need to check beyond it. */
export interface TokenPrincipal extends Principal {
  kind: 'token';
  scope: TokenScope;
  /** The key that issued it (null: the server, for assignment tokens). */
  issuerKeyId: string | null;
  /** The attempt an assignment token belongs to. */
  assignmentId: string | null;
  expiresAt: number;
}

export class ScopedTokens {
  #key: Uint8Array | null = null;
  readonly #store: Store;
  readonly #now: () => number;
  readonly #limits: TokenLimits;

  constructor(params: { store: Store; now: () => number; limits: TokenLimits }) {
    this.#store = params.store;
    this.#now = params.now;
    this.#limits = params.limits;
  }

  /** Loads (or creates, on the first start of a database) the signing key. */
  async start(): Promise<void> {
    const value = await this.#store.secretEnsure({ name: SIGNING_SECRET_NAME, value: randomBytes(32).toString('base64url'), at: this.#now() });
    this.#key = Buffer.from(value, 'base64url');
  }

  get limits(): TokenLimits {
    return this.#limits;
  }

  #signingKey(): Uint8Array {
    if (!this.#key) throw new Error('ScopedTokens used before start()');
    return this.#key;
  }

  /** Issues a token narrower than (or equal to) the issuer's own rights. */
  async issue(issuer: Principal, p: IssueParams): Promise<IssuedToken> {
    for (const action of p.actions) {
      if (!allows(issuer, action)) throw new FlotillaError('FORBIDDEN', `you cannot grant "${action}": you do not have it yourself`);
    }
    let agents = p.agents ?? null;
    if (issuer.scope?.agents) {
      // A token issued by a token cannot widen the agents it may submit to.
      const parentAgents = issuer.scope.agents;
      agents = agents === null ? [...parentAgents] : agents.filter((a) => parentAgents.includes(a));
    }
    const root = issuer.scope?.root ?? p.rootTaskId ?? null;
    if (issuer.scope?.root && p.rootTaskId && p.rootTaskId !== issuer.scope.root) {
      throw new FlotillaError('FORBIDDEN', `this token is bound to the tree of task ${issuer.scope.root}`);
    }
    const now = this.#now();
    const maxLifetime = Math.min(p.maxLifetimeMs ?? this.#limits.maxLifetimeMs, this.#limits.maxLifetimeMs);
    let maxExpiresAt = now + maxLifetime;
    if (issuer.scope) maxExpiresAt = Math.min(maxExpiresAt, issuer.scope.maxExpiresAt);
    const expiresAt = Math.min(now + (p.ttlMs ?? this.#limits.defaultTtlMs), maxExpiresAt);
    const jti = `tok_${randomBytes(16).toString('base64url')}`;
    const scope: TokenScope = {
      jti, actions: [...p.actions], agents, root, maxExpiresAt,
      // A token issued by a token keeps its issuer's tool set (it cannot widen it either).
      tools: issuer.scope?.tools ?? (p.tools ? [...p.tools] : null),
      spawnWithheld: p.spawnWithheld ?? null,
    };
    const token = await this.#sign({
      sub: issuer.kind === 'token' ? (issuer as TokenPrincipal).issuerKeyId ?? 'system' : issuer.kind === 'system' ? 'system' : issuer.id,
      jti, iat: now, exp: expiresAt,
      flt: {
        name: p.name ?? `token from ${issuer.name}`, role: issuer.role, actions: scope.actions as string[], agents, root, max: maxExpiresAt,
        ...(p.assignmentId ? { asg: p.assignmentId } : {}), ...scopeClaims(scope),
      },
    });
    return { token, jti, expiresAt, maxExpiresAt, scope };
  }

  /** A fresh token for the same grant, valid for another TTL but never past its hard end. */
  async renew(principal: TokenPrincipal): Promise<IssuedToken> {
    const now = this.#now();
    if (now >= principal.scope.maxExpiresAt) throw new FlotillaError('FORBIDDEN', 'this token has reached its maximum lifetime; ask for a new one');
    const expiresAt = Math.min(now + this.#limits.defaultTtlMs, principal.scope.maxExpiresAt);
    const s = principal.scope;
    const token = await this.#sign({
      sub: principal.issuerKeyId ?? 'system', jti: s.jti, iat: now, exp: expiresAt,
      flt: {
        name: principal.name, role: principal.role, actions: s.actions as string[], agents: s.agents as string[] | null, root: s.root, max: s.maxExpiresAt,
        ...(principal.assignmentId ? { asg: principal.assignmentId } : {}), ...scopeClaims(s),
      },
    });
    return { token, jti: s.jti, expiresAt, maxExpiresAt: s.maxExpiresAt, scope: s };
  }

  async #sign(c: { sub: string; jti: string; iat: number; exp: number } & Claims): Promise<string> {
    return new SignJWT({ flt: c.flt })
      .setProtectedHeader({ alg: ALG, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(c.sub)
      .setJti(c.jti)
      .setIssuedAt(Math.floor(c.iat / 1000))
      // Seconds in the standard claim; the exact millisecond end is `flt.max`/ttl-checked below.
      .setExpirationTime(Math.ceil(c.exp / 1000))
      .sign(this.#signingKey());
  }

  /** Verifies signature, issuer, expiry and shape; null for anything that is not a valid token. */
  async verify(token: string): Promise<TokenPrincipal | null> {
    try {
      const { payload } = await jwtVerify<Claims>(token, this.#signingKey(), {
        issuer: ISSUER, algorithms: [ALG], currentDate: new Date(this.#now()), requiredClaims: ['jti', 'exp', 'sub'],
      });
      const f = payload.flt;
      if (!f || typeof f !== 'object' || !isRole(f.role) || !Array.isArray(f.actions) || typeof f.max !== 'number') return null;
      if (!f.actions.every((a) => (TOKEN_ACTIONS as readonly string[]).includes(a))) return null;
      if (this.#now() >= f.max) return null;
      const jti = payload.jti!;
      return {
        id: `token:${jti}`,
        name: typeof f.name === 'string' ? f.name : jti,
        role: f.role,
        kind: 'token',
        agents: null,
        scope: {
          jti, actions: f.actions as TokenAction[], agents: Array.isArray(f.agents) ? f.agents.map(String) : null, root: typeof f.root === 'string' ? f.root : null, maxExpiresAt: f.max,
          tools: Array.isArray(f.tools) ? f.tools.map(String) : null,
          spawnWithheld: Array.isArray(f.nsp) && f.nsp.length === 2 ? { depth: Number(f.nsp[0]), maxDepth: Number(f.nsp[1]) } : null,
        },
        issuerKeyId: payload.sub === 'system' ? null : payload.sub!,
        assignmentId: typeof f.asg === 'string' ? f.asg : null,
        expiresAt: payload.exp! * 1000,
      };
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) return null;
      throw err;
    }
  }
}

/** Looks like a JWT (three base64url parts); API keys start with `flt_`. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

/**
 * This node's view of revoked tokens: everything revoked (by any node) up to about a second
 * ago. Polls `tokenRevocationList` with an overlap, since node clocks differ slightly.
 */
export class RevocationWatcher {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #revoked = new Map<string, number>();
  #since = 0;
  #timer: NodeJS.Timeout | null = null;
  static readonly POLL_MS = 1_000;
  static readonly OVERLAP_MS = 10_000;

  constructor(params: { store: Store; now: () => number }) {
    this.#store = params.store;
    this.#now = params.now;
  }

  async start(): Promise<void> {
    await this.poll();
    this.#timer = setInterval(() => void this.poll().catch(() => {}), RevocationWatcher.POLL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  async poll(): Promise<void> {
    const now = this.#now();
    const list = await this.#store.tokenRevocationList({ since: Math.max(0, this.#since - RevocationWatcher.OVERLAP_MS) });
    for (const r of list) this.#revoked.set(r.jti, r.expiresAt);
    this.#since = now;
    // Forget revocations of tokens that have expired anyway: they fail verification on their own.
    for (const [jti, expiresAt] of this.#revoked) if (expiresAt < now) this.#revoked.delete(jti);
  }

  /** Effective at once on this node; other nodes learn it at their next poll. */
  markRevoked(jti: string, expiresAt: number): void {
    this.#revoked.set(jti, expiresAt);
  }

  isRevoked(jti: string): boolean {
    return this.#revoked.has(jti);
  }
}
