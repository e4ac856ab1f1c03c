// Usage and cost (issue 16, docs/usage.md) over both worker transports: SDK workers (WebSocket
// and HTTP lease) report what each attempt used with ctx.usage; the sums per agent, tree and
// day (GET /usage), the task view and the delegation report agree with what was reported. A
// RateLimitedError thrown by the handler is a 429: the task runs again without spending its
// one attempt, over either transport.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWorker, RateLimitedError, type FlotillaWorker } from '@flotilla/sdk';
import { TOKEN, withHarness } from './helpers/harness.ts';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`usage (${store})`, () => {
    it('usage reported over the socket and over HTTP is summed per agent, root and day, shown on the task and in the delegation report', async (t) => {
      await withHarness(t, store, async (h) => {
        const url = await h.listen();
        const workers: FlotillaWorker[] = [];
        try {
          const limitedOnce = new Set<string>();
          for (const transport of ['websocket', 'http'] as const) {
            const agent = `usage-${transport}`;
            await h.agent({ name: agent, maxConcurrency: 4 });
            const worker = createWorker({
              url, token: TOKEN, agent, transport, concurrency: 4, leaseWaitMs: 200,
              handler: async (task, ctx) => {
                // The first attempt of each task meets a 429 (retry at once): its usage counts too.
                if (!limitedOnce.has(task.id)) {
                  limitedOnce.add(task.id);
                  ctx.usage({ model: 'gpt-4o', inputTokens: 1 });
                  throw new RateLimitedError('429 Too Many Requests', { retryAfterMs: 0 });
                }
                ctx.usage({ model: 'gpt-4o', inputTokens: 100, costUsd: 0.01 });
                ctx.usage({ outputTokens: 20, costUsd: 0.005 });
                return { done: task.input };
              },
            });
            workers.push(worker);
            await worker.start();
          }
          const ids: Record<string, string[]> = { 'usage-websocket': [], 'usage-http': [] };
          for (const agent of Object.keys(ids)) {
            for (let i = 0; i < 2; i++) ids[agent]!.push((await h.submit({ agent, input: i, maxAttempts: 1, rateKey: 'openai:gpt-4o' })).id);
          }
          for (const id of Object.values(ids).flat()) {
            const done = (await h.api('GET', `/tasks/${id}?waitMs=20000`)).body;
            assert.equal(done.status, 'completed', `${id}: ${JSON.stringify(done.error)}`);
            assert.equal(done.attempt, 1, 'the 429 spent no attempt');
            assert.deepEqual(done.usage, { attempts: 2, inputTokens: 101, outputTokens: 20, costUsd: 0.015 });
          }
          const byAgent = (await h.api('GET', '/usage?groupBy=agent')).body;
          assert.deepEqual(byAgent.groups, ['usage-http', 'usage-websocket'].map((key) => ({ key, attempts: 4, inputTokens: 202, outputTokens: 40, costUsd: 0.03 })));
          const byRoot = (await h.api('GET', '/usage?groupBy=root')).body.groups as Array<{ key: string; inputTokens: number }>;
          assert.deepEqual(byRoot.map((g) => g.key).sort(), Object.values(ids).flat().sort());
          const byDay = (await h.api('GET', '/usage?groupBy=day')).body.groups as Array<{ key: string; attempts: number }>;
          assert.deepEqual(byDay, [{ key: new Date(h.now()).toISOString().slice(0, 10), attempts: 8, inputTokens: 404, outputTokens: 80, costUsd: 0.06 }]);
          const future = new Date(h.now() + 86_400_000).toISOString();
          assert.deepEqual((await h.api('GET', `/usage?groupBy=agent&since=${future}`)).body.groups, []);
          assert.equal((await h.api('GET', '/usage?groupBy=agent&since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z')).status, 400);
          assert.equal((await h.api('GET', '/usage?groupBy=model')).status, 400);
          const report = (await h.api('GET', '/reports/delegation')).body;
          const row = report.agents.find((a: { agent: string }) => a.agent === 'usage-websocket');
          assert.deepEqual(row.usage, { attempts: 4, inputTokens: 202, outputTokens: 40, costUsd: 0.03 });
        } finally {
          // Before the server closes: a worker left running would retry against a closed port.
          await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 0 })));
        }
      }, { config: { rateLimitPerSecond: 0 } });
    });
  });
}
