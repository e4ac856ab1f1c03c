// Dependencies between tasks and workflows (docs/workflows.md): the pure rules. A dependent is
// `blocked` (its waitingFor names its dependencies) until each of them ended; then it is
// unblocked (pending, with their outcomes and its templated input) or, when one failed or
// was cancelled and its policy is `fail`, it fails with DEPENDENCY_FAILED at once. The engine
// (engine/unblocker.ts) decides when to ask; the stores only apply the guarded writes.
//
// Invariants:
// - a blocked task's waitingFor equals its dependsOn (set at submit, cleared as it leaves);
// - dependencies are tasks that existed before the dependent or were created in the same
//   commit, so the only cycles possible are among the items of one submit: checked here.

import { FlotillaError } from './errors.ts';
import { applyTemplate } from './input-template.ts';
import { isTerminal } from './task-machine.ts';
import { transitionOf } from './transition-kinds.ts';
import type { DependencyOutcome, Json, Millis, TaskErrorInfo, TaskRecord, Transition } from './types.ts';

/** The most dependencies one task may name. */
export const MAX_DEPENDENCIES = 100;
/** The most tasks one workflow (or batch) may create with local references between them. */
export const MAX_WORKFLOW_TASKS = 100;

/** The error code of a task failed by its dependency (details: dependency, status, error). */
export const DEPENDENCY_FAILED = 'DEPENDENCY_FAILED';
/** An input template's `$from` found nothing and had no `default` (details: path, from). */
export const DEPENDENCY_INPUT_MISSING = 'DEPENDENCY_INPUT_MISSING';
/** The values an input template put in are past the input limit (details: path, from, limit). */
export const DEPENDENCY_INPUT_TOO_LARGE = 'DEPENDENCY_INPUT_TOO_LARGE';

/** One item of a call as the resolution sees it. */
export interface WorkflowItem {
  ref?: string | undefined;
  dependsOn?: readonly string[] | undefined;
}

export interface ResolvedItem {
  /** Indexes of the items of the same call it depends on (`#ref`), in the order named. */
  local: number[];
  /** Task ids it depends on that exist outside the call, in the order named. */
  external: string[];
  /** Its dependencies in the order named: `{ local: index }` or `{ id }`. */
  order: Array<{ local: number } | { id: string }>;
}

/**
 * Resolves the `#ref`s of a call's items and checks them: refs are unique (DUPLICATE_REF),
 * each `#ref` names an item (UNKNOWN_DEPENDENCY), no item depends on itself through others
 * (DEPENDENCY_CYCLE, with the cycle), and no item names more than MAX_DEPENDENCIES.
 * Whether external ids exist is the caller's to check (it reads them).
 */
export function resolveWorkflow(items: readonly WorkflowItem[]): ResolvedItem[] {
  const byRef = new Map<string, number>();
  items.forEach((item, i) => {
    if (item.ref === undefined) return;
    if (byRef.has(item.ref)) throw new FlotillaError('DUPLICATE_REF', `two tasks have the ref "${item.ref}"`, { ref: item.ref });
    byRef.set(item.ref, i);
  });
  const resolved = items.map((item, i): ResolvedItem => {
    const names = [...new Set(item.dependsOn ?? [])];
    if (names.length > MAX_DEPENDENCIES) {
      throw new FlotillaError('VALIDATION_FAILED', `a task may depend on at most ${MAX_DEPENDENCIES} tasks (item ${i} names ${names.length})`);
    }
    const unknown = names.filter((n) => n.startsWith('#') && !byRef.has(n.slice(1)));
    if (unknown.length > 0) {
      throw new FlotillaError('UNKNOWN_DEPENDENCY', `no task of this submit has the ref ${unknown.map((u) => `"${u.slice(1)}"`).join(', ')}`, { unknown });
    }
    const order: ResolvedItem['order'] = names.map((n) => (n.startsWith('#') ? { local: byRef.get(n.slice(1))! } : { id: n }));
    return {
      order,
      local: names.filter((n) => n.startsWith('#')).map((n) => byRef.get(n.slice(1))!),
      external: names.filter((n) => !n.startsWith('#')),
    };
  });
  const cycle = findCycle(resolved.map((r) => r.local));
  if (cycle !== null) {
    const names = cycle.map((i) => items[i]!.ref ?? `#${i}`);
    throw new FlotillaError('DEPENDENCY_CYCLE', `the dependencies go round in a circle: ${[...names, names[0]].join(' -> ')}`, { cycle: names });
  }
  return resolved;
}

/** A cycle in the graph `edges[i]` = the nodes i depends on, as the nodes in order; null when there is none. */
export function findCycle(edges: readonly (readonly number[])[]): number[] | null {
  const state = new Uint8Array(edges.length); // 0 unseen, 1 on the path, 2 done
  const path: number[] = [];
  const visit = (n: number): number[] | null => {
    state[n] = 1;
    path.push(n);
    for (const m of edges[n]!) {
      if (state[m] === 1) return path.slice(path.indexOf(m));
      if (state[m] === 0) {
        const found = visit(m);
        if (found) return found;
      }
    }
    path.pop();
    state[n] = 2;
    return null;
  };
  for (let n = 0; n < edges.length; n++) {
    if (state[n] === 0) {
      const found = visit(n);
      if (found) return found;
    }
  }
  return null;
}

type Dependency = Pick<TaskRecord, 'id' | 'status' | 'result' | 'error' | 'ref'>;
type Blocked = Pick<TaskRecord, 'id' | 'agent' | 'parentId' | 'hasDependents' | 'status' | 'waitingFor' | 'onDependencyFailure' | 'inputFrom' | 'runAt'>;

export interface UnblockInput {
  task: Blocked;
  /** The dependencies as read (any that no longer exists is missing: retention deleted it). */
  dependencies: readonly Dependency[];
  now: Millis;
  /** The outcomes' results together may be at most this large (JSON bytes) in the assignment; past it they are left out. */
  maxResultBytes: number;
  /** The values the input template puts in may together be at most this large (JSON bytes); past it the task fails. */
  maxInputBytes: number;
}

/**
 * What happens to a blocked task given its dependencies now: null while one has not ended
 * (and, under policy `fail`, none failed yet); `dependency_failed` when one failed or was
 * cancelled (or no longer exists) and the policy is `fail`, or its input template found
 * nothing; otherwise `unblock`: pending, with the outcomes, and the template's input.
 */
export function decideUnblock({ task, dependencies, now, maxResultBytes, maxInputBytes }: UnblockInput): Transition | null {
  if (task.status !== 'blocked' || task.waitingFor === null) return null;
  const byId = new Map(dependencies.map((d) => [d.id, d]));
  const outcomes: DependencyOutcome[] = task.waitingFor.map((id) => {
    const d = byId.get(id);
    if (!d) return { id, ref: null, status: 'cancelled', result: null, error: { code: 'DEPENDENCY_GONE', message: `task ${id} no longer exists` } };
    return { id, ref: d.ref ?? null, status: d.status, result: d.result, error: d.error };
  });
  const bad = outcomes.find((o) => isTerminal(o.status) && o.status !== 'completed');
  const policy = task.onDependencyFailure ?? 'fail';
  if (bad && policy === 'fail') {
    return dependencyFailed(task, now, {
      code: DEPENDENCY_FAILED,
      message: `dependency ${bad.id}${bad.ref === null ? '' : ` (#${bad.ref})`} ${bad.status}${bad.error ? `: ${bad.error.message}` : ''}`,
      details: { dependency: bad.id, ref: bad.ref, status: bad.status, error: bad.error as Json },
    });
  }
  if (outcomes.some((o) => !isTerminal(o.status))) return null;
  let input: Json | undefined;
  if (task.inputFrom !== null && task.inputFrom !== undefined) {
    const filled = applyTemplate(task.inputFrom, outcomes, maxInputBytes);
    if (!filled.ok && filled.tooLarge === true) {
      return dependencyFailed(task, now, {
        code: DEPENDENCY_INPUT_TOO_LARGE,
        message: `the input template's values are more than ${maxInputBytes} bytes as JSON (past it at ${filled.path}, "$from": "${filled.from}")`,
        details: { path: filled.path, from: filled.from, limit: maxInputBytes },
      });
    }
    if (!filled.ok) {
      return dependencyFailed(task, now, {
        code: DEPENDENCY_INPUT_MISSING,
        message: `the input template's "$from": "${filled.from}" (at ${filled.path}) found nothing in the dependency's outcome, and has no "default"`,
        details: { path: filled.path, from: filled.from },
      });
    }
    // null is what the input already is (inputFrom excludes input); stored, it would be SQL NULL.
    if (filled.value !== null) input = filled.value;
  }
  let budget = maxResultBytes;
  const bounded = outcomes.map((o) => {
    const bytes = o.result === null ? 0 : JSON.stringify(o.result).length;
    const keep = bytes <= budget;
    if (keep) budget -= bytes;
    return keep ? o : { ...o, result: null, resultOmitted: true };
  });
  return transitionOf('unblock', {
    taskId: task.id,
    parentId: task.parentId,
    hasDependents: task.hasDependents === true,
    fromStatus: 'blocked',
    expectAssignmentId: null,
    set: {
      status: 'pending', waitingFor: null, dependencies: bounded, runAt: Math.max(now, task.runAt), updatedAt: now,
      ...(input === undefined ? {} : { input }),
    },
    events: [{
      type: 'task.unblocked', taskId: task.id, agent: task.agent, replicaId: null, assignmentId: null,
      data: { dependencies: outcomes.map((o) => ({ id: o.id, status: o.status })) },
    }],
  });
}

function dependencyFailed(task: Blocked, now: Millis, error: TaskErrorInfo): Transition {
  return transitionOf('dependency_failed', {
    taskId: task.id,
    parentId: task.parentId,
    hasDependents: task.hasDependents === true,
    fromStatus: 'blocked',
    expectAssignmentId: null,
    set: { status: 'failed', waitingFor: null, error, finishedAt: now, updatedAt: now },
    events: [{
      type: 'task.failed', taskId: task.id, agent: task.agent, replicaId: null, assignmentId: null,
      data: { attempt: 0, outcome: 'dependency_failed', error: { code: error.code ?? DEPENDENCY_FAILED, message: error.message, details: (error.details ?? null) as Json }, retryable: false },
    }],
  });
}
