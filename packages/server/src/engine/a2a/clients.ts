// The A2A client of each a2a agent, built from its agent card with the SDK's card resolver and
// client factory (decisions.md 74). The card is fetched once and used for `a2aCardTtlMs`, and
// fetched again at once after a failed call (`invalidate`): a redeployed agent that moved or
// changed protocol version is picked up without a restart. v0.3 agents are spoken to through
// the SDK's compatibility layer, chosen by the card.
//
// Secrets: the agent's headers are secret references, resolved from the server's environment
// here, at use, and sent only to the origin of the declared url/cardUrl: never to another
// origin the card names for its service, and never across a redirect (redirects are refused,
// so a card or service URL that redirects cannot point the credentials, or the request, elsewhere).

import { type AgentCard } from '@a2a-js/sdk';
import { type Client, ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import { a2aCardUrl } from '../../core/a2a-target.ts';
import { resolveSecretRefs } from '../../core/secret-refs.ts';
import type { AgentRecord, Millis } from '../../core/types.ts';

export interface A2aConnection {
  client: Client;
  card: AgentCard;
  /** The protocol version the client speaks with the agent: "1.0", or "0.3" through the SDK's compatibility layer. */
  protocolVersion: string;
  /** The card says the agent streams: message/stream, and resubscribe after a takeover. */
  streaming: boolean;
  fetchedAt: Millis;
  /** The declaration it was built from: a changed one builds a new client. */
  key: string;
}

function urlOf(input: Parameters<typeof fetch>[0]): URL {
  return new URL(input instanceof Request ? input.url : String(input));
}

/** fetch with the agent's headers for its declared origin only, and no redirects. */
function fetchWith(headers: Record<string, string>, origin: string): typeof fetch {
  return (input, init) => {
    const merged = new Headers(init?.headers);
    if (urlOf(input).origin === origin) for (const [name, value] of Object.entries(headers)) merged.set(name, value);
    return fetch(input, { ...init, headers: merged, redirect: 'error' });
  };
}

/** fetch bounded by `ms` (the card fetch: a card that never comes must not hold the agent's attempts). */
function timed(fetchImpl: typeof fetch, ms: Millis): typeof fetch {
  return (input, init) => {
    const signal = init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(ms)]) : AbortSignal.timeout(ms);
    return fetchImpl(input, { ...init, signal });
  };
}

export class A2aClients {
  #entries = new Map<string, A2aConnection>();
  #pending = new Map<string, Promise<A2aConnection>>();
  #ttlMs: Millis;
  #cardTimeoutMs: Millis;
  #now: () => Millis;
  #env: Readonly<Record<string, string | undefined>>;

  constructor(params: { ttlMs: Millis; cardTimeoutMs: Millis; now: () => Millis; env: Readonly<Record<string, string | undefined>> }) {
    this.#ttlMs = params.ttlMs;
    this.#cardTimeoutMs = params.cardTimeoutMs;
    this.#now = params.now;
    this.#env = params.env;
  }

  /** The agent's connection; fetches its card when there is none, it is older than the TTL, or the declaration changed. */
  async get(agent: AgentRecord): Promise<A2aConnection> {
    if (agent.a2a === null) throw new Error(`agent "${agent.name}" declares no a2a target`);
    const key = JSON.stringify(agent.a2a);
    const known = this.#entries.get(agent.name);
    if (known && known.key === key && this.#now() - known.fetchedAt < this.#ttlMs) return known;
    const pending = this.#pending.get(agent.name);
    if (pending) return pending;
    const connecting = this.#connect(agent, key).finally(() => this.#pending.delete(agent.name));
    this.#pending.set(agent.name, connecting);
    return connecting;
  }

  async #connect(agent: AgentRecord, key: string): Promise<A2aConnection> {
    const cardUrl = a2aCardUrl(agent.a2a!);
    const fetchImpl = fetchWith(resolveSecretRefs(agent.a2a!.headers, this.#env), new URL(cardUrl).origin);
    const legacyCompat = { enabled: true };
    const resolver = new DefaultAgentCardResolver({ fetchImpl: timed(fetchImpl, this.#cardTimeoutMs), legacyCompat });
    const card = await resolver.resolve(cardUrl, '');
    const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl, legacyCompat }), new RestTransportFactory({ fetchImpl, legacyCompat })],
      cardResolver: resolver,
      // Non-streaming sends return at once (returnImmediately); the worker polls tasks/get.
      clientConfig: { polling: true },
    }));
    const client = await factory.createFromAgentCard(card);
    const connection: A2aConnection = {
      client, card, protocolVersion: client.protocolVersion, streaming: card.capabilities?.streaming === true, fetchedAt: this.#now(), key,
    };
    this.#entries.set(agent.name, connection);
    return connection;
  }

  /** A call failed, or the agent is gone: the next call fetches the card again (a gone agent's entry is dropped). */
  invalidate(agentName: string): void {
    this.#entries.delete(agentName);
  }
}
