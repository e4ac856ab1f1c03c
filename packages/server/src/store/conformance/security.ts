// Conformance: what the security features keep in the store. The lifecycle of API keys
// (expiry, revocation, creator, agent scope). The store only records and guards; deciding
// whether a key is still good is the caller's, so expired and revoked keys are always readable.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { T0, apiKeyRecord, storeTest, type OpenStore } from './harness.ts';

export function securityTests(open: OpenStore): void {
  describe('api keys: lifecycle', () => {
    storeTest(open, 'round-trips every field, reads a key by id and lists keys by creation', async ({ store }) => {
      const agentKey = apiKeyRecord({
        id: 'key-b', name: 'worker for alpha', role: 'agent', createdAt: T0 + 5, lastUsedAt: T0 + 6, expiresAt: T0 + 86_400_000,
        createdBy: 'key-admin', agents: ['alpha', 'beta'],
      });
      const noAgents = apiKeyRecord({ id: 'key-a', role: 'agent', createdAt: T0 + 5, agents: [] });
      const first = apiKeyRecord({ id: 'key-c', createdAt: T0 });
      for (const key of [agentKey, noAgents, first]) await store.apiKeyCreate({ key });
      assert.deepEqual(await store.apiKeyGet({ id: agentKey.id }), agentKey);
      assert.deepEqual(await store.apiKeyGet({ id: noAgents.id }), noAgents, 'an empty agent list is not null');
      assert.deepEqual(await store.apiKeyFindByHash({ hash: agentKey.hash }), agentKey);
      assert.equal(await store.apiKeyGet({ id: 'key-none' }), null);
      // createdAt, then id.
      assert.deepEqual(await store.apiKeyList({}), [first, noAgents, agentKey]);
      assert.deepEqual(await store.apiKeyList({ includeRevoked: true }), [first, noAgents, agentKey]);
    });

    storeTest(open, 'revokes a key once: guarded, left out of the list unless asked, still found by hash', async ({ store }) => {
      const key = apiKeyRecord({ createdAt: T0 });
      const other = apiKeyRecord({ createdAt: T0 + 1 });
      const expired = apiKeyRecord({ createdAt: T0 + 2, expiresAt: T0 + 3 });
      for (const k of [key, other, expired]) await store.apiKeyCreate({ key: k });

      assert.deepEqual(await store.apiKeyRevoke({ id: key.id, at: T0 + 100 }), { revoked: true });
      assert.deepEqual(await store.apiKeyRevoke({ id: key.id, at: T0 + 200 }), { revoked: false }, 'already revoked');
      assert.deepEqual(await store.apiKeyRevoke({ id: 'key-none', at: T0 + 200 }), { revoked: false }, 'unknown');
      const revoked = { ...key, revokedAt: T0 + 100 };
      assert.deepEqual(await store.apiKeyGet({ id: key.id }), revoked, 'the first revocation time is kept');
      assert.deepEqual(await store.apiKeyFindByHash({ hash: key.hash }), revoked, 'the caller decides what a revoked key may do');
      assert.deepEqual(await store.apiKeyList({}), [other, expired], 'expired keys are listed, revoked ones are not');
      assert.deepEqual(await store.apiKeyList({ includeRevoked: true }), [revoked, other, expired]);
      assert.equal(await store.apiKeyCount(), 3);
      // Touching a revoked key records the use and leaves the revocation alone.
      await store.apiKeyTouch({ id: key.id, at: T0 + 300 });
      assert.deepEqual(await store.apiKeyGet({ id: key.id }), { ...revoked, lastUsedAt: T0 + 300 });
    });

    storeTest(open, 'of revocations racing, from one process or several, exactly one wins', async ({ store, peer }) => {
      const key = apiKeyRecord();
      await store.apiKeyCreate({ key });
      const stores = peer ? [store, await peer(), await peer()] : [store];
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => stores[i % stores.length]!.apiKeyRevoke({ id: key.id, at: T0 + i })));
      assert.equal(results.filter((r) => r.revoked).length, 1);
      const at = results.findIndex((r) => r.revoked);
      assert.equal((await store.apiKeyGet({ id: key.id }))?.revokedAt, T0 + at, 'the winner\'s time is the one recorded');
    });
  });

}
