// `flotilla keys` and `flotilla audit` against a real server process: output, --json, usage
// errors that change nothing, and exit codes. A few runs go through the `flotilla` binary
// (main.ts: command lookup and exit codes); the rest run many commands in one child process
// (the same command functions and exit-code mapping), since each `flotilla` process spends
// most of a second loading the server modules.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOKEN } from './helpers/harness.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const COMMANDS = new URL('../src/cli/commands/index.ts', import.meta.url).href;

/** Runs each argv in turn in this one process, as main.ts would, and prints [{ code, stdout, stderr }]. */
const BATCH = `
const { CLIENT_COMMANDS, describeClientError } = await import(${JSON.stringify(COMMANDS)});
const out = process.stdout.write.bind(process.stdout);
const err = process.stderr.write.bind(process.stderr);
const results = [];
for (const [command, ...argv] of JSON.parse(process.argv[1])) {
  const r = { code: 0, stdout: '', stderr: '' };
  process.stdout.write = (chunk) => { r.stdout += chunk; return true; };
  process.stderr.write = (chunk) => { r.stderr += chunk; return true; };
  try {
    await CLIENT_COMMANDS[command](argv);
    r.code = process.exitCode ?? 0;
  } catch (e) {
    const d = describeClientError(e);
    if (d === null) throw e;
    r.stderr += 'flotilla: ' + d.message + '\\n';
    r.code = d.exitCode;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
  results.push(r);
}
out(JSON.stringify(results));
`;

interface CliResult { code: number; stdout: string; stderr: string }

describe('flotilla keys and audit', () => {
  let dir: string;
  let server: ServerProcess;

  function run(args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(process.execPath, args, { env: { ...process.env, FLOTILLA_URL: server.url, FLOTILLA_TOKEN: TOKEN }, timeout: 20_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** One `flotilla` process. */
  function cli(...args: string[]): Promise<CliResult> {
    return run([CLI, ...args]);
  }

  /** Several commands, in order, in one process. */
  async function batch(...commands: string[][]): Promise<CliResult[]> {
    const r = await run(['--input-type=module', '-e', BATCH, JSON.stringify(commands)]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as CliResult[];
  }

  async function api(method: string, path: string, body?: unknown, token = TOKEN): Promise<{ status: number; body: any }> {
    const res = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async function createKey(spec: Record<string, unknown>): Promise<{ id: string; token: string }> {
    const res = await api('POST', '/keys', spec);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { id: res.body.key.id, token: res.body.token };
  }

  function json(r: CliResult): any {
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  function fails(r: CliResult, code: number, stderr: RegExp): void {
    assert.equal(r.code, code, `expected exit ${code}, got ${r.code}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, stderr);
  }

  let viewer: { id: string; token: string };
  let deniedSeq: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-security-'));
    server = await startServerProcess({ database: join(dir, 'flotilla.db') });
    assert.equal((await api('POST', '/agents', { name: 'cli-sec' })).status, 201);
    // A refusal for `audit --outcome denied` to find.
    viewer = await createKey({ name: 'cli-viewer', role: 'viewer' });
    assert.equal((await api('POST', '/tasks', { agent: 'cli-sec' }, viewer.token)).status, 403);
    const audit = await api('GET', `/audit?principalId=${viewer.id}`);
    assert.equal(audit.body.items.length, 1, JSON.stringify(audit.body));
    deniedSeq = audit.body.items[0].seq;
  });

  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('through the flotilla binary: keys create shows the secret once, audit --outcome denied, exit codes 1, 2 and 3', async () => {
    const keysBefore = (await api('GET', '/keys?includeRevoked=true')).body.items.length as number;
    const [created, badRole, missing, unreachable, denied] = await Promise.all([
      cli('keys', 'create', '--role', 'operator', '--name', 'cli-ci', '--expires-in', '30d'),
      cli('keys', 'create', '--role', 'superuser', '--name', 'bad'),
      cli('keys', 'show', 'no-such-key'),
      cli('keys', 'ls', '--url', 'http://127.0.0.1:1'),
      cli('audit', '--outcome', 'denied'),
    ]);

    assert.equal(created.code, 0, created.stderr);
    const secrets = created.stdout.match(/flt_[A-Za-z0-9_-]+/g) ?? [];
    assert.equal(secrets.length, 1, created.stdout);
    assert.match(created.stdout, /shown only this once and never again/);
    assert.match(created.stdout, /^name: +cli-ci$/m);
    assert.match(created.stdout, /^role: +operator$/m);
    assert.match(created.stdout, /^status: +active$/m);
    const id = /^id: +(\S+)$/m.exec(created.stdout)?.[1];
    assert.ok(id, created.stdout);
    const expires = Date.parse(`${/^expires: +(.+)$/m.exec(created.stdout)![1]!.replace(' ', 'T')}Z`);
    assert.ok(Math.abs(expires - (Date.now() + 30 * 86_400_000)) < 60_000, `expires ${new Date(expires).toISOString()}`);
    // The secret works, with an operator's rights.
    assert.equal((await api('GET', '/overview', undefined, secrets[0]!)).status, 200);
    assert.equal((await api('GET', '/keys', undefined, secrets[0]!)).status, 403);
    assert.equal((await api('GET', `/keys/${id}`)).body.name, 'cli-ci');

    fails(badRole, 2, /unknown role "superuser"/);
    assert.equal(badRole.stdout, '');
    assert.equal((await api('GET', '/keys?includeRevoked=true')).body.items.length, keysBefore + 1, 'only cli-ci was created');
    fails(missing, 1, /KEY_NOT_FOUND/);
    fails(unreachable, 3, /cannot reach the server/);

    assert.equal(denied.code, 0, denied.stderr);
    assert.match(denied.stdout, /^SEQ +TIME +OUTCOME +STATUS +ROLE +PRINCIPAL +ACTION +TARGET$/m);
    assert.match(denied.stdout, new RegExp(`^${deniedSeq} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +denied +403 +viewer +cli-viewer +task\\.submit +-$`, 'm'));
    assert.doesNotMatch(denied.stdout, / allowed /);
  });

  it('keys create --json prints the created key; a bad flag exits 2 and creates nothing', async () => {
    const keysBefore = (await api('GET', '/keys?includeRevoked=true')).body.items.length as number;
    const [asJson, ...bad] = await batch(
      ['keys', 'create', '--role', 'agent', '--agent', 'cli-a', '--agent', 'cli-b,cli-c', '--name', 'cli-workers', '--expires-at', '2099-01-01T00:00:00Z', '--json'],
      ['keys', 'create', '--name', 'no-role'],
      ['keys', 'create', '--role', 'viewer'],
      ['keys', 'create', '--role', 'agent', '--name', 'no-agents'],
      ['keys', 'create', '--role', 'viewer', '--agent', 'cli-sec', '--name', 'viewer-with-agent'],
      ['keys', 'create', '--role', 'viewer', '--name', 'bad-duration', '--expires-in', '3 weeks'],
      ['keys', 'create', '--role', 'viewer', '--name', 'bad-date', '--expires-at', 'tomorrow'],
      ['keys', 'create', '--role', 'viewer', '--name', 'both', '--expires-in', '1d', '--expires-at', '2099-01-01T00:00:00Z'],
      ['keys', 'create', '--role', 'viewer', '--name', 'unknown-flag', '--colour', 'red'],
    );
    const created = json(asJson!);
    assert.match(created.token, /^flt_/);
    assert.deepEqual(
      [created.key.name, created.key.role, created.key.agents, created.key.expiresAt, created.key.status],
      ['cli-workers', 'agent', ['cli-a', 'cli-b', 'cli-c'], '2099-01-01T00:00:00.000Z', 'active'],
    );
    assert.equal((await api('GET', `/keys/${created.key.id}`)).body.name, 'cli-workers');

    const expected = [/--role is required/, /--name is required/, /needs --agent/, /--agent applies to --role agent only/,
      /--expires-in must be/, /--expires-at must be/, /cannot be combined/, /colour/];
    assert.equal(bad.length, expected.length);
    bad.forEach((r, i) => fails(r, 2, expected[i]!));
    assert.ok(bad.every((r) => r.stdout === ''));
    assert.equal((await api('GET', '/keys?includeRevoked=true')).body.items.length, keysBefore + 1, 'only cli-workers was created');
  });

  it('keys ls, show and revoke, as tables and --json', async () => {
    const key = await createKey({ name: 'cli-ls-viewer', role: 'viewer' });
    const [table, listed, shown, shownJson, revoked, again, active, all, afterRevoke, noId, unknownSub, help] = await batch(
      ['keys'],
      ['keys', 'ls', '--json'],
      ['keys', 'show', key.id],
      ['keys', 'show', key.id, '--json'],
      ['keys', 'revoke', key.id],
      ['keys', 'revoke', key.id, '--json'],
      ['keys', 'ls', '--json'],
      ['keys', 'ls', '--all', '--json'],
      ['keys', 'ls', '--token', key.token],
      ['keys', 'revoke'],
      ['keys', 'rotate', key.id],
      ['keys', 'create', '--help'],
    );
    assert.equal(table!.code, 0, table!.stderr);
    assert.match(table!.stdout, /^ID +NAME +ROLE +AGENTS +STATUS +CREATED +LAST USED +EXPIRES$/m);
    assert.match(table!.stdout, new RegExp(`^${key.id} +cli-ls-viewer +viewer +- +active +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +- +-$`, 'm'));
    assert.match(table!.stdout, /^\S+ +cli-workers +agent +cli-a,cli-b,cli-c +active .* 2099-01-01 00:00:00$/m);
    assert.doesNotMatch(table!.stdout + listed!.stdout, /flt_/, 'no secrets in listings');
    assert.equal(json(listed!).find((k: any) => k.id === key.id)?.status, 'active');

    assert.equal(shown!.code, 0, shown!.stderr);
    assert.match(shown!.stdout, new RegExp(`^id: +${key.id}$`, 'm'));
    assert.match(shown!.stdout, /^role: +viewer$/m);
    assert.match(shown!.stdout, /^status: +active$/m);
    assert.match(shown!.stdout, /^revoked: +-$/m);
    assert.equal(json(shownJson!).name, 'cli-ls-viewer');

    assert.equal(revoked!.code, 0, revoked!.stderr);
    assert.match(revoked!.stdout, /^status: +revoked$/m);
    assert.doesNotMatch(revoked!.stdout, /^revoked: +-$/m);
    assert.equal(json(again!).status, 'revoked', 'revoking again is fine');
    assert.equal(json(active!).some((k: any) => k.id === key.id), false);
    assert.equal(json(all!).find((k: any) => k.id === key.id)?.status, 'revoked');
    fails(afterRevoke!, 1, /UNAUTHENTICATED/);
    fails(noId!, 2, /missing argument ID/);
    fails(unknownSub!, 2, /unknown keys subcommand "rotate"/);
    assert.equal(help!.code, 0);
    assert.match(help!.stdout, /flotilla keys create --role R --name N/);
    assert.match(help!.stdout, /--expires-in D/);
    assert.match(help!.stdout, /--token T/);
  });

  it('audit filters by outcome, principal, action and time, limits, and refuses bad flags', async () => {
    const [deniedJson, byViewer, limited, keyActions, empty, help, badOutcome, badSince, badLimit, forbidden] = await batch(
      ['audit', '--outcome', 'denied', '--json'],
      ['audit', '--principal', viewer.id, '--json'],
      ['audit', '--limit', '3', '--json'],
      ['audit', '--action', 'key.manage', '--since', '1h', '--until', new Date(Date.now() + 60_000).toISOString(), '--json'],
      ['audit', '--since', '2000-01-01T00:00:00Z', '--until', '2000-01-02T00:00:00Z'],
      ['audit', '--help'],
      ['audit', '--outcome', 'maybe'],
      ['audit', '--since', 'yesterday'],
      ['audit', '--limit', '0'],
      ['audit', '--token', viewer.token],
    );
    const denied = json(deniedJson!);
    assert.ok(denied.length >= 2 && denied.every((e: any) => e.outcome === 'denied'), JSON.stringify(denied));
    assert.ok(denied.some((e: any) => e.seq === deniedSeq));
    const mine = json(byViewer!);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    assert.deepEqual(
      [mine[0].seq, mine[0].outcome, mine[0].status, mine[0].action, mine[0].role, mine[0].principalName],
      [deniedSeq, 'denied', 403, 'task.submit', 'viewer', 'cli-viewer'],
    );

    const three = json(limited!);
    assert.equal(three.length, 3);
    assert.ok(three[0].seq > three[1].seq && three[1].seq > three[2].seq, 'newest first');
    const keyEntries = json(keyActions!);
    assert.ok(keyEntries.length >= 5 && keyEntries.every((e: any) => e.action === 'key.manage'), JSON.stringify(keyEntries));
    assert.equal(empty!.code, 0, empty!.stderr);
    assert.equal(empty!.stdout, 'no audit entries\n');
    assert.equal(help!.code, 0);
    assert.match(help!.stdout, /--outcome O +only allowed, denied, failed/);

    fails(badOutcome!, 2, /unknown outcome "maybe"/);
    fails(badSince!, 2, /--since must be/);
    fails(badLimit!, 2, /--limit must be between 1/);
    fails(forbidden!, 1, /FORBIDDEN/);
  });
});
