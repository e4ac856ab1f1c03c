// The MCP gateway (issue 15): an MCP server for workers, authenticated by an attempt's token.
// Each request gets a fresh SDK server (stateless streamable HTTP: no session to keep on one
// node, so any node answers any request). It lists only the tools the attempt's effective set
// permits, as `<domain>:<tool>`, proxies calls through this node's client of the domain, and
// refuses the rest with an MCP error whose `data.rule` names the rule. Every call, refused or
// not, is recorded in the tool-call audit (arguments as size and sha256 only).
//
// Invariant: the worker sees tool descriptions and results, never a domain's URL, command,
// headers or env (secrets stay in DomainClients).

import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { FlotillaError } from '../../core/errors.ts';
import type { Principal } from '../../core/permissions.ts';
import { gatewayCallRefusal, gatewayToolName, listableTools, splitGatewayToolName, type GatewayRefusalRule, type NewToolCall, type ToolDomainHealthStatus } from '../../core/tool-domains.ts';
import { toolSetOf, type ToolSet } from '../../core/tools.ts';
import type { EngineContext } from '../context.ts';
import type { TokenPrincipal } from '../scoped-tokens.ts';
import type { DomainClients, DomainTool } from './domain-clients.ts';
import type { DomainHealth } from './domain-health.ts';
import type { ToolCallLog } from './tool-call-log.ts';

/** The attempt a gateway request acts for, from its token and its assignment. */
export interface GatewayAttempt {
  taskId: string;
  assignmentId: string;
  attempt: number;
  agent: string;
  tools: ToolSet;
}

const MAX_ERROR = 1_000;

/**
 * The gateway's own refusal (a rule of core/tool-domains.ts). Its own class, so a domain's
 * server answering an error that happens to carry `data.rule` is not taken for one.
 */
class GatewayRefusal extends McpError {}

/**
 * What a failed call tells of the domain's client:
 * - `answered`: the server answered a JSON-RPC error (or its answer broke the tool's output
 *   schema): the connection is fine, the call's outcome is `error`;
 * - `timeout`: no answer in time: the call failed, but the connection may serve other calls
 *   (a slow tool is no broken transport; dropping it would kill a stdio server's state and
 *   abort other attempts' calls on the same client);
 * - `broken`: the connection closed or the transport failed: dropped, the next use connects.
 */
export function callFailureKind(err: unknown): 'answered' | 'timeout' | 'broken' {
  if (!(err instanceof McpError)) return 'broken';
  if (err.code === ErrorCode.ConnectionClosed) return 'broken';
  if (err.code === ErrorCode.RequestTimeout) return 'timeout';
  return 'answered';
}

export class Gateway {
  readonly #ctx: EngineContext;
  readonly #clients: DomainClients;
  readonly #health: DomainHealth;
  readonly #calls: ToolCallLog;

  constructor(params: { ctx: EngineContext; clients: DomainClients; health: DomainHealth; calls: ToolCallLog }) {
    this.#ctx = params.ctx;
    this.#clients = params.clients;
    this.#health = params.health;
    this.#calls = params.calls;
  }

  /** Only a live attempt's own token opens the gateway: the set it carries is the attempt's. */
  async attemptOf(principal: Principal): Promise<GatewayAttempt> {
    const token = principal.kind === 'token' ? (principal as TokenPrincipal) : null;
    if (token === null || token.assignmentId === null) {
      throw new FlotillaError('ATTEMPT_TOKEN_REQUIRED', 'the MCP gateway takes an attempt\'s token (POST /assignments/{id}/token, or ctx.mcp() in the SDK worker), not an API key');
    }
    const assignment = await this.#ctx.store.assignmentGet({ id: token.assignmentId });
    if (assignment === null || (assignment.status !== 'dispatched' && assignment.status !== 'running')) {
      throw new FlotillaError('ASSIGNMENT_SUPERSEDED', `assignment ${token.assignmentId} is ${assignment?.status ?? 'gone'}; its token opens the gateway no more`, { assignmentStatus: assignment?.status ?? 'unknown' });
    }
    return { taskId: assignment.taskId, assignmentId: assignment.id, attempt: assignment.attempt, agent: assignment.agent, tools: toolSetOf(token.scope.tools ?? []) };
  }

  /** An SDK server for one request of `attempt`. */
  server(attempt: GatewayAttempt): Server {
    const server = new Server({ name: 'flotilla-gateway', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: await this.#list(attempt) }));
    server.setRequestHandler(CallToolRequestSchema, async (request) => this.#call(attempt, request.params.name, request.params.arguments ?? {}));
    return server;
  }

  /** The tools of every domain not down whose tools the set may grant, asked of them all at once. */
  async #list(attempt: GatewayAttempt): Promise<DomainTool[]> {
    const down = this.#health.down();
    // A domain the set grants nothing of is not even asked; a domain down lists nothing.
    const asked = [...this.#health.domains().values()].filter((d) => !down.has(d.spec.name) && attempt.tools.grant.some((g) => g === '*' || g.startsWith(`${d.spec.name}:`)));
    const lists = await Promise.all(asked.map(async (domain) => {
      const name = domain.spec.name;
      let tools: DomainTool[];
      try {
        tools = this.#clients.knownTools(name) ?? await this.#clients.listTools(domain.spec, this.#ctx.config.mcpHealthTimeoutMs);
      } catch {
        // Unreachable now: listed nothing (its calls fail, and the next check marks it down).
        return [];
      }
      const allowed = new Set(listableTools(name, tools.map((t) => t.name), attempt.tools));
      return tools.filter((t) => allowed.has(gatewayToolName(name, t.name))).map((t) => ({ ...t, name: gatewayToolName(name, t.name) }));
    }));
    return lists.flat();
  }

  async #call(attempt: GatewayAttempt, name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const started = performance.now();
    const json = JSON.stringify(args);
    const base = {
      at: this.#ctx.now(), taskId: attempt.taskId, assignmentId: attempt.assignmentId, attempt: attempt.attempt, agent: attempt.agent, tool: name.slice(0, 256),
      argsBytes: Buffer.byteLength(json), argsSha256: createHash('sha256').update(json).digest('hex'),
    };
    const record = (outcome: NewToolCall['outcome'], rule: GatewayRefusalRule | null, error: string | null) => {
      this.#calls.record({ ...base, durationMs: Math.round(performance.now() - started), outcome, rule, error: error === null ? null : error.slice(0, MAX_ERROR) });
    };
    const refuse = (rule: GatewayRefusalRule, message: string): never => {
      record('refused', rule, message);
      throw new GatewayRefusal(ErrorCode.InvalidParams, message, { rule });
    };
    const statuses = new Map<string, ToolDomainHealthStatus>([...this.#health.domains()].map(([n, d]) => [n, d.health.status]));
    for (const d of this.#health.down()) statuses.set(d, 'down');
    const refusal = gatewayCallRefusal({ name, tools: attempt.tools, domains: statuses });
    if (refusal !== null) return refuse(refusal.rule, refusal.message);
    const { domain, tool } = splitGatewayToolName(name)!;
    const spec = this.#health.domains().get(domain)!.spec;
    const timeout = this.#ctx.config.mcpCallTimeoutMs;
    try {
      let tools = this.#clients.knownTools(domain);
      if (tools === null || !tools.some((t) => t.name === tool)) tools = await this.#clients.listTools(spec, timeout);
      if (!tools.some((t) => t.name === tool)) return refuse('unknown_tool', `tool domain "${domain}" has no tool "${tool}"`);
      const client = await this.#clients.client(spec, timeout);
      const result = await client.callTool({ name: tool, arguments: args }, undefined, { timeout });
      record(result.isError === true ? 'error' : 'ok', null, result.isError === true ? 'the tool answered with an error' : null);
      return result as Record<string, unknown>;
    } catch (err) {
      if (err instanceof GatewayRefusal) throw err;
      const message = err instanceof Error ? err.message : String(err);
      const kind = callFailureKind(err);
      if (kind === 'answered') {
        // The server answered: its error goes to the worker as it is, the client stays.
        record('error', null, message);
        throw err;
      }
      // Only a broken connection is dropped (the next call connects afresh); a timeout keeps it.
      if (kind === 'broken') await this.#clients.drop(domain);
      record('failed', null, message);
      throw new McpError(ErrorCode.InternalError, `tool domain "${domain}" did not answer: ${message}`, { rule: null });
    }
  }
}
