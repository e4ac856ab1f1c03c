import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactSecretRefs, resolveSecretRefs, SECRET_ENV_PATTERN, SecretRefMissing } from '../src/core/secret-refs.ts';

describe('secret references', () => {
  it('resolves literals as they are and env references from the given environment', () => {
    assert.deepEqual(resolveSecretRefs({ 'x-team': 'blue', authorization: { env: 'FLOTILLA_SECRET_TOKEN_A' } }, { FLOTILLA_SECRET_TOKEN_A: 'Bearer s3cret' }), { 'x-team': 'blue', authorization: 'Bearer s3cret' });
    assert.deepEqual(resolveSecretRefs(undefined, {}), {});
  });

  it('refuses an unset variable by name instead of sending an empty value', () => {
    assert.throws(() => resolveSecretRefs({ authorization: { env: 'FLOTILLA_SECRET_NOT_SET' } }, {}), (e: unknown) => e instanceof SecretRefMissing && e.variable === 'FLOTILLA_SECRET_NOT_SET' && e.key === 'authorization');
  });

  it('resolves only FLOTILLA_SECRET_* variables: the server\'s own secrets and environment never leave it', () => {
    const env = { FLOTILLA_ADMIN_TOKEN: 'admin-token-0123456789', PATH: '/usr/bin', FLOTILLA_DATABASE_URL: 'postgres://x', FLOTILLA_SECRET_: 'empty-suffix' };
    for (const name of ['FLOTILLA_ADMIN_TOKEN', 'PATH', 'FLOTILLA_DATABASE_URL', 'FLOTILLA_SECRET_', 'flotilla_secret_x']) {
      assert.throws(() => resolveSecretRefs({ authorization: { env: name } }, env), (e: unknown) => e instanceof SecretRefMissing && e.variable === name && /FLOTILLA_SECRET_\*/.test(e.message), name);
      assert.equal(new RegExp(SECRET_ENV_PATTERN).test(name), false, name);
    }
    assert.equal(new RegExp(SECRET_ENV_PATTERN).test('FLOTILLA_SECRET_GITHUB_TOKEN'), true);
  });

  it('redacts: references shown as references, literals never shown', () => {
    assert.deepEqual(redactSecretRefs({ a: 'literal', b: { env: 'FLOTILLA_SECRET_B' } }), { a: '***', b: { env: 'FLOTILLA_SECRET_B' } });
  });
});
