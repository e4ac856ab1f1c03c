// The task state machine: the one place that decides transitions. Each `decide*` function
// reads the current records and returns a Transition (guarded writes) or throws a
// FlotillaError when the request is not allowed in the current state. Stores apply
// transitions; they never decide them. Pure: time, ids and randomness come in as arguments.
//
//   pending ──dispatch──> dispatched ──start──> running ──complete──> completed
//      ^                      │                    │
//      └──── retry (backoff) ─┴── fail / timeout / lease lost ──> failed (attempts exhausted
//      └──── requeue (operator) <── failed                         or non-retryable)
//   any non-terminal ──cancel──> cancelled (a live attempt: after the worker acknowledges
//                                           or the grace period ends)
//   any non-terminal ──operator_fail──> failed (at once, a live attempt too: it ends `failed`,
//                                               its worker learns it on its next report)
//   running ──wait──> waiting ──resume (every awaited child ended)──> pending
//   running ──ask_input──> input_required ──answer──> pending
//                                         └─input_timeout──> failed
//   (new, dependsOn) ──> blocked ──unblock──> pending      (core/dependencies.ts decides both)
//                               └─dependency_failed──> failed
//   (docs/state-machine.md draws all of it; a suspended attempt does not count as one)

import { FlotillaError } from './errors.ts';
import { retryDelay, type RetryPolicy } from './retry-policy.ts';
import { transitionOf } from './transition-kinds.ts';
import type { ChildOutcome } from '@flotilla/sdk';
import type {
  AssignmentRecord, AssignmentStatus, Json, Millis, NewEvent, TaskErrorInfo, TaskHead, TaskPatch, TaskRecord, Transition, TransitionEventType,
} from './types.ts';

const LIVE: readonly AssignmentStatus[] = ['dispatched', 'running'];

export function isTerminal(status: TaskHead['status']): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

function event(type: TransitionEventType, task: Pick<TaskHead, 'id' | 'agent'>, a: Pick<AssignmentRecord, 'id' | 'replicaId' | 'agent'> | null, data: Record<string, Json> = {}): NewEvent & { type: TransitionEventType } {
  return {
    type,
    taskId: task.id,
    agent: a?.agent ?? task.agent,
    replicaId: a?.replicaId ?? null,
    assignmentId: a?.id ?? null,
    data,
  };
}

/** A worker may only act on the task's current live assignment; anything else is late or duplicate. */
function requireCurrent(task: TaskHead, assignment: AssignmentRecord): void {
  if (task.assignmentId !== assignment.id || !LIVE.includes(assignment.status)) {
    // The details let a worker that retried a report (its first answer was lost) see that
    // its own earlier report already ended the attempt: assignmentStatus 'completed'.
    throw new FlotillaError(
      'ASSIGNMENT_SUPERSEDED',
      `assignment ${assignment.id} is ${assignment.status} and no longer current for task ${task.id}; its report is not applied`,
      { assignmentStatus: assignment.status, taskStatus: task.status },
    );
  }
}

/** A task with a live attempt must come with that assignment (an operator's action reads it). */
function requireLive(task: TaskHead, assignment: AssignmentRecord | null): asserts assignment is AssignmentRecord {
  if (!assignment || assignment.id !== task.assignmentId) {
    throw new FlotillaError('INTERNAL', `task ${task.id} is ${task.status} without its live assignment`);
  }
}

export interface DispatchInput {
  task: TaskHead;
  replica: { id: string; agent: string };
  assignmentId: string;
  now: Millis;
  leaseMs: Millis;
  concurrencyLimit: number | null;
  /**
   * An operator's dispatch (POST /tasks/{id}/assign), by this principal's name: kind `assign`
   * (durable), with `assignedBy` in the event. It does not wait for the task's `runAt`: the
   * dispatch itself never looks at it (only the dispatcher's choice of candidates does).
   */
  assignedBy?: string;
  /** The fleet and agent caps the claim is guarded by (core/flow-caps.ts); absent: none. */
  caps?: NonNullable<Transition['slotAcquire']>['caps'];
}

export function decideDispatch({ task, replica, assignmentId, now, leaseMs, concurrencyLimit, assignedBy, caps }: DispatchInput): Transition {
  if (task.status !== 'pending') throw new FlotillaError('INVALID_TRANSITION', `task ${task.id} is ${task.status}, not pending`);
  const attempt = task.attempt + 1;
  const assignment: AssignmentRecord = {
    id: assignmentId,
    taskId: task.id,
    agent: replica.agent,
    replicaId: replica.id,
    attempt,
    status: 'dispatched',
    dispatchedAt: now,
    startedAt: null,
    finishedAt: null,
    leaseExpiresAt: now + leaseMs,
    deadlineAt: now + task.timeoutMs,
    progressPercent: null,
    progressMessage: null,
    progressAt: null,
    error: null,
  };
  return transitionOf(assignedBy === undefined ? 'dispatch' : 'assign', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: 'pending',
    expectAssignmentId: null,
    set: { status: 'dispatched', assignmentId, attempt, updatedAt: now },
    assignmentInsert: assignment,
    slotAcquire: { replicaId: replica.id, concurrencyKey: task.concurrencyKey, concurrencyLimit, at: now, ...(caps === undefined ? {} : { caps }) },
    events: [event('task.dispatched', task, assignment, { attempt, maxAttempts: task.maxAttempts, ...(assignedBy === undefined ? {} : { assignedBy }) })],
  });
}

/** dispatched → running. Returns null when the attempt is already running (a repeated start is harmless). */
export function decideStart({ task, assignment, now, leaseMs }: { task: TaskHead; assignment: AssignmentRecord; now: Millis; leaseMs: Millis }): Transition | null {
  requireCurrent(task, assignment);
  if (assignment.status === 'running') return null;
  return transitionOf('start', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { status: 'running', updatedAt: now },
    assignmentUpdate: {
      id: assignment.id,
      fromStatuses: ['dispatched'],
      // The execution timeout counts from the moment the handler starts, not from dispatch.
      set: { status: 'running', startedAt: now, leaseExpiresAt: now + leaseMs, deadlineAt: now + task.timeoutMs },
    },
    events: [event('task.started', task, assignment, { attempt: assignment.attempt })],
  });
}

export function decideComplete({ task, assignment, result, now }: { task: TaskHead; assignment: AssignmentRecord; result: Json; now: Millis }): Transition {
  requireCurrent(task, assignment);
  const startedAt = assignment.startedAt ?? assignment.dispatchedAt;
  return transitionOf('complete', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { status: 'completed', assignmentId: null, result, error: null, finishedAt: now, updatedAt: now },
    assignmentUpdate: {
      id: assignment.id,
      fromStatuses: LIVE,
      set: { status: 'completed', finishedAt: now, ...(assignment.startedAt === null ? { startedAt } : {}) },
    },
    slotRelease: { replicaId: assignment.replicaId, concurrencyKey: task.concurrencyKey, outcome: 'completed' },
    events: [event('task.completed', task, assignment, { attempt: assignment.attempt, durationMs: now - startedAt })],
  });
}

export type AttemptOutcome = 'failed' | 'timed_out' | 'lost';

export interface FailInput {
  task: TaskHead;
  assignment: AssignmentRecord;
  error: TaskErrorInfo;
  retryable: boolean;
  outcome: AttemptOutcome;
  now: Millis;
  policy: RetryPolicy;
  random: number;
}

/**
 * An attempt ended badly. The task goes back to pending after a backoff while attempts
 * remain and the error is retryable; otherwise it fails for good (the dead-letter queue).
 * A task whose cancellation was requested ends cancelled instead: nobody wants it retried.
 */
export function decideFail({ task, assignment, error, retryable, outcome, now, policy, random }: FailInput): Transition {
  requireCurrent(task, assignment);
  if (task.cancelRequestedAt !== null) return decideCancelAck({ task, assignment, now, reason: outcome });
  const base = {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    assignmentUpdate: { id: assignment.id, fromStatuses: LIVE, set: { status: outcome, finishedAt: now, error } },
    slotRelease: { replicaId: assignment.replicaId, concurrencyKey: task.concurrencyKey, outcome: 'failed' as const },
  };
  const info: Record<string, Json> = { attempt: assignment.attempt, maxAttempts: task.maxAttempts, outcome, error: errorJson(error) };
  if (retryable && assignment.attempt < task.maxAttempts) {
    const delayMs = retryDelay(policy, assignment.attempt, random);
    return transitionOf('retry', {
      ...base,
      set: { status: 'pending', assignmentId: null, error, runAt: now + delayMs, updatedAt: now },
      events: [event('task.retrying', task, assignment, { ...info, delayMs, retryAt: new Date(now + delayMs).toISOString() })],
    });
  }
  return transitionOf('fail', {
    ...base,
    set: { status: 'failed', assignmentId: null, error, finishedAt: now, updatedAt: now },
    events: [event('task.failed', task, assignment, { ...info, retryable })],
  });
}

/**
 * The dispatch never reached the replica (its connection was gone when the assignment was
 * sent). The attempt is marked failed but does not count: the task returns to pending at
 * once with its attempt number restored, and the replica's slot is given back, so its
 * in-flight count ends where it was before the dispatch.
 */
export function decideDispatchFailed({ task, assignment, now, reason }: { task: TaskHead; assignment: AssignmentRecord; now: Millis; reason: string }): Transition {
  requireCurrent(task, assignment);
  // A cancel that landed while the dispatch was in flight must not be forgotten by the undo.
  if (task.cancelRequestedAt !== null) return decideCancelAck({ task, assignment, now, reason: 'dispatch_failed' });
  const error: TaskErrorInfo = { code: 'DISPATCH_FAILED', message: reason };
  return transitionOf('dispatch_failed', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { status: 'pending', assignmentId: null, attempt: assignment.attempt - 1, runAt: now, updatedAt: now },
    assignmentUpdate: { id: assignment.id, fromStatuses: ['dispatched'], set: { status: 'failed', finishedAt: now, error, counted: false } },
    slotRelease: { replicaId: assignment.replicaId, concurrencyKey: task.concurrencyKey, outcome: null },
    events: [event('task.dispatch_failed', task, assignment, { reason })],
  });
}

export interface CancelInput {
  task: TaskRecord;
  /** The live assignment, when the task has one. */
  assignment: AssignmentRecord | null;
  now: Millis;
  reason?: string;
  /** The ancestor whose cancellation cascaded to this task (recorded in the event), if any. */
  cancelledBy?: string;
}

/**
 * Cancel: a pending task ends at once. A live one is marked cancel-requested; its worker
 * learns it on its next heartbeat and acknowledges, or the grace period ends it (see
 * decideExpiry). Returns null when there is nothing to do (already cancelled or requested).
 */
export function decideCancel({ task, assignment, now, reason, cancelledBy }: CancelInput): Transition | null {
  const data: Record<string, Json> = { ...(reason ? { reason } : {}), ...(cancelledBy ? { cancelledBy } : {}) };
  if (task.status === 'cancelled') return null;
  if (task.status === 'completed' || task.status === 'failed') {
    throw new FlotillaError('INVALID_TRANSITION', `task ${task.id} is already ${task.status}; only a non-terminal task can be cancelled`);
  }
  if (task.status === 'pending' || task.status === 'waiting' || task.status === 'input_required' || task.status === 'blocked') {
    // No attempt is live: it ends at once. A waiting task's children are not touched here
    // (cancelling a tree cascades to them: TaskService.cancel).
    return transitionOf('cancel', {
      taskId: task.id,
      parentId: task.parentId, hasDependents: task.hasDependents === true,
      fromStatus: task.status,
      expectAssignmentId: null,
      set: { status: 'cancelled', finishedAt: now, cancelRequestedAt: now, ...suspensionCleared(task.status), updatedAt: now },
      events: [event('task.cancelled', task, null, data)],
    });
  }
  if (task.cancelRequestedAt !== null) return null;
  requireLive(task, assignment);
  return transitionOf('cancel_request', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { cancelRequestedAt: now, updatedAt: now },
    events: [event('task.cancel_requested', task, assignment, data)],
  });
}

/** The worker stopped a cancelled attempt (or the grace period ran out): the task ends cancelled. */
export function decideCancelAck({ task, assignment, now, reason }: { task: TaskHead; assignment: AssignmentRecord; now: Millis; reason: string }): Transition {
  requireCurrent(task, assignment);
  if (task.cancelRequestedAt === null) {
    // The attempt is still live and the worker's: it may go on with the work (docs/protocol.md §5).
    throw new FlotillaError('INVALID_TRANSITION', `task ${task.id} has no cancellation to acknowledge`, { assignmentStatus: assignment.status, taskStatus: task.status });
  }
  return transitionOf('cancel_ack', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { status: 'cancelled', assignmentId: null, finishedAt: now, updatedAt: now },
    assignmentUpdate: { id: assignment.id, fromStatuses: LIVE, set: { status: 'cancelled', finishedAt: now } },
    slotRelease: { replicaId: assignment.replicaId, concurrencyKey: task.concurrencyKey, outcome: null },
    events: [event('task.cancelled', task, assignment, { reason })],
  });
}

/** An operator requeues a dead-lettered task: fresh attempt budget, from pending. */
export function decideRequeue({ task, now }: { task: TaskHead & Pick<TaskRecord, 'dependsOn'>; now: Millis }): Transition {
  if (task.status !== 'failed') {
    throw new FlotillaError('INVALID_TRANSITION', `task ${task.id} is ${task.status}; only a failed task can be requeued`);
  }
  // A task with dependencies starts again where it started: blocked, until they say it may
  // run (core/dependencies.ts decideUnblock: their outcomes and its template afresh). Pending,
  // it would run without them (a dependency-failed one never had its input built).
  const dependsOn = task.dependsOn ?? [];
  const blocked = dependsOn.length === 0 ? {} : { status: 'blocked' as const, waitingFor: [...dependsOn], dependencies: null };
  return transitionOf('requeue', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: 'failed',
    expectAssignmentId: null,
    // A fresh start: what an earlier suspension brought back (resumed) goes too.
    set: { status: 'pending', attempt: 0, runAt: now, finishedAt: null, error: null, result: null, cancelRequestedAt: null, resumed: null, updatedAt: now, ...blocked },
    events: [event('task.requeued', task, null, { previousAttempts: task.attempt })],
  });
}

/** The error code of a task an operator failed (POST /tasks/{id}/fail). */
export const OPERATOR_FAILED = 'OPERATOR_FAILED';

export interface OperatorFailInput {
  task: TaskHead;
  /** The live assignment, when the task has one. */
  assignment: AssignmentRecord | null;
  reason: string;
  /** Who failed it (the principal's name), recorded in the event. */
  by: string;
  now: Millis;
}

/**
 * An operator fails a task for good, with a reason: it goes to the dead-letter list (status
 * failed, error OPERATOR_FAILED) whatever attempts it has left, and can be requeued. A task
 * without a live attempt (pending, or any other status that holds none) fails at once; a live
 * attempt ends `failed` in the same transition and gives its slot back, and its worker learns
 * it from its next heartbeat or report (ASSIGNMENT_SUPERSEDED, assignmentStatus failed), or
 * from a push over the socket. The replica's reliability is not charged: the operator ended it.
 */
export function decideOperatorFail({ task, assignment, reason, by, now }: OperatorFailInput): Transition {
  if (isTerminal(task.status)) {
    throw new FlotillaError('INVALID_TRANSITION', `task ${task.id} is already ${task.status}; only a non-terminal task can be failed`);
  }
  const error: TaskErrorInfo = { code: OPERATOR_FAILED, message: reason };
  const data: Record<string, Json> = {
    attempt: task.attempt, maxAttempts: task.maxAttempts, outcome: 'operator_failed', error: errorJson(error), retryable: false, by,
  };
  // A suspended task (waiting, input_required) fails too, and leaves what it kept.
  const set = { status: 'failed' as const, error, finishedAt: now, ...suspensionCleared(task.status), updatedAt: now };
  if (task.assignmentId === null) {
    return transitionOf('operator_fail', {
      taskId: task.id, parentId: task.parentId, hasDependents: task.hasDependents === true, fromStatus: task.status, expectAssignmentId: null, set,
      events: [event('task.failed', task, null, data)],
    });
  }
  requireLive(task, assignment);
  return transitionOf('operator_fail', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { ...set, assignmentId: null },
    // Not counted against the agent (statistics, the delegation report): the operator ended it.
    assignmentUpdate: { id: assignment.id, fromStatuses: LIVE, set: { status: 'failed', finishedAt: now, error, counted: false } },
    slotRelease: { replicaId: assignment.replicaId, concurrencyKey: task.concurrencyKey, outcome: null },
    events: [event('task.failed', task, assignment, { ...data, attempt: assignment.attempt })],
  });
}

export interface ExpiryInput {
  task: TaskHead;
  assignment: AssignmentRecord;
  now: Millis;
  cancelGraceMs: Millis;
  policy: RetryPolicy;
  random: number;
}

/**
 * What the lease reaper does with a live assignment, or null if it is still healthy.
 * Order matters: a requested cancellation wins over a timeout, and a timeout wins over a
 * lapsed lease (the deadline is the stronger statement about the attempt).
 */
export function decideExpiry({ task, assignment, now, cancelGraceMs, policy, random }: ExpiryInput): Transition | null {
  if (task.assignmentId !== assignment.id || !LIVE.includes(assignment.status)) return null;
  if (task.cancelRequestedAt !== null && now >= task.cancelRequestedAt + cancelGraceMs) {
    return decideCancelAck({ task, assignment, now, reason: 'grace_expired' });
  }
  if (now >= assignment.deadlineAt) {
    return decideFail({
      task, assignment, now, policy, random, outcome: 'timed_out', retryable: true,
      error: { code: 'TIMED_OUT', message: `attempt ${assignment.attempt} exceeded its timeout of ${task.timeoutMs} ms` },
    });
  }
  if (now >= assignment.leaseExpiresAt) {
    return decideFail({
      task, assignment, now, policy, random, outcome: 'lost', retryable: true,
      error: { code: 'LEASE_EXPIRED', message: `replica ${assignment.replicaId} stopped renewing the lease of attempt ${assignment.attempt}` },
    });
  }
  return null;
}

/** A replica vanished (deregistered or stopped being seen): its live attempts are lost. */
export function decideReplicaLost({ task, assignment, now, policy, random, reason }: { task: TaskHead; assignment: AssignmentRecord; now: Millis; policy: RetryPolicy; random: number; reason: string }): Transition | null {
  if (task.assignmentId !== assignment.id || !LIVE.includes(assignment.status)) return null;
  return decideFail({
    task, assignment, now, policy, random, outcome: 'lost', retryable: true,
    error: { code: 'REPLICA_LOST', message: `replica ${assignment.replicaId} was lost: ${reason}` },
  });
}

/**
 * A replica reconnected and listed what it still holds; this live attempt was not among
 * them. Never started: the assignment never reached the worker (it was pushed as the
 * connection broke), so the dispatch is undone and does not count as an attempt. Started:
 * the worker lost it (restarted without it), so the attempt ends as lost and is retried
 * now rather than when its lease would lapse.
 */
export function decideNotHeld({ task, assignment, now, policy, random }: { task: TaskHead; assignment: AssignmentRecord; now: Millis; policy: RetryPolicy; random: number }): Transition | null {
  if (task.assignmentId !== assignment.id || !LIVE.includes(assignment.status)) return null;
  if (assignment.status === 'dispatched') {
    return decideDispatchFailed({ task, assignment, now, reason: `replica ${assignment.replicaId} reconnected without this assignment` });
  }
  return decideFail({
    task, assignment, now, policy, random, outcome: 'lost', retryable: true,
    error: { code: 'NOT_HELD', message: `replica ${assignment.replicaId} reconnected without attempt ${assignment.attempt}` },
  });
}

/** The fields a suspended status keeps, cleared as the task leaves it. */
function suspensionCleared(status: TaskHead['status']): Pick<TaskPatch, 'waitingFor' | 'inputRequest' | 'inputExpiresAt'> {
  if (status === 'waiting' || status === 'blocked') return { waitingFor: null };
  if (status === 'input_required') return { inputRequest: null, inputExpiresAt: null };
  return {};
}

/** The most children one wait may name (and the most one resumed attempt is given). */
export const MAX_AWAITED_CHILDREN = 1_000;

/**
 * The common part of wait and ask_input: the live attempt ends `suspended` (not counted: the
 * task's attempt number is given back, so the resumed attempt carries the same number), its
 * slot is freed, and nothing of it (lease, deadline) stays armed. A task whose cancellation
 * was requested ends cancelled instead: nobody wants it resumed.
 */
function suspend(
  kind: 'wait' | 'ask_input', task: TaskHead, assignment: AssignmentRecord, now: Millis,
  set: Pick<TaskPatch, 'status' | 'waitingFor' | 'inputRequest' | 'inputExpiresAt'>, ev: NewEvent & { type: TransitionEventType },
): Transition {
  return transitionOf(kind, {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { ...set, assignmentId: null, attempt: assignment.attempt - 1, updatedAt: now },
    assignmentUpdate: {
      id: assignment.id,
      fromStatuses: LIVE,
      set: { status: 'suspended', finishedAt: now, counted: false, ...(assignment.startedAt === null ? { startedAt: now } : {}) },
    },
    slotRelease: { replicaId: assignment.replicaId, concurrencyKey: task.concurrencyKey, outcome: null },
    events: [ev],
  });
}

export interface WaitInput {
  task: TaskHead;
  assignment: AssignmentRecord;
  /** The children named by the handler, as read: each must be a child of `task`. */
  children: ReadonlyArray<Pick<TaskHead, 'id' | 'parentId' | 'status'>>;
  /** The ids as the handler named them (order kept, duplicates removed by the caller). */
  childIds: readonly string[];
  now: Millis;
}

/**
 * The handler ends its attempt by waiting for children: the task is `waiting` until every one
 * of them is terminal (decideResume). Children that are already terminal are fine: the engine
 * checks for a resume right after this commits.
 */
export function decideWait({ task, assignment, children, childIds, now }: WaitInput): Transition {
  requireCurrent(task, assignment);
  if (task.cancelRequestedAt !== null) return decideCancelAck({ task, assignment, now, reason: 'cancelled_while_waiting' });
  if (childIds.length === 0) throw new FlotillaError('VALIDATION_FAILED', 'name at least one child task to wait for');
  if (childIds.length > MAX_AWAITED_CHILDREN) {
    throw new FlotillaError('VALIDATION_FAILED', `a task may wait for at most ${MAX_AWAITED_CHILDREN} children at once (${childIds.length} named)`);
  }
  const found = new Map(children.map((c) => [c.id, c]));
  const strangers = childIds.filter((id) => found.get(id)?.parentId !== task.id);
  if (strangers.length > 0) {
    throw new FlotillaError('VALIDATION_FAILED', `a task can only wait for its own children; ${strangers.slice(0, 5).join(', ')}${strangers.length > 5 ? ', ...' : ''} ${strangers.length === 1 ? 'is' : 'are'} not a child of task ${task.id}`, { notChildren: strangers.slice(0, 100) });
  }
  return suspend('wait', task, assignment, now, { status: 'waiting', waitingFor: [...childIds] },
    event('task.waiting', task, assignment, { attempt: assignment.attempt, children: [...childIds] }));
}

/** Whether a waiting task may be resumed: every awaited child is terminal. */
export function awaitedChildrenEnded(children: ReadonlyArray<Pick<TaskHead, 'status'>>, awaited: number): boolean {
  return children.length === awaited && children.every((c) => isTerminal(c.status));
}

/**
 * Every awaited child ended: the task is pending again, and its next attempt is given the
 * children's outcomes (`resumed`). Null when it is not time yet (or not waiting any more).
 * A child that no longer exists (retention deleted it) counts as ended, with no outcome.
 */
export function decideResume({ task, children, now, maxResultBytes }: {
  task: Pick<TaskRecord, 'id' | 'agent' | 'parentId' | 'hasDependents' | 'status' | 'waitingFor'>;
  children: ReadonlyArray<Pick<TaskRecord, 'id' | 'status' | 'result' | 'error'>>;
  now: Millis;
  /** The children's results together may be at most this large (JSON bytes) in the resumed attempt; past it they are left out. */
  maxResultBytes: number;
}): Transition | null {
  if (task.status !== 'waiting' || task.waitingFor === null) return null;
  const byId = new Map(children.map((c) => [c.id, c]));
  const awaited = task.waitingFor.map((id) => byId.get(id) ?? null);
  if (awaited.some((c) => c !== null && !isTerminal(c.status))) return null;
  let budget = maxResultBytes;
  const outcomes: ChildOutcome[] = task.waitingFor.map((id, i) => {
    const c = awaited[i];
    if (!c) return { id, status: 'cancelled', result: null, error: { code: 'CHILD_GONE', message: `child task ${id} no longer exists` } };
    const bytes = c.result === null ? 0 : JSON.stringify(c.result).length;
    const keep = bytes <= budget;
    if (keep) budget -= bytes;
    return { id, status: c.status, result: keep ? c.result : null, error: c.error, ...(keep ? {} : { resultOmitted: true }) };
  });
  return transitionOf('resume', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: 'waiting',
    expectAssignmentId: null,
    set: { status: 'pending', waitingFor: null, resumed: { reason: 'children', children: outcomes }, runAt: now, updatedAt: now },
    events: [event('task.resumed', task, null, { reason: 'children', children: outcomes.map((o) => ({ id: o.id, status: o.status })) })],
  });
}

export interface AskInput {
  task: TaskHead;
  assignment: AssignmentRecord;
  prompt: string;
  schema: Json | null;
  /** How long an answer may take; null: no limit. */
  timeoutMs: Millis | null;
  now: Millis;
}

/** The handler ends its attempt by asking for input: the task is `input_required` until answered. */
export function decideAskInput({ task, assignment, prompt, schema, timeoutMs, now }: AskInput): Transition {
  requireCurrent(task, assignment);
  if (task.cancelRequestedAt !== null) return decideCancelAck({ task, assignment, now, reason: 'cancelled_while_asking' });
  const expiresAt = timeoutMs === null ? null : now + timeoutMs;
  const data: Record<string, Json> = { attempt: assignment.attempt, prompt, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() };
  return suspend('ask_input', task, assignment, now,
    { status: 'input_required', inputRequest: { prompt, schema, requestedAt: now, expiresAt }, inputExpiresAt: expiresAt },
    event('task.input_required', task, assignment, data));
}

/**
 * Somebody answered (already validated against the request's schema by the caller): pending
 * again, and the next attempt is given the answer.
 */
export function decideAnswer({ task, input, now, by }: { task: Pick<TaskRecord, 'id' | 'agent' | 'parentId' | 'hasDependents' | 'status' | 'inputRequest'>; input: Json; now: Millis; by: string | null }): Transition {
  if (task.status !== 'input_required' || task.inputRequest === null) {
    throw new FlotillaError('INVALID_TRANSITION', `task ${task.id} is ${task.status}; only a task in input_required takes input`);
  }
  return transitionOf('answer', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: 'input_required',
    expectAssignmentId: null,
    set: {
      status: 'pending', inputRequest: null, inputExpiresAt: null, runAt: now, updatedAt: now,
      resumed: { reason: 'input', prompt: task.inputRequest.prompt, input },
    },
    events: [event('task.resumed', task, null, { reason: 'input', ...(by === null ? {} : { by }) })],
  });
}

/** Nobody answered before the request expired: the task fails for good (INPUT_TIMEOUT). */
export function decideInputTimeout({ task, now }: { task: Pick<TaskRecord, 'id' | 'agent' | 'parentId' | 'hasDependents' | 'status' | 'inputRequest' | 'attempt' | 'maxAttempts'>; now: Millis }): Transition | null {
  const expiresAt = task.inputRequest?.expiresAt ?? null;
  if (task.status !== 'input_required' || expiresAt === null || now < expiresAt) return null;
  const error: TaskErrorInfo = { code: 'INPUT_TIMEOUT', message: `nobody answered the input request of task ${task.id} by ${new Date(expiresAt).toISOString()}` };
  return transitionOf('input_timeout', {
    taskId: task.id,
    parentId: task.parentId, hasDependents: task.hasDependents === true,
    fromStatus: 'input_required',
    expectAssignmentId: null,
    set: { status: 'failed', inputRequest: null, inputExpiresAt: null, error, finishedAt: now, updatedAt: now },
    events: [event('task.failed', task, null, { attempt: task.attempt, maxAttempts: task.maxAttempts, outcome: 'input_timeout', error: errorJson(error), retryable: false })],
  });
}

/** The error an attempt ended rate limited carries (its assignment's error; the task keeps none). */
export const PROVIDER_RATE_LIMITED = 'PROVIDER_RATE_LIMITED';

/**
 * The worker met a provider's rate limit (a 429 with Retry-After): the attempt ends `failed`
 * but is not counted (its number is given back, the agent's statistics are not charged), the
 * slot is freed, and the task is pending again at `until` (the key's pause, which the engine
 * writes with it). It does not spend a retry, so a task is never dead-lettered by a provider's
 * back-pressure alone. A task whose cancellation was requested ends cancelled instead.
 */
export function decideRateLimited({ task, assignment, until, message, now }: { task: TaskHead; assignment: AssignmentRecord; until: Millis; message: string; now: Millis }): Transition {
  requireCurrent(task, assignment);
  if (task.cancelRequestedAt !== null) return decideCancelAck({ task, assignment, now, reason: 'rate_limited' });
  const error: TaskErrorInfo = { code: PROVIDER_RATE_LIMITED, message };
  const retryAt = Math.max(now, until);
  return transitionOf('rate_limited', {
    taskId: task.id,
    parentId: task.parentId,
    fromStatus: task.status,
    expectAssignmentId: assignment.id,
    set: { status: 'pending', assignmentId: null, attempt: assignment.attempt - 1, runAt: retryAt, updatedAt: now },
    assignmentUpdate: { id: assignment.id, fromStatuses: LIVE, set: { status: 'failed', finishedAt: now, error, counted: false } },
    slotRelease: { replicaId: assignment.replicaId, concurrencyKey: task.concurrencyKey, outcome: null },
    events: [event('task.rate_limited', task, assignment, {
      attempt: assignment.attempt, rateKey: task.rateKey ?? null, retryAt: new Date(retryAt).toISOString(), error: errorJson(error),
    })],
  });
}

function errorJson(e: TaskErrorInfo): Json {
  const out: Record<string, Json> = { message: e.message };
  if (e.code !== undefined) out.code = e.code;
  if (e.details !== undefined) out.details = e.details;
  return out;
}
