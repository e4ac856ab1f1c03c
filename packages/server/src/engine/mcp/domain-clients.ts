// One MCP client per tool domain, kept by this server process (the official SDK's Client over
// its streamable HTTP or stdio transport). The health checker and the gateway share it: a
// stdio server is started once and kept, not once per call.
//
// Invariants:
// - secrets (header and env references) are resolved here, at connect, from this process's
//   environment (core/secret-refs.ts), and go only to the transport: never to a record, a
//   view, a log line or a worker.
// - a client whose transport failed or closed, or whose domain's spec changed, is dropped; the
//   next use connects afresh (a restarted HTTP server has forgotten the old session).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { resolveSecretRefs } from '../../core/secret-refs.ts';
import type { ToolDomainSpec } from '../../core/tool-domains.ts';

/** A tool as its domain lists it (the MCP `Tool` object, passed through to gateway clients). */
export interface DomainTool {
  name: string;
  [key: string]: unknown;
}

interface Held {
  key: string;
  connecting: Promise<Client>;
  client: Client | null;
  /** The domain's tools as last listed through this client. */
  tools: DomainTool[] | null;
}

/** Pages of tools/list read at most (a server listing more is cut there). */
const MAX_TOOL_PAGES = 20;

export class DomainClients {
  readonly #held = new Map<string, Held>();
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #version: string;

  constructor(params: { env?: Readonly<Record<string, string | undefined>>; version?: string } = {}) {
    this.#env = params.env ?? process.env;
    this.#version = params.version ?? '1.0.0';
  }

  /** A connected client for the domain (connecting if needed, within `timeoutMs`). */
  async client(spec: ToolDomainSpec, timeoutMs: number): Promise<Client> {
    const key = JSON.stringify(spec);
    let held = this.#held.get(spec.name);
    // Re-read after every await: while an old spec's client was being dropped, a concurrent
    // caller may have stored a new entry, which must be used (not overwritten and leaked).
    while (held !== undefined && held.key !== key) {
      await this.drop(spec.name);
      held = this.#held.get(spec.name);
    }
    if (held === undefined) {
      const entry: Held = { key, connecting: Promise.resolve(null as unknown as Client), client: null, tools: null };
      entry.connecting = this.#connect(spec, entry, timeoutMs);
      this.#held.set(spec.name, entry);
      held = entry;
      // A failed connect is not kept: the next use tries again.
      entry.connecting.catch(() => {
        if (this.#held.get(spec.name) === entry) this.#held.delete(spec.name);
      });
    }
    return held.connecting;
  }

  async #connect(spec: ToolDomainSpec, entry: Held, timeoutMs: number): Promise<Client> {
    const client = new Client({ name: 'flotilla', version: this.#version });
    const transport = this.#transport(spec);
    // The transport closing (the stdio process exited, the HTTP session ended) drops the client.
    client.onclose = () => {
      if (this.#held.get(spec.name) === entry) this.#held.delete(spec.name);
    };
    try {
      await client.connect(transport, { timeout: timeoutMs });
    } catch (err) {
      await client.close().catch(() => {});
      throw err;
    }
    entry.client = client;
    return client;
  }

  #transport(spec: ToolDomainSpec): Transport {
    if (spec.url !== undefined) {
      const headers = resolveSecretRefs(spec.headers, this.#env);
      return new StreamableHTTPClientTransport(new URL(spec.url), { requestInit: { headers } });
    }
    const env = { ...getDefaultEnvironment(), ...resolveSecretRefs(spec.env, this.#env) };
    // stderr ignored: a server's diagnostics are not ours to log (they may hold its secrets).
    return new StdioClientTransport({ command: spec.command!, args: spec.args ?? [], env, stderr: 'ignore' });
  }

  /** The domain's tools, listed now (every page), and remembered for `knownTools`. */
  async listTools(spec: ToolDomainSpec, timeoutMs: number): Promise<DomainTool[]> {
    const client = await this.client(spec, timeoutMs);
    const tools: DomainTool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const res = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: timeoutMs });
      tools.push(...(res.tools as DomainTool[]));
      cursor = res.nextCursor;
      if (cursor === undefined) break;
    }
    const held = this.#held.get(spec.name);
    if (held !== undefined) held.tools = tools;
    return tools;
  }

  /** The tools last listed through the domain's client, or null. */
  knownTools(name: string): DomainTool[] | null {
    return this.#held.get(name)?.tools ?? null;
  }

  /** Closes the domain's client (and stops its stdio server); the next use connects again. */
  async drop(name: string): Promise<void> {
    const held = this.#held.get(name);
    if (held === undefined) return;
    this.#held.delete(name);
    const client = await held.connecting.catch(() => null);
    await client?.close().catch(() => {});
  }

  /** The domains this node holds a client (or a connect in progress) for. */
  names(): string[] {
    return [...this.#held.keys()];
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#held.keys()].map((name) => this.drop(name)));
  }
}
