// The client commands by name, and their lines of the top-level help.

import { agentsCommand } from './agents.ts';
import { eventsCommand } from './events.ts';
import { cancelCommand, getCommand, lsCommand, retryCommand, submitCommand } from './tasks.ts';
import { workerCommand } from './worker.ts';

export { describeClientError } from './errors.ts';

export const CLIENT_COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  submit: submitCommand,
  get: getCommand,
  ls: lsCommand,
  cancel: cancelCommand,
  retry: retryCommand,
  agents: agentsCommand,
  events: eventsCommand,
  worker: workerCommand,
};

export const CLIENT_HELP = `Client commands (talk to a running server; each takes --help):
  flotilla submit (--agent X | --capability C ...) [--input JSON] [--priority N] [--type T]
                  [--idempotency-key K] [--wait [--timeout-ms N]]
  flotilla get ID
  flotilla ls [--status S ...] [--agent X] [--limit N]
  flotilla cancel ID [--reason R]
  flotilla retry ID
  flotilla agents [ls] | agents show NAME
  flotilla events [--follow] [--task ID] [--after SEQ]
  flotilla worker MODULE --agent X [--concurrency N]   run a handler module as a worker

  Common flags: --url URL (repeatable or comma-separated; FLOTILLA_URL, default
  http://127.0.0.1:8080), --token T (FLOTILLA_TOKEN), --json.
  Exit codes: 0 ok, 1 server error or waited task failed/cancelled, 2 usage, 3 unreachable.
`;
