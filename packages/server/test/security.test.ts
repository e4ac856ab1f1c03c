// Roles, API keys, scoped tokens, isolation and the audit log, in process.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from './helpers/harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await harness({ config: { leaseMs: 30_000, replicaTtlMs: 60_000 } });
  await h.agent({ name: 'analyst' });
  // A level below the analyst's: analysts delegate to writers (core/delegation.ts).
  await h.agent({ name: 'writer', level: 2 });
});
afterEach(() => h.close());

async function key(role: string, extra: Record<string, unknown> = {}): Promise<{ id: string; token: string }> {
  const res = await h.api('POST', '/keys', { name: `${role} key`, role, ...extra });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { id: res.body.key.id, token: res.body.token };
}

const as = (token: string) => ({ authorization: `Bearer ${token}` });
const count = async () => (await h.store.taskCountByStatus({})).pending;
async function auditEntries(query = '') {
  return (await h.api('GET', `/audit${query}`)).body.items as Array<Record<string, any>>;
}

describe('roles', () => {
  it("a viewer's submit is 403 and creates nothing; a viewer reads everything", async () => {
    const viewer = await key('viewer');
    const before = await count();
    const res = await h.api('POST', '/tasks', { agent: 'analyst' }, as(viewer.token));
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'FORBIDDEN');
    assert.equal(await count(), before);
    const task = await h.submit({ agent: 'analyst' });
    assert.equal((await h.api('GET', `/tasks/${task.id}`, undefined, as(viewer.token))).status, 200);
    assert.equal((await h.api('POST', `/tasks/${task.id}/cancel`, {}, as(viewer.token))).status, 403);
    assert.equal((await h.task(task.id)).status, 'pending');
  });

  it('an operator submits, cancels, retries and manages agents, but cannot manage keys or read the audit log', async () => {
    const operator = await key('operator');
    const created = await h.api('POST', '/tasks', { agent: 'analyst' }, as(operator.token));
    assert.equal(created.status, 201);
    assert.equal((await h.api('POST', `/tasks/${created.body.id}/cancel`, {}, as(operator.token))).status, 200);
    assert.equal((await h.api('POST', '/agents', { name: 'new-agent' }, as(operator.token))).status, 201);
    assert.equal((await h.api('POST', '/keys', { name: 'x', role: 'admin' }, as(operator.token))).status, 403);
    assert.equal((await h.api('GET', '/audit', undefined, as(operator.token))).status, 403);
  });
});

describe('agent keys', () => {
  it("can only work for their own agents: another agent's replica, lease and assignments are refused", async () => {
    const mine = await key('agent', { agents: ['analyst'] });
    assert.equal((await h.api('POST', '/workers/register', { agent: 'writer' }, as(mine.token))).status, 403);
    const reg = await h.api('POST', '/workers/register', { agent: 'analyst' }, as(mine.token));
    assert.equal(reg.status, 201);

    // A writer replica (registered by an admin) holding a writer task.
    const writerReplica = await h.register('writer');
    const writerTask = await h.submit({ agent: 'writer' });
    const [leased] = await h.lease(writerReplica);
    assert.ok(leased);
    const lease = await h.api('POST', `/workers/${writerReplica}/lease`, { waitMs: 0 }, as(mine.token));
    assert.equal(lease.status, 403);
    for (const op of ['start', 'complete', 'heartbeat', 'cancelled']) {
      const res: { status: number } = await h.api('POST', `/assignments/${leased.assignmentId}/${op}`, { replicaId: writerReplica }, as(mine.token));
      assert.equal(res.status, 403, `${op} on another agent's assignment`);
    }
    assert.equal((await h.task(writerTask.id)).status, 'dispatched', 'nothing changed');
    // Agent keys submit nothing directly and read no tasks.
    assert.equal((await h.api('POST', '/tasks', { agent: 'analyst' }, as(mine.token))).status, 403);
    assert.equal((await h.api('GET', `/tasks/${writerTask.id}`, undefined, as(mine.token))).status, 403);
  });

  it('each assignment hands out a token for its own tree: children are created as the tree, nothing else', async () => {
    const operator = await key('operator');
    const worker = await key('agent', { agents: ['analyst'] });
    const replica = (await h.api('POST', '/workers/register', { agent: 'analyst' }, as(worker.token))).body.replica.id;
    const parent = (await h.api('POST', '/tasks', { agent: 'analyst' }, as(operator.token))).body;
    const other = await h.submit({ agent: 'writer' });
    const leased = (await h.api('POST', `/workers/${replica}/lease`, { waitMs: 0 }, as(worker.token))).body.assignments[0];
    assert.equal(leased.task.id, parent.id);
    const issued = await h.api('POST', `/assignments/${leased.assignmentId}/token`, { replicaId: replica }, as(worker.token));
    assert.equal(issued.status, 201);
    assert.deepEqual(issued.body.scopes, ['task.submit', 'task.read', 'task.answer']);
    assert.equal(issued.body.rootTaskId, parent.id);
    const tree = as(issued.body.token);

    const child = await h.api('POST', '/tasks', { agent: 'writer', parentId: parent.id }, tree);
    assert.equal(child.status, 201);
    const childRecord = await h.store.taskGet({ id: child.body.id });
    assert.equal(childRecord!.rootId, parent.id);
    const parentRecord = await h.store.taskGet({ id: parent.id });
    assert.equal(childRecord!.ownerId, parentRecord!.ownerId, 'the child belongs to the tree owner, not the worker');
    // Outside the tree: refused and nothing created.
    const before = await count();
    assert.equal((await h.api('POST', '/tasks', { agent: 'writer' }, tree)).status, 403);
    assert.equal((await h.api('POST', '/tasks', { agent: 'writer', parentId: other.id }, tree)).status, 422);
    assert.equal(await count(), before);
    assert.equal((await h.api('GET', `/tasks/${other.id}`, undefined, tree)).status, 404, 'outside the tree is invisible');
    assert.equal((await h.api('GET', `/tasks/${child.body.id}`, undefined, tree)).status, 200);
    const listed = (await h.api('GET', '/tasks', undefined, tree)).body.items.map((t: { id: string }) => t.id).sort();
    assert.deepEqual(listed, [parent.id, child.body.id].sort());
    // The token dies with the attempt.
    assert.equal((await h.api('POST', `/assignments/${leased.assignmentId}/complete`, { replicaId: replica }, as(worker.token))).status, 200);
    const late = await h.api('POST', '/tasks', { agent: 'writer', parentId: parent.id }, tree);
    assert.equal(late.status, 403);
    assert.match(late.body.error.message, /has ended/);
  });
});

describe('API keys', () => {
  it('are shown once, stored hashed, listed without secrets, and stop working when revoked or expired', async () => {
    const created = await h.api('POST', '/keys', { name: 'ci', role: 'operator', expiresAt: new Date(h.now() + 60_000).toISOString() });
    assert.equal(created.status, 201);
    assert.match(created.body.token, /^flt_/);
    const stored = await h.store.apiKeyGet({ id: created.body.key.id });
    assert.notEqual(stored!.hash, created.body.token);
    const listed = await h.api('GET', '/keys');
    assert.ok(!JSON.stringify(listed.body).includes(created.body.token), 'the list never shows a secret');
    assert.equal(listed.body.items.find((k: { id: string }) => k.id === created.body.key.id).status, 'active');
    assert.equal((await h.api('GET', '/overview', undefined, as(created.body.token))).status, 200);
    const lastUsed = await h.api('GET', `/keys/${created.body.key.id}`);
    assert.ok(lastUsed.body.lastUsedAt, 'last use is recorded');

    h.advance(61_000);
    const expired = await h.api('GET', '/overview', undefined, as(created.body.token));
    assert.equal(expired.status, 401);
    assert.equal((await h.api('GET', `/keys/${created.body.key.id}`)).body.status, 'expired');

    const other = await key('viewer');
    assert.equal((await h.api('GET', '/overview', undefined, as(other.token))).status, 200);
    const revoked = await h.api('POST', `/keys/${other.id}/revoke`);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.status, 'revoked');
    assert.equal((await h.api('GET', '/overview', undefined, as(other.token))).status, 401, 'refused at once on this node');
    assert.equal((await h.api('POST', `/keys/${other.id}/revoke`)).status, 200, 'idempotent');
  });

  it('refuses bad key requests with stable codes and creates nothing', async () => {
    const before = (await h.store.apiKeyList({ includeRevoked: true })).length;
    for (const body of [
      { name: 'x', role: 'root' },
      { name: 'x', role: 'agent' },
      { name: 'x', role: 'viewer', agents: ['analyst'] },
      { name: 'x', role: 'viewer', expiresAt: '2001-01-01T00:00:00Z' },
      { name: '', role: 'viewer' },
      { name: 'x', role: 'viewer', extra: 1 },
    ]) {
      const res = await h.api('POST', '/keys', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    }
    assert.equal((await h.api('GET', '/keys/nope')).body.error.code, 'KEY_NOT_FOUND');
    assert.equal((await h.store.apiKeyList({ includeRevoked: true })).length, before);
  });

  it('the last active admin key cannot be revoked', async () => {
    const admins = (await h.api('GET', '/keys')).body.items.filter((k: { role: string }) => k.role === 'admin');
    assert.equal(admins.length, 1);
    const res = await h.api('POST', `/keys/${admins[0].id}/revoke`);
    assert.equal(res.status, 409);
    assert.equal((await h.api('GET', '/overview')).status, 200);
  });
});

describe('scoped tokens', () => {
  it('carry a subset of the issuer, bounded to agents; renew up to the maximum lifetime; revoke', async () => {
    const operator = await key('operator');
    const viewer = await key('viewer');
    assert.equal((await h.api('POST', '/tokens', { scopes: ['task.read'] }, as(viewer.token))).status, 403, 'viewers issue no tokens');
    const issued = await h.api('POST', '/tokens', { scopes: ['task.submit', 'task.read'], agents: ['analyst'], ttlSeconds: 600, maxLifetimeSeconds: 900 }, as(operator.token));
    assert.equal(issued.status, 201);
    const t = as(issued.body.token);
    const ok = await h.api('POST', '/tasks', { agent: 'analyst' }, t);
    assert.equal(ok.status, 201);
    assert.equal((await h.api('POST', '/tasks', { agent: 'writer' }, t)).status, 403, 'not an allowed agent');
    assert.equal((await h.api('POST', `/tasks/${ok.body.id}/cancel`, {}, t)).status, 403, 'no task.cancel scope');
    // Isolation: it sees the trees it created, not others'.
    const foreign = await h.submit({ agent: 'analyst' });
    assert.equal((await h.api('GET', `/tasks/${foreign.id}`, undefined, t)).status, 404);
    assert.deepEqual((await h.api('GET', '/tasks', undefined, t)).body.items.map((x: { id: string }) => x.id), [ok.body.id]);

    h.advance(500_000);
    const renewed = await h.api('POST', '/tokens/renew', undefined, t);
    assert.equal(renewed.status, 201);
    assert.equal(renewed.body.id, issued.body.id, 'same token id across renewals');
    assert.equal(renewed.body.expiresAt, issued.body.maxExpiresAt, 'capped by the maximum lifetime');
    h.advance(200_000);
    assert.equal((await h.api('GET', '/tasks', undefined, t)).status, 401, 'the first token expired');
    const r = as(renewed.body.token);
    assert.equal((await h.api('GET', '/tasks', undefined, r)).status, 200);

    assert.equal((await h.api('POST', `/tokens/${issued.body.id}/revoke`, undefined, as(operator.token))).status, 200);
    assert.equal((await h.api('GET', '/tasks', undefined, r)).status, 401, 'revoking the id revokes every renewal');
  });

  it('cannot exceed the issuer: tokens die with the issuing key; tokens cannot issue tokens', async () => {
    const operator = await key('operator');
    assert.equal((await h.api('POST', '/tokens', { scopes: ['task.submit'] }, as(operator.token))).status, 201);
    const issued = (await h.api('POST', '/tokens', { scopes: ['task.read'] }, as(operator.token))).body;
    assert.equal((await h.api('POST', '/tokens', { scopes: ['task.read'] }, as(issued.token))).status, 403);
    assert.equal((await h.api('GET', '/tasks', undefined, as(issued.token))).status, 200);
    await h.api('POST', `/keys/${operator.id}/revoke`);
    assert.equal((await h.api('GET', '/tasks', undefined, as(issued.token))).status, 401);
  });

  it('a forged or tampered token is refused', async () => {
    const operator = await key('operator');
    const { token } = (await h.api('POST', '/tokens', { scopes: ['task.read'] }, as(operator.token))).body;
    const [head, payload, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    claims.flt.actions = ['task.read', 'task.submit', 'task.cancel'];
    const tampered = `${head}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    assert.equal((await h.api('GET', '/tasks', undefined, as(tampered))).status, 401);
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
    assert.equal((await h.api('GET', '/tasks', undefined, as(none))).status, 401);
  });
});

describe('audit log', () => {
  it('records mutating and denied requests (who, role, action, target, outcome, request id, source), for admins only', async () => {
    const viewer = await key('viewer');
    const task = await h.submit({ agent: 'analyst' });
    await h.api('POST', `/tasks/${task.id}/cancel`, { reason: 'x' });
    await h.api('POST', `/tasks/${task.id}/cancel`, {}, as(viewer.token));
    await h.api('GET', '/tasks', undefined, { authorization: 'Bearer not-a-key' });
    await h.api('GET', '/tasks');
    const entries = await auditEntries();
    const cancel = entries.find((e) => e.action === 'task.cancel' && e.outcome === 'allowed');
    assert.ok(cancel, JSON.stringify(entries));
    assert.equal(cancel.target, task.id);
    assert.equal(cancel.role, 'admin');
    assert.equal(cancel.status, 200);
    assert.ok(cancel.requestId);
    assert.ok(cancel.source);
    const denied = entries.find((e) => e.action === 'task.cancel' && e.outcome === 'denied');
    assert.equal(denied?.principalId, viewer.id);
    assert.equal(denied?.status, 403);
    assert.ok(entries.some((e) => e.outcome === 'denied' && e.status === 401 && e.principalId === null));
    assert.ok(!entries.some((e) => e.action === 'task.read' && e.outcome === 'allowed'), 'reads are not audited');
    assert.ok(!JSON.stringify(entries).includes('not-a-key'), 'no secret reaches the log');
    // Filters.
    const onlyDenied = await auditEntries('?outcome=denied');
    assert.ok(onlyDenied.length >= 2 && onlyDenied.every((e) => e.outcome === 'denied'));
    assert.ok((await auditEntries(`?principalId=${viewer.id}`)).every((e) => e.principalId === viewer.id));
    assert.equal((await h.api('GET', '/audit', undefined, as(viewer.token))).status, 403);
    // (The table refuses updates itself: store-sqlite/store-postgres tests.)
  });
});

describe('task trees in views', () => {
  it('a task view names its root, depth, creator and owner; ?rootId= lists one tree, ?depth= one level, and a tree token sees only its own', async () => {
    const operator = await key('operator');
    const worker = await key('agent', { agents: ['analyst'] });
    const replica = (await h.api('POST', '/workers/register', { agent: 'analyst' }, as(worker.token))).body.replica.id;
    const root = (await h.api('POST', '/tasks', { agent: 'analyst' }, as(operator.token))).body;
    assert.deepEqual([root.rootId, root.createdBy, root.ownerId], [root.id, operator.id, operator.id]);
    const other = await h.submit({ agent: 'writer' });
    const leased = (await h.api('POST', `/workers/${replica}/lease`, { waitMs: 0 }, as(worker.token))).body.assignments[0];
    assert.equal(leased.task.id, root.id);
    const tree = (await h.api('POST', `/assignments/${leased.assignmentId}/token`, { replicaId: replica }, as(worker.token))).body;
    const child = (await h.api('POST', '/tasks', { agent: 'writer', parentId: root.id }, as(tree.token))).body;
    await h.agent({ name: 'editor', level: 3 });
    const grandchild = await h.submit({ agent: 'editor', parentId: child.id });

    // The child was created by the attempt's token, and belongs to the tree's owner.
    const seen = await h.task(child.id);
    assert.deepEqual([seen.rootId, seen.createdBy, seen.ownerId], [root.id, `token:${tree.id}`, operator.id]);
    assert.equal((await h.task(grandchild.id)).rootId, root.id);
    // Depth: the root is 1, each child its parent's + 1, in views, events and a list filter.
    assert.deepEqual([root.depth, seen.depth, (await h.task(grandchild.id)).depth, other.depth], [1, 2, 3, 1]);
    const created = (await h.api('GET', `/tasks/${grandchild.id}/events`)).body.items.find((e: { type: string }) => e.type === 'task.created');
    assert.deepEqual([created.data.rootId, created.data.depth, created.data.parentId], [root.id, 3, child.id]);

    const ids = async (query: string, headers?: Record<string, string>) =>
      ((await h.api('GET', `/tasks${query}`, undefined, headers)).body.items as Array<{ id: string }>).map((t) => t.id).sort();
    assert.deepEqual(await ids(`?rootId=${root.id}`), [root.id, child.id, grandchild.id].sort());
    assert.deepEqual(await ids(`?rootId=${other.id}`), [other.id]);
    assert.deepEqual(await ids(`?rootId=${root.id}&parentId=${root.id}`), [child.id], 'filters combine');
    assert.deepEqual(await ids(`?rootId=${root.id}&depth=3`), [grandchild.id]);
    assert.deepEqual(await ids('?depth=2'), [child.id]);
    assert.equal((await h.api('GET', '/tasks?depth=0')).status, 400, 'a depth starts at 1');

    // The grandchild is at the default maximum depth (3): it cannot have children, whoever asks.
    for (const headers of [undefined, as(tree.token)]) {
      const refused = await h.api('POST', '/tasks', { agent: 'editor', parentId: grandchild.id }, headers);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, 'DEPTH_LIMIT');
      assert.deepEqual(refused.body.error.details, { depth: 4, maxDepth: 3 });
      assert.match(refused.body.error.message, /depth 3 .* is 3/);
    }
    assert.deepEqual(await ids(`?rootId=${root.id}`), [root.id, child.id, grandchild.id].sort(), 'nothing was created');
    assert.deepEqual(await ids(`?rootId=${root.id}`, as(tree.token)), [root.id, child.id, grandchild.id].sort());
    assert.deepEqual(await ids(`?rootId=${other.id}`, as(tree.token)), [], 'another tree is not replaced by its own');
  });
});
