// `flotilla worker MODULE --agent X`: runs a handler module as a worker of agent X. The module
// exports the handler as its default export (or as `handler`): (task, ctx) => result.
// SIGTERM/SIGINT drain: running tasks finish (up to --drain-timeout-ms), the rest are failed
// as retryable so they move elsewhere at once.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createWorker, FlotillaApiError, FlotillaNetworkError, isErrorCode, type Handler } from '@flotilla/sdk';
import { intFlag, parseCommand, stringFlag, usageError } from './args.ts';
import { CliError, UsageError } from './errors.ts';

export const WORKER_USAGE = `Usage:
  flotilla worker MODULE --agent X [--concurrency N] [--site S] [--replica ID] [--drain-timeout-ms N]
                  [--capabilities a,b] [--transport websocket|http]

Runs MODULE's handler (its default export, or an export named \`handler\`) for agent X's tasks
until SIGTERM or Ctrl-C, then drains. A .ts module runs as is. Work is pushed over a
WebSocket; --transport http uses the HTTP long-poll protocol instead. --capabilities makes
the worker refuse to start unless agent X declares each of them.
`;

export async function workerCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    command: 'worker',
    usage: WORKER_USAGE,
    positionals: ['MODULE'],
    options: {
      agent: { type: 'string' },
      concurrency: { type: 'string' },
      site: { type: 'string' },
      replica: { type: 'string' },
      'drain-timeout-ms': { type: 'string' },
      capabilities: { type: 'string' },
      transport: { type: 'string' },
    },
  });
  if (cmd === null) return;
  const agent = stringFlag(cmd.values.agent);
  if (!agent) throw usageError('--agent is required', { command: 'worker', usage: WORKER_USAGE });
  const concurrency = intFlag(cmd.values.concurrency, '--concurrency', 1, 10_000) ?? 1;
  const drainTimeoutMs = intFlag(cmd.values['drain-timeout-ms'], '--drain-timeout-ms', 0, 3_600_000) ?? 30_000;
  const { urls, token } = cmd.connection();

  const path = resolve(cmd.positionals[0]!);
  let mod: { default?: unknown; handler?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as typeof mod;
  } catch (err) {
    throw new UsageError(`cannot load ${path}: ${(err as Error).message}`);
  }
  const handler = typeof mod.default === 'function' ? mod.default : mod.handler;
  if (typeof handler !== 'function') throw new UsageError(`${path} exports no handler (a default export or \`handler\` function)`);

  const transport = stringFlag(cmd.values.transport) ?? 'websocket';
  if (transport !== 'websocket' && transport !== 'http') throw usageError(`--transport must be websocket or http, got "${transport}"`, { command: 'worker', usage: WORKER_USAGE });
  const capabilities = (stringFlag(cmd.values.capabilities) ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '');
  const site = stringFlag(cmd.values.site);
  const replica = stringFlag(cmd.values.replica);
  const worker = createWorker({
    url: urls, token, agent, concurrency, handler: handler as Handler, drainTimeoutMs, transport,
    ...(capabilities.length > 0 ? { capabilities } : {}),
    ...(site ? { site } : {}), ...(replica ? { replica } : {}),
    log: (level, message, data) => process.stderr.write(`${JSON.stringify({ level, message, ...data })}\n`),
  });
  try {
    await worker.start();
  } catch (err) {
    throw await explainStartFailure(err, urls, token, worker.transport);
  }
  process.stderr.write(`flotilla: worker ${worker.replicaId} serving agent "${agent}" with concurrency ${concurrency} over ${worker.transport}\n`);
  await new Promise<void>((done) => {
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
  process.stderr.write(`flotilla: draining (up to ${drainTimeoutMs} ms)\n`);
  await worker.stop({ drainTimeoutMs });
}

/**
 * Why a worker could not start, as an error main.ts prints as one line. Over HTTP the
 * registration's own error says it (401 → exit 1, no answer → exit 3). A WebSocket that fails
 * to open says nothing (the browser API hides the status of a refused upgrade): then the same
 * URL is asked over plain HTTP with the same token, which tells a wrong token (401), a server
 * that is not there (no answer, with its cause) and a proxy that drops upgrades (426) apart.
 */
async function explainStartFailure(err: unknown, urls: string[], token: string, transport: 'websocket' | 'http'): Promise<unknown> {
  if (err instanceof FlotillaApiError || err instanceof FlotillaNetworkError) return err;
  // The SDK's capability check: the agent lacks what --capabilities names.
  if (err instanceof TypeError && err.message.startsWith('Flotilla worker:')) return new CliError(err.message.slice('Flotilla worker: '.length));
  if (transport !== 'websocket') return err;
  let unreachable: FlotillaNetworkError | null = null;
  for (const url of urls) {
    const base = url.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
    const probe = `${base}/api/v1/workers/socket`;
    let res: Response;
    try {
      res = await fetch(probe, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === 'TimeoutError';
      unreachable ??= new FlotillaNetworkError(
        timedOut ? `request GET /workers/socket to ${base} timed out after 10000 ms` : `could not open ${probe}`,
        { url: base, cause },
      );
      continue;
    }
    const text = await res.text().catch(() => '');
    // 426: the token is good and the server speaks WebSocket here; the upgrade itself was lost.
    if (res.status === 426) {
      return new CliError(`the server at ${base} accepts the token, but the WebSocket upgrade to ${probe} failed `
        + '(does a proxy in between pass WebSocket upgrades?); --transport http works without them');
    }
    let code: unknown;
    let message = `HTTP ${res.status}`;
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      code = body.error?.code;
      if (typeof body.error?.message === 'string') message = body.error.message;
    } catch {
      // Not a Flotilla answer (a proxy's page): the status says enough.
    }
    if (isErrorCode(code)) return new FlotillaApiError({ code, message, status: res.status });
    return new CliError(`the server at ${base} refused the WebSocket connection (HTTP ${res.status}: ${message.slice(0, 200)})`);
  }
  return unreachable ?? err;
}
