// A2A clients as any A2A client would be: the SDK's own (v1.0 from the card, v0.3 from the
// v0.3 card over its legacy transport), authenticated with a bearer token.

import { AGENT_CARD_PATH, Role, type Message, type Part } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, createAuthenticatingFetchWithRetry, type Client } from '@a2a-js/sdk/client';
import { parseLegacyAgentCard } from '@a2a-js/sdk/compat/v0_3/client';
import { TOKEN } from './harness.ts';

export function bearerFetch(token: string): typeof fetch {
  return createAuthenticatingFetchWithRetry(fetch, {
    headers: async () => ({ authorization: `Bearer ${token}` }),
    shouldRetryWithHeaders: async () => undefined,
  });
}

/** A v1.0 client from Flotilla's card (fetched with A2A-Version: 1.0, as the SDK does). */
export async function v1Client(base: string, token = TOKEN): Promise<Client> {
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl: bearerFetch(token) })],
  }));
  return factory.createFromUrl(base);
}

/** A v0.3 client: the card as a v0.3 client reads it (no A2A-Version header), the v0.3 wire. */
export async function v03Client(base: string, token = TOKEN): Promise<Client> {
  const raw = await (await fetch(new URL(AGENT_CARD_PATH, `${base}/`))).json() as { protocolVersion?: string; url?: string };
  if (raw.protocolVersion !== '0.3' || typeof raw.url !== 'string') throw new Error(`not a v0.3 card: ${JSON.stringify(raw)}`);
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl: bearerFetch(token), legacyCompat: { enabled: true } })],
  }));
  return factory.createFromAgentCard(parseLegacyAgentCard(raw));
}

export function text(value: string): Part {
  return { content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: 'text/plain' };
}

export function data(value: unknown): Part {
  return { content: { $case: 'data', value }, metadata: undefined, filename: '', mediaType: 'application/json' };
}

export function userMessage(parts: Part[], extra: Partial<Message> = {}): Message {
  return {
    messageId: crypto.randomUUID(), contextId: '', taskId: '', role: Role.ROLE_USER, parts, metadata: undefined, extensions: [],
    referenceTaskIds: [], ...extra,
  };
}
