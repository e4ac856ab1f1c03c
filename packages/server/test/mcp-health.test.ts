// How a tool domain's check fails, each a domain down with the cause in its health row: a URL
// nobody listens on, a command that is not an MCP server (the check times out), a command that
// does not exist, a header naming an environment variable that is not set (the secret is never
// guessed or sent empty). A domain replaced over the API is checked afresh; one removed leaves
// /mcp/health and is no longer down for anyone. SQLite (the store side is in the conformance
// suite and in mcp-domain-down.test.ts on both stores).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from './helpers/harness.ts';
import { EVERYTHING, freePort, PROBE } from './fixtures/mcp/servers.ts';

describe('tool domain checks that fail', () => {
  let h: Harness;
  before(async () => {
    delete process.env.FLOTILLA_SECRET_TEST_UNSET;
    h = await harness({ config: { mcpHealthIntervalMs: 3_600_000, mcpHealthTimeoutMs: 1_500 } });
    const closed = await freePort();
    assert.equal((await h.api('PUT', '/tool-domains/refused', { url: `http://127.0.0.1:${closed}/mcp` })).status, 201);
    assert.equal((await h.api('PUT', '/tool-domains/silent', { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] })).status, 201);
    assert.equal((await h.api('PUT', '/tool-domains/missing', { command: '/nonexistent/mcp-server' })).status, 201);
    assert.equal((await h.api('PUT', '/tool-domains/unset', { command: EVERYTHING, args: ['stdio'], env: { TOKEN: { env: 'FLOTILLA_SECRET_TEST_UNSET' } } })).status, 201);
  });
  after(() => h.close());

  it('marks each down, once, with why', async () => {
    const before = (await h.api('GET', '/mcp/health')).body.items as Array<{ status: string }>;
    assert.ok(before.every((r) => r.status === 'unknown'), 'not checked yet');
    const events = await h.engine.mcp.health.sweep();
    assert.deepEqual(events.map((e) => [e.type, e.data.domain]).sort(), [['mcp.domain_down', 'missing'], ['mcp.domain_down', 'refused'], ['mcp.domain_down', 'silent'], ['mcp.domain_down', 'unset']]);
    const rows = new Map(((await h.api('GET', '/mcp/health')).body.items as Array<{ name: string; status: string; lastError: string; checkedAt: string }>).map((r) => [r.name, r]));
    for (const row of rows.values()) {
      assert.equal(row.status, 'down');
      assert.notEqual(row.checkedAt, null);
      assert.ok(row.lastError.length > 0);
    }
    assert.match(rows.get('unset')!.lastError, /FLOTILLA_SECRET_TEST_UNSET.*not set/);
    assert.match(rows.get('silent')!.lastError, /timed out|timeout/i);
    assert.deepEqual((await h.api('GET', '/overview')).body.toolDomains.downDomains, ['missing', 'refused', 'silent', 'unset']);
    // Down again: no new events.
    assert.deepEqual(await h.engine.mcp.health.sweep(), []);
  });

  it('checks a replaced domain afresh, and forgets a removed one', async () => {
    // The never-answering ones go first, so the longer timeout below waits on none of them.
    for (const name of ['missing', 'refused', 'silent']) assert.equal((await h.api('DELETE', `/tool-domains/${name}`)).status, 200);
    process.env.FLOTILLA_SECRET_TEST_UNSET = 'now-set';
    // The 1.5 s timeout is for the servers that never answer; starting the everything server
    // takes longer on a loaded machine, so this check gets a timeout no load reaches (the
    // engine reads the config object at each check).
    (h.config as { mcpHealthTimeoutMs: number }).mcpHealthTimeoutMs = 60_000;
    try {
      assert.equal((await h.api('PUT', '/tool-domains/unset', { command: EVERYTHING, args: ['stdio'], env: { TOKEN: { env: 'FLOTILLA_SECRET_TEST_UNSET' } } })).status, 200);
      const events = await h.engine.mcp.health.sweep();
      assert.deepEqual(events.map((e) => [e.type, e.data.domain]), [['mcp.domain_up', 'unset']]);
    } finally {
      delete process.env.FLOTILLA_SECRET_TEST_UNSET;
    }
    assert.deepEqual(((await h.api('GET', '/mcp/health')).body.items as Array<{ name: string; status: string }>).map((r) => [r.name, r.status]), [['unset', 'up']]);
    assert.deepEqual([...h.engine.mcp.health.down()], []);
    // Removing and declaring is an admin's action, audited like the others.
    await h.engine.audit.flush();
    const audited = (await h.api('GET', '/audit?action=tool_domain.manage')).body.items as Array<{ target: string }>;
    assert.ok(audited.some((e) => e.target === 'name:silent'));
  });
});

describe('the health snapshot against a stale read', () => {
  it('a refresh whose read began before an mcp.domain_up event does not set the domain back down', async () => {
    const h = await harness({ config: { mcpHealthIntervalMs: 3_600_000, mcpHealthTimeoutMs: 60_000 } });
    try {
      assert.equal((await h.api('PUT', '/tool-domains/flip', { command: '/nonexistent/mcp-server' })).status, 201);
      await h.engine.mcp.health.sweep();
      assert.ok(h.engine.mcp.health.down().has('flip'));
      // Hold the next refresh after its read (the real store answers; only the return waits).
      const store = h.engine.ctx.store;
      const real = store.toolDomainList;
      let arrived!: () => void;
      const inside = new Promise<void>((resolve) => (arrived = resolve));
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      store.toolDomainList = async () => {
        const rows = await real.call(store);
        store.toolDomainList = real;
        arrived();
        await gate;
        return rows;
      };
      const stale = h.engine.mcp.health.refresh();
      await inside;
      // Meanwhile the domain's check succeeds (here: the same declaration, its server started).
      const record = h.engine.mcp.health.domains().get('flip')!;
      const events = await h.engine.mcp.health.check({ ...record, spec: { name: 'flip', ...PROBE } });
      assert.deepEqual(events.map((e) => e.type), ['mcp.domain_up']);
      assert.equal(h.engine.mcp.health.down().has('flip'), false);
      open();
      await stale;
      assert.equal(h.engine.mcp.health.down().has('flip'), false, 'the stale read did not win');
      assert.equal(h.engine.mcp.health.domains().get('flip')!.health.status, 'up');
    } finally {
      await h.close();
    }
  });
});
