// Scoped tokens over the API: issue (narrower than the caller), renew (the token itself asks,
// up to its hard end) and revoke (stored, so every node refuses it at its next poll; this
// node at once).

import { FlotillaError } from '../core/errors.ts';
import type { Principal, TokenAction } from '../core/permissions.ts';
import type { EngineContext } from './context.ts';
import type { IssuedToken, RevocationWatcher, ScopedTokens, TokenPrincipal } from './scoped-tokens.ts';

export interface TokenRequest {
  scopes: TokenAction[];
  agents?: string[];
  rootTaskId?: string;
  ttlSeconds?: number;
  maxLifetimeSeconds?: number;
  name?: string;
}

export class TokenService {
  readonly #ctx: EngineContext;
  readonly #tokens: ScopedTokens;
  readonly #revocations: RevocationWatcher;

  constructor(params: { ctx: EngineContext; tokens: ScopedTokens; revocations: RevocationWatcher }) {
    this.#ctx = params.ctx;
    this.#tokens = params.tokens;
    this.#revocations = params.revocations;
  }

  async issue(principal: Principal, req: TokenRequest): Promise<IssuedToken> {
    if (req.rootTaskId !== undefined && !(await this.#ctx.store.taskGet({ id: req.rootTaskId }))) {
      throw new FlotillaError('TASK_NOT_FOUND', `task ${req.rootTaskId} does not exist`);
    }
    return this.#tokens.issue(principal, {
      actions: req.scopes,
      agents: req.agents ?? null,
      rootTaskId: req.rootTaskId ?? null,
      ...(req.ttlSeconds !== undefined ? { ttlMs: req.ttlSeconds * 1000 } : {}),
      ...(req.maxLifetimeSeconds !== undefined ? { maxLifetimeMs: req.maxLifetimeSeconds * 1000 } : {}),
      ...(req.name !== undefined ? { name: req.name } : {}),
    });
  }

  async renew(principal: Principal): Promise<IssuedToken> {
    if (principal.kind !== 'token') throw new FlotillaError('VALIDATION_FAILED', 'only a scoped token can be renewed: call this with the token itself');
    return this.#tokens.renew(principal as TokenPrincipal);
  }

  /** Idempotent. The row is kept until every renewal of the token would have expired anyway. */
  async revoke(_principal: Principal, jti: string): Promise<void> {
    const now = this.#ctx.now();
    const expiresAt = now + this.#tokens.limits.maxLifetimeMs;
    await this.#ctx.store.tokenRevoke({ jti, at: now, expiresAt });
    this.#revocations.markRevoked(jti, expiresAt);
  }
}
