// Connection settings shared by the pool and the store's two dedicated sessions (the LISTEN
// session and the leadership session), and the names derived from the schema: the
// notification channel and the advisory-lock keys. Everything one store touches is scoped
// to its schema, so stores in different schemas of one database never see each other.

import { createHash } from 'node:crypto';
import pg from 'pg';

export const DEFAULT_SCHEMA = 'public';
export const DEFAULT_POOL_SIZE = 10;
const DEFAULT_APPLICATION_NAME = 'flotilla';
/** A call fails fast during an outage instead of queueing behind a connection that never comes. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
const IDLE_TIMEOUT_MS = 30_000;
const KEEPALIVE_DELAY_MS = 10_000;
/**
 * Our transactions hold row locks for milliseconds. A lock not granted within this is held by
 * something stuck (a forgotten session, an open psql transaction): the call fails with
 * STORE_UNAVAILABLE instead of stalling a write lane for good.
 */
const LOCK_TIMEOUT_MS = 10_000;
/** The server ends a session of ours left idle inside a transaction (a frozen process) and frees its locks. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;
/**
 * A pooled query with no answer for this long is abandoned (and its connection discarded):
 * a half-open connection (a network partition without a reset) would otherwise hang until TCP
 * keepalive gives up, minutes later. Longer than the lock timeout, so it never cuts a wait
 * the server would have ended itself.
 */
const QUERY_TIMEOUT_MS = 30_000;
/** PostgreSQL truncates identifiers (and application names) to NAMEDATALEN - 1 bytes. */
const MAX_IDENTIFIER_BYTES = 63;

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Accepts plain identifiers only (letters, digits, underscore). The schema name travels in the
 * startup packet's `options` (search_path), whose quoting rules differ from SQL's; refusing
 * anything unusual keeps every place the name appears trivially safe. It is still always
 * quoted, so `Flotilla` and `flotilla` are different schemas, as in SQL.
 */
export function validateSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema) || Buffer.byteLength(schema) > MAX_IDENTIFIER_BYTES) {
    throw new Error(`invalid PostgreSQL schema name ${JSON.stringify(schema)}: use letters, digits and underscores (at most 63), not starting with a digit`);
  }
  return schema;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A signed 64-bit advisory-lock key for `purpose` in `schema`, as a decimal string (bound as ::bigint). */
export function lockKey(schema: string, purpose: string): string {
  const digest = createHash('sha256').update(`flotilla\0${schema}\0${purpose}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** Advisory-lock keys of one schema (all in the database-wide advisory-lock space). */
export interface LockKeys {
  /** Serializes migrations (transaction-level). */
  migrations: string;
  /** Serializes numbering steps, so events become visible in seq order (see events.ts). */
  events: string;
  /** Session-level maintenance leadership for `name`. */
  leader: (name: string) => string;
  /** Transaction-level: held by every write of a concurrency key's row (see write-batch.ts). */
  concurrencyKey: (key: string) => string;
}

export function lockKeys(schema: string): LockKeys {
  return {
    migrations: lockKey(schema, 'migrations'),
    events: lockKey(schema, 'events'),
    leader: (name) => lockKey(schema, `leader\0${name}`),
    concurrencyKey: (key) => lockKey(schema, `key\0${key}`),
  };
}

/**
 * The LISTEN/NOTIFY channel of a schema: `flotilla_<schema>` lowercased, anything outside
 * [a-z0-9_] replaced, at most 63 bytes. When the name had to be altered (case, truncation),
 * a hash of the exact schema is appended so that two schemas never share a channel.
 */
export function channelName(schema: string): string {
  const plain = `flotilla_${schema}`;
  const sanitized = plain.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (sanitized === plain && sanitized.length <= MAX_IDENTIFIER_BYTES) return sanitized;
  const hash = createHash('sha256').update(schema).digest('hex').slice(0, 12);
  return `${sanitized.slice(0, MAX_IDENTIFIER_BYTES - hash.length - 1)}_${hash}`;
}

const INT8_OID = 20;

/**
 * Per-pool type parsing (pg's global parsers are left alone): int8 (bigint columns, count(*))
 * becomes a JS number. Every bigint this store keeps is an epoch-millisecond time, a counter or
 * an identity value, all far below 2^53, so the conversion is exact.
 */
function typeOverrides(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, 'text', (value: string) => Number(value));
  return types;
}

export interface ConnectionSettings {
  url: string;
  schema: string;
  poolSize: number;
  /** null: the URL's application_name, else `flotilla`. */
  applicationName: string | null;
  /** How long opening a connection may take before the call fails with STORE_UNAVAILABLE. */
  connectTimeoutMs: number;
}

/**
 * node-postgres lets parameters in the URL override the config object, so `options` and
 * `application_name` are taken out of the URL and merged here: the URL's own `options` (e.g.
 * `-c statement_timeout=5000`) are kept, followed by our search_path.
 */
function splitUrl(url: string): { url: string; options: string | null; applicationName: string | null } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, options: null, applicationName: null };
  }
  const options = parsed.searchParams.get('options');
  const applicationName = parsed.searchParams.get('application_name');
  parsed.searchParams.delete('options');
  parsed.searchParams.delete('application_name');
  return { url: parsed.toString(), options, applicationName };
}

function truncateName(name: string): string {
  const bytes = Buffer.from(name);
  return bytes.length <= MAX_IDENTIFIER_BYTES ? name : bytes.subarray(0, MAX_IDENTIFIER_BYTES).toString().replace(/\uFFFD+$/, '');
}

/**
 * The client configuration for one of the store's sessions. `role` is appended to the
 * application name (`flotilla/listen`), so each session can be told apart in
 * pg_stat_activity. Every session has the schema as its search_path, set in the startup
 * packet: there is no window in which a statement could run against another schema.
 */
export function clientConfig(settings: ConnectionSettings, role: string | null): pg.ClientConfig {
  const { url, options, applicationName } = splitUrl(settings.url);
  const app = settings.applicationName ?? applicationName ?? DEFAULT_APPLICATION_NAME;
  // Server-side keepalive: if this process's host dies silently (power loss, partition), the
  // server notices within ~30 s and ends the session, releasing its advisory locks. With the
  // server's defaults (2 h idle) a dead maintenance leader would keep leadership for hours.
  const session = `-c search_path=${quoteIdent(settings.schema)} -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c tcp_user_timeout=30000`;
  return {
    connectionString: url,
    application_name: truncateName(role === null ? app : `${app}/${role}`),
    options: options === null ? session : `${options} ${session}`,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    lock_timeout: LOCK_TIMEOUT_MS,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    types: typeOverrides(),
  };
}

export function createPool(settings: ConnectionSettings): pg.Pool {
  const pool = new pg.Pool({
    ...clientConfig(settings, null),
    max: settings.poolSize,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    // Pipeline mode (node-postgres 8.21+): a statement issued while an earlier one's answer is
    // outstanding is sent at once instead of waiting, each with its own Sync, and the server
    // answers in order. The write batch sends BEGIN and its counter locks with the first
    // statement, and COMMIT with the events (write-batch.ts), a task's insert with its
    // hand-off's claim (task-writes.ts). Code that awaits each statement behaves as before.
    pipeline: true,
  });
  // An idle pooled connection that breaks (server restart, network) emits 'error' on the
  // pool; unhandled, it would crash the process. The pool has already discarded the
  // connection and opens a new one on demand, and the next query reports any outage.
  pool.on('error', () => {});
  return pool;
}

/** A dedicated session outside the pool. The caller must handle its 'error' event. */
export function createClient(settings: ConnectionSettings, role: string): pg.Client {
  return new pg.Client(clientConfig(settings, role));
}
