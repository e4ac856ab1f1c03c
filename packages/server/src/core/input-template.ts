// Input templates (TaskSpec.inputFrom, then.input; docs/workflows.md): JSON in which every
// object with a `$from` key is replaced, when the task is unblocked, by the value a JSON
// pointer (RFC 6901) finds in one dependency's outcome. Data only, never code: the template is
// walked, nothing in it is evaluated, and a pointer reads own properties only (so `__proto__`
// or `constructor` find nothing rather than an object's prototype). Pure.
//
// `$from` is `<source><pointer>`:
//   "#fetch/result/summary"   the item of the same workflow whose ref is `fetch`
//   "<task id>/result/x"      a dependency by id
//   "/result/x"               the task's only dependency (refused at submit with several)
// and the pointer is read against `{"id", "ref", "status", "result", "error"}`. Beside `$from`
// only `default` may appear: the value used when the pointer finds nothing; without it a
// missing value fails the task (DEPENDENCY_INPUT_MISSING).

import type { DependencyOutcome, Json } from './types.ts';

export interface TemplateProblem {
  /** Where in the template (a JSON pointer). */
  path: string;
  message: string;
}

/** A `$from` split into the dependency it names and the pointer into that dependency's outcome. */
interface FromRef {
  /** `#ref`, a task id, or null for "the only dependency". */
  source: string | null;
  pointer: string;
}

function isObject(v: Json): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapeToken(t: string): string {
  return t.replaceAll('~', '~0').replaceAll('/', '~1');
}

function parseFrom(from: string): FromRef {
  if (from === '' || from.startsWith('/')) return { source: null, pointer: from };
  const slash = from.indexOf('/');
  return slash < 0 ? { source: from, pointer: '' } : { source: from.slice(0, slash), pointer: from.slice(slash) };
}

/** RFC 6901: `~1` is `/`, `~0` is `~`; any other `~` is malformed. */
function pointerTokens(pointer: string): string[] | null {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return null;
  const tokens = pointer.slice(1).split('/');
  if (tokens.some((t) => /~(?![01])/.test(t))) return null;
  return tokens.map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** The value `pointer` finds in `doc`, or undefined when nothing is there (own properties and array indexes only). */
export function resolvePointer(doc: Json, pointer: string): Json | undefined {
  const tokens = pointerTokens(pointer);
  if (tokens === null) return undefined;
  let at: Json = doc;
  for (const token of tokens) {
    if (Array.isArray(at)) {
      // An index is 0 or has no leading zero; `-` (past the end) finds nothing.
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      const i = Number(token);
      if (i >= at.length) return undefined;
      at = at[i]!;
    } else if (isObject(at)) {
      if (!Object.hasOwn(at, token)) return undefined;
      at = at[token]!;
    } else {
      return undefined;
    }
  }
  return at;
}

/** Visits every `$from` object of the template (depth first), with its path. */
function visitFroms(template: Json, path: string, visit: (node: { [k: string]: Json }, path: string) => void): void {
  if (Array.isArray(template)) {
    template.forEach((v, i) => visitFroms(v, `${path}/${i}`, visit));
  } else if (isObject(template)) {
    if (Object.hasOwn(template, '$from')) {
      visit(template, path);
      return;
    }
    for (const [k, v] of Object.entries(template)) visitFroms(v, `${path}/${escapeToken(k)}`, visit);
  }
}

/**
 * What is wrong with a template, checked at submit: each `$from` must be a string naming a
 * dependency of the task (`#ref` of a workflow item it depends on, a task id in its
 * dependsOn, or none with exactly one dependency) with a well-formed pointer, and only
 * `default` may stand beside it. Empty: it is fine.
 */
export function templateProblems(template: Json, deps: { ids: readonly string[]; refs: readonly string[] }): TemplateProblem[] {
  const problems: TemplateProblem[] = [];
  visitFroms(template, '', (node, path) => {
    const from = node.$from;
    const extra = Object.keys(node).filter((k) => k !== '$from' && k !== 'default');
    if (typeof from !== 'string') {
      problems.push({ path, message: '"$from" must be a string: "#ref/pointer", "<task id>/pointer" or "/pointer"' });
      return;
    }
    if (extra.length > 0) problems.push({ path, message: `only "default" may stand beside "$from" (found ${extra.map((k) => `"${k}"`).join(', ')})` });
    const ref = parseFrom(from);
    if (pointerTokens(ref.pointer) === null) problems.push({ path, message: `"${from}": the pointer is not an RFC 6901 JSON pointer` });
    if (ref.source === null) {
      if (deps.ids.length !== 1) problems.push({ path, message: `"${from}" names no dependency, which needs exactly one (the task has ${deps.ids.length}); write "#ref/..." or "<task id>/..."` });
    } else if (ref.source.startsWith('#') ? !deps.refs.includes(ref.source.slice(1)) : !deps.ids.includes(ref.source)) {
      problems.push({ path, message: `"${from}": ${ref.source} is not a dependency of this task` });
    }
  });
  return problems;
}

/**
 * The template with each `"#ref/pointer"` written as `"<id>/pointer"`, the id the submit gave
 * that workflow item (checked first: templateProblems). A ref names an item of the same
 * submit, and only there is it unique: a dependency by id may carry the same ref from the
 * workflow it was submitted in, and matching refs when the task is unblocked could read it.
 */
export function bindRefs(template: Json, idOf: ReadonlyMap<string, string>): Json {
  if (Array.isArray(template)) return template.map((v) => bindRefs(v, idOf));
  if (!isObject(template)) return template;
  if (Object.hasOwn(template, '$from')) {
    const ref = parseFrom(String(template.$from));
    const id = ref.source?.startsWith('#') ? idOf.get(ref.source.slice(1)) : undefined;
    return id === undefined ? template : { ...template, $from: `${id}${ref.pointer}` };
  }
  return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, bindRefs(v, idOf)]));
}

export type TemplateResult =
  | { ok: true; value: Json }
  /**
   * A `$from` without `default` found nothing: the pointer, and where in the template; or,
   * with `tooLarge`, the `$from` whose value took what it puts in past `maxBytes`.
   */
  | { ok: false; path: string; from: string; tooLarge?: true };

/**
 * The template with every `$from` replaced by what it points at in its dependency's outcome,
 * or its `default`. `outcomes` carry full results (not the bounded copies an assignment gets).
 * The values put in may together be at most `maxBytes` (as JSON): a small template can name
 * one large result many times, and the input it builds is stored and sent whole. Each value's
 * size is measured once (the same object named again is not serialized again), and filling
 * stops at the first value past the limit, so the work is bounded by the limit too.
 */
export function applyTemplate(template: Json, outcomes: readonly DependencyOutcome[], maxBytes = Number.POSITIVE_INFINITY): TemplateResult {
  let missing: { path: string; from: string; tooLarge?: true } | null = null;
  let bytes = 0;
  const sizes = new WeakMap<object, number>();
  const sizeOf = (v: Json): number => {
    if (typeof v !== 'object' || v === null) return JSON.stringify(v).length;
    let n = sizes.get(v);
    if (n === undefined) sizes.set(v, n = JSON.stringify(v).length);
    return n;
  };
  const put = (v: Json, path: string, from: string): Json => {
    bytes += sizeOf(v);
    if (bytes <= maxBytes) return v;
    missing = { path: path === '' ? '/' : path, from, tooLarge: true };
    return null;
  };
  const fill = (node: Json, path: string): Json => {
    if (missing !== null) return null;
    if (Array.isArray(node)) return node.map((v, i) => fill(v, `${path}/${i}`));
    if (!isObject(node)) return node;
    if (Object.hasOwn(node, '$from')) {
      const from = String(node.$from);
      const ref = parseFrom(from);
      const dep = ref.source === null ? (outcomes.length === 1 ? outcomes[0] : undefined)
        : ref.source.startsWith('#') ? outcomes.find((o) => o.ref === ref.source!.slice(1)) : outcomes.find((o) => o.id === ref.source);
      const found = dep === undefined ? undefined : resolvePointer(outcomeDoc(dep), ref.pointer);
      if (found !== undefined) return put(found, path, from);
      if (Object.hasOwn(node, 'default')) return put(node.default!, path, from);
      missing = { path: path === '' ? '/' : path, from };
      return null;
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, `${path}/${escapeToken(k)}`)]));
  };
  const value = fill(template, '');
  return missing === null ? { ok: true, value } : { ok: false, ...(missing as { path: string; from: string; tooLarge?: true }) };
}

/** The document a pointer reads: a dependency's outcome as JSON. */
function outcomeDoc(o: DependencyOutcome): Json {
  return { id: o.id, ref: o.ref, status: o.status, result: o.result, error: o.error === null ? null : { ...o.error } as Json };
}
