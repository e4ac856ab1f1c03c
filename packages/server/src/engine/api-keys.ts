// API keys: only a SHA-256 hash of each secret is stored. The bootstrap admin key comes
// from FLOTILLA_ADMIN_TOKEN, or is generated on first start and shown exactly once.
// Lookups go by hash, so the secret is never compared byte by byte against stored data;
// the final equality check is constant-time anyway.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRecord, Store } from '../store/store.ts';
import { SYSTEM_PRINCIPAL, type Principal } from './principal.ts';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function generateToken(): string {
  return `flt_${randomBytes(32).toString('base64url')}`;
}

/** Returns the generated token when one was created (to be printed once), else null. */
export async function ensureAdminKey(params: { store: Store; configured: string | null; now: number; newId: () => string }): Promise<string | null> {
  const { store, configured, now, newId } = params;
  if (configured !== null) {
    const hash = hashToken(configured);
    if (!(await store.apiKeyFindByHash({ hash }))) {
      try {
        await store.apiKeyCreate({ key: bootstrapKey({ id: newId(), name: 'admin (FLOTILLA_ADMIN_TOKEN)', hash, now }) });
      } catch (err) {
        // Several servers starting at once on one database all try to record the same key;
        // one insert wins, and that is all that is needed.
        if (!(await store.apiKeyFindByHash({ hash }))) throw err;
      }
    }
    return null;
  }
  if ((await store.apiKeyCount()) > 0) return null;
  const token = generateToken();
  await store.apiKeyCreate({ key: bootstrapKey({ id: newId(), name: 'admin (generated)', hash: hashToken(token), now }) });
  return token;
}

/** The bootstrap admin key: created by the server itself, never expiring. */
function bootstrapKey(params: { id: string; name: string; hash: string; now: number }): ApiKeyRecord {
  return {
    id: params.id, name: params.name, role: 'admin', hash: params.hash, createdAt: params.now, lastUsedAt: null,
    expiresAt: null, revokedAt: null, createdBy: SYSTEM_PRINCIPAL.id, agents: null,
  };
}

interface Cached { principal: Principal | null; at: number }

/** Resolves bearer tokens to principals, caching briefly so the hot path does not hit the store per request. */
export class Authenticator {
  #store: Store;
  #now: () => number;
  #cache = new Map<string, Cached>();
  #touched = new Map<string, number>();
  static readonly CACHE_MS = 5_000;
  static readonly TOUCH_EVERY_MS = 60_000;

  constructor(params: { store: Store; now: () => number }) {
    this.#store = params.store;
    this.#now = params.now;
  }

  async authenticate(token: string): Promise<Principal | null> {
    const hash = hashToken(token);
    const now = this.#now();
    const hit = this.#cache.get(hash);
    if (hit && now - hit.at < Authenticator.CACHE_MS) return hit.principal;
    const key = await this.#store.apiKeyFindByHash({ hash });
    const ok = key !== null && timingSafeEqual(Buffer.from(key.hash, 'hex'), Buffer.from(hash, 'hex'));
    const principal: Principal | null = ok ? { id: key.id, name: key.name, role: 'admin' } : null;
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(hash, { principal, at: now });
    if (principal && now - (this.#touched.get(principal.id) ?? 0) > Authenticator.TOUCH_EVERY_MS) {
      this.#touched.set(principal.id, now);
      await this.#store.apiKeyTouch({ id: principal.id, at: now });
    }
    return principal;
  }
}
