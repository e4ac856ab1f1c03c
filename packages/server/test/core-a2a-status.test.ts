import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TASK_STATUSES } from '@flotilla/sdk';
import { a2aStateFinal, a2aStateOf, a2aStateSettled } from '../src/core/a2a-status.ts';

describe('A2A states of Flotilla statuses (decisions.md 80)', () => {
  it('maps every status: submitted before the first attempt runs, working through retries and suspensions for children', () => {
    const cases: Array<[Parameters<typeof a2aStateOf>[0], string]> = [
      [{ status: 'pending', attempt: 0, resumed: null }, 'submitted'],
      [{ status: 'dispatched', attempt: 1, resumed: null }, 'submitted'],
      [{ status: 'running', attempt: 1, resumed: null }, 'working'],
      [{ status: 'pending', attempt: 1, resumed: null }, 'working'],
      [{ status: 'dispatched', attempt: 2, resumed: null }, 'working'],
      [{ status: 'waiting', attempt: 1, resumed: null }, 'working'],
      [{ status: 'input_required', attempt: 1, resumed: null }, 'input-required'],
      [{ status: 'completed', attempt: 1, resumed: null }, 'completed'],
      [{ status: 'failed', attempt: 3, resumed: null }, 'failed'],
      [{ status: 'cancelled', attempt: 0, resumed: null }, 'canceled'],
      // Waiting for its dependencies: it has not run yet.
      [{ status: 'blocked', attempt: 0, resumed: null }, 'submitted'],
      // After a suspension the attempt was given back: still working, never submitted again.
      [{ status: 'pending', attempt: 0, resumed: { reason: 'input', prompt: 'p', input: 'a' } }, 'working'],
      [{ status: 'dispatched', attempt: 1, resumed: { reason: 'children', children: [] } }, 'working'],
    ];
    for (const [task, state] of cases) assert.equal(a2aStateOf(task), state, `${task.status} (attempt ${task.attempt})`);
    assert.deepEqual(new Set(cases.map(([t]) => t.status)), new Set(TASK_STATUSES), 'every status is covered');
  });

  it('final states end streams and push configs; input-required settles a blocking send but is not final', () => {
    assert.deepEqual(['completed', 'failed', 'canceled', 'input-required', 'working', 'submitted'].map((s) => [a2aStateFinal(s as never), a2aStateSettled(s as never)]), [
      [true, true], [true, true], [true, true], [false, true], [false, false], [false, false],
    ]);
  });
});
