// The pure rules of tool domains (core/tool-domains.ts) and where they meet routing, the
// waiting reasons and the agent states: declarations refused, the gateway's rules in order,
// the agents gated by a domain down, and a task that allows running degraded passing them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  downDomainsOf, gatedAgents, gatewayCallRefusal, listableTools, splitGatewayToolName, toolDomainProblem, transportOf,
} from '../src/core/tool-domains.ts';
import { agentState, waitingReason, type WaitingInput } from '../src/core/agent-state.ts';
import { assignCandidates, planRoutes, type AgentRoute, type ReplicaCandidate } from '../src/core/routing.ts';
import { normalize } from '../src/core/tools.ts';
import type { TaskHead } from '../src/core/types.ts';

describe('tool domain declarations', () => {
  it('take either a URL (http or https) or a command, and never the reserved name', () => {
    assert.equal(toolDomainProblem({ name: 'web', url: 'https://mcp.example.test/mcp', headers: { a: { env: 'FLOTILLA_SECRET_X' } } }), null);
    assert.equal(toolDomainProblem({ name: 'fs_2', command: 'mcp-server-filesystem', args: ['/tmp'], env: { A: 'b' } }), null);
    assert.match(toolDomainProblem({ name: 'both', url: 'http://x/mcp', command: 'x' })!, /either "url".*or "command"/);
    assert.match(toolDomainProblem({ name: 'neither' })!, /either/);
    assert.match(toolDomainProblem({ name: 'flotilla', command: 'x' })!, /Flotilla's own/);
    assert.match(toolDomainProblem({ name: 'a:b', command: 'x' })!, /not a tool domain name/);
    assert.match(toolDomainProblem({ name: 'web', url: 'file:///etc/passwd' })!, /http or https/);
    assert.match(toolDomainProblem({ name: 'web', url: 'not a url' })!, /not a URL/);
    assert.match(toolDomainProblem({ name: 'web', url: 'http://x/mcp', env: { A: 'b' } })!, /stdio/);
    assert.match(toolDomainProblem({ name: 'web', command: 'x', headers: { A: 'b' } })!, /streamable HTTP/);
    assert.deepEqual([transportOf({ name: 'a', url: 'http://x' }), transportOf({ name: 'b', command: 'x' })], ['streamable-http', 'stdio']);
  });
});

describe('the gateway\'s rules', () => {
  const set = normalize({ grant: ['web:*', 'memory:read_graph'], except: ['web:delete'] });
  const domains = new Map([['web', 'up' as const], ['memory', 'down' as const], ['fresh', 'unknown' as const]]);
  it('checks the set first, then the domain, then whether it is down', () => {
    assert.equal(gatewayCallRefusal({ name: 'web:search', tools: set, domains }), null);
    assert.equal(gatewayCallRefusal({ name: 'web:delete', tools: set, domains })?.rule, 'not_allowed');
    // Not allowed wins over down: a caller learns nothing of domains it may not use.
    assert.equal(gatewayCallRefusal({ name: 'memory:create_entities', tools: set, domains })?.rule, 'not_allowed');
    assert.equal(gatewayCallRefusal({ name: 'memory:read_graph', tools: set, domains })?.rule, 'domain_down');
    assert.equal(gatewayCallRefusal({ name: 'ghost:x', tools: normalize({ grant: ['*'], except: [] }), domains })?.rule, 'unknown_tool');
    assert.equal(gatewayCallRefusal({ name: 'nodomain', tools: normalize({ grant: ['*'], except: [] }), domains })?.rule, 'unknown_tool');
    // A domain never checked yet is tried (its first call may well work).
    assert.equal(gatewayCallRefusal({ name: 'fresh:x', tools: normalize({ grant: ['fresh:*'], except: [] }), domains }), null);
  });
  it('lists a domain\'s tools the set permits, named <domain>:<tool>', () => {
    assert.deepEqual(listableTools('web', ['search', 'delete', 'fetch'], set), ['web:search', 'web:fetch']);
    assert.deepEqual(listableTools('memory', ['read_graph', 'create_entities'], set), ['memory:read_graph']);
    assert.deepEqual(splitGatewayToolName('web:a:b'), { domain: 'web', tool: 'a:b' });
    assert.equal(splitGatewayToolName(':x'), null);
    assert.equal(splitGatewayToolName('x:'), null);
  });
});

describe('domains down: gating, waiting reasons, agent states', () => {
  const agents = [
    { name: 'researcher', toolDomains: ['web', 'github.com'] },
    { name: 'writer', toolDomains: ['docs'] },
    { name: 'plain', toolDomains: [] },
  ];
  it('gates exactly the agents naming a domain that is down (undeclared names never count)', () => {
    assert.deepEqual(gatedAgents(agents, new Set()), new Map());
    assert.deepEqual(gatedAgents(agents, new Set(['web', 'elsewhere'])), new Map([['researcher', ['web']]]));
    assert.deepEqual(downDomainsOf(['web', 'docs'], new Set(['docs', 'web'])), ['docs', 'web']);
  });

  const route = (name: string, capabilities: string[] = []): AgentRoute & { pausedAt: number | null } => ({ name, capabilities, concurrencyLimits: {}, pausedAt: null });
  const base = (over: Partial<WaitingInput['task']> = {}): WaitingInput => ({
    task: { status: 'pending', runAt: 0, agent: 'researcher', capabilities: [], replica: null, concurrencyKey: null, ...over },
    now: 1, agents: [route('researcher', ['search']), route('writer', ['search'])],
    replicas: [{ id: 'r1', agent: 'researcher', status: 'live', maxConcurrency: 1, inFlight: 0, health: 'healthy' }],
    keyInFlight: 0, serverKeyLimits: {}, gated: new Map([['researcher', ['web']]]),
  });
  it('a task waits for the domain unless it allows running degraded, or another agent can run it', () => {
    assert.equal(waitingReason(base()), 'tool_domain_down');
    assert.equal(waitingReason(base({ allowDegraded: true })), 'queued');
    assert.equal(waitingReason({ ...base(), gated: new Map() }), 'queued');
    // Capability-routed: the writer can run it, so it is not waiting for the domain.
    assert.notEqual(waitingReason(base({ agent: null, capabilities: ['search'] })), 'tool_domain_down');
    assert.equal(waitingReason({ ...base({ agent: null, capabilities: ['search'] }), gated: new Map([['researcher', ['web']], ['writer', ['docs']]]) }), 'tool_domain_down');
  });
  it('an agent with a domain down is degraded while connected, offline without replicas', () => {
    const thresholds = { pendingAgeMs: 60_000, queueDepth: 1_000 };
    const live = { replicas: [{ status: 'live' as const, maxConcurrency: 1, inFlight: 1 }], pending: 5_000, oldestRunAt: 0 };
    assert.equal(agentState(live, 1, thresholds, ['web']), 'degraded');
    assert.equal(agentState(live, 1, thresholds), 'overloaded');
    assert.equal(agentState({ replicas: [], pending: 0, oldestRunAt: null }, 1, thresholds, ['web']), 'offline');
  });

  it('routing passes gated agents\' replicas over for excluded tasks only', () => {
    const task = (id: string): TaskHead => ({
      id, seq: 1, status: 'pending', priority: 5, agent: null, capabilities: ['search'], replica: null, site: null, concurrencyKey: null,
      attempt: 0, maxAttempts: 1, timeoutMs: 1, runAt: 0, assignmentId: null, cancelRequestedAt: null, parentId: null, slaDeadline: null,
    });
    const replica = (id: string, agent: string, inFlight = 0): ReplicaCandidate => ({ id, agent, site: null, maxConcurrency: 4, inFlight, offered: 4, completed: 0, failed: 0, lastAssignedAt: null, health: 'healthy' });
    const routes = new Map<string, AgentRoute>([['researcher', route('researcher', ['search'])], ['writer', route('writer', ['search'])]]);
    // The researcher's replica is the less loaded: without exclusion both tasks go there.
    const replicas = [replica('res', 'researcher'), replica('wri', 'writer', 3)];
    const plan = (excluded?: Map<string, Set<string>>) => planRoutes({ tasks: [task('waits'), task('degraded')], replicas, agents: routes, keyInFlight: new Map(), serverKeyLimits: {}, ...(excluded ? { excluded } : {}) }).map((r) => [r.task.id, r.replicaId]);
    assert.deepEqual(plan(), [['waits', 'res'], ['degraded', 'res']]);
    assert.deepEqual(plan(new Map([['waits', new Set(['researcher'])]])), [['waits', 'wri'], ['degraded', 'res']]);
    assert.deepEqual(planRoutes({ tasks: [task('only')], replicas: [replica('res', 'researcher')], agents: routes, keyInFlight: new Map(), serverKeyLimits: {}, excluded: new Map([['only', new Set(['researcher'])]]) }), []);
  });

  it('an operator\'s assign does not overrule a domain down either, unless the task allows running degraded', () => {
    const t: TaskHead = {
      id: 'x', seq: 1, status: 'pending', priority: 5, agent: 'researcher', capabilities: [], replica: null, site: null, concurrencyKey: null,
      attempt: 0, maxAttempts: 1, timeoutMs: 1, runAt: 0, assignmentId: null, cancelRequestedAt: null, parentId: null, slaDeadline: null,
    };
    const input = {
      task: t, target: { agent: null, replica: null }, agents: new Map([['researcher', route('researcher')]]),
      live: [{ id: 'res', agent: 'researcher', site: null, maxConcurrency: 2, inFlight: 0, completed: 0, failed: 0, lastAssignedAt: null, health: 'healthy' as const }],
      waiting: new Map([['res', 1]]), keyInFlight: new Map(), serverKeyLimits: {}, gated: new Map([['researcher', ['web']]]),
    };
    const refused = assignCandidates(input);
    assert.ok('refusal' in refused);
    assert.equal(refused.refusal.reason, 'tool_domain_down');
    assert.match(refused.refusal.message, /"web"/);
    assert.ok('candidates' in assignCandidates({ ...input, allowDegraded: true }));
  });
});
