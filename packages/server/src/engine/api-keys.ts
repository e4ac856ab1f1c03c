// API keys and authentication. Only a SHA-256 hash of each key's secret is stored. The
// bootstrap admin key comes from FLOTILLA_ADMIN_TOKEN, or is generated on first start and
// shown exactly once. Lookups go by hash, so the secret is never compared byte by byte
// against stored data; the final equality check is constant-time anyway.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRecord, Store } from '../store/store.ts';
import { isRole, SYSTEM_PRINCIPAL, type Principal } from '../core/permissions.ts';
import { looksLikeJwt, type RevocationWatcher, type ScopedTokens, type TokenPrincipal } from './scoped-tokens.ts';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function generateToken(): string {
  return `flt_${randomBytes(32).toString('base64url')}`;
}

/**
 * FLOTILLA_ADMIN_TOKEN's key: recorded (as a hash) the first time the server starts with it.
 * Nothing secret is created here, so it may run before anything else at start.
 */
export async function ensureConfiguredAdminKey(params: { store: Store; configured: string; now: number; newId: () => string }): Promise<void> {
  const { store, configured, now, newId } = params;
  const hash = hashToken(configured);
  if (await store.apiKeyFindByHash({ hash })) return;
  try {
    await store.apiKeyCreate({ key: bootstrapKey({ id: newId(), name: 'admin (FLOTILLA_ADMIN_TOKEN)', hash, now }) });
  } catch (err) {
    // Several servers starting at once on one database all try to record the same key;
    // one insert wins, and that is all that is needed.
    if (!(await store.apiKeyFindByHash({ hash }))) throw err;
  }
}

/**
 * A new admin key that never expires, and its secret: the caller shows the secret once, since
 * only its hash is stored. Used by the first start and by `flotilla keys bootstrap`.
 */
export async function createAdminKey(params: { store: Store; now: number; newId: () => string; name: string }): Promise<{ key: ApiKeyRecord; token: string }> {
  const token = generateToken();
  const key = bootstrapKey({ id: params.newId(), name: params.name, hash: hashToken(token), now: params.now });
  await params.store.apiKeyCreate({ key });
  return { key, token };
}

/**
 * The first start's admin key: generated only when the key table is empty, and returned so it
 * can be printed at once. The server calls this last, once it is listening, so a start that
 * fails (a port in use) leaves no key whose secret nobody saw (and the next start generates one).
 */
export async function generateFirstAdminKey(params: { store: Store; now: number; newId: () => string }): Promise<string | null> {
  if ((await params.store.apiKeyCount()) > 0) return null;
  return (await createAdminKey({ ...params, name: 'admin (generated)' })).token;
}

/** Both of the above, in order: the configured token's key, or a generated one on an empty table (returned, to be printed once). */
export async function ensureAdminKey(params: { store: Store; configured: string | null; now: number; newId: () => string }): Promise<string | null> {
  const { configured, ...rest } = params;
  if (configured !== null) {
    await ensureConfiguredAdminKey({ ...rest, configured });
    return null;
  }
  return generateFirstAdminKey(rest);
}

/**
 * Why nobody may be able to administer this database, or null: no active admin key at all
 * (`unusable`: none exists, or every one is revoked or expired), or FLOTILLA_ADMIN_TOKEN
 * names a key that is revoked or expired (`configured`) while other admin keys are active.
 */
export async function adminKeyProblem(params: { store: Store; configured: string | null; now: number }): Promise<
  { kind: 'unusable'; reason: string } | { kind: 'configured'; status: 'revoked' | 'expired' } | null
> {
  const { store, configured, now } = params;
  const admins = (await store.apiKeyList({ includeRevoked: true })).filter((k) => k.role === 'admin');
  const active = admins.filter((k) => keyStatus(k, now) === 'active');
  if (active.length === 0) {
    return { kind: 'unusable', reason: admins.length === 0 ? 'there is none' : 'every admin key is revoked or expired' };
  }
  if (configured !== null) {
    const own = await store.apiKeyFindByHash({ hash: hashToken(configured) });
    const status = own === null ? 'active' : keyStatus(own, now);
    if (status !== 'active') return { kind: 'configured', status };
  }
  return null;
}

/** The bootstrap admin key: created by the server itself, never expiring. */
function bootstrapKey(params: { id: string; name: string; hash: string; now: number }): ApiKeyRecord {
  return {
    id: params.id, name: params.name, role: 'admin', hash: params.hash, createdAt: params.now, lastUsedAt: null,
    expiresAt: null, revokedAt: null, createdBy: SYSTEM_PRINCIPAL.id, agents: null,
  };
}

/** What a key is now: usable, or why not. */
export function keyStatus(key: ApiKeyRecord, now: number): 'active' | 'expired' | 'revoked' {
  if (key.revokedAt !== null) return 'revoked';
  if (key.expiresAt !== null && key.expiresAt <= now) return 'expired';
  return 'active';
}

export function keyPrincipal(key: ApiKeyRecord): Principal | null {
  if (!isRole(key.role)) return null;
  return { id: key.id, name: key.name, role: key.role, kind: 'key', agents: key.role === 'agent' ? key.agents ?? [] : null, scope: null };
}

interface Cached { key: ApiKeyRecord | null; at: number }

/**
 * Resolves bearer tokens to principals: API keys (by hash; refused once revoked or expired)
 * and scoped tokens (signature, expiry, revocation, and a still-active issuing key). Keys are
 * cached for a few seconds so the hot path does not hit the store per request; a revocation
 * made on this node takes effect here at once, on other nodes within CACHE_MS.
 */
export class Authenticator {
  #store: Store;
  #now: () => number;
  #tokens: ScopedTokens;
  #revocations: RevocationWatcher;
  #byHash = new Map<string, Cached>();
  #byId = new Map<string, Cached>();
  #touched = new Map<string, number>();
  static readonly CACHE_MS = 5_000;
  static readonly TOUCH_EVERY_MS = 60_000;

  constructor(params: { store: Store; now: () => number; tokens: ScopedTokens; revocations: RevocationWatcher }) {
    this.#store = params.store;
    this.#now = params.now;
    this.#tokens = params.tokens;
    this.#revocations = params.revocations;
  }

  async authenticate(token: string): Promise<Principal | null> {
    if (looksLikeJwt(token)) return this.#authenticateToken(token);
    const hash = hashToken(token);
    const key = await this.#cached(this.#byHash, hash, async () => {
      const found = await this.#store.apiKeyFindByHash({ hash });
      // Lookups go by hash; the final comparison is constant-time anyway.
      return found !== null && timingSafeEqual(Buffer.from(found.hash, 'hex'), Buffer.from(hash, 'hex')) ? found : null;
    });
    const now = this.#now();
    if (key === null || keyStatus(key, now) !== 'active') return null;
    const principal = keyPrincipal(key);
    if (principal && now - (this.#touched.get(principal.id) ?? 0) > Authenticator.TOUCH_EVERY_MS) {
      this.#touched.set(principal.id, now);
      await this.#store.apiKeyTouch({ id: principal.id, at: now });
    }
    return principal;
  }

  async #authenticateToken(token: string): Promise<TokenPrincipal | null> {
    const principal = await this.#tokens.verify(token);
    if (principal === null || this.#revocations.isRevoked(principal.scope.jti)) return null;
    // A token dies with the key that issued it.
    if (principal.issuerKeyId !== null) {
      const issuer = await this.#cached(this.#byId, principal.issuerKeyId, () => this.#store.apiKeyGet({ id: principal.issuerKeyId! }));
      if (issuer === null || keyStatus(issuer, this.#now()) !== 'active') return null;
    }
    return principal;
  }

  async #cached(map: Map<string, Cached>, k: string, load: () => Promise<ApiKeyRecord | null>): Promise<ApiKeyRecord | null> {
    const now = this.#now();
    const hit = map.get(k);
    if (hit && now - hit.at < Authenticator.CACHE_MS) return hit.key;
    const key = await load();
    if (map.size > 10_000) map.clear();
    map.set(k, { key, at: now });
    return key;
  }

  /** A key changed on this node (revoked): drop it from the caches so the change holds at once. */
  forget(keyId: string): void {
    this.#byId.delete(keyId);
    for (const [hash, cached] of this.#byHash) if (cached.key?.id === keyId) this.#byHash.delete(hash);
  }
}
