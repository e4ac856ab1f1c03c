// Webhook subscriptions and their deliveries (docs/webhooks.md; who may call each:
// http/route-actions.ts). The secret is in the create and rotate answers only.

import type { FastifyInstance } from 'fastify';
import type { WebhookDeliveryStatus, WebhookPatch, WebhookSpec } from '@flotilla/sdk';
import type { Engine } from '../../engine/engine.ts';
import { webhookDeliveryQuerySchema, webhookParams, webhookPatchSchema, webhookReplaySchema, webhookSpecSchema } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { webhookDeliveryView, webhookView } from './webhook-views.ts';

type Id = { Params: { id: string } };

export function webhookRoutes(app: FastifyInstance, engine: Engine): void {
  const hooks = engine.webhooks;

  app.post<{ Body: WebhookSpec }>('/webhooks', {
    schema: { summary: 'Subscribe a URL to events (signed POSTs); the answer shows the secret this once', tags: ['webhooks'], body: webhookSpecSchema, response: answers({ 201: 'WebhookSecretView' }) },
  }, async (request, reply) => {
    const { webhook, secret } = await hooks.create(principalOf(request), request.body);
    return reply.code(201).send({ ...webhookView(webhook), secret });
  });

  app.get('/webhooks', {
    schema: { summary: 'Webhook subscriptions (all with webhook.manage, else your own)', tags: ['webhooks'], response: answers({ 200: 'WebhookList' }) },
  }, async (request) => ({ items: (await hooks.list(principalOf(request))).map(webhookView) }));

  app.get('/webhooks/notify-secret', {
    schema: { summary: "The secret tasks' notify deliveries are signed with", tags: ['webhooks'], response: answers({ 200: 'WebhookNotifySecret' }) },
  }, async (request) => ({ secret: await hooks.notifySecret(principalOf(request)) }));

  app.get<Id>('/webhooks/:id', {
    schema: { summary: 'One webhook subscription', tags: ['webhooks'], params: webhookParams, response: answers({ 200: 'WebhookView' }) },
  }, async (request) => webhookView(await hooks.get(principalOf(request), request.params.id)));

  app.patch<Id & { Body: WebhookPatch }>('/webhooks/:id', {
    schema: { summary: 'Change a subscription: URL, events, filters, enabled (a disabled one is queued nothing)', tags: ['webhooks'], params: webhookParams, body: webhookPatchSchema, response: answers({ 200: 'WebhookView' }) },
  }, async (request) => webhookView(await hooks.update(principalOf(request), request.params.id, request.body)));

  app.delete<Id>('/webhooks/:id', {
    schema: { summary: 'Delete a subscription and its queued and failed deliveries', tags: ['webhooks'], params: webhookParams, response: answers({ 200: 'Ok' }) },
  }, async (request) => {
    await hooks.delete(principalOf(request), request.params.id);
    return { ok: true };
  });

  app.post<Id>('/webhooks/:id/rotate-secret', {
    schema: { summary: 'A new secret, shown this once; every later attempt is signed with it', tags: ['webhooks'], params: webhookParams, response: answers({ 200: 'WebhookSecretView' }) },
  }, async (request) => {
    const { webhook, secret } = await hooks.rotateSecret(principalOf(request), request.params.id);
    return { ...webhookView(webhook), secret };
  });

  app.get<Id & { Querystring: { status?: WebhookDeliveryStatus; limit?: number } }>('/webhooks/:id/deliveries', {
    schema: { summary: "A subscription's pending or failed deliveries (id `notify`: the tasks' notify deliveries)", tags: ['webhooks'], params: webhookParams, querystring: webhookDeliveryQuerySchema, response: answers({ 200: 'WebhookDeliveryPage' }) },
  }, async (request) => {
    const items = await hooks.deliveries(principalOf(request), request.params.id, { status: request.query.status ?? 'failed', limit: request.query.limit ?? 100 });
    return { items: items.map(webhookDeliveryView) };
  });

  app.post<Id & { Body: { deliveryId?: string } | undefined }>('/webhooks/:id/deliveries/replay', {
    schema: { summary: 'Send failed deliveries again: one (deliveryId) or all of the subscription', tags: ['webhooks'], params: webhookParams, body: webhookReplaySchema, response: answers({ 200: 'WebhookReplayed' }) },
  }, async (request) => ({ replayed: await hooks.replay(principalOf(request), request.params.id, request.body?.deliveryId) }));
}
