// Tool domains over the API and from the config file, their health rows, the tool-call
// audit's reads, and the loop the maintenance node runs (engine.ts): one object the engine
// holds as `engine.mcp`.

import { FlotillaError } from '../../core/errors.ts';
import type { Principal } from '../../core/permissions.ts';
import { toolDomainProblem, type ToolCallListParams, type ToolCallRecord, type ToolDomainRecord, type ToolDomainSpec } from '../../core/tool-domains.ts';
import type { EngineContext } from '../context.ts';
import { DomainClients } from './domain-clients.ts';
import { DomainHealth } from './domain-health.ts';
import { Gateway } from './gateway.ts';
import { ToolCallLog } from './tool-call-log.ts';

/** Where the gateway is served (http/routes/mcp.ts). */
export const MCP_GATEWAY_PATH = '/api/v1/mcp';

export class McpService {
  readonly #ctx: EngineContext;
  readonly clients: DomainClients;
  readonly health: DomainHealth;
  readonly calls: ToolCallLog;
  readonly gateway: Gateway;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
    this.clients = new DomainClients();
    this.health = new DomainHealth({ ctx: params.ctx, clients: this.clients });
    this.calls = new ToolCallLog({ ctx: params.ctx });
    this.gateway = new Gateway({ ctx: params.ctx, clients: this.clients, health: this.health, calls: this.calls });
  }

  /** At start: the config file's domains are created or replaced (their health kept), then the snapshot is read. */
  async start(): Promise<void> {
    for (const spec of this.#ctx.config.toolDomains) {
      await this.#ctx.store.toolDomainUpsert({ name: spec.name, spec, source: 'config', at: this.#ctx.now() });
    }
    await this.health.refresh();
  }

  async stop(): Promise<void> {
    await this.calls.flush().catch(() => {});
    await this.clients.closeAll();
  }

  /** The gateway's URL as an assignment carries it. */
  gatewayUrl(): string {
    const base = this.#ctx.config.mcpGatewayUrl;
    return base ?? MCP_GATEWAY_PATH;
  }

  async put(_principal: Principal, name: string, body: Omit<ToolDomainSpec, 'name'>): Promise<{ created: boolean; domain: ToolDomainRecord }> {
    const spec: ToolDomainSpec = { ...body, name };
    const problem = toolDomainProblem(spec);
    if (problem !== null) throw new FlotillaError('VALIDATION_FAILED', problem);
    const result = await this.#ctx.store.toolDomainUpsert({ name, spec, source: 'api', at: this.#ctx.now() });
    // A changed spec reconnects at next use; the next check tells its health.
    await this.clients.drop(name);
    await this.health.refresh();
    return result;
  }

  async get(_principal: Principal, name: string): Promise<ToolDomainRecord> {
    const domain = await this.#ctx.store.toolDomainGet({ name });
    if (domain === null) throw new FlotillaError('TOOL_DOMAIN_NOT_FOUND', `no tool domain "${name}"`);
    return domain;
  }

  list(_principal: Principal): Promise<ToolDomainRecord[]> {
    return this.#ctx.store.toolDomainList();
  }

  async delete(_principal: Principal, name: string): Promise<void> {
    const { deleted } = await this.#ctx.store.toolDomainDelete({ name });
    if (!deleted) throw new FlotillaError('TOOL_DOMAIN_NOT_FOUND', `no tool domain "${name}"`);
    await this.clients.drop(name);
    this.health.forget(name);
    await this.health.refresh();
  }

  async toolCalls(_principal: Principal, params: ToolCallListParams): Promise<{ items: ToolCallRecord[]; nextBefore: number | null }> {
    // What this node recorded a moment ago is readable at once.
    await this.calls.flush();
    return this.#ctx.store.toolCallList(params);
  }
}
