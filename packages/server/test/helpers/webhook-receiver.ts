// A real webhook receiver on loopback (node:http on 127.0.0.1, a free port): it checks every
// request's signature with the SDK's verifyWebhookSignature and records what it got. It can be
// made to answer 500, or be taken down (connections refused) and brought back on the same port.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature, type WebhookEventBody } from '@flotilla/sdk';

export interface Received {
  body: WebhookEventBody;
  raw: string;
  headers: IncomingMessage['headers'];
  /** Whether the signature checked out with the receiver's secret at the time. */
  valid: boolean;
  /** What the receiver answered. */
  status: number;
}

export interface Receiver {
  url: string;
  /** Every request, in arrival order (failed ones too). */
  all: Received[];
  /** The requests it answered 2xx with a valid signature. */
  accepted(): Received[];
  /** The secret signatures are checked with (set once a subscription's create answer shows it). */
  secret: string | null;
  /** 200 (the default) or what to answer instead. */
  status: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** `now`: the server's clock (a test harness's, which tests move forward), to check timestamps against. */
export async function webhookReceiver(now: () => number = Date.now): Promise<Receiver> {
  let server: Server | null = null;
  let port = 0;
  const r: Receiver = {
    url: '',
    all: [],
    secret: null,
    status: 200,
    accepted: () => r.all.filter((x) => x.status < 300 && x.valid),
    async down() {
      const s = server;
      server = null;
      if (s) await new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); });
    },
    async up() {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', async () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const valid = r.secret !== null && await verifyWebhookSignature({ secret: r.secret, body: raw, header: req.headers['flotilla-signature'] as string | undefined, nowS: Math.floor(now() / 1000) });
          const status = valid ? r.status : 401;
          r.all.push({ body: JSON.parse(raw) as WebhookEventBody, raw, headers: req.headers, valid, status });
          res.writeHead(status, { connection: 'close' }).end();
        });
      });
      await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', () => resolve()));
      port = (s.address() as AddressInfo).port;
      server = s;
      r.url = `http://127.0.0.1:${port}/hook`;
    },
    close: () => r.down(),
  };
  await r.up();
  return r;
}
