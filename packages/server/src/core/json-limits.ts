// Limits on JSON values accepted from clients. Depth matters beyond size: serializing a
// value nested thousands of levels deep overflows the stack, so such a value must be refused
// at the door (400), not fail half way through a write (500).

import type { Json } from './types.ts';

export const MAX_JSON_DEPTH = 64;

/** True if `value` nests arrays/objects deeper than `max` levels. Iterative: cannot overflow itself. */
export function jsonTooDeep(value: unknown, max = MAX_JSON_DEPTH): boolean {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, Json>)) {
      if (child !== null && typeof child === 'object') stack.push({ v: child, depth: depth + 1 });
    }
  }
  return false;
}

/**
 * True if any string in `value` (keys included) contains a NUL character. PostgreSQL cannot
 * store one in text or jsonb; refusing it at the door keeps both stores alike and keeps one
 * hostile request from failing the writes it would share a group commit with.
 */
export function containsNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return true;
    } else if (Array.isArray(v)) {
      stack.push(...v);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return true;
        stack.push(child);
      }
    }
  }
  return false;
}
