// `flotilla worker MODULE --agent X`: runs a handler module as a worker of agent X. The module
// exports the handler as its default export (or as `handler`): (task, ctx) => result.
// SIGTERM/SIGINT drain: running tasks finish (up to --drain-timeout-ms), the rest are failed
// as retryable so they move elsewhere at once.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createWorker, type Handler } from '@flotilla/sdk';
import { intFlag, parseCommand, stringFlag } from './args.ts';
import { UsageError } from './errors.ts';

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
  if (!agent) throw new UsageError(`--agent is required\n\n${WORKER_USAGE}`);
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
  if (transport !== 'websocket' && transport !== 'http') throw new UsageError(`--transport must be websocket or http\n\n${WORKER_USAGE}`);
  const capabilities = (stringFlag(cmd.values.capabilities) ?? '').split(',').map((c) => c.trim()).filter((c) => c !== '');
  const site = stringFlag(cmd.values.site);
  const replica = stringFlag(cmd.values.replica);
  const worker = createWorker({
    url: urls, token, agent, concurrency, handler: handler as Handler, drainTimeoutMs, transport,
    ...(capabilities.length > 0 ? { capabilities } : {}),
    ...(site ? { site } : {}), ...(replica ? { replica } : {}),
    log: (level, message, data) => process.stderr.write(`${JSON.stringify({ level, message, ...data })}\n`),
  });
  await worker.start();
  process.stderr.write(`flotilla: worker ${worker.replicaId} serving agent "${agent}" with concurrency ${concurrency} over ${worker.transport}\n`);
  await new Promise<void>((done) => {
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
  process.stderr.write(`flotilla: draining (up to ${drainTimeoutMs} ms)\n`);
  await worker.stop({ drainTimeoutMs });
}
