// The report retry loop (worker/channel.ts deliver): a transient refusal (503, the network) is
// retried for as long as heartbeats keep the attempt's lease alive; a refusal that may repeat
// every time (500 INTERNAL) only within the lease as it stood at the first failure, so a
// report the server cannot apply does not hold its slot for ten minutes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deliver, Leases, type ReportTry } from '../src/worker/channel.ts';

const LEASE_MS = 300;

async function run(transient: boolean, renewForMs: number): Promise<{ outcome: string; ms: number; tries: number }> {
  const leases = new Leases();
  leases.leaseMs = LEASE_MS;
  leases.renewed('a1');
  // Heartbeats renewing the lease, as the worker's beat does while the handler's report waits.
  const beat = setInterval(() => leases.renewed('a1'), 50);
  const stopBeat = setTimeout(() => clearInterval(beat), renewForMs);
  let tries = 0;
  const started = Date.now();
  try {
    const outcome = await deliver({
      op: 'complete', assignmentId: 'a1', log: () => {}, leases, stopped: () => false, stopping: new Promise(() => {}),
      send: async (): Promise<ReportTry> => {
        tries++;
        return { retry: transient ? '503 STORE_UNAVAILABLE' : '500 INTERNAL', transient };
      },
    });
    return { outcome: String(outcome), ms: Date.now() - started, tries };
  } finally {
    clearInterval(beat);
    clearTimeout(stopBeat);
  }
}

describe('report retries', () => {
  it('a transient refusal is retried while heartbeats keep the lease, then given up', { timeout: 10_000 }, async () => {
    const r = await run(true, 1_500);
    assert.equal(r.outcome, 'failed');
    // Renewed for 1.5 s, then lease (300 ms) and grace (300 ms) run out.
    assert.ok(r.ms >= 1_500 && r.ms < 3_000, `${r.ms} ms`);
    assert.ok(r.tries >= 3);
  });

  it('a 500 is retried only within the lease as it stood at the first failure, heartbeats or not', { timeout: 10_000 }, async () => {
    const r = await run(false, 5_000);
    assert.equal(r.outcome, 'failed');
    assert.ok(r.ms < 1_000, `gave up after ${r.ms} ms although heartbeats went on`);
    assert.ok(r.tries >= 2, 'it was retried at least once');
  });
});
