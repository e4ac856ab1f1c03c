// How a client command's failure becomes a message and an exit code: 1 the server answered
// with an error (or a waited-for task did not complete), 2 a usage error, 3 no server reached.

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

/** True for node:util parseArgs' own errors (unknown flag, missing value, ...). */
export function isParseArgsError(err: unknown): err is TypeError {
  return err instanceof TypeError && ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ?? false);
}

/** Message and exit code for an error a client command threw; null when it is not one of ours. */
export function describeClientError(err: unknown): { message: string; exitCode: number } | null {
  if (err instanceof UsageError || isParseArgsError(err)) return { message: err.message, exitCode: EXIT_USAGE };
  if (err instanceof FlotillaApiError) return { message: `${err.code}: ${err.message}`, exitCode: EXIT_FAILED };
  if (err instanceof FlotillaNetworkError) return { message: `cannot reach the server: ${err.message}`, exitCode: EXIT_UNREACHABLE };
  return null;
}
