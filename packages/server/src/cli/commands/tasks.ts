// Task commands: submit (optionally waiting, with live progress), get, ls, cancel, retry
// (tree, assign and fail are in trees.ts; answer is in answer.ts).

import {
  PRIORITY_ALIASES, PRIORITY_BANDS, TASK_STATUSES, TERMINAL_TASK_STATUSES, type Flotilla, type Json, type Priority, type TaskSpec, type TaskStatus, type TaskView,
} from '@flotilla/sdk';
import { taskSpecSchema } from '../../schemas/schemas.ts';
import { durationFlag, formatDuration, intFlag, listFlag, pairsFlag, parseCommand, stringFlag, stringsFlag, usageError } from './args.ts';
import { EXIT_FAILED, UsageError } from './errors.ts';
import { isoFlag } from './keys.ts';
import { DEPENDENCY_OPTIONS, DEPENDENCY_USAGE, dependencyFields } from './workflow.ts';
import { eventLine, printJson, taskBlock, taskTable } from './output.ts';

const TASK = taskSpecSchema.properties;
const SCALE = TASK.priority.anyOf[1];
const ALIASES = PRIORITY_BANDS.map((b) => `${b}=${PRIORITY_ALIASES[b]}`).join(', ');

/** `--priority`: a value of the scale, or an alias (P0..P3), sent as given (the server resolves aliases). */
export function priorityFlag(value: unknown): Priority | undefined {
  const s = stringFlag(value);
  if (s === undefined) return undefined;
  const alias = s.toUpperCase();
  if ((PRIORITY_BANDS as readonly string[]).includes(alias)) return alias as Priority;
  if (!/^\d+$/.test(s) || Number(s) < SCALE.minimum || Number(s) > SCALE.maximum) {
    throw new UsageError(`--priority must be ${SCALE.minimum}..${SCALE.maximum} or one of ${PRIORITY_BANDS.join(', ')}, got "${s}"`);
  }
  return Number(s);
}

export const SUBMIT_USAGE = `Usage: flotilla submit (--agent NAME | --capability C ...) [--input JSON] [task options] [--wait [--wait-timeout D]]

  --agent NAME            run on this agent
  --capability C          route to any agent with all these capabilities
                          (repeatable or comma-separated; --capabilities is the same)
  --input JSON            the task's input (a JSON value)
  --type T                task type (default: the agent's name)

The task's own options:
  --priority N            ${SCALE.minimum}..${SCALE.maximum}, ${SCALE.maximum} most urgent (default 5), or an alias:
                          ${ALIASES}
  --deadline ISO          its SLA: terminal by this time (default: its priority band's policy)
  --sla D                 its SLA as a duration from now, e.g. 30m, 2h (not with --deadline)
  --timeout D             execution timeout of each attempt, e.g. 90s, 10m (at most 7d;
                          default: the agent's, else the server's)
  --max-attempts N        attempts before the task fails for good (1..${TASK.maxAttempts.maximum}; default:
                          the agent's, else the server's)
  --delay D               do not start it before D from now, e.g. 30s, 2h
  --run-at ISO            do not start it before this time, e.g. 2030-01-31T09:00:00Z
  --idempotency-key K     submit at most once per key (a repeat answers the first task)
  --concurrency-key K     share a concurrency limit with other tasks of key K
  --correlation K=V       a correlation entry, e.g. ticket=OPS-12 (repeatable)
  --site S                prefer a replica in site S
  --replica ID            run only on this replica
  --traceparent TP        W3C trace context of the caller
  --parent ID             make it a child of task ID (it inherits the parent's correlation
                          and a span of its trace)
  --allow-tools T,...     only these of the tools the agent (and the parent) may use; names
                          or patterns like web:* (repeatable or comma-separated; "" allows none)
  --deny-tools T,...      none of these tools (a deny always wins)
  --allow-degraded        it may run while a tool domain its agent uses is down (docs/mcp.md)
${DEPENDENCY_USAGE.trim()}
  --notify URL            POST its completion (signed) to URL when it ends (docs/webhooks.md)
  --cache-key K           answer from a completed task of this agent and key, in your scope,
                          if one finished within --cache-ttl; share one still running
                          (docs/caching.md; needs --agent)
  --cache-ttl D           how old the cached result may be, e.g. 10m (default 1h)
  --rate-key K            dispatch it under provider rate key K (docs/flow-control.md)
  --tokens N              the tokens it is expected to use, counted against K's tokens per minute

Waiting (the submit command's own time, not the task's):
  --wait                  follow the task's events until it ends, then print it;
                          exit 1 when it failed or was cancelled
  --wait-timeout D        stop waiting after D, e.g. 30s (implies --wait); exit 1 if it
                          has not ended by then (the task itself goes on)
`;

/** `--timeout-ms` meant the wait's timeout, which read like the task's `timeoutMs`: refused, with the new names. */
const REMOVED_SUBMIT_FLAGS = {
  'timeout-ms': 'is gone: it was how long --wait waits, and read like the task\'s own timeoutMs. '
    + 'Use --wait-timeout D for the wait (e.g. --wait-timeout 30s), --timeout D for the task\'s execution timeout',
};

export const GET_USAGE = 'Usage: flotilla get ID\n';

export const LS_USAGE = `Usage: flotilla ls [--status S ...] [--agent NAME] [--sla at_risk|violated] [--limit N]

  --status S      only tasks in this status (repeatable or comma-separated):
                  ${TASK_STATUSES.join(', ')}
  --agent NAME    only this agent's tasks
  --sla STATE     only tasks whose SLA is at_risk, or violated
  --limit N       at most N tasks, newest first (default 50)
`;

export const CANCEL_USAGE = `Usage: flotilla cancel ID [--reason R] [--no-cascade]

Cancels the task and every task under it that has not finished (flotilla tree ID shows
them): pending ones at once, running ones when their workers stop.

  --reason R      why (recorded in the events of the task and of those under it)
  --no-cascade    cancel only this task, not the tasks under it
`;

export const RETRY_USAGE = 'Usage: flotilla retry ID\n\nRequeues a failed task with a fresh attempt budget.\n';

function printTask(task: TaskView, json: boolean): void {
  if (json) printJson(task);
  else process.stdout.write(taskBlock(task));
}

export function parseInput(raw: string | undefined): Json | undefined {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as Json;
  } catch (err) {
    throw new UsageError(`--input is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function submitCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    command: 'submit',
    usage: SUBMIT_USAGE,
    removed: REMOVED_SUBMIT_FLAGS,
    options: {
      agent: { type: 'string' },
      capability: { type: 'string', multiple: true },
      capabilities: { type: 'string', multiple: true },
      input: { type: 'string' },
      type: { type: 'string' },
      priority: { type: 'string' },
      deadline: { type: 'string' },
      sla: { type: 'string' },
      timeout: { type: 'string' },
      'max-attempts': { type: 'string' },
      delay: { type: 'string' },
      'run-at': { type: 'string' },
      'idempotency-key': { type: 'string' },
      'concurrency-key': { type: 'string' },
      correlation: { type: 'string', multiple: true },
      site: { type: 'string' },
      replica: { type: 'string' },
      traceparent: { type: 'string' },
      parent: { type: 'string' },
      'allow-tools': { type: 'string', multiple: true },
      'deny-tools': { type: 'string', multiple: true },
      'allow-degraded': { type: 'boolean' },
      notify: { type: 'string' },
      'cache-key': { type: 'string' },
      'cache-ttl': { type: 'string' },
      'rate-key': { type: 'string' },
      tokens: { type: 'string' },
      wait: { type: 'boolean' },
      'wait-timeout': { type: 'string' },
      ...DEPENDENCY_OPTIONS,
    },
  });
  if (cmd === null) return;
  const v = cmd.values;
  const usage = { command: 'submit', usage: SUBMIT_USAGE };
  const agent = stringFlag(v.agent);
  const capabilities = [...listFlag(v.capability), ...listFlag(v.capabilities)];
  if (agent === undefined && capabilities.length === 0) throw usageError('one of --agent or --capability is required', usage);
  if (agent !== undefined && capabilities.length > 0) throw new UsageError('--agent and --capability cannot be combined');
  const input = parseInput(stringFlag(v.input));
  const priority = priorityFlag(v.priority);
  const deadlineFlag = stringFlag(v.deadline);
  const deadline = deadlineFlag === undefined ? undefined : isoFlag(deadlineFlag, '--deadline');
  const slaMs = durationFlag(v.sla, '--sla', { min: TASK.slaMs.minimum, max: TASK.slaMs.maximum });
  if (deadline !== undefined && slaMs !== undefined) throw new UsageError('--deadline and --sla cannot be combined');
  const timeoutMs = durationFlag(v.timeout, '--timeout', { min: TASK.timeoutMs.minimum, max: TASK.timeoutMs.maximum });
  const maxAttempts = intFlag(v['max-attempts'], '--max-attempts', TASK.maxAttempts.minimum, TASK.maxAttempts.maximum);
  const delayMs = durationFlag(v.delay, '--delay', { min: TASK.delayMs.minimum, max: TASK.delayMs.maximum });
  const runAtFlag = stringFlag(v['run-at']);
  if (delayMs !== undefined && runAtFlag !== undefined) throw new UsageError('--delay and --run-at cannot be combined');
  const runAt = runAtFlag === undefined ? undefined : isoFlag(runAtFlag, '--run-at');
  const correlation = pairsFlag(v.correlation, '--correlation');
  const waitTimeoutMs = durationFlag(v['wait-timeout'], '--wait-timeout', { min: 1 });
  const wait = v.wait === true || waitTimeoutMs !== undefined;
  const tools = {
    ...(v['allow-tools'] !== undefined ? { allow: [...new Set(listFlag(v['allow-tools']))] } : {}),
    ...(v['deny-tools'] !== undefined ? { deny: [...new Set(listFlag(v['deny-tools']))] } : {}),
  };
  const text = (flag: string, field: keyof TaskSpec) => {
    const value = stringFlag(v[flag]);
    return value === undefined ? {} : { [field]: value };
  };
  const spec: TaskSpec = {
    ...(agent !== undefined ? { agent } : { capabilities }),
    ...(input !== undefined ? { input } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(deadline !== undefined ? { deadline } : {}),
    ...(slaMs !== undefined ? { slaMs } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
    ...(delayMs !== undefined ? { delayMs } : {}),
    ...(runAt !== undefined ? { runAt } : {}),
    ...(Object.keys(correlation).length > 0 ? { correlation } : {}),
    ...text('type', 'type'),
    ...text('idempotency-key', 'idempotencyKey'),
    ...text('concurrency-key', 'concurrencyKey'),
    ...text('site', 'site'),
    ...text('replica', 'replica'),
    ...text('traceparent', 'traceparent'),
    ...text('parent', 'parentId'),
    ...(Object.keys(tools).length > 0 ? { tools } : {}),
    ...(v['allow-degraded'] === true ? { allowDegraded: true } : {}),
    ...dependencyFields(v),
    ...(stringFlag(v.notify) === undefined ? {} : { notify: { url: stringFlag(v.notify)! } }),
    ...text('cache-key', 'cacheKey'),
    ...cacheTtl(v['cache-ttl']),
    ...text('rate-key', 'rateKey'),
    ...(v.tokens === undefined ? {} : { estimatedTokens: intFlag(v.tokens, '--tokens', 0, TASK.estimatedTokens.maximum)! }),
  };
  const client = cmd.client();
  const task = await client.tasks.submit(spec);
  if (!wait) {
    printTask(task, cmd.json);
    if (task.thenTaskId !== undefined && !cmd.json) process.stdout.write(`then: ${task.thenTaskId}\n`);
    return;
  }
  if (!cmd.json) process.stderr.write(`submitted ${task.id}, waiting…\n`);
  const final = await waitWithProgress(client, task.id, { timeoutMs: waitTimeoutMs, progress: !cmd.json });
  printTask(final, cmd.json);
  if (!TERMINAL_TASK_STATUSES.includes(final.status)) {
    const after = waitTimeoutMs === undefined ? '' : ` after --wait-timeout ${formatDuration(waitTimeoutMs)}`;
    process.stderr.write(`flotilla: task ${final.id} is still ${final.status}${after}; it goes on (flotilla get ${final.id})\n`);
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
  const cmd = parseCommand(argv, { command: 'get', usage: GET_USAGE, positionals: ['ID'] });
  if (cmd === null) return;
  printTask(await cmd.client().tasks.get(cmd.positionals[0]!), cmd.json);
}

export async function lsCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    command: 'ls',
    usage: LS_USAGE,
    options: { status: { type: 'string', multiple: true }, agent: { type: 'string' }, sla: { type: 'string' }, limit: { type: 'string' } },
  });
  if (cmd === null) return;
  const statuses = stringsFlag(cmd.values.status).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  for (const s of statuses) {
    if (!(TASK_STATUSES as readonly string[]).includes(s)) throw new UsageError(`--status: unknown status "${s}" (one of ${TASK_STATUSES.join(', ')})`);
  }
  const limit = intFlag(cmd.values.limit, '--limit', 1) ?? 50;
  const agent = stringFlag(cmd.values.agent);
  const sla = stringFlag(cmd.values.sla);
  if (sla !== undefined && sla !== 'at_risk' && sla !== 'violated') throw new UsageError(`--sla must be at_risk or violated, got "${sla}"`);
  const tasks: TaskView[] = [];
  const list = cmd.client().tasks.list({
    limit: Math.min(limit, 500),
    ...(statuses.length > 0 ? { status: statuses as TaskStatus[] } : {}),
    ...(agent !== undefined ? { agent } : {}),
    ...(sla !== undefined ? { sla } : {}),
  });
  for await (const task of list) {
    tasks.push(task);
    if (tasks.length >= limit) break;
  }
  if (cmd.json) printJson(tasks);
  else process.stdout.write(tasks.length === 0 ? 'no tasks\n' : taskTable(tasks));
}

export async function cancelCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'cancel', usage: CANCEL_USAGE, positionals: ['ID'], options: { reason: { type: 'string' }, 'no-cascade': { type: 'boolean' } } });
  if (cmd === null) return;
  const reason = stringFlag(cmd.values.reason);
  const options = { ...(reason !== undefined ? { reason } : {}), ...(cmd.values['no-cascade'] === true ? { cascade: false } : {}) };
  printTask(await cmd.client().tasks.cancel(cmd.positionals[0]!, options), cmd.json);
}

export async function retryCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'retry', usage: RETRY_USAGE, positionals: ['ID'] });
  if (cmd === null) return;
  printTask(await cmd.client().tasks.retry(cmd.positionals[0]!), cmd.json);
}

/** `--cache-ttl D` as cacheTtlMs (the schema's bounds). */
function cacheTtl(value: unknown): Pick<TaskSpec, 'cacheTtlMs'> {
  const ms = durationFlag(value, '--cache-ttl', { min: TASK.cacheTtlMs.minimum, max: TASK.cacheTtlMs.maximum });
  return ms === undefined ? {} : { cacheTtlMs: ms };
}
