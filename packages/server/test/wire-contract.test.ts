// The SDK's wire types and the server's JSON schemas describe the same fields. The literals
// below must name every field of the type (the type checker enforces `Required<...>` with no
// excess properties); the test then compares them with the schemas the server validates with.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PRIORITY_ALIASES, PRIORITY_MAX, PRIORITY_MIN, type AgentSpec, type TaskSpec } from '@flotilla/sdk';
import { agentSpecSchema, taskSpecSchema } from '../src/schemas/schemas.ts';

const everyTaskField: Required<TaskSpec> = {
  type: '', agent: '', capabilities: [], input: null, priority: 0, maxAttempts: 1, timeoutMs: 1, runAt: '', delayMs: 0,
  idempotencyKey: '', concurrencyKey: '', replica: '', site: '', correlation: {}, traceparent: '', parentId: '', tools: {}, deadline: '', slaMs: 1,
  allowDegraded: false,
  dependsOn: [], onDependencyFailure: 'fail', inputFrom: null, then: {}, ref: '',
  notify: { url: '' },
  cacheKey: '', cacheTtlMs: 1,
  rateKey: '', estimatedTokens: 0,
};
const everyAgentField: Required<AgentSpec> = {
  name: '', description: '', capabilities: [], maxConcurrency: 1, maxAttempts: 1, timeoutMs: 1, level: 1, toolDomains: [], tools: [],
  maxDepth: null, concurrencyLimits: {}, retry: {}, runtime: 'pull', a2a: null,
  a2aSkill: null,
  maxInFlight: null,
};

describe('wire contract', () => {
  it('TaskSpec and the submit schema have the same fields', () => {
    assert.deepEqual(Object.keys(everyTaskField).sort(), Object.keys(taskSpecSchema.properties).sort());
  });
  it('AgentSpec and the agent schema have the same fields', () => {
    assert.deepEqual(Object.keys(everyAgentField).sort(), Object.keys(agentSpecSchema.properties).sort());
  });
  it('one priority scale: the schema takes exactly the SDK\'s range', () => {
    const [aliases, scale] = taskSpecSchema.properties.priority.anyOf;
    assert.equal(scale.minimum, PRIORITY_MIN);
    assert.equal(scale.maximum, PRIORITY_MAX);
    assert.deepEqual([...aliases.enum], Object.keys(PRIORITY_ALIASES));
  });
});
