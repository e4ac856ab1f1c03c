// Agent commands: `agents [ls]`, `agents show NAME` (the agent, its replicas and stats), and
// `agents create NAME`, `agents update NAME`, `agents delete NAME`, with a flag for every
// field the agent API takes (schemas.ts, agentSpecSchema).

import type { AgentSpec } from '@flotilla/sdk';
import { agentSpecSchema } from '../../schemas/schemas.ts';
import { durationFlag, intFlag, listFlag, parseCommand, stringFlag, stringsFlag, usageError, type OptionSpec } from './args.ts';
import { UsageError } from './errors.ts';
import { closest } from './suggest.ts';
import { agentBlock, agentTable, block, printJson, replicaTable } from './output.ts';

const AGENT = agentSpecSchema.properties;
const RUNTIMES = AGENT.runtime.enum;

const FIELD_FLAGS = `  --description D          what the agent does
  --capabilities a,b       the tags tasks may be routed by (repeatable or comma-separated)
  --max-concurrency N      tasks per replica at once, when a replica does not say (1..${AGENT.maxConcurrency.maximum}; default 1)
  --max-attempts N         attempts of its tasks (1..${AGENT.maxAttempts.maximum}; default: the server's)
  --timeout D              execution timeout of each attempt, e.g. 90s, 10m (at most 7d;
                           default: the server's)
  --level N                hierarchy level, 1..9 (default 1): its tasks delegate only to agents
                           of a greater level
  --tools t,...            the tools its tasks may use at most: names (web:search) or patterns
                           (web:*, * for all); none when not given (repeatable or comma-separated)
  --max-depth N            the deepest its tasks may be, 1..${AGENT.maxDepth.anyOf[0].maximum}, within the server's
                           maxDepth ("" on update: the server's)
  --max-in-flight N        its cap: live tasks across all of its replicas at most ("" on update: none)
  --tool-domains a,b       tool domains (repeatable or comma-separated)
  --concurrency-limit K=N  at most N live tasks with concurrency key K (repeatable)
  --retry-base-delay D     first retry backoff, e.g. 2s (default: the server's)
  --retry-max-delay D      longest retry backoff, e.g. 5m (default: the server's)
  --runtime R              ${RUNTIMES.join(', ')} (default pull; process is not implemented yet)
  --a2a-url URL            an a2a agent's base URL (its card at URL/.well-known/agent-card.json)
  --a2a-card-url URL       an a2a agent's card URL (instead of --a2a-url); headers (secrets):
                           the API or the config file (docs/a2a.md)
  --a2a-skill on|off       publish it as a skill of Flotilla's A2A agent card (docs/a2a.md), or not
  --a2a-example TEXT       an example prompt of its skill (repeatable); with --a2a-input-modes and
                           --a2a-output-modes a,b (media types) these publish it too, and replace
                           the skill it had`;

export const AGENTS_USAGE = `Usage:
  flotilla agents [ls]                   list the registered agents
  flotilla agents show NAME              one agent with its replicas and stats
  flotilla agents create NAME [fields]   register an agent
  flotilla agents update NAME [fields]   change the fields given, keep the rest
  flotilla agents delete NAME            delete an agent (refused while it has unfinished tasks)
  flotilla agents pause NAME             dispatch nothing new to it (its tasks wait) until resumed
  flotilla agents resume NAME            take a paused agent back
  flotilla agents drain NAME [--replica ID]   its live replicas (or one) finish their work and take no more
  flotilla agents undrain NAME --replica ID   a draining replica takes work again

Fields (create and update):
${FIELD_FLAGS}

update replaces a list or map it is given (--capabilities "" clears the capabilities,
--tools "" the tools, --concurrency-limit "" the limits); the retry delays are changed one by one.
`;

const SUBCOMMANDS = ['ls', 'list', 'show', 'get', 'create', 'update', 'delete', 'pause', 'resume', 'drain', 'undrain'];

export async function agentsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv[0] !== undefined && !argv[0].startsWith('-') ? argv : ['ls', ...argv];
  switch (sub) {
    case 'ls':
    case 'list':
      return listAgents(rest);
    case 'show':
    case 'get':
      return showAgent(rest);
    case 'create':
      return writeAgent('create', rest);
    case 'update':
      return writeAgent('update', rest);
    case 'delete':
      return deleteAgent(rest);
    case 'pause':
    case 'resume':
      return pauseAgent(sub, rest);
    case 'drain':
    case 'undrain':
      return drainAgent(sub, rest);
    default: {
      const near = closest(sub!, SUBCOMMANDS);
      throw usageError(`unknown agents subcommand "${sub}"${near ? `; did you mean \`agents ${near}\`?` : ''}`, {
        command: 'agents', usage: AGENTS_USAGE, synopsis: 'Usage: flotilla agents [ls | show NAME | create NAME | update NAME | delete NAME | pause NAME | resume NAME | drain NAME | undrain NAME] [flags]',
      });
    }
  }
}

async function listAgents(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'agents ls', usage: AGENTS_USAGE, synopsis: 'Usage: flotilla agents [ls]' });
  if (cmd === null) return;
  const agents = await cmd.client().agents.list();
  if (cmd.json) printJson(agents);
  else process.stdout.write(agents.length === 0 ? 'no agents\n' : agentTable(agents));
}

async function pauseAgent(sub: 'pause' | 'resume', argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: `agents ${sub}`, usage: AGENTS_USAGE, synopsis: `Usage: flotilla agents ${sub} NAME`, positionals: ['NAME'] });
  if (cmd === null) return;
  const client = cmd.client().agents;
  const agent = sub === 'pause' ? await client.pause(cmd.positionals[0]!) : await client.resume(cmd.positionals[0]!);
  if (cmd.json) printJson(agent);
  else process.stdout.write(agentBlock(agent));
}

async function drainAgent(sub: 'drain' | 'undrain', argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, {
    command: `agents ${sub}`, usage: AGENTS_USAGE, positionals: ['NAME'], options: { replica: { type: 'string' } },
    synopsis: sub === 'drain' ? 'Usage: flotilla agents drain NAME [--replica ID]' : 'Usage: flotilla agents undrain NAME --replica ID',
  });
  if (cmd === null) return;
  const client = cmd.client().agents;
  const replica = cmd.values.replica as string | undefined;
  if (sub === 'undrain' && replica === undefined) throw new UsageError('agents undrain needs --replica ID: the draining replica to take back');
  const replicas = replica === undefined
    ? await client.drain(cmd.positionals[0]!)
    : [sub === 'drain' ? await client.drainReplica(replica) : await client.resumeReplica(replica)];
  if (cmd.json) printJson(replicas);
  else process.stdout.write(replicas.length === 0 ? 'no live replicas to drain\n' : replicaTable(replicas));
}

async function showAgent(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'agents show', usage: AGENTS_USAGE, synopsis: 'Usage: flotilla agents show NAME', positionals: ['NAME'] });
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

const FIELD_OPTIONS: Record<string, OptionSpec> = {
  description: { type: 'string' },
  capabilities: { type: 'string', multiple: true },
  'max-concurrency': { type: 'string' },
  'max-attempts': { type: 'string' },
  timeout: { type: 'string' },
  level: { type: 'string' },
  'tool-domains': { type: 'string', multiple: true },
  tools: { type: 'string', multiple: true },
  'max-depth': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'concurrency-limit': { type: 'string', multiple: true },
  'retry-base-delay': { type: 'string' },
  'retry-max-delay': { type: 'string' },
  runtime: { type: 'string' },
  'a2a-url': { type: 'string' },
  'a2a-card-url': { type: 'string' },
  'a2a-skill': { type: 'string' },
  'a2a-example': { type: 'string', multiple: true },
  'a2a-input-modes': { type: 'string', multiple: true },
  'a2a-output-modes': { type: 'string', multiple: true },
};

/** `--a2a-skill on|off` and the skill's own flags → `a2aSkill` (undefined: not given). */
function a2aSkillFlag(v: Record<string, unknown>): AgentSpec['a2aSkill'] | undefined {
  const toggle = stringFlag(v['a2a-skill']);
  if (toggle !== undefined && toggle !== 'on' && toggle !== 'off') throw new UsageError(`--a2a-skill takes on or off, got "${toggle}"`);
  const parts = ['a2a-example', 'a2a-input-modes', 'a2a-output-modes'].filter((f) => v[f] !== undefined);
  if (toggle === 'off') {
    if (parts.length > 0) throw new UsageError(`--a2a-skill off cannot be combined with --${parts[0]}`);
    return null;
  }
  if (toggle === undefined && parts.length === 0) return undefined;
  return {
    ...(v['a2a-example'] !== undefined ? { examples: stringsFlag(v['a2a-example']) } : {}),
    ...(v['a2a-input-modes'] !== undefined ? { inputModes: [...new Set(listFlag(v['a2a-input-modes']))] } : {}),
    ...(v['a2a-output-modes'] !== undefined ? { outputModes: [...new Set(listFlag(v['a2a-output-modes']))] } : {}),
  };
}

/** `--concurrency-limit host:vllm-1=3` (repeatable) → { "host:vllm-1": 3 }; `""` alone → {}. */
function limitsFlag(value: unknown): Record<string, number> {
  const limits: Record<string, number> = {};
  const max = AGENT.concurrencyLimits.additionalProperties.maximum;
  for (const entry of stringsFlag(value)) {
    if (entry.trim() === '') continue;
    const at = entry.lastIndexOf('=');
    const key = at > 0 ? entry.slice(0, at).trim() : '';
    if (key === '') throw new UsageError(`--concurrency-limit takes KEY=N, e.g. host:vllm-1=3, got "${entry}"`);
    if (Object.hasOwn(limits, key)) throw new UsageError(`--concurrency-limit: "${key}" is given twice`);
    limits[key] = intFlag(entry.slice(at + 1).trim(), `--concurrency-limit ${key}`, 0, max)!;
  }
  return limits;
}

/** The agent fields the flags give (only those given: an update changes nothing else). */
function agentFields(v: Record<string, unknown>): Omit<AgentSpec, 'name'> {
  const fields: Omit<AgentSpec, 'name'> = {};
  const description = stringFlag(v.description);
  if (description !== undefined) fields.description = description;
  if (v.capabilities !== undefined) fields.capabilities = [...new Set(listFlag(v.capabilities))];
  if (v['tool-domains'] !== undefined) fields.toolDomains = [...new Set(listFlag(v['tool-domains']))];
  if (v.tools !== undefined) fields.tools = [...new Set(listFlag(v.tools))];
  if (v['max-in-flight'] !== undefined) {
    const cap = AGENT.maxInFlight.anyOf[0];
    fields.maxInFlight = stringFlag(v['max-in-flight'])?.trim() === '' ? null : intFlag(v['max-in-flight'], '--max-in-flight', cap.minimum, cap.maximum)!;
  }
  if (v['max-depth'] !== undefined) {
    const depth = AGENT.maxDepth.anyOf[0];
    fields.maxDepth = stringFlag(v['max-depth'])?.trim() === '' ? null : intFlag(v['max-depth'], '--max-depth', depth.minimum, depth.maximum)!;
  }
  const maxConcurrency = intFlag(v['max-concurrency'], '--max-concurrency', AGENT.maxConcurrency.minimum, AGENT.maxConcurrency.maximum);
  if (maxConcurrency !== undefined) fields.maxConcurrency = maxConcurrency;
  const maxAttempts = intFlag(v['max-attempts'], '--max-attempts', AGENT.maxAttempts.minimum, AGENT.maxAttempts.maximum);
  if (maxAttempts !== undefined) fields.maxAttempts = maxAttempts;
  const timeoutMs = durationFlag(v.timeout, '--timeout', { min: AGENT.timeoutMs.minimum, max: AGENT.timeoutMs.maximum });
  if (timeoutMs !== undefined) fields.timeoutMs = timeoutMs;
  const level = intFlag(v.level, '--level', AGENT.level.minimum, AGENT.level.maximum);
  if (level !== undefined) fields.level = level;
  if (v['concurrency-limit'] !== undefined) fields.concurrencyLimits = limitsFlag(v['concurrency-limit']);
  const retry = AGENT.retry.properties;
  const baseDelayMs = durationFlag(v['retry-base-delay'], '--retry-base-delay', { min: retry.baseDelayMs.minimum, max: retry.baseDelayMs.maximum });
  const maxDelayMs = durationFlag(v['retry-max-delay'], '--retry-max-delay', { min: retry.maxDelayMs.minimum, max: retry.maxDelayMs.maximum });
  if (baseDelayMs !== undefined || maxDelayMs !== undefined) {
    fields.retry = { ...(baseDelayMs !== undefined ? { baseDelayMs } : {}), ...(maxDelayMs !== undefined ? { maxDelayMs } : {}) };
  }
  const runtime = stringFlag(v.runtime);
  if (runtime !== undefined) {
    if (!(RUNTIMES as readonly string[]).includes(runtime)) throw new UsageError(`--runtime: unknown runtime "${runtime}" (one of ${RUNTIMES.join(', ')})`);
    fields.runtime = runtime as AgentSpec['runtime'] & string;
  }
  const a2aUrl = stringFlag(v['a2a-url']);
  const a2aCardUrl = stringFlag(v['a2a-card-url']);
  if (a2aUrl !== undefined && a2aCardUrl !== undefined) throw new UsageError('give --a2a-url or --a2a-card-url, not both');
  if (a2aUrl !== undefined) fields.a2a = { url: a2aUrl };
  if (a2aCardUrl !== undefined) fields.a2a = { cardUrl: a2aCardUrl };
  const a2aSkill = a2aSkillFlag(v);
  if (a2aSkill !== undefined) fields.a2aSkill = a2aSkill;
  return fields;
}

async function writeAgent(mode: 'create' | 'update', argv: string[]): Promise<void> {
  const usage = { command: `agents ${mode}`, usage: AGENTS_USAGE, synopsis: `Usage: flotilla agents ${mode} NAME [fields]` };
  const cmd = parseCommand(argv, { ...usage, positionals: ['NAME'], options: FIELD_OPTIONS });
  if (cmd === null) return;
  const name = cmd.positionals[0]!;
  const fields = agentFields(cmd.values);
  const client = cmd.client();
  let agent;
  if (mode === 'create') {
    agent = await client.agents.create({ name, ...fields });
  } else {
    if (Object.keys(fields).length === 0) throw usageError('nothing to update: give at least one field flag', usage);
    agent = await client.agents.update(name, fields);
  }
  if (cmd.json) printJson(agent);
  else process.stdout.write(agentBlock(agent));
}

async function deleteAgent(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'agents delete', usage: AGENTS_USAGE, synopsis: 'Usage: flotilla agents delete NAME', positionals: ['NAME'] });
  if (cmd === null) return;
  const name = cmd.positionals[0]!;
  await cmd.client().agents.delete(name);
  if (cmd.json) printJson({ name, deleted: true });
  else process.stdout.write(`deleted agent ${name}\n`);
}
