// API keys over the API: create (the secret is shown once, only its hash is stored), list,
// read and revoke. Revoking takes effect on this node at once and on every other node within
// the authenticator's cache time (a few seconds).

import { FlotillaError } from '../core/errors.ts';
import { isRole, type Principal, type Role } from '../core/permissions.ts';
import type { ApiKeyRecord } from '../store/store.ts';
import { generateToken, hashToken, type Authenticator } from './api-keys.ts';
import type { EngineContext } from './context.ts';

export interface KeySpec {
  name: string;
  role: string;
  agents?: string[];
  expiresAt?: string;
}


export class KeyService {
  readonly #ctx: EngineContext;
  readonly #auth: Authenticator;

  constructor(params: { ctx: EngineContext; auth: Authenticator }) {
    this.#ctx = params.ctx;
    this.#auth = params.auth;
  }

  async create(principal: Principal, spec: KeySpec): Promise<{ key: ApiKeyRecord; token: string }> {
    if (!isRole(spec.role)) throw new FlotillaError('VALIDATION_FAILED', `"role" must be one of admin, operator, viewer, agent`);
    const role: Role = spec.role;
    if (role === 'agent' && (spec.agents === undefined || spec.agents.length === 0)) {
      throw new FlotillaError('VALIDATION_FAILED', 'a key with role "agent" needs "agents": the agents it may serve');
    }
    if (role !== 'agent' && spec.agents !== undefined) {
      throw new FlotillaError('VALIDATION_FAILED', '"agents" applies to role "agent" only');
    }
    const now = this.#ctx.now();
    let expiresAt: number | null = null;
    if (spec.expiresAt !== undefined) {
      expiresAt = Date.parse(spec.expiresAt);
      if (Number.isNaN(expiresAt)) throw new FlotillaError('VALIDATION_FAILED', `"expiresAt" is not a valid date-time: ${spec.expiresAt}`);
      if (expiresAt <= now) throw new FlotillaError('VALIDATION_FAILED', '"expiresAt" must be in the future');
    }
    const token = generateToken();
    const key: ApiKeyRecord = {
      id: this.#ctx.newId(), name: spec.name, role, hash: hashToken(token), createdAt: now, lastUsedAt: null,
      expiresAt, revokedAt: null, createdBy: principal.id, agents: role === 'agent' ? [...spec.agents!] : null,
    };
    await this.#ctx.store.apiKeyCreate({ key });
    return { key, token };
  }

  list(_principal: Principal, params: { includeRevoked: boolean }): Promise<ApiKeyRecord[]> {
    return this.#ctx.store.apiKeyList({ includeRevoked: params.includeRevoked });
  }

  async get(_principal: Principal, id: string): Promise<ApiKeyRecord> {
    const key = await this.#ctx.store.apiKeyGet({ id });
    if (!key) throw new FlotillaError('KEY_NOT_FOUND', `API key ${id} does not exist`);
    return key;
  }

  /** Idempotent: revoking a revoked key answers it as it is. */
  async revoke(principal: Principal, id: string): Promise<ApiKeyRecord> {
    const key = await this.get(principal, id);
    if (key.role === 'admin' && key.revokedAt === null) {
      // Never lock everyone out: another active admin key must remain.
      const now = this.#ctx.now();
      const others = (await this.#ctx.store.apiKeyList({ includeRevoked: false }))
        .filter((k) => k.role === 'admin' && k.id !== id && (k.expiresAt === null || k.expiresAt > now));
      if (others.length === 0) {
        throw new FlotillaError('INVALID_TRANSITION', 'this is the last active admin key; create another admin key before revoking it');
      }
    }
    await this.#ctx.store.apiKeyRevoke({ id, at: this.#ctx.now() });
    this.#auth.forget(id);
    return (await this.#ctx.store.apiKeyGet({ id }))!;
  }
}
