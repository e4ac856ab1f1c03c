// The HTTP worker protocol (docs/protocol.md). Any language with an HTTP client can be a worker.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Engine } from '../../engine/engine.ts';
import type { HealthReport } from '../../engine/worker-service.ts';
import {
  assignmentAskSchema, assignmentCompleteSchema, assignmentFailSchema, assignmentWaitSchema, assignmentHeartbeatSchema, assignmentParams,
  assignmentProgressSchema, assignmentReplicaSchema, leaseSchema, MAX_BATCH_ITEMS, registerReplicaSchema, replicaHeartbeatSchema, replicaParams, type BatchOp,
} from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { principalOf } from '../auth.ts';
import { clientConnection } from '../connection.ts';
import { heartbeatInterval, PROTOCOL_VERSION } from '../protocol.ts';
import { applyReport, type ReportFields } from '../reports.ts';
import { issuedTokenView, replicaView } from '../views.ts';

export function workerRoutes(app: FastifyInstance, engine: Engine): void {
  const { leaseMs, replicaTtlMs } = engine.ctx.config;
  const heartbeatIntervalMs = heartbeatInterval(leaseMs, replicaTtlMs);
  // The largest request body: a worker checks a result against it before sending (protocol.md §5).
  const maxMessageBytes = engine.ctx.config.bodyLimitBytes;
  // The register answer also says how many reports one batch may carry (`maxBatchItems`: report-batch.ts).

  app.post<{ Body: { agent: string; replicaId?: string; site?: string; maxConcurrency?: number } }>('/workers/register', {
    schema: { summary: 'Register a replica (or re-register a known replica id after a reconnect)', tags: ['workers'], body: registerReplicaSchema, response: answers({ 201: 'WorkerRegistration' }) },
  }, async (request, reply) => {
    const { replica } = await engine.workers.register(principalOf(request), request.body);
    return reply.code(201).send({ protocolVersion: PROTOCOL_VERSION, replica: replicaView(replica), leaseMs, replicaTtlMs, heartbeatIntervalMs, maxMessageBytes, maxBatchItems: MAX_BATCH_ITEMS });
  });

  app.post<{ Params: { replicaId: string }; Body: { max?: number; waitMs?: number } | undefined }>('/workers/:replicaId/lease', {
    schema: { summary: 'Long-poll for up to `max` tasks (waits up to `waitMs`)', tags: ['workers'], params: replicaParams, body: { ...leaseSchema, type: ['object', 'null'] }, response: answers({ 200: 'LeasedTasks' }) },
  }, async (request, reply) => {
    const connection = clientConnection(reply);
    const tasks = await engine.workers.lease(principalOf(request), {
      replicaId: request.params.replicaId,
      max: request.body?.max ?? 1,
      waitMs: request.body?.waitMs ?? 30_000,
      signal: connection.signal,
      isConnected: connection.isConnected,
    });
    return { assignments: tasks };
  });

  app.post<{ Params: { replicaId: string }; Body: HealthReport | null | undefined }>('/workers/:replicaId/heartbeat', {
    schema: { summary: 'Replica liveness (when it holds no open lease request), optionally with its health', tags: ['workers'], params: replicaParams, body: replicaHeartbeatSchema, response: answers({ 200: 'ReplicaHeartbeat' }) },
  }, async (request) => ({ replica: replicaView(await engine.workers.heartbeatReplica(principalOf(request), request.params.replicaId, request.body ?? null)) }));

  app.post<{ Params: { replicaId: string } }>('/workers/:replicaId/deregister', {
    schema: {
      summary: 'Leave: the replica is gone and its live attempts are retried elsewhere', tags: ['workers'], params: replicaParams,
      response: answers({}), documentedResponses: { 204: { description: 'Deregistered' } },
    },
  }, async (request, reply) => {
    await engine.workers.deregister(principalOf(request), request.params.replicaId);
    return reply.code(204).send();
  });

  // The reports: each route runs applyReport, as each item of a report batch does (report-batch.ts).
  const report = (op: BatchOp) => async (request: FastifyRequest<{ Params: { assignmentId: string }; Body: { replicaId: string } & ReportFields }>) => {
    const { replicaId, ...fields } = request.body;
    return applyReport(engine, principalOf(request), op, request.params.assignmentId, replicaId, fields);
  };
  const reportRoute = (op: BatchOp, summary: string, body: object, answer: 'Ok' | 'LeaseRenewal') =>
    app.post(`/assignments/:assignmentId/${op}`, { schema: { summary, tags: ['workers'], params: assignmentParams, body, response: answers({ 200: answer }) } }, report(op));

  reportRoute('start', 'The handler started (dispatched → running; the timeout counts from here)', assignmentReplicaSchema, 'Ok');
  reportRoute('heartbeat', 'Renew the lease (optionally with progress); says whether cancellation was requested', assignmentHeartbeatSchema, 'LeaseRenewal');
  reportRoute('progress', 'Report progress 0..100 with a message (also renews the lease)', assignmentProgressSchema, 'LeaseRenewal');
  reportRoute('complete', 'Complete the attempt with a JSON result (409 if the assignment is no longer current)', assignmentCompleteSchema, 'Ok');
  reportRoute('fail', 'Fail the attempt; retried with backoff unless retryable is false or attempts are used up', assignmentFailSchema, 'Ok');

  app.post<{ Params: { assignmentId: string }; Body: { replicaId: string } }>('/assignments/:assignmentId/token', {
    schema: { summary: "A scoped token for the attempt's own task tree: submit children and read the tree with it", tags: ['workers'], params: assignmentParams, body: assignmentReplicaSchema, response: answers({ 201: 'IssuedToken' }) },
  }, async (request, reply) => reply.code(201).send(issuedTokenView(await engine.workers.assignmentToken(principalOf(request), { assignmentId: request.params.assignmentId, replicaId: request.body.replicaId }))));

  reportRoute('cancelled', 'Acknowledge a requested cancellation: the worker stopped; the task ends cancelled', assignmentReplicaSchema, 'Ok');
  reportRoute('wait', 'End the attempt waiting for child tasks: the task is waiting (no slot) until they have all ended, then pending again', assignmentWaitSchema, 'Ok');
  reportRoute('ask', 'End the attempt asking for input: the task is input_required (no slot) until POST /tasks/{id}/input answers', assignmentAskSchema, 'Ok');
}
