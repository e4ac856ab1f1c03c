// Task commands: submit (optionally waiting, with live progress), get, ls, cancel, retry.

import { TASK_STATUSES, TERMINAL_TASK_STATUSES, type Flotilla, type Json, type TaskSpec, type TaskStatus, type TaskView } from '@flotilla/sdk';
import { intFlag, parseCommand, stringFlag, stringsFlag } from './args.ts';
import { EXIT_FAILED, UsageError } from './errors.ts';
import { eventLine, printJson, taskBlock, taskTable } from './output.ts';

export const SUBMIT_USAGE = `Usage: flotilla submit (--agent NAME | --capability C [--capability C ...]) [flags]

  --agent NAME            run on this agent
  --capability C          route to any agent with all these capabilities (repeatable)
  --input JSON            the task's input (a JSON value)
  --priority N            0..9, 9 most urgent (default 5)
  --type T                task type
  --idempotency-key K     submit at most once per key
  --wait                  follow the task's events until it ends, then print it;
                          exit 1 when it failed or was cancelled
  --timeout-ms N          with --wait: give up after N ms (exit 1)
`;

export const GET_USAGE = 'Usage: flotilla get ID\n';

export const LS_USAGE = `Usage: flotilla ls [--status S ...] [--agent NAME] [--limit N]

  --status S      only tasks in this status (repeatable or comma-separated):
                  ${TASK_STATUSES.join(', ')}
  --agent NAME    only this agent's tasks
  --limit N       at most N tasks, newest first (default 50)
`;

export const CANCEL_USAGE = `Usage: flotilla cancel ID [--reason R]

  --reason R      why (recorded in the task's events)
`;

export const RETRY_USAGE = 'Usage: flotilla retry ID\n\nRequeues a failed task with a fresh attempt budget.\n';

function printTask(task: TaskView, json: boolean): void {
  if (json) printJson(task);
  else process.stdout.write(taskBlock(task));
}

function parseInput(raw: string | undefined): Json | undefined {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as Json;
  } catch (err) {
    throw new UsageError(`--input is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function submitCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    usage: SUBMIT_USAGE,
    options: {
      agent: { type: 'string' },
      capability: { type: 'string', multiple: true },
      input: { type: 'string' },
      priority: { type: 'string' },
      type: { type: 'string' },
      'idempotency-key': { type: 'string' },
      wait: { type: 'boolean' },
      'timeout-ms': { type: 'string' },
    },
  });
  if (cmd === null) return;
  const v = cmd.values;
  const agent = stringFlag(v.agent);
  const capabilities = stringsFlag(v.capability).flatMap((c) => c.split(',')).map((c) => c.trim()).filter((c) => c !== '');
  if (agent === undefined && capabilities.length === 0) throw new UsageError(`one of --agent or --capability is required\n\n${SUBMIT_USAGE}`);
  if (agent !== undefined && capabilities.length > 0) throw new UsageError('--agent and --capability cannot be combined');
  const input = parseInput(stringFlag(v.input));
  const priority = intFlag(v.priority, '--priority', 0, 9);
  const timeoutMs = intFlag(v['timeout-ms'], '--timeout-ms', 0);
  if (timeoutMs !== undefined && !v.wait) throw new UsageError('--timeout-ms needs --wait');
  const spec: TaskSpec = {
    ...(agent !== undefined ? { agent } : { capabilities }),
    ...(input !== undefined ? { input } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(stringFlag(v.type) !== undefined ? { type: stringFlag(v.type)! } : {}),
    ...(stringFlag(v['idempotency-key']) !== undefined ? { idempotencyKey: stringFlag(v['idempotency-key'])! } : {}),
  };
  const client = cmd.client();
  const task = await client.tasks.submit(spec);
  if (!v.wait) {
    printTask(task, cmd.json);
    return;
  }
  if (!cmd.json) process.stderr.write(`submitted ${task.id}, waiting…\n`);
  const final = await waitWithProgress(client, task.id, { timeoutMs, progress: !cmd.json });
  printTask(final, cmd.json);
  if (!TERMINAL_TASK_STATUSES.includes(final.status)) {
    process.stderr.write(`flotilla: task ${final.id} is still ${final.status} after ${timeoutMs} ms\n`);
    process.exitCode = EXIT_FAILED;
  } else if (final.status !== 'completed') {
    process.exitCode = EXIT_FAILED;
  }
}

const TERMINAL_EVENTS = new Set(['task.completed', 'task.failed', 'task.cancelled']);

/**
 * Waits for the task with the server's long-poll while printing its events to stderr as they
 * arrive (when `progress`). The event stream is only a display: the long-poll decides.
 */
async function waitWithProgress(client: Flotilla, id: string, opts: { timeoutMs: number | undefined; progress: boolean }): Promise<TaskView> {
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.once('SIGINT', onSigint);
  const follow = opts.progress
    ? (async () => {
      try {
        for await (const event of client.events.stream({ taskId: id, signal: stop.signal })) {
          process.stderr.write(`  ${eventLine(event)}`);
          if (TERMINAL_EVENTS.has(event.type)) return;
        }
      } catch {
        // The display is best effort; the long-poll below reports real failures.
      }
    })()
    : Promise.resolve();
  try {
    const task = await client.tasks.wait(id, { signal: stop.signal, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
    // Let the stream print the terminal event it is about to receive, briefly.
    await Promise.race([follow, new Promise((resolve) => setTimeout(resolve, 300).unref())]);
    return task;
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    process.stderr.write(`flotilla: interrupted; task ${id} keeps running\n`);
    process.exit(130);
  } finally {
    stop.abort();
    process.off('SIGINT', onSigint);
    await follow;
  }
}

export async function getCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { usage: GET_USAGE, positionals: ['ID'] });
  if (cmd === null) return;
  printTask(await cmd.client().tasks.get(cmd.positionals[0]!), cmd.json);
}

export async function lsCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    usage: LS_USAGE,
    options: { status: { type: 'string', multiple: true }, agent: { type: 'string' }, limit: { type: 'string' } },
  });
  if (cmd === null) return;
  const statuses = stringsFlag(cmd.values.status).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  for (const s of statuses) {
    if (!(TASK_STATUSES as readonly string[]).includes(s)) throw new UsageError(`--status: unknown status "${s}" (one of ${TASK_STATUSES.join(', ')})`);
  }
  const limit = intFlag(cmd.values.limit, '--limit', 1) ?? 50;
  const agent = stringFlag(cmd.values.agent);
  const tasks: TaskView[] = [];
  const list = cmd.client().tasks.list({
    limit: Math.min(limit, 500),
    ...(statuses.length > 0 ? { status: statuses as TaskStatus[] } : {}),
    ...(agent !== undefined ? { agent } : {}),
  });
  for await (const task of list) {
    tasks.push(task);
    if (tasks.length >= limit) break;
  }
  if (cmd.json) printJson(tasks);
  else process.stdout.write(tasks.length === 0 ? 'no tasks\n' : taskTable(tasks));
}

export async function cancelCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { usage: CANCEL_USAGE, positionals: ['ID'], options: { reason: { type: 'string' } } });
  if (cmd === null) return;
  printTask(await cmd.client().tasks.cancel(cmd.positionals[0]!, stringFlag(cmd.values.reason)), cmd.json);
}

export async function retryCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { usage: RETRY_USAGE, positionals: ['ID'] });
  if (cmd === null) return;
  printTask(await cmd.client().tasks.retry(cmd.positionals[0]!), cmd.json);
}
