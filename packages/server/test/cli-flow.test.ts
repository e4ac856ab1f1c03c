// `flotilla rate-limits ls|set|rm`, `flotilla submit --rate-key --tokens` and `flotilla usage
// --by`, as real CLI processes against an in-process server: what they print and send.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from './helpers/harness.ts';
import { runCli } from './helpers/cli-process.ts';

let h: Harness;
let url: string;

before(async () => {
  h = await harness({ config: { rateLimitPerSecond: 0 } });
  url = await h.listen();
  await h.agent({ name: 'llm' });
});
after(() => h.close());

describe('flow control in the CLI', () => {
  it('rate-limits set, ls and rm; submit with a rate key and an estimate', async () => {
    const set = await runCli(url, ['rate-limits', 'set', 'openai:gpt-4o', '--rpm', '60', '--tpm', '90000']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /openai:gpt-4o\s+60\s+90000/);
    const ls = await runCli(url, ['rate-limits', '--json']);
    assert.deepEqual(JSON.parse(ls.stdout).map((r: { key: string; rpm: number }) => [r.key, r.rpm]), [['openai:gpt-4o', 60]]);
    const none = await runCli(url, ['rate-limits', 'set', 'k']);
    assert.equal(none.code, 2);
    const submitted = await runCli(url, ['submit', '--agent', 'llm', '--rate-key', 'openai:gpt-4o', '--tokens', '1200', '--json']);
    assert.equal(submitted.code, 0, submitted.stderr);
    const task = JSON.parse(submitted.stdout);
    assert.deepEqual([task.rateKey, task.estimatedTokens], ['openai:gpt-4o', 1200]);
    const rm = await runCli(url, ['rate-limits', 'rm', 'openai:gpt-4o']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await runCli(url, ['rate-limits', 'rm', 'openai:gpt-4o'])).code, 1);
    assert.match((await runCli(url, ['rate-limits'])).stdout, /no rate limits/);
  });

  it('usage --by agent|root|day prints the sums; a wrong --by is a usage error', async () => {
    const task = await h.submit({ agent: 'llm' });
    const replica = await h.register('llm', { maxConcurrency: 5 });
    // The first test's task is in the queue too (older): take both, report on this one.
    const leased = (await h.lease(replica, 5)).find((l) => l.task.id === task.id)!;
    assert.ok(leased);
    await h.api('POST', `/assignments/${leased.assignmentId}/complete`, { replicaId: replica, result: 1, usage: { inputTokens: 7, outputTokens: 3, costUsd: 0.25 } });
    const byAgent = await runCli(url, ['usage']);
    assert.equal(byAgent.code, 0, byAgent.stderr);
    assert.match(byAgent.stdout, /llm\s+1\s+7\s+3\s+0\.250000/);
    const byRoot = JSON.parse((await runCli(url, ['usage', '--by', 'root', '--json'])).stdout);
    assert.deepEqual(byRoot.groups.map((g: { key: string }) => g.key), [task.id]);
    const byDay = JSON.parse((await runCli(url, ['usage', '--by', 'day', '--since', '1d', '--json'])).stdout);
    assert.equal(byDay.groups.length, 1);
    assert.equal((await runCli(url, ['usage', '--by', 'model'])).code, 2);
  });
});
