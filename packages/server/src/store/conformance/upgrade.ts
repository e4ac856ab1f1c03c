// Upgrading a database written before the security features (schema version 1): what it
// holds, and what every store must read from it once migrated. Writing an old schema needs
// each store's own migration runner, so the store test files drive this, not runStoreConformance.

import assert from 'node:assert/strict';
import type { Store } from '../store.ts';

/**
 * Rows in the version 1 schema, in SQL both databases take. Trees: a root with a child and a
 * grandchild submitted by other principals; an orphan whose parent was pruned, with a child; a
 * task created by nobody; and two tasks naming each other as parent (impossible through the
 * engine, but a migration must not loop on hand-edited data).
 */
export const VERSION_1_ROWS_SQL = `
INSERT INTO tasks (id, status, priority, attempt, max_attempts, timeout_ms, run_at, created_at, updated_at, parent_id, created_by) VALUES
  ('up-root', 'pending', 5, 0, 3, 1000, 1, 1, 1, NULL, 'alice'),
  ('up-child', 'pending', 5, 0, 3, 1000, 1, 2, 2, 'up-root', 'worker'),
  ('up-grandchild', 'pending', 5, 0, 3, 1000, 1, 3, 3, 'up-child', 'worker-2'),
  ('up-orphan', 'pending', 5, 0, 3, 1000, 1, 4, 4, 'up-pruned', 'bob'),
  ('up-orphan-child', 'pending', 5, 0, 3, 1000, 1, 5, 5, 'up-orphan', 'worker'),
  ('up-anon', 'pending', 5, 0, 3, 1000, 1, 6, 6, NULL, NULL),
  ('up-loop-a', 'pending', 5, 0, 3, 1000, 1, 7, 7, 'up-loop-b', 'x'),
  ('up-loop-b', 'pending', 5, 0, 3, 1000, 1, 8, 8, 'up-loop-a', 'y');
INSERT INTO task_payloads (task_id, type, input) VALUES
  ('up-root', 't', '1'), ('up-child', 't', '1'), ('up-grandchild', 't', '1'), ('up-orphan', 't', '1'),
  ('up-orphan-child', 't', '1'), ('up-anon', 't', '1'), ('up-loop-a', 't', '1'), ('up-loop-b', 't', '1');
INSERT INTO api_keys (id, name, role, hash, created_at, last_used_at) VALUES ('up-key', 'old key', 'admin', 'up-hash', 1, 2);
INSERT INTO agents (name, description, capabilities, max_concurrency, level, tool_domains, concurrency_limits, runtime, created_at, updated_at)
  VALUES ('up-agent', 'old agent', '[]', 1, 2, '[]', '{}', 'pull', 1, 1);
`;

/** After the migrations: every task has its tree's root and owner, and old keys the new fields empty. */
export async function checkUpgradedFromVersion1(store: Store): Promise<void> {
  const expected: Record<string, [rootId: string, ownerId: string | null]> = {
    'up-root': ['up-root', 'alice'],
    'up-child': ['up-root', 'alice'],
    'up-grandchild': ['up-root', 'alice'],
    // The pruned parent's id is the best root known; the owner is the topmost creator known.
    'up-orphan': ['up-pruned', 'bob'],
    'up-orphan-child': ['up-pruned', 'bob'],
    'up-anon': ['up-anon', null],
    'up-loop-a': ['up-loop-a', 'x'],
    'up-loop-b': ['up-loop-b', 'y'],
  };
  for (const [id, [rootId, ownerId]] of Object.entries(expected)) {
    const task = await store.taskGet({ id });
    assert.ok(task, `${id} survived the migration`);
    assert.deepEqual([task.rootId, task.ownerId], [rootId, ownerId], id);
  }
  // Migration 9 numbers depths from the roots down; an orphan counts as a root of what is
  // left, and the two tasks naming each other (no root above them) stay at 1.
  const depths: Record<string, number> = {
    'up-root': 1, 'up-child': 2, 'up-grandchild': 3, 'up-orphan': 1, 'up-orphan-child': 2, 'up-anon': 1, 'up-loop-a': 1, 'up-loop-b': 1,
  };
  for (const [id, depth] of Object.entries(depths)) assert.equal((await store.taskGet({ id }))?.depth, depth, `${id}'s depth`);
  // Migration 11: old tasks may use no tools, and old agents declare none, with the server's depth limit.
  for (const id of Object.keys(depths)) assert.deepEqual((await store.taskGet({ id }))?.tools, [], `${id}'s tools`);
  const agent = await store.agentGet({ name: 'up-agent' });
  assert.deepEqual([agent?.level, agent?.tools, agent?.maxDepth], [2, [], null]);
  // Migration 15: an old agent is no a2a agent (it has no target), and old tasks' attempts recorded no remote task.
  assert.equal(agent?.a2a, null);
  assert.deepEqual(await store.assignmentRemoteList({ taskId: 'up-root' }), []);
  // Migration 16: old agents are not published on the A2A card.
  assert.equal(agent?.a2aSkill, null);
  // Migration 17: old tasks wait for a tool domain that is down (they never said they may run degraded); no domains yet.
  for (const id of Object.keys(depths)) assert.equal((await store.taskGet({ id }))?.allowDegraded, false, `${id}'s allowDegraded`);
  assert.deepEqual(await store.toolDomainList(), []);
  const tree = await store.taskList({ limit: 10, rootId: 'up-root' });
  assert.deepEqual(tree.items.map((t) => t.id), ['up-grandchild', 'up-child', 'up-root']);
  assert.deepEqual(await store.apiKeyGet({ id: 'up-key' }), {
    id: 'up-key', name: 'old key', role: 'admin', hash: 'up-hash', createdAt: 1, lastUsedAt: 2,
    expiresAt: null, revokedAt: null, createdBy: null, agents: null,
  });
}
