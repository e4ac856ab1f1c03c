import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { findCycles, importGraph } from '../../../scripts/import-cycles.ts';

describe('import cycles', () => {
  it('finds a cycle, once, and none in an acyclic graph', () => {
    const cyclic = new Map([['a', ['b']], ['b', ['c']], ['c', ['a', 'd']], ['d', []]]);
    assert.deepEqual(findCycles(cyclic), [['a', 'b', 'c']]);
    assert.deepEqual(findCycles(new Map([['a', ['b']], ['b', ['c']], ['c', []]])), []);
  });

  it('the packages have none', () => {
    const graph = importGraph([fileURLToPath(new URL('../../', import.meta.url))]);
    assert.ok(graph.size > 30);
    assert.deepEqual(findCycles(graph), []);
  });
});
