// Tool domains (MCP servers), their health, the tool-call audit, and the MCP gateway workers
// call their tools through (who may call each: http/route-actions.ts). docs/mcp.md.

import type { FastifyInstance } from 'fastify';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { ToolDomainSpec, ToolCallOutcome } from '@flotilla/sdk';
import type { Engine } from '../../engine/engine.ts';
import { toolCallQuerySchema, toolDomainParams, toolDomainSpecSchema } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { toolCallView, toolDomainHealthView, toolDomainView } from './mcp-views.ts';

export function mcpRoutes(app: FastifyInstance, engine: Engine): void {
  app.get('/tool-domains', {
    schema: { summary: 'List tool domains (MCP servers)', tags: ['mcp'], response: answers({ 200: 'ToolDomainList' }) },
  }, async (request) => ({ items: (await engine.mcp.list(principalOf(request))).map(toolDomainView) }));

  app.get<{ Params: { name: string } }>('/tool-domains/:name', {
    schema: { summary: 'One tool domain', tags: ['mcp'], params: toolDomainParams, response: answers({ 200: 'ToolDomainView' }) },
  }, async (request) => toolDomainView(await engine.mcp.get(principalOf(request), request.params.name)));

  app.put<{ Params: { name: string }; Body: ToolDomainSpec }>('/tool-domains/:name', {
    schema: { summary: 'Declare or replace a tool domain: an MCP server over streamable HTTP (url) or stdio (command)', tags: ['mcp'], params: toolDomainParams, body: toolDomainSpecSchema, response: answers({ 200: 'ToolDomainView', 201: 'ToolDomainView' }) },
  }, async (request, reply) => {
    const { created, domain } = await engine.mcp.put(principalOf(request), request.params.name, request.body);
    return reply.code(created ? 201 : 200).send(toolDomainView(domain));
  });

  app.delete<{ Params: { name: string } }>('/tool-domains/:name', {
    schema: { summary: 'Remove a tool domain (a stdio server it started is stopped)', tags: ['mcp'], params: toolDomainParams, response: answers({ 200: 'Ok' }) },
  }, async (request) => {
    await engine.mcp.delete(principalOf(request), request.params.name);
    return { ok: true };
  });

  app.get('/mcp/health', {
    schema: { summary: "Every tool domain's health, as the maintenance node last checked it", tags: ['mcp'], response: answers({ 200: 'ToolDomainHealthList' }) },
  }, async (request) => ({ items: (await engine.mcp.list(principalOf(request))).map(toolDomainHealthView) }));

  app.get<{ Querystring: { taskId?: string; agent?: string; tool?: string; outcome?: ToolCallOutcome; since?: string; until?: string; before?: number; limit?: number } }>('/tool-calls', {
    schema: { summary: 'Tool calls through the MCP gateway, newest first (filters combine with AND)', tags: ['mcp'], querystring: toolCallQuerySchema, response: answers({ 200: 'ToolCallPage' }) },
  }, async (request) => {
    const q = request.query;
    const page = await engine.mcp.toolCalls(principalOf(request), {
      limit: q.limit ?? 100,
      ...(q.before !== undefined ? { before: q.before } : {}),
      ...(q.taskId !== undefined ? { taskId: q.taskId } : {}),
      ...(q.agent !== undefined ? { agent: q.agent } : {}),
      ...(q.tool !== undefined ? { tool: q.tool } : {}),
      ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
      ...(q.since !== undefined ? { since: Date.parse(q.since) } : {}),
      ...(q.until !== undefined ? { until: Date.parse(q.until) } : {}),
    });
    return { items: page.items.map(toolCallView), nextBefore: page.nextBefore };
  });

  // The gateway: the SDK's streamable HTTP server transport on Fastify's raw request and
  // response, stateless (a server and a transport per request), answering JSON.
  app.post('/mcp', {
    schema: { summary: "The MCP gateway (streamable HTTP) for an attempt's tools; authenticate with the attempt's token", tags: ['mcp'], response: answers({ 200: 'McpGatewayAnswer' }) },
  }, async (request, reply) => {
    const attempt = await engine.mcp.gateway.attemptOf(principalOf(request));
    const server = engine.mcp.gateway.server(attempt);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    reply.hijack();
    reply.raw.on('close', () => {
      void transport.close().catch(() => {});
      void server.close().catch(() => {});
    });
    await transport.handleRequest(request.raw, reply.raw, request.body);
  });
}
