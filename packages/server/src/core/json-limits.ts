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
 * Why a value that arrived as JSON cannot be accepted, or null when it can. The one rule for
 * every door (HTTP bodies, path and query parts, both WebSocket endpoints), so both stores
 * hold the same values and one hostile field never fails the writes it shares a group
 * commit with:
 * - a NUL character (\u0000), in a value or a key: PostgreSQL stores none in text or jsonb;
 * - an unpaired UTF-16 surrogate (JSON text `"\ud800"`): not Unicode text, refused by
 *   PostgreSQL's jsonb and silently turned into U+FFFD by its text columns, so two distinct
 *   ids or idempotency keys could become one;
 * - a number that is not finite (`1e400` parses as Infinity): JSON has no such value, and it
 *   would be stored as null.
 * Iterative: a deeply nested value cannot overflow the stack here (depth has its own limit).
 */
export function inadmissibleJson(value: unknown): string | null {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return problem;
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return 'numbers must be finite (a value such as 1e400 is out of range)';
    } else if (Array.isArray(v)) {
      for (const child of v) stack.push(child);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const problem = textProblem(k);
        if (problem) return problem;
        stack.push(child);
      }
    }
  }
  return null;
}

function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'NUL characters (\\u0000) are not accepted in any field';
  if (!text.isWellFormed()) return 'unpaired UTF-16 surrogates (such as \\ud800) are not accepted in any field';
  return null;
}

/**
 * `text` made storable by every store, for records that must be kept whatever they hold
 * (the audit log records refused requests, whose path may carry anything): NUL becomes
 * U+FFFD like an unpaired surrogate does, and the text is cut at `maxLength` UTF-16 units
 * (never inside a surrogate pair).
 */
export function storableText(text: string, maxLength = Infinity): string {
  let out = text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
  if (out.length > maxLength) out = out.slice(0, maxLength);
  return out.isWellFormed() ? out : out.toWellFormed();
}

/** A copy of a JSON value with every string and key made storable (see storableText). */
export function storableJson(value: Json): Json {
  if (typeof value === 'string') return storableText(value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map(storableJson);
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties: a "__proto__" key stays a key.
    return Object.fromEntries(Object.entries(value).map(([k, child]) => [storableText(k), storableJson(child)]));
  }
  return value;
}
