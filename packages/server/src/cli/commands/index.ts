// The client commands by name, and their lines of the top-level help.

import { agentsCommand } from './agents.ts';
import { answerCommand } from './answer.ts';
import { auditCommand } from './audit.ts';
import { eventsCommand } from './events.ts';
import { keysCommand } from './keys.ts';
import { reportCommand } from './report.ts';
import { cancelCommand, getCommand, lsCommand, retryCommand, submitCommand } from './tasks.ts';
import { workflowCommand } from './workflow.ts';
import { assignCommand, failCommand, treeCommand } from './trees.ts';
import { workerCommand } from './worker.ts';
import { webhooksCommand } from './webhooks.ts';
import { schedulesCommand } from './schedules.ts';
import { rateLimitsCommand, usageCommand } from './flow.ts';

export { describeClientError } from './errors.ts';

export const CLIENT_COMMANDS: Record<string, (argv: string[]) => Promise<void>> = {
  submit: submitCommand,
  get: getCommand,
  ls: lsCommand,
  cancel: cancelCommand,
  retry: retryCommand,
  tree: treeCommand,
  assign: assignCommand,
  fail: failCommand,
  answer: answerCommand,
  agents: agentsCommand,
  events: eventsCommand,
  worker: workerCommand,
  keys: keysCommand,
  audit: auditCommand,
  report: reportCommand,
  workflow: workflowCommand,
  webhooks: webhooksCommand,
  schedules: schedulesCommand,
  'rate-limits': rateLimitsCommand,
  usage: usageCommand,
};

export const CLIENT_HELP = `Client commands (talk to a running server; each takes --help):
  flotilla submit (--agent X | --capability C ...) [--input JSON] [--priority N|P0..P3]
                  [--deadline ISO | --sla D] [--type T] [--timeout D] [--max-attempts N] [--delay D | --run-at ISO]
                  [--idempotency-key K] [--concurrency-key K] [--correlation K=V ...]
                  [--site S] [--replica ID] [--wait [--wait-timeout D]]
                  [--depends-on ID,... [--on-dependency-failure fail|run] [--input-from JSON]]
                  [--then-agent X [--then-input JSON]]
  flotilla workflow submit FILE.json   tasks naming each other by ref, created all or none
  flotilla get ID
  flotilla ls [--status S ...] [--agent X] [--sla at_risk|violated] [--limit N]
  flotilla cancel ID [--reason R] [--no-cascade]   and the unfinished tasks under it
  flotilla retry ID
  flotilla tree ID [--subtree] [--limit N]   the tree ID belongs to, drawn
  flotilla assign ID [--agent X | --replica R]   dispatch a pending task now
  flotilla fail ID --reason R   fail a task for good (the dead-letter list)
  flotilla answer ID --input JSON   answer a task that asks for input (input_required)
  flotilla agents [ls] | agents show NAME | agents delete NAME
  flotilla agents pause NAME | agents resume NAME | agents drain NAME [--replica ID]
                  | agents undrain NAME --replica ID
  flotilla agents create NAME | agents update NAME  [--description D] [--capabilities a,b]
                  [--max-concurrency N] [--max-attempts N] [--timeout D] [--level N]
                  [--tool-domains a,b] [--concurrency-limit K=N ...] [--retry-base-delay D]
                  [--retry-max-delay D] [--runtime R] [--a2a-url URL | --a2a-card-url URL]
  flotilla events [--follow] [--task ID] [--after SEQ]
  flotilla worker MODULE --agent X [--concurrency N]   run a handler module as a worker
  flotilla keys create --role R --name N [--agent X ...] [--expires-in D | --expires-at ISO]
  flotilla keys [ls] [--all] | keys show ID | keys revoke ID
  flotilla keys bootstrap [--database URL]   a new admin key, written into the database
                  directly (no server or token needed); prints its token once
  flotilla audit [--principal ID] [--action A] [--outcome O] [--since T] [--until T] [--limit N]
  flotilla report [--since T]   per agent: assigned, completed, failed, in flight, durations,
                  SLAs met and violated, reliability (default: the last 24h)
  flotilla webhooks create --endpoint URL --events E,... [--agent X ...] [--root ID]   prints its secret once
  flotilla webhooks [ls] | webhooks show ID | webhooks rm ID | webhooks rotate-secret ID
  flotilla webhooks deliveries ID [--status failed|pending] | webhooks replay ID [--delivery DID]
  flotilla schedules [ls] | schedules show NAME | schedules pause NAME | schedules resume NAME
                  | schedules rm NAME
  flotilla schedules create NAME (--cron EXPR [--timezone TZ] | --every D) (--agent X | --capability C)
                  [--input JSON] [--priority P] [--overlap skip|allow|cancel_previous]
                  [--catch-up none|one|all] [--catch-up-window D] [--paused]
  flotilla rate-limits [ls] | rate-limits set KEY [--rpm N] [--tpm N] | rate-limits rm KEY
  flotilla usage [--by agent|root|day] [--since T] [--until T]   reported tokens and cost
  (submit also takes --rate-key K [--tokens N]: dispatch under a provider rate limit)

  Durations (D) take a unit: 250ms, 30s, 5m, 2h, 1d.
  Common flags: --url URL (repeatable or comma-separated; FLOTILLA_URL, default
  http://127.0.0.1:8080), --token T (FLOTILLA_TOKEN), --json.
  Exit codes: 0 ok, 1 server error or waited task failed/cancelled, 2 usage, 3 unreachable.
`;
