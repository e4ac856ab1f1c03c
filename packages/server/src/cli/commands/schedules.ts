// Schedule commands (issue 16, docs/schedules.md): `schedules [ls]`, `show NAME`,
// `create NAME ...`, `pause NAME`, `resume NAME`, `rm NAME`. The server validates (a bad cron
// or time zone is its INVALID_SCHEDULE); this only turns flags into a ScheduleSpec.

import type { Flotilla, ScheduleSpec, ScheduleTaskTemplate, ScheduleView } from '@flotilla/sdk';
import { durationFlag, listFlag, parseCommand, stringFlag, usageError } from './args.ts';
import { UsageError } from './errors.ts';
import { block, printJson, table, time } from './output.ts';
import { closest } from './suggest.ts';
import { parseInput, priorityFlag } from './tasks.ts';

export const SCHEDULES_USAGE = `Usage:
  flotilla schedules [ls]            list the schedules, their next and last firing
  flotilla schedules show NAME       one schedule, with its next 5 fire times
  flotilla schedules create NAME (--cron EXPR [--timezone TZ] | --every D)
                  (--agent X | --capability C ...) [--input JSON] [--type T] [--priority N|P0..P3]
                  [--overlap skip|allow|cancel_previous] [--catch-up none|one|all] [--catch-up-window D]
                  [--paused]
  flotilla schedules pause NAME | schedules resume NAME | schedules rm NAME

  --cron EXPR         5 fields (minute first) or 6 (seconds first), e.g. "0 30 2 * * *"
  --timezone TZ       an IANA time zone for --cron, e.g. Europe/Paris (default UTC)
  --every D           an interval instead, e.g. 30s, 15m (at least 1s)
  --overlap P         while the previous run is not finished: skip (default), allow, cancel_previous
  --catch-up P        fire times missed while no server ran: none (default), one (the latest), all
  --catch-up-window D how far back to catch up (default 1h)
  --paused            create it paused
`;

const SUBCOMMANDS = ['ls', 'list', 'show', 'get', 'create', 'pause', 'resume', 'rm', 'delete'];

export async function schedulesCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv[0] !== undefined && !argv[0].startsWith('-') ? argv : ['ls', ...argv];
  switch (sub) {
    case 'ls':
    case 'list':
      return listSchedules(rest);
    case 'show':
    case 'get':
      return oneSchedule(rest, 'show', (c, name) => c.schedules.get(name));
    case 'pause':
      return oneSchedule(rest, 'pause', (c, name) => c.schedules.pause(name));
    case 'resume':
      return oneSchedule(rest, 'resume', (c, name) => c.schedules.resume(name));
    case 'rm':
    case 'delete':
      return removeSchedule(rest);
    case 'create':
      return createSchedule(rest);
    default: {
      const near = closest(sub!, SUBCOMMANDS);
      throw usageError(`unknown schedules subcommand "${sub}"${near ? `; did you mean \`schedules ${near}\`?` : ''}`, {
        command: 'schedules', usage: SCHEDULES_USAGE, synopsis: 'Usage: flotilla schedules [ls | show NAME | create NAME | pause NAME | resume NAME | rm NAME] [flags]',
      });
    }
  }
}

function lastFire(s: ScheduleView): string | null {
  return s.lastFire === null ? null : `${time(s.lastFire.at)} ${s.lastFire.outcome}${s.lastFire.taskId ? ` (${s.lastFire.taskId})` : ''}`;
}

function scheduleBlock(s: ScheduleView): string {
  return block([
    ['name', s.name],
    ['when', s.cron !== null ? `cron "${s.cron}"${s.timezone ? ` in ${s.timezone}` : ' (UTC)'}` : `every ${s.everyMs} ms`],
    ['task', JSON.stringify(s.task)],
    ['overlap', s.overlap],
    ['catch-up', `${s.catchUp} (window ${s.catchUpWindowMs} ms)`],
    ['status', s.paused ? `paused${s.pausedReason ? ` (${s.pausedReason})` : ''}` : 'active'],
    ['owner', s.ownerId],
    ['source', s.source],
    ['next', s.nextFireTimes.map(time).join(', ')],
    ['last', lastFire(s)],
    ['error', s.lastFire?.error],
  ]);
}

async function listSchedules(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'schedules ls', usage: SCHEDULES_USAGE, synopsis: 'Usage: flotilla schedules [ls]' });
  if (cmd === null) return;
  const items = await cmd.client().schedules.list();
  if (cmd.json) {
    printJson(items);
    return;
  }
  process.stdout.write(items.length === 0 ? 'no schedules\n' : table(
    ['NAME', 'WHEN', 'STATUS', 'NEXT', 'LAST'],
    items.map((s) => [s.name, s.cron ?? `every ${s.everyMs}ms`, s.paused ? 'paused' : 'active', time(s.nextFireTimes[0]), lastFire(s)]),
  ));
}

async function oneSchedule(argv: string[], sub: string, call: (client: Flotilla, name: string) => Promise<ScheduleView>): Promise<void> {
  const cmd = parseCommand(argv, { command: `schedules ${sub}`, usage: SCHEDULES_USAGE, synopsis: `Usage: flotilla schedules ${sub} NAME`, positionals: ['NAME'] });
  if (cmd === null) return;
  const s = await call(cmd.client(), cmd.positionals[0]!);
  if (cmd.json) printJson(s);
  else process.stdout.write(scheduleBlock(s));
}

async function removeSchedule(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'schedules rm', usage: SCHEDULES_USAGE, synopsis: 'Usage: flotilla schedules rm NAME', positionals: ['NAME'] });
  if (cmd === null) return;
  await cmd.client().schedules.delete(cmd.positionals[0]!);
  if (cmd.json) printJson({ ok: true });
  else process.stdout.write(`deleted schedule ${cmd.positionals[0]!}\n`);
}

const OVERLAPS = ['skip', 'allow', 'cancel_previous'] as const;
const CATCH_UPS = ['none', 'one', 'all'] as const;

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

async function createSchedule(argv: string[]): Promise<void> {
  const usage = { command: 'schedules create', usage: SCHEDULES_USAGE, synopsis: 'Usage: flotilla schedules create NAME (--cron EXPR | --every D) (--agent X | --capability C) [flags]' };
  const cmd = parseCommand(argv, {
    ...usage,
    positionals: ['NAME'],
    options: {
      cron: { type: 'string' }, timezone: { type: 'string' }, every: { type: 'string' },
      agent: { type: 'string' }, capability: { type: 'string', multiple: true }, input: { type: 'string' }, type: { type: 'string' }, priority: { type: 'string' },
      overlap: { type: 'string' }, 'catch-up': { type: 'string' }, 'catch-up-window': { type: 'string' }, paused: { type: 'boolean' },
    },
  });
  if (cmd === null) return;
  const v = cmd.values;
  const cron = stringFlag(v.cron);
  const everyMs = durationFlag(v.every, '--every', { min: 1_000 });
  if ((cron === undefined) === (everyMs === undefined)) throw usageError('give one of --cron or --every', usage);
  const agent = stringFlag(v.agent);
  const capabilities = listFlag(v.capability);
  if ((agent === undefined) === (capabilities.length === 0)) throw usageError('give one of --agent or --capability', usage);
  const input = parseInput(stringFlag(v.input));
  const priority = priorityFlag(v.priority);
  const task: ScheduleTaskTemplate = {
    ...(agent !== undefined ? { agent } : { capabilities }),
    ...(input !== undefined ? { input } : {}),
    ...(stringFlag(v.type) !== undefined ? { type: stringFlag(v.type)! } : {}),
    ...(priority !== undefined ? { priority } : {}),
  };
  const overlap = oneOf(stringFlag(v.overlap), OVERLAPS, '--overlap');
  const catchUp = oneOf(stringFlag(v['catch-up']), CATCH_UPS, '--catch-up');
  const catchUpWindowMs = durationFlag(v['catch-up-window'], '--catch-up-window', { min: 0 });
  const timezone = stringFlag(v.timezone);
  const spec: ScheduleSpec = {
    name: cmd.positionals[0]!,
    task,
    ...(cron !== undefined ? { cron } : { everyMs: everyMs! }),
    ...(timezone !== undefined ? { timezone } : {}),
    ...(overlap !== undefined ? { overlap } : {}),
    ...(catchUp !== undefined ? { catchUp } : {}),
    ...(catchUpWindowMs !== undefined ? { catchUpWindowMs } : {}),
    ...(v.paused === true ? { paused: true } : {}),
  };
  const s = await cmd.client().schedules.create(spec);
  if (cmd.json) printJson(s);
  else process.stdout.write(scheduleBlock(s));
}
