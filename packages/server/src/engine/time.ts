import type { Millis } from '../core/types.ts';

export function toIso(ms: Millis): string {
  return new Date(ms).toISOString();
}

export function toIsoOrNull(ms: Millis | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
