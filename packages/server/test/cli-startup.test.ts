// The first ten minutes, with real `flotilla` processes and real databases: a first start on a
// port already in use fails in one line (exit 1) and stores no admin key, so the next start
// generates and prints one; a start with no usable admin key says how to get one; and
// `flotilla keys bootstrap` writes a new admin key straight into the database (SQLite file or
// PostgreSQL), with a server running or not, and prints it once.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminKeyProblem, hashToken } from '../src/engine/api-keys.ts';
import { openStore } from '../src/store/open-store.ts';
import type { ApiKeyRecord } from '../src/store/store.ts';
import { postgresAvailable, createTestSchema } from './helpers/postgres.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
/** No FLOTILLA_ADMIN_TOKEN: the server generates the admin key itself. */
const GENERATED = { FLOTILLA_ADMIN_TOKEN: '' };

interface CliResult { code: number; stdout: string; stderr: string }

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...GENERATED, ...env };
    delete childEnv.FLOTILLA_DATABASE_URL;
    if (env.FLOTILLA_DATABASE_URL !== undefined) childEnv.FLOTILLA_DATABASE_URL = env.FLOTILLA_DATABASE_URL;
    execFile(process.execPath, [CLI, ...args], { env: childEnv, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The tokens printed in a banner (each appears twice: on its own line and in the export line). */
function tokensIn(text: string): string[] {
  return [...new Set(text.match(/flt_[A-Za-z0-9_-]{40,}/g) ?? [])];
}

async function keys(database: string): Promise<ApiKeyRecord[]> {
  const store = await openStore({ url: database });
  try {
    return await store.apiKeyList({ includeRevoked: true });
  } finally {
    await store.close();
  }
}

/** Output written to stderr may arrive after the stdout line startServerProcess waited for. */
async function waitForOutput(server: ServerProcess, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 100 && !pattern.test(server.output()); i++) await new Promise((r) => setTimeout(r, 50));
  return server.output();
}

async function status(url: string, path: string, token: string): Promise<number> {
  return (await fetch(`${url}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } })).status;
}

describe('the server process', () => {
  it('gets the same Node flags from npm start and from the flotilla command (decisions.md 51)', () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { scripts: { start: string } };
    const startFlags = pkg.scripts.start.split(/\s+/).filter((w) => w.startsWith('--'));
    const shebang = readFileSync(CLI, 'utf8').split('\n')[0]!;
    const shebangFlags = shebang.split(/\s+/).filter((w) => w.startsWith('--'));
    assert.ok(startFlags.includes('--max-semi-space-size=8'), `npm start: ${pkg.scripts.start}`);
    assert.deepEqual(shebangFlags, startFlags, `the shebang (${shebang}) and npm start differ`);
  });
});

describe('first start, a port in use, no usable admin key, keys bootstrap', () => {
  let dir: string;
  let busy: Server;
  let busyPort: number;
  const servers: ServerProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-startup-'));
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as { port: number }).port;
  });

  after(async () => {
    for (const s of servers) await s.kill('SIGKILL');
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a first start on a port in use: one line, exit 1, no key stored; the next start prints a token that works', async () => {
    const database = join(dir, 'first.db');
    const failed = await cli(['serve', '--port', String(busyPort), '--database', database, '--log-level', 'warn']);
    assert.equal(failed.code, 1, failed.stderr);
    assert.equal(failed.stderr, `flotilla: port ${busyPort} on 127.0.0.1 is in use (EADDRINUSE); pick another with --port or FLOTILLA_PORT (0 picks a free one)\n`);
    assert.doesNotMatch(failed.stdout, /flt_/, 'no token printed for a start that failed');
    assert.ok(existsSync(database), 'the database was created before the port was tried');
    assert.deepEqual(await keys(database), [], 'and no admin key whose secret nobody saw');

    const second = await startServerProcess({ database, env: GENERATED });
    servers.push(second);
    const printed = tokensIn(second.output());
    assert.equal(printed.length, 1, second.output());
    assert.match(second.output(), /Generated an admin token \(shown only this once/);
    assert.equal(await status(second.url, '/keys', printed[0]!), 200);
    assert.doesNotMatch(second.output(), /no usable admin key/);
    await second.kill();
  });

  it('a start with no usable admin key says in one line how to get one; keys bootstrap makes one a running server accepts', async () => {
    const database = join(dir, 'locked.db');
    const first = await startServerProcess({ database, env: GENERATED });
    servers.push(first);
    assert.equal(tokensIn(first.output()).length, 1);
    await first.kill();
    // Lock everyone out: every key revoked (the API refuses to revoke the last admin key;
    // an operator with the database file can).
    const store = await openStore({ url: database });
    for (const k of await store.apiKeyList({ includeRevoked: false })) await store.apiKeyRevoke({ id: k.id, at: Date.now() });
    await store.close();

    const locked = await startServerProcess({ database, env: GENERATED });
    servers.push(locked);
    assert.doesNotMatch(locked.output(), /flt_/, 'no new token behind the operator\'s back');
    const warning = (await waitForOutput(locked, /no usable admin key/)).split('\n').filter((l) => l.includes('no usable admin key'));
    assert.deepEqual(warning, [
      `flotilla: no usable admin key in ${database} (every admin key is revoked or expired): \`flotilla keys bootstrap --database ${database}\` `
      + 'creates one and prints its token, or restart with FLOTILLA_ADMIN_TOKEN set to a new secret (at least 16 characters)',
    ]);

    // While that server runs: straight into its database.
    const boot = await cli(['keys', 'bootstrap', '--database', database]);
    assert.equal(boot.code, 0, boot.stderr);
    const [token] = tokensIn(boot.stdout);
    assert.ok(token, boot.stdout);
    assert.equal(tokensIn(boot.stdout).length, 1);
    assert.match(boot.stdout, /^Created admin key \S+ \("admin \(keys bootstrap\)"\) in .*locked\.db\.$/m);
    assert.match(boot.stdout, /shown only this once; only its hash is stored/);
    assert.match(boot.stdout, new RegExp(`^ {2}For the flotilla CLI: +export FLOTILLA_TOKEN=${token}$`, 'm'));
    assert.equal(await status(locked.url, '/keys', token!), 200, 'accepted at once');
    const id = /^Created admin key (\S+) /m.exec(boot.stdout)![1]!;
    const audit = await (await fetch(`${locked.url}/api/v1/audit?action=key.manage`, { headers: { authorization: `Bearer ${token}` } })).json() as { items: any[] };
    const entry = audit.items.find((e) => e.target === id);
    assert.deepEqual([entry?.principalId, entry?.outcome, entry?.source], ['system', 'allowed', 'flotilla keys bootstrap'], JSON.stringify(audit.items));
    const stored = (await keys(database)).find((k) => k.id === id);
    assert.deepEqual([stored?.role, stored?.hash, stored?.expiresAt, stored?.createdBy], ['admin', hashToken(token!), null, 'system']);
    await locked.kill();

    const unlocked = await startServerProcess({ database, env: GENERATED });
    servers.push(unlocked);
    assert.doesNotMatch(unlocked.output(), /no usable admin key|flt_/);
    await unlocked.kill();
  });

  it('keys bootstrap refuses a database that is not there (exit 2, nothing created) and :memory:', async () => {
    const missing = join(dir, 'typo', 'flotila.db');
    const [absent, memory, badFlag] = await Promise.all([
      cli(['keys', 'bootstrap', '--database', missing]),
      cli(['keys', 'bootstrap', '--database', ':memory:']),
      cli(['keys', 'bootstrap', '--databse', missing]),
    ]);
    assert.equal(absent.code, 2);
    assert.equal(absent.stderr, `flotilla: no database at ${missing}: give the server's own with --database (or FLOTILLA_DATABASE_URL), or start the server once first (npm start)\n`);
    assert.equal(absent.stdout, '');
    assert.ok(!existsSync(missing));
    assert.equal(memory.code, 2);
    assert.match(memory.stderr, /:memory: keeps nothing/);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /^flotilla: unknown flag --databse; did you mean --database\?\nUsage: flotilla keys bootstrap/);
  });

  it('keys bootstrap on PostgreSQL (the database from FLOTILLA_DATABASE_URL), --json, --name', async (t) => {
    if (!(await postgresAvailable())) {
      t.skip('PostgreSQL is not reachable');
      return;
    }
    const schema = await createTestSchema('cli_bootstrap');
    try {
      const boot = await cli(['keys', 'bootstrap', '--name', 'ops on call', '--json'], { FLOTILLA_DATABASE_URL: schema.url });
      assert.equal(boot.code, 0, boot.stderr);
      const out = JSON.parse(boot.stdout);
      assert.deepEqual([out.key.name, out.key.role, out.key.status, out.key.expiresAt], ['ops on call', 'admin', 'active', null]);
      assert.match(out.token, /^flt_/);
      const store = await openStore({ url: schema.url });
      try {
        const key = await store.apiKeyFindByHash({ hash: hashToken(out.token) });
        assert.equal(key?.id, out.key.id);
        assert.equal(key?.role, 'admin');
      } finally {
        await store.close();
      }
    } finally {
      await schema.drop();
    }
  });

  it('a database that refuses for good (not a SQLite file, an unknown PostgreSQL role) is one line, exit 1, no stack', async () => {
    const notDb = join(dir, 'not-a-database.db');
    writeFileSync(notDb, 'this is not a SQLite file, only text that is long enough to have a header '.repeat(20));
    for (const args of [['serve', '--port', '0', '--database', notDb], ['keys', 'bootstrap', '--database', notDb], ['serve', '--port', '0', '--database', 'postgres://no_such_role_flotilla@127.0.0.1:5432/test']]) {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(lines[0]!, /^flotilla: the database .* refused: .*; is --database or FLOTILLA_DATABASE_URL right\?$/);
    }
  });

  it('adminKeyProblem: none, all revoked, FLOTILLA_ADMIN_TOKEN naming a revoked key, all well', async () => {
    const store = await openStore({ url: join(dir, 'problem.db') });
    const key = (id: string, hash: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
      id, name: id, role: 'admin', hash, createdAt: 1, lastUsedAt: null, expiresAt: null, revokedAt: null, createdBy: 'system', agents: null, ...extra,
    });
    try {
      assert.deepEqual(await adminKeyProblem({ store, configured: null, now: 10 }), { kind: 'unusable', reason: 'there is none' });
      await store.apiKeyCreate({ key: key('viewer', hashToken('v'), { role: 'viewer' }) });
      await store.apiKeyCreate({ key: key('old', hashToken('configured-token-0123'), { expiresAt: 5 }) });
      assert.deepEqual(await adminKeyProblem({ store, configured: null, now: 10 }), { kind: 'unusable', reason: 'every admin key is revoked or expired' });
      await store.apiKeyCreate({ key: key('live', hashToken('live')) });
      assert.equal(await adminKeyProblem({ store, configured: null, now: 10 }), null);
      assert.deepEqual(await adminKeyProblem({ store, configured: 'configured-token-0123', now: 10 }), { kind: 'configured', status: 'expired' });
    } finally {
      await store.close();
    }
  });
});
