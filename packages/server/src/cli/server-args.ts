// Settings for the commands that work on a server's database themselves (`serve`, `migrate`,
// `keys bootstrap`): the config file, the environment and their flags, in that order of
// precedence, with flag mistakes reported like every other command's (commands/args.ts).

import { loadConfig, parseInteger, parseLogLevel, redactUrl, type ServerConfig } from '../config/config.ts';
import { FlotillaError } from '../core/errors.ts';
import { parseFlags, type OptionSpec } from './commands/args.ts';
import { CliError } from './commands/errors.ts';

export interface ServerCommand {
  command: string;
  usage: string;
  synopsis?: string;
  /** `serve`: also --host, --port, --log-level. */
  serving?: boolean;
  /** The command's own flags besides the settings. */
  options?: Record<string, OptionSpec>;
}

const SETTINGS: Record<string, OptionSpec> = {
  database: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const SERVE_SETTINGS: Record<string, OptionSpec> = {
  host: { type: 'string' },
  port: { type: 'string' },
  'log-level': { type: 'string' },
};

/**
 * The settings for a command from its flags (flags win over the environment and the config
 * file), and its own flags' values. Null when --help was asked for (the usage is printed).
 */
export function serverConfigFromArgs(argv: string[], spec: ServerCommand): { config: ServerConfig; values: Record<string, unknown> } | null {
  const options = { ...SETTINGS, ...(spec.serving ? SERVE_SETTINGS : {}), ...spec.options };
  const { values } = parseFlags(argv, options, { ...spec, allowPositionals: false });
  if (values.help) {
    process.stdout.write(spec.usage);
    return null;
  }
  const v = values as { host?: string; port?: string; database?: string; config?: string; 'log-level'?: string };
  const config = loadConfig({
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
  return { config, values };
}

/**
 * Why a server (or a command opening its database) could not start, in one line: a port in
 * use, an address not on this machine, an unreachable database. Null for anything else.
 */
export function serverStartFailure(err: unknown, config: ServerConfig): CliError | null {
  const e = err as { code?: unknown; syscall?: unknown; port?: unknown; address?: unknown; hostname?: unknown };
  const port = typeof e.port === 'number' ? e.port : config.port;
  const host = config.host;
  switch (e.code) {
    case 'EADDRINUSE':
      return new CliError(`port ${port} on ${host} is in use (EADDRINUSE); pick another with --port or FLOTILLA_PORT (0 picks a free one)`);
    case 'EACCES':
      if (e.syscall !== 'listen') break;
      return new CliError(`not allowed to listen on port ${port} on ${host} (EACCES; ports below 1024 need privileges); pick another with --port or FLOTILLA_PORT`);
    case 'EADDRNOTAVAIL':
      return new CliError(`${host} is not an address of this machine (EADDRNOTAVAIL); pick another with --host or FLOTILLA_HOST (default 127.0.0.1)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      if (e.syscall !== 'getaddrinfo' || (e.hostname !== undefined && e.hostname !== host)) break;
      return new CliError(`cannot resolve the host ${host} (${e.code}); pick another with --host or FLOTILLA_HOST (default 127.0.0.1)`);
    default:
      break;
  }
  if (err instanceof FlotillaError && err.code === 'STORE_UNAVAILABLE') {
    return new CliError(`${err.message} (database ${redactUrl(config.databaseUrl)}); is it running, and is --database or FLOTILLA_DATABASE_URL right?`);
  }
  // The database refused us for good: a PostgreSQL role or password (class 28), a database
  // that does not exist (3D000), a file that is not a SQLite database.
  const sqlstate = typeof e.code === 'string' ? e.code : '';
  const message = err instanceof Error ? err.message : String(err);
  if (sqlstate.startsWith('28') || sqlstate === '3D000' || /file is not a database/.test(message)) {
    return new CliError(`the database ${redactUrl(config.databaseUrl)} refused: ${message}; is --database or FLOTILLA_DATABASE_URL right?`);
  }
  return null;
}
