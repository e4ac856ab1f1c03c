// Conformance: tool domains (issue 15): a declaration created or replaced with its health
// kept, listed by name, deleted; a health check's result recorded with its event only on a
// change of status, once when two checkers race; the tool-call audit appended in order and
// listed newest first with filters and keyset paging; a task's allowDegraded read back.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { NewToolCall, ToolDomainHealth } from '../../core/tool-domains.ts';
import { T0, createTasks, newTask, plainEvent, storeTest, type OpenStore } from './harness.ts';

const health = (status: ToolDomainHealth['status'], at: number): ToolDomainHealth => ({
  status, checkedAt: at, latencyMs: 12, toolCount: status === 'up' ? 3 : null, lastError: status === 'down' ? 'connect ECONNREFUSED' : null, changedAt: at,
});

function call(over: Partial<NewToolCall> = {}): NewToolCall {
  return {
    at: T0, taskId: 'task-1', assignmentId: 'asg-1', attempt: 1, agent: 'a', tool: 'web:search', argsBytes: 2,
    argsSha256: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', durationMs: 5, outcome: 'ok', rule: null, error: null, ...over,
  };
}

export function toolDomainTests(open: OpenStore): void {
  describe('tool domains and the tool-call audit', () => {
    storeTest(open, 'a declaration is created, replaced with its health kept, listed by name and deleted', async ({ store }) => {
      const first = await store.toolDomainUpsert({ name: 'web', spec: { name: 'web', url: 'http://127.0.0.1:1/mcp', headers: { auth: { env: 'FLOTILLA_SECRET_TOKEN' } } }, source: 'config', at: T0 });
      assert.equal(first.created, true);
      assert.deepEqual(first.domain.health, { status: 'unknown', checkedAt: null, latencyMs: null, toolCount: null, lastError: null, changedAt: null });
      await store.toolDomainSetHealth({ name: 'web', health: health('down', T0 + 1), event: plainEvent('mcp.domain_down', { data: { domain: 'web' } }) });
      const again = await store.toolDomainUpsert({ name: 'web', spec: { name: 'web', url: 'http://127.0.0.1:2/mcp' }, source: 'api', at: T0 + 2 });
      assert.equal(again.created, false);
      assert.deepEqual([again.domain.spec.url, again.domain.source, again.domain.createdAt, again.domain.updatedAt, again.domain.health.status], ['http://127.0.0.1:2/mcp', 'api', T0, T0 + 2, 'down']);
      await store.toolDomainUpsert({ name: 'memory', spec: { name: 'memory', command: 'mcp-server-memory', args: [], env: { A: 'b' } }, source: 'api', at: T0 });
      assert.deepEqual((await store.toolDomainList()).map((d) => d.spec.name), ['memory', 'web']);
      assert.deepEqual((await store.toolDomainGet({ name: 'memory' }))?.spec, { name: 'memory', command: 'mcp-server-memory', args: [], env: { A: 'b' } });
      assert.deepEqual(await store.toolDomainDelete({ name: 'memory' }), { deleted: true });
      assert.deepEqual(await store.toolDomainDelete({ name: 'memory' }), { deleted: false });
      assert.equal(await store.toolDomainGet({ name: 'memory' }), null);
    });

    storeTest(open, 'health is recorded at every check; its event only when the status changes, once when checkers race', async ({ store }) => {
      await store.toolDomainUpsert({ name: 'web', spec: { name: 'web', url: 'http://127.0.0.1:1/mcp' }, source: 'api', at: T0 });
      const set = (status: ToolDomainHealth['status'], at: number) => store.toolDomainSetHealth({ name: 'web', health: health(status, at), event: plainEvent(status === 'up' ? 'mcp.domain_up' : 'mcp.domain_down', { data: { domain: 'web' } }) });
      const up = await set('up', T0 + 1);
      assert.deepEqual([up.found, up.changed, up.events.map((e) => e.type)], [true, true, ['mcp.domain_up']]);
      const same = await set('up', T0 + 2);
      assert.deepEqual([same.changed, same.events], [false, []]);
      const stored = (await store.toolDomainGet({ name: 'web' }))!.health;
      assert.deepEqual([stored.checkedAt, stored.changedAt, stored.toolCount], [T0 + 2, T0 + 1, 3]);
      const raced = await Promise.all([set('down', T0 + 3), set('down', T0 + 3)]);
      assert.equal(raced.filter((r) => r.changed).length, 1);
      assert.equal(raced.flatMap((r) => r.events).length, 1);
      assert.equal((await store.toolDomainGet({ name: 'web' }))!.health.lastError, 'connect ECONNREFUSED');
      assert.deepEqual(await set('up', T0 + 4).then((r) => r.changed), true);
      assert.deepEqual(await store.toolDomainSetHealth({ name: 'nothing', health: health('up', T0), event: plainEvent('mcp.domain_up', {}) }), { found: false, changed: false, events: [] });
    });

    storeTest(open, 'a health write guarded on the declaration checked writes nothing once the spec was replaced', async ({ store }) => {
      await store.toolDomainUpsert({ name: 'web', spec: { name: 'web', url: 'http://127.0.0.1:1/mcp' }, source: 'api', at: T0 });
      await store.toolDomainUpsert({ name: 'web', spec: { name: 'web', url: 'http://127.0.0.1:2/mcp' }, source: 'api', at: T0 + 5 });
      const stale = await store.toolDomainSetHealth({ name: 'web', health: health('down', T0 + 6), event: plainEvent('mcp.domain_down', { data: { domain: 'web' } }), updatedAt: T0 });
      assert.deepEqual(stale, { found: false, changed: false, events: [] });
      assert.equal((await store.toolDomainGet({ name: 'web' }))!.health.status, 'unknown');
      const current = await store.toolDomainSetHealth({ name: 'web', health: health('up', T0 + 7), event: plainEvent('mcp.domain_up', { data: { domain: 'web' } }), updatedAt: T0 + 5 });
      assert.deepEqual([current.found, current.changed, current.events.map((e) => e.type)], [true, true, ['mcp.domain_up']]);
    });

    storeTest(open, 'tool calls are listed newest first, filtered, a page at a time', async ({ store }) => {
      await store.toolCallAppend({ calls: [] });
      await store.toolCallAppend({ calls: [
        call({ at: T0 + 1 }), call({ at: T0 + 2, tool: 'web:fetch', outcome: 'refused', rule: 'not_allowed', error: 'no' }),
        call({ at: T0 + 3, taskId: 'task-2', agent: 'b', outcome: 'failed', error: 'timeout' }),
      ] });
      const all = await store.toolCallList({ limit: 10 });
      assert.deepEqual(all.items.map((c) => c.at), [T0 + 3, T0 + 2, T0 + 1]);
      assert.equal(all.nextBefore, null);
      assert.deepEqual(all.items[1], { ...call({ at: T0 + 2, tool: 'web:fetch', outcome: 'refused', rule: 'not_allowed', error: 'no' }), seq: all.items[1]!.seq });
      const page = await store.toolCallList({ limit: 2 });
      assert.equal(page.items.length, 2);
      assert.deepEqual((await store.toolCallList({ limit: 2, before: page.nextBefore! })).items.map((c) => c.at), [T0 + 1]);
      assert.deepEqual((await store.toolCallList({ limit: 10, taskId: 'task-1' })).items.length, 2);
      assert.deepEqual((await store.toolCallList({ limit: 10, agent: 'b' })).items.map((c) => c.outcome), ['failed']);
      assert.deepEqual((await store.toolCallList({ limit: 10, tool: 'web:fetch' })).items.map((c) => c.rule), ['not_allowed']);
      assert.deepEqual((await store.toolCallList({ limit: 10, outcome: 'ok' })).items.map((c) => c.at), [T0 + 1]);
      assert.deepEqual((await store.toolCallList({ limit: 10, since: T0 + 2, until: T0 + 3 })).items.map((c) => c.at), [T0 + 2]);
      // Retention: oldest first, bounded.
      assert.equal(await store.toolCallPrune({ before: T0 + 3, limit: 1 }), 1);
      assert.deepEqual((await store.toolCallList({ limit: 10 })).items.map((c) => c.at), [T0 + 3, T0 + 2]);
      assert.equal(await store.toolCallPrune({ before: T0 + 3, limit: 10 }), 1);
      assert.equal(await store.toolCallPrune({ before: T0 + 3, limit: 10 }), 0);
    });

    storeTest(open, 'a task\'s allowDegraded is stored and read back (absent: false)', async ({ store }) => {
      const yes = newTask({ agent: 'a', allowDegraded: true });
      const no = newTask({ agent: 'a' });
      await createTasks(store, [yes, no]);
      const read = await store.taskGetMany({ ids: [yes.id, no.id] });
      assert.deepEqual(read.map((t) => [t.id === yes.id, t.allowDegraded]).sort(), [[false, false], [true, true]]);
    });
  });
}
