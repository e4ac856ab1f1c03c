// Schedules (issue 16, docs/schedules.md): create, read, change, pause, resume, delete; who
// may do each: http/route-actions.ts. The rules are the engine's (engine/schedule-service.ts).

import type { FastifyInstance } from 'fastify';
import type { SchedulePatch, ScheduleSpec } from '@flotilla/sdk';
import type { Engine } from '../../engine/engine.ts';
import type { ScheduleRecord } from '../../core/schedules.ts';
import { schedulePatchSchema, scheduleParams, scheduleSpecSchema } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { scheduleView } from '../schedule-views.ts';

type ByName = { Params: { name: string } };

export function scheduleRoutes(app: FastifyInstance, engine: Engine): void {
  /** Views with their last firings' outcomes: one read of those tasks for the whole list. */
  const views = async (schedules: ScheduleRecord[]) => {
    const ids = schedules.flatMap((s) => (s.lastTaskId === null ? [] : [s.lastTaskId]));
    const tasks = ids.length === 0 ? [] : await engine.ctx.store.taskGetMany({ ids });
    const status = new Map(tasks.map((t) => [t.id, t.status]));
    return schedules.map((s) => scheduleView(s, (id) => status.get(id)));
  };
  const one = async (s: ScheduleRecord) => (await views([s]))[0]!;

  app.get('/schedules', {
    schema: { summary: 'List schedules, by name', tags: ['schedules'], response: answers({ 200: 'ScheduleList' }) },
  }, async () => ({ items: await views(await engine.schedules.list()) }));

  app.post<{ Body: ScheduleSpec }>('/schedules', {
    schema: { summary: 'Create a schedule: a cron expression or an interval, a task template, overlap and catch-up policies', tags: ['schedules'], body: scheduleSpecSchema, response: answers({ 201: 'ScheduleView' }) },
  }, async (request, reply) => reply.code(201).send(await one(await engine.schedules.create(principalOf(request), request.body))));

  app.get<ByName>('/schedules/:name', {
    schema: { summary: 'One schedule with its next fire times and last firing', tags: ['schedules'], params: scheduleParams, response: answers({ 200: 'ScheduleView' }) },
  }, async (request) => one(await engine.schedules.get(request.params.name)));

  app.patch<ByName & { Body: SchedulePatch }>('/schedules/:name', {
    schema: { summary: 'Change a schedule (the caller becomes its owner); its next fire time is computed again from now', tags: ['schedules'], params: scheduleParams, body: schedulePatchSchema, response: answers({ 200: 'ScheduleView' }) },
  }, async (request) => one(await engine.schedules.update(principalOf(request), request.params.name, request.body)));

  app.delete<ByName>('/schedules/:name', {
    schema: { summary: 'Delete a schedule (the tasks it submitted stay)', tags: ['schedules'], params: scheduleParams, response: answers({ 200: 'Ok' }) },
  }, async (request) => {
    await engine.schedules.delete(request.params.name);
    return { ok: true };
  });

  app.post<ByName>('/schedules/:name/pause', {
    schema: { summary: 'Pause a schedule: no firing until resumed, and none caught up for the paused time', tags: ['schedules'], params: scheduleParams, response: answers({ 200: 'ScheduleView' }) },
  }, async (request) => one(await engine.schedules.pause(request.params.name)));

  app.post<ByName>('/schedules/:name/resume', {
    schema: { summary: 'Resume a paused schedule from its next fire time after now', tags: ['schedules'], params: scheduleParams, response: answers({ 200: 'ScheduleView' }) },
  }, async (request) => one(await engine.schedules.resume(principalOf(request), request.params.name)));
}
