// `flotilla events`: the stored events (then exit), or with --follow the live stream until
// Ctrl-C. Filters: --task, --agent, --type; --after SEQ starts after that sequence number.

import type { EventView } from '@flotilla/sdk';
import { intFlag, parseCommand, stringFlag, stringsFlag } from './args.ts';
import { eventLine, printJson, printJsonLine } from './output.ts';

export const EVENTS_USAGE = `Usage: flotilla events [--follow] [--task ID] [--agent NAME] [--type T ...] [--after SEQ]

  -f, --follow    keep streaming new events until Ctrl-C (with --json: one JSON line each)
  --task ID       only this task's events
  --agent NAME    only this agent's events
  --type T        only events of this type, e.g. task.completed (repeatable)
  --after SEQ     only events after this sequence number
`;


export async function eventsCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    command: 'events',
    usage: EVENTS_USAGE,
    options: {
      follow: { type: 'boolean', short: 'f' },
      task: { type: 'string' },
      agent: { type: 'string' },
      type: { type: 'string', multiple: true },
      after: { type: 'string' },
    },
  });
  if (cmd === null) return;
  const client = cmd.client();
  const taskId = stringFlag(cmd.values.task);
  const agent = stringFlag(cmd.values.agent);
  const types = stringsFlag(cmd.values.type);
  const after = intFlag(cmd.values.after, '--after', 0);
  const filters = {
    ...(taskId !== undefined ? { taskId } : {}),
    ...(agent !== undefined ? { agent } : {}),
    ...(types.length > 0 ? { types } : {}),
    ...(after !== undefined ? { after } : {}),
  };

  if (!cmd.values.follow && taskId !== undefined) {
    // One task's events come from a plain call, so the end is exact.
    let events = await client.tasks.events(taskId, after !== undefined ? { after } : {});
    if (agent !== undefined) events = events.filter((e) => e.agent === agent);
    if (types.length > 0) events = events.filter((e) => types.includes(e.type));
    print(events, cmd.json);
    return;
  }

  // The stream reconnects forever on network errors: check the server once first, so an
  // unreachable one fails fast (exit 3) and a bad token answers 401 (exit 1).
  await client.overview();
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  if (cmd.values.follow) {
    for await (const event of client.events.stream({ ...filters, signal: stop.signal })) {
      if (cmd.json) printJsonLine(event);
      else process.stdout.write(eventLine(event));
    }
    return;
  }

  const events: EventView[] = [];
  for await (const event of client.events.list({ ...filters, signal: stop.signal })) events.push(event);
  print(events, cmd.json);
}

function print(events: EventView[], json: boolean): void {
  if (json) printJson(events);
  else process.stdout.write(events.length === 0 ? 'no events\n' : events.map(eventLine).join(''));
}
