// `npm run docs:check`: runs the README's walk-through against a real server and fails when an
// output the README shows is no longer what the code prints, so the walk-through cannot drift.
//
// Which blocks run: a ```sh block right after an HTML comment `<!-- docs-check ... -->` (blank
// lines allowed between them). Its expected output is the fenced block that follows it (```text,
// ```json or a bare ```), if one does before any other text; a block without one is run and
// must exit 0, its output is not compared. Words in the comment:
//
//   server      the block starts the server (terminal 1). The checker runs it as written, in
//               the background, with FLOTILLA_DATABASE_URL set to a fresh SQLite file in a
//               temporary directory and FLOTILLA_PORT to 0 (a free port; a later server block
//               gets the same port again, as a restart would). It waits for "flotilla listening
//               on", takes the admin token the first start prints ("export FLOTILLA_TOKEN=…"),
//               and stops the running server (SIGTERM) before a later server block starts one.
//   terminal=N  the shell to run it in (default 3). Each terminal is one bash process that lives
//               for the whole run, so variables, functions and background jobs (`&`, `%1`) carry
//               over between its blocks, as in a real terminal (job control is on: `set -m`).
//               Every terminal gets FLOTILLA_TOKEN once the server printed it (the "paste the
//               export line" step); FLOTILLA_URL starts pointing nowhere, so the walk-through
//               must export it itself.
//   exit=N      the exit status the block's last command must end with (default 0).
//
// The server's address in the README is http://127.0.0.1:8080 and its database ./flotilla.db:
// in commands they are replaced by the real ones, in outputs the real ones by them. Apart from
// `export FLOTILLA_URL=http://127.0.0.1:8080` (and `export <NAME>_AGENT_URL=…` for an agent the
// walk-through starts itself), a command that names an address is refused: the walk-through
// reads $FLOTILLA_URL. Commands run with the repository root as working
// directory, stdin from /dev/null, stdout and stderr merged (in the order written), and
// without npm's or Flotilla's variables from the environment that started the checker.
//
// How outputs are compared (after a block's last command, output still arriving, from a worker
// started with `&`, is waited for until there are as many lines as the README shows and 400 ms
// pass without more, or 15 s):
//   - the server's "this node now runs maintenance" log line is compared wherever it comes
//     (its timer may fire before the admin token is printed);
//   - lines the shell prints about jobs (`[1] 4242`, `[1]+  Terminated …`) are left out on both
//     sides, and so is the CLI's `task.started` event line: a socket `start` is written only if
//     the attempt is still running 10 ms later (docs/decisions.md §35), so it comes and goes;
//   - a line (or run of lines) that parses as JSON is compared as JSON: the same keys (in any
//     order), the same types, the same values, except ids, times, tokens, sequence numbers,
//     durations, pids and the host name, which only need the same type;
//   - any other line is compared as text with the same things masked (UUIDs, ISO and CLI times,
//     `flt_…` tokens and JWTs, `#12`, `"seq":12`, `id: 12`, `"durationMs":41`, …).
//
// Usage: node scripts/docs-check.ts [--readme FILE] [--update | --update-all] [--verbose] [--keep]
//   --update      rewrite each expected output that does not match with this run's (review the diff)
//   --update-all  rewrite every expected output with this run's, matching or not
//   --verbose  print every block's output, and output that arrived between blocks
//   --keep     keep the temporary directory (the database, the blocks as run)

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const README_URL = 'http://127.0.0.1:8080';
export const README_DATABASE = './flotilla.db';
/** Where FLOTILLA_URL points until the walk-through exports it: nothing listens on port 1. */
const NOWHERE_URL = 'http://127.0.0.1:1';
const BLOCK_TIMEOUT_MS = 180_000;
const SERVER_START_TIMEOUT_MS = 60_000;
const SETTLE_QUIET_MS = 400;
const SETTLE_MAX_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Reading the README

export interface Expected {
  /** 0-based index of the opening fence's line. */
  open: number;
  /** 0-based index of the closing fence's line. */
  close: number;
  text: string;
}

export interface Block {
  /** 1-based line of the ```sh fence, for messages. */
  line: number;
  server: boolean;
  terminal: string;
  exit: number;
  command: string;
  expected: Expected | null;
}

const MARKER = /^\s*<!--\s*docs-check\b(.*?)-->\s*$/;
const FENCE_OPEN = /^```([\w-]*)\s*$/;
const FENCE_CLOSE = /^```\s*$/;
const OUTPUT_LANGS = new Set(['', 'text', 'json', 'console', 'output']);

export function parseBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i]!);
    if (!marker) continue;
    const where = `README line ${i + 1}`;
    let server = false;
    let terminal = '3';
    let exit = 0;
    for (const word of marker[1]!.trim().split(/\s+/).filter((w) => w !== '')) {
      const [key, value] = word.split('=', 2) as [string, string | undefined];
      if (key === 'server' && value === undefined) server = true;
      else if (key === 'terminal' && value !== undefined && /^\w+$/.test(value)) terminal = value;
      else if (key === 'exit' && value !== undefined && /^\d+$/.test(value)) exit = Number(value);
      else throw new Error(`${where}: unknown word "${word}" in the docs-check comment (server, terminal=N, exit=N)`);
    }
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() === '') j++;
    const open = FENCE_OPEN.exec(lines[j] ?? '');
    if (!open || (open[1] !== 'sh' && open[1] !== 'bash')) throw new Error(`${where}: a docs-check comment must be followed by a \`\`\`sh block`);
    const fence = j;
    const command: string[] = [];
    for (j++; j < lines.length && !FENCE_CLOSE.test(lines[j]!); j++) command.push(lines[j]!);
    if (j >= lines.length) throw new Error(`README line ${fence + 1}: the sh block is not closed`);
    let k = j + 1;
    while (k < lines.length && lines[k]!.trim() === '') k++;
    let expected: Expected | null = null;
    const out = FENCE_OPEN.exec(lines[k] ?? '');
    if (out && OUTPUT_LANGS.has(out[1]!)) {
      const text: string[] = [];
      let m = k + 1;
      for (; m < lines.length && !FENCE_CLOSE.test(lines[m]!); m++) text.push(lines[m]!);
      if (m >= lines.length) throw new Error(`README line ${k + 1}: the output block is not closed`);
      expected = { open: k, close: m, text: text.join('\n') };
      i = m;
    } else {
      i = j;
    }
    blocks.push({ line: fence + 1, server, terminal: server ? '1' : terminal, exit, command: command.join('\n'), expected });
  }
  return blocks;
}

/** Addresses in a command other than the one `export FLOTILLA_URL=` sets: the walk-through reads $FLOTILLA_URL. */
export function hardCodedAddresses(command: string): string[] {
  const found: string[] = [];
  for (const line of command.split('\n')) {
    // The server's address is exported once (and replaced by the real one); another service's
    // (an A2A agent the walk-through starts on its own port) is exported once too, by name.
    const rest = line.replace(/^\s*export (?:FLOTILLA|[A-Z0-9]+(?:_[A-Z0-9]+)*_AGENT)_URL=\S+\s*$/, '');
    for (const m of rest.matchAll(/\b(?:127\.0\.0\.1|localhost|\[::1\]):\d+/g)) found.push(m[0]);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Comparing outputs

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
const TEXT_MASKS: Array<[RegExp, string]> = [
  [UUID, '<id>'],
  [/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)/g, '<time>'],
  [/\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b/g, '<time>'],
  [/\bflt_[A-Za-z0-9_-]+/g, '<token>'],
  [/\beyJ[\w-]*\.[\w-]+\.[\w-]+/g, '<token>'],
  [/#\d+\b/g, '#<seq>'],
  [/("(?:seq|time|pid|durationMs|delayMs|retryAfterMs|latencyMs)":)\d+/g, '$1<n>'],
  [/("hostname":)"[^"]*"/g, '$1"<host>"'],
  [/^(id: )\d+$/g, '$1<seq>'],
];
/** JSON keys whose values change from run to run: only their type is compared. */
const VOLATILE_KEYS = new Set(['seq', 'time', 'pid', 'hostname', 'durationMs', 'delayMs', 'retryAfterMs', 'latencyMs']);

export function maskText(line: string): string {
  let out = line;
  for (const [pattern, replacement] of TEXT_MASKS) out = out.replace(pattern, replacement);
  return out;
}

const JOB_LINE = /^\[\d+\][+-]?\s+(?:\d+|(?:Done|Terminated|Killed|Running|Stopped|Interrupt|Hangup|Exit \d+)\b.*)$/;
/** A server log line whose place among the others is timing (see outputItems). */
const UNORDERED_MSG = 'this node now runs maintenance';
/** The CLI's event line for a start, which a quick attempt may not have (decision 35). */
const OPTIONAL_LINE = /^\s*#\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+task\.started\s/;

export type Item = { kind: 'text'; text: string } | { kind: 'json'; value: unknown; text: string };

/** An output as the items that are compared: lines, and JSON values (one line or several). */
export function outputItems(output: string): Item[] {
  const lines = output.replace(/\r/g, '').split('\n').map((l) => l.replace(/\s+$/, ''))
    .filter((l) => !JOB_LINE.test(l) && !OPTIONAL_LINE.test(l));
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  const items: Item[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('{') || line.startsWith('[')) {
      let parsed: { value: unknown; end: number } | null = null;
      for (let end = i; end < Math.min(lines.length, i + 500) && parsed === null; end++) {
        try {
          parsed = { value: JSON.parse(lines.slice(i, end + 1).join('\n')), end };
        } catch { /* not (yet) a whole JSON value */ }
      }
      if (parsed !== null) {
        items.push({ kind: 'json', value: parsed.value, text: lines.slice(i, parsed.end + 1).join('\n') });
        i = parsed.end;
        continue;
      }
    }
    items.push({ kind: 'text', text: line });
  }
  // The server's leadership line comes from a timer, so on a loaded machine it can come
  // before the admin token block instead of after it: compared, but wherever it is, last.
  const unordered = (item: Item) => item.kind === 'json' && (item.value as { msg?: unknown } | null)?.msg === UNORDERED_MSG;
  return [...items.filter((item) => !unordered(item)), ...items.filter(unordered)];
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** A masked, key-sorted rendering: two items match exactly when their renderings are equal. */
function canonical(item: Item): string {
  if (item.kind === 'text') return maskText(item.text);
  const walk = (v: unknown, key: string | null): unknown => {
    if (key !== null && VOLATILE_KEYS.has(key) && v !== null && typeof v !== 'object') return `<${typeOf(v)}>`;
    if (typeof v === 'string') return maskText(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, null));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, walk((v as Record<string, unknown>)[k], k)]));
    }
    return v;
  };
  return `json ${JSON.stringify(walk(item.value, null))}`;
}

/** Where two JSON values differ, as "path: what" lines. */
export function jsonDifferences(expected: unknown, actual: unknown, path = '$', key: string | null = null): string[] {
  const te = typeOf(expected);
  const ta = typeOf(actual);
  if (te !== ta) return [`${path}: the README shows ${te} ${JSON.stringify(expected)}, the output has ${ta} ${JSON.stringify(actual)}`];
  if (key !== null && VOLATILE_KEYS.has(key) && te !== 'object' && te !== 'array') return [];
  if (te === 'array') {
    const e = expected as unknown[];
    const a = actual as unknown[];
    if (e.length !== a.length) return [`${path}: the README shows ${e.length} elements, the output has ${a.length}`];
    return e.flatMap((x, i) => jsonDifferences(x, a[i], `${path}[${i}]`));
  }
  if (te === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const out: string[] = [];
    for (const k of Object.keys(e)) if (!Object.hasOwn(a, k)) out.push(`${path}.${k}: in the README, not in the output`);
    for (const k of Object.keys(a)) if (!Object.hasOwn(e, k)) out.push(`${path}.${k}: in the output (${JSON.stringify(a[k])}), not in the README`);
    for (const k of Object.keys(e)) if (Object.hasOwn(a, k)) out.push(...jsonDifferences(e[k], a[k], `${path}.${k}`, k));
    return out;
  }
  const same = te === 'string' ? maskText(expected as string) === maskText(actual as string) : expected === actual;
  return same ? [] : [`${path}: the README shows ${JSON.stringify(expected)}, the output has ${JSON.stringify(actual)}`];
}

/**
 * Compares an output with the README's: [] when they match, else a readable diff
 * (`-` the README, `+` the output, masked) with the JSON differences of each changed value.
 */
export function compareOutputs(expected: string, actual: string): string[] {
  const e = outputItems(expected);
  const a = outputItems(actual);
  const ce = e.map(canonical);
  const ca = a.map(canonical);
  if (ce.length === ca.length && ce.every((c, i) => c === ca[i])) return [];
  // Longest common subsequence, to show what was added or removed rather than everything after it.
  const n = ce.length;
  const m = ca.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = ce[i] === ca[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const out: string[] = [];
  const show = (prefix: string, item: Item) => {
    for (const l of item.text.split('\n')) out.push(`${prefix} ${maskText(l)}`);
  };
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && ce[i] === ca[j]) {
      show(' ', e[i]!);
      i++;
      j++;
    } else if (i < n && j < m && e[i]!.kind === 'json' && a[j]!.kind === 'json' && lcs[i + 1]![j + 1] === lcs[i]![j]) {
      // The same value in both, changed: say how.
      show('-', e[i]!);
      show('+', a[j]!);
      for (const d of jsonDifferences((e[i] as { value: unknown }).value, (a[j] as { value: unknown }).value)) out.push(`    ${d}`);
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i]![j + 1]! > lcs[i + 1]![j]!)) {
      show('+', a[j]!);
      j++;
    } else {
      show('-', e[i]!);
      i++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The environment of a newcomer's shell: nothing npm or a Flotilla of the caller's set. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(?:npm_|FLOTILLA_)/i.test(k) || k === 'NODE_TEST_CONTEXT' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? '').split(delimiter).filter((p) => !/node_modules[\\/]\.bin$|node-gyp-bin$/.test(p)).join(delimiter);
  env.NO_COLOR = '1';
  return env;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch { /* already gone */ }
}

/** SIGTERM to a process group, then waits until none of it is left (SIGKILL after `graceMs`). Returns false if it had to kill. */
async function stopGroup(pgid: number, graceMs: number): Promise<boolean> {
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  if (!groupAlive(pgid)) return true;
  signalGroup(pgid, 'SIGKILL');
  while (groupAlive(pgid)) await sleep(50);
  return false;
}

/** A process group whose output (stdout and stderr, in order) is collected. */
class Collector {
  buf = '';
  lastDataAt = Date.now();
  exited: Promise<number | null>;
  readonly proc: ChildProcess;

  constructor(proc: ChildProcess) {
    this.proc = proc;
    const take = (chunk: Buffer) => {
      this.buf += chunk.toString('utf8');
      this.lastDataAt = Date.now();
    };
    proc.stdout?.on('data', take);
    proc.stderr?.on('data', take);
    this.exited = new Promise((done) => proc.once('exit', (code, signal) => done(signal ? 128 : code)));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Signals the whole process group (the shell, or npm and the server under it). */
  signal(sig: NodeJS.Signals): void {
    if (this.proc.pid !== undefined) signalGroup(this.proc.pid, sig);
  }

  /** Stops the whole process group and waits until every process of it is gone (npm's children too). */
  async stop(graceMs: number): Promise<boolean> {
    if (this.proc.pid === undefined) return true;
    const clean = await stopGroup(this.proc.pid, graceMs);
    await this.exited;
    return clean;
  }

  /** Waits for output to stop arriving: `lines` compared items at least, then `SETTLE_QUIET_MS` of quiet (at most `SETTLE_MAX_MS`). */
  async settle(from: number, lines: number): Promise<void> {
    const started = Date.now();
    for (;;) {
      const enough = outputItems(this.buf.slice(from)).length >= lines;
      if (enough && Date.now() - this.lastDataAt >= SETTLE_QUIET_MS) return;
      if (Date.now() - started >= SETTLE_MAX_MS) return;
      await sleep(50);
    }
  }
}

interface Outcome {
  block: Block;
  output: string;
  status: number | null;
  problems: string[];
}

class Run {
  readonly dir = mkdtempSync(join(tmpdir(), 'flotilla-docs-check-'));
  readonly database = join(this.dir, 'flotilla.db');
  readonly env = cleanEnv();
  readonly terminals = new Map<string, Collector>();
  /** Each terminal's background jobs (process groups, `set -m`), as of its last block. */
  readonly jobs = new Map<string, number[]>();
  server: Collector | null = null;
  port = 0;
  url: string | null = null;
  token: string | null = null;
  readonly verbose: boolean;
  #count = 0;

  constructor(verbose: boolean) {
    this.verbose = verbose;
  }

  /** The README's address and database → this run's, in a command. */
  command(text: string): string {
    let out = text;
    if (this.url !== null) out = out.replaceAll(README_URL, this.url);
    return out.replaceAll(README_DATABASE, this.database);
  }

  /** This run's address and database → the README's, in an output. */
  output(text: string): string {
    let out = text.replaceAll(this.database, README_DATABASE);
    if (this.port !== 0) out = out.replaceAll(`127.0.0.1:${this.port}`, README_URL.replace(/^http:\/\//, ''));
    return out;
  }

  terminal(name: string): Collector {
    let t = this.terminals.get(name);
    if (t) return t;
    const proc = spawn('bash', ['--norc', '--noprofile'], {
      cwd: ROOT, env: { ...this.env, FLOTILLA_URL: NOWHERE_URL }, detached: true, stdio: ['pipe', 'pipe', 'pipe'],
    });
    t = new Collector(proc);
    proc.stdin!.write('set -m\nexec 2>&1\n');
    if (this.token !== null) proc.stdin!.write(`export FLOTILLA_TOKEN=${shellQuote(this.token)}\n`);
    this.terminals.set(name, t);
    return t;
  }

  async run(block: Block): Promise<Outcome> {
    const problems: string[] = [];
    const addresses = hardCodedAddresses(block.command);
    if (addresses.length > 0) problems.push(`names an address (${addresses.join(', ')}): use $FLOTILLA_URL, exported once`);
    const n = ++this.#count;
    const file = join(this.dir, `block-${String(n).padStart(2, '0')}-line-${block.line}.sh`);
    writeFileSync(file, `${this.command(block.command)}\n`);
    const expectedLines = block.expected ? outputItems(block.expected.text).length : 0;
    let output: string;
    let status: number | null;
    if (block.server) ({ output, status } = await this.startServer(file, expectedLines, problems));
    else ({ output, status } = await this.runInTerminal(block, file, expectedLines, problems));
    output = this.output(output);
    if (status !== null && status !== block.exit) problems.push(`exited ${status}, expected ${block.exit}`);
    if (block.expected) {
      const diff = compareOutputs(block.expected.text, output);
      if (diff.length > 0) problems.push(`the output differs from the README's (- README, + output, masked):\n${diff.map((l) => `    ${l}`).join('\n')}`);
    }
    return { block, output, status, problems };
  }

  async runInTerminal(block: Block, file: string, expectedLines: number, problems: string[]): Promise<{ output: string; status: number | null }> {
    const t = this.terminal(block.terminal);
    if (!t.running) {
      problems.push(`terminal ${block.terminal} has exited`);
      return { output: '', status: null };
    }
    const stray = t.buf;
    if (this.verbose && stray.trim() !== '') process.stdout.write(`  (terminal ${block.terminal}, between blocks)\n${indent(this.output(stray))}\n`);
    t.buf = '';
    const sentinel = `__docs_check_${randomBytes(6).toString('hex')}__`;
    t.proc.stdin!.write(`source ${shellQuote(file)} </dev/null; __dc=$?; printf '\\n%s %s %s\\n' ${sentinel} "$__dc" "$(jobs -p | tr '\\n' ' ')"\n`);
    const marker = new RegExp(`\\n${sentinel} (\\d+) ([\\d ]*)\\n`);
    const started = Date.now();
    let found: RegExpExecArray | null = null;
    while ((found = marker.exec(t.buf)) === null) {
      if (!t.running) {
        problems.push(`terminal ${block.terminal} exited while running the block`);
        return { output: t.buf, status: null };
      }
      if (Date.now() - started > BLOCK_TIMEOUT_MS) {
        problems.push(`did not finish within ${BLOCK_TIMEOUT_MS / 1000} s`);
        return { output: t.buf, status: null };
      }
      await sleep(50);
    }
    const before = t.buf.slice(0, found.index);
    const status = Number(found[1]);
    this.jobs.set(block.terminal, found[2]!.trim().split(/\s+/).filter((j) => j !== '').map(Number));
    t.buf = before + t.buf.slice(found.index + found[0].length);
    await t.settle(0, expectedLines);
    const output = t.buf;
    t.buf = '';
    return { output, status };
  }

  async startServer(file: string, expectedLines: number, problems: string[]): Promise<{ output: string; status: number | null }> {
    if (this.server) await this.server.stop(15_000);
    const proc = spawn('bash', ['-c', `exec 2>&1\nsource ${shellQuote(file)}`], {
      cwd: ROOT,
      env: { ...this.env, FLOTILLA_PORT: String(this.port), FLOTILLA_DATABASE_URL: this.database },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new Collector(proc);
    this.server = server;
    const started = Date.now();
    let listening: RegExpExecArray | null = null;
    while ((listening = /flotilla listening on (http:\/\/[\w.:[\]-]+)/.exec(server.buf)) === null) {
      if (!server.running) {
        problems.push(`the server exited (${await server.exited}) before it listened`);
        return { output: server.buf, status: null };
      }
      if (Date.now() - started > SERVER_START_TIMEOUT_MS) {
        problems.push(`the server did not listen within ${SERVER_START_TIMEOUT_MS / 1000} s`);
        return { output: server.buf, status: null };
      }
      await sleep(50);
    }
    const url = listening[1]!;
    this.url = url;
    this.port = Number(new URL(url).port);
    await server.settle(0, expectedLines);
    const output = server.buf;
    const token = /export FLOTILLA_TOKEN=(\S+)/.exec(output)?.[1];
    if (token !== undefined && this.token === null) {
      this.token = token;
      for (const t of this.terminals.values()) t.proc.stdin!.write(`export FLOTILLA_TOKEN=${shellQuote(token)}\n`);
    }
    if (this.token === null) problems.push('the first server start printed no admin token (export FLOTILLA_TOKEN=…)');
    server.buf = '';
    return { output, status: null };
  }

  /**
   * Stops every background job of every terminal (SIGTERM to its process group: a worker
   * drains), waits until each is gone, then the terminals, then the server and everything
   * under it, and only then removes the temporary directory.
   */
  async close(keep: boolean): Promise<void> {
    const jobs = [...this.jobs.values()].flat();
    const results = await Promise.all(jobs.map((pgid) => stopGroup(pgid, 40_000)));
    if (results.includes(false)) process.stderr.write('docs-check: a background job did not stop within 40 s of SIGTERM; killed it\n');
    await Promise.all([...this.terminals.values()].map(async (t) => {
      t.proc.stdin!.end('exit 0\n');
      const ended = await Promise.race([t.exited.then(() => true), sleep(5_000).then(() => false)]);
      if (!ended) await t.stop(5_000);
    }));
    if (this.server && !(await this.server.stop(15_000))) process.stderr.write('docs-check: the server did not stop within 15 s of SIGTERM; killed it\n');
    if (keep) return;
    for (let tries = 0; tries < 3 && existsSync(this.dir); tries++) {
      if (tries > 0) await sleep(200);
      rmSync(this.dir, { recursive: true, force: true });
    }
    if (existsSync(this.dir)) process.stderr.write(`docs-check: could not remove ${this.dir}\n`);
  }

  /** Last resort (the checker itself is being stopped): kill every process group it started, remove the directory. */
  killAll(keep: boolean): void {
    for (const pgid of [...this.jobs.values()].flat()) signalGroup(pgid, 'SIGKILL');
    for (const t of this.terminals.values()) t.signal('SIGKILL');
    this.server?.signal('SIGKILL');
    if (!keep) {
      try {
        rmSync(this.dir, { recursive: true, force: true });
      } catch { /* a process still writing there: leave it */ }
    }
  }
}

function indent(text: string, by = '    '): string {
  return text.replace(/\n$/, '').split('\n').map((l) => `${by}${l}`).join('\n');
}

/** The README with each given block's expected output replaced by its new one (job lines kept where they were). */
export function updatedReadme(markdown: string, outcomes: Array<{ block: Block; output: string }>): string {
  const lines = markdown.split('\n');
  const sorted = outcomes.filter((o) => o.block.expected !== null).sort((x, y) => y.block.expected!.open - x.block.expected!.open);
  for (const { block, output } of sorted) {
    const old = block.expected!.text.split('\n');
    // The shell's own job lines come and go with timing; the README's stay where they were.
    const fresh = output.replace(/\r/g, '').split('\n').map((l) => l.replace(/\s+$/, '')).filter((l) => !JOB_LINE.test(l));
    while (fresh.length > 0 && fresh[0] === '' && old[0] !== '') fresh.shift();
    while (fresh.length > 0 && fresh.at(-1) === '') fresh.pop();
    old.forEach((l, i) => {
      if (JOB_LINE.test(l)) fresh.splice(Math.min(i, fresh.length), 0, l);
    });
    lines.splice(block.expected!.open + 1, block.expected!.close - block.expected!.open - 1, ...fresh);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      readme: { type: 'string', default: join(ROOT, 'README.md') },
      update: { type: 'boolean', default: false },
      'update-all': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const readmePath = resolve(values.readme);
  const markdown = readFileSync(readmePath, 'utf8');
  const blocks = parseBlocks(markdown);
  if (blocks.length === 0) {
    process.stderr.write(`docs-check: no <!-- docs-check --> blocks in ${readmePath}\n`);
    return 1;
  }
  if (!blocks[0]!.server) {
    process.stderr.write('docs-check: the first checked block must start the server (<!-- docs-check server -->)\n');
    return 1;
  }
  if (existsSync(join(ROOT, 'flotilla.config.yaml'))) {
    process.stderr.write('docs-check: flotilla.config.yaml in the repository root would configure the server the walk-through runs against; move it away first\n');
    return 1;
  }
  // Whoever reads the output may go away (a test runner that timed out): keep going, clean up.
  process.stdout.on('error', () => {});
  const run = new Run(values.verbose);
  const interrupted = () => {
    run.killAll(values.keep);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const outcomes: Outcome[] = [];
  const where = relative(process.cwd(), readmePath) || readmePath;
  const t0 = Date.now();
  try {
    for (const block of blocks) {
      const first = block.command.split('\n').find((l) => l.trim() !== '') ?? '';
      const outcome = await run.run(block);
      outcomes.push(outcome);
      const verdict = outcome.problems.length === 0 ? 'ok' : 'FAIL';
      process.stdout.write(`${verdict.padEnd(4)}  ${where}:${block.line}  [terminal ${block.terminal}]  ${first}${block.command.includes('\n') ? ' …' : ''}\n`);
      if (values.verbose || outcome.problems.length > 0) {
        if (values.verbose) process.stdout.write(`${indent(outcome.output)}\n`);
        for (const p of outcome.problems) process.stdout.write(`      ${p}\n`);
      }
      // Without a server or a token nothing after this can work.
      if (block.server && (run.url === null || run.token === null)) break;
    }
  } finally {
    await run.close(values.keep);
  }
  const failed = outcomes.filter((o) => o.problems.length > 0);
  const compared = outcomes.filter((o) => o.block.expected !== null).length;
  const skipped = blocks.length - outcomes.length;
  process.stdout.write(`docs-check: ${outcomes.length} blocks run (${compared} outputs compared) in ${((Date.now() - t0) / 1000).toFixed(0)} s; `
    + `${failed.length === 0 && skipped === 0 ? 'the README matches' : `${failed.length} failed${skipped > 0 ? `, ${skipped} not run` : ''}`}\n`);
  if (values.keep) process.stdout.write(`docs-check: kept ${run.dir}\n`);
  if (values.update || values['update-all']) {
    const changed = (values['update-all'] ? outcomes : failed)
      .filter((o) => o.block.expected !== null && (values['update-all'] || o.problems.some((p) => p.startsWith('the output differs'))));
    if (changed.length > 0) {
      writeFileSync(readmePath, updatedReadme(markdown, changed));
      process.stdout.write(`docs-check: rewrote ${changed.length} expected outputs in ${where}; review the diff\n`);
    }
  }
  return failed.length === 0 && skipped === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`docs-check: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
