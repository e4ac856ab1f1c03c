import type { AgentSpec, TaskSpec, TaskStatus } from '@flotilla/sdk';
import type { FastifyInstance } from 'fastify';
import type { AgentRecord } from '../../core/types.ts';
import type { Engine } from '../../engine/engine.ts';
import {
  agentPatchSchema, agentSpecSchema, assignSpecSchema, delegationQuerySchema, nameParams, queueQuerySchema, replicaParams,
} from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { agentView, replicaView, taskView } from '../views.ts';

export function agentRoutes(app: FastifyInstance, engine: Engine): void {
  const withState = async (agent: AgentRecord) => agentView(agent, (await engine.agents.states([agent])).get(agent.name)!);

  app.get('/agents', { schema: { summary: 'List agents', tags: ['agents'], response: answers({ 200: 'AgentList' }) } }, async (request) => {
    const agents = await engine.agents.list(principalOf(request));
    const states = await engine.agents.states(agents);
    return { items: agents.map((a) => agentView(a, states.get(a.name)!)) };
  });

  app.post<{ Body: AgentSpec }>('/agents', {
    schema: { summary: 'Register an agent', tags: ['agents'], body: agentSpecSchema, response: answers({ 201: 'AgentView' }) },
  }, async (request, reply) => reply.code(201).send(await withState(await engine.agents.create(principalOf(request), request.body))));

  app.get<{ Params: { name: string } }>('/agents/:name', {
    schema: { summary: 'Get an agent', tags: ['agents'], params: nameParams, response: answers({ 200: 'AgentView' }) },
  }, async (request) => withState(await engine.agents.get(principalOf(request), request.params.name)));

  app.patch<{ Params: { name: string }; Body: Omit<AgentSpec, 'name'> }>('/agents/:name', {
    schema: { summary: 'Change an agent', tags: ['agents'], params: nameParams, body: agentPatchSchema, response: answers({ 200: 'AgentView' }) },
  }, async (request) => withState(await engine.agents.update(principalOf(request), request.params.name, request.body)));

  for (const [action, paused, summary] of [
    ['pause', true, 'Pause an agent: nothing new is dispatched to it (its tasks wait, work in flight goes on) until resumed'],
    ['resume', false, 'Resume a paused agent'],
  ] as const) {
    app.post<{ Params: { name: string } }>(`/agents/:name/${action}`, {
      schema: { summary, tags: ['agents'], params: nameParams, response: answers({ 200: 'AgentView' }) },
    }, async (request) => withState(await engine.agents.setPaused(principalOf(request), request.params.name, paused)));
  }

  app.post<{ Params: { name: string } }>('/agents/:name/drain', {
    schema: { summary: "Drain every live replica of an agent: each finishes its work and takes no more (POST /replicas/:id/resume takes one back)", tags: ['agents'], params: nameParams, response: answers({ 200: 'ReplicaList' }) },
  }, async (request) => ({ items: (await engine.agents.setReplicaDraining(principalOf(request), { agent: request.params.name }, true)).map(replicaView) }));

  for (const [action, draining, summary] of [
    ['drain', true, 'Drain one replica: it finishes what it holds and is offered nothing more, also after it reconnects'],
    ['resume', false, 'Resume a draining replica: it takes work again'],
  ] as const) {
    app.post<{ Params: { replicaId: string } }>(`/replicas/:replicaId/${action}`, {
      schema: { summary, tags: ['agents'], params: replicaParams, response: answers({ 200: 'ReplicaView' }) },
    }, async (request) => replicaView((await engine.agents.setReplicaDraining(principalOf(request), { replicaId: request.params.replicaId }, draining))[0]!));
  }

  app.delete<{ Params: { name: string } }>('/agents/:name', {
    schema: {
      summary: 'Delete an agent (refused while it has unfinished tasks)', tags: ['agents'], params: nameParams,
      response: answers({}), documentedResponses: { 204: { description: 'Deleted' } },
    },
  }, async (request, reply) => {
    await engine.agents.delete(principalOf(request), request.params.name);
    return reply.code(204).send();
  });

  app.post<{ Params: { name: string }; Body: Omit<TaskSpec, 'agent' | 'capabilities'> }>('/agents/:name/assign', {
    schema: { summary: 'Manual assignment: a task for this agent, optionally pinned to a replica or preferring a site', tags: ['agents'], params: nameParams, body: assignSpecSchema, response: answers({ 201: 'TaskView', 200: 'TaskView' }) },
  }, async (request, reply) => {
    const { task, created } = await engine.agents.assign(principalOf(request), request.params.name, request.body ?? {});
    return reply.code(created ? 201 : 200).send(taskView(task));
  });

  app.get<{ Params: { name: string }; Querystring: { status?: TaskStatus[]; limit?: number; cursor?: string } }>('/agents/:name/queue', {
    schema: { summary: "An agent's open tasks (default: pending, dispatched and running)", tags: ['agents'], params: nameParams, querystring: queueQuerySchema, response: answers({ 200: 'TaskPage' }) },
  }, async (request) => {
    const page = await engine.agents.queue(principalOf(request), request.params.name, {
      statuses: request.query.status ?? ['pending', 'dispatched', 'running'],
      limit: request.query.limit ?? 100,
      cursor: request.query.cursor ?? null,
    });
    return { items: page.items.map((t) => taskView(t)), nextCursor: page.nextCursor };
  });

  app.get<{ Params: { name: string } }>('/agents/:name/replicas', {
    schema: { summary: "An agent's replicas", tags: ['agents'], params: nameParams, response: answers({ 200: 'ReplicaList' }) },
  }, async (request) => ({ items: (await engine.agents.replicas(principalOf(request), request.params.name)).map(replicaView) }));

  app.get<{ Params: { name: string } }>('/agents/:name/stats', {
    schema: { summary: 'Totals by status, execution time (average, p95) and success rate', tags: ['agents'], params: nameParams, response: answers({ 200: 'AgentStats' }) },
  }, async (request) => engine.agents.stats(principalOf(request), request.params.name));

  app.get<{ Querystring: { since?: string } }>('/reports/delegation', {
    schema: {
      summary: 'Per agent, since a time (default: the last 24 hours): attempts assigned, completed, failed, in flight, median and p95 duration, SLAs met and violated, reliability',
      tags: ['agents'], querystring: delegationQuerySchema, response: answers({ 200: 'DelegationReport' }),
    },
  }, async (request) => engine.agents.delegation(principalOf(request), request.query.since === undefined ? undefined : Date.parse(request.query.since)));

  app.get('/overview', { schema: { summary: 'System-wide counts', tags: ['agents'], response: answers({ 200: 'Overview' }) } }, async (request) => engine.agents.overview(principalOf(request)));
}
