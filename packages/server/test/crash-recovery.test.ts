// Crash safety with the real server process: SIGKILL mid-run, restart on the same SQLite
// file, and every accepted task still reaches a terminal state with its result recorded once.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpWorker } from './helpers/http-worker.ts';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-crash-'));
const database = join(dir, 'flotilla.db');
const env = { FLOTILLA_LEASE_MS: '1500', FLOTILLA_REPLICA_TTL_MS: '1500', FLOTILLA_REAPER_INTERVAL_MS: '100', FLOTILLA_LOG_LEVEL: 'warn' };
let server: ServerProcess | null = null;
const workers: HttpWorker[] = [];
after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return callServer(server!.url, method, path, body);
}

describe('crash recovery (SIGKILL)', () => {
  it('loses no accepted task and records no result twice', { timeout: 90_000 }, async () => {
    server = await startServerProcess({ database, env });
    assert.equal((await call('POST', '/agents', { name: 'crash', maxConcurrency: 8 })).status, 201);

    workers.push(...[0, 1, 2].map(() => new HttpWorker({
      urls: () => [server!.url], agent: 'crash', maxConcurrency: 8,
      handle: async (task) => {
        await new Promise((r) => setTimeout(r, Math.random() * 5));
        return { echo: task.input };
      },
    })));
    workers.forEach((w) => w.start());

    const TOTAL = 400;
    const accepted = new Set<string>();
    let next = 0;
    let killed = false;
    const submitOne = async (n: number) => {
      // The idempotency key makes a resubmit after a lost response safe: same task, 200.
      for (let tries = 0; tries < 200; tries++) {
        try {
          const res = await call('POST', '/tasks', { agent: 'crash', input: { n }, idempotencyKey: `crash-${n}` });
          if (res.status === 201 || res.status === 200) {
            accepted.add(res.body.id);
            return;
          }
        } catch {
          // the server is down: retry below
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`task ${n} was never accepted`);
    };
    const submitter = async () => {
      while (next < TOTAL) {
        const n = next++;
        await submitOne(n);
        if (!killed && n >= TOTAL / 2) {
          killed = true;
          const old = server!;
          await old.kill('SIGKILL');
          server = await startServerProcess({ database, env });
          assert.ok(!/error/i.test(old.output().split('\n').filter((l) => l.includes('"level":50')).join('')), 'no errors logged before the kill');
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, submitter));
    assert.ok(killed, 'the server was killed mid-run');
    assert.equal(accepted.size, TOTAL);

    const deadline = Date.now() + 60_000;
    for (const id of accepted) {
      for (;;) {
        const res = await call('GET', `/tasks/${id}?waitMs=5000`);
        assert.equal(res.status, 200, `accepted task ${id} exists after the crash`);
        if (['completed', 'failed', 'cancelled'].includes(res.body.status)) {
          assert.equal(res.body.status, 'completed', `task ${id} completed`);
          assert.deepEqual(res.body.result, { echo: res.body.input });
          break;
        }
        if (Date.now() > deadline) {
          const detail = { task: res.body, assignment: (await call('GET', `/tasks/${id}/assignment`)).body, replicas: (await call('GET', '/agents/crash/replicas')).body };
          assert.fail(`task ${id} stuck in ${res.body.status}: ${JSON.stringify(detail)}\n${server!.output().slice(-3000)}`);
        }
      }
    }
    await Promise.all(workers.map((w) => w.stop()));

    for (const id of accepted) {
      const events = (await call('GET', `/tasks/${id}/events`)).body.items as Array<{ type: string }>;
      assert.equal(events.filter((e) => e.type === 'task.completed').length, 1, `task ${id} completed exactly once`);
      assert.equal(events.filter((e) => e.type === 'task.created').length, 1, `task ${id} created exactly once`);
      const attempts = (await call('GET', `/tasks/${id}/assignment`)).body.attempts as Array<{ status: string }>;
      assert.equal(attempts.filter((a) => a.status === 'completed').length, 1, `one completed attempt for ${id}`);
    }
    const acked = workers.reduce((n, w) => n + [...w.acknowledged.values()].reduce((a, b) => a + b, 0), 0);
    assert.ok(acked <= TOTAL, 'never more acknowledged completions than tasks');
    await server!.kill('SIGTERM');
    server = null;
  });
});
