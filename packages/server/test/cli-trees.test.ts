// `flotilla tree`, `cancel --no-cascade`, `assign` and `fail` as real processes against a real
// server process: what they print, and their exit codes.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TreeNodeView } from '@flotilla/sdk';
import { drawTree, subtree } from '../src/cli/commands/trees.ts';
import { runCli, serverApi, type CliResult } from './helpers/cli-process.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const LATER = 3_600_000;

function node(id: string, parentId: string | null, over: Partial<TreeNodeView> = {}): TreeNodeView {
  return {
    id, parentId, type: 't', status: 'pending', depth: 1, agent: 'a', replica: null, attempt: 0, maxAttempts: 3, progress: null,
    cancelRequested: false, errorCode: null, createdAt: '2026-01-01T00:00:00.000Z', finishedAt: null, ...over,
  };
}

describe('drawing a tree', () => {
  it('draws children under their parent with box characters, in order, marking the task asked for', () => {
    const nodes = [
      node('r', null, { status: 'running', attempt: 1, progress: { percent: 50, message: 'half', at: '2026-01-01T00:00:00.000Z' } }),
      node('a', 'r'), node('b', 'r', { status: 'running', cancelRequested: true, attempt: 1 }), node('a1', 'a'), node('a2', 'a', { status: 'failed', errorCode: 'OPERATOR_FAILED', attempt: 1 }),
      node('b1', 'b', { agent: null }), node('lost', 'gone'),
    ];
    assert.equal(drawTree(nodes, 'a2'), [
      'running  a  r  attempt 1/3  50% half',
      '├─ pending  a  a  attempt 0/3',
      '│  ├─ pending  a  a1  attempt 0/3',
      '│  └─ failed (OPERATOR_FAILED)  a  a2  attempt 1/3  ◀',
      '└─ running (cancel requested)  a  b  attempt 1/3',
      '   └─ pending  -  b1  attempt 0/3',
      'pending  a  lost  attempt 0/3',
      '',
    ].join('\n'));
    assert.deepEqual(subtree(nodes, 'a').map((n) => n.id), ['a', 'a1', 'a2']);
    assert.equal(drawTree(subtree(nodes, 'b'), 'b'), 'running (cancel requested)  a  b  attempt 1/3  ◀\n└─ pending  -  b1  attempt 0/3\n');
  });
});

describe('flotilla tree, cancel --no-cascade, assign, fail', () => {
  let dir: string;
  let server: ServerProcess;

  const cli = (...args: string[]) => runCli(server.url, args);
  const api = (method: string, path: string, body?: unknown) => serverApi(server.url, method, path, body);
  const submit = (spec: Record<string, unknown>) => api('POST', '/tasks', spec) as Promise<{ id: string }>;
  const status = async (id: string) => (await api('GET', `/tasks/${id}`)).status as string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-trees-'));
    // Trees of one agent at several levels: equal levels allowed (decision 59).
    server = await startServerProcess({ database: join(dir, 'flotilla.db'), env: { FLOTILLA_ALLOW_EQUAL_LEVEL: 'true' } });
    await api('POST', '/agents', { name: 'planner', maxConcurrency: 5 });
  });

  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tree draws the whole tree from any of its tasks; --subtree, --limit, --json; an unknown id exits 1', async () => {
    const root = await submit({ agent: 'planner', delayMs: LATER });
    const c1 = await submit({ agent: 'planner', parentId: root.id, delayMs: LATER });
    const c2 = await submit({ agent: 'planner', parentId: root.id, delayMs: LATER });
    const g = await submit({ agent: 'planner', parentId: c1.id, delayMs: LATER });
    const drawn = await cli('tree', g.id);
    assert.equal(drawn.code, 0, drawn.stderr);
    assert.equal(drawn.stdout, [
      `pending  planner  ${root.id}  attempt 0/3`,
      `├─ pending  planner  ${c1.id}  attempt 0/3`,
      `│  └─ pending  planner  ${g.id}  attempt 0/3  ◀`,
      `└─ pending  planner  ${c2.id}  attempt 0/3`,
      '',
    ].join('\n'));
    const sub = await cli('tree', c1.id, '--subtree');
    assert.equal(sub.stdout, `pending  planner  ${c1.id}  attempt 0/3  ◀\n└─ pending  planner  ${g.id}  attempt 0/3\n`);
    const cut = await cli('tree', root.id, '--limit', '2');
    assert.equal(cut.code, 0);
    assert.deepEqual(cut.stdout.trimEnd().split('\n').slice(2), ['… the tree has more tasks than the 2 shown (--limit N shows more)']);
    const asJson = JSON.parse((await cli('tree', root.id, '--json')).stdout);
    assert.deepEqual([asJson.rootId, asJson.taskId, asJson.truncated, asJson.items.map((n: { id: string }) => n.id)], [root.id, root.id, false, [root.id, c1.id, c2.id, g.id]]);
    const missing = await cli('tree', 'no-such-task');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /TASK_NOT_FOUND/);
    assert.equal((await cli('tree')).code, 2, 'the id is required');
  });

  it('cancel cascades by default; --no-cascade cancels the task alone', async () => {
    const root = await submit({ agent: 'planner', delayMs: LATER });
    const child = await submit({ agent: 'planner', parentId: root.id, delayMs: LATER });
    const grandchild = await submit({ agent: 'planner', parentId: child.id, delayMs: LATER });
    const alone = await cli('cancel', root.id, '--no-cascade', '--json');
    assert.equal(alone.code, 0, alone.stderr);
    assert.equal(JSON.parse(alone.stdout).status, 'cancelled');
    assert.deepEqual([await status(child.id), await status(grandchild.id)], ['pending', 'pending']);
    const all = await cli('cancel', child.id, '--reason', 'not needed');
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual([await status(child.id), await status(grandchild.id)], ['cancelled', 'cancelled']);
    const events = await api('GET', `/tasks/${grandchild.id}/events`);
    assert.deepEqual(events.items.find((e: { type: string }) => e.type === 'task.cancelled').data, { reason: 'not needed', cancelledBy: child.id });
  });

  it('fail needs --reason (exit 2), fails a task (exit 0), and refuses a finished one (exit 1)', async () => {
    const task = await submit({ agent: 'planner', delayMs: LATER });
    const noReason = await cli('fail', task.id);
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /--reason is required/);
    const failed = await cli('fail', task.id, '--reason', 'bad input');
    assert.equal(failed.code, 0, failed.stderr);
    assert.match(failed.stdout, /^status: +failed$/m);
    assert.match(failed.stdout, /^error: +OPERATOR_FAILED: bad input$/m);
    const again = await cli('fail', task.id, '--reason', 'again');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /INVALID_TRANSITION/);
  });

  it('assign dispatches to a waiting replica (exit 0), and says why when nothing can take it (exit 1)', async () => {
    const task = await submit({ agent: 'planner', delayMs: LATER });
    const refused = await cli('assign', task.id, '--agent', 'planner');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /NOT_ASSIGNABLE: agent "planner" has no live replica/);
    const replicaId = (await api('POST', '/workers/register', { agent: 'planner' })).replica.id as string;
    const lease = api('POST', `/workers/${replicaId}/lease`, { max: 1, waitMs: 15_000 });
    // The lease request registers with the dispatcher in a moment: until then it is not_waiting.
    let assigned: CliResult;
    for (let i = 0; ; i++) {
      assigned = await cli('assign', task.id, '--replica', replicaId, '--json');
      if (assigned.code === 0 || !/not_waiting|no open lease request/.test(assigned.stderr) || i > 20) break;
    }
    assert.equal(assigned.code, 0, assigned.stderr);
    assert.equal(JSON.parse(assigned.stdout).status, 'dispatched');
    assert.equal((await lease).assignments[0].task.id, task.id);
  });

  it('--help of tree, assign and fail exits 0 with the usage; the top-level help lists them', async () => {
    for (const command of ['tree', 'assign', 'fail']) {
      const r = await cli(command, '--help');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: flotilla ${command} ID`));
    }
    const top = await cli('help');
    for (const line of [/flotilla tree ID/, /flotilla assign ID/, /flotilla fail ID --reason R/, /--no-cascade/]) assert.match(top.stdout, line);
  });
});
