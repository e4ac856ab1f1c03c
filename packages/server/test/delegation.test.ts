// Agent trees (issue 14): tool permissions, agent levels, per-agent depth limits, the spawn
// right in the attempt token, and what a child inherits. In process, on both stores.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).flt;
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

for (const store of stores) {
  describe(`agent trees (${store})`, () => {
    let h: Harness;
    before(async () => {
      h = await harness({ store, config: { leaseMs: 30_000, replicaTtlMs: 60_000 } });
      await h.agent({ name: 'lead', level: 1, tools: ['web:*', 'gh:*', 'flotilla:spawn'] });
      await h.agent({ name: 'worker', level: 2, tools: ['web:*', 'fs:read', 'flotilla:spawn'], maxDepth: 2 });
      await h.agent({ name: 'peer', level: 1, tools: ['*'] });
      await h.agent({ name: 'helper', level: 2, tools: ['gh:*', 'web:*'] });
    });
    after(() => h.close());

    /** A root for `lead`, leased, with its attempt token. */
    async function leasedRoot(spec: Record<string, unknown> = {}) {
      const root = await h.submit({ agent: 'lead', ...spec });
      const replica = await h.register('lead');
      const [leased] = await h.lease(replica);
      assert.equal(leased?.task.id, root.id);
      const token = await h.api('POST', `/assignments/${leased!.assignmentId}/token`, { replicaId: replica });
      assert.equal(token.status, 201, JSON.stringify(token.body));
      return { root, leased: leased!, token: token.body, replica };
    }

    it('agents declare tools, a level and a depth limit; bad tool names and limits are 400', async () => {
      const view = (await h.api('GET', '/agents/worker')).body;
      assert.deepEqual([view.level, view.tools, view.maxDepth], [2, ['web:*', 'fs:read', 'flotilla:spawn'], 2]);
      assert.deepEqual((await h.api('GET', '/agents/helper')).body.maxDepth, null);
      for (const tools of [['web:se*'], ['a b'], ['!web:x'], ['flotilla:nope'], ['x:y:z']]) {
        const res = await h.api('POST', '/agents', { name: 'bad-tools', tools });
        assert.equal(res.status, 400, JSON.stringify(tools));
        assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      }
      assert.equal((await h.api('POST', '/agents', { name: 'bad-depth', maxDepth: 0 })).status, 400);
      assert.equal((await h.api('PATCH', '/agents/helper', { tools: ['flotilla:other'] })).status, 400);
      const patched = await h.api('PATCH', '/agents/helper', { maxDepth: 5 });
      assert.equal(patched.body.maxDepth, 5);
      assert.equal((await h.api('PATCH', '/agents/helper', { maxDepth: null })).body.maxDepth, null);
      assert.deepEqual((await h.api('POST', '/agents', { name: 'no-tools' })).body.tools, [], 'none declared: no tools');
    });

    it('the effective set is in the task view, the assignment and the attempt token; a child\'s is narrowed by its agent, its parent and the depth limit', async () => {
      const { root, leased, token, replica } = await leasedRoot({ tools: { deny: ['gh:write'] } });
      const rootTools = ['flotilla:spawn', 'gh:*', 'web:*', '!gh:write'];
      assert.deepEqual(root.tools, rootTools);
      assert.deepEqual(leased.task.tools, rootTools, 'the assignment carries it');
      assert.deepEqual(token.tools, rootTools);
      assert.deepEqual(claims(token.token).tools, rootTools, 'the token claims carry it');
      assert.deepEqual(token.scopes, ['task.submit', 'task.read', 'task.answer']);

      // The child (depth 2) runs on `worker`, whose own limit is 2: no delegation tool, no spawn right.
      const child = await h.api('POST', '/tasks', { agent: 'worker', parentId: root.id }, as(token.token));
      assert.equal(child.status, 201, JSON.stringify(child.body));
      assert.deepEqual(child.body.tools, ['web:*'], 'fs:read is not the parent\'s, gh:* not the worker\'s, flotilla:spawn gone at the limit');
      const narrowed = await h.api('POST', '/tasks', { agent: 'helper', parentId: root.id, tools: { allow: ['gh:read', 'web:*'], deny: ['web:delete'] } }, as(token.token));
      assert.equal(narrowed.status, 201, JSON.stringify(narrowed.body));
      assert.deepEqual(narrowed.body.tools, ['gh:read', 'web:*', '!web:delete']);

      const workerReplica = await h.register('worker');
      const [childLease] = await h.lease(workerReplica);
      assert.equal(childLease?.task.id, child.body.id);
      assert.deepEqual(childLease!.task.tools, ['web:*']);
      const childToken = (await h.api('POST', `/assignments/${childLease!.assignmentId}/token`, { replicaId: workerReplica })).body;
      assert.deepEqual(childToken.scopes, ['task.read'], 'at the depth limit the token carries no spawn right');
      assert.deepEqual(claims(childToken.token).actions, ['task.read']);
      assert.deepEqual(claims(childToken.token).tools, ['web:*']);
      assert.equal((await h.api('GET', `/tasks/${child.body.id}`, undefined, as(childToken.token))).status, 200, 'it still reads its tree');
      const before = (await h.api('GET', `/tasks?rootId=${root.id}`)).body.items.length;
      // Refused by the token itself, and by the server's rule for anyone else.
      for (const headers of [as(childToken.token), undefined]) {
        const refused = await h.api('POST', '/tasks', { agent: 'worker', parentId: child.body.id }, headers);
        assert.equal(refused.status, 403);
        assert.equal(refused.body.error.code, 'DEPTH_LIMIT');
        assert.deepEqual(refused.body.error.details, { depth: 3, maxDepth: 2 });
      }
      // The same refusal over the WebSocket client protocol.
      await h.listen();
      const ws = new WebSocket(`ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/api/v1/socket`, { headers: as(childToken.token) });
      const reply = await new Promise<Record<string, any>>((resolve, reject) => {
        ws.once('error', reject);
        ws.once('open', () => ws.send(JSON.stringify({ op: 'submit', id: 1, task: { agent: 'worker', parentId: child.body.id } })));
        ws.on('message', (data) => resolve(JSON.parse(String(data))));
      });
      ws.close();
      assert.deepEqual([reply.ok, reply.status, reply.error.code, reply.error.details], [false, 403, 'DEPTH_LIMIT', { depth: 3, maxDepth: 2 }]);
      assert.equal((await h.api('GET', `/tasks?rootId=${root.id}`)).body.items.length, before, 'nothing was created');
      await h.api('POST', `/workers/${workerReplica}/deregister`);
      await h.api('POST', `/workers/${replica}/deregister`);
    });

    it('a child must be of a greater level: 403 LEVEL_NOT_ALLOWED names both levels', async () => {
      const root = await h.submit({ agent: 'lead' });
      const same = await h.api('POST', '/tasks', { agent: 'peer', parentId: root.id });
      assert.equal(same.status, 403);
      assert.equal(same.body.error.code, 'LEVEL_NOT_ALLOWED');
      assert.deepEqual(same.body.error.details, { parentLevel: 1, childLevel: 1, allowEqualLevel: false });
      assert.match(same.body.error.message, /level 1 \(agent "lead"\) and agent "peer" is at level 1/);
      const helper = await h.submit({ agent: 'helper', parentId: root.id });
      const upward = await h.api('POST', '/tasks', { agent: 'lead', parentId: helper.id });
      assert.equal(upward.status, 403);
      assert.deepEqual(upward.body.error.details, { parentLevel: 2, childLevel: 1, allowEqualLevel: false });
      assert.equal((await h.api('POST', '/tasks', { agent: 'peer' })).status, 201, 'a root has no level to respect');
    });

    it('a spawn cannot widen its parent\'s tools (403 TOOL_NOT_ALLOWED); an allow outside the ceiling is 400 TOOL_OUTSIDE_CEILING', async () => {
      const root = await h.submit({ agent: 'lead', tools: { deny: ['gh:write'] } });
      const count = async () => (await h.api('GET', `/tasks?rootId=${root.id}`)).body.items.length;
      const denied = await h.api('POST', '/tasks', { agent: 'helper', parentId: root.id, tools: { allow: ['gh:write'] } });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.code, 'TOOL_NOT_ALLOWED');
      assert.deepEqual(denied.body.error.details, { tools: ['gh:write'], allowed: ['flotilla:spawn', 'gh:*', 'web:*', '!gh:write'] });
      const wider = await h.api('POST', '/tasks', { agent: 'worker', parentId: root.id, tools: { allow: ['fs:read'] } });
      assert.equal(wider.status, 403);
      assert.equal(wider.body.error.code, 'TOOL_NOT_ALLOWED');
      const outside = await h.api('POST', '/tasks', { agent: 'worker', parentId: root.id, tools: { allow: ['db:query', 'web:get'] } });
      assert.equal(outside.status, 400);
      assert.equal(outside.body.error.code, 'TOOL_OUTSIDE_CEILING');
      assert.deepEqual(outside.body.error.details, { tools: ['db:query'], allowed: ['flotilla:spawn', 'fs:read', 'web:*'] });
      const rootOutside = await h.api('POST', '/tasks', { agent: 'lead', tools: { allow: ['fs:read'] } });
      assert.equal(rootOutside.body.error.code, 'TOOL_OUTSIDE_CEILING', 'a root is held to its ceiling too');
      assert.equal((await h.api('POST', '/tasks', { agent: 'lead', tools: { allow: ['web:*:x'] } })).status, 400);
      assert.equal((await h.api('POST', '/tasks', { agent: 'lead', tools: { deny: ['flotilla:nope'] } })).body.error.code, 'VALIDATION_FAILED');
      assert.equal(await count(), 1, 'nothing was created');
    });

    it('a capability-routed task is held to every candidate\'s ceiling, level and depth limit', async () => {
      await h.agent({ name: 'cap-a', capabilities: ['scan'], level: 3, tools: ['web:*', 'gh:*', 'flotilla:spawn'] });
      await h.agent({ name: 'cap-b', capabilities: ['scan', 'deep'], level: 2, tools: ['web:*', 'flotilla:spawn'], maxDepth: 2 });
      const root = await h.submit({ capabilities: ['scan'] });
      assert.deepEqual(root.tools, ['flotilla:spawn', 'web:*']);
      assert.equal((await h.api('POST', '/tasks', { capabilities: ['scan'], tools: { allow: ['gh:read'] } })).body.error.code, 'TOOL_OUTSIDE_CEILING');
      // The depth limit is checked first: a worker task (depth 2) is at the worker's own limit.
      const worker = await h.submit({ agent: 'worker', parentId: (await h.submit({ agent: 'lead' })).id });
      assert.equal((await h.api('POST', '/tasks', { capabilities: ['scan'], parentId: worker.id })).body.error.code, 'DEPTH_LIMIT', 'the worker is at its own limit');
      const lead = await h.submit({ agent: 'lead' });
      const child = await h.api('POST', '/tasks', { capabilities: ['scan'], parentId: lead.id });
      assert.equal(child.status, 201, JSON.stringify(child.body));
      assert.deepEqual(child.body.tools, ['web:*'], 'depth 2 is cap-b\'s limit: no delegation tool');
      const grandchild = await h.api('POST', '/tasks', { agent: 'cap-a', parentId: child.body.id });
      assert.equal(grandchild.status, 403);
      assert.equal(grandchild.body.error.code, 'DEPTH_LIMIT', 'the child could run on cap-b, whose limit is 2');
    });

    it('a child inherits its parent\'s correlation (its own keys win) and trace (a new span of it)', async () => {
      const root = await h.submit({ agent: 'lead', correlation: { caseId: 'C-1', step: 'root' }, traceparent: TP });
      const child = await h.submit({ agent: 'helper', parentId: root.id, correlation: { step: 'child' } });
      assert.deepEqual(child.correlation, { caseId: 'C-1', step: 'child' });
      const [version, trace, span, flags] = child.traceparent!.split('-');
      assert.deepEqual([version, trace, flags], ['00', '4bf92f3577b34da6a3ce929d0e0e4736', '01']);
      assert.match(span!, /^[0-9a-f]{16}$/);
      assert.notEqual(span, '00f067aa0ba902b7', 'a span of its own');
      const sibling = await h.submit({ agent: 'helper', parentId: root.id });
      assert.notEqual(sibling.traceparent, child.traceparent);
      assert.deepEqual(sibling.correlation, { caseId: 'C-1', step: 'root' });
      const own = '00-11111111111111111111111111111111-2222222222222222-00';
      assert.equal((await h.submit({ agent: 'helper', parentId: root.id, traceparent: own })).traceparent, own, 'a given traceparent is kept');
      const untraced = await h.submit({ agent: 'lead' });
      assert.equal((await h.submit({ agent: 'helper', parentId: untraced.id })).traceparent, null, 'no trace is started for a child');
      const full = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, 'v']));
      const wide = await h.submit({ agent: 'lead', correlation: full });
      const over = await h.api('POST', '/tasks', { agent: 'helper', parentId: wide.id, correlation: { extra: 'x' } });
      assert.equal(over.status, 400, 'merged correlation keeps the 32-key bound');
    });
  });
}

describe('allowEqualLevel', () => {
  it('lets a task delegate to its own level, never to a lower one', async () => {
    const h = await harness({ config: { allowEqualLevel: true } });
    try {
      await h.agent({ name: 'a', level: 2 });
      await h.agent({ name: 'b', level: 1 });
      const root = await h.submit({ agent: 'a' });
      assert.equal((await h.api('POST', '/tasks', { agent: 'a', parentId: root.id })).status, 201);
      const lower = await h.api('POST', '/tasks', { agent: 'b', parentId: root.id });
      assert.equal(lower.body.error.code, 'LEVEL_NOT_ALLOWED');
      assert.deepEqual(lower.body.error.details, { parentLevel: 2, childLevel: 1, allowEqualLevel: true });
    } finally {
      await h.close();
    }
  });
});
