// `flotilla audit`: the audit log, newest first, filtered (admin keys only).

import type { AuditEntryView } from '@flotilla/sdk';
import { intFlag, parseCommand, stringFlag } from './args.ts';
import { UsageError } from './errors.ts';
import { durationMs, isoFlag } from './keys.ts';
import { printJson, table, time } from './output.ts';

const OUTCOMES = ['allowed', 'denied', 'failed'] as const;

export const AUDIT_USAGE = `Usage: flotilla audit [--principal ID] [--action A] [--outcome O] [--since T] [--until T] [--limit N]

  --principal ID  only this principal: an API key id, token:<id>, or system
  --action A      only this action, e.g. task.submit, key.manage
  --outcome O     only ${OUTCOMES.join(', ')}
  --since T       only entries at or after T: ISO 8601, or a duration back from now (1h, 30m, 7d)
  --until T       only entries at or before T (same forms)
  --limit N       at most N entries, newest first (default 50)
`;

/** ISO 8601, or a duration back from now (`1h` → an hour ago). */
export function timeFlag(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (/^\d+[smhd]$/.test(value.trim())) return new Date(Date.now() - durationMs(value, flag)).toISOString();
  return isoFlag(value, flag);
}

function auditTable(entries: AuditEntryView[]): string {
  return table(
    ['SEQ', 'TIME', 'OUTCOME', 'STATUS', 'ROLE', 'PRINCIPAL', 'ACTION', 'TARGET'],
    entries.map((e) => [e.seq, time(e.at), e.outcome, e.status, e.role, e.principalName ?? e.principalId, e.action, e.target]),
  );
}

export async function auditCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    command: 'audit',
    usage: AUDIT_USAGE,
    options: {
      principal: { type: 'string' },
      action: { type: 'string' },
      outcome: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  if (cmd === null) return;
  const v = cmd.values;
  const outcome = stringFlag(v.outcome);
  if (outcome !== undefined && !(OUTCOMES as readonly string[]).includes(outcome)) {
    throw new UsageError(`--outcome: unknown outcome "${outcome}" (one of ${OUTCOMES.join(', ')})`);
  }
  const limit = intFlag(v.limit, '--limit', 1) ?? 50;
  const principalId = stringFlag(v.principal);
  const action = stringFlag(v.action);
  const since = timeFlag(stringFlag(v.since), '--since');
  const until = timeFlag(stringFlag(v.until), '--until');
  const entries: AuditEntryView[] = [];
  const list = cmd.client().audit.list({
    limit: Math.min(limit, 1000),
    ...(principalId !== undefined ? { principalId } : {}),
    ...(action !== undefined ? { action } : {}),
    ...(outcome !== undefined ? { outcome: outcome as AuditEntryView['outcome'] } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
  });
  for await (const entry of list) {
    entries.push(entry);
    if (entries.length >= limit) break;
  }
  if (cmd.json) printJson(entries);
  else process.stdout.write(entries.length === 0 ? 'no audit entries\n' : auditTable(entries));
}
