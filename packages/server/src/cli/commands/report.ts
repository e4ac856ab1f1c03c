// `flotilla report`: the delegation report (GET /reports/delegation), one row per agent.

import type { DelegationReport } from '@flotilla/sdk';
import { formatDuration, parseCommand, stringFlag } from './args.ts';
import { timeFlag } from './audit.ts';
import { printJson, table } from './output.ts';

export const REPORT_USAGE = `Usage: flotilla report [--since T]

Per agent, from T to now: attempts assigned, completed, failed and in flight, the median
and p95 duration of completed attempts (dispatch to completion), SLAs met and violated, and
reliability (completed / (completed + failed)), and the tokens and cost its attempts
reported (docs/usage.md).

  --since T       the window's start: ISO 8601, or a duration back from now (1h, 7d);
                  default 24h
`;

const ms = (v: number | null) => (v === null ? null : formatDuration(v));

function reportTable(report: DelegationReport): string {
  const head = `since ${report.since} until ${report.until}\n`;
  if (report.agents.length === 0) return `${head}no agents\n`;
  return head + table(
    ['AGENT', 'ASSIGNED', 'COMPLETED', 'FAILED', 'IN FLIGHT', 'MEDIAN', 'P95', 'SLA MET', 'SLA VIOLATED', 'RELIABILITY', 'TOKENS', 'COST USD'],
    report.agents.map((a) => [
      a.agent, a.assigned, a.completed, a.failed, a.inFlight, ms(a.durationMs.median), ms(a.durationMs.p95),
      a.sla.met, a.sla.violated, a.reliability === null ? null : `${(a.reliability * 100).toFixed(1)}%`,
      // Servers before usage (issue 16) send none.
      a.usage === undefined ? null : a.usage.inputTokens + a.usage.outputTokens, a.usage === undefined ? null : a.usage.costUsd.toFixed(6),
    ]),
  );
}

export async function reportCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'report', usage: REPORT_USAGE, options: { since: { type: 'string' } } });
  if (cmd === null) return;
  const since = timeFlag(stringFlag(cmd.values.since), '--since');
  const report = await cmd.client().reports.delegation(since === undefined ? {} : { since });
  if (cmd.json) printJson(report);
  else process.stdout.write(reportTable(report));
}
