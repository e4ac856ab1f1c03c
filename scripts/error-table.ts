// The error-code table of docs/protocol.md §5, rendered from the code so it cannot go stale:
// codes and statuses from the SDK's ERROR_STATUS, one line of meaning each from
// ERROR_DESCRIPTIONS (packages/sdk/src/errors.ts). The table sits between
// `<!-- error-table:start -->` and `<!-- error-table:end -->`.
//
// §5 also has a hand-written table of what a worker does about each code it can get
// (between `<!-- worker-errors:start -->` and `<!-- worker-errors:end -->`): prose belongs in
// the document, but its rows must be exactly WORKER_ERROR_CODES, each once; this checks that too.
//
// Usage: node scripts/error-table.ts [--check] [file]   (default file: docs/protocol.md)
//   without --check: rewrites the generated table in place;
//   --check: changes nothing, exits 1 when the table differs from what the code renders.
// Either way it exits 1 when the worker table does not cover exactly the worker codes.
// packages/server/test/error-table.test.ts runs the same checks.

import { readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_DESCRIPTIONS, ERROR_STATUS, WORKER_ERROR_CODES } from '../packages/sdk/src/errors.ts';

export const TABLE_MARKERS = { start: '<!-- error-table:start -->', end: '<!-- error-table:end -->' } as const;
export const WORKER_MARKERS = { start: '<!-- worker-errors:start -->', end: '<!-- worker-errors:end -->' } as const;

type Markers = { readonly start: string; readonly end: string };

const cell = (text: string) => text.replaceAll('|', '\\|');

/** The table, by status and then in the source's order, as markdown lines (no markers). */
export function renderErrorTable(
  statuses: Readonly<Record<string, number>> = ERROR_STATUS,
  descriptions: Readonly<Record<string, string>> = ERROR_DESCRIPTIONS,
): string {
  const codes = Object.keys(statuses);
  for (const code of codes) {
    const d = descriptions[code];
    if (typeof d !== 'string' || d.trim() === '') throw new Error(`error code ${code} has no description in ERROR_DESCRIPTIONS`);
    if (/[\r\n]/.test(d)) throw new Error(`the description of ${code} is more than one line`);
  }
  for (const code of Object.keys(descriptions)) {
    if (!Object.hasOwn(statuses, code)) throw new Error(`ERROR_DESCRIPTIONS describes ${code}, which ERROR_STATUS does not have`);
  }
  const rows = codes
    .map((code, i) => ({ code, status: statuses[code]!, i }))
    .sort((a, b) => a.status - b.status || a.i - b.i)
    .map(({ code, status }) => `| \`${code}\` | ${status} | ${cell(descriptions[code]!)} |`);
  return [
    '<!-- Rendered from packages/sdk/src/errors.ts by `node scripts/error-table.ts`: change the code, not this table. -->',
    '| Code | HTTP | Meaning |',
    '| --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/** Where the text between one pair of markers is; throws unless each marker is there exactly once, in order. */
function region(doc: string, markers: Markers): { from: number; to: number } {
  const count = (m: string) => doc.split(m).length - 1;
  if (count(markers.start) !== 1 || count(markers.end) !== 1) {
    throw new Error(`expected exactly one ${markers.start} and one ${markers.end}`);
  }
  const from = doc.indexOf(markers.start) + markers.start.length;
  const to = doc.indexOf(markers.end);
  if (to < from) throw new Error(`${markers.end} comes before ${markers.start}`);
  return { from, to };
}

/** The text between the markers, without the line breaks next to them. */
export function between(doc: string, markers: Markers): string {
  const { from, to } = region(doc, markers);
  return doc.slice(from, to).replace(/^\r?\n/, '').replace(/\r?\n$/, '');
}

/** The document with the generated table put between the table markers. */
export function withTable(doc: string, table = renderErrorTable()): string {
  const { from, to } = region(doc, TABLE_MARKERS);
  return `${doc.slice(0, from)}\n${table}\n${doc.slice(to)}`;
}

/** The codes of the worker table's rows (`| \`CODE\` | ...`), in order, repeats included. */
export function workerTableCodes(doc: string): string[] {
  return between(doc, WORKER_MARKERS).split(/\r?\n/).flatMap((line) => {
    const m = /^\|\s*`([A-Z_]+)`\s*\|/.exec(line);
    return m ? [m[1]!] : [];
  });
}

/** What is wrong with a document's two tables; empty when nothing is. */
export function problems(doc: string, opts: { table?: string; workerCodes?: readonly string[] } = {}): string[] {
  const out: string[] = [];
  const table = opts.table ?? renderErrorTable();
  if (between(doc, TABLE_MARKERS) !== table) out.push('the error table differs from what packages/sdk/src/errors.ts renders; run `node scripts/error-table.ts`');
  const expected = opts.workerCodes ?? WORKER_ERROR_CODES;
  const listed = workerTableCodes(doc);
  const missing = expected.filter((c) => !listed.includes(c));
  const extra = [...new Set(listed.filter((c) => !expected.includes(c)))];
  const repeated = [...new Set(listed.filter((c, i) => listed.indexOf(c) !== i))];
  if (missing.length > 0) out.push(`the worker table has no row for ${missing.join(', ')} (WORKER_ERROR_CODES)`);
  if (extra.length > 0) out.push(`the worker table has rows for ${extra.join(', ')}, which WORKER_ERROR_CODES does not list`);
  if (repeated.length > 0) out.push(`the worker table has more than one row for ${repeated.join(', ')}`);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const file = args.find((a) => !a.startsWith('--')) ?? fileURLToPath(new URL('../docs/protocol.md', import.meta.url));
  const name = relative(process.cwd(), file);
  const doc = readFileSync(file, 'utf8');
  if (!check) {
    const updated = withTable(doc);
    if (updated !== doc) writeFileSync(file, updated);
    console.log(updated === doc ? `${name}: the error table is up to date` : `${name}: error table rewritten`);
  }
  const found = problems(check ? doc : withTable(doc));
  for (const p of found) console.error(`${name}: ${p}`);
  if (found.length > 0) process.exit(1);
  if (check) console.log(`${name}: the error tables match the code`);
}
