// The pure parts of a2a dispatch: the state mapping (core/a2a-states.ts) and the checks of an
// agent's a2a target (core/a2a-target.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { A2A_STATES, a2aResult, a2aStep } from '../src/core/a2a-states.ts';
import { a2aCardUrl, a2aTargetProblems } from '../src/core/a2a-target.ts';

describe('a2a states → attempt steps', () => {
  it('maps every state, with the stable codes and retryability of decisions.md 76', () => {
    const steps = Object.fromEntries(A2A_STATES.map((s) => {
      const step = a2aStep(s, 'why', false);
      return [s, step.kind === 'fail' ? `fail ${step.error.code} ${step.retryable ? 'retried' : 'final'}` : step.kind];
    }));
    assert.deepEqual(steps, {
      submitted: 'wait', working: 'running', 'input-required': 'ask', completed: 'complete',
      failed: 'fail A2A_TASK_FAILED retried', canceled: 'fail A2A_TASK_CANCELED final', rejected: 'fail A2A_TASK_REJECTED final',
      'auth-required': 'fail A2A_AUTH_REQUIRED final', unknown: 'fail A2A_PROTOCOL final',
    });
  });
  it('canceled is the cancellation Flotilla asked for; texts become progress, prompts and messages', () => {
    assert.deepEqual(a2aStep('canceled', '', true), { kind: 'cancelled' });
    assert.deepEqual(a2aStep('working', '  step 2 ', false), { kind: 'running', message: 'step 2' });
    assert.deepEqual(a2aStep('working', '', false), { kind: 'running', message: null });
    assert.deepEqual(a2aStep('input-required', 'which colour?', false), { kind: 'ask', prompt: 'which colour?' });
    assert.equal((a2aStep('input-required', '', false) as { prompt: string }).prompt, 'the A2A agent asks for input');
    const failed = a2aStep('failed', 'model down', false);
    assert.equal(failed.kind === 'fail' && failed.error.message, 'the A2A agent failed the task: model down');
    assert.deepEqual(a2aResult([], ' done '), { artifacts: [], message: 'done' });
    assert.deepEqual(a2aResult([{ artifactId: 'a', name: null, parts: [{ kind: 'text', text: 'hi' }] }], ''), {
      artifacts: [{ artifactId: 'a', name: null, parts: [{ kind: 'text', text: 'hi' }] }], message: null,
    });
  });
});

describe('a2a target', () => {
  it('exactly one of cardUrl and url, http(s), only for runtime a2a', () => {
    assert.deepEqual(a2aTargetProblems('a2a', { url: 'http://127.0.0.1:9400' }), []);
    assert.deepEqual(a2aTargetProblems('a2a', { cardUrl: 'https://agents.example/card.json', headers: { a: 'b' } }), []);
    assert.deepEqual(a2aTargetProblems('pull', undefined), []);
    assert.deepEqual(a2aTargetProblems('pull', null), []);
    const paths = (runtime: string, a2a: Parameters<typeof a2aTargetProblems>[1]) => a2aTargetProblems(runtime, a2a).map((p) => p.path);
    assert.deepEqual(paths('a2a', undefined), ['/a2a']);
    assert.deepEqual(paths('pull', { url: 'http://x' }), ['/a2a']);
    assert.deepEqual(paths('a2a', {}), ['/a2a']);
    assert.deepEqual(paths('a2a', { url: 'http://x', cardUrl: 'http://x/c' }), ['/a2a']);
    assert.deepEqual(paths('a2a', { url: 'not a url' }), ['/a2a/url']);
    assert.deepEqual(paths('a2a', { cardUrl: 'file:///etc/passwd' }), ['/a2a/cardUrl']);
  });
  it('the card is cardUrl, or the well-known path under url', () => {
    assert.equal(a2aCardUrl({ cardUrl: 'http://h/c.json' }), 'http://h/c.json');
    assert.equal(a2aCardUrl({ url: 'http://h:1/base/' }), 'http://h:1/base/.well-known/agent-card.json');
    assert.equal(a2aCardUrl({ url: 'http://h:1' }), 'http://h:1/.well-known/agent-card.json');
  });
});
