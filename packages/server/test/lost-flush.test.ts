// A claim lost with its flush (decision 41): dispatches commit without waiting for the disk,
// so after a power loss the database may be as it was at the last durable commit. Simulated
// with the real server process on a SQLite file: the files are copied while the server is
// idle right after the submit was acknowledged (what the disk is sure to hold), the task is
// claimed, the server is killed and the copy put back, as if the claim had never reached the
// disk. The task must be delivered again, the old assignment's report refused, and the result
// recorded once.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-lost-flush-'));
const database = join(dir, 'flotilla.db');
const FILES = ['', '-wal', '-shm'];
let server: ServerProcess | null = null;
after(async () => {
  await server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return callServer(server!.url, method, path, body);
}

describe('a claim lost with its flush', () => {
  it('is delivered again after the restart, and the result is recorded once', { timeout: 60_000 }, async () => {
    server = await startServerProcess({ database, env: { FLOTILLA_LOG_LEVEL: 'warn' } });
    assert.equal((await call('POST', '/agents', { name: 'flaky-disk' })).status, 201);
    const submitted = await call('POST', '/tasks', { agent: 'flaky-disk', input: { n: 1 } });
    assert.equal(submitted.status, 201);
    const taskId: string = submitted.body.id;
    const registered = await call('POST', '/workers/register', { agent: 'flaky-disk' });
    assert.equal(registered.status, 201);
    const replicaId: string = registered.body.replica.id;
    // Idle now (the audit log writes 25 ms after an answer): copy what is on disk.
    await new Promise((r) => setTimeout(r, 300));
    for (const suffix of FILES) if (existsSync(database + suffix)) copyFileSync(database + suffix, join(dir, `flushed${suffix}`));

    const first = await call('POST', `/workers/${replicaId}/lease`, { max: 1, waitMs: 5_000 });
    assert.equal(first.status, 200);
    const [lost] = first.body.assignments;
    assert.equal(lost.task.id, taskId);

    // Power loss: the claim's commit never reached the disk.
    await server.kill('SIGKILL');
    for (const suffix of FILES) {
      rmSync(database + suffix, { force: true });
      if (existsSync(join(dir, `flushed${suffix}`))) copyFileSync(join(dir, `flushed${suffix}`), database + suffix);
    }
    server = await startServerProcess({ database, env: { FLOTILLA_LOG_LEVEL: 'warn' } });

    assert.equal((await call('GET', `/tasks/${taskId}`)).body.status, 'pending', 'the accepted task survived, its claim did not');
    // The first delivery's report names an assignment the database never recorded.
    const stale = await call('POST', `/assignments/${lost.assignmentId}/complete`, { replicaId, result: { from: 'lost claim' } });
    assert.equal(stale.status, 404);
    assert.equal(stale.body.error.code, 'ASSIGNMENT_NOT_FOUND');

    const again = await call('POST', `/workers/${replicaId}/lease`, { max: 1, waitMs: 5_000 });
    const [redone] = again.body.assignments;
    assert.equal(redone.task.id, taskId, 'delivered again');
    assert.notEqual(redone.assignmentId, lost.assignmentId);
    assert.equal(redone.task.attempt, 1, 'the lost claim did not use up an attempt');
    assert.equal((await call('POST', `/assignments/${redone.assignmentId}/complete`, { replicaId, result: { from: 'redone claim' } })).status, 200);

    const done = await call('GET', `/tasks/${taskId}`);
    assert.equal(done.body.status, 'completed');
    assert.deepEqual(done.body.result, { from: 'redone claim' });
    const attempts = await call('GET', `/tasks/${taskId}/assignment`);
    assert.deepEqual(attempts.body.attempts.map((a: { id: string; status: string }) => [a.id, a.status]), [[redone.assignmentId, 'completed']]);
    const events = await call('GET', `/tasks/${taskId}/events`);
    assert.equal(events.body.items.filter((e: { type: string }) => e.type === 'task.completed').length, 1, 'recorded once');
  });
});
