// Webhook subscriptions and their deliveries (docs/webhooks.md). Creating and rotating are not
// retried after a failure that may have been applied: each answer shows a secret once, and a
// resend would make a second subscription (or a second secret) the caller never saw.

import type {
  WebhookDeliveryPage, WebhookDeliveryStatus, WebhookPatch, WebhookSecretView, WebhookSpec, WebhookView,
} from '../wire.ts';
import type { Transport } from './transport.ts';
import type { CallOptions } from './types.ts';

const enc = encodeURIComponent;

export class WebhooksApi {
  readonly #t: Transport;

  constructor(transport: Transport) {
    this.#t = transport;
  }

  /** Subscribes; the answer's `secret` is shown this once (keep it: it checks each delivery's signature). */
  create(spec: WebhookSpec, opts: CallOptions = {}): Promise<WebhookSecretView> {
    return this.#t.request('POST', '/webhooks', { body: spec, idempotent: false, signal: opts.signal });
  }

  async list(opts: CallOptions = {}): Promise<WebhookView[]> {
    const page: { items: WebhookView[] } = await this.#t.request('GET', '/webhooks', { idempotent: true, signal: opts.signal });
    return page.items;
  }

  get(id: string, opts: CallOptions = {}): Promise<WebhookView> {
    return this.#t.request('GET', `/webhooks/${enc(id)}`, { idempotent: true, signal: opts.signal });
  }

  update(id: string, patch: WebhookPatch, opts: CallOptions = {}): Promise<WebhookView> {
    return this.#t.request('PATCH', `/webhooks/${enc(id)}`, { body: patch, idempotent: true, signal: opts.signal });
  }

  async delete(id: string, opts: CallOptions = {}): Promise<void> {
    await this.#t.request('DELETE', `/webhooks/${enc(id)}`, { idempotent: true, signal: opts.signal });
  }

  /** A new secret, shown this once; later deliveries (retries of earlier ones too) are signed with it. */
  rotateSecret(id: string, opts: CallOptions = {}): Promise<WebhookSecretView> {
    return this.#t.request('POST', `/webhooks/${enc(id)}/rotate-secret`, { idempotent: false, signal: opts.signal });
  }

  /** Its queued deliveries (`pending`) or those given up after the last attempt (`failed`), oldest first. */
  deliveries(id: string, params: { status?: WebhookDeliveryStatus; limit?: number } & CallOptions = {}): Promise<WebhookDeliveryPage> {
    const { signal, ...query } = params;
    return this.#t.request('GET', `/webhooks/${enc(id)}/deliveries`, { query, idempotent: true, signal });
  }

  /** Sends failed deliveries again (one, by its id, or all of the subscription's); answers how many. */
  replay(id: string, params: { deliveryId?: string } & CallOptions = {}): Promise<{ replayed: number }> {
    const { signal, ...body } = params;
    return this.#t.request('POST', `/webhooks/${enc(id)}/deliveries/replay`, { body, idempotent: true, signal });
  }

  /** The secret `notify: { url }` deliveries are signed with (webhook.manage). */
  notifySecret(opts: CallOptions = {}): Promise<{ secret: string }> {
    return this.#t.request('GET', '/webhooks/notify-secret', { idempotent: true, signal: opts.signal });
  }
}
