// The CLI's side of dependencies and workflows (docs/workflows.md): the dependency flags of
// `flotilla submit` (--depends-on, --on-dependency-failure, --input-from, --then-agent,
// --then-input) and `flotilla workflow submit FILE.json`, which sends a workflow as it is.

import { readFileSync } from 'node:fs';
import type { Json, TaskSpec, WorkflowSpec } from '@flotilla/sdk';
import { listFlag, parseCommand, stringFlag } from './args.ts';
import { UsageError } from './errors.ts';
import { printJson, taskTable } from './output.ts';

export const DEPENDENCY_USAGE = `
Dependencies (docs/workflows.md):
  --depends-on ID,...     wait (blocked) until these tasks completed (repeatable or comma-separated)
  --on-dependency-failure fail|run
                          a failed or cancelled dependency fails it (default), or it runs anyway
  --input-from JSON       its input, built from the dependencies' outcomes when it is unblocked:
                          {"$from": "<task id>/result/x"} objects are replaced (not with --input)
  --then-agent NAME       when it completes, submit a task to NAME ...
  --then-input JSON       ... with this input template over its outcome, e.g.
                          '{"text": {"$from": "/result/summary"}}'
`;

/** The dependency options `flotilla submit` takes. */
export const DEPENDENCY_OPTIONS = {
  'depends-on': { type: 'string', multiple: true },
  'on-dependency-failure': { type: 'string' },
  'input-from': { type: 'string' },
  'then-agent': { type: 'string' },
  'then-input': { type: 'string' },
} as const;

function jsonFlag(raw: string | undefined, flag: string): Json | undefined {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as Json;
  } catch (err) {
    throw new UsageError(`${flag} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The TaskSpec fields the dependency flags give. */
export function dependencyFields(v: Record<string, unknown>): Partial<TaskSpec> {
  const dependsOn = [...new Set(listFlag(v['depends-on'] as string[] | undefined))];
  const policy = stringFlag(v['on-dependency-failure'] as string | undefined);
  if (policy !== undefined && policy !== 'fail' && policy !== 'run') throw new UsageError('--on-dependency-failure is fail or run');
  const inputFrom = jsonFlag(stringFlag(v['input-from'] as string | undefined), '--input-from');
  const thenAgent = stringFlag(v['then-agent'] as string | undefined);
  const thenInput = jsonFlag(stringFlag(v['then-input'] as string | undefined), '--then-input');
  if (thenInput !== undefined && thenAgent === undefined) throw new UsageError('--then-input needs --then-agent');
  return {
    ...(dependsOn.length > 0 ? { dependsOn } : {}),
    ...(policy !== undefined ? { onDependencyFailure: policy } : {}),
    ...(inputFrom !== undefined ? { inputFrom } : {}),
    ...(thenAgent !== undefined ? { then: { agent: thenAgent, ...(thenInput !== undefined ? { input: thenInput } : {}) } } : {}),
  };
}

export const WORKFLOW_USAGE = `Usage: flotilla workflow submit FILE.json

Submits a workflow: a JSON file {"tasks": [...]} of task specs that name each other by
"ref" ("dependsOn": ["#fetch"]); all are validated, then created in one commit, or none.
Prints the created tasks and their ids by ref. "-" reads the file from standard input.
`;

export async function workflowCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'workflow', usage: WORKFLOW_USAGE, options: {}, positionals: ['submit', 'FILE.json'] });
  if (cmd === null) return;
  const [sub, file] = cmd.positionals as [string, string];
  if (sub !== 'submit') throw new UsageError(`unknown workflow command "${sub}": expected flotilla workflow submit FILE.json`);
  let spec: WorkflowSpec;
  try {
    spec = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8')) as WorkflowSpec;
  } catch (err) {
    throw new UsageError(`${file} is not a readable JSON file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const created = await cmd.client().tasks.submitWorkflow(spec);
  if (cmd.json) {
    printJson(created);
    return;
  }
  process.stdout.write(taskTable(created.items));
  for (const [ref, id] of Object.entries(created.ids)) process.stdout.write(`#${ref} ${id}\n`);
}
