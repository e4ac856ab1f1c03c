// The SDK's API key, scoped token and audit calls against a real `flotilla serve` process:
// keys limit what their holders may do and stop working when revoked, tokens carry only their
// scopes and agents, and the audit log pages and filters.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TOKEN } from '../../server/test/helpers/harness.ts';
import { startServerProcess, type ServerProcess } from '../../server/test/helpers/server-process.ts';
import type { AuditEntryView, ErrorCode } from '../src/index.ts';
import { Flotilla, FlotillaApiError, isFlotillaError } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-sdk-security-'));
let server: ServerProcess;
let admin: Flotilla;

/** Awaits `promise`, which must reject with a FlotillaApiError of `code` and `status`. */
async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, status: number): Promise<FlotillaApiError> {
  const err = await promise.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof FlotillaApiError, `expected ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.status, status);
  return err;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

before(async () => {
  server = await startServerProcess({ database: join(dir, 'security.db') });
  admin = new Flotilla({ url: server.url, token: TOKEN, timeoutMs: 10_000 });
  await Promise.all(['sec-echo', 'sec-other'].map((name) => admin.agents.create({ name })));
});

after(async () => {
  await server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('Flotilla client: keys, tokens, audit', () => {
  it('a viewer key reads but cannot submit, is listed without its secret, and is refused once revoked', async () => {
    const created = await admin.keys.create({ name: 'sdk-viewer', role: 'viewer' });
    assert.match(created.token, /^flt_/);
    assert.equal(created.key.name, 'sdk-viewer');
    assert.equal(created.key.role, 'viewer');
    assert.equal(created.key.status, 'active');
    assert.equal(created.key.agents, null);
    assert.equal(created.key.revokedAt, null);

    const viewer = admin.withToken(created.token);
    assert.deepEqual((await viewer.agents.list()).map((a) => a.name).sort(), ['sec-echo', 'sec-other']);
    await rejectsWith(viewer.tasks.submit({ agent: 'sec-echo' }), 'FORBIDDEN', 403);
    await rejectsWith(viewer.keys.list(), 'FORBIDDEN', 403);

    const listed = await admin.keys.list();
    const mine = listed.find((k) => k.id === created.key.id);
    assert.ok(mine, 'the new key is listed');
    assert.equal(mine.name, 'sdk-viewer');
    assert.equal(mine.status, 'active');
    assert.ok(mine.lastUsedAt !== null, 'the viewer used its key');
    for (const k of listed) {
      assert.ok(!('token' in k) && !('hash' in k), `key ${k.id} carries no secret`);
    }
    assert.ok(!JSON.stringify(listed).includes(created.token), 'the secret is not in the listing');
    assert.ok(!JSON.stringify(listed).includes(created.token.slice(4)), 'nor any form of it');
    assert.equal((await admin.keys.get(created.key.id)).name, 'sdk-viewer');

    const revoked = await admin.keys.revoke(created.key.id);
    assert.equal(revoked.id, created.key.id);
    assert.equal(revoked.status, 'revoked');
    assert.ok(revoked.revokedAt !== null);
    const again = await admin.keys.revoke(created.key.id);
    assert.equal(again.status, 'revoked');
    assert.equal(again.revokedAt, revoked.revokedAt, 'revoking twice is revoking once');

    await rejectsWith(viewer.overview(), 'UNAUTHENTICATED', 401);
    assert.equal((await admin.keys.list()).some((k) => k.id === created.key.id), false, 'revoked keys are hidden by default');
    const all = await admin.keys.list({ includeRevoked: true });
    assert.equal(all.find((k) => k.id === created.key.id)?.status, 'revoked');
  });

  it('agent keys name their agents; unknown ids are KEY_NOT_FOUND; the last admin key stays', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const agentKey = await admin.keys.create({ name: 'sdk-workers', role: 'agent', agents: ['sec-echo'], expiresAt });
    assert.deepEqual(agentKey.key.agents, ['sec-echo']);
    assert.equal(agentKey.key.expiresAt, expiresAt);
    await rejectsWith(admin.keys.create({ name: 'no-agents', role: 'agent' }), 'VALIDATION_FAILED', 400);

    const missing = await rejectsWith(admin.keys.get('no-such-key'), 'KEY_NOT_FOUND', 404);
    assert.ok(isFlotillaError(missing, 'KEY_NOT_FOUND'));
    await rejectsWith(admin.keys.revoke('no-such-key'), 'KEY_NOT_FOUND', 404);

    const admins = (await admin.keys.list()).filter((k) => k.role === 'admin' && k.status === 'active');
    assert.equal(admins.length, 1);
    await rejectsWith(admin.keys.revoke(admins[0]!.id), 'INVALID_TRANSITION', 409);
  });

  it('a scoped token carries its scopes and agents, renews with the same id, and is refused once revoked', async () => {
    const issued = await admin.tokens.issue({ scopes: ['task.submit', 'task.read'], agents: ['sec-echo'], ttlSeconds: 600, name: 'sdk-pipeline' });
    assert.deepEqual([...issued.scopes].sort(), ['task.read', 'task.submit']);
    assert.deepEqual(issued.agents, ['sec-echo']);
    assert.equal(issued.rootTaskId, null);
    const ttl = Date.parse(issued.expiresAt) - Date.now();
    assert.ok(ttl > 590_000 && ttl <= 600_000, `expires in ${ttl} ms`);

    const scoped = admin.withToken(issued.token);
    const task = await scoped.tasks.submit({ agent: 'sec-echo', input: { from: 'token' } });
    assert.equal((await scoped.tasks.get(task.id)).id, task.id);
    await rejectsWith(scoped.tasks.submit({ agent: 'sec-other' }), 'FORBIDDEN', 403);
    await rejectsWith(scoped.tasks.cancel(task.id), 'FORBIDDEN', 403);
    await rejectsWith(scoped.tokens.issue({ scopes: ['task.read'] }), 'FORBIDDEN', 403);
    // An API key is not a scoped token: there is nothing to renew.
    await rejectsWith(admin.tokens.renew(), 'VALIDATION_FAILED', 400);

    const renewed = await scoped.tokens.renew();
    assert.equal(renewed.id, issued.id);
    assert.deepEqual(renewed.scopes, issued.scopes);
    assert.deepEqual(renewed.agents, ['sec-echo']);
    assert.equal(renewed.maxExpiresAt, issued.maxExpiresAt);
    assert.ok(Date.parse(renewed.expiresAt) >= Date.parse(issued.expiresAt));
    const renewedClient = scoped.withToken(renewed.token);
    assert.equal((await renewedClient.tasks.get(task.id)).id, task.id);

    await admin.tokens.revoke(issued.id);
    await admin.tokens.revoke(issued.id); // idempotent
    await rejectsWith(renewedClient.tasks.get(task.id), 'UNAUTHENTICATED', 401);
    await rejectsWith(scoped.tasks.get(task.id), 'UNAUTHENTICATED', 401);
  });

  it('audit.list walks every page newest first and filters by principal, outcome, action and time', async () => {
    const since = new Date(Date.now() - 1);
    const created = await admin.keys.create({ name: 'sdk-audited', role: 'viewer' });
    const viewer = admin.withToken(created.token);
    for (let i = 0; i < 3; i++) await rejectsWith(viewer.tasks.submit({ agent: 'sec-echo' }), 'FORBIDDEN', 403);
    await viewer.overview(); // an allowed read: not audited

    const first = await admin.audit.page({ limit: 2 });
    assert.equal(first.items.length, 2);
    assert.ok(first.nextBefore !== null);
    const second = await admin.audit.page({ limit: 2, before: first.nextBefore });
    assert.ok(second.items.every((e) => e.seq < first.items[1]!.seq), 'the next page is older');

    const everything = (await admin.audit.page({ limit: 1000 })).items;
    assert.ok(everything.length > 4, `${everything.length} entries`);
    const walked = await collect(admin.audit.list({ limit: 2 }));
    assert.deepEqual(walked.map((e) => e.seq), everything.map((e) => e.seq));
    assert.ok(walked.every((e, i) => i === 0 || e.seq < walked[i - 1]!.seq), 'newest first');

    const byViewer = await collect(admin.audit.list({ principalId: created.key.id, limit: 2 }));
    assert.equal(byViewer.length, 3, JSON.stringify(byViewer));
    for (const e of byViewer) {
      assert.deepEqual(
        [e.outcome, e.status, e.action, e.role, e.principalName],
        ['denied', 403, 'task.submit', 'viewer', 'sdk-audited'],
      );
    }

    const denied = await collect(admin.audit.list({ outcome: 'denied', limit: 2 }));
    assert.ok(denied.length >= 3 && denied.every((e: AuditEntryView) => e.outcome === 'denied'));
    assert.deepEqual(denied.filter((e) => e.principalId === created.key.id).map((e) => e.seq), byViewer.map((e) => e.seq));
    const allowed = await collect(admin.audit.list({ outcome: 'allowed' }));
    assert.ok(allowed.length > 0 && allowed.every((e) => e.outcome === 'allowed'));
    assert.ok(!allowed.some((e) => e.principalId === created.key.id));

    const creations = await collect(admin.audit.list({ action: 'key.manage', since }));
    assert.equal(creations.length, 1, JSON.stringify(creations));
    assert.equal(creations[0]!.status, 201);

    const inWindow = await collect(admin.audit.list({ principalId: created.key.id, since, until: new Date().toISOString() }));
    assert.equal(inWindow.length, 3);
    assert.deepEqual(await collect(admin.audit.list({ principalId: created.key.id, until: new Date(since.getTime() - 1_000) })), []);
    await rejectsWith(viewer.audit.page(), 'FORBIDDEN', 403);
  });
});
