import type { Json, Priority, TaskSpec, TaskStatus, WorkflowSpec } from '@flotilla/sdk';
import { MAX_WORKFLOW_TASKS } from '../../core/dependencies.ts';
import { resolvePriority } from '../../core/sla.ts';
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../engine/engine.ts';
import {
  assignTaskSchema, cancelBodySchema, failTaskSchema, idParams, taskListQuerySchema, taskSpecSchema, treeQuerySchema, waitQuerySchema,
} from '../../schemas/schemas.ts';
import { workflowSpecSchema } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { clientConnection } from '../connection.ts';
import { assignmentView, eventView, submittedTaskView, taskDetailView, taskView, treeNodeView } from '../views.ts';

const MAX_BATCH = 1_000;

export function taskRoutes(app: FastifyInstance, engine: Engine): void {
  app.post<{ Body: TaskSpec }>('/tasks', {
    schema: { summary: 'Submit a task (201; 200 when the idempotency key matched an existing task)', tags: ['tasks'], body: taskSpecSchema, response: answers({ 201: 'TaskView', 200: 'TaskView' }) },
  }, async (request, reply) => {
    const result = await engine.tasks.submit(principalOf(request), request.body);
    return reply.code(result.created ? 201 : 200).send(submittedTaskView(result));
  });

  app.post<{ Body: WorkflowSpec }>('/workflows', {
    schema: {
      summary: `Submit a workflow: up to ${MAX_WORKFLOW_TASKS} tasks naming each other by ref ("dependsOn": ["#fetch"]), validated as a whole and created in one commit, or none`,
      tags: ['tasks'], body: workflowSpecSchema, response: answers({ 201: 'WorkflowView' }),
    },
  }, async (request, reply) => {
    const { results, ids } = await engine.tasks.submitWorkflow(principalOf(request), request.body.tasks);
    return reply.code(201).send({ ids, items: results.map(submittedTaskView) });
  });

  app.post<{ Body: { tasks: TaskSpec[] } }>('/tasks/batch', {
    schema: {
      summary: `Submit up to ${MAX_BATCH} tasks in one call; all are validated before any is written`,
      tags: ['tasks'],
      body: { type: 'object', additionalProperties: false, required: ['tasks'], properties: { tasks: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: taskSpecSchema } } },
      response: answers({ 201: 'SubmittedTasks' }),
    },
  }, async (request, reply) => {
    const results = await engine.tasks.submitMany(principalOf(request), request.body.tasks);
    return reply.code(201).send({ items: results.map((r) => ({ created: r.created, task: submittedTaskView(r) })) });
  });

  app.get<{ Params: { id: string }; Querystring: { waitMs?: number } }>('/tasks/:id', {
    schema: { summary: 'Get a task with its current assignment; ?waitMs= long-polls until it is terminal', tags: ['tasks'], params: idParams, querystring: waitQuerySchema, response: answers({ 200: 'TaskView' }) },
  }, async (request, reply) => {
    const principal = principalOf(request);
    const waitMs = request.query.waitMs ?? 0;
    const got = waitMs > 0
      ? await engine.tasks.wait(principal, request.params.id, waitMs, clientConnection(reply).signal)
      : await engine.tasks.get(principal, request.params.id);
    return taskDetailView(got);
  });

  app.get<{ Querystring: { status?: TaskStatus[]; agent?: string; priority?: Priority; sla?: 'at_risk' | 'violated'; parentId?: string; rootId?: string; depth?: number; limit?: number; cursor?: string } }>('/tasks', {
    schema: { summary: 'List tasks, newest first, with filters (rootId: one whole tree; depth: one level of the trees; sla: at_risk or violated) and cursor pagination', tags: ['tasks'], querystring: taskListQuerySchema, response: answers({ 200: 'TaskPage' }) },
  }, async (request) => {
    const q = request.query;
    const page = await engine.tasks.list(principalOf(request), {
      limit: q.limit ?? 50,
      cursor: q.cursor ?? null,
      ...(q.status ? { statuses: q.status } : {}),
      ...(q.agent !== undefined ? { agent: q.agent } : {}),
      ...(q.priority !== undefined ? { priority: resolvePriority(q.priority) } : {}),
      ...(q.sla !== undefined ? { slaState: q.sla } : {}),
      ...(q.parentId !== undefined ? { parentId: q.parentId } : {}),
      ...(q.rootId !== undefined ? { rootId: q.rootId } : {}),
      ...(q.depth !== undefined ? { depth: q.depth } : {}),
    });
    return { items: page.items.map((t) => taskView(t)), nextCursor: page.nextCursor };
  });

  app.post<{ Params: { id: string }; Body: { reason?: string; cascade?: boolean } | undefined }>('/tasks/:id/cancel', {
    schema: {
      summary: 'Cancel a task and (unless cascade is false) its unfinished descendants: a pending one at once; a live one after its worker acknowledges or the grace period ends',
      tags: ['tasks'], params: idParams, body: cancelBodySchema, response: answers({ 200: 'TaskView' }),
    },
  }, async (request) => {
    const body = request.body ?? {};
    const task = await engine.tasks.cancel(principalOf(request), request.params.id, {
      ...(body.reason !== undefined ? { reason: body.reason } : {}), ...(body.cascade !== undefined ? { cascade: body.cascade } : {}),
    });
    return taskView(task);
  });

  app.post<{ Params: { id: string }; Body: { agent?: string; replica?: string } | undefined }>('/tasks/:id/assign', {
    schema: {
      summary: 'Dispatch a pending task now (whatever its runAt) to an agent, a replica, or any replica that serves it; 409 NOT_ASSIGNABLE with the reason when nothing can take it',
      tags: ['tasks'], params: idParams, body: assignTaskSchema, response: answers({ 200: 'TaskView' }),
    },
  }, async (request) => {
    const body = request.body ?? {};
    const task = await engine.tasks.assign(principalOf(request), request.params.id, {
      ...(body.agent !== undefined ? { agent: body.agent } : {}), ...(body.replica !== undefined ? { replica: body.replica } : {}),
    });
    return taskView(task);
  });

  app.post<{ Params: { id: string }; Body: { reason: string } }>('/tasks/:id/fail', {
    schema: {
      summary: 'Fail a task for good with a reason (error OPERATOR_FAILED): at once, a live attempt too; it joins the dead-letter list (status failed) and can be retried',
      tags: ['tasks'], params: idParams, body: failTaskSchema, response: answers({ 200: 'TaskView' }),
    },
  }, async (request) => taskView(await engine.tasks.fail(principalOf(request), request.params.id, request.body.reason)));

  app.get<{ Params: { id: string }; Querystring: { limit?: number; cursor?: string } }>('/tasks/:id/tree', {
    schema: {
      summary: 'The tree a task belongs to, from its root, in submission order, with each task\'s status, agent, replica, attempt and progress; pages of limit (default 1000, at most 5000)',
      tags: ['tasks'], params: idParams, querystring: treeQuerySchema, response: answers({ 200: 'TaskTree' }),
    },
  }, async (request) => {
    const page = await engine.tasks.tree(principalOf(request), request.params.id, { limit: request.query.limit ?? 1_000, cursor: request.query.cursor ?? null });
    return {
      rootId: page.task.rootId,
      taskId: page.task.id,
      items: page.items.map((n) => treeNodeView(n.task, n.assignment)),
      nextCursor: page.nextCursor,
    };
  });

  app.post<{ Params: { id: string } }>('/tasks/:id/retry', {
    schema: { summary: 'Requeue a failed task with a fresh attempt budget', tags: ['tasks'], params: idParams, response: answers({ 200: 'TaskView' }) },
  }, async (request) => taskView(await engine.tasks.requeue(principalOf(request), request.params.id)));

  app.post<{ Params: { id: string }; Body: { input: unknown } }>('/tasks/:id/input', {
    schema: {
      summary: 'Answer a task in input_required: the answer must match the schema its handler gave; the task is pending again and its next attempt receives the answer',
      tags: ['tasks'], params: idParams,
      body: { type: 'object', additionalProperties: false, required: ['input'], properties: { input: {} } },
      response: answers({ 200: 'TaskView' }),
    },
  }, async (request) => taskView(await engine.tasks.answer(principalOf(request), request.params.id, request.body.input as Json)));

  app.get<{ Params: { id: string }; Querystring: { after?: number; limit?: number } }>('/tasks/:id/events', {
    schema: {
      summary: "A task's events in order", tags: ['tasks'], params: idParams,
      querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
      response: answers({ 200: 'EventList' }),
    },
  }, async (request) => {
    const events = await engine.tasks.events(principalOf(request), request.params.id, request.query.after ?? 0, request.query.limit ?? 1000);
    return { items: events.map(eventView) };
  });

  app.get<{ Params: { id: string } }>('/tasks/:id/assignment', {
    schema: { summary: "A task's current assignment and its attempt history", tags: ['tasks'], params: idParams, response: answers({ 200: 'TaskAssignments' }) },
  }, async (request) => {
    const principal = principalOf(request);
    const { task, assignment } = await engine.tasks.get(principal, request.params.id);
    const attempts = await engine.tasks.assignments(principal, request.params.id);
    return { taskId: task.id, taskStatus: task.status, assignment: assignment ? assignmentView(assignment) : null, attempts: attempts.map(assignmentView) };
  });
}
