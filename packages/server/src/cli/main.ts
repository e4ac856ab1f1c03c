#!/usr/bin/env node
// The `flotilla` command: `serve` and `migrate` run a server; the client commands (submit,
// get, ls, cancel, retry, agents, events, worker, keys, audit; in ./commands/) talk to one
// through the SDK client.

import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, parseInteger, parseLogLevel, redactUrl, type ServerConfig } from '../config/config.ts';
import { openStore } from '../store/open-store.ts';
import { startServer } from '../server.ts';
import { VERSION } from '../http/app.ts';
import { CLIENT_COMMANDS, CLIENT_HELP, describeClientError } from './commands/index.ts';

const HELP = `flotilla ${VERSION} — durable task orchestration for fleets of AI agents

Usage:
  flotilla serve [--host H] [--port N] [--database URL] [--config FILE] [--log-level L]
  flotilla migrate [--database URL] [--config FILE]
  flotilla version
  flotilla help

${CLIENT_HELP}
serve flags (each also settable by environment variable; flags win):
  --host H          address to bind (FLOTILLA_HOST, default 127.0.0.1)
  --port N          port (FLOTILLA_PORT, default 8080; 0 picks a free port)
  --database URL    a SQLite file path, or postgres://user:pass@host:5432/db[?schema=name]
                    (FLOTILLA_DATABASE_URL, default ./flotilla.db). Any number of servers
                    may share one PostgreSQL database.
  --config FILE     YAML config with server settings and agents
                    (FLOTILLA_CONFIG, default ./flotilla.config.yaml when present)
  --log-level L     fatal|error|warn|info|debug|trace|silent (FLOTILLA_LOG_LEVEL, default info)

Authentication: FLOTILLA_ADMIN_TOKEN sets the admin token; without it, the first start
generates one, prints it once, and stores only its hash.
`;

/**
 * Settings for a command from its flags (flags win over the environment and the config
 * file). `serving` adds the flags only `serve` takes. Null when --help was asked for.
 */
function configFromArgs(argv: string[], serving: boolean): ServerConfig | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      database: { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...(serving ? { host: { type: 'string' }, port: { type: 'string' }, 'log-level': { type: 'string' } } as const : {}),
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return null;
  }
  const v = values as { host?: string; port?: string; database?: string; config?: string; 'log-level'?: string };
  return loadConfig({
    env: process.env,
    cwd: process.cwd(),
    flags: {
      ...(v.host !== undefined ? { host: v.host } : {}),
      ...(v.port !== undefined ? { port: parseInteger(v.port, '--port') } : {}),
      ...(v.database !== undefined ? { databaseUrl: v.database } : {}),
      ...(v.config !== undefined ? { configFile: v.config } : {}),
      ...(v['log-level'] !== undefined ? { logLevel: parseLogLevel(v['log-level'], '--log-level') } : {}),
    },
  });
}

async function serve(argv: string[]): Promise<void> {
  const config = configFromArgs(argv, true);
  if (config === null) return;
  const server = await startServer({ config });
  const { log } = server.engine.ctx;
  if (server.generatedAdminToken) {
    // Printed once, to the terminal only — never through the logger (logs get shipped).
    process.stdout.write(
      `\n  Generated an admin token (shown only this once; only its hash is stored):\n\n    ${server.generatedAdminToken}\n\n` +
      `  For the flotilla CLI:  export FLOTILLA_TOKEN=${server.generatedAdminToken}\n` +
      `  Over HTTP:             Authorization: Bearer <token>\n\n`,
    );
  }
  log.info({ url: server.url, database: redactUrl(config.databaseUrl), configFile: config.configFile }, `flotilla listening on ${server.url}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    server.close().then(() => process.exit(0), (err: unknown) => {
      log.error({ err }, 'error during shutdown');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** Applies pending migrations and exits (serve also migrates at start; this is for deploy pipelines). */
async function migrate(argv: string[]): Promise<void> {
  const config = configFromArgs(argv, false);
  if (config === null) return;
  const store = await openStore({ url: config.databaseUrl, applicationName: 'flotilla-migrate' });
  await store.close();
  process.stdout.write(`migrations applied: ${redactUrl(config.databaseUrl)} is up to date\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'migrate':
      return migrate(rest);
    case 'version':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return;
    default: {
      const client = Object.hasOwn(CLIENT_COMMANDS, command) ? CLIENT_COMMANDS[command] : undefined;
      if (client) return client(rest);
      process.stderr.write(`flotilla: unknown command "${command}"\n\n${HELP}`);
      process.exitCode = 2;
    }
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const client = describeClientError(err);
  if (client) {
    process.stderr.write(`flotilla: ${client.message}\n`);
    process.exitCode = client.exitCode;
    return;
  }
  if (err instanceof ConfigError || (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`flotilla: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`flotilla: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
