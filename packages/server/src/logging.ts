// The server's logger: JSON lines (pino) from which secrets are removed before they are
// written (docs/decisions.md, "Secrets in logs"). Two layers:
//
// - pino's `redact` paths, for the places secrets are known to be: `Authorization` and
//   `Cookie` request headers (also as Fastify's request serializer writes them), and
//   `token`, `adminToken`, `password`, `secret` fields;
// - a scrubber on every log call (pino's `logMethod` hook), for the places nobody thought
//   of: any field whose name contains "secret", "password", "authorization", "cookie" or
//   "credential", or ends with "token" or "apiKey", at any depth, becomes "[redacted]"; in
//   every string (messages and error messages and stacks included) bearer credentials,
//   `flt_` tokens, JWTs, the password of a URL and the configured admin token are
//   replaced. Objects are copied, never changed in place.

import { pino, type DestinationStream, type Logger } from 'pino';
import type { ServerConfig } from './config/config.ts';

export const REDACTED = '[redacted]';

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  'token', '*.token', 'adminToken', '*.adminToken', 'password', '*.password', 'secret', '*.secret',
];

const SECRET_KEY = /secret|password|passwd|authorization|cookie|credential|token$|api[-_]?key$/i;

const SECRET_VALUES: [RegExp, string][] = [
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`],
  [/\bflt_[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // scheme://user:password@host: the password only.
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, '$1***@'],
  // Webhook signing secrets (engine/webhook-secrets.ts), wherever one would end up.
  [/\bwhsec_[A-Za-z0-9_-]{8,}/g, REDACTED],
];

const MAX_DEPTH = 10;

export class SecretScrubber {
  readonly #literals: string[];

  /** `literals`: secrets known by value (the configured admin token), replaced wherever they appear. */
  constructor(literals: readonly (string | null | undefined)[] = []) {
    this.#literals = literals.filter((s): s is string => typeof s === 'string' && s.length >= 8);
  }

  string(text: string): string {
    let out = text;
    for (const literal of this.#literals) if (out.includes(literal)) out = out.split(literal).join(REDACTED);
    for (const [pattern, replacement] of SECRET_VALUES) out = out.replace(pattern, replacement);
    return out;
  }

  /** A copy of `value` without secrets: plain objects, arrays and errors are walked. */
  value(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
    if (typeof value === 'string') return this.string(value);
    if (value === null || typeof value !== 'object') return value;
    if (seen.has(value) || depth > MAX_DEPTH) return value;
    seen.add(value);
    if (Array.isArray(value)) return value.map((item) => this.value(item, depth + 1, seen));
    if (value instanceof Error) return this.#error(value, depth, seen);
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return value; // requests, buffers: their serializers and `redact` handle them
    return this.#fields(value as Record<string, unknown>, {}, depth, seen);
  }

  #fields(from: Record<string, unknown>, into: Record<string, unknown>, depth: number, seen: WeakSet<object>): Record<string, unknown> {
    for (const [key, field] of Object.entries(from)) {
      into[key] = SECRET_KEY.test(key) && field !== null && field !== undefined && typeof field !== 'boolean' && typeof field !== 'number'
        ? REDACTED
        : this.value(field, depth + 1, seen);
    }
    return into;
  }

  /** An error of the same class (so pino's serializer names its type) with scrubbed text. */
  #error(err: Error, depth: number, seen: WeakSet<object>): Error {
    const copy = Object.create(Object.getPrototypeOf(err) as object) as Error & Record<string, unknown>;
    this.#fields(err as unknown as Record<string, unknown>, copy, depth, seen);
    Object.defineProperty(copy, 'message', { value: this.string(err.message), enumerable: false, writable: true, configurable: true });
    if (typeof err.stack === 'string') Object.defineProperty(copy, 'stack', { value: this.string(err.stack), enumerable: false, writable: true, configurable: true });
    if (err.cause !== undefined) Object.defineProperty(copy, 'cause', { value: this.value(err.cause, depth + 1, seen), enumerable: false, writable: true, configurable: true });
    return copy;
  }
}

/** The logger of a server process; `destination` is for tests (stdout otherwise). */
export function createLogger(config: Pick<ServerConfig, 'logLevel'> & Partial<Pick<ServerConfig, 'adminToken'>>, destination?: DestinationStream): Logger {
  const scrubber = new SecretScrubber([config.adminToken]);
  const options = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map((arg) => scrubber.value(arg)));
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
