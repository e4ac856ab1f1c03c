// The SDK client the submitter uses. Whether the client has a `transport` option (a
// WebSocket path for pipelined submits) is read from the SDK's source at run time, since
// it may land after this bench: when FlotillaOptions declares `transport`, the bench uses
// `websocket` by default; otherwise HTTP. The transport used is recorded in the results.

import { readFileSync } from 'node:fs';
import { Flotilla, type FlotillaOptions } from '@flotilla/sdk';

export type ClientTransport = 'websocket' | 'http';

const SOURCE = new URL('../../packages/sdk/src/client/flotilla.ts', import.meta.url);

/** True when `FlotillaOptions` in the SDK's flotilla.ts declares a `transport` option. */
export function clientHasTransportOption(): boolean {
  const text = readFileSync(SOURCE, 'utf8');
  const block = /interface FlotillaOptions\b[^{]*\{([\s\S]*?)\n\}/.exec(text)?.[1] ?? '';
  return /^\s*(readonly\s+)?transport\??\s*:/m.test(block);
}

/** The transport to use: the requested one, or the best available; an unavailable request is an error. */
export function chooseClientTransport(requested: string | undefined): ClientTransport {
  const hasOption = clientHasTransportOption();
  if (requested === undefined) return hasOption ? 'websocket' : 'http';
  if (requested !== 'websocket' && requested !== 'http') throw new Error(`--transport must be websocket or http, not ${requested}`);
  if (requested === 'websocket' && !hasOption) throw new Error('--transport websocket: this SDK client has no transport option (FlotillaOptions in packages/sdk/src/client/flotilla.ts); it speaks HTTP only');
  return requested;
}

export function createClient(url: string, token: string, transport: ClientTransport): Flotilla {
  const options: Record<string, unknown> = { url, token };
  // Passed only to a client that has the option: an HTTP-only client is built as it always was.
  if (clientHasTransportOption()) options.transport = transport;
  return new Flotilla(options as unknown as FlotillaOptions);
}

/** Closes the client's connections when it has a close() (a WebSocket client does). */
export async function closeClient(client: Flotilla): Promise<void> {
  const c = client as unknown as { close?: () => unknown };
  if (typeof c.close === 'function') await c.close();
}
