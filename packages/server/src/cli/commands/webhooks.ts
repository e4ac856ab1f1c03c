// Webhook commands (docs/webhooks.md): `webhooks create` (prints the secret once), `webhooks
// [ls]`, `show ID`, `rm ID`, `rotate-secret ID`, `deliveries ID [--status S]` and `replay ID
// [--delivery DID]`. The id `notify` names the tasks' notify deliveries.

import type { Flotilla, WebhookDeliveryStatus, WebhookSecretView, WebhookView } from '@flotilla/sdk';
import { intFlag, listFlag, parseCommand, stringFlag, usageError } from './args.ts';
import { UsageError } from './errors.ts';
import { closest } from './suggest.ts';
import { block, printJson, table, time } from './output.ts';

export const WEBHOOKS_USAGE = `Usage:
  flotilla webhooks create --endpoint URL --events E[,E...] [--agent X ...] [--root ID] [--description D] [--disabled]
                                   subscribe a URL and print its signing secret (shown only this once)
  flotilla webhooks [ls]           list the subscriptions (never their secrets)
  flotilla webhooks show ID        one subscription
  flotilla webhooks rm ID          delete it, with its queued and failed deliveries
  flotilla webhooks rotate-secret ID   a new secret, printed once
  flotilla webhooks deliveries ID [--status failed|pending] [--limit N]
                                   its failed (default) or pending deliveries; ID notify: tasks' notify URLs
  flotilla webhooks replay ID [--delivery DID]   send its failed deliveries again (one, or all)

  --endpoint URL    where the deliveries are POSTed (http or https; --url is the server's)
  --events E        event types (task.completed) or patterns (task.*, *); repeatable or comma-separated
  --agent X         only events of tasks of these agents (repeatable or comma-separated)
  --root ID         only events of the tree under this root task
`;

const SUBCOMMANDS = ['create', 'ls', 'list', 'show', 'get', 'rm', 'delete', 'rotate-secret', 'deliveries', 'replay'];

export async function webhooksCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv[0] !== undefined && !argv[0].startsWith('-') ? argv : ['ls', ...argv];
  switch (sub) {
    case 'create':
      return createWebhook(rest);
    case 'ls':
    case 'list': {
      const cmd = parseCommand(rest, { command: 'webhooks ls', usage: WEBHOOKS_USAGE, synopsis: 'Usage: flotilla webhooks [ls]' });
      if (cmd === null) return;
      const hooks = await cmd.client().webhooks.list();
      if (cmd.json) printJson(hooks);
      else process.stdout.write(hooks.length === 0 ? 'no webhooks\n' : table(
        ['ID', 'URL', 'EVENTS', 'AGENTS', 'ROOT', 'ENABLED', 'CREATED'],
        hooks.map((w) => [w.id, w.url, w.events.join(','), w.agents?.join(','), w.rootId, w.enabled ? 'yes' : 'no', time(w.createdAt)]),
      ));
      return;
    }
    case 'show':
    case 'get':
      return oneWebhook(rest, 'show', (client, id) => client.webhooks.get(id));
    case 'rotate-secret':
      return oneWebhook(rest, 'rotate-secret', (client, id) => client.webhooks.rotateSecret(id));
    case 'rm':
    case 'delete': {
      const cmd = parseCommand(rest, { command: 'webhooks rm', usage: WEBHOOKS_USAGE, synopsis: 'Usage: flotilla webhooks rm ID', positionals: ['ID'] });
      if (cmd === null) return;
      await cmd.client().webhooks.delete(cmd.positionals[0]!);
      if (cmd.json) printJson({ ok: true });
      else process.stdout.write(`deleted webhook ${cmd.positionals[0]!}\n`);
      return;
    }
    case 'deliveries':
      return listDeliveries(rest);
    case 'replay': {
      const cmd = parseCommand(rest, {
        command: 'webhooks replay', usage: WEBHOOKS_USAGE, synopsis: 'Usage: flotilla webhooks replay ID [--delivery DID]', positionals: ['ID'],
        options: { delivery: { type: 'string' } },
      });
      if (cmd === null) return;
      const deliveryId = stringFlag(cmd.values.delivery);
      const result = await cmd.client().webhooks.replay(cmd.positionals[0]!, deliveryId === undefined ? {} : { deliveryId });
      if (cmd.json) printJson(result);
      else process.stdout.write(`${result.replayed} deliver${result.replayed === 1 ? 'y' : 'ies'} pending again\n`);
      return;
    }
    default: {
      const near = closest(sub!, SUBCOMMANDS);
      throw usageError(`unknown webhooks subcommand "${sub}"${near ? `; did you mean \`webhooks ${near}\`?` : ''}`, {
        command: 'webhooks', usage: WEBHOOKS_USAGE, synopsis: 'Usage: flotilla webhooks [ls | show ID | create | rm ID | rotate-secret ID | deliveries ID | replay ID] [flags]',
      });
    }
  }
}

function webhookBlock(w: WebhookView): string {
  return block([
    ['id', w.id], ['url', w.url], ['events', w.events.join(', ')], ['agents', w.agents?.join(', ')], ['root', w.rootId],
    ['enabled', w.enabled ? 'yes' : 'no'], ['description', w.description], ['owner', w.ownerId], ['created', time(w.createdAt)],
    ['updated', time(w.updatedAt)], ['expires', time(w.expiresAt)],
  ]);
}

function printWithSecret(w: WebhookSecretView): void {
  process.stdout.write(webhookBlock(w));
  process.stdout.write(`\nSecret (shown only this once; deliveries are signed with it, see docs/webhooks.md):\n\n  ${w.secret}\n\n`);
}

async function createWebhook(argv: string[]): Promise<void> {
  const usage = { command: 'webhooks create', usage: WEBHOOKS_USAGE, synopsis: 'Usage: flotilla webhooks create --endpoint URL --events E[,E...] [flags]' };
  const cmd = parseCommand(argv, {
    ...usage,
    options: {
      endpoint: { type: 'string' }, events: { type: 'string', multiple: true }, agent: { type: 'string', multiple: true },
      root: { type: 'string' }, description: { type: 'string' }, disabled: { type: 'boolean' },
    },
  });
  if (cmd === null) return;
  const v = cmd.values;
  const url = stringFlag(v.endpoint);
  const events = listFlag(v.events);
  if (url === undefined) throw usageError('--endpoint is required', usage);
  if (events.length === 0) throw usageError('--events is required (e.g. task.completed,task.failed or task.*)', usage);
  const agents = listFlag(v.agent);
  const root = stringFlag(v.root);
  const description = stringFlag(v.description);
  const created = await cmd.client().webhooks.create({
    url, events, ...(agents.length > 0 ? { agents } : {}), ...(root === undefined ? {} : { rootId: root }),
    ...(description === undefined ? {} : { description }), ...(v.disabled === true ? { enabled: false } : {}),
  });
  if (cmd.json) printJson(created);
  else printWithSecret(created);
}

async function oneWebhook(argv: string[], sub: 'show' | 'rotate-secret', call: (client: Flotilla, id: string) => Promise<WebhookView | WebhookSecretView>): Promise<void> {
  const cmd = parseCommand(argv, { command: `webhooks ${sub}`, usage: WEBHOOKS_USAGE, synopsis: `Usage: flotilla webhooks ${sub} ID`, positionals: ['ID'] });
  if (cmd === null) return;
  const w = await call(cmd.client(), cmd.positionals[0]!);
  if (cmd.json) printJson(w);
  else if ('secret' in w) printWithSecret(w);
  else process.stdout.write(webhookBlock(w));
}

async function listDeliveries(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    command: 'webhooks deliveries', usage: WEBHOOKS_USAGE, synopsis: 'Usage: flotilla webhooks deliveries ID [--status failed|pending] [--limit N]',
    positionals: ['ID'], options: { status: { type: 'string' }, limit: { type: 'string' } },
  });
  if (cmd === null) return;
  const status = stringFlag(cmd.values.status) ?? 'failed';
  if (status !== 'failed' && status !== 'pending') throw new UsageError(`--status must be failed or pending, got "${status}"`);
  const limit = intFlag(cmd.values.limit, '--limit', 1, 1000);
  const page = await cmd.client().webhooks.deliveries(cmd.positionals[0]!, { status: status as WebhookDeliveryStatus, ...(limit === undefined ? {} : { limit }) });
  if (cmd.json) printJson(page.items);
  else process.stdout.write(page.items.length === 0 ? `no ${status} deliveries\n` : table(
    ['DELIVERY', 'EVENT', 'TASK', 'ATTEMPTS', 'NEXT', 'LAST ERROR'],
    page.items.map((d) => [d.id, d.eventType, d.taskId, d.attempts, time(d.nextAt), d.lastError]),
  ));
}
