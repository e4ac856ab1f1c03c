// API key calls (admins only: `key.manage`). A create is not retried on another node after a
// failure that may have been applied: a resend would make a second key, and the secret of the
// first would be lost. Revoking is idempotent on the server, so it is retried.

import type { ApiKeySpec, ApiKeyView, CreatedApiKey } from '../wire.ts';
import type { Transport } from './transport.ts';
import type { CallOptions } from './types.ts';

const enc = encodeURIComponent;

export interface KeyListOptions extends CallOptions {
  /** Include revoked keys (default: only active and expired ones). */
  includeRevoked?: boolean;
}

export class KeysApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  /** A new key; `token` (its secret) is in this answer only: the server keeps just its hash. */
  create(spec: ApiKeySpec, opts: CallOptions = {}): Promise<CreatedApiKey> {
    return this.#t.request('POST', '/keys', { body: spec, idempotent: false, signal: opts.signal });
  }

  /** Every key, never with its secret. */
  async list(opts: KeyListOptions = {}): Promise<ApiKeyView[]> {
    const query = opts.includeRevoked === undefined ? {} : { includeRevoked: opts.includeRevoked };
    return (await this.#t.request<{ items: ApiKeyView[] }>('GET', '/keys', { query, idempotent: true, signal: opts.signal })).items;
  }

  /** Rejects with KEY_NOT_FOUND for an unknown id. */
  get(id: string, opts: CallOptions = {}): Promise<ApiKeyView> {
    return this.#t.request('GET', `/keys/${enc(id)}`, { idempotent: true, signal: opts.signal });
  }

  /**
   * Every node refuses the key within seconds (this one at once). Revoking a revoked key
   * answers it as it is; the last active admin key cannot be revoked (INVALID_TRANSITION).
   */
  revoke(id: string, opts: CallOptions = {}): Promise<ApiKeyView> {
    return this.#t.request('POST', `/keys/${enc(id)}/revoke`, { idempotent: true, signal: opts.signal });
  }
}
