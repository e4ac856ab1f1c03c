// Every refused report about an attempt tells the worker what became of the attempt
// (docs/protocol.md §5): `details.assignmentStatus` on each ASSIGNMENT_SUPERSEDED, for every
// report (start, heartbeat with and without progress, progress, complete, fail, cancelled,
// token), over HTTP and over the socket, after the worker's own report ended the attempt
// (`completed`, `failed`: a retry whose first answer was lost) and after the server did
// (`lost`); the socket's heartbeat lists such an attempt under `ended` with that status. A
// `cancelled` with no cancellation requested is INVALID_TRANSITION with the live status. On
// both stores: the heartbeat refusal is read back by each store's own query.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { SocketClient, type Frame } from './helpers/socket-client.ts';

const stores = [{ kind: 'sqlite' as const, skip: false }, { kind: 'postgres' as const, skip: !(await postgresAvailable()) }];
const LEASE_MS = 30_000;

/** Each report, as HTTP path suffix and body (beyond replicaId), and as socket op and fields (beyond assignmentId). */
const REPORTS: Array<{ name: string; path: string; body: Frame; op: string | null; fields: Frame }> = [
  { name: 'start', path: 'start', body: {}, op: 'start', fields: {} },
  { name: 'heartbeat', path: 'heartbeat', body: {}, op: null, fields: {} },
  { name: 'heartbeat with progress', path: 'heartbeat', body: { percent: 10, message: 'x' }, op: null, fields: {} },
  { name: 'progress', path: 'progress', body: { percent: 20 }, op: 'progress', fields: { percent: 20 } },
  { name: 'complete', path: 'complete', body: { result: 1 }, op: 'complete', fields: { result: 1 } },
  { name: 'fail', path: 'fail', body: { error: { message: 'no' } }, op: 'fail', fields: { error: { message: 'no' } } },
  { name: 'cancelled', path: 'cancelled', body: {}, op: 'cancelled', fields: {} },
  { name: 'token', path: 'token', body: {}, op: 'token', fields: {} },
];

for (const { kind, skip } of stores) {
  describe(`refused reports say what became of the attempt (${kind})`, { skip: skip ? 'PostgreSQL is not reachable' : false }, () => {
    let h: Harness;
    let agents = 0;

    before(async () => {
      h = await harness({ store: kind, config: { leaseMs: LEASE_MS, replicaTtlMs: 3_600_000, rateLimitPerSecond: 0 } });
      await h.listen();
    });
    after(() => h.close());

    /** A fresh agent with one task, leased over HTTP by a fresh replica. */
    async function httpAttempt(): Promise<{ assignmentId: string; replicaId: string; taskId: string }> {
      const agent = `refusals-${++agents}`;
      await h.agent({ name: agent });
      const task = await h.submit({ agent, maxAttempts: 1 });
      const replicaId = await h.register(agent);
      const [leased] = await h.lease(replicaId);
      assert.equal(leased?.task.id, task.id);
      return { assignmentId: leased.assignmentId, replicaId, taskId: task.id };
    }

    /** A fresh agent with one task, pushed to a socket that said hello for it. */
    async function socketAttempt(): Promise<{ s: SocketClient; assignmentId: string; taskId: string }> {
      const agent = `refusals-${++agents}`;
      await h.agent({ name: agent });
      const s = await SocketClient.open(h, '/workers/socket');
      assert.equal((await s.request('hello', { agent })).ok, true);
      const task = await h.submit({ agent, maxAttempts: 1 });
      const [assigned] = (await s.next('assign')).assignments;
      assert.equal(assigned.task.id, task.id);
      return { s, assignmentId: assigned.assignmentId, taskId: task.id };
    }

    /** The server ends the attempt: its lease lapses, the reaper finds it. */
    async function loseIt(): Promise<void> {
      h.advance(LEASE_MS + 1_000);
      await h.engine.reaper.sweep();
    }

    async function httpRefusals(a: { assignmentId: string; replicaId: string }, expected: string): Promise<void> {
      for (const r of REPORTS) {
        const res = await h.api('POST', `/assignments/${a.assignmentId}/${r.path}`, { replicaId: a.replicaId, ...r.body });
        const what = `HTTP ${r.name} after the attempt ended ${expected}: ${res.status} ${JSON.stringify(res.body)}`;
        assert.equal(res.status, 409, what);
        assert.equal(res.body.error.code, 'ASSIGNMENT_SUPERSEDED', what);
        assert.equal(res.body.error.details?.assignmentStatus, expected, what);
      }
    }

    async function socketRefusals(s: SocketClient, assignmentId: string, expected: string): Promise<void> {
      for (const r of REPORTS) {
        if (r.op === null) continue;
        const reply = await s.request(r.op, { assignmentId, ...r.fields });
        const what = `socket ${r.name} after the attempt ended ${expected}: ${JSON.stringify(reply)}`;
        assert.equal(reply.ok, false, what);
        assert.equal(reply.status, 409, what);
        assert.equal(reply.error.code, 'ASSIGNMENT_SUPERSEDED', what);
        assert.equal(reply.error.details?.assignmentStatus, expected, what);
      }
      const beat = await s.request('heartbeat', { assignmentIds: [assignmentId] });
      assert.equal(beat.ok, true, JSON.stringify(beat));
      assert.deepEqual(beat.result, { leases: [], ended: [{ assignmentId, status: expected }] }, `socket heartbeat after the attempt ended ${expected}`);
    }

    it('over HTTP: after complete, after fail, after the lease lapsed', async () => {
      const completed = await httpAttempt();
      assert.equal((await h.api('POST', `/assignments/${completed.assignmentId}/complete`, { replicaId: completed.replicaId })).status, 200);
      await httpRefusals(completed, 'completed');

      const failed = await httpAttempt();
      assert.equal((await h.api('POST', `/assignments/${failed.assignmentId}/fail`, { replicaId: failed.replicaId, error: { message: 'x' } })).status, 200);
      await httpRefusals(failed, 'failed');

      const lost = await httpAttempt();
      await loseIt();
      await httpRefusals(lost, 'lost');
    });

    it('over the socket: after complete, after fail, after the lease lapsed', async () => {
      const completed = await socketAttempt();
      try {
        assert.equal((await completed.s.request('complete', { assignmentId: completed.assignmentId })).ok, true);
        await socketRefusals(completed.s, completed.assignmentId, 'completed');
      } finally {
        completed.s.close();
      }

      const failed = await socketAttempt();
      try {
        assert.equal((await failed.s.request('fail', { assignmentId: failed.assignmentId, error: { message: 'x' } })).ok, true);
        await socketRefusals(failed.s, failed.assignmentId, 'failed');
      } finally {
        failed.s.close();
      }

      const lost = await socketAttempt();
      try {
        await loseIt();
        const revoke = await lost.s.next('revoke');
        assert.deepEqual([revoke.assignmentId, revoke.reason], [lost.assignmentId, 'lost']);
        await socketRefusals(lost.s, lost.assignmentId, 'lost');
      } finally {
        lost.s.close();
      }
    });

    it('`cancelled` without a requested cancellation: INVALID_TRANSITION with the live status, over both', async () => {
      const viaHttp = await httpAttempt();
      const res = await h.api('POST', `/assignments/${viaHttp.assignmentId}/cancelled`, { replicaId: viaHttp.replicaId });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'INVALID_TRANSITION');
      assert.deepEqual(res.body.error.details, { assignmentStatus: 'dispatched', taskStatus: 'dispatched' });

      const viaSocket = await socketAttempt();
      try {
        const reply = await viaSocket.s.request('cancelled', { assignmentId: viaSocket.assignmentId });
        assert.equal(reply.status, 409);
        assert.equal(reply.error.code, 'INVALID_TRANSITION');
        assert.deepEqual(reply.error.details, { assignmentStatus: 'dispatched', taskStatus: 'dispatched' });
      } finally {
        viaSocket.s.close();
      }
    });
  });
}
