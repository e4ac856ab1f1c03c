// Conformance: what the security features keep in the store. The lifecycle of API keys
// (expiry, revocation, creator, agent scope), revoked signed tokens, and the append-only audit
// log. The store only records and guards; deciding whether a key or token is still good is
// the caller's, so expired and revoked keys are always readable.

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import type { AuditOutcome, AuditRecord } from '../store.ts';
import { T0, apiKeyRecord, auditEntry, storeTest, type OpenStore } from './harness.ts';

function seqs(records: ReadonlyArray<{ seq: number }>): number[] {
  return records.map((r) => r.seq);
}

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

  describe('token revocations', () => {
    storeTest(open, 'revokes idempotently and lists revocations since a time, in revocation order', async ({ store }) => {
      assert.deepEqual(await store.tokenRevocationList({ since: 0 }), []);
      assert.deepEqual(await store.tokenRevoke({ jti: 'j1', at: T0 + 10, expiresAt: T0 + 1_000 }), { revoked: true });
      assert.deepEqual(await store.tokenRevoke({ jti: 'j2', at: T0 + 5, expiresAt: T0 + 2_000 }), { revoked: true });
      assert.deepEqual(await store.tokenRevoke({ jti: 'j3', at: T0 + 20, expiresAt: T0 + 3_000 }), { revoked: true });
      assert.deepEqual(await store.tokenRevoke({ jti: 'j0', at: T0 + 20, expiresAt: T0 + 3_000 }), { revoked: true });
      // Again, even with other times: nothing changes and nothing throws.
      assert.deepEqual(await store.tokenRevoke({ jti: 'j1', at: T0 + 30, expiresAt: T0 + 9_000 }), { revoked: false });
      const j1 = { jti: 'j1', revokedAt: T0 + 10, expiresAt: T0 + 1_000 };
      const j2 = { jti: 'j2', revokedAt: T0 + 5, expiresAt: T0 + 2_000 };
      const j0 = { jti: 'j0', revokedAt: T0 + 20, expiresAt: T0 + 3_000 };
      const j3 = { jti: 'j3', revokedAt: T0 + 20, expiresAt: T0 + 3_000 };
      assert.deepEqual(await store.tokenRevocationList({ since: 0 }), [j2, j1, j0, j3], 'by revokedAt, then jti');
      assert.deepEqual(await store.tokenRevocationList({ since: T0 + 10 }), [j1, j0, j3], 'since is inclusive');
      assert.deepEqual(await store.tokenRevocationList({ since: T0 + 21 }), []);
    });

    storeTest(open, 'revocations made by one process are listed by every process (a single-process store: by itself)', async ({ store, peer }) => {
      // A single-process store has no other process; concurrent revokes through it must still converge.
      const other = peer ? await peer() : store;
      await Promise.all([
        store.tokenRevoke({ jti: 'same', at: T0, expiresAt: T0 + 1_000 }),
        other.tokenRevoke({ jti: 'same', at: T0 + 1, expiresAt: T0 + 1_000 }),
        other.tokenRevoke({ jti: 'theirs', at: T0 + 2, expiresAt: T0 + 1_000 }),
      ]);
      for (const s of [store, other]) {
        assert.deepEqual((await s.tokenRevocationList({ since: T0 })).map((r) => r.jti), ['same', 'theirs']);
      }
    });

    storeTest(open, 'secretEnsure: the first value stored under a name wins, for every process', async ({ store, peer }) => {
      const other = peer ? await peer() : store;
      const [a, b] = await Promise.all([
        store.secretEnsure({ name: 'signing', value: 'first', at: T0 }),
        other.secretEnsure({ name: 'signing', value: 'second', at: T0 }),
      ]);
      assert.equal(a, b, 'both processes agree');
      assert.ok(a === 'first' || a === 'second');
      assert.equal(await store.secretEnsure({ name: 'signing', value: 'third', at: T0 + 1 }), a, 'never replaced');
      assert.equal(await store.secretEnsure({ name: 'other', value: 'x', at: T0 }), 'x', 'names are independent');
    });

    storeTest(open, 'prunes the revocations of tokens that have expired anyway', async ({ store }) => {
      for (const [jti, expiresAt] of [['a', T0 + 100], ['b', T0 + 200], ['c', T0 + 300]] as const) {
        await store.tokenRevoke({ jti, at: T0, expiresAt });
      }
      assert.equal(await store.tokenRevocationPrune({ expiredBefore: T0 + 200 }), 1, 'expiring exactly then is kept');
      assert.deepEqual((await store.tokenRevocationList({ since: 0 })).map((r) => r.jti), ['b', 'c']);
      assert.equal(await store.tokenRevocationPrune({ expiredBefore: T0 + 200 }), 0);
      assert.equal(await store.tokenRevocationPrune({ expiredBefore: T0 + 10_000 }), 2);
      assert.deepEqual(await store.tokenRevocationList({ since: 0 }), []);
    });
  });

  describe('audit log', () => {
    storeTest(open, 'appends entries in order with increasing seqs and round-trips every field', async ({ store }) => {
      const entries = [
        auditEntry({ at: T0 + 1, target: 'task/t-1', details: { spec: { agent: 'alpha', tags: ['a', null, 1.5] }, unicode: 'é✓' } }),
        auditEntry({
          at: T0 + 2, principalId: null, principalName: null, role: null, action: 'auth.failed', outcome: 'denied', status: 401,
          requestId: null, source: null,
        }),
        auditEntry({ at: T0 + 3, action: 'agent.delete', target: 'agent/alpha', outcome: 'failed', status: 409, details: [] }),
      ];
      const appended = await store.auditAppend({ entries });
      assert.deepEqual(appended.map(({ seq: _seq, ...rest }) => rest), entries);
      for (let i = 1; i < appended.length; i++) assert.ok(appended[i]!.seq > appended[i - 1]!.seq, 'seqs increase in order');
      const { items, nextBefore } = await store.auditList({ limit: 10 });
      assert.deepEqual(items, [...appended].reverse(), 'newest first, every field as written');
      assert.equal(nextBefore, null);
      assert.deepEqual(await store.auditAppend({ entries: [] }), []);
      const later = await store.auditAppend({ entries: [auditEntry()] });
      assert.ok(later[0]!.seq > appended.at(-1)!.seq);
    });

    storeTest(open, 'a call with an invalid entry writes none of its entries', async ({ store }) => {
      const good = auditEntry();
      const bad = auditEntry({ outcome: 'maybe' as AuditOutcome });
      await assert.rejects(store.auditAppend({ entries: [good, bad] }));
      assert.deepEqual((await store.auditList({ limit: 10 })).items, []);
    });

    storeTest(open, 'many appends issued at once all commit, with distinct seqs', async ({ store }) => {
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => store.auditAppend({ entries: [auditEntry({ status: i })] })));
      const all = results.flat();
      assert.equal(new Set(seqs(all)).size, 60);
      const { items } = await store.auditList({ limit: 100 });
      assert.deepEqual(seqs(items), seqs(all).sort((a, b) => b - a));
    });

    storeTest(open, 'pages newest first with nextBefore, without gaps or repeats', async ({ store }) => {
      const appended = await store.auditAppend({ entries: Array.from({ length: 25 }, (_, i) => auditEntry({ at: T0 + i })) });
      const expected = seqs([...appended].reverse());
      for (const size of [7, 5, 25, 30]) {
        const seen: number[] = [];
        let before: number | null = null;
        let pages = 0;
        do {
          const page: { items: AuditRecord[]; nextBefore: number | null } = await store.auditList({ limit: size, ...(before === null ? {} : { before }) });
          pages += 1;
          assert.ok(pages <= 26, 'paging ends');
          assert.ok(page.items.length <= size);
          seen.push(...seqs(page.items));
          before = page.nextBefore;
        } while (before !== null);
        assert.deepEqual(seen, expected, `page size ${size}`);
        assert.equal(pages, Math.max(1, Math.ceil(25 / size)), `no empty trailing page for size ${size}`);
      }
      assert.deepEqual((await store.auditList({ limit: 0 })).items, []);
    });

    storeTest(open, 'filters by principal, action, outcome and time window, all together', async ({ store }) => {
      const [a1, b1, a2, anon, a3, b2] = await store.auditAppend({
        entries: [
          auditEntry({ at: T0 + 10, principalId: 'alice', action: 'task.submit' }),
          auditEntry({ at: T0 + 20, principalId: 'bob', action: 'task.cancel', outcome: 'denied', status: 403 }),
          auditEntry({ at: T0 + 30, principalId: 'alice', action: 'task.cancel' }),
          auditEntry({ at: T0 + 40, principalId: null, action: 'auth.failed', outcome: 'denied', status: 401 }),
          auditEntry({ at: T0 + 50, principalId: 'alice', action: 'key.revoke', outcome: 'failed', status: 500 }),
          auditEntry({ at: T0 + 60, principalId: 'bob', action: 'task.submit' }),
        ],
      });
      const list = (params: Omit<Parameters<typeof store.auditList>[0], 'limit'>) => store.auditList({ limit: 50, ...params }).then((p) => seqs(p.items));
      assert.deepEqual(await list({ principalId: 'alice' }), seqs([a3!, a2!, a1!]));
      assert.deepEqual(await list({ action: 'task.cancel' }), seqs([a2!, b1!]));
      assert.deepEqual(await list({ outcome: 'denied' }), seqs([anon!, b1!]));
      assert.deepEqual(await list({ outcome: 'failed' }), seqs([a3!]));
      assert.deepEqual(await list({ outcome: 'allowed' }), seqs([b2!, a2!, a1!]));
      assert.deepEqual(await list({ since: T0 + 20, until: T0 + 50 }), seqs([anon!, a2!, b1!]), 'since inclusive, until exclusive');
      assert.deepEqual(await list({ since: T0 + 50 }), seqs([b2!, a3!]));
      assert.deepEqual(await list({ until: T0 + 20 }), seqs([a1!]));
      assert.deepEqual(await list({ principalId: 'alice', action: 'task.cancel' }), seqs([a2!]));
      assert.deepEqual(await list({ principalId: 'bob', outcome: 'denied', since: T0 + 20, until: T0 + 21 }), seqs([b1!]));
      assert.deepEqual(await list({ principalId: 'alice', before: a3!.seq }), seqs([a2!, a1!]));
      assert.deepEqual(await list({ principalId: 'carol' }), []);
      // Paging through a filter.
      const first = await store.auditList({ limit: 2, principalId: 'alice' });
      assert.deepEqual([seqs(first.items), first.nextBefore], [seqs([a3!, a2!]), a2!.seq]);
      const second = await store.auditList({ limit: 2, principalId: 'alice', before: first.nextBefore! });
      assert.deepEqual([seqs(second.items), second.nextBefore], [seqs([a1!]), null]);
    });

    storeTest(open, 'prunes entries older than the horizon, oldest first, at most `limit` per call', async ({ store }) => {
      const appended = await store.auditAppend({ entries: [5, 1, 4, 2, 3, 100].map((k) => auditEntry({ at: T0 + k })) });
      const left = async () => (await store.auditList({ limit: 10 })).items.map((e) => e.at - T0).sort((a, b) => a - b);
      assert.equal(await store.auditPrune({ before: T0 + 50, limit: 2 }), 2);
      assert.deepEqual(await left(), [3, 4, 5, 100]);
      assert.equal(await store.auditPrune({ before: T0 + 50, limit: 10 }), 3);
      assert.equal(await store.auditPrune({ before: T0 + 50, limit: 10 }), 0);
      assert.equal(await store.auditPrune({ before: T0 + 100, limit: 10 }), 0, 'the horizon is exclusive');
      assert.deepEqual(await left(), [100]);
      // Seqs are never reused after a prune.
      const [next] = await store.auditAppend({ entries: [auditEntry()] });
      assert.ok(next!.seq > Math.max(...seqs(appended)));
    });
  });
}
