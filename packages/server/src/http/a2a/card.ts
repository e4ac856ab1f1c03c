// The fleet's one A2A agent card (decisions.md 79): a skill per agent that opts in
// (`a2aSkill`), bearer authentication (an API key or a scoped token), the JSON-RPC interfaces
// for A2A v1.0 and v0.3, streaming and push notifications. Built from the registry each time
// it is asked for (cached there), so a published agent shows on every node within seconds.

import { AgentCard, type AgentCard as Card, type AgentSkill } from '@a2a-js/sdk';
import { LegacyRestTransportHandler } from '@a2a-js/sdk/compat/v0_3/server';
import { ServerCallContext, type A2ARequestHandler } from '@a2a-js/sdk/server';
import type { AgentRecord } from '../../core/types.ts';

export const A2A_JSONRPC_PATH = '/a2a/jsonrpc';
export const A2A_LEGACY_JSONRPC_PATH = '/a2a/v0.3/jsonrpc';
export const AGENT_CARD_URL = '/.well-known/agent-card.json';
/** The card's security scheme: HTTP bearer, as every API route takes it. */
const BEARER = 'bearer';
const DEFAULT_MODES = ['application/json', 'text/plain'];

function skillOf(agent: AgentRecord): AgentSkill {
  const skill = agent.a2aSkill!;
  return {
    id: agent.name,
    name: agent.name,
    description: agent.description !== '' ? agent.description : `Flotilla agent ${agent.name}`,
    tags: agent.capabilities,
    examples: skill.examples,
    inputModes: skill.inputModes,
    outputModes: skill.outputModes,
    securityRequirements: [],
  };
}

/** The v1.0 card, its interfaces under `baseUrl` (the v0.3 one last: v1.0 clients pick the first they speak). */
export function fleetCard(params: { baseUrl: string; version: string; skills: AgentRecord[] }): Card {
  return {
    name: 'Flotilla',
    description: 'A fleet of agents behind one A2A endpoint: each skill is a Flotilla agent; a message becomes a durable Flotilla task.',
    supportedInterfaces: [
      { url: `${params.baseUrl}${A2A_JSONRPC_PATH}`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' },
      { url: `${params.baseUrl}${A2A_LEGACY_JSONRPC_PATH}`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '0.3' },
    ],
    provider: undefined,
    version: params.version,
    capabilities: { streaming: true, pushNotifications: true, extensions: [], extendedAgentCard: false },
    securitySchemes: {
      [BEARER]: {
        scheme: {
          $case: 'httpAuthSecurityScheme',
          value: { scheme: 'Bearer', bearerFormat: 'a Flotilla API key or scoped token', description: 'Authorization: Bearer <API key or scoped token>; the same roles as POST /api/v1/tasks' },
        },
      },
    },
    securityRequirements: [{ schemes: { [BEARER]: { list: [] } } }],
    defaultInputModes: DEFAULT_MODES,
    defaultOutputModes: DEFAULT_MODES,
    skills: params.skills.map(skillOf),
    signatures: [],
  };
}

/** The card as JSON, in the shape of the A2A version asked for (the v0.3 one: the SDK's own translation). */
export async function cardJson(card: Card, legacy: boolean): Promise<unknown> {
  if (!legacy) return AgentCard.toJSON(card);
  const provider = { getAuthenticatedExtendedAgentCard: async () => card } as unknown as A2ARequestHandler;
  return new LegacyRestTransportHandler(provider).getAuthenticatedExtendedAgentCard(new ServerCallContext());
}
