import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactSecretRefs, resolveSecretRefs, SecretRefMissing } from '../src/core/secret-refs.ts';

describe('secret references', () => {
  it('resolves literals as they are and env references from the given environment', () => {
    assert.deepEqual(resolveSecretRefs({ 'x-team': 'blue', authorization: { env: 'TOKEN_A' } }, { TOKEN_A: 'Bearer s3cret' }), { 'x-team': 'blue', authorization: 'Bearer s3cret' });
    assert.deepEqual(resolveSecretRefs(undefined, {}), {});
  });

  it('refuses an unset variable by name instead of sending an empty value', () => {
    assert.throws(() => resolveSecretRefs({ authorization: { env: 'NOT_SET_ANYWHERE' } }, {}), (e: unknown) => e instanceof SecretRefMissing && e.variable === 'NOT_SET_ANYWHERE' && e.key === 'authorization');
  });

  it('redacts: references shown as references, literals never shown', () => {
    assert.deepEqual(redactSecretRefs({ a: 'literal', b: { env: 'B' } }), { a: '***', b: { env: 'B' } });
  });
});
