// Task-list cursors: the seq of the last task returned, opaque to clients and the same for
// every store, so a cursor stays valid whichever store serves the next page.

import { FlotillaError } from '../core/errors.ts';

export function encodeCursor(seq: number): string {
  return Buffer.from(`s${seq}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = /^s(\d{1,16})$/.exec(text);
  if (!m) throw new FlotillaError('VALIDATION_FAILED', 'invalid cursor');
  return Number(m[1]);
}
