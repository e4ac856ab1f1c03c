// Suspended tasks through the HTTP API and the worker protocol, in process, on both stores:
// what a wait and an input request refuse, who may answer, the maintenance sweep resuming a
// parent whose immediate look was lost, an input request timing out, and cancelling a
// suspended task.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;

for (const store of stores) describe(`suspended tasks (${store})`, () => {
  let h: Harness;
  let replica: string;
  beforeEach(async () => {
    // Children run on the parent's agent here: equal levels allowed (decision 59).
    h = await harness({ store, config: { leaseMs: 30_000, replicaTtlMs: 60_000, allowEqualLevel: true } });
    await h.agent({ name: 'planner', maxConcurrency: 1, maxAttempts: 1 });
    replica = await h.register('planner');
  });
  afterEach(() => h.close());

  /** A running attempt of a new task (submitted with `spec`), and its assignment id. */
  async function runningTask(spec: Record<string, unknown> = {}) {
    const task = await h.submit({ agent: 'planner', ...spec });
    const [leased] = await h.lease(replica);
    assert.equal(leased?.task.id, task.id);
    assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/start`, { replicaId: replica })).status, 200);
    await h.engine.workers.flushStarts();
    return { task, assignmentId: leased!.assignmentId };
  }

  it('a wait names only children of its own task, and only while its attempt is live', async () => {
    const { task, assignmentId } = await runningTask();
    const stranger = await h.submit({ agent: 'planner' });
    const child = await h.submit({ agent: 'planner', parentId: task.id });
    const refused = await h.api('POST', `/assignments/${assignmentId}/wait`, { replicaId: replica, children: [child.id, stranger.id] });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, 'VALIDATION_FAILED');
    assert.deepEqual(refused.body.error.details.notChildren, [stranger.id]);
    assert.equal((await h.api('POST', `/assignments/${assignmentId}/wait`, { replicaId: replica, children: [] })).status, 400);
    assert.equal((await h.task(task.id)).status, 'running');
    assert.equal((await h.api('POST', `/assignments/${assignmentId}/wait`, { replicaId: replica, children: [child.id, child.id] })).status, 200);
    const waiting = await h.task(task.id);
    assert.deepEqual([waiting.status, waiting.waitingFor, waiting.assignment?.status], ['waiting', [child.id], 'suspended']);
    // The report is final: a repeat (or any other report) is superseded.
    const again = await h.api('POST', `/assignments/${assignmentId}/wait`, { replicaId: replica, children: [child.id] });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.details.assignmentStatus, 'suspended');
    assert.equal((await h.api('POST', `/assignments/${assignmentId}/complete`, { replicaId: replica })).status, 409);
    assert.deepEqual((await h.api('GET', '/tasks?status=waiting')).body.items.map((t: { id: string }) => t.id), [task.id]);
  });

  it('the maintenance sweep resumes a parent whose look after its last child ended was lost', async () => {
    const { task, assignmentId } = await runningTask();
    const child = await h.submit({ agent: 'planner', parentId: task.id });
    assert.equal((await h.api('POST', `/assignments/${assignmentId}/wait`, { replicaId: replica, children: [child.id] })).status, 200);
    const [leasedChild] = await h.lease(replica);
    assert.equal(leasedChild?.task.id, child.id);
    // Lose the look the child's completion asks for (the node died right after its commit).
    const look = h.engine.ctx.resumeWaiting;
    h.engine.ctx.resumeWaiting = () => {};
    try {
      assert.equal((await h.api('POST', `/assignments/${leasedChild!.assignmentId}/complete`, { replicaId: replica, result: 7 })).status, 200);
    } finally {
      h.engine.ctx.resumeWaiting = look;
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await h.task(task.id)).status, 'waiting');
    assert.deepEqual(await h.engine.resumer.sweep(), { resumed: 1, expired: 0 });
    assert.equal((await h.task(task.id)).status, 'pending');
    const [resumed] = await h.lease(replica);
    assert.deepEqual(resumed?.task.resumed, { reason: 'children', children: [{ id: child.id, status: 'completed', result: 7, error: null }] });
    assert.equal(resumed?.task.attempt, 1);
    assert.deepEqual(await h.engine.resumer.sweep(), { resumed: 0, expired: 0 });
  });

  it('an input request: refused when malformed, answered by whom may, and failing on its timeout', async () => {
    const { task, assignmentId } = await runningTask();
    const bad = await h.api('POST', `/assignments/${assignmentId}/ask`, { replicaId: replica, prompt: 'ok?', schema: { type: 'nonsense' } });
    assert.equal(bad.status, 400);
    assert.equal((await h.api('POST', `/assignments/${assignmentId}/ask`, { replicaId: replica, prompt: '' })).status, 400);
    assert.equal((await h.task(task.id)).status, 'running');
    assert.equal((await h.api('POST', `/assignments/${assignmentId}/ask`, { replicaId: replica, prompt: 'Which region?', schema: { enum: ['eu', 'us'] } })).status, 200);
    const asked = await h.task(task.id);
    assert.equal(asked.status, 'input_required');
    assert.deepEqual([asked.inputRequest?.prompt, asked.inputRequest?.schema, asked.inputRequest?.expiresAt], ['Which region?', { enum: ['eu', 'us'] }, null]);
    assert.equal((await h.api('GET', '/agents/planner/replicas')).body.items[0].inFlight, 0);
    // A viewer may not answer; an unknown task is 404; an answer outside the schema is 400.
    const viewer = (await h.api('POST', '/keys', { name: 'v', role: 'viewer' })).body.token as string;
    assert.equal((await h.api('POST', `/tasks/${task.id}/input`, { input: 'eu' }, { authorization: `Bearer ${viewer}` })).status, 403);
    assert.equal((await h.api('POST', '/tasks/nope/input', { input: 'eu' })).status, 404);
    const wrong = await h.api('POST', `/tasks/${task.id}/input`, { input: 'mars' });
    assert.equal(wrong.status, 400);
    assert.ok(Array.isArray(wrong.body.error.details.problems));
    assert.equal((await h.api('POST', `/tasks/${task.id}/input`, {})).status, 400);
    assert.equal((await h.task(task.id)).status, 'input_required');
    assert.equal((await h.api('POST', `/tasks/${task.id}/input`, { input: 'us' })).status, 200);
    const [resumed] = await h.lease(replica);
    assert.deepEqual(resumed?.task.resumed, { reason: 'input', prompt: 'Which region?', input: 'us' });
    // Asked again with a timeout: nobody answers, the sweep fails it for good.
    assert.equal((await h.api('POST', `/assignments/${resumed!.assignmentId}/ask`, { replicaId: replica, prompt: 'Still there?', timeoutMs: 1_000 })).status, 200);
    assert.deepEqual(await h.engine.resumer.sweep(), { resumed: 0, expired: 0 });
    h.advance(1_000);
    assert.deepEqual(await h.engine.resumer.sweep(), { resumed: 0, expired: 1 });
    const failed = await h.task(task.id);
    assert.deepEqual([failed.status, failed.error?.code, failed.inputRequest], ['failed', 'INPUT_TIMEOUT', null]);
    assert.equal((await h.api('POST', `/tasks/${task.id}/input`, { input: 'eu' })).status, 409);
  });

  it("a parent's attempt token answers its child's input request; a token of another tree cannot", async () => {
    await h.agent({ name: 'helper', maxConcurrency: 1 });
    const helper = await h.register('helper');
    const { task: parent, assignmentId } = await runningTask();
    const token = (await h.api('POST', `/assignments/${assignmentId}/token`, { replicaId: replica })).body.token as string;
    const child = (await h.api('POST', '/tasks', { agent: 'helper' , parentId: parent.id }, { authorization: `Bearer ${token}` })).body;
    const [leased] = await h.lease(helper);
    assert.equal(leased?.task.id, child.id);
    assert.equal((await h.api('POST', `/assignments/${leased!.assignmentId}/ask`, { replicaId: helper, prompt: 'which file?' })).status, 200);
    const foreign = await h.submit({ agent: 'helper' });
    assert.equal((await h.api('POST', `/tasks/${foreign.id}/input`, { input: 1 }, { authorization: `Bearer ${token}` })).status, 404);
    const answered = await h.api('POST', `/tasks/${child.id}/input`, { input: 'a.txt' }, { authorization: `Bearer ${token}` });
    assert.equal(answered.status, 200);
    assert.equal(answered.body.status, 'pending');
  });

  it('cancelling a waiting task or one asking for input ends it at once', async () => {
    const first = await runningTask();
    const child = await h.submit({ agent: 'planner', parentId: first.task.id });
    assert.equal((await h.api('POST', `/assignments/${first.assignmentId}/wait`, { replicaId: replica, children: [child.id] })).status, 200);
    const cancelled = await h.api('POST', `/tasks/${first.task.id}/cancel`, {});
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.deepEqual([cancelled.body.status, cancelled.body.waitingFor], ['cancelled', null]);
    await h.api('POST', `/tasks/${child.id}/cancel`, {});
    const asking = await runningTask({ type: 'asking' });
    assert.equal((await h.api('POST', `/assignments/${asking.assignmentId}/ask`, { replicaId: replica, prompt: 'go on?', timeoutMs: 60_000 })).status, 200);
    const gone = await h.api('POST', `/tasks/${asking.task.id}/cancel`, {});
    assert.deepEqual([gone.body.status, gone.body.inputRequest], ['cancelled', null]);
    // Nothing is left for the sweep: the request went with the task.
    h.advance(120_000);
    assert.deepEqual(await h.engine.resumer.sweep(), { resumed: 0, expired: 0 });
  });
});
