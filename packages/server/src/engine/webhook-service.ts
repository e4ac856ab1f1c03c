// Webhook subscriptions over the API (docs/webhooks.md, decision 112): create (the secret is
// shown once, only sealed in the store), list, read, change, delete, rotate the secret; their
// deliveries and an operator's replay. `webhook.manage` acts on every subscription (and on the
// `notify` deliveries); a principal with only `webhook.read` on its own: another's is not found.

import type { WebhookPatch, WebhookSpec } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import { allows, ownerIdOf, taskVisibility, type Principal } from '../core/permissions.ts';
import { NOTIFY_SUBSCRIPTION, WEBHOOKS_PER_OWNER_MAX } from '../core/webhooks.ts';
import type { WebhookDeliveryRecord, WebhookDeliveryStatus, WebhookRecord } from '../store/store.ts';
import type { EngineContext } from './context.ts';
import type { WebhookOutbox } from './webhook-outbox.ts';
import { requireEventPatterns, requireWebhookUrl } from './webhook-rules.ts';
import { newWebhookSecret, type WebhookSecrets } from './webhook-secrets.ts';

export class WebhookService {
  readonly #ctx: EngineContext;
  readonly #secrets: WebhookSecrets;
  readonly #outbox: WebhookOutbox;

  constructor(params: { ctx: EngineContext; secrets: WebhookSecrets; outbox: WebhookOutbox }) {
    this.#ctx = params.ctx;
    this.#secrets = params.secrets;
    this.#outbox = params.outbox;
  }

  async create(principal: Principal, spec: WebhookSpec): Promise<{ webhook: WebhookRecord; secret: string }> {
    requireWebhookUrl(spec.url);
    requireEventPatterns(spec.events);
    // Counted before the insert, so creates racing may pass it by a few: a bound on the feed's work, not an exact quota.
    if ((await this.#ctx.store.webhookList({ ownerId: ownerIdOf(principal) })).length >= WEBHOOKS_PER_OWNER_MAX) {
      throw new FlotillaError('WEBHOOK_LIMIT', `you have ${WEBHOOKS_PER_OWNER_MAX} webhook subscriptions already (the most one owner may have): delete one first`, { max: WEBHOOKS_PER_OWNER_MAX });
    }
    const now = this.#ctx.now();
    const secret = newWebhookSecret();
    const webhook: WebhookRecord = {
      id: this.#ctx.newId(), url: spec.url, events: [...new Set(spec.events)], agents: spec.agents ?? null, rootId: spec.rootId ?? null,
      enabled: spec.enabled ?? true, description: spec.description ?? '', ownerId: ownerIdOf(principal),
      // Who the owner may see now is what the subscription sees, for as long as it exists.
      visibility: taskVisibility(principal),
      secretSealed: await this.#secrets.seal(secret),
      // Only events after this one: a new subscription is not sent the history.
      fromSeq: await this.#ctx.store.eventLastSeq(),
      createdAt: now, updatedAt: now,
      // A token's right to read ends with it: so does what its subscription is sent.
      expiresAt: principal.scope?.maxExpiresAt ?? null,
    };
    await this.#ctx.store.webhookCreate({ webhook });
    return { webhook, secret };
  }

  list(principal: Principal): Promise<WebhookRecord[]> {
    return this.#ctx.store.webhookList(allows(principal, 'webhook.manage') ? {} : { ownerId: ownerIdOf(principal) });
  }

  async get(principal: Principal, id: string): Promise<WebhookRecord> {
    const webhook = await this.#ctx.store.webhookGet({ id });
    if (webhook === null || (!allows(principal, 'webhook.manage') && webhook.ownerId !== ownerIdOf(principal))) {
      throw new FlotillaError('WEBHOOK_NOT_FOUND', `no webhook subscription ${id}`);
    }
    return webhook;
  }

  async update(principal: Principal, id: string, patch: WebhookPatch): Promise<WebhookRecord> {
    requireWebhookUrl(patch.url);
    requireEventPatterns(patch.events);
    const { webhook, old } = await this.#change(principal, id, (old) => ({
      ...old,
      ...(patch.url === undefined ? {} : { url: patch.url }),
      ...(patch.events === undefined ? {} : { events: [...new Set(patch.events)] }),
      ...(patch.agents === undefined ? {} : { agents: patch.agents }),
      ...(patch.rootId === undefined ? {} : { rootId: patch.rootId }),
      ...(patch.enabled === undefined ? {} : { enabled: patch.enabled }),
      ...(patch.description === undefined ? {} : { description: patch.description }),
    }));
    // Re-enabled: what waited for it may go now.
    if (webhook.enabled && !old.enabled) this.#outbox.wake();
    return webhook;
  }

  async rotateSecret(principal: Principal, id: string): Promise<{ webhook: WebhookRecord; secret: string }> {
    // Refused before anything is written: the first seal creates the server's sealing key.
    await this.get(principal, id);
    const secret = newWebhookSecret();
    const sealed = await this.#secrets.seal(secret);
    const { webhook } = await this.#change(principal, id, (old) => ({ ...old, secretSealed: sealed }));
    return { webhook, secret };
  }

  /**
   * Applies `make` to the stored subscription, guarded on its updatedAt (which every change
   * moves forward, even within one millisecond): a patch and a rotation racing (on two nodes,
   * or two requests on one) each apply to the other's result instead of writing back a stale
   * copy, which would lose a field or store a secret other than the one a rotation showed.
   */
  async #change(principal: Principal, id: string, make: (old: WebhookRecord) => WebhookRecord): Promise<{ webhook: WebhookRecord; old: WebhookRecord }> {
    for (let i = 0; ; i++) {
      const old = await this.get(principal, id);
      const webhook: WebhookRecord = { ...make(old), updatedAt: Math.max(this.#ctx.now(), old.updatedAt + 1) };
      const { updated } = await this.#ctx.store.webhookUpdate({ webhook, ifUpdatedAt: old.updatedAt });
      if (updated) return { webhook, old };
      // Changed meanwhile (or deleted: the next get says so); a few tries always suffice in practice.
      if (i >= 20) throw new Error(`webhook ${id} kept changing under an update`);
    }
  }

  async delete(principal: Principal, id: string): Promise<void> {
    await this.get(principal, id);
    const { deleted } = await this.#ctx.store.webhookDelete({ id });
    if (!deleted) throw new FlotillaError('WEBHOOK_NOT_FOUND', `no webhook subscription ${id}`);
  }

  /** `id` NOTIFY_SUBSCRIPTION: the tasks' notify deliveries (webhook.manage only). */
  async deliveries(principal: Principal, id: string, params: { status: WebhookDeliveryStatus; limit: number }): Promise<WebhookDeliveryRecord[]> {
    await this.#requireDeliveries(principal, id);
    return this.#ctx.store.webhookDeliveryList({ subscriptionId: id, status: params.status, limit: params.limit });
  }

  /** Makes failed deliveries pending again (one, by its delivery id, or all); they go out on the maintenance node's next pass. */
  async replay(principal: Principal, id: string, deliveryId: string | undefined): Promise<number> {
    await this.#requireDeliveries(principal, id);
    let eventSeq: number | undefined;
    if (deliveryId !== undefined) {
      const match = /^(.+):(\d{1,15})$/.exec(deliveryId);
      if (match === null || match[1] !== id) throw new FlotillaError('WEBHOOK_DELIVERY_NOT_FOUND', `no failed delivery ${deliveryId} of webhook ${id}`);
      eventSeq = Number(match[2]);
    }
    const replayed = await this.#ctx.store.webhookDeliveryReplay({ subscriptionId: id, ...(eventSeq === undefined ? {} : { eventSeq }), now: this.#ctx.now() });
    if (deliveryId !== undefined && replayed === 0) throw new FlotillaError('WEBHOOK_DELIVERY_NOT_FOUND', `no failed delivery ${deliveryId} of webhook ${id}`);
    this.#outbox.wake();
    return replayed;
  }

  notifySecret(_principal: Principal): Promise<string> {
    return this.#secrets.notifySecret();
  }

  async #requireDeliveries(principal: Principal, id: string): Promise<void> {
    if (id === NOTIFY_SUBSCRIPTION && allows(principal, 'webhook.manage')) return;
    await this.get(principal, id);
  }
}
