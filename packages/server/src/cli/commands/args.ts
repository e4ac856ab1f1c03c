// Flag parsing shared by every command, `serve` and `migrate` included (node:util parseArgs,
// strict): a mistake (an unknown flag, a missing value) is a usage error of one line plus the
// command's short usage, with "did you mean --x?" when a known flag is close (suggest.ts).
// The client commands add the common connection flags (--url, --token, --json, --help) and
// get the client built from them.

import { parseArgs } from 'node:util';
import { Flotilla } from '@flotilla/sdk';
import { isParseArgsError, UsageError } from './errors.ts';
import { closest } from './suggest.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export type OptionSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };

export interface CommandSpec {
  /** The command as typed after `flotilla`: `ls`, `agents create`. */
  command: string;
  /** The full usage text, printed for --help. */
  usage: string;
  /**
   * The command's one-line usage, shown under a usage error (default: the usage text up to
   * its first blank line).
   */
  synopsis?: string;
  options?: Record<string, OptionSpec>;
  /** Names of the required positional arguments, in order. */
  positionals?: string[];
  /**
   * Flags that no longer exist, with what to say instead of "unknown flag" (a flag renamed
   * because it could be misread is refused with a pointer to the new names).
   */
  removed?: Record<string, string>;
}

export interface ParsedCommand {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  json: boolean;
  client(): Flotilla;
  /** The server URLs and token the flags and environment give (for a worker). */
  connection(): { urls: string[]; token: string };
}

export const COMMON_FLAGS = `Common flags:
  --url URL       server URL; repeat or comma-separate for failover
                  (FLOTILLA_URL, default ${DEFAULT_URL})
  --token T       API token (FLOTILLA_TOKEN)
  --json          machine-readable JSON output
  -h, --help      show this usage
`;

const COMMON_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', multiple: true },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

function splitUrls(values: string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

/** The short usage printed under a usage error: the synopsis, or the usage text's first paragraph. */
export function synopsisOf(spec: Pick<CommandSpec, 'usage' | 'synopsis'>): string {
  const text = spec.synopsis ?? spec.usage.split(/\n\s*\n/)[0]!;
  return text.trimEnd();
}

/** A usage error: the message, then the command's short usage and where the full one is. */
export function usageError(message: string, spec: Pick<CommandSpec, 'command' | 'usage' | 'synopsis'>): UsageError {
  const synopsis = synopsisOf(spec);
  const lead = synopsis.includes('\n') || /^usage:/i.test(synopsis) ? synopsis : `usage: ${synopsis}`;
  return new UsageError(`${message}\n${lead}\n(flotilla ${spec.command} --help for all its flags)`);
}

/**
 * node:util parseArgs (strict) with its errors made usage errors of one line plus the
 * command's usage: `unknown flag --agnet; did you mean --agent?`, `--limit needs a value`,
 * `--wait takes no value`. The one implementation behind every command's flags.
 */
export function parseFlags(
  argv: string[],
  options: Record<string, OptionSpec>,
  spec: Pick<CommandSpec, 'command' | 'usage' | 'synopsis' | 'removed'> & { allowPositionals?: boolean },
): { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] } {
  const allowPositionals = spec.allowPositionals ?? true;
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    if (!isParseArgsError(err)) throw err;
    throw usageError(explainParseError(err, argv, options, spec), spec);
  }
}

function explainParseError(err: TypeError, argv: string[], options: Record<string, OptionSpec>, spec: Pick<CommandSpec, 'removed'>): string {
  // Re-read the arguments leniently to find the flag at fault.
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true });
  const shorts = new Map(Object.entries(options).flatMap(([name, o]) => (o.short ? [[o.short, name] as const] : [])));
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const known = Object.hasOwn(options, t.name) ? options[t.name]! : undefined;
    if (known === undefined) {
      if (t.rawName.startsWith('--') && spec.removed && Object.hasOwn(spec.removed, t.name)) return `${t.rawName} ${spec.removed[t.name]}`;
      const candidates = Object.keys(options);
      const raw = argv[t.index] ?? t.rawName;
      // `-json`: a long flag written with one dash reads as the short flags -j -s -o -n.
      const oneDash = !t.rawName.startsWith('--') && /^-[A-Za-z][A-Za-z-]+/.test(raw) ? raw.slice(1).split('=')[0]! : null;
      let near: string | null;
      if (t.rawName.startsWith('--')) near = closest(t.name, candidates);
      else if (oneDash !== null) near = Object.hasOwn(options, oneDash) ? oneDash : closest(oneDash, candidates);
      else near = shorts.get(t.name.toLowerCase()) ?? null;
      const shown = oneDash !== null ? `-${oneDash}` : t.rawName;
      return `unknown flag ${shown}${near ? `; did you mean --${near}?` : ''}`;
    }
    if (known.type === 'string' && t.value === undefined) return `${t.rawName} needs a value`;
    if (known.type === 'string' && t.inlineValue === false && t.value !== undefined && t.value.startsWith('-')) {
      return `${t.rawName} needs a value (got the flag ${t.value}; for a value that starts with "-", write ${t.rawName}=${t.value})`;
    }
    if (known.type === 'boolean' && t.value !== undefined) return `${t.rawName} takes no value (got "${t.value}")`;
  }
  // Whatever parseArgs says (its first sentence).
  return err.message.split('\n')[0]!;
}

/** Parses a command's argv; null (after printing the usage) when --help was asked for. */
export function parseCommand(argv: string[], spec: CommandSpec, env: NodeJS.ProcessEnv = process.env): ParsedCommand | null {
  const { values, positionals } = parseFlags(argv, { ...COMMON_OPTIONS, ...spec.options }, spec);
  if (values.help) {
    process.stdout.write(`${spec.usage}\n${COMMON_FLAGS}`);
    return null;
  }
  const wanted = spec.positionals ?? [];
  if (positionals.length < wanted.length) throw usageError(`missing argument ${wanted[positionals.length]}`, spec);
  if (positionals.length > wanted.length) throw usageError(`unexpected argument "${positionals[wanted.length]}"`, spec);
  const urlFlags = values.url as string[] | undefined;
  const urls = splitUrls(urlFlags && urlFlags.length > 0 ? urlFlags : [env.FLOTILLA_URL ?? DEFAULT_URL]);
  if (urls.length === 0) throw new UsageError('--url is empty');
  for (const u of urls) {
    if (!URL.canParse(u)) throw new UsageError(`--url: not a URL: ${u}`);
  }
  const token = (values.token as string | undefined) ?? env.FLOTILLA_TOKEN;
  return {
    values,
    positionals,
    json: values.json === true,
    client() {
      return new Flotilla({ url: urls, token: this.connection().token });
    },
    connection() {
      if (token === undefined || token === '') {
        throw new UsageError('no API token: pass --token or set FLOTILLA_TOKEN (the first server start prints an admin token; flotilla keys bootstrap makes a new one)');
      }
      return { urls, token };
    },
  };
}

/** An integer flag value (undefined when absent), within [min, max]. */
export function intFlag(value: unknown, name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const s = String(value);
  if (!/^-?\d+$/.test(s)) throw new UsageError(`${name} must be an integer, got "${s}"`);
  const n = Number(s);
  if (n < min || n > max) throw new UsageError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function stringFlag(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function stringsFlag(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration flag in milliseconds (undefined when absent): a number with a unit, `250ms`,
 * `30s`, `5m`, `2h`, `1d`. A bare number is refused: `--timeout 30` could mean seconds or
 * milliseconds, and guessing wrong by a factor of 1000 is the kind of mistake this avoids.
 */
export function durationFlag(value: unknown, name: string, bounds: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const s = String(value).trim();
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (!m) {
    const hint = /^\d+$/.test(s) ? ` (a number needs a unit: ${s}s, ${s}ms, ...)` : '';
    throw new UsageError(`${name} must be a duration like 250ms, 30s, 5m, 2h or 1d, got "${s}"${hint}`);
  }
  const ms = Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
  const min = bounds.min ?? 1;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(ms) || ms < min || ms > max) {
    throw new UsageError(`${name} must be between ${formatDuration(min)} and ${formatDuration(max)}, got ${s}`);
  }
  return ms;
}

/** `1d`, `5m`, `250ms`: the largest unit that divides the duration. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of Object.entries(DURATION_UNITS_MS).reverse()) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A comma-separated and/or repeated list flag: `--capabilities a,b --capabilities c` → [a, b, c]. */
export function listFlag(value: unknown): string[] {
  const raw = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return raw.filter((v): v is string => typeof v === 'string').flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

/** `key=value` pairs from a repeatable flag; a usage error for an entry without `=` or a key given twice. */
export function pairsFlag(value: unknown, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of stringsFlag(value)) {
    const at = entry.indexOf('=');
    if (at <= 0) throw new UsageError(`${name} takes key=value, got "${entry}"`);
    const key = entry.slice(0, at).trim();
    if (key === '') throw new UsageError(`${name} takes key=value, got "${entry}"`);
    if (Object.hasOwn(out, key)) throw new UsageError(`${name}: "${key}" is given twice`);
    out[key] = entry.slice(at + 1);
  }
  return out;
}
