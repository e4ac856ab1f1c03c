// Webhook signatures (docs/webhooks.md): `Flotilla-Signature: t=<unix seconds>,v1=<hex>`, where
// v1 is HMAC-SHA256, keyed with the subscription's secret, of `<t>.<raw body>`. The timestamp is
// signed with the body, so a captured request cannot be replayed later than the receiver's
// tolerance; the delivery id (Flotilla-Delivery-Id) is what a receiver dedupes retries on.
// The server signs with `signWebhook`, receivers check with `verifyWebhookSignature`.

import { createHmac, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_SIGNATURE_HEADER = 'flotilla-signature';
export const WEBHOOK_ID_HEADER = 'flotilla-webhook-id';
export const WEBHOOK_DELIVERY_HEADER = 'flotilla-delivery-id';
/** What a receiver should accept by default: five minutes either way. */
export const WEBHOOK_DEFAULT_TOLERANCE_S = 300;

function mac(secret: string, timestampS: number, body: string | Uint8Array): string {
  const h = createHmac('sha256', secret);
  h.update(`${timestampS}.`);
  h.update(body);
  return h.digest('hex');
}

/** The `Flotilla-Signature` header value for `body` sent at `timestampS`. */
export function signWebhook(params: { secret: string; body: string | Uint8Array; timestampS: number }): string {
  return `t=${params.timestampS},v1=${mac(params.secret, params.timestampS, params.body)}`;
}

/**
 * Whether `header` (the request's Flotilla-Signature) signs `body` (the raw bytes received,
 * before any JSON parsing) with `secret`, at a time within `toleranceS` of now. Several `v1`
 * entries are accepted (any one matching), so a header may carry more than one signature.
 */
export function verifyWebhookSignature(params: { secret: string; body: string | Uint8Array; header: string | null | undefined; toleranceS?: number; nowS?: number }): boolean {
  if (typeof params.header !== 'string' || params.header.length > 4096) return false;
  let t: number | null = null;
  const signatures: string[] = [];
  for (const part of params.header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(value);
  }
  if (t === null || signatures.length === 0) return false;
  const now = params.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (params.toleranceS ?? WEBHOOK_DEFAULT_TOLERANCE_S)) return false;
  const expected = Buffer.from(mac(params.secret, t, params.body), 'hex');
  return signatures.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), expected));
}
