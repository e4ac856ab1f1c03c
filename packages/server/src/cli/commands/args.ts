// Flag parsing shared by the client commands (node:util parseArgs, strict): the common
// connection flags (--url, --token, --json, --help) plus each command's own, and the client
// built from them.

import { parseArgs } from 'node:util';
import { Flotilla } from '@flotilla/sdk';
import { UsageError } from './errors.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

type OptionSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };

export interface CommandSpec {
  /** The full usage text, printed for --help. */
  usage: string;
  options?: Record<string, OptionSpec>;
  /** Names of the required positional arguments, in order. */
  positionals?: string[];
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

/** Parses a command's argv; null (after printing the usage) when --help was asked for. */
export function parseCommand(argv: string[], spec: CommandSpec, env: NodeJS.ProcessEnv = process.env): ParsedCommand | null {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...COMMON_OPTIONS, ...spec.options },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${spec.usage}\n${COMMON_FLAGS}`);
    return null;
  }
  const wanted = spec.positionals ?? [];
  if (positionals.length < wanted.length) throw new UsageError(`missing argument ${wanted[positionals.length]}\n\n${spec.usage}`);
  if (positionals.length > wanted.length) throw new UsageError(`unexpected argument "${positionals[wanted.length]}"\n\n${spec.usage}`);
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
      if (token === undefined || token === '') throw new UsageError('no API token: pass --token or set FLOTILLA_TOKEN');
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
