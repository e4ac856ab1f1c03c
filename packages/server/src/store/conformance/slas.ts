// Conformance: SLAs. The sweep's query (whose check time has come), its guarded marks (each
// writes its event once, however many sweeps race), GET /tasks?sla= and the delegation report.
// The marks are core's own (core/sla.ts decideSlaCheck).

import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { decideSlaCheck, type SlaMark } from '../../core/sla.ts';
import { decideComplete, decideFail } from '../../core/task-machine.ts';
import type { NewTask } from '../../core/types.ts';
import { POLICY, T0, allEvents, createTask, createTasks, ensureAgents, getTask, mustApply, newTask, registerReplica, run, storeTest, type OpenStore } from './harness.ts';

const ids = (tasks: Array<{ id: string }>) => tasks.map((t) => t.id);
/** A task with an SLA: due at T0 + `ms`, at risk at T0 + 0.8 ms. */
const withSla = (ms: number, over: Partial<NewTask> = {}): NewTask => newTask({ slaDeadline: T0 + ms, slaState: 'ok', slaCheckAt: T0 + 0.8 * ms, ...over });

export function slaTests(open: OpenStore): void {
  describe('SLAs: the sweep, its marks, the filters, the delegation report', () => {
    storeTest(open, 'a new task keeps its SLA fields; the sweep finds tasks by check time, soonest first', async ({ store }) => {
      const [a, b, none] = await createTasks(store, [withSla(10_000), withSla(1_000), newTask()]);
      assert.deepEqual([a!.slaDeadline, a!.slaState, a!.slaCheckAt], [T0 + 10_000, 'ok', T0 + 8_000]);
      const got = await getTask(store, a!.id);
      assert.deepEqual([got.slaDeadline, got.slaState, got.slaCheckAt], [T0 + 10_000, 'ok', T0 + 8_000]);
      assert.deepEqual([(await getTask(store, none!.id)).slaDeadline, (await getTask(store, none!.id)).slaState], [null, 'none']);
      assert.deepEqual(await store.taskListSlaDue({ now: T0 + 799, limit: 10 }), []);
      assert.deepEqual(ids(await store.taskListSlaDue({ now: T0 + 8_000, limit: 10 })), ids([b!, a!]));
      assert.deepEqual(ids(await store.taskListSlaDue({ now: T0 + 8_000, limit: 1 })), ids([b!]));
    });

    storeTest(open, 'a mark applies once with its event; a second, or one from a stale read, changes nothing', async ({ store }) => {
      const task = await createTask(store, withSla(1_000));
      const mark = decideSlaCheck({ task, now: T0 + 800 })!;
      assert.equal(mark.state, 'at_risk');
      // Two sweeps with the same read: one applies and writes the event, the other finds the state moved on.
      const [first, second] = await Promise.all([store.taskSlaMark({ marks: [mark] }), store.taskSlaMark({ marks: [mark] })]);
      assert.deepEqual([...first!.applied, ...second!.applied].sort(), [false, true]);
      const written = [...first!.events, ...second!.events];
      assert.deepEqual(written.map((e) => [e.type, e.taskId]), [['sla.at_risk', task.id]]);
      // In the log once (PostgreSQL's jsonb reorders data's keys: compare types and tasks).
      assert.deepEqual((await allEvents(store)).filter((e) => e.type.startsWith('sla.')).map((e) => [e.type, e.taskId]), [['sla.at_risk', task.id]]);
      const after = await getTask(store, task.id);
      assert.deepEqual([after.slaState, after.slaCheckAt], ['at_risk', T0 + 1_000]);
      // Still due at the deadline: violated, once.
      const violated = decideSlaCheck({ task: after, now: T0 + 1_000 })!;
      const results = await Promise.all([1, 2, 3].map(() => store.taskSlaMark({ marks: [violated] })));
      assert.equal(results.flatMap((r) => r.events).filter((e) => e.type === 'sla.violated').length, 1);
      assert.equal((await allEvents(store)).filter((e) => e.type === 'sla.violated').length, 1);
      const settled = await getTask(store, task.id);
      assert.deepEqual([settled.slaState, settled.slaCheckAt], ['violated', null]);
      assert.deepEqual(await store.taskListSlaDue({ now: T0 + 99_000, limit: 10 }), []);
    });

    storeTest(open, 'a mark decided while the task was open does not apply once it has ended', async ({ store }) => {
      const replica = await registerReplica(store);
      const task = await createTask(store, withSla(1_000));
      const live = await run(store, task, replica);
      const stale: SlaMark = decideSlaCheck({ task: live.task, now: T0 + 1_000 })!;
      await mustApply(store, decideComplete({ task: live.task, assignment: live.assignment, result: null, now: T0 + 999 }));
      const result = await store.taskSlaMark({ marks: [stale] });
      assert.deepEqual([result.applied, result.events], [[false], []]);
      // Decided again from a fresh read: met, without an event.
      const fresh = decideSlaCheck({ task: await getTask(store, task.id), now: T0 + 1_000 })!;
      assert.deepEqual([fresh.state, fresh.event], ['met', null]);
      assert.deepEqual((await store.taskSlaMark({ marks: [fresh] })).applied, [true]);
      assert.equal((await getTask(store, task.id)).slaState, 'met');
    });

    storeTest(open, 'GET /tasks?sla=: violated, and at risk while still open', async ({ store }) => {
      const replica = await registerReplica(store);
      const [risky, late, endedAtRisk, fine] = await createTasks(store, [withSla(1_000), withSla(1_000), withSla(1_000), withSla(1_000)]);
      const mark = async (id: string, now: number) => {
        const t = await getTask(store, id);
        await store.taskSlaMark({ marks: [decideSlaCheck({ task: t, now })!] });
      };
      await mark(risky!.id, T0 + 800);
      await mark(endedAtRisk!.id, T0 + 800);
      await mark(late!.id, T0 + 1_000);
      const live = await run(store, endedAtRisk!, replica);
      await mustApply(store, decideComplete({ task: live.task, assignment: live.assignment, result: null, now: T0 + 900 }));
      assert.deepEqual(ids((await store.taskList({ limit: 10, slaState: 'violated' })).items), [late!.id]);
      assert.deepEqual(ids((await store.taskList({ limit: 10, slaState: 'at_risk' })).items), [risky!.id]);
      assert.deepEqual(ids((await store.taskList({ limit: 10, slaState: 'at_risk', statuses: ['pending', 'completed'] })).items), [risky!.id]);
      assert.deepEqual((await store.taskList({ limit: 10, slaState: 'violated', agent: 'other' })).items, []);
      assert.ok(!ids((await store.taskList({ limit: 10, slaState: 'at_risk' })).items).includes(fine!.id));
    });

    storeTest(open, 'the delegation report: attempts, outcomes, durations and SLAs per agent, over a window', async ({ store }) => {
      await ensureAgents(store, ['alpha', 'beta', 'idle']);
      const alpha = await registerReplica(store, { maxConcurrency: 10 });
      const beta = await registerReplica(store, { agent: 'beta', maxConcurrency: 10 });
      // Alpha: four completed attempts (100, 200, 300, 1000 ms), one failed for good, one live.
      const done = await createTasks(store, [100, 200, 300, 1_000].map(() => withSla(500)));
      for (const [i, ms] of [100, 200, 300, 1_000].entries()) {
        const live = await run(store, done[i]!, alpha, { now: T0 + 10 });
        await mustApply(store, decideComplete({ task: live.task, assignment: live.assignment, result: null, now: T0 + 10 + ms }));
      }
      const failing = await createTask(store, { maxAttempts: 1 });
      const f = await run(store, failing, alpha, { now: T0 + 20 });
      await mustApply(store, decideFail({ task: f.task, assignment: f.assignment, error: { message: 'no' }, retryable: false, outcome: 'failed', now: T0 + 30, policy: POLICY, random: 0.5 }));
      const open = await createTask(store, withSla(400));
      await run(store, open, alpha, { now: T0 + 40 });
      // Beta: routed by capability, one completed attempt; an earlier attempt (before the window) is not counted.
      const capability = await createTask(store, withSla(50_000, { agent: null, capabilities: ['x'] }));
      const c = await run(store, capability, beta, { now: T0 + 50 });
      await mustApply(store, decideComplete({ task: c.task, assignment: c.assignment, result: null, now: T0 + 70 }));

      const report = await store.reportDelegation({ since: T0, now: T0 + 2_000 });
      assert.deepEqual(report.map((r) => r.agent), ['alpha', 'beta', 'idle']);
      const [a, b, idle] = report;
      // Durations: nearest rank, ceil(p x n): median the 2nd of 4 (200), p95 the 4th (1000).
      assert.deepEqual(a, {
        agent: 'alpha', assigned: 6, completed: 4, failed: 1, inFlight: 1, medianMs: 200, p95Ms: 1_000,
        // Met: 100, 200, 300 ms by a 500 ms deadline; violated: the 1000 ms one and the open one past its 400 ms.
        slaMet: 3, slaViolated: 2,
      });
      assert.deepEqual(b, { agent: 'beta', assigned: 1, completed: 1, failed: 0, inFlight: 0, medianMs: 20, p95Ms: 20, slaMet: 1, slaViolated: 0 });
      assert.deepEqual(idle, { agent: 'idle', assigned: 0, completed: 0, failed: 0, inFlight: 0, medianMs: null, p95Ms: null, slaMet: 0, slaViolated: 0 });
      // A later window: only what ended in it (nothing), and what is live now.
      const later = await store.reportDelegation({ since: T0 + 1_500, now: T0 + 2_000 });
      assert.deepEqual([later[0]!.assigned, later[0]!.completed, later[0]!.inFlight, later[0]!.medianMs, later[0]!.slaMet], [0, 0, 1, null, 0]);
      // The sweep's marks do not count a violation twice.
      const due = await store.taskListSlaDue({ now: T0 + 2_000, limit: 50 });
      await store.taskSlaMark({ marks: due.map((t) => decideSlaCheck({ task: t, now: T0 + 2_000 })).filter((m): m is SlaMark => m !== null) });
      const swept = await store.reportDelegation({ since: T0, now: T0 + 2_000 });
      assert.deepEqual([swept[0]!.slaMet, swept[0]!.slaViolated, swept[1]!.slaMet], [3, 2, 1]);
    });
  });
}
