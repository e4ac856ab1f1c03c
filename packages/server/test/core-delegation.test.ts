import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  atDepthLimit, candidateAgents, childCorrelation, childTraceparent, depthLimit, levelRefusal, type DelegationAgent,
} from '../src/core/delegation.ts';

const agent = (name: string, over: Partial<DelegationAgent> = {}): DelegationAgent => ({ name, capabilities: [], level: 1, maxDepth: null, ...over });

describe('delegation', () => {
  it('candidates: the named agent, or every agent serving the capabilities', () => {
    const all = [agent('a', { capabilities: ['nlp'] }), agent('b', { capabilities: ['nlp', 'gpu'] }), agent('c')];
    assert.deepEqual(candidateAgents({ agent: 'c', capabilities: [] }, all).map((a) => a.name), ['c']);
    assert.deepEqual(candidateAgents({ agent: null, capabilities: ['nlp'] }, all).map((a) => a.name), ['a', 'b']);
    assert.deepEqual(candidateAgents({ agent: 'gone', capabilities: [] }, all), []);
  });

  it('depth limit: an override narrows the server\'s, never widens it; the smallest candidate wins', () => {
    assert.equal(depthLimit(3, []), 3);
    assert.equal(depthLimit(3, [agent('a')]), 3);
    assert.equal(depthLimit(3, [agent('a', { maxDepth: 2 })]), 2);
    assert.equal(depthLimit(3, [agent('a', { maxDepth: 5 })]), 3);
    assert.equal(depthLimit(5, [agent('a', { maxDepth: 4 }), agent('b', { maxDepth: 2 }), agent('c')]), 2);
    assert.ok(atDepthLimit({ depth: 2 }, 2) && atDepthLimit({ depth: 3 }, 2) && !atDepthLimit({ depth: 1 }, 2));
  });

  it('levels: a child must be of a greater level; equal only when allowed', () => {
    const p = (level: number, name = 'lead') => [agent(name, { level })];
    assert.equal(levelRefusal({ parentId: 't', parent: p(1), child: p(2, 'w'), allowEqualLevel: false }), null);
    const same = levelRefusal({ parentId: 't', parent: p(2), child: p(2, 'w'), allowEqualLevel: false });
    assert.deepEqual(same?.details, { parentLevel: 2, childLevel: 2, allowEqualLevel: false });
    assert.match(same!.message, /task t runs at level 2 \(agent "lead"\) and agent "w" is at level 2: .*greater level/);
    assert.equal(levelRefusal({ parentId: 't', parent: p(2), child: p(2, 'w'), allowEqualLevel: true }), null);
    const up = levelRefusal({ parentId: 't', parent: p(3), child: p(2, 'w'), allowEqualLevel: true });
    assert.deepEqual(up?.details, { parentLevel: 3, childLevel: 2, allowEqualLevel: true });
    assert.match(up!.message, /the same or a greater level/);
  });

  it('levels of capability routing: the strictest candidate on each side', () => {
    const refusal = levelRefusal({
      parentId: 't', parent: [agent('p1', { level: 1 }), agent('p2', { level: 2 })], child: [agent('c1', { level: 3 }), agent('c2', { level: 2 })], allowEqualLevel: false,
    });
    assert.deepEqual(refusal?.details, { parentLevel: 2, childLevel: 2, allowEqualLevel: false });
    assert.match(refusal!.message, /agent "p2".*agent "c2"/);
    assert.equal(levelRefusal({ parentId: 't', parent: [], child: [agent('c', { level: 1 })], allowEqualLevel: false }), null, 'a parent whose agent is gone has no level');
  });

  it('a child inherits its parent\'s trace (a new span) and correlation (its own keys win)', () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    assert.equal(childTraceparent(tp, '1111111111111111'), '00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01');
    assert.equal(childTraceparent(null, '1111111111111111'), null);
    assert.equal(childTraceparent('garbage', '1111111111111111'), null);
    assert.deepEqual(childCorrelation({ caseId: 'C-1', step: 'a' }, { step: 'b', extra: 'x' }), { caseId: 'C-1', step: 'b', extra: 'x' });
    assert.deepEqual(childCorrelation({ caseId: 'C-1' }, undefined), { caseId: 'C-1' });
  });
});
