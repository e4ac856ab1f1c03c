// How a client command's failure becomes a message and an exit code: 1 the server answered
// with an error (or a waited-for task did not complete), 2 a usage error, 3 no server reached.
// Every message is one line; a network error names its cause (ECONNREFUSED, ENOTFOUND, a TLS
// error, a timeout, ...) and what to check.

import { FlotillaApiError, FlotillaNetworkError } from '@flotilla/sdk';

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

/** A mistake in the command line (unknown flag, missing argument, bad --input JSON). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Any other failure a command explains itself: one line, its own exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = EXIT_FAILED) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** True for node:util parseArgs' own errors (unknown flag, missing value, ...). */
export function isParseArgsError(err: unknown): err is TypeError {
  return err instanceof TypeError && ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ?? false);
}

/** The system error code deepest in a cause chain (`fetch failed` → ECONNREFUSED), with its message. */
export function rootCause(err: unknown): { code: string | null; message: string } {
  let found: { code: string | null; message: string } = { code: null, message: err instanceof Error ? err.message : String(err) };
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e instanceof Error && !seen.has(e)) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') found = { code, message: e.message };
    else if (found.code === null) found = { code: null, message: e.message };
    // Happy eyeballs (localhost: ::1 and 127.0.0.1) fails with an AggregateError of both.
    const inner = e instanceof AggregateError && e.errors.length > 0 ? e.errors[0] : e.cause;
    e = inner;
  }
  return found;
}

const TRUST_HINT = 'the certificate is not trusted here: for a private CA set NODE_EXTRA_CA_CERTS=ca.pem';
const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
]);

/** What went wrong, in words, and what to check: for a network failure's root cause. */
export function networkCause(err: unknown): { cause: string; hint: string } {
  const running = 'is the server running? npm start starts one; --url or FLOTILLA_URL says where it is';
  if (err instanceof FlotillaNetworkError && /timed out after/.test(err.message)) {
    const ms = /timed out after (\d+) ms/.exec(err.message)?.[1];
    return { cause: `no answer within ${ms ?? '?'} ms (timeout)`, hint: 'is the server overloaded, or is a firewall or proxy holding the connection?' };
  }
  const { code, message } = rootCause(err);
  switch (code) {
    case 'ECONNREFUSED':
      return { cause: 'connection refused (ECONNREFUSED)', hint: running };
    case 'ENOTFOUND':
      return { cause: `host not found (ENOTFOUND, ${message.replace(/^getaddrinfo ENOTFOUND /, '')})`, hint: 'check the host name in --url or FLOTILLA_URL' };
    case 'EAI_AGAIN':
      return { cause: 'the DNS lookup failed for now (EAI_AGAIN)', hint: 'check the network and DNS, and the host name in --url or FLOTILLA_URL' };
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { cause: `the connection timed out (${code})`, hint: `is the host reachable (firewall, VPN)? ${running}` };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { cause: `the host is unreachable (${code})`, hint: 'check the network, and the address in --url or FLOTILLA_URL' };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return { cause: `the connection was closed by the other side (${code})`, hint: 'is it a Flotilla server at that address, and does a proxy in between let the request through?' };
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
    case 'EPROTO':
      return { cause: `TLS handshake failed: the server does not speak TLS (${code})`, hint: 'use http:// (the server speaks plain HTTP; for TLS put a proxy in front of it)' };
    default:
      break;
  }
  if (code !== null && (CERT_CODES.has(code) || /CERT|SSL|TLS/.test(code))) {
    return { cause: `TLS error: ${message} (${code})`, hint: TRUST_HINT };
  }
  // fetch refuses some ports outright (the Fetch standard's "bad ports": 1, 22, 25, ...).
  if (message === 'bad port') return { cause: 'fetch does not connect to this port (a "bad port" of the Fetch standard)', hint: 'run the server on another port' };
  return { cause: code === null ? message : `${message} (${code})`, hint: running };
}

/** The server's address as the user gave it (the API base without its /api/v1). */
function serverAddress(url: string): string {
  return url.replace(/\/api\/v1\/?$/, '');
}

/** The one line for a failure to reach a server. */
export function unreachableMessage(err: FlotillaNetworkError): string {
  const { cause, hint } = networkCause(err);
  return `cannot reach the server at ${serverAddress(err.url)}: ${cause}; ${hint}`;
}

const API_HINTS: Partial<Record<string, string>> = {
  UNAUTHENTICATED: 'check --token or FLOTILLA_TOKEN (an admin token comes from the first start, FLOTILLA_ADMIN_TOKEN, or flotilla keys bootstrap)',
};

/** Message and exit code for an error a client command threw; null when it is not one of ours. */
export function describeClientError(err: unknown): { message: string; exitCode: number } | null {
  if (err instanceof UsageError || isParseArgsError(err)) return { message: err.message, exitCode: EXIT_USAGE };
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof FlotillaApiError) {
    const hint = API_HINTS[err.code];
    return { message: `${err.code}: ${err.message}${hint ? `; ${hint}` : ''}`, exitCode: EXIT_FAILED };
  }
  if (err instanceof FlotillaNetworkError) return { message: unreachableMessage(err), exitCode: EXIT_UNREACHABLE };
  return null;
}
