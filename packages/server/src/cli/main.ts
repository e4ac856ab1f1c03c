#!/usr/bin/env -S node --max-semi-space-size=8
// The `flotilla` command: `serve` and `migrate` run a server; the client commands (submit,
// get, ls, cancel, retry, agents, events, worker, keys, audit; in ./commands/) talk to one
// through the SDK client.

import { ConfigError, redactUrl } from '../config/config.ts';
import { FlotillaError } from '../core/errors.ts';
import { openStore } from '../store/open-store.ts';
import { startServer } from '../server.ts';
import { VERSION } from '../http/app.ts';
import { CLIENT_COMMANDS, CLIENT_HELP, describeClientError } from './commands/index.ts';
import { EXIT_USAGE, isParseArgsError } from './commands/errors.ts';
import { closest } from './commands/suggest.ts';
import { serverConfigFromArgs, serverStartFailure } from './server-args.ts';

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
generates one, prints it once, and stores only its hash. No admin token (lost, or every
admin key revoked)? \`flotilla keys bootstrap [--database URL]\` writes a new admin key into
the database, server running or not, and prints its token once.

serve exits 2 for a bad setting, 1 when it cannot start (a port in use, the database
unreachable), each with one line saying why.
`;

const SERVE_SYNOPSIS = 'Usage: flotilla serve [--host H] [--port N] [--database URL] [--config FILE] [--log-level L]';
const MIGRATE_SYNOPSIS = 'Usage: flotilla migrate [--database URL] [--config FILE]';

async function serve(argv: string[]): Promise<void> {
  const parsed = serverConfigFromArgs(argv, { command: 'serve', usage: HELP, synopsis: SERVE_SYNOPSIS, serving: true });
  if (parsed === null) return;
  const { config } = parsed;
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ config });
  } catch (err) {
    throw serverStartFailure(err, config) ?? err;
  }
  const { log } = server.engine.ctx;
  if (server.generatedAdminToken) {
    // Printed once, to the terminal only — never through the logger (logs get shipped).
    process.stdout.write(
      `\n  Generated an admin token (shown only this once; only its hash is stored):\n\n    ${server.generatedAdminToken}\n\n` +
      `  For the flotilla CLI:  export FLOTILLA_TOKEN=${server.generatedAdminToken}\n` +
      `  Over HTTP:             Authorization: Bearer <token>\n\n`,
    );
  }
  // One plain line for whoever watches the terminal (stdout carries the JSON log).
  if (server.adminKeyWarning) process.stderr.write(`flotilla: ${server.adminKeyWarning}\n`);
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
  const parsed = serverConfigFromArgs(argv, { command: 'migrate', usage: HELP, synopsis: MIGRATE_SYNOPSIS });
  if (parsed === null) return;
  const { config } = parsed;
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore({ url: config.databaseUrl, applicationName: 'flotilla-migrate' });
  } catch (err) {
    throw serverStartFailure(err, config) ?? err;
  }
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
      const near = closest(command, [...SERVER_COMMANDS, ...Object.keys(CLIENT_COMMANDS)]);
      process.stderr.write(`flotilla: unknown command "${command}"${near ? `; did you mean \`${near}\`?` : ''}\n(flotilla help lists the commands)\n`);
      process.exitCode = EXIT_USAGE;
    }
  }
}

const SERVER_COMMANDS = ['serve', 'migrate', 'version', 'help'];

main(process.argv.slice(2)).catch((err: unknown) => {
  const client = describeClientError(err);
  if (client) {
    process.stderr.write(`flotilla: ${client.message}\n`);
    process.exitCode = client.exitCode;
    return;
  }
  if (err instanceof ConfigError || isParseArgsError(err)) {
    process.stderr.write(`flotilla: ${err.message}\n`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  if (err instanceof FlotillaError) {
    // The server's own errors are explained by their message; no stack.
    process.stderr.write(`flotilla: ${err.code}: ${err.message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stderr.write(`flotilla: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
