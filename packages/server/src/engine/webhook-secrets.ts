// Webhook secrets (decision 110). A subscription's signing secret must be readable by the
// server to sign, so it cannot be hashed like an API key. It is stored sealed: AES-256-GCM
// under a key kept in the store's server secrets (secretEnsure, as the token signing key), so a
// row read on its own (a view, a dump of one table, a log line) never holds it in the clear.
// Anyone with the whole database holds the key too: the same trust as the token signing key.
// The notify secret (decision 111) is one server-wide secret in the same place.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Store } from '../store/store.ts';

const SEALING_KEY_NAME = 'webhook-sealing-key';
const NOTIFY_SECRET_NAME = 'webhook-notify-secret';
const VERSION = 'v1';

/** A new subscription (or notify) secret: 32 random bytes, prefixed so it is recognisable in a leak scan. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export class WebhookSecrets {
  readonly #store: Store;
  readonly #now: () => number;
  #key: Buffer | null = null;
  #notify: string | null = null;

  constructor(params: { store: Store; now: () => number }) {
    this.#store = params.store;
    this.#now = params.now;
  }

  /** Loads (or creates, on a database's first use) the sealing key and the notify secret; every node ends up with the same. */
  async #load(): Promise<Buffer> {
    if (this.#key === null) {
      const value = await this.#store.secretEnsure({ name: SEALING_KEY_NAME, value: randomBytes(32).toString('base64url'), at: this.#now() });
      this.#key = Buffer.from(value, 'base64url');
    }
    return this.#key;
  }

  async notifySecret(): Promise<string> {
    this.#notify ??= await this.#store.secretEnsure({ name: NOTIFY_SECRET_NAME, value: newWebhookSecret(), at: this.#now() });
    return this.#notify;
  }

  /** `v1.<iv>.<ciphertext>.<tag>`, base64url parts. */
  async seal(secret: string): Promise<string> {
    const key = await this.#load();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const data = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), data.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  async unseal(sealed: string): Promise<string> {
    const key = await this.#load();
    const [version, iv, data, tag] = sealed.split('.');
    if (version !== VERSION || iv === undefined || data === undefined || tag === undefined) throw new Error('a sealed webhook secret of an unknown form');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}
