// `flotilla rate-limits ls|set|rm` (provider rate limits, GET/PUT/DELETE /rate-limits) and
// `flotilla usage --by agent|root|day` (GET /usage), issue 16: docs/flow-control.md, docs/usage.md.

import type { RateLimitView, UsageSummaryView } from '@flotilla/sdk';
import { intFlag, parseCommand, stringFlag, usageError } from './args.ts';
import { UsageError } from './errors.ts';
import { timeFlag } from './audit.ts';
import { printJson, table } from './output.ts';

export const RATE_LIMITS_USAGE = `Usage:
  flotilla rate-limits [ls]                     every key: its limits, the last minute, its pause
  flotilla rate-limits set KEY [--rpm N] [--tpm N]   declare or replace a key's requests and
                                                tokens per minute (fleet-wide; at least one)
  flotilla rate-limits rm KEY                   remove a key's limits (its tasks run unlimited)
`;

export const USAGE_USAGE = `Usage: flotilla usage [--by agent|root|day] [--since T] [--until T]

What workers reported their attempts used (tokens, cost), summed per agent (default), per
tree (root task) or per UTC day, of attempts reported from --since until --until.

  --by G          agent, root or day
  --since T       ISO 8601, or a duration back from now (1h, 7d)
  --until T       ISO 8601, or a duration back from now
`;

function rateTable(items: RateLimitView[]): string {
  if (items.length === 0) return 'no rate limits\n';
  return table(
    ['KEY', 'RPM', 'TPM', 'USED REQ', 'USED TOK', 'LEFT REQ', 'LEFT TOK', 'PAUSED UNTIL', 'SOURCE'],
    items.map((r) => [r.key, r.rpm, r.tpm, r.used.requests, r.used.tokens, r.remaining.requests, r.remaining.tokens, r.pausedUntil, r.source]),
  );
}

export async function rateLimitsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv[0] !== undefined && !argv[0].startsWith('-') ? argv : ['ls', ...argv];
  const spec = { command: `rate-limits ${sub}`, usage: RATE_LIMITS_USAGE };
  switch (sub) {
    case 'ls':
    case 'list': {
      const cmd = parseCommand(rest, spec);
      if (cmd === null) return;
      const items = await cmd.client().rateLimits.list();
      if (cmd.json) printJson(items);
      else process.stdout.write(rateTable(items));
      return;
    }
    case 'set': {
      const cmd = parseCommand(rest, { ...spec, positionals: ['KEY'], options: { rpm: { type: 'string' }, tpm: { type: 'string' } } });
      if (cmd === null) return;
      const rpm = intFlag(cmd.values.rpm, '--rpm', 1, 1_000_000);
      const tpm = intFlag(cmd.values.tpm, '--tpm', 1, 1_000_000_000);
      if (rpm === undefined && tpm === undefined) throw new UsageError('give --rpm, --tpm or both');
      const view = await cmd.client().rateLimits.set(cmd.positionals[0]!, { ...(rpm === undefined ? {} : { rpm }), ...(tpm === undefined ? {} : { tpm }) });
      if (cmd.json) printJson(view);
      else process.stdout.write(rateTable([view]));
      return;
    }
    case 'rm':
    case 'remove':
    case 'delete': {
      const cmd = parseCommand(rest, { ...spec, positionals: ['KEY'] });
      if (cmd === null) return;
      await cmd.client().rateLimits.remove(cmd.positionals[0]!);
      if (cmd.json) printJson({ ok: true });
      else process.stdout.write(`removed the rate limit of ${cmd.positionals[0]}\n`);
      return;
    }
    default:
      throw usageError(`unknown rate-limits subcommand "${sub}"`, { command: 'rate-limits', usage: RATE_LIMITS_USAGE, synopsis: 'Usage: flotilla rate-limits [ls | set KEY | rm KEY]' });
  }
}

function usageTable(summary: UsageSummaryView): string {
  if (summary.groups.length === 0) return 'no usage reported\n';
  return table(
    [summary.groupBy.toUpperCase(), 'ATTEMPTS', 'INPUT TOKENS', 'OUTPUT TOKENS', 'COST USD'],
    summary.groups.map((g) => [g.key, g.attempts, g.inputTokens, g.outputTokens, g.costUsd.toFixed(6)]),
  );
}

export async function usageCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'usage', usage: USAGE_USAGE, options: { by: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' } } });
  if (cmd === null) return;
  const by = stringFlag(cmd.values.by) ?? 'agent';
  if (by !== 'agent' && by !== 'root' && by !== 'day') throw new UsageError(`--by must be agent, root or day, got "${by}"`);
  const since = timeFlag(stringFlag(cmd.values.since), '--since');
  const until = timeFlag(stringFlag(cmd.values.until), '--until');
  const summary = await cmd.client().usage.summary({ groupBy: by, ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }) });
  if (cmd.json) printJson(summary);
  else process.stdout.write(usageTable(summary));
}
