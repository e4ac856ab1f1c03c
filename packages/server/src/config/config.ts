// Server configuration: defaults < config file < environment variables < command-line flags.
// Every setting is documented in README.md's configuration table; keep them in step.

import { existsSync, readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import type { AgentSpec, ScheduleSpec } from '@flotilla/sdk';
import { timingProblem } from '../core/schedules.ts';
import { PRIORITY_BANDS } from '@flotilla/sdk';
import { DEFAULT_SLA_POLICY, type SlaPolicy } from '../core/sla.ts';
import { toolListProblems } from '../core/tools.ts';
import { toolDomainProblem, type ToolDomainSpec } from '../core/tool-domains.ts';
import { DEFAULT_MAX_DEPTH } from '../core/trees.ts';
import { rateLimitProblem } from '../core/rate-limits.ts';
import { configFileSchema, slaPolicySchema } from '../schemas/schemas.ts';

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
  /** Requests per second each principal may make on this node (token bucket refill); 0: no limit. */
  rateLimitPerSecond: number;
  /** Requests a principal may make at once (token bucket size). */
  rateLimitBurst: number;
  /** Unauthenticated and failed-authentication requests per minute per client address; 0: no limit. */
  rateLimitAnonymousPerMinute: number;
  /** Browser origins allowed to call the API (exact `scheme://host[:port]`); empty: CORS off. */
  corsOrigins: string[];
  /** Send Strict-Transport-Security (only behind a TLS-terminating proxy). */
  hsts: boolean;
  /** How long an assignment is held without a heartbeat. */
  leaseMs: number;
  /** A replica not seen for this long is lost, and its live attempts with it. */
  replicaTtlMs: number;
  /** How long a cancelled live task waits for its worker to acknowledge. */
  cancelGraceMs: number;
  defaultMaxAttempts: number;
  defaultTimeoutMs: number;
  /** The deepest a task may be in its tree (a root is 1): a task at this depth cannot spawn. Agents may narrow it. */
  maxDepth: number;
  /** A task may delegate to an agent of its own agent's level, not only to greater levels. */
  allowEqualLevel: boolean;
  /**
   * An agent is overloaded (core/agent-state.ts) when every slot of its live replicas is taken
   * and its oldest due task has waited this long, or when more tasks than `overloadQueueDepth`
   * wait for it.
   */
  overloadPendingAgeMs: number;
  overloadQueueDepth: number;
  retry: { baseDelayMs: number; maxDelayMs: number };
  /** Server-wide concurrency-key limits (agents may declare their own). */
  concurrencyLimits: Record<string, number>;
  retentionMs: number;
  retentionIntervalMs: number;
  reaperIntervalMs: number;
  bodyLimitBytes: number;
  /** How often an a2a agent's in-process worker polls its remote tasks (tasks/get) and renews their leases (engine/a2a/). */
  a2aPollIntervalMs: number;
  /** How long a fetched A2A agent card is used before it is fetched again (also at once after a failure). */
  a2aCardTtlMs: number;
  /** Lifetime of a scoped token (and of each renewal). */
  tokenTtlMs: number;
  /** The longest a scoped token and its renewals may live, from the first issue. */
  tokenMaxLifetimeMs: number;
  /** Audit entries older than this are pruned (0: kept forever). */
  auditRetentionMs: number;
  /** SLA policy per priority band (ms from submit, null: none) and the at-risk fraction (core/sla.ts). */
  sla: SlaPolicy;
  /** Agents declared in the config file; created or updated at start. */
  agents: AgentSpec[];
  /** The URL A2A clients reach this server at (`https://flotilla.example.com`), for the agent card; null: the request's own. */
  a2aPublicUrl: string | null;
  /** How often the maintenance node queues and sends A2A push notifications. */
  a2aPushIntervalMs: number;
  /** Sends of one push notification before it is given up (with backoff between them). */
  a2aPushMaxAttempts: number;
  /** Webhooks (docs/webhooks.md): how often the maintenance node feeds the outbox from the events and sends what is due. */
  webhookIntervalMs: number;
  /** Sends of one delivery before it is parked in the failed list (with backoff between them). */
  webhookMaxAttempts: number;
  /** A receiver that has not answered in this long has failed the attempt. */
  webhookTimeoutMs: number;
  /** The backoff between attempts: base delay (doubling, with jitter) and its cap. */
  webhookRetryBaseMs: number;
  webhookRetryMaxMs: number;
  /** MCP tool domains declared in the config file (`toolDomains:`); created or updated at start (docs/mcp.md). */
  toolDomains: ToolDomainSpec[];
  /** How often the maintenance node checks every tool domain (connect, ping, list tools). */
  mcpHealthIntervalMs: number;
  /** A check that takes longer fails: the domain is down. */
  mcpHealthTimeoutMs: number;
  /** A tool call through the gateway that takes longer fails (outcome `failed`). */
  mcpCallTimeoutMs: number;
  /** The gateway's URL as workers reach it (absolute); null: assignments carry the path, which workers resolve against their server URL. */
  mcpGatewayUrl: string | null;
  /** Schedules declared in the config file (`schedules:`), owned by the server; created or updated at start (docs/schedules.md). */
  schedules: ScheduleSpec[];
  /** The longest the maintenance node waits between two looks at the schedules (its timer is armed to the next fire time within that). */
  scheduleSweepMs: number;
  /** Provider rate limits per key (`openai:gpt-4o`: requests and tokens per minute), declared at start (docs/flow-control.md). */
  rateLimits: Record<string, { rpm?: number; tpm?: number }>;
  /** The fleet cap: live assignments across every node at most (the seed's MAX_CONCURRENT_TASKS); 0: none. */
  maxConcurrentTasks: number;
}

export const DEFAULT_CONFIG: ServerConfig = {
  host: '127.0.0.1',
  port: 8080,
  databaseUrl: './flotilla.db',
  adminToken: null,
  configFile: null,
  logLevel: 'info',
  rateLimitPerSecond: 2_000,
  rateLimitBurst: 4_000,
  rateLimitAnonymousPerMinute: 60,
  corsOrigins: [],
  hsts: false,
  leaseMs: 30_000,
  replicaTtlMs: 30_000,
  cancelGraceMs: 30_000,
  defaultMaxAttempts: 3,
  defaultTimeoutMs: 300_000,
  maxDepth: DEFAULT_MAX_DEPTH,
  allowEqualLevel: false,
  overloadPendingAgeMs: 60_000,
  overloadQueueDepth: 1_000,
  retry: { baseDelayMs: 1_000, maxDelayMs: 300_000 },
  concurrencyLimits: {},
  retentionMs: 7 * 86_400_000,
  retentionIntervalMs: 60_000,
  reaperIntervalMs: 1_000,
  bodyLimitBytes: 1024 * 1024,
  a2aPollIntervalMs: 1_000,
  a2aCardTtlMs: 300_000,
  tokenTtlMs: 2 * 3_600_000,
  tokenMaxLifetimeMs: 24 * 3_600_000,
  auditRetentionMs: 90 * 86_400_000,
  sla: DEFAULT_SLA_POLICY,
  agents: [],
  a2aPublicUrl: null,
  a2aPushIntervalMs: 1_000,
  a2aPushMaxAttempts: 10,
  webhookIntervalMs: 1_000,
  webhookMaxAttempts: 10,
  webhookTimeoutMs: 10_000,
  webhookRetryBaseMs: 1_000,
  webhookRetryMaxMs: 3_600_000,
  toolDomains: [],
  mcpHealthIntervalMs: 10_000,
  mcpHealthTimeoutMs: 5_000,
  mcpCallTimeoutMs: 60_000,
  mcpGatewayUrl: null,
  schedules: [],
  scheduleSweepMs: 10_000,
  rateLimits: {},
  maxConcurrentTasks: 0,
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
  FLOTILLA_RATE_LIMIT_PER_SECOND: 'rateLimitPerSecond',
  FLOTILLA_RATE_LIMIT_BURST: 'rateLimitBurst',
  FLOTILLA_RATE_LIMIT_ANONYMOUS_PER_MINUTE: 'rateLimitAnonymousPerMinute',
  FLOTILLA_LEASE_MS: 'leaseMs',
  FLOTILLA_REPLICA_TTL_MS: 'replicaTtlMs',
  FLOTILLA_CANCEL_GRACE_MS: 'cancelGraceMs',
  FLOTILLA_DEFAULT_MAX_ATTEMPTS: 'defaultMaxAttempts',
  FLOTILLA_DEFAULT_TIMEOUT_MS: 'defaultTimeoutMs',
  FLOTILLA_MAX_DEPTH: 'maxDepth',
  FLOTILLA_OVERLOAD_PENDING_AGE_MS: 'overloadPendingAgeMs',
  FLOTILLA_OVERLOAD_QUEUE_DEPTH: 'overloadQueueDepth',
  FLOTILLA_RETENTION_MS: 'retentionMs',
  FLOTILLA_RETENTION_INTERVAL_MS: 'retentionIntervalMs',
  FLOTILLA_REAPER_INTERVAL_MS: 'reaperIntervalMs',
  FLOTILLA_BODY_LIMIT_BYTES: 'bodyLimitBytes',
  FLOTILLA_TOKEN_TTL_MS: 'tokenTtlMs',
  FLOTILLA_TOKEN_MAX_LIFETIME_MS: 'tokenMaxLifetimeMs',
  FLOTILLA_AUDIT_RETENTION_MS: 'auditRetentionMs',
  FLOTILLA_A2A_POLL_INTERVAL_MS: 'a2aPollIntervalMs',
  FLOTILLA_A2A_CARD_TTL_MS: 'a2aCardTtlMs',
  FLOTILLA_A2A_PUSH_INTERVAL_MS: 'a2aPushIntervalMs',
  FLOTILLA_A2A_PUSH_MAX_ATTEMPTS: 'a2aPushMaxAttempts',
  FLOTILLA_WEBHOOK_INTERVAL_MS: 'webhookIntervalMs',
  FLOTILLA_WEBHOOK_MAX_ATTEMPTS: 'webhookMaxAttempts',
  FLOTILLA_WEBHOOK_TIMEOUT_MS: 'webhookTimeoutMs',
  FLOTILLA_WEBHOOK_RETRY_BASE_MS: 'webhookRetryBaseMs',
  FLOTILLA_WEBHOOK_RETRY_MAX_MS: 'webhookRetryMaxMs',
  FLOTILLA_SCHEDULE_SWEEP_MS: 'scheduleSweepMs',
  FLOTILLA_MAX_CONCURRENT_TASKS: 'maxConcurrentTasks',
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
  if (env.FLOTILLA_CORS_ORIGINS !== undefined && env.FLOTILLA_CORS_ORIGINS.trim() !== '') config.corsOrigins = parseList(env.FLOTILLA_CORS_ORIGINS);
  if (env.FLOTILLA_HSTS !== undefined && env.FLOTILLA_HSTS !== '') config.hsts = parseBoolean(env.FLOTILLA_HSTS, 'FLOTILLA_HSTS');
  if (env.FLOTILLA_A2A_PUBLIC_URL) config.a2aPublicUrl = env.FLOTILLA_A2A_PUBLIC_URL;
  if (env.FLOTILLA_ALLOW_EQUAL_LEVEL !== undefined && env.FLOTILLA_ALLOW_EQUAL_LEVEL !== '') {
    config.allowEqualLevel = parseBoolean(env.FLOTILLA_ALLOW_EQUAL_LEVEL, 'FLOTILLA_ALLOW_EQUAL_LEVEL');
  }
  for (const [variable, key] of Object.entries(ENV_NUMBERS)) {
    const raw = env[variable];
    if (raw !== undefined && raw !== '') config[key] = parseInteger(raw, variable);
  }
  for (const band of PRIORITY_BANDS) {
    const raw = env[`FLOTILLA_SLA_${band}`];
    if (raw !== undefined && raw !== '') config.sla[band] = parseSla(raw.trim(), `FLOTILLA_SLA_${band}`);
  }
  const fraction = env.FLOTILLA_SLA_AT_RISK_FRACTION;
  if (fraction !== undefined && fraction !== '') config.sla.atRiskFraction = parseFraction(fraction, 'FLOTILLA_SLA_AT_RISK_FRACTION');

  const flags = sources.flags ?? {};
  if (flags.host !== undefined) config.host = flags.host;
  if (flags.port !== undefined) config.port = flags.port;
  if (flags.databaseUrl !== undefined) config.databaseUrl = flags.databaseUrl;
  if (flags.logLevel !== undefined) config.logLevel = flags.logLevel;
  config.configFile = file;

  validateSettings(config);
  validateLimits(config);
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

const SLA_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * An SLA setting: a duration with a unit (`90m`, `24h`, `7d`), a number of milliseconds, or
 * none (`none`, null), checked against the config file's schema (its bounds).
 */
export function parseSla(raw: unknown, source: string): number | null {
  const validate = new Ajv().compile(slaPolicySchema.properties.P0);
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (!validate(value)) throw new ConfigError(`${source} must be a duration like 1h or 7d, milliseconds, or none; got "${String(raw)}"`);
  if (value === null || value === 'none') return null;
  if (typeof value === 'number') return value;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(value as string)!;
  const ms = Number(m[1]) * SLA_UNITS_MS[m[2]!]!;
  if (ms < 1 || ms > slaPolicySchema.properties.P0.anyOf[1].maximum) throw new ConfigError(`${source} is out of range (1ms to 3650d): "${String(raw)}"`);
  return ms;
}

function parseFraction(raw: string, source: string): number {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new ConfigError(`${source} must be a number above 0 and at most 1, got "${raw}"`);
  return n;
}

export function parseBoolean(raw: string, source: string): boolean {
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(`${source} must be true or false, got "${raw}"`);
}

/** A comma-separated list; blanks around items and empty items are dropped. */
export function parseList(raw: string): string[] {
  return raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

/**
 * The limits (rate limiting, CORS, HSTS) get the config file's range checks too, and CORS
 * origins must be exact origins: `*` is refused (docs/decisions.md, "No wildcard CORS"),
 * and so is anything with a path or a trailing slash, which a browser never sends.
 */
function validateLimits(config: ServerConfig): void {
  const { rateLimitPerSecond, rateLimitBurst, rateLimitAnonymousPerMinute, corsOrigins, hsts } = config;
  const validate = new Ajv({ allErrors: true }).compile(configFileSchema.properties.server);
  if (!validate({ rateLimitPerSecond, rateLimitBurst, rateLimitAnonymousPerMinute, corsOrigins, hsts })) {
    throw new ConfigError(`invalid settings: ${describeErrors(validate.errors)}`);
  }
  for (const origin of corsOrigins) {
    if (origin.includes('*')) {
      throw new ConfigError(`corsOrigins: "${origin}" is not allowed; list the exact origins of the web front-ends that may call the API (no wildcards)`);
    }
    let exact: string | null = null;
    try {
      const url = new URL(origin);
      if (url.protocol === 'http:' || url.protocol === 'https:') exact = url.origin;
    } catch {
      exact = null;
    }
    if (exact !== origin) {
      throw new ConfigError(`corsOrigins: "${origin}" is not an origin; write it as a browser sends it, e.g. "https://console.example.com" or "http://localhost:5173" (lower case, no path, no trailing slash)`);
    }
  }
}

/**
 * Environment variables and flags get the same range checks as the config file (one schema):
 * `FLOTILLA_DEFAULT_MAX_ATTEMPTS=0` is a configuration error at start, not a 500 per request.
 */
function validateSettings(config: ServerConfig): void {
  const { host, port, databaseUrl: database, logLevel, leaseMs, replicaTtlMs, cancelGraceMs, defaultMaxAttempts, defaultTimeoutMs, maxDepth, overloadPendingAgeMs, overloadQueueDepth, retentionMs, bodyLimitBytes, retry, concurrencyLimits, tokenTtlMs, tokenMaxLifetimeMs, auditRetentionMs } = config;
  const server = { host, port, database, logLevel, leaseMs, replicaTtlMs, cancelGraceMs, defaultMaxAttempts, defaultTimeoutMs, maxDepth, overloadPendingAgeMs, overloadQueueDepth, retentionMs, bodyLimitBytes, retry, concurrencyLimits, tokenTtlMs, tokenMaxLifetimeMs, auditRetentionMs };
  const validate = new Ajv({ allErrors: true }).compile(configFileSchema.properties.server);
  if (!validate(server)) throw new ConfigError(`invalid settings: ${describeErrors(validate.errors)}`);
  for (const [name, value] of [['reaperIntervalMs', config.reaperIntervalMs], ['retentionIntervalMs', config.retentionIntervalMs]] as const) {
    if (value < 1) throw new ConfigError(`${name} must be at least 1`);
  }
  if (config.tokenTtlMs > config.tokenMaxLifetimeMs) throw new ConfigError('tokenTtlMs must not exceed tokenMaxLifetimeMs');
  validateA2aSettings(config);
  validateFlowSettings(config);
}

/** The flow-control settings (issue 16): each rate limit checked as the API checks it. */
function validateFlowSettings(config: ServerConfig): void {
  if (!Number.isInteger(config.maxConcurrentTasks) || config.maxConcurrentTasks < 0 || config.maxConcurrentTasks > 10_000_000) {
    throw new ConfigError('maxConcurrentTasks (FLOTILLA_MAX_CONCURRENT_TASKS) must be an integer 0..10000000 (0: no fleet cap)');
  }
  for (const [key, spec] of Object.entries(config.rateLimits)) {
    const problem = rateLimitProblem(key, spec);
    if (problem !== null) throw new ConfigError(`rateLimits: ${problem}`);
  }
}

/** The A2A settings (decisions.md 79, 83): a public URL is an absolute http(s) URL without a path's trailing slash. */
function validateA2aSettings(config: ServerConfig): void {
  if (config.a2aPublicUrl !== null) {
    let url: URL | null = null;
    try {
      url = new URL(config.a2aPublicUrl);
    } catch {
      url = null;
    }
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new ConfigError('a2aPublicUrl (FLOTILLA_A2A_PUBLIC_URL) must be an absolute http(s) URL');
    config.a2aPublicUrl = config.a2aPublicUrl.replace(/\/+$/, '');
  }
  if (config.a2aPushIntervalMs < 1) throw new ConfigError('a2aPushIntervalMs must be at least 1');
  if (config.a2aPushMaxAttempts < 1 || config.a2aPushMaxAttempts > 100) throw new ConfigError('a2aPushMaxAttempts must be 1..100');
  if (config.webhookIntervalMs < 1) throw new ConfigError('webhookIntervalMs must be at least 1');
  if (config.webhookMaxAttempts < 1 || config.webhookMaxAttempts > 100) throw new ConfigError('webhookMaxAttempts must be 1..100');
  if (config.webhookTimeoutMs < 1) throw new ConfigError('webhookTimeoutMs must be at least 1');
  if (config.webhookRetryBaseMs < 1 || config.webhookRetryMaxMs < config.webhookRetryBaseMs) throw new ConfigError('webhookRetryBaseMs must be at least 1 and webhookRetryMaxMs at least webhookRetryBaseMs');
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
  server?: Partial<Omit<ServerConfig, 'databaseUrl' | 'sla'>> & {
    database?: string; retry?: { baseDelayMs?: number; maxDelayMs?: number };
    sla?: Partial<Record<keyof SlaPolicy, unknown>>;
  };
  agents?: AgentSpec[];
  toolDomains?: ToolDomainSpec[];
  schedules?: ScheduleSpec[];
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
  // Schedules' task templates carry the submit's date-time fields (deadline).
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  const validate = ajv.compile<ConfigFile>(configFileSchema);
  if (!validate(parsed)) {
    throw new ConfigError(`config file ${path} is invalid: ${describeErrors(validate.errors)}`);
  }
  const { server = {}, agents = [], toolDomains = [], schedules = [] } = parsed;
  const { database, retry, sla, ...rest } = server;
  Object.assign(config, rest);
  if (sla) {
    for (const band of PRIORITY_BANDS) if (band in sla) config.sla[band] = parseSla(sla[band], `server.sla.${band}`);
    if (typeof sla.atRiskFraction === 'number') config.sla.atRiskFraction = sla.atRiskFraction;
  }
  if (database !== undefined) config.databaseUrl = database;
  if (retry) config.retry = { ...config.retry, ...retry };
  const names = new Set<string>();
  for (const agent of agents) {
    if (names.has(agent.name)) throw new ConfigError(`config file ${path} declares agent "${agent.name}" twice`);
    names.add(agent.name);
    // What the schema cannot say about tool names (the reserved `flotilla` domain).
    const problems = toolListProblems(agent.tools ?? [], `/agents/${agent.name}/tools`);
    if (problems.length > 0) throw new ConfigError(`config file ${path} is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
  }
  config.agents = agents;
  const domains = new Set<string>();
  for (const domain of toolDomains) {
    if (domains.has(domain.name)) throw new ConfigError(`config file ${path} declares tool domain "${domain.name}" twice`);
    domains.add(domain.name);
    const problem = toolDomainProblem(domain);
    if (problem !== null) throw new ConfigError(`config file ${path} is invalid: /toolDomains/${domain.name} ${problem}`);
  }
  config.toolDomains = toolDomains;
  config.schedules = checkedSchedules(path, schedules);
  if (config.mcpGatewayUrl !== null && !URL.canParse(config.mcpGatewayUrl)) throw new ConfigError(`config file ${path} is invalid: server.mcpGatewayUrl ${config.mcpGatewayUrl} is not a URL`);
}

/** What the schema cannot say of the config file's schedules: names declared once, a timing croner accepts. */
function checkedSchedules(path: string, schedules: ScheduleSpec[]): ScheduleSpec[] {
  const names = new Set<string>();
  for (const schedule of schedules) {
    if (names.has(schedule.name)) throw new ConfigError(`config file ${path} declares schedule "${schedule.name}" twice`);
    names.add(schedule.name);
    const problem = timingProblem(schedule);
    if (problem !== null) throw new ConfigError(`config file ${path} is invalid: /schedules/${schedule.name} ${problem}`);
  }
  return schedules;
}
