// Secret references (issue 15): how a configured outbound credential (an A2A agent's or an MCP
// tool domain's headers, an MCP stdio server's env) names a secret without holding it.
//
// A value is either a literal string or `{ "env": "NAME" }`: the server reads the environment
// variable NAME of its own process when it uses the value, never when it stores or shows it.
// Views show the reference (`{ env: NAME }`), never the resolved value, so a secret reaches
// the remote server and nothing else: not a worker, not a view, not a log line.
//
// Invariants:
// - resolveSecretRefs throws SecretRefMissing for a variable that is unset, so a missing
//   secret is a clear error at use, not an empty header.
// - A reference names only a variable whose name starts with `FLOTILLA_SECRET_` (the schemas
//   refuse other names at declaration, resolveSecretRefs refuses them at use). Whoever may
//   declare a reference must not be able to send the server's own secrets away
//   (FLOTILLA_ADMIN_TOKEN, FLOTILLA_DATABASE_URL, ...) or probe its environment (PATH): the
//   prefix is the operator's explicit opt-in that a variable is meant to leave the server.

export type SecretRef = string | { env: string };

export const SECRET_ENV_PREFIX = 'FLOTILLA_SECRET_';
export const SECRET_ENV_PATTERN = '^FLOTILLA_SECRET_[A-Za-z0-9_]+$';
const ENV_NAME = new RegExp(SECRET_ENV_PATTERN);

/** The JSON Schema of a map of secret references (header name or env name → value). */
export const secretRefMapSchema = {
  type: 'object',
  maxProperties: 64,
  additionalProperties: {
    oneOf: [
      { type: 'string', maxLength: 8192 },
      { type: 'object', additionalProperties: false, required: ['env'], properties: { env: { type: 'string', pattern: SECRET_ENV_PATTERN, maxLength: 256 } } },
    ],
  },
} as const;

export class SecretRefMissing extends Error {
  readonly variable: string;
  readonly key: string;
  constructor(variable: string, key: string, why: 'unset' | 'not_allowed' = 'unset') {
    super(why === 'unset'
      ? `secret ${key} names the environment variable ${variable}, which is not set`
      : `secret ${key} names the environment variable ${variable}: only variables named ${SECRET_ENV_PREFIX}* may be referenced`);
    this.name = 'SecretRefMissing';
    this.variable = variable;
    this.key = key;
  }
}

export function isEnvRef(value: SecretRef): value is { env: string } {
  return typeof value === 'object' && value !== null && typeof value.env === 'string';
}

/** Resolves every reference of `refs` from `env` (the engine passes the server's process.env; core does no I/O). */
export function resolveSecretRefs(refs: Readonly<Record<string, SecretRef>> | undefined, env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(refs ?? {})) {
    if (!isEnvRef(value)) { out[key] = value; continue; }
    // Defence in depth: a stored reference that predates the prefix rule is not resolved.
    if (!ENV_NAME.test(value.env)) throw new SecretRefMissing(value.env, key, 'not_allowed');
    const resolved = env[value.env];
    if (resolved === undefined) throw new SecretRefMissing(value.env, key);
    out[key] = resolved;
  }
  return out;
}

/** What a view may show of a map of references: literals of non-secret keys, references as they are. */
export function redactSecretRefs(refs: Readonly<Record<string, SecretRef>> | undefined): Record<string, SecretRef> {
  const out: Record<string, SecretRef> = {};
  for (const [key, value] of Object.entries(refs ?? {})) out[key] = isEnvRef(value) ? { env: value.env } : '***';
  return out;
}

/**
 * A URL as a view may show it: credentials in its userinfo (`https://user:pass@host/`) shown
 * as `***`. The rest of a URL (its query included) and a stdio domain's command and args are
 * not secret fields: a secret belongs in a header or env reference, never in them.
 */
export function redactUrlCredentials(url: string): string {
  let parsed: URL;
  try { parsed = new URL(url); } catch { return url; }
  if (parsed.username === '' && parsed.password === '') return url;
  parsed.username = '***';
  parsed.password = '';
  return parsed.toString();
}
