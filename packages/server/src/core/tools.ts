// Tool permissions (issue 14): which tools a task's attempt may use. Pure (no I/O); the
// engine computes a task's effective set once, at submit, and stores it on the task.
//
// Grammar (case-sensitive; docs/protocol.md "Tools"):
//   segment   [A-Za-z0-9][A-Za-z0-9._-]*
//   name      segment | segment ":" segment      a tool: `search.web`, `web:search`
//   pattern   segment ":*" | "*"                 every tool of a domain (`web:*`), every tool
//   entry     name | pattern                     what a ceiling, an allow and a deny list hold
// An entry is at most 128 characters. The `flotilla` domain is Flotilla's own: only the
// tools it defines (DELEGATION_TOOLS) and `flotilla:*` may be named in it.
//
// Glossary:
// - ceiling: the entries an agent declares (`tools`): the most any of its tasks may use. An
//   agent that declares none may use none (least privilege; `*` grants every tool).
// - effective set: what one task may use, as a list of entries granted plus entries excepted,
//   the latter written `!entry`: a tool is permitted when a granted entry covers it and no
//   excepted entry does (so a deny always wins, also over a wider pattern).
// - covers: entry p covers entry q when every tool q names, p names too (`*` ⊇ `web:*` ⊇
//   `web:search`).
//
// Invariants:
// - effective(child) ⊆ effective(parent) ∩ ceiling(child's agent): a spawn never widens.
// - a task at the maximum depth has no delegation tool in its effective set.
// - the effective set is in canonical form (normalize): the same set is always the same list.

/** Flotilla's delegation tools: what a model is offered to create work (spawning a child task). */
export const DELEGATION_TOOLS = ['flotilla:spawn'] as const;

export const TOOL_ENTRY_MAX_LENGTH = 128;
export const TOOL_LIST_MAX_ITEMS = 256;

const SEGMENT = '[A-Za-z0-9][A-Za-z0-9._-]*';
/** The grammar's syntax as a regular expression (the API schemas use it too). */
export const TOOL_ENTRY_PATTERN = `^(?:\\*|${SEGMENT}(?::(?:${SEGMENT}|\\*))?)$`;
const ENTRY = new RegExp(TOOL_ENTRY_PATTERN);
const RESERVED_DOMAIN = 'flotilla';

/** A set as two lists: granted entries, and excepted ones (denied, written `!entry`). */
export interface ToolSet {
  grant: readonly string[];
  except: readonly string[];
}

/** The empty set: what an agent that declares no tools may use. */
export const NO_TOOLS: ToolSet = { grant: [], except: [] };
/** Every tool: the "parent" of a root task (nothing above it narrows). */
export const ALL_TOOLS: ToolSet = { grant: ['*'], except: [] };

/** Why `entry` is not a valid tool name or pattern, or null when it is. */
export function toolEntryProblem(entry: string): string | null {
  if (entry.length === 0 || entry.length > TOOL_ENTRY_MAX_LENGTH) return `must be 1 to ${TOOL_ENTRY_MAX_LENGTH} characters`;
  if (!ENTRY.test(entry)) return 'is not a tool name (`name`, `domain:name`) or pattern (`domain:*`, `*`)';
  const domain = domainOf(entry);
  if (domain === RESERVED_DOMAIN && entry !== `${RESERVED_DOMAIN}:*` && !(DELEGATION_TOOLS as readonly string[]).includes(entry)) {
    return `names no Flotilla tool (the "${RESERVED_DOMAIN}" domain has ${DELEGATION_TOOLS.join(', ')})`;
  }
  return null;
}

/** Every invalid entry of a list, as `{path, message}` (the VALIDATION_FAILED details shape). */
export function toolListProblems(entries: readonly string[], path: string): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  if (entries.length > TOOL_LIST_MAX_ITEMS) problems.push({ path, message: `must have at most ${TOOL_LIST_MAX_ITEMS} entries` });
  entries.forEach((entry, i) => {
    const problem = toolEntryProblem(entry);
    if (problem !== null) problems.push({ path: `${path}/${i}`, message: `"${entry}" ${problem}` });
  });
  return problems;
}

function domainOf(entry: string): string | null {
  const colon = entry.indexOf(':');
  return colon < 0 ? null : entry.slice(0, colon);
}

/** Whether every tool `q` names, `p` names too. */
export function covers(p: string, q: string): boolean {
  if (p === q || p === '*') return true;
  if (!p.endsWith(':*')) return false;
  return q !== '*' && domainOf(q) === p.slice(0, -2);
}

/** The entry naming exactly the tools both name, or null when they share none. */
export function meet(p: string, q: string): string | null {
  if (covers(p, q)) return q;
  if (covers(q, p)) return p;
  return null;
}

/** Canonical form: no entry covered by another of its list, no grant wholly excepted, no except that excepts nothing granted; sorted. */
export function normalize(set: ToolSet): ToolSet {
  const minimal = (entries: readonly string[]) => {
    const unique = [...new Set(entries)];
    return unique.filter((e) => !unique.some((o) => o !== e && covers(o, e)));
  };
  const except = minimal(set.except);
  const grant = minimal(set.grant).filter((g) => !except.some((x) => covers(x, g)));
  return {
    grant: grant.sort(),
    except: except.filter((x) => grant.some((g) => meet(g, x) !== null)).sort(),
  };
}

export function intersect(a: ToolSet, b: ToolSet): ToolSet {
  const grant: string[] = [];
  for (const p of a.grant) {
    for (const q of b.grant) {
      const m = meet(p, q);
      if (m !== null) grant.push(m);
    }
  }
  return normalize({ grant, except: [...a.except, ...b.except] });
}

/** Whether the set lets an attempt use `tool` (a tool's name, as called). */
export function permits(set: ToolSet, tool: string): boolean {
  return set.grant.some((g) => covers(g, tool)) && !set.except.some((x) => covers(x, tool));
}

/** Whether `entry` names at least one tool the set grants (a pattern may name more). */
export function grantsAnyOf(set: ToolSet, entry: string): boolean {
  return set.grant.some((g) => {
    const m = meet(g, entry);
    return m !== null && !set.except.some((x) => covers(x, m));
  });
}

/** The wire form: granted entries, then excepted ones prefixed `!`. */
export function toolList(set: ToolSet): string[] {
  return [...set.grant, ...set.except.map((x) => `!${x}`)];
}

/** Reads the wire form back (a stored task's `tools`). */
export function toolSetOf(list: readonly string[]): ToolSet {
  return {
    grant: list.filter((e) => !e.startsWith('!')),
    except: list.filter((e) => e.startsWith('!')).map((e) => e.slice(1)),
  };
}

/** An agent's declared ceiling as a set. */
export function ceilingOf(tools: readonly string[]): ToolSet {
  return normalize({ grant: tools, except: [] });
}

export type ToolsRefusal = {
  code: 'TOOL_OUTSIDE_CEILING' | 'TOOL_NOT_ALLOWED';
  message: string;
  details: { tools: string[]; allowed: string[] };
};

export interface EffectiveToolsInput {
  /** The ceiling of the agent the task runs on (for a capability-routed task, of every candidate, intersected). */
  ceiling: ToolSet;
  /** The parent's effective set; ALL_TOOLS for a root task. */
  parent: ToolSet;
  /** The submit's narrowing: absent `allow` narrows nothing. */
  allow?: readonly string[] | undefined;
  deny?: readonly string[] | undefined;
  /** The task is at its maximum depth: the delegation tools are removed. */
  atMaxDepth: boolean;
  /** For messages: whose ceiling, and which parent. */
  agentLabel: string;
  parentId: string | null;
}

/**
 * The effective set of a task: ceiling ∩ parent ∩ allow − deny (− the delegation tools at
 * the maximum depth). An allow entry that names nothing in the ceiling is refused (the
 * request asks for what the agent cannot have: TOOL_OUTSIDE_CEILING, a 400); one within the
 * ceiling but naming nothing the parent has would widen the parent's (TOOL_NOT_ALLOWED, a
 * 403). The ceiling is checked first. Entries are assumed valid (toolListProblems).
 */
export function effectiveTools(input: EffectiveToolsInput): { tools: ToolSet } | { refusal: ToolsRefusal } {
  const allow = input.allow === undefined ? ALL_TOOLS : normalize({ grant: input.allow, except: [] });
  if (input.allow !== undefined) {
    const outside = input.allow.filter((e) => !grantsAnyOf(input.ceiling, e));
    if (outside.length > 0) {
      return { refusal: {
        code: 'TOOL_OUTSIDE_CEILING',
        message: `"tools.allow" names ${quoteAll(outside)}, outside the tools ${input.agentLabel} may use (${describe(input.ceiling)})`,
        details: { tools: outside, allowed: toolList(input.ceiling) },
      } };
    }
    const widening = input.allow.filter((e) => !grantsAnyOf(input.parent, e));
    if (widening.length > 0) {
      return { refusal: {
        code: 'TOOL_NOT_ALLOWED',
        message: `"tools.allow" names ${quoteAll(widening)}, which parent task ${input.parentId} may not use (${describe(input.parent)}): a spawn cannot widen its parent's tools`,
        details: { tools: widening, allowed: toolList(input.parent) },
      } };
    }
  }
  const except = [...(input.deny ?? []), ...(input.atMaxDepth ? DELEGATION_TOOLS : [])];
  const narrowed = intersect(intersect(input.ceiling, input.parent), allow);
  return { tools: normalize({ grant: narrowed.grant, except: [...narrowed.except, ...except] }) };
}

function quoteAll(entries: readonly string[]): string {
  return entries.map((e) => `"${e}"`).join(', ');
}

function describe(set: ToolSet): string {
  return set.grant.length === 0 ? 'none' : toolList(set).join(', ');
}
