import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALL_TOOLS, ceilingOf, covers, effectiveTools, intersect, meet, normalize, NO_TOOLS, permits, toolEntryProblem, toolList,
  toolListProblems, toolSetOf, type EffectiveToolsInput, type ToolSet,
} from '../src/core/tools.ts';

const set = (...entries: string[]): ToolSet => toolSetOf(entries);
const list = (s: ToolSet) => toolList(s);
const effective = (over: Partial<EffectiveToolsInput>) => effectiveTools({
  ceiling: ALL_TOOLS, parent: ALL_TOOLS, atMaxDepth: false, agentLabel: 'agent "a"', parentId: 'p1', ...over,
});
const tools = (over: Partial<EffectiveToolsInput>) => {
  const r = effective(over);
  assert.ok('tools' in r, JSON.stringify(r));
  return list(r.tools);
};

describe('tool grammar', () => {
  it('takes names, domain names, domain patterns and *', () => {
    for (const ok of ['search.web', 'web:search', 'web:*', '*', 'a', 'gh:repo.read', 'x-1:y_2', 'flotilla:spawn', 'flotilla:*']) {
      assert.equal(toolEntryProblem(ok), null, ok);
    }
  });

  it('refuses anything else, and names in the flotilla domain it does not define', () => {
    for (const bad of ['', ' ', 'web:', ':x', 'web:*:x', 'a:b:c', '*:x', 'web*', 'web:se*', '!web:x', '-a', 'a b', 'x'.repeat(129), 'flotilla:other']) {
      assert.notEqual(toolEntryProblem(bad), null, bad);
    }
    assert.deepEqual(toolListProblems(['web:*', 'bad name'], '/tools').map((p) => p.path), ['/tools/1']);
    assert.equal(toolListProblems(Array.from({ length: 257 }, (_, i) => `t${i}`), '/tools')[0]!.path, '/tools');
  });
});

describe('tool sets', () => {
  it('covers and meets: * ⊇ domain:* ⊇ domain:name', () => {
    assert.ok(covers('*', 'web:*') && covers('*', 'plain') && covers('web:*', 'web:search') && covers('web:*', 'web:*'));
    assert.ok(!covers('web:*', 'plain') && !covers('web:*', '*') && !covers('web:search', 'web:*') && !covers('web:*', 'webx:a'));
    assert.equal(meet('web:*', 'web:search'), 'web:search');
    assert.equal(meet('web:search', 'web:*'), 'web:search');
    assert.equal(meet('web:*', 'gh:*'), null);
    assert.equal(meet('*', 'gh:*'), 'gh:*');
    assert.equal(meet('a', 'b'), null);
  });

  it('intersects patterns and names both ways', () => {
    assert.deepEqual(list(intersect(set('web:*'), set('web:search'))), ['web:search']);
    assert.deepEqual(list(intersect(set('web:search'), set('web:*'))), ['web:search']);
    assert.deepEqual(list(intersect(set('web:*', 'gh:*'), set('*'))), ['gh:*', 'web:*']);
    assert.deepEqual(list(intersect(set('web:*'), set('gh:*'))), []);
    assert.deepEqual(list(intersect(set('web:*'), NO_TOOLS)), []);
    assert.deepEqual(list(intersect(set('web:*', '!web:delete'), set('web:delete', 'web:get'))), ['web:get']);
  });

  it('normalizes: covered entries go, fully excepted grants go, excepts of nothing granted go', () => {
    assert.deepEqual(list(normalize(set('web:search', 'web:*', 'web:*'))), ['web:*']);
    assert.deepEqual(list(normalize(set('web:search', '!web:*'))), []);
    assert.deepEqual(list(normalize(set('web:*', '!gh:x', '!web:delete', '!web:delete'))), ['web:*', '!web:delete']);
    assert.deepEqual(list(normalize(set('*', '!web:*', '!web:x'))), ['*', '!web:*']);
    assert.deepEqual(list(ceilingOf(['b', 'a', 'a'])), ['a', 'b']);
  });

  it('permits a tool granted and not excepted: an except wins over a wider grant', () => {
    const s = set('web:*', 'plain', '!web:delete');
    assert.ok(permits(s, 'web:search') && permits(s, 'plain'));
    assert.ok(!permits(s, 'web:delete') && !permits(s, 'gh:read') && !permits(NO_TOOLS, 'plain'));
    assert.ok(permits(ALL_TOOLS, 'anything:at-all'));
  });
});

describe('the effective set', () => {
  it('is ceiling ∩ parent ∩ allow − deny', () => {
    assert.deepEqual(tools({ ceiling: set('web:*', 'gh:*') }), ['gh:*', 'web:*']);
    assert.deepEqual(tools({ ceiling: set('web:*', 'gh:*'), parent: set('web:*', 'fs:*') }), ['web:*']);
    assert.deepEqual(tools({ ceiling: set('web:*', 'gh:*'), allow: ['web:search', 'gh:*'] }), ['gh:*', 'web:search']);
    assert.deepEqual(tools({ ceiling: set('web:search'), allow: ['web:*'] }), ['web:search'], 'a pattern allow within reach narrows to what the ceiling has');
    assert.deepEqual(tools({ ceiling: set('web:*'), deny: ['web:delete'] }), ['web:*', '!web:delete']);
    assert.deepEqual(tools({ ceiling: set('web:*'), allow: ['web:delete'], deny: ['web:*'] }), [], 'deny always wins');
    assert.deepEqual(tools({ ceiling: set('web:*'), allow: [] }), [], 'an empty allow allows nothing');
    assert.deepEqual(tools({ ceiling: NO_TOOLS }), []);
  });

  it('keeps the parent\'s excepts', () => {
    assert.deepEqual(tools({ ceiling: set('web:*'), parent: set('*', '!web:delete') }), ['web:*', '!web:delete']);
  });

  it('removes the delegation tools at the maximum depth', () => {
    assert.deepEqual(tools({ ceiling: set('flotilla:spawn', 'web:*'), atMaxDepth: true }), ['web:*']);
    assert.deepEqual(tools({ ceiling: set('*'), atMaxDepth: true }), ['*', '!flotilla:spawn']);
    assert.deepEqual(tools({ ceiling: set('flotilla:*'), atMaxDepth: true }), ['flotilla:*', '!flotilla:spawn']);
    assert.deepEqual(tools({ ceiling: set('flotilla:spawn'), atMaxDepth: false }), ['flotilla:spawn']);
  });

  it('refuses an allow outside the ceiling (400) before one outside the parent (403)', () => {
    const outside = effective({ ceiling: set('web:*'), parent: set('gh:*'), allow: ['gh:read', 'web:get'] });
    assert.ok('refusal' in outside);
    assert.equal(outside.refusal.code, 'TOOL_OUTSIDE_CEILING');
    assert.deepEqual(outside.refusal.details, { tools: ['gh:read'], allowed: ['web:*'] });
    assert.match(outside.refusal.message, /"gh:read", outside the tools agent "a" may use \(web:\*\)/);
    const widen = effective({ ceiling: set('web:*', 'gh:*'), parent: set('gh:*'), allow: ['gh:read', 'web:get'] });
    assert.ok('refusal' in widen);
    assert.equal(widen.refusal.code, 'TOOL_NOT_ALLOWED');
    assert.deepEqual(widen.refusal.details, { tools: ['web:get'], allowed: ['gh:*'] });
    assert.match(widen.refusal.message, /parent task p1 may not use/);
    const excepted = effective({ ceiling: set('web:*'), parent: set('web:*', '!web:delete'), allow: ['web:delete'] });
    assert.ok('refusal' in excepted && excepted.refusal.code === 'TOOL_NOT_ALLOWED', 'what the parent was denied is outside it');
    const none = effective({ ceiling: NO_TOOLS, allow: ['x'] });
    assert.ok('refusal' in none && none.refusal.code === 'TOOL_OUTSIDE_CEILING');
    assert.match(none.refusal.message, /\(none\)/);
  });
});
