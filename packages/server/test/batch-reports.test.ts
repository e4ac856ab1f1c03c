// Batches of worker reports (docs/protocol.md §4 Batch reports, §11 Batches), over the socket
// (`batch` frames, and the `replies` frames the server coalesces its answers into) and over
// HTTP (`POST /workers/{replicaId}/reports`), on both stores: in a batch with refused items
// (another replica's assignment, a malformed item, text no store holds, an op a batch does
// not carry, a report after the attempt ended) the others are applied, each item is answered
// once with what the same report alone would have been answered, and one assignment's items
// apply in the order sent. Then the limits: a batch malformed as a whole (too many items,
// none, no list, too large) is refused as a whole and applies nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_BATCH_ITEMS } from '../src/schemas/schemas.ts';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { SocketClient, type Frame } from './helpers/socket-client.ts';

const stores = [{ kind: 'sqlite' as const, skip: false }, { kind: 'postgres' as const, skip: !(await postgresAvailable()) }];
const LIMIT = 16 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const { kind, skip } of stores) {
  describe(`report batches (${kind})`, { skip: skip ? 'PostgreSQL is not reachable' : false }, () => {
    let h: Harness;
    let agents = 0;

    before(async () => {
      h = await harness({ store: kind, config: { leaseMs: 30_000, replicaTtlMs: 3_600_000, rateLimitPerSecond: 0, bodyLimitBytes: LIMIT } });
      await h.listen();
    });
    after(() => h.close());

    /** An attempt of another agent, held by a replica over HTTP. */
    async function foreignAttempt(): Promise<{ assignmentId: string; taskId: string }> {
      const agent = `foreign-${++agents}`;
      await h.agent({ name: agent });
      const task = await h.submit({ agent });
      const [leased] = await h.lease(await h.register(agent));
      return { assignmentId: leased!.assignmentId, taskId: task.id };
    }

    /** A socket that said hello for a fresh agent, and `n` attempts pushed to it (in the order submitted). */
    async function socketAttempts(n: number): Promise<{ s: SocketClient; agent: string; attempts: Array<{ assignmentId: string; taskId: string }> }> {
      const agent = `batch-socket-${++agents}`;
      await h.agent({ name: agent, maxAttempts: 1 });
      const s = await SocketClient.open(h, '/workers/socket');
      assert.equal((await s.request('hello', { agent, maxConcurrency: n })).ok, true);
      const tasks = [];
      for (let i = 0; i < n; i++) tasks.push(await h.submit({ agent, input: { i } }));
      const pushed: Frame[] = [];
      while (pushed.length < n) pushed.push(...(await s.next('assign')).assignments);
      const byTask = new Map(pushed.map((a) => [a.task.id as string, a.assignmentId as string]));
      return { s, agent, attempts: tasks.map((t) => ({ assignmentId: byTask.get(t.id)!, taskId: t.id })) };
    }

    /** A replica over HTTP holding `n` attempts of a fresh agent (in the order submitted). */
    async function httpAttempts(n: number): Promise<{ replicaId: string; agent: string; attempts: Array<{ assignmentId: string; taskId: string }> }> {
      const agent = `batch-http-${++agents}`;
      await h.agent({ name: agent, maxAttempts: 1 });
      const tasks = [];
      for (let i = 0; i < n; i++) tasks.push(await h.submit({ agent, input: { i } }));
      const replicaId = await h.register(agent, { maxConcurrency: n });
      const leased = await h.lease(replicaId, n);
      assert.equal(leased.length, n);
      const byTask = new Map(leased.map((a) => [a.task.id, a.assignmentId]));
      return { replicaId, agent, attempts: tasks.map((t) => ({ assignmentId: byTask.get(t.id)!, taskId: t.id })) };
    }

    /** Every reply received, unpacked from `replies` frames, in the order received. */
    const repliesOf = (s: SocketClient): Frame[] => s.frames.filter((f) => !('push' in f)).flatMap((f) => 'replies' in f ? f.replies as Frame[] : [f]);

    async function statusOf(taskId: string): Promise<string> {
      return (await h.task(taskId)).status;
    }

    it('socket: a batch frame with refused items applies the others and answers each item once, in order per assignment', async () => {
      const foreign = await foreignAttempt();
      const { s, attempts: [a, b, c] } = await socketAttempts(3);
      try {
        const items: Frame[] = [
          { op: 'start', id: 's-a', assignmentId: a!.assignmentId },
          { op: 'complete', id: 'c-a', assignmentId: a!.assignmentId, result: { n: 1 } },
          // After its own complete in the same batch: refused, so the items applied in order.
          { op: 'start', id: 's-a-again', assignmentId: a!.assignmentId },
          { op: 'complete', id: 'c-foreign', assignmentId: foreign.assignmentId },
          { op: 'fail', id: 'f-b-malformed', assignmentId: b!.assignmentId },
          { op: 'complete', id: 'c-b-nul', assignmentId: b!.assignmentId, result: 'a\u0000b' },
          { op: 'submit', id: 'submit', task: { agent: 'x' } },
          { op: 'progress', id: 'p-c', assignmentId: c!.assignmentId, percent: 50 },
          { op: 'fail', id: 'f-c', assignmentId: c!.assignmentId, error: { message: 'no' }, retryable: false },
          { op: 'complete', id: 'c-b', assignmentId: b!.assignmentId, result: 2 },
        ];
        s.ws.send(JSON.stringify({ op: 'batch', id: 'the-batch', items }));
        const replies = new Map<string, Frame>();
        for (const item of items) replies.set(item.id, await s.reply(item.id));
        const statuses = Object.fromEntries([...replies].map(([id, r]) => [id, r.ok ? r.status : `${r.status} ${r.error.code}`]));
        assert.deepEqual(statuses, {
          's-a': 200, 'c-a': 200, 's-a-again': '409 ASSIGNMENT_SUPERSEDED', 'c-foreign': '409 REPLICA_MISMATCH',
          'f-b-malformed': '400 VALIDATION_FAILED', 'c-b-nul': '400 VALIDATION_FAILED', submit: '400 VALIDATION_FAILED',
          'p-c': 200, 'f-c': 200, 'c-b': 200,
        });
        assert.deepEqual((await h.task(a!.taskId)).result, { n: 1 });
        assert.deepEqual((await h.task(b!.taskId)).result, 2);
        assert.equal(await statusOf(c!.taskId), 'failed');
        assert.equal(await statusOf(foreign.taskId), 'dispatched', 'another replica\'s attempt is untouched');

        // Each answer is the one the same message gets alone.
        for (const [id, op, fields] of [
          ['s-a-again', 'start', { assignmentId: a!.assignmentId }],
          ['c-foreign', 'complete', { assignmentId: foreign.assignmentId }],
          ['f-b-malformed', 'fail', { assignmentId: b!.assignmentId }],
        ] as const) {
          const { re: _batched, ...batched } = replies.get(id)!;
          const { re: _alone, ...alone } = await s.request(op, fields);
          assert.deepEqual(batched, alone, `${id} answered as alone`);
        }

        // Exactly one reply per item, none for the batch itself; one assignment's in order.
        await sleep(50);
        const all = repliesOf(s).map((r) => r.re);
        for (const item of items) assert.equal(all.filter((re) => re === item.id).length, 1, `one reply to ${item.id}`);
        assert.equal(all.includes('the-batch'), false, 'an accepted batch has no reply of its own');
        assert.ok(all.indexOf('s-a') < all.indexOf('c-a') && all.indexOf('c-a') < all.indexOf('s-a-again'), `${all}`);
        assert.ok(s.frames.some((f) => 'replies' in f), 'replies of one turn were coalesced');
      } finally {
        s.close();
      }
    });

    it('HTTP: a report batch with refused items applies the others and answers each as its own route would, in order', async () => {
      const foreign = await foreignAttempt();
      const { replicaId, attempts: [a, b, c] } = await httpAttempts(3);
      const items: unknown[] = [
        { op: 'start', assignmentId: a!.assignmentId },
        { op: 'heartbeat', assignmentId: a!.assignmentId, percent: 10, message: 'warming up' },
        { op: 'complete', assignmentId: a!.assignmentId, result: { n: 1 } },
        { op: 'start', assignmentId: a!.assignmentId },
        { op: 'complete', assignmentId: foreign.assignmentId },
        { op: 'fail', assignmentId: b!.assignmentId },
        { op: 'complete', assignmentId: b!.assignmentId, result: 'a\u0000b' },
        'not a report',
        { op: 'token', assignmentId: b!.assignmentId },
        { op: 'progress', assignmentId: c!.assignmentId, percent: 50 },
        { op: 'fail', assignmentId: c!.assignmentId, error: { message: 'no' }, retryable: false },
        { op: 'complete', assignmentId: b!.assignmentId, result: 2 },
      ];
      const res = await h.api('POST', `/workers/${replicaId}/reports`, { items });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const answers = res.body.items as Array<{ status: number; body: Frame }>;
      assert.deepEqual(answers.map((x) => x.status === 200 ? 200 : `${x.status} ${x.body.error.code}`), [
        200, 200, 200, '409 ASSIGNMENT_SUPERSEDED', '409 REPLICA_MISMATCH', '400 VALIDATION_FAILED', '400 VALIDATION_FAILED',
        '400 VALIDATION_FAILED', '400 VALIDATION_FAILED', 200, 200, 200,
      ]);
      assert.deepEqual(answers[0]!.body, { ok: true });
      assert.deepEqual(Object.keys(answers[1]!.body).sort(), ['cancelRequested', 'leaseExpiresAt']);
      assert.deepEqual((await h.task(a!.taskId)).result, { n: 1 });
      assert.deepEqual((await h.task(b!.taskId)).result, 2);
      assert.equal(await statusOf(c!.taskId), 'failed');
      assert.equal(await statusOf(foreign.taskId), 'dispatched');
      assert.equal((await h.task(a!.taskId)).assignment?.progress?.message, 'warming up');

      // The refusals are what the single routes answer for the same reports.
      for (const [index, path, body] of [
        [3, `/assignments/${a!.assignmentId}/start`, {}],
        [4, `/assignments/${foreign.assignmentId}/complete`, {}],
      ] as const) {
        const alone = await h.api('POST', path, { replicaId, ...body });
        assert.deepEqual({ status: alone.status, body: alone.body }, answers[index], `item ${index} answered as its route`);
      }

      // Each report is audited as its route would be (heartbeats are not), the request not at all.
      await h.engine.audit.flush();
      const audit = (await h.api('GET', '/audit?limit=200')).body.items as Frame[];
      const batched = audit.filter((e) => e.details?.route === 'POST /api/v1/workers/:replicaId/reports');
      assert.equal(batched.length, items.length - 1, 'every item but the heartbeat');
      assert.equal(batched.filter((e) => e.details.op === 'complete' && e.status === 200).length, 2);
      assert.ok(batched.some((e) => e.target === `assignmentId:${foreign.assignmentId}` && e.status === 409));
    });

    it('HTTP: the register answer and the welcome announce maxBatchItems', async () => {
      const agent = `announce-${++agents}`;
      await h.agent({ name: agent });
      assert.equal((await h.api('POST', '/workers/register', { agent })).body.maxBatchItems, MAX_BATCH_ITEMS);
      const s = await SocketClient.open(h, '/workers/socket');
      try {
        assert.equal((await s.request('hello', { agent })).result.maxBatchItems, MAX_BATCH_ITEMS);
      } finally {
        s.close();
      }
    });
  });
}

describe('report batches: limits and framing', () => {
  let h: Harness;
  let agents = 0;

  before(async () => {
    h = await harness({ config: { leaseMs: 30_000, replicaTtlMs: 3_600_000, rateLimitPerSecond: 0, bodyLimitBytes: LIMIT } });
    await h.listen();
  });
  after(() => h.close());

  async function oneSocketAttempt(): Promise<{ s: SocketClient; assignmentId: string; taskId: string }> {
    const agent = `limits-socket-${++agents}`;
    await h.agent({ name: agent });
    const s = await SocketClient.open(h, '/workers/socket');
    assert.equal((await s.request('hello', { agent })).ok, true);
    const task = await h.submit({ agent });
    const [assigned] = (await s.next('assign')).assignments;
    return { s, assignmentId: assigned.assignmentId, taskId: task.id };
  }

  it('socket: a batch malformed as a whole is refused under its own id, applies nothing, and the socket stays open', async () => {
    const { s, assignmentId, taskId } = await oneSocketAttempt();
    try {
      const complete = (i: number) => ({ op: 'complete', id: `c-${i}`, assignmentId });
      // Items are checked one by one, the list as a whole first: small fillers keep the frame within the size limit.
      const tooMany = [complete(0), ...Array(MAX_BATCH_ITEMS).fill(0)];
      for (const [id, frame] of [
        ['too-many', { items: tooMany }],
        ['none', { items: [] }],
        ['not-a-list', { items: complete(0) }],
        ['extra-field', { items: [complete(0)], replicaId: 'x' }],
      ] as const) {
        s.ws.send(JSON.stringify({ op: 'batch', id, ...frame }));
        const reply = await s.reply(id);
        assert.equal(reply.ok, false, id);
        assert.equal(reply.status, 400);
        assert.equal(reply.error.code, 'VALIDATION_FAILED');
      }
      await sleep(50);
      assert.equal(s.answered('c-0'), false, 'no item of a refused batch is answered');
      assert.equal((await h.task(taskId)).status, 'dispatched', 'no item of a refused batch is applied');
      // A batch without a usable id is refused with re: null, as a frame without one.
      const noId = await s.sendRaw(JSON.stringify({ op: 'batch', items: [complete(0)] }));
      assert.equal(noId.error.code, 'VALIDATION_FAILED');
      // The socket still works, and so does a batch within the limit.
      s.ws.send(JSON.stringify({ op: 'batch', id: 'fits', items: [complete(1), { op: 'heartbeat', id: 'hb', assignmentIds: [assignmentId] }] }));
      assert.equal((await s.reply('c-1')).status, 200);
      assert.equal((await s.reply('hb')).status, 200);
      assert.equal((await h.task(taskId)).status, 'completed');
    } finally {
      s.close();
    }
  });

  it('socket: a batch frame above maxMessageBytes closes the socket (1009), though each item fits, and applies nothing', async () => {
    const { s, assignmentId, taskId } = await oneSocketAttempt();
    const closed = new Promise<number>((resolve) => s.ws.once('close', (code) => resolve(code)));
    const half = 'x'.repeat(LIMIT / 2);
    s.ws.send(JSON.stringify({ op: 'batch', id: 'big', items: [
      { op: 'progress', id: 'p', assignmentId, percent: 1, message: half.slice(0, 2000) },
      { op: 'complete', id: 'c', assignmentId, result: half },
      { op: 'complete', id: 'c2', assignmentId, result: half },
    ] }));
    assert.equal(await closed, 1009);
    assert.equal((await h.task(taskId)).status, 'dispatched');
  });

  it('socket: replies are coalesced only for a client that sent a batch frame', async () => {
    const { s } = await oneSocketAttempt();
    try {
      const beat = (id: string) => JSON.stringify({ op: 'heartbeat', id, assignmentIds: [] });
      // Pipelined, one message each: one reply frame each, as always.
      for (let i = 0; i < 30; i++) s.ws.send(beat(`single-${i}`));
      for (let i = 0; i < 30; i++) await s.reply(`single-${i}`);
      assert.equal(s.frames.filter((f) => 'replies' in f).length, 0, 'no replies frame to a client that never sent a batch');
      const before = s.frames.length;
      s.ws.send(JSON.stringify({ op: 'batch', id: 'b', items: Array.from({ length: 30 }, (_, i) => ({ op: 'heartbeat', id: `batched-${i}`, assignmentIds: [] })) }));
      for (let i = 0; i < 30; i++) await s.reply(`batched-${i}`);
      const after = s.frames.slice(before);
      assert.ok(after.length < 30 && after.some((f) => 'replies' in f && f.replies.length > 1), `coalesced into ${after.length} frames`);
      assert.ok(after.every((f) => !('replies' in f) || f.replies.length > 1), 'a reply alone is sent as itself');
    } finally {
      s.close();
    }
  });

  it('HTTP: a batch malformed as a whole is refused (400 / 413) and applies nothing', async () => {
    const agent = `limits-http-${++agents}`;
    await h.agent({ name: agent });
    const task = await h.submit({ agent });
    const replicaId = await h.register(agent);
    const [leased] = await h.lease(replicaId);
    const complete = { op: 'complete', assignmentId: leased!.assignmentId };
    const path = `/workers/${replicaId}/reports`;
    for (const [body, status, code] of [
      [{ items: [complete, ...Array(MAX_BATCH_ITEMS).fill(0)] }, 400, 'VALIDATION_FAILED'],
      [{ items: [] }, 400, 'VALIDATION_FAILED'],
      [{ items: complete }, 400, 'VALIDATION_FAILED'],
      [{ items: [complete], replicaId }, 400, 'VALIDATION_FAILED'],
      [{ items: [complete, { ...complete, result: 'x'.repeat(LIMIT) }] }, 413, 'PAYLOAD_TOO_LARGE'],
    ] as const) {
      const res = await h.api('POST', path, body);
      assert.equal(res.status, status, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.error.code, code);
    }
    const notJson = await h.app.inject({ method: 'POST', url: `/api/v1${path}`, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, payload: '{"items":[' });
    assert.equal(notJson.statusCode, 400);
    assert.equal(JSON.parse(notJson.body).error.code, 'INVALID_JSON');
    assert.equal((await h.task(task.id)).status, 'dispatched', 'nothing applied');
    // Within the limits, the same report is applied.
    const ok = await h.api('POST', path, { items: [complete] });
    assert.deepEqual(ok.body, { items: [{ status: 200, body: { ok: true } }] });
    assert.equal((await h.task(task.id)).status, 'completed');
  });
});
