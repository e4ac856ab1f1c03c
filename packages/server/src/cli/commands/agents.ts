// Agent commands: `agents [ls]` and `agents show NAME` (the agent, its replicas and stats).

import { parseCommand } from './args.ts';
import { UsageError } from './errors.ts';
import { agentBlock, agentTable, block, printJson, replicaTable } from './output.ts';

export const AGENTS_USAGE = `Usage:
  flotilla agents [ls]          list the registered agents
  flotilla agents show NAME     one agent with its replicas and stats
`;

export async function agentsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv[0] !== undefined && !argv[0].startsWith('-') ? argv : ['ls', ...argv];
  switch (sub) {
    case 'ls':
    case 'list':
      return listAgents(rest);
    case 'show':
    case 'get':
      return showAgent(rest);
    default:
      throw new UsageError(`unknown agents subcommand "${sub}"\n\n${AGENTS_USAGE}`);
  }
}

async function listAgents(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { usage: AGENTS_USAGE });
  if (cmd === null) return;
  const agents = await cmd.client().agents.list();
  if (cmd.json) printJson(agents);
  else process.stdout.write(agents.length === 0 ? 'no agents\n' : agentTable(agents));
}

async function showAgent(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { usage: AGENTS_USAGE, positionals: ['NAME'] });
  if (cmd === null) return;
  const client = cmd.client();
  const name = cmd.positionals[0]!;
  const [agent, replicas, stats] = await Promise.all([client.agents.get(name), client.agents.replicas(name), client.agents.stats(name)]);
  if (cmd.json) {
    printJson({ agent, replicas, stats });
    return;
  }
  const totals = Object.entries(stats.totals).map(([s, n]) => `${s} ${n}`).join(', ');
  process.stdout.write(agentBlock(agent));
  process.stdout.write(`\n${block([
    ['tasks', totals],
    ['success rate', stats.successRate === null ? null : `${(stats.successRate * 100).toFixed(1)}%`],
    ['avg execution ms', stats.executionMs.average === null ? null : Math.round(stats.executionMs.average)],
    ['p95 execution ms', stats.executionMs.p95 === null ? null : Math.round(stats.executionMs.p95)],
  ])}`);
  process.stdout.write(`\n${replicas.length === 0 ? 'no replicas\n' : replicaTable(replicas)}`);
}
