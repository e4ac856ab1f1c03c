// What this node knows of the live attempts it dispatched, so a worker's report on one is
// decided without reading the task and the assignment first (a PostgreSQL round trip each).
//
// It is a hint, never the truth: every write decided from it is still guarded by the task's
// status and live assignment and by the assignment's status, and a guard that fails makes the
// caller read the records and decide again. Entries are kept by `commit()` (context.ts), which
// every transition of this engine passes through: a dispatch adds one, a transition that keeps
// the attempt live updates it, one that ends it removes it. Writes made by other nodes are
// not seen; what they change that a report's decision needs (the task's status, a start)
// fails its guard, and a cancellation requested elsewhere matters only to the reports that
// do not use these entries (fail, acknowledgements: they always read).
//
// Bounded: an attempt ended by another node is never removed here, so past the bound the
// oldest entries go (insertion order).

import type { AssignmentRecord, TaskHead, Transition } from '../core/types.ts';

export interface LiveAttempt {
  task: TaskHead;
  assignment: AssignmentRecord;
}

const MAX_ENTRIES = 100_000;

export class LiveAttempts {
  readonly #byAssignment = new Map<string, LiveAttempt>();
  readonly #max: number;

  constructor(max = MAX_ENTRIES) {
    this.#max = max;
  }

  get(assignmentId: string): LiveAttempt | undefined {
    return this.#byAssignment.get(assignmentId);
  }

  forget(assignmentId: string): void {
    this.#byAssignment.delete(assignmentId);
  }

  /** Records what a committed transition did to the attempt it is about. */
  applied(t: Transition, task?: TaskHead): void {
    // Both kinds of dispatch (a pass's, an operator's) start an attempt this node pushes.
    if (t.kind === 'dispatch' || t.kind === 'assign') {
      if (!task) return;
      const a = t.assignmentInsert!;
      this.#byAssignment.set(a.id, { task: { ...headOf(task), ...headPatch(t) }, assignment: a });
      while (this.#byAssignment.size > this.#max) this.#byAssignment.delete(this.#byAssignment.keys().next().value!);
      return;
    }
    const id = t.expectAssignmentId;
    if (id === null) return;
    const entry = this.#byAssignment.get(id);
    if (!entry) return;
    if (t.set.assignmentId === null) {
      this.#byAssignment.delete(id);
      return;
    }
    entry.task = { ...entry.task, ...headPatch(t) };
    if (t.assignmentUpdate) entry.assignment = { ...entry.assignment, ...withoutUndefined(t.assignmentUpdate.set) };
  }
}

/** Only the head: a record's input or result is not kept in memory. */
function headOf(t: TaskHead): TaskHead {
  return {
    id: t.id, seq: t.seq, status: t.status, priority: t.priority, agent: t.agent, capabilities: t.capabilities, replica: t.replica,
    site: t.site, concurrencyKey: t.concurrencyKey, attempt: t.attempt, maxAttempts: t.maxAttempts, timeoutMs: t.timeoutMs,
    runAt: t.runAt, assignmentId: t.assignmentId, cancelRequestedAt: t.cancelRequestedAt, parentId: t.parentId,
    slaDeadline: t.slaDeadline,
    // Whether its end looks at dependents (context.commit): a hint, as all of this is.
    ...(t.hasDependents === true ? { hasDependents: true } : {}),
  };
}

/** The transition's changes to the fields of a task head. */
function headPatch(t: Transition): Partial<TaskHead> {
  const {
    result: _result, error: _error, finishedAt: _finished, updatedAt: _updated,
    waitingFor: _waiting, inputRequest: _asked, inputExpiresAt: _expires, resumed: _resumed, ...head
  } = t.set;
  return withoutUndefined(head);
}

function withoutUndefined<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}
