// Tool domains (issue 15): MCP servers Flotilla health-checks, routes around and proxies tool
// calls to. Pure: the engine checks the servers, stores their health and asks these functions.
//
// Glossary:
// - tool domain: a named MCP server, reached over streamable HTTP (`url`, `headers`) or started
//   by the server over stdio (`command`, `args`, `env`). Header and env values are SecretRefs
//   (core/secret-refs.ts): resolved only when the server connects, never shown.
// - a domain's tool as the gateway names it: `<domain>:<tool>` (core/tools.ts's grammar), so
//   an effective tool set's `web:*` or `web:search` decides a call without another rule.
// - health: `up` (the last check connected, pinged and listed tools), `down` (it failed), or
//   `unknown` (never checked yet: a new domain). Only `down` stops dispatches.
//
// Invariants:
// - an agent depends on the declared domains among its `toolDomains`; names no domain is
//   declared under stay informational (decision 58: they were network domains) and never gate.
// - a task that does not allow running degraded is never dispatched to an agent with a domain
//   down; one that allows it is, and its assignment names the domains that are down.

import type { SecretRef } from './secret-refs.ts';
import { permits, type ToolSet } from './tools.ts';

export type ToolDomainHealthStatus = 'up' | 'down' | 'unknown';

/** How a domain is declared: in the config file or over the API (PUT /tool-domains/{name}). */
export interface ToolDomainSpec {
  name: string;
  description?: string;
  /** Streamable HTTP: the MCP endpoint's URL, and headers sent with every request. */
  url?: string;
  headers?: Record<string, SecretRef>;
  /** stdio: the command the server starts (and keeps), its arguments and extra environment. */
  command?: string;
  args?: string[];
  env?: Record<string, SecretRef>;
}

export interface ToolDomainHealth {
  status: ToolDomainHealthStatus;
  /** When it was last checked (null: never). */
  checkedAt: number | null;
  /** The last check's round trips (connect if needed, ping, list tools), ms. */
  latencyMs: number | null;
  toolCount: number | null;
  /** Why the last failed check failed (kept while it stays down; cleared when it is up). */
  lastError: string | null;
  /** When the status last changed. */
  changedAt: number | null;
}

export const UNKNOWN_HEALTH: ToolDomainHealth = { status: 'unknown', checkedAt: null, latencyMs: null, toolCount: null, lastError: null, changedAt: null };

export const TOOL_DOMAIN_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
const NAME = new RegExp(TOOL_DOMAIN_NAME_PATTERN);
const RESERVED = 'flotilla';

/** Why `spec` cannot be a tool domain (what the schema cannot say), or null. */
export function toolDomainProblem(spec: ToolDomainSpec): string | null {
  if (!NAME.test(spec.name) || spec.name.length > 64) return `"${spec.name}" is not a tool domain name (a letter or digit, then letters, digits, ".", "_" or "-"; at most 64)`;
  if (spec.name === RESERVED) return `"${RESERVED}" is Flotilla's own tool domain (its delegation tools)`;
  const http = spec.url !== undefined;
  const stdio = spec.command !== undefined;
  if (http === stdio) return 'a tool domain has either "url" (streamable HTTP) or "command" (stdio), not both or neither';
  if (http && (spec.args !== undefined || spec.env !== undefined)) return '"args" and "env" are for a stdio domain ("command")';
  if (stdio && spec.headers !== undefined) return '"headers" are for a streamable HTTP domain ("url")';
  if (http) {
    let url: URL;
    try {
      url = new URL(spec.url!);
    } catch {
      return `"url" ${spec.url} is not a URL`;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return `"url" must be http or https, not ${url.protocol}`;
  }
  return null;
}

export function transportOf(spec: ToolDomainSpec): 'streamable-http' | 'stdio' {
  return spec.url !== undefined ? 'streamable-http' : 'stdio';
}

/** The domains among `toolDomains` (an agent's) that are down now, sorted. */
export function downDomainsOf(toolDomains: readonly string[], down: ReadonlySet<string>): string[] {
  return toolDomains.filter((d) => down.has(d)).sort();
}

/**
 * Per agent with at least one of its domains down, those domains: what the dispatcher gates
 * on and an assignment's note names. Empty when nothing is down (the usual case: no cost).
 */
export function gatedAgents(agents: Iterable<{ name: string; toolDomains: readonly string[] }>, down: ReadonlySet<string>): Map<string, string[]> {
  const gated = new Map<string, string[]>();
  if (down.size === 0) return gated;
  for (const a of agents) {
    const domains = downDomainsOf(a.toolDomains, down);
    if (domains.length > 0) gated.set(a.name, domains);
  }
  return gated;
}

// -- the gateway ------------------------------------------------------------------------------

/** A tool as the gateway names it. */
export function gatewayToolName(domain: string, tool: string): string {
  return `${domain}:${tool}`;
}

/** `<domain>:<tool>` split at its first colon, or null for a name without a domain. */
export function splitGatewayToolName(name: string): { domain: string; tool: string } | null {
  const colon = name.indexOf(':');
  if (colon <= 0 || colon === name.length - 1) return null;
  return { domain: name.slice(0, colon), tool: name.slice(colon + 1) };
}

/** Why the gateway refuses a call (an MCP error's `data.rule`). */
export type GatewayRefusalRule = 'not_allowed' | 'unknown_tool' | 'domain_down';

export interface GatewayCallInput {
  /** The tool as called: `<domain>:<tool>`. */
  name: string;
  /** The attempt's effective tool set (its token's claims). */
  tools: ToolSet;
  /** Declared domains and their status. */
  domains: ReadonlyMap<string, ToolDomainHealthStatus>;
}

/**
 * The gateway's rules for one call, in order: the effective set must permit the tool (checked
 * first: a caller learns nothing of domains it may not use), its domain must be declared, and
 * not down. Whether the domain has the tool is asked of the server after these (unknown_tool).
 */
export function gatewayCallRefusal(input: GatewayCallInput): { rule: GatewayRefusalRule; message: string } | null {
  if (!permits(input.tools, input.name)) return { rule: 'not_allowed', message: `tool "${input.name}" is not in this task's tool set` };
  const split = splitGatewayToolName(input.name);
  const status = split === null ? undefined : input.domains.get(split.domain);
  if (split === null || status === undefined) return { rule: 'unknown_tool', message: `tool "${input.name}" names no declared tool domain (tools are "<domain>:<tool>")` };
  if (status === 'down') return { rule: 'domain_down', message: `tool domain "${split.domain}" is down` };
  return null;
}

/** The tools a domain lists that the set permits, as the gateway names them. */
export function listableTools(domain: string, tools: readonly string[], set: ToolSet): string[] {
  return tools.map((t) => gatewayToolName(domain, t)).filter((name) => permits(set, name));
}

// -- records ------------------------------------------------------------------------------------

/** A declared domain as stored: its spec, where it was declared, and its last health. */
export interface ToolDomainRecord {
  spec: ToolDomainSpec;
  source: 'config' | 'api';
  createdAt: number;
  updatedAt: number;
  health: ToolDomainHealth;
}

export const TOOL_CALL_OUTCOMES = ['ok', 'error', 'failed', 'refused'] as const;
/**
 * ok: the server answered; error: it answered with a tool error (`isError`); failed: the call
 * did not get an answer (server unreachable, timed out, protocol error); refused: the gateway's
 * rules refused it (`rule`), and the server was never asked.
 */
export type ToolCallOutcome = (typeof TOOL_CALL_OUTCOMES)[number];

/** One call through the gateway (the tool-call audit). Arguments are kept as size and hash only. */
export interface ToolCallRecord {
  seq: number;
  at: number;
  taskId: string;
  assignmentId: string;
  attempt: number;
  agent: string;
  /** As called: `<domain>:<tool>`. */
  tool: string;
  argsBytes: number;
  argsSha256: string;
  durationMs: number;
  outcome: ToolCallOutcome;
  rule: GatewayRefusalRule | null;
  error: string | null;
}

export type NewToolCall = Omit<ToolCallRecord, 'seq'>;

export interface ToolCallListParams {
  limit: number;
  /** Keyset position: only calls with a seq below this one (the previous page's `nextBefore`). */
  before?: number;
  taskId?: string;
  agent?: string;
  tool?: string;
  outcome?: ToolCallOutcome;
  since?: number;
  until?: number;
}
