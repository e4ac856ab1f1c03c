import type { ErrorCode } from '@flotilla/sdk';

/** An expected failure with a stable code; the HTTP layer maps the code to a status in one table. */
export class FlotillaError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'FlotillaError';
    this.code = code;
    this.details = details;
  }
}
