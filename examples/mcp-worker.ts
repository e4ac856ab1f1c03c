// A tool-using agent: it asks the server's MCP gateway which tools its task may use, and calls
// one. The gateway lists only the tools of the task's effective set, as `<domain>:<tool>`,
// proxies the call to the real MCP server (here the reference "everything" server, declared
// as the tool domain `everything` in flotilla.config.yaml: docs/mcp.md), and records it in
// GET /api/v1/tool-calls. The worker never sees the server's command, URL or secrets.
//   npx flotilla worker examples/mcp-worker.ts --agent mcp-worker
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { TaskContext, WorkerTask } from '@flotilla/sdk';

export default async function mcpWorker(task: WorkerTask, ctx: TaskContext) {
  const { message = 'hello from a Flotilla task', tool = 'everything:echo' } = (task.input ?? {}) as { message?: string; tool?: string };
  const { url, token, downDomains } = await ctx.mcp();
  if (downDomains.length > 0) ctx.log('running degraded', { downDomains });
  const client = new Client({ name: 'flotilla-mcp-worker', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    await ctx.progress(50, `${tools.length} tools allowed`);
    const result = await client.callTool({ name: tool, arguments: { message } });
    return { tools, called: tool, content: result.content as never };
  } finally {
    await client.close();
  }
}
