// Server configuration: defaults < config file < environment variables < command-line flags.
// Every setting is documented in README.md's configuration table; keep them in step.

import { existsSync, readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import type { AgentSpec } from '@flotilla/sdk';
import { configFileSchema } from '../schemas/schemas.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerConfig {
  host: string;
  port: number;
  /** A SQLite file path (or `:memory:`); `postgres://` URLs once the PostgreSQL store exists. */
  databaseUrl: string;
  /** Bootstrap admin token; when null and no key exists yet, one is generated and printed once. */
  adminToken: string | null;
  configFile: string | null;
  logLevel: LogLevel;
  /** How long an assignment is held without a heartbeat. */
  leaseMs: number;
  /** A replica not seen for this long is lost, and its live attempts with it. */
  replicaTtlMs: number;
  /** How long a cancelled live task waits for its worker to acknowledge. */
  cancelGraceMs: number;
  defaultMaxAttempts: number;
  defaultTimeoutMs: number;
  retry: { baseDelayMs: number; maxDelayMs: number };
  /** Server-wide concurrency-key limits (agents may declare their own). */
  concurrencyLimits: Record<string, number>;
  retentionMs: number;
  retentionIntervalMs: number;
  reaperIntervalMs: number;
  bodyLimitBytes: number;
  /** Agents declared in the config file; created or updated at start. */
  agents: AgentSpec[];
}

export const DEFAULT_CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 8080,
  databaseUrl: './flotilla.db',
  adminToken: null,
  configFile: null,
  logLevel: 'info',
  leaseMs: 30_000,
  replicaTtlMs: 30_000,
  cancelGraceMs: 30_000,
  defaultMaxAttempts: 3,
  defaultTimeoutMs: 300_000,
  retry: { baseDelayMs: 1_000, maxDelayMs: 300_000 },
  concurrencyLimits: {},
  retentionMs: 7 * 86_400_000,
  retentionIntervalMs: 60_000,
  reaperIntervalMs: 1_000,
  bodyLimitBytes: 1024 * 1024,
  agents: [],
};

export const DEFAULT_CONFIG_FILE = 'flotilla.config.yaml';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  flags?: Partial<Pick<ServerConfig, 'host' | 'port' | 'databaseUrl' | 'configFile' | 'logLevel'>>;
  env?: NodeJS.ProcessEnv;
  /** Directory the default config file is looked up in. */
  cwd?: string;
}

const ENV_NUMBERS = {
  FLOTILLA_PORT: 'port',
  FLOTILLA_LEASE_MS: 'leaseMs',
  FLOTILLA_REPLICA_TTL_MS: 'replicaTtlMs',
  FLOTILLA_CANCEL_GRACE_MS: 'cancelGraceMs',
  FLOTILLA_DEFAULT_MAX_ATTEMPTS: 'defaultMaxAttempts',
  FLOTILLA_DEFAULT_TIMEOUT_MS: 'defaultTimeoutMs',
  FLOTILLA_RETENTION_MS: 'retentionMs',
  FLOTILLA_RETENTION_INTERVAL_MS: 'retentionIntervalMs',
  FLOTILLA_REAPER_INTERVAL_MS: 'reaperIntervalMs',
  FLOTILLA_BODY_LIMIT_BYTES: 'bodyLimitBytes',
} as const satisfies Record<string, keyof ServerConfig>;

export function loadConfig(sources: ConfigSources = {}): ServerConfig {
  const env = sources.env ?? {};
  const config: ServerConfig = structuredClone(DEFAULT_CONFIG);

  const explicitFile = sources.flags?.configFile ?? env.FLOTILLA_CONFIG ?? null;
  const file = explicitFile ?? (existsSync(resolvePath(sources.cwd, DEFAULT_CONFIG_FILE)) ? DEFAULT_CONFIG_FILE : null);
  if (file !== null) applyFile(config, resolvePath(sources.cwd, file));

  if (env.FLOTILLA_HOST) config.host = env.FLOTILLA_HOST;
  if (env.FLOTILLA_DATABASE_URL) config.databaseUrl = env.FLOTILLA_DATABASE_URL;
  if (env.FLOTILLA_ADMIN_TOKEN) config.adminToken = env.FLOTILLA_ADMIN_TOKEN;
  if (env.FLOTILLA_LOG_LEVEL) config.logLevel = parseLogLevel(env.FLOTILLA_LOG_LEVEL, 'FLOTILLA_LOG_LEVEL');
  for (const [variable, key] of Object.entries(ENV_NUMBERS)) {
    const raw = env[variable];
    if (raw !== undefined && raw !== '') config[key] = parseInteger(raw, variable);
  }

  const flags = sources.flags ?? {};
  if (flags.host !== undefined) config.host = flags.host;
  if (flags.port !== undefined) config.port = flags.port;
  if (flags.databaseUrl !== undefined) config.databaseUrl = flags.databaseUrl;
  if (flags.logLevel !== undefined) config.logLevel = flags.logLevel;
  config.configFile = file;

  validateSettings(config);
  if (config.adminToken !== null && config.adminToken.length < 16) {
    throw new ConfigError('FLOTILLA_ADMIN_TOKEN must be at least 16 characters');
  }
  if (config.port < 0 || config.port > 65535) throw new ConfigError(`port ${config.port} is out of range`);
  return config;
}

/** A database URL safe to log: the password, if any, is replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.protocol === 'file:' ? url : parsed.toString();
  } catch {
    return url; // a file path, not a URL
  }
}

export function parseLogLevel(raw: string, source: string): LogLevel {
  const levels: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!(levels as string[]).includes(raw)) throw new ConfigError(`${source} must be one of ${levels.join(', ')}`);
  return raw as LogLevel;
}

export function parseInteger(raw: string, source: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${source} must be a non-negative integer, got "${raw}"`);
  return Number(raw.trim());
}

/**
 * Environment variables and flags get the same range checks as the config file (one schema):
 * `FLOTILLA_DEFAULT_MAX_ATTEMPTS=0` is a configuration error at start, not a 500 per request.
 */
function validateSettings(config: ServerConfig): void {
  const { host, port, databaseUrl: database, logLevel, leaseMs, replicaTtlMs, cancelGraceMs, defaultMaxAttempts, defaultTimeoutMs, retentionMs, bodyLimitBytes, retry, concurrencyLimits } = config;
  const server = { host, port, database, logLevel, leaseMs, replicaTtlMs, cancelGraceMs, defaultMaxAttempts, defaultTimeoutMs, retentionMs, bodyLimitBytes, retry, concurrencyLimits };
  const validate = new Ajv({ allErrors: true }).compile(configFileSchema.properties.server);
  if (!validate(server)) throw new ConfigError(`invalid settings: ${describeErrors(validate.errors)}`);
  for (const [name, value] of [['reaperIntervalMs', config.reaperIntervalMs], ['retentionIntervalMs', config.retentionIntervalMs]] as const) {
    if (value < 1) throw new ConfigError(`${name} must be at least 1`);
  }
}

/** Ajv errors as one readable line, naming unknown properties. */
export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => {
    const where = e.instancePath || '/';
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
    return `${where} ${e.message ?? 'is invalid'}${extra}`;
  }).join('; ');
}

function resolvePath(cwd: string | undefined, file: string): string {
  return cwd && !file.startsWith('/') ? `${cwd}/${file}` : file;
}

interface ConfigFile {
  server?: Partial<Omit<ServerConfig, 'databaseUrl'>> & { database?: string; retry?: { baseDelayMs?: number; maxDelayMs?: number } };
  agents?: AgentSpec[];
}

function applyFile(config: ServerConfig, path: string): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile<ConfigFile>(configFileSchema);
  if (!validate(parsed)) {
    throw new ConfigError(`config file ${path} is invalid: ${describeErrors(validate.errors)}`);
  }
  const { server = {}, agents = [] } = parsed;
  const { database, retry, ...rest } = server;
  Object.assign(config, rest);
  if (database !== undefined) config.databaseUrl = database;
  if (retry) config.retry = { ...config.retry, ...retry };
  const names = new Set<string>();
  for (const agent of agents) {
    if (names.has(agent.name)) throw new ConfigError(`config file ${path} declares agent "${agent.name}" twice`);
    names.add(agent.name);
  }
  config.agents = agents;
}
