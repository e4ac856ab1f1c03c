// Webhook signatures (docs/webhooks.md): `Flotilla-Signature: t=<unix seconds>,v1=<hex>`, where
// v1 is HMAC-SHA256, keyed with the subscription's secret, of `<t>.<raw body>`. The timestamp is
// signed with the body, so a captured request cannot be replayed later than the receiver's
// tolerance; the delivery id (Flotilla-Delivery-Id) is what a receiver dedupes retries on.
// The server signs with `signWebhook`, receivers check with `verifyWebhookSignature`. Web
// Crypto only (crypto.subtle: Node, Deno, Bun, browsers, edge runtimes), as the rest of the
// SDK is web-standard; so both are async.

export const WEBHOOK_SIGNATURE_HEADER = 'flotilla-signature';
export const WEBHOOK_ID_HEADER = 'flotilla-webhook-id';
export const WEBHOOK_DELIVERY_HEADER = 'flotilla-delivery-id';
/** What a receiver should accept by default: five minutes either way. */
export const WEBHOOK_DEFAULT_TOLERANCE_S = 300;

const encoder = new TextEncoder();

function key(secret: string, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
}

/** `<t>.` followed by the body's bytes: what the signature covers. */
function signedBytes(timestampS: number, body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const prefix = encoder.encode(`${timestampS}.`);
  const bytes = typeof body === 'string' ? encoder.encode(body) : body;
  const out = new Uint8Array(prefix.length + bytes.length);
  out.set(prefix, 0);
  out.set(bytes, prefix.length);
  return out;
}

/** The `Flotilla-Signature` header value for `body` sent at `timestampS`. */
export async function signWebhook(params: { secret: string; body: string | Uint8Array; timestampS: number }): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await key(params.secret, 'sign'), signedBytes(params.timestampS, params.body)));
  return `t=${params.timestampS},v1=${Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Whether `header` (the request's Flotilla-Signature) signs `body` (the raw bytes received,
 * before any JSON parsing) with `secret`, at a time within `toleranceS` (default 300) of now.
 * Several `v1` entries are accepted (any one matching). The comparison is crypto.subtle's
 * (constant time).
 */
export async function verifyWebhookSignature(params: { secret: string; body: string | Uint8Array; header: string | null | undefined; toleranceS?: number; nowS?: number }): Promise<boolean> {
  if (typeof params.header !== 'string' || params.header.length > 4096) return false;
  let t: number | null = null;
  const signatures: Uint8Array<ArrayBuffer>[] = [];
  for (const part of params.header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (name === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(Uint8Array.from(value.match(/../g)!, (h) => parseInt(h, 16)));
  }
  if (t === null || signatures.length === 0) return false;
  const now = params.nowS ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (params.toleranceS ?? WEBHOOK_DEFAULT_TOLERANCE_S)) return false;
  const k = await key(params.secret, 'verify');
  const data = signedBytes(t, params.body);
  for (const s of signatures) {
    if (await crypto.subtle.verify('HMAC', k, s, data)) return true;
  }
  return false;
}
