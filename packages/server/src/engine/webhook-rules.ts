// The checks the webhook endpoints and a submit's `notify` share, as FlotillaErrors (the
// rules themselves are core/webhooks.ts).

import type { TaskSpec } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import { badEventPatterns, webhookUrlProblem, WEBHOOK_EVENTS_MAX } from '../core/webhooks.ts';
import type { Json } from '../core/types.ts';

/** Refuses a webhook or notify URL (undefined: none given, nothing to check). */
export function requireWebhookUrl(url: string | undefined): void {
  if (url === undefined) return;
  const reason = webhookUrlProblem(url);
  if (reason !== null) throw new FlotillaError('WEBHOOK_URL_INVALID', `the webhook URL is refused: ${reason}`, { reason });
}

export function requireEventPatterns(events: readonly string[] | undefined): void {
  if (events === undefined) return;
  if (events.length === 0 || events.length > WEBHOOK_EVENTS_MAX) {
    throw new FlotillaError('WEBHOOK_EVENTS_INVALID', `events must list 1 to ${WEBHOOK_EVENTS_MAX} event types or patterns`, { events: [] });
  }
  const bad = badEventPatterns(events);
  if (bad.length > 0) {
    throw new FlotillaError('WEBHOOK_EVENTS_INVALID', `not an event type, a "prefix.*" pattern or "*": ${bad.join(', ')}`, { events: bad });
  }
}

/**
 * What a submit's task.created event carries of its `notify` (the webhook feed records the URL
 * from there: the submit's commit writes nothing else for it, decision 111).
 */
export function notifyData(spec: TaskSpec): Record<string, Json> {
  return spec.notify === undefined ? {} : { notify: { url: spec.notify.url } };
}
