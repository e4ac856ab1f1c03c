// Planning a submit whose tasks have dependencies (docs/workflows.md): `then` is expanded into
// a dependent item, `#ref`s are resolved to ids assigned here, and everything is checked
// before anything is written (core/dependencies.ts, core/input-template.ts): duplicate and
// unknown refs, cycles, templates, and dependencies by id that exist and that the submitter
// may see (one read for all). A submit that uses none of it is not planned at all.

import type { TaskSpec } from '@flotilla/sdk';
import { FlotillaError } from '../core/errors.ts';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../core/json-limits.ts';
import { resolveWorkflow } from '../core/dependencies.ts';
import { bindRefs, templateProblems } from '../core/input-template.ts';
import { canSeeTask, type Principal } from '../core/permissions.ts';
import type { DependencyFailurePolicy, Json, NewTask } from '../core/types.ts';
import type { EngineContext } from './context.ts';

/** What the plan adds to one task (TaskService.#prepare takes its id and these fields). */
export interface DependencyFields {
  id: string;
  fields: Pick<NewTask, 'dependsOn' | 'onDependencyFailure' | 'ref' | 'inputFrom' | 'hasDependents'> & {
    status?: 'blocked';
    waitingFor?: string[];
  };
}

export interface DependencyPlan {
  /** The specs to create: those given, in order, then one per `then`. */
  specs: TaskSpec[];
  fields: DependencyFields[];
  /** For each spec given: the index (in `specs`) of its `then` task, or null. */
  thenOf: Array<number | null>;
  /** Whether any created task is blocked on a task that existed before (its look after the commit matters). */
  external: boolean;
}

/** A ref no user can write (the schema's pattern has no ':'), for a `then`'s link to its first task. */
const thenRef = (i: number): string => `then:${i}`;

function usesDependencies(spec: TaskSpec): boolean {
  return spec.dependsOn !== undefined || spec.then !== undefined || spec.ref !== undefined
    || spec.inputFrom !== undefined || spec.onDependencyFailure !== undefined;
}

/** The plan for `specs`, or null when none of them uses dependencies (nothing to do). */
export async function planDependencies(ctx: EngineContext, principal: Principal, given: readonly TaskSpec[]): Promise<DependencyPlan | null> {
  if (!given.some(usesDependencies)) return null;
  const specs: TaskSpec[] = [];
  const refs: Array<string | undefined> = [];
  const thenOf: Array<number | null> = [];
  given.forEach((spec, i) => {
    if (spec.inputFrom !== undefined && spec.input !== undefined) {
      throw new FlotillaError('VALIDATION_FAILED', `task ${i}: "input" and "inputFrom" exclude each other (inputFrom builds the input)`);
    }
    if ((spec.inputFrom !== undefined || spec.onDependencyFailure !== undefined) && spec.dependsOn === undefined) {
      throw new FlotillaError('VALIDATION_FAILED', `task ${i}: "inputFrom" and "onDependencyFailure" need "dependsOn"`);
    }
    const { then, ...first } = spec;
    specs.push(first);
    refs.push(spec.ref ?? (then === undefined ? undefined : thenRef(i)));
  });
  given.forEach((spec, i) => {
    if (spec.then === undefined) {
      thenOf.push(null);
      return;
    }
    const { input, ...rest } = spec.then;
    thenOf.push(specs.length);
    specs.push({
      ...rest,
      dependsOn: [`#${refs[i]!}`],
      ...(input === undefined ? {} : { inputFrom: input }),
      // A retried submit finds both by their keys: they were created in one commit.
      ...(spec.idempotencyKey === undefined || rest.idempotencyKey !== undefined ? {} : { idempotencyKey: `${spec.idempotencyKey}/then` }),
    });
    refs.push(undefined);
  });
  const resolved = resolveWorkflow(specs.map((s, i) => ({ ref: refs[i], dependsOn: s.dependsOn })));
  // An item found by its idempotency key is not created, and the new id its dependents were
  // given would name nothing: only a `then` (created in the same commit as its first task) may
  // depend on an item that has a key.
  resolved.forEach((r, i) => {
    const isThen = thenOf.includes(i);
    for (const j of r.local) {
      if (!isThen && specs[j]!.idempotencyKey !== undefined) {
        throw new FlotillaError('VALIDATION_FAILED', `task ${i} depends on task ${j} of the same submit, which has an idempotency key: submit that one first and depend on its id`);
      }
    }
  });
  const externalIds = [...new Set(resolved.flatMap((r) => r.external))];
  if (externalIds.length > 0) {
    const found = new Map((await ctx.store.taskGetMany({ ids: externalIds })).map((t) => [t.id, t]));
    // A task the caller cannot see is, to the caller, a task that does not exist.
    const unknown = externalIds.filter((id) => !found.has(id) || !canSeeTask(principal, found.get(id)!));
    if (unknown.length > 0) {
      throw new FlotillaError('UNKNOWN_DEPENDENCY', `dependsOn names ${unknown.length === 1 ? 'a task that does' : 'tasks that do'} not exist: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}`, { unknown: unknown.slice(0, 100) });
    }
  }
  const ids = specs.map(() => ctx.newId());
  const dependedOn = new Set(resolved.flatMap((r) => r.local));
  const fields = specs.map((spec, i): DependencyFields => {
    const r = resolved[i]!;
    const dependsOn = r.order.map((d) => ('local' in d ? ids[d.local]! : d.id));
    let inputFrom: Json | null = spec.inputFrom ?? null;
    // As deep as an input may be, checked first: walking a deeper one could overflow the stack.
    if (inputFrom !== null && jsonTooDeep(inputFrom)) {
      throw new FlotillaError('VALIDATION_FAILED', `task ${i}${thenOf.includes(i) ? ' (a then)' : ''}: the input template nests deeper than ${MAX_JSON_DEPTH} levels`);
    }
    if (inputFrom !== null) {
      const localRefs = r.local.flatMap((j) => (refs[j] === undefined ? [] : [refs[j]!]));
      const problems = templateProblems(inputFrom, { ids: dependsOn, refs: localRefs });
      if (problems.length > 0) {
        throw new FlotillaError('INVALID_TEMPLATE', `task ${i}${thenOf.includes(i) ? ' (a then)' : ''}: ${problems.map((p) => `${p.path || '/'}: ${p.message}`).join('; ')}`, { problems });
      }
      // Stored by id: a dependency named by id may have the same ref from its own workflow.
      inputFrom = bindRefs(inputFrom, new Map(r.local.flatMap((j) => (refs[j] === undefined ? [] : [[refs[j]!, ids[j]!] as const]))));
    }
    const userRef = spec.ref ?? null;
    return {
      id: ids[i]!,
      fields: {
        ref: userRef,
        hasDependents: dependedOn.has(i),
        ...(dependsOn.length === 0 ? {} : {
          status: 'blocked' as const, waitingFor: dependsOn, dependsOn,
          onDependencyFailure: (spec.onDependencyFailure ?? 'fail') as DependencyFailurePolicy, inputFrom,
        }),
      },
    };
  });
  return { specs, fields, thenOf, external: externalIds.length > 0 };
}
