// Who may declare and read tool domains, and which secrets a declaration may name (review of
// issue 15, finding 1 and 4). A declaration names a URL the server connects to with secrets,
// or a command the server runs: only an admin may make one over the API, a worker may not read
// them, and a secret reference names only a FLOTILLA_SECRET_* variable, so neither a tool
// domain nor an A2A agent can send the server's own secrets (FLOTILLA_ADMIN_TOKEN) away.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;

for (const store of stores) describe(`tool domain security (${store})`, () => {
  let h: Harness;
  const tokens: Record<string, string> = {};
  const as = (role: string) => ({ authorization: `Bearer ${tokens[role]}` });
  before(async () => {
    h = await harness({ store, config: { mcpHealthIntervalMs: 3_600_000 } });
    tokens.operator = (await h.api('POST', '/keys', { name: 'ops', role: 'operator' })).body.token;
    tokens.viewer = (await h.api('POST', '/keys', { name: 'dash', role: 'viewer' })).body.token;
    tokens.agent = (await h.api('POST', '/keys', { name: 'worker', role: 'agent', agents: ['x'] })).body.token;
  });
  after(() => h.close());

  it('only an admin declares, replaces or removes a tool domain; an operator is 403 and changes nothing', async () => {
    const stdio = await h.api('PUT', '/tool-domains/shell', { command: 'sh', args: ['-c', 'touch /tmp/flotilla-must-not-exist'] }, as('operator'));
    assert.equal(stdio.status, 403);
    assert.equal(stdio.body.error.code, 'FORBIDDEN');
    assert.equal((await h.api('PUT', '/tool-domains/web', { url: 'http://127.0.0.1:1/mcp' }, as('operator'))).status, 403);
    assert.deepEqual((await h.api('GET', '/tool-domains')).body.items, []);
    // An admin may, stdio included; then the operator may neither replace nor delete it.
    assert.equal((await h.api('PUT', '/tool-domains/web', { url: 'http://127.0.0.1:1/mcp' })).status, 201);
    assert.equal((await h.api('PUT', '/tool-domains/web', { url: 'http://127.0.0.1:2/mcp' }, as('operator'))).status, 403);
    assert.equal((await h.api('DELETE', '/tool-domains/web', undefined, as('operator'))).status, 403);
    assert.equal((await h.api('GET', '/tool-domains/web')).body.url, 'http://127.0.0.1:1/mcp');
    // The admin's declaration is in the request audit.
    const audit = (await h.api('GET', '/audit?limit=50')).body.items as Array<{ action: string; outcome: string; role: string; target: string }>;
    assert.ok(audit.some((e) => e.action === 'tool_domain.manage' && e.outcome === 'allowed' && e.role === 'admin' && e.target === 'name:web'));
    assert.ok(audit.some((e) => e.action === 'tool_domain.manage' && e.outcome === 'denied' && e.role === 'operator'));
    assert.equal((await h.api('DELETE', '/tool-domains/web')).status, 200);
  });

  it('workers (and viewers) do not read declarations; operators do', async () => {
    for (const role of ['agent', 'viewer']) {
      for (const url of ['/tool-domains', '/tool-domains/x', '/mcp/health']) assert.equal((await h.api('GET', url, undefined, as(role))).status, 403, `${role} ${url}`);
    }
    assert.equal((await h.api('GET', '/tool-domains', undefined, as('operator'))).status, 200);
  });

  it('shows a URL without its credentials', async () => {
    assert.equal((await h.api('PUT', '/tool-domains/cred', { url: 'http://user:hunter2@127.0.0.1:1/mcp?x=1' })).status, 201);
    const view = (await h.api('GET', '/tool-domains/cred')).body;
    assert.equal(view.url, 'http://***@127.0.0.1:1/mcp?x=1');
    assert.ok(!JSON.stringify((await h.api('GET', '/tool-domains')).body).includes('hunter2'));
    await h.api('DELETE', '/tool-domains/cred');
  });

  it('refuses a secret reference to any variable but FLOTILLA_SECRET_*, for a tool domain and for an a2a agent: 400, nothing stored', async () => {
    for (const name of ['FLOTILLA_ADMIN_TOKEN', 'PATH']) {
      const headers = { authorization: { env: name } };
      const domain = await h.api('PUT', '/tool-domains/leak', { url: 'http://127.0.0.1:1/mcp', headers });
      assert.equal(domain.status, 400, name);
      assert.equal(domain.body.error.code, 'VALIDATION_FAILED');
      const stdio = await h.api('PUT', '/tool-domains/leak', { command: 'true', env: { TOKEN: { env: name } } });
      assert.equal(stdio.status, 400, name);
      assert.equal(stdio.body.error.code, 'VALIDATION_FAILED');
      const agent = await h.api('POST', '/agents', { name: 'leaky', runtime: 'a2a', a2a: { url: 'http://127.0.0.1:1', headers } });
      assert.equal(agent.status, 400, name);
      assert.equal(agent.body.error.code, 'VALIDATION_FAILED');
    }
    assert.equal((await h.api('GET', '/tool-domains/leak')).status, 404);
    assert.equal((await h.api('GET', '/agents/leaky')).status, 404);
    // A FLOTILLA_SECRET_ name is accepted.
    assert.equal((await h.api('PUT', '/tool-domains/ok', { url: 'http://127.0.0.1:1/mcp', headers: { authorization: { env: 'FLOTILLA_SECRET_OK' } } })).status, 201);
    await h.api('DELETE', '/tool-domains/ok');
  });
});

describe('secret references in the config file', () => {
  function load(yaml: string) {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-mcp-security-'));
    writeFileSync(join(dir, 'flotilla.config.yaml'), yaml);
    return loadConfig({ cwd: dir, env: {} });
  }
  it('refuses a reference to FLOTILLA_ADMIN_TOKEN or PATH, in a tool domain and in an a2a agent', () => {
    for (const name of ['FLOTILLA_ADMIN_TOKEN', 'PATH']) {
      assert.throws(() => load(`toolDomains:\n  - name: web\n    url: http://127.0.0.1:1/mcp\n    headers: { A: { env: ${name} } }\n`), ConfigError, name);
      assert.throws(() => load(`toolDomains:\n  - name: m\n    command: x\n    env: { A: { env: ${name} } }\n`), ConfigError, name);
      assert.throws(() => load(`agents:\n  - name: remote\n    runtime: a2a\n    a2a:\n      url: http://127.0.0.1:9400\n      headers: { A: { env: ${name} } }\n`), ConfigError, name);
    }
    assert.equal(load('toolDomains:\n  - name: web\n    url: http://127.0.0.1:1/mcp\n    headers: { A: { env: FLOTILLA_SECRET_A } }\n').toolDomains.length, 1);
  });
});
