// The dispatcher's rolling scan (engine/dispatcher.ts): a pass reads at most MAX_PAGES pages
// of the queue; with slots left it continues where it stopped, and once it has read to the
// end it starts from the head again only if something woke it meanwhile. A queue longer than
// those pages that no free slot may take must leave the dispatcher idle, not spinning
// through the queue for ever. On both stores.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withHarness } from './helpers/harness.ts';

/** More than MAX_PAGES (8) × PAGE_SIZE (256) tasks. */
const QUEUED = 2_200;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`the dispatcher's rolling scan (${store})`, () => {
    it('a long queue no free slot may take: the scan reads it to its end once and stops; a freed key dispatches the next', async (t) => {
      await withHarness(t, store, async (h) => {
        await h.agent({ name: 'keyed', maxConcurrency: 8, concurrencyLimits: { one: 1 } });
        const first = await h.register('keyed', { maxConcurrency: 1 });
        const held = await h.submit({ agent: 'keyed', concurrencyKey: 'one' });
        const [running] = await h.lease(first, 1);
        assert.equal(running?.task.id, held.id);
        // Everything else waits for the key the first task holds.
        for (let i = 0; i < QUEUED; i += 500) {
          const tasks = Array.from({ length: Math.min(500, QUEUED - i) }, () => ({ agent: 'keyed', concurrencyKey: 'one' }));
          assert.equal((await h.api('POST', '/tasks/batch', { tasks })).status, 201);
        }
        const free = await h.register('keyed', { maxConcurrency: 4 });
        const waiting = h.lease(free, 4, 30_000);
        while (!h.engine.dispatcher.waitingReplicaIds().includes(free)) await new Promise((r) => setTimeout(r, 5));
        // Idle within seconds (a spinning scan never is), after a bounded number of passes.
        let timer: NodeJS.Timeout | undefined;
        const idle = await Promise.race([
          h.engine.dispatcher.idle().then(() => true),
          new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), 15_000); }),
        ]);
        clearTimeout(timer);
        assert.ok(idle, `the dispatcher is still scanning after 15 s (${h.engine.dispatcher.passes} passes)`);
        const passes = h.engine.dispatcher.passes;
        assert.ok(passes < 20, `${passes} passes`);
        // The key is freed: the next task in line goes to the waiting replica.
        assert.equal((await h.api('POST', `/assignments/${running!.assignmentId}/complete`, { replicaId: first, result: null })).status, 200);
        const got = await waiting;
        assert.equal(got.length, 1);
      });
    });
  });
}
