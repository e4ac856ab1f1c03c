import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { ConfigError, DEFAULT_CONFIG, loadConfig, redactUrl } from '../src/config/config.ts';
import { parsePostgresUrl } from '../src/store/open-store.ts';
import { Engine } from '../src/engine/engine.ts';
import { ensureAdminKey, hashToken } from '../src/engine/api-keys.ts';
import { openStore } from '../src/store/open-store.ts';
import { startServerProcess } from './helpers/server-process.ts';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'flotilla-config-'));
}

describe('configuration', () => {
  it('defaults match the documented ones', () => {
    const c = loadConfig({ env: {}, cwd: tempDir() });
    assert.equal(c.port, 8080);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.databaseUrl, './flotilla.db');
    assert.equal(c.leaseMs, 30_000);
    assert.equal(c.defaultMaxAttempts, 3);
    assert.equal(c.defaultTimeoutMs, 300_000);
    assert.equal(c.maxDepth, 3);
    assert.equal(c.retentionMs, 7 * 86_400_000);
    assert.equal(loadConfig({ env: { FLOTILLA_MAX_DEPTH: '5' }, cwd: tempDir() }).maxDepth, 5);
    assert.equal(c.allowEqualLevel, false);
    assert.equal(loadConfig({ env: { FLOTILLA_ALLOW_EQUAL_LEVEL: 'true' }, cwd: tempDir() }).allowEqualLevel, true);
  });

  it('SLA policies: documented defaults, the config file (durations, ms, none), the environment, and what is refused', () => {
    const H = 3_600_000;
    assert.deepEqual(loadConfig({ env: {}, cwd: tempDir() }).sla, { P0: H, P1: 24 * H, P2: 7 * 24 * H, P3: null, atRiskFraction: 0.8 });
    const dir = tempDir();
    writeFileSync(join(dir, 'flotilla.config.yaml'), 'server:\n  sla:\n    P0: 30m\n    P1: 5000\n    P2: none\n    P3: 2d\n    atRiskFraction: 0.5\n');
    assert.deepEqual(loadConfig({ env: {}, cwd: dir }).sla, { P0: 30 * 60_000, P1: 5_000, P2: null, P3: 48 * H, atRiskFraction: 0.5 });
    const env = loadConfig({ env: { FLOTILLA_SLA_P0: '2h', FLOTILLA_SLA_P3: '90000', FLOTILLA_SLA_P2: 'none', FLOTILLA_SLA_AT_RISK_FRACTION: '1' }, cwd: dir });
    assert.deepEqual(env.sla, { P0: 2 * H, P1: 5_000, P2: null, P3: 90_000, atRiskFraction: 1 });
    // Defaults are not shared between loads.
    assert.equal(loadConfig({ env: {}, cwd: tempDir() }).sla.P0, H);
    for (const [name, value] of [['FLOTILLA_SLA_P1', '1 hour'], ['FLOTILLA_SLA_P1', '0'], ['FLOTILLA_SLA_P1', '9999d'], ['FLOTILLA_SLA_AT_RISK_FRACTION', '0'], ['FLOTILLA_SLA_AT_RISK_FRACTION', '1.5']] as const) {
      assert.throws(() => loadConfig({ env: { [name]: value }, cwd: tempDir() }), ConfigError, `${name}=${value}`);
    }
    const bad = tempDir();
    writeFileSync(join(bad, 'flotilla.config.yaml'), 'server:\n  sla:\n    P4: 1h\n');
    assert.throws(() => loadConfig({ env: {}, cwd: bad }), /P4/);
  });

  it('precedence: flags over environment over the config file over defaults', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'flotilla.config.yaml'), 'server:\n  port: 7000\n  host: 0.0.0.0\n  leaseMs: 10000\n  database: from-file.db\nagents:\n  - name: security-analyst\n    capabilities: [triage]\n    maxConcurrency: 2\n');
    const fileOnly = loadConfig({ env: {}, cwd: dir });
    assert.equal(fileOnly.port, 7000);
    assert.equal(fileOnly.leaseMs, 10_000);
    assert.equal(fileOnly.databaseUrl, 'from-file.db');
    assert.deepEqual(fileOnly.agents.map((a) => a.name), ['security-analyst']);
    const env = loadConfig({ env: { FLOTILLA_PORT: '7100', FLOTILLA_DATABASE_URL: 'env.db', FLOTILLA_LEASE_MS: '5000' }, cwd: dir });
    assert.equal(env.port, 7100);
    assert.equal(env.databaseUrl, 'env.db');
    assert.equal(env.leaseMs, 5_000);
    assert.equal(env.host, '0.0.0.0');
    const flags = loadConfig({ env: { FLOTILLA_PORT: '7100' }, cwd: dir, flags: { port: 7200, host: '127.0.0.2' } });
    assert.equal(flags.port, 7200);
    assert.equal(flags.host, '127.0.0.2');
    rmSync(dir, { recursive: true });
  });

  it('database URLs: the password never reaches a log line, and ?schema= is Flotilla\'s own', () => {
    const logged = redactUrl('postgres://flotilla:s3cret-pw@db.internal:5432/prod?schema=fleet');
    assert.ok(!logged.includes('s3cret-pw'));
    assert.match(logged, /flotilla:\*\*\*@db\.internal/);
    assert.equal(redactUrl('./flotilla.db'), './flotilla.db');
    assert.deepEqual(parsePostgresUrl('postgres://u@h:5432/db?schema=fleet&sslmode=disable'), { url: 'postgres://u@h:5432/db?sslmode=disable', schema: 'fleet' });
    assert.equal(parsePostgresUrl('postgres://u@h/db').schema, 'public');
    assert.throws(() => parsePostgresUrl('postgres://u@h/db?schema=bad;drop'), /plain identifier/);
  });

  it('rejects bad settings with a clear message', () => {
    const dir = tempDir();
    assert.throws(() => loadConfig({ env: { FLOTILLA_PORT: 'eighty' }, cwd: dir }), (e: unknown) => e instanceof ConfigError && /FLOTILLA_PORT/.test(e.message));
    assert.throws(() => loadConfig({ env: { FLOTILLA_ADMIN_TOKEN: 'short' }, cwd: dir }), ConfigError);
    assert.throws(() => loadConfig({ env: { FLOTILLA_DEFAULT_MAX_ATTEMPTS: '0' }, cwd: dir }), /defaultMaxAttempts/);
    assert.throws(() => loadConfig({ env: { FLOTILLA_MAX_DEPTH: '0' }, cwd: dir }), /maxDepth/);
    assert.throws(() => loadConfig({ env: { FLOTILLA_LEASE_MS: '0' }, cwd: dir }), /leaseMs/);
    assert.throws(() => loadConfig({ env: { FLOTILLA_PORT: '70000' }, cwd: dir }), /port/);
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { configFile: 'missing.yaml' } }), /cannot read config file/);
    writeFileSync(join(dir, 'bad.yaml'), 'agents:\n  - name: x\n    maxConcurrency: 0\n');
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { configFile: 'bad.yaml' } }), /maxConcurrency|must be >= 1/);
    writeFileSync(join(dir, 'typo.yaml'), 'server:\n  prot: 1\n');
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { configFile: 'typo.yaml' } }), /additional properties \(prot\)/);
    assert.throws(() => loadConfig({ env: { FLOTILLA_ALLOW_EQUAL_LEVEL: 'maybe' }, cwd: dir }), /FLOTILLA_ALLOW_EQUAL_LEVEL/);
    writeFileSync(join(dir, 'tools.yaml'), 'agents:\n  - name: a\n    tools: ["web:*", "flotilla:other"]\n');
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { configFile: 'tools.yaml' } }), /\/agents\/a\/tools\/1 "flotilla:other" names no Flotilla tool/);
    writeFileSync(join(dir, 'pattern.yaml'), 'agents:\n  - name: a\n    tools: ["web:se*"]\n');
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { configFile: 'pattern.yaml' } }), /tools\/0 must match pattern/);
    writeFileSync(join(dir, 'twice.yaml'), 'agents:\n  - name: a\n  - name: a\n');
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { configFile: 'twice.yaml' } }), /twice/);
    writeFileSync(join(dir, 'broken.yaml'), 'agents: [\n');
    assert.throws(() => loadConfig({ env: {}, cwd: dir, flags: { configFile: 'broken.yaml' } }), /not valid YAML/);
    rmSync(dir, { recursive: true });
  });

  it('agents declared in the config file exist after start, and a restart updates them', async () => {
    const dir = tempDir();
    const store = await openStore({ url: join(dir, 'f.db') });
    const log = pino({ level: 'silent' });
    const config = { ...DEFAULT_CONFIG, adminToken: 'x'.repeat(20), agents: [{ name: 'threat-hunter', capabilities: ['hunt'], maxConcurrency: 4 }] };
    const engine = new Engine({ store, config, log });
    await engine.start();
    await engine.stop();
    const again = new Engine({ store, config: { ...config, agents: [{ name: 'threat-hunter', capabilities: ['hunt', 'pivot'], maxConcurrency: 4, level: 2, tools: ['web:*'], maxDepth: 2 }] }, log });
    await again.start();
    const agent = await store.agentGet({ name: 'threat-hunter' });
    assert.deepEqual([agent?.capabilities, agent?.level, agent?.tools, agent?.maxDepth], [['hunt', 'pivot'], 2, ['web:*'], 2]);
    await again.stop();
    await store.close();
    rmSync(dir, { recursive: true });
  });
});

describe('bootstrap admin token', () => {
  it('is generated once when none is configured, and only its hash is stored', async () => {
    const dir = tempDir();
    const store = await openStore({ url: join(dir, 'f.db') });
    let n = 0;
    const newId = () => `key-${n++}`;
    const token = await ensureAdminKey({ store, configured: null, now: 1, newId });
    assert.match(token ?? '', /^flt_[A-Za-z0-9_-]{40,}$/);
    assert.equal(await ensureAdminKey({ store, configured: null, now: 2, newId }), null, 'not generated again');
    assert.equal(await store.apiKeyCount(), 1);
    const key = await store.apiKeyFindByHash({ hash: hashToken(token!) });
    assert.equal(key?.role, 'admin');
    await store.close();
    assert.ok(!readFileSync(join(dir, 'f.db')).includes(Buffer.from(token!)), 'the token itself is not in the database file');
    rmSync(dir, { recursive: true });
  });

  it('the server prints a generated token once, and it works; a restart does not print it again', async () => {
    const dir = tempDir();
    const env = { FLOTILLA_ADMIN_TOKEN: '' };
    const first = await startServerProcess({ database: join(dir, 'f.db'), env });
    const token = /(flt_[A-Za-z0-9_-]+)/.exec(first.output())?.[1];
    assert.ok(token, 'token printed');
    const ok = await fetch(`${first.url}/api/v1/agents`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.ok(!/"level".*flt_/.test(first.output()), 'the token never goes through the logger');
    await first.kill('SIGTERM');
    const second = await startServerProcess({ database: join(dir, 'f.db'), env });
    assert.ok(!/flt_/.test(second.output()));
    assert.equal((await fetch(`${second.url}/api/v1/agents`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    await second.kill('SIGTERM');
    rmSync(dir, { recursive: true });
  });
});

describe('cli', () => {
  it('help, version, and exit code 2 for usage errors', async () => {
    const help = await run(process.execPath, [CLI, '--help']);
    assert.match(help.stdout, /flotilla serve/);
    assert.match((await run(process.execPath, [CLI, 'version'])).stdout, /^\d+\.\d+\.\d+/);
    await assert.rejects(run(process.execPath, [CLI, 'frobnicate']), (e: { code?: number; stderr?: string }) => e.code === 2 && /unknown command/.test(e.stderr ?? ''));
    await assert.rejects(run(process.execPath, [CLI, 'serve', '--bogus']), (e: { code?: number }) => e.code === 2);
    await assert.rejects(run(process.execPath, [CLI, 'serve', '--port', 'abc']), (e: { code?: number; stderr?: string }) => e.code === 2 && /--port/.test(e.stderr ?? ''));
  });

  it('SIGTERM shuts the server down cleanly', async () => {
    const dir = tempDir();
    const server = await startServerProcess({ database: join(dir, 'f.db') });
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal(await server.kill('SIGTERM'), 0);
    rmSync(dir, { recursive: true });
  });
});
