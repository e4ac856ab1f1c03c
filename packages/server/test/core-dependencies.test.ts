// The pure rules of dependencies (core/dependencies.ts) and input templates
// (core/input-template.ts): refs and cycles, JSON pointers, templates, unblock decisions.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideUnblock, findCycle, resolveWorkflow } from '../src/core/dependencies.ts';
import { FlotillaError } from '../src/core/errors.ts';
import { applyTemplate, bindRefs, resolvePointer, templateProblems } from '../src/core/input-template.ts';
import type { TaskRecord } from '../src/core/types.ts';
import { decideRequeue } from '../src/core/task-machine.ts';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof FlotillaError) return e.code;
    throw e;
  }
  return 'none';
};

describe('workflow resolution', () => {
  it('resolves refs to indexes, keeps ids, and refuses duplicates, unknown refs and cycles', () => {
    const r = resolveWorkflow([{ ref: 'a' }, { ref: 'b', dependsOn: ['#a', 'task-1', '#a'] }, { dependsOn: ['#b'] }]);
    assert.deepEqual(r.map((x) => [x.local, x.external]), [[[], []], [[0], ['task-1']], [[1], []]]);
    assert.deepEqual(r[1]!.order, [{ local: 0 }, { id: 'task-1' }]);
    assert.equal(code(() => resolveWorkflow([{ ref: 'a' }, { ref: 'a' }])), 'DUPLICATE_REF');
    assert.equal(code(() => resolveWorkflow([{ dependsOn: ['#nobody'] }])), 'UNKNOWN_DEPENDENCY');
    assert.equal(code(() => resolveWorkflow([{ ref: 'a', dependsOn: ['#a'] }])), 'DEPENDENCY_CYCLE');
    assert.equal(code(() => resolveWorkflow([{ ref: 'a', dependsOn: ['#b'] }, { ref: 'b', dependsOn: ['#a'] }])), 'DEPENDENCY_CYCLE');
    assert.equal(code(() => resolveWorkflow([{ dependsOn: Array.from({ length: 101 }, (_, i) => `t${i}`) }])), 'VALIDATION_FAILED');
  });
  it('finds a cycle as the nodes on it, and none in a diamond', () => {
    assert.equal(findCycle([[], [0], [0], [1, 2]]), null);
    assert.deepEqual(findCycle([[1], [2], [0]]), [0, 1, 2]);
    assert.deepEqual(findCycle([[], [2], [3], [1]]), [1, 2, 3]);
  });
});

describe('JSON pointers (RFC 6901) and templates', () => {
  const doc = { a: { 'b/c': 1, 'm~n': 2, list: [10, 20] }, '': 3 };
  it('reads own properties and array indexes with the escapes', () => {
    assert.deepEqual(resolvePointer(doc, ''), doc);
    assert.equal(resolvePointer(doc, '/a/b~1c'), 1);
    assert.equal(resolvePointer(doc, '/a/m~0n'), 2);
    assert.equal(resolvePointer(doc, '/a/list/1'), 20);
    assert.equal(resolvePointer(doc, '/'), 3);
    for (const missing of ['/a/list/2', '/a/list/01', '/a/list/-', '/x', '/a/b~2', 'a', '/a/constructor', '/__proto__', '/a/list/length']) {
      assert.equal(resolvePointer(doc, missing), undefined, missing);
    }
  });
  it('checks a template at submit: $from must name a dependency of the task, with a well-formed pointer', () => {
    const deps = { ids: ['t1', 't2'], refs: ['fetch'] };
    assert.deepEqual(templateProblems({ x: { $from: '#fetch/result/a' }, y: [{ $from: 't2/result', default: 0 }], z: 'literal' }, deps), []);
    const problems = templateProblems({ a: { $from: '/result' }, b: { $from: '#other/result' }, c: { $from: 7 }, d: { $from: 't1/x', extra: 1 }, e: { $from: 't1/~9' } }, deps);
    assert.deepEqual(problems.map((p) => p.path), ['/a', '/b', '/c', '/d', '/e']);
    assert.deepEqual(templateProblems({ $from: '/result/x' }, { ids: ['only'], refs: [] }), []);
  });
  it('fills every $from from its dependency, uses a default, and reports the first missing value', () => {
    const outcomes = [
      { id: 't1', ref: 'fetch', status: 'completed' as const, result: { body: 'text', n: [1, 2] }, error: null },
      { id: 't2', ref: null, status: 'failed' as const, result: null, error: { code: 'X', message: 'boom' } },
    ];
    assert.deepEqual(applyTemplate({ text: { $from: '#fetch/result/body' }, second: { $from: 't1/result/n/1' }, why: { $from: 't2/error/message' }, keep: [1, { k: 'v' }], d: { $from: 't2/result/x', default: null } }, outcomes), {
      ok: true, value: { text: 'text', second: 2, why: 'boom', keep: [1, { k: 'v' }], d: null },
    });
    assert.deepEqual(applyTemplate({ a: [{ $from: '#fetch/result/missing' }] }, outcomes), { ok: false, path: '/a/0', from: '#fetch/result/missing' });
  });
});

describe('binding refs', () => {
  it("writes each #ref's $from with the item's id, and leaves ids, the only dependency and defaults as they are", () => {
    const bound = bindRefs({ a: { $from: '#fetch/result/x', default: 1 }, b: [{ $from: 't9/result' }, { $from: '/result' }], c: { $from: '#fetch' } }, new Map([['fetch', 'id-1']]));
    assert.deepEqual(bound, { a: { $from: 'id-1/result/x', default: 1 }, b: [{ $from: 't9/result' }, { $from: '/result' }], c: { $from: 'id-1' } });
  });
});

describe('unblock decisions', () => {
  const blocked = (over: Partial<TaskRecord> = {}) => ({
    id: 'd', agent: 'b', parentId: null, hasDependents: false, status: 'blocked' as const, waitingFor: ['a1', 'a2'], onDependencyFailure: 'fail' as const,
    inputFrom: null, runAt: 0, ...over,
  });
  const dep = (id: string, status: TaskRecord['status'], result: unknown = null) => ({ id, status, result: result as never, error: status === 'failed' ? { message: 'no' } : null, ref: null });
  it('waits while a dependency runs, then unblocks with the outcomes in the order named', () => {
    assert.equal(decideUnblock({ task: blocked(), dependencies: [dep('a1', 'completed', 1), dep('a2', 'running')], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 }), null);
    const t = decideUnblock({ task: blocked(), dependencies: [dep('a2', 'completed', 2), dep('a1', 'completed', 1)], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 })!;
    assert.deepEqual([t.kind, t.fromStatus, t.set.status, t.set.waitingFor, t.set.runAt], ['unblock', 'blocked', 'pending', null, 5]);
    assert.deepEqual(t.set.dependencies?.map((o) => [o.id, o.result]), [['a1', 1], ['a2', 2]]);
    assert.equal(t.set.input, undefined);
  });
  it('fails at once on a failed dependency under "fail"; under "run" waits for all, then runs', () => {
    const failed = decideUnblock({ task: blocked(), dependencies: [dep('a1', 'failed'), dep('a2', 'running')], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 })!;
    assert.deepEqual([failed.kind, failed.set.status, failed.set.error?.code, failed.endsTask], ['dependency_failed', 'failed', 'DEPENDENCY_FAILED', true]);
    assert.equal(decideUnblock({ task: blocked({ onDependencyFailure: 'run' }), dependencies: [dep('a1', 'failed'), dep('a2', 'running')], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 }), null);
    const ran = decideUnblock({ task: blocked({ onDependencyFailure: 'run' }), dependencies: [dep('a1', 'failed'), dep('a2', 'cancelled')], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 })!;
    assert.equal(ran.kind, 'unblock');
    // A dependency that no longer exists counts as cancelled.
    const gone = decideUnblock({ task: blocked(), dependencies: [dep('a1', 'completed')], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 })!;
    assert.deepEqual([gone.kind, (gone.set.error?.details as { status: string }).status], ['dependency_failed', 'cancelled']);
  });
  it('applies the template, fails on a missing value, and leaves oversized results out of the outcomes', () => {
    const task = blocked({ waitingFor: ['a1'], inputFrom: { v: { $from: '/result/v' } } });
    const t = decideUnblock({ task, dependencies: [dep('a1', 'completed', { v: 'x'.repeat(50) })], now: 5, maxResultBytes: 10, maxInputBytes: 1_000 })!;
    assert.deepEqual(t.set.input, { v: 'x'.repeat(50) });
    assert.deepEqual([t.set.dependencies?.[0]?.result, t.set.dependencies?.[0]?.resultOmitted], [null, true]);
    const missing = decideUnblock({ task, dependencies: [dep('a1', 'completed', {})], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 })!;
    assert.deepEqual([missing.kind, missing.set.error?.code], ['dependency_failed', 'DEPENDENCY_INPUT_MISSING']);
    assert.equal(decideUnblock({ task: { ...task, status: 'pending' }, dependencies: [], now: 5, maxResultBytes: 100, maxInputBytes: 1_000 }), null);
  });
  it('requeues a failed task with dependencies as blocked on them again, and one without as pending', () => {
    const head = { id: 'd', seq: 1, status: 'failed' as const, priority: 5, agent: 'b', capabilities: [], replica: null, site: null, concurrencyKey: null, attempt: 1, maxAttempts: 1, timeoutMs: 1, runAt: 0, assignmentId: null, cancelRequestedAt: null, parentId: null, slaDeadline: null };
    const again = decideRequeue({ task: { ...head, dependsOn: ['a1', 'a2'] }, now: 5 });
    assert.deepEqual([again.set.status, again.set.waitingFor, again.set.dependencies], ['blocked', ['a1', 'a2'], null]);
    const plain = decideRequeue({ task: { ...head, dependsOn: [] }, now: 5 });
    assert.deepEqual([plain.set.status, plain.set.waitingFor, 'dependencies' in plain.set], ['pending', undefined, false]);
  });
  it('fails the dependent when the values its template puts in are past the input limit (a result copied many times)', () => {
    // 20 bytes of template per copy of a 1,002-byte result: without a bound, a 1 MB body makes a 50 GB input.
    const task = blocked({ waitingFor: ['a1'], inputFrom: Array.from({ length: 50 }, () => ({ $from: '/result' })) });
    const big = dep('a1', 'completed', 'x'.repeat(1_000));
    const failed = decideUnblock({ task, dependencies: [big], now: 5, maxResultBytes: 100_000, maxInputBytes: 10_000 })!;
    assert.deepEqual([failed.kind, failed.set.error?.code, failed.set.error?.details], ['dependency_failed', 'DEPENDENCY_INPUT_TOO_LARGE', { path: '/9', from: '/result', limit: 10_000 }]);
    // Under the limit it is filled.
    const fits = decideUnblock({ task, dependencies: [big], now: 5, maxResultBytes: 100_000, maxInputBytes: 60_000 })!;
    assert.equal(fits.kind, 'unblock');
    assert.equal((fits.set.input as string[]).length, 50);
  });
});
