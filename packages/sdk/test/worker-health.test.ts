// The worker's `health` option against a real server over both transports: what the check
// says reaches the replica's view, an unhealthy replica is offered nothing, and a check that
// throws reports unhealthy with its message.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorker, Flotilla, type FlotillaWorker, type HealthReport } from '../src/index.ts';
import { TOKEN } from '../../server/test/helpers/harness.ts';
import { startServerProcess, type ServerProcess } from '../../server/test/helpers/server-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-health-'));
let server: ServerProcess;
let client: Flotilla;
const workers: FlotillaWorker[] = [];

before(async () => {
  // Short leases: heartbeats every few hundred ms.
  server = await startServerProcess({ database: join(dir, 'f.db'), env: { FLOTILLA_LEASE_MS: '900', FLOTILLA_REPLICA_TTL_MS: '3000' } });
  client = new Flotilla({ url: server.url, token: TOKEN });
});
after(async () => {
  await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 100 })));
  await server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const transport of ['websocket', 'http'] as const) describe(`worker health over ${transport}`, () => {
  it('the check reaches the server; an unhealthy replica gets no task until it is healthy again', async () => {
    const agent = `health-${transport}`;
    await client.agents.create({ name: agent });
    let report: HealthReport = { health: 'unhealthy', healthDetail: { disk: 'full' } };
    const w = createWorker({
      url: server.url, token: TOKEN, agent, transport, leaseWaitMs: 1_000, log: () => {},
      health: () => report, handler: () => 'done',
    });
    workers.push(w);
    await w.start();
    await until('the unhealthy report', () => client.agents.replicas(agent), (rs) => rs[0]?.health === 'unhealthy');
    assert.deepEqual((await client.agents.replicas(agent))[0]!.healthDetail, { disk: 'full' });
    const task = await client.tasks.submit({ agent });
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal((await client.tasks.get(task.id)).status, 'pending');
    assert.equal((await client.tasks.get(task.id)).waitingReason, 'no_healthy_replica');
    report = { health: 'healthy' };
    assert.equal((await client.tasks.wait(task.id, { timeoutMs: 10_000 })).status, 'completed');
    await w.stop();
  });
});

describe('a health check that throws', () => {
  it('reports the replica unhealthy, with the error', async () => {
    await client.agents.create({ name: 'health-throws' });
    const w = createWorker({
      url: server.url, token: TOKEN, agent: 'health-throws', log: () => {},
      health: () => { throw new Error('database unreachable'); }, handler: () => null,
    });
    workers.push(w);
    await w.start();
    const [replica] = await until('the report', () => client.agents.replicas('health-throws'), (rs) => rs[0]?.health === 'unhealthy');
    assert.deepEqual(replica!.healthDetail, { error: 'database unreachable' });
  });
});
