// Scoped token calls. Issuing is not retried on another node after a failure that may have
// been applied (a resend would mint a second token with its own id, which revoking the first
// would not cover). Renewing and revoking are: a second renewal has the same id and grant,
// and revoking twice is revoking once.

import type { IssuedTokenView, TokenSpec } from '../wire.ts';
import type { Transport } from './transport.ts';
import type { CallOptions } from './types.ts';

const enc = encodeURIComponent;

export class TokensApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  /** A short-lived token with at most the caller's own rights (admin and operator keys). */
  issue(spec: TokenSpec, opts: CallOptions = {}): Promise<IssuedTokenView> {
    return this.#t.request('POST', '/tokens', { body: spec, idempotent: false, signal: opts.signal });
  }

  /**
   * Renews the token this client was built with (it must be a scoped token): a fresh token
   * with the same id and grant, never past its maximum lifetime. This client keeps sending
   * its old token; use `flotilla.withToken(view.token)` for a client with the new one.
   */
  renew(opts: CallOptions = {}): Promise<IssuedTokenView> {
    return this.#t.request('POST', '/tokens/renew', { idempotent: true, signal: opts.signal });
  }

  /** Revokes the token with this id and every renewal of it (every node within about a second). */
  async revoke(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#t.request('POST', `/tokens/${enc(id)}/revoke`, { idempotent: true, signal: opts.signal });
  }
}
