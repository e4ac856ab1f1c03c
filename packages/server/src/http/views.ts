// Records (internal, epoch-ms times) to wire views (ISO times, camelCase JSON).

import type { AgentView, AssignmentView, EventView, ReplicaView, TaskView } from '@flotilla/sdk';
import type { AgentRecord, AssignmentRecord, EventRecord, ReplicaRecord, TaskRecord } from '../core/types.ts';
import { toIso, toIsoOrNull } from '../engine/time.ts';

export function taskView(t: TaskRecord, assignment?: AssignmentRecord | null): TaskView {
  const view: TaskView = {
    id: t.id,
    type: t.type,
    status: t.status,
    priority: t.priority,
    agent: t.agent,
    capabilities: t.capabilities,
    input: t.input,
    result: t.result,
    error: t.error,
    attempt: t.attempt,
    maxAttempts: t.maxAttempts,
    timeoutMs: t.timeoutMs,
    runAt: toIso(t.runAt),
    createdAt: toIso(t.createdAt),
    updatedAt: toIso(t.updatedAt),
    finishedAt: toIsoOrNull(t.finishedAt),
    cancelRequestedAt: toIsoOrNull(t.cancelRequestedAt),
    idempotencyKey: t.idempotencyKey,
    concurrencyKey: t.concurrencyKey,
    replica: t.replica,
    site: t.site,
    correlation: t.correlation,
    traceparent: t.traceparent,
    parentId: t.parentId,
  };
  if (assignment !== undefined) view.assignment = assignment === null ? null : assignmentView(assignment);
  return view;
}

export function assignmentView(a: AssignmentRecord): AssignmentView {
  return {
    id: a.id,
    taskId: a.taskId,
    agent: a.agent,
    replicaId: a.replicaId,
    attempt: a.attempt,
    status: a.status,
    dispatchedAt: toIso(a.dispatchedAt),
    startedAt: toIsoOrNull(a.startedAt),
    finishedAt: toIsoOrNull(a.finishedAt),
    leaseExpiresAt: a.status === 'dispatched' || a.status === 'running' ? toIso(a.leaseExpiresAt) : null,
    deadlineAt: a.status === 'dispatched' || a.status === 'running' ? toIso(a.deadlineAt) : null,
    progress: a.progressPercent === null ? null : { percent: a.progressPercent, message: a.progressMessage, at: toIso(a.progressAt ?? a.dispatchedAt) },
    error: a.error,
  };
}

export function agentView(a: AgentRecord): AgentView {
  return {
    name: a.name,
    description: a.description,
    capabilities: a.capabilities,
    maxConcurrency: a.maxConcurrency,
    maxAttempts: a.maxAttempts,
    timeoutMs: a.timeoutMs,
    level: a.level,
    toolDomains: a.toolDomains,
    concurrencyLimits: a.concurrencyLimits,
    retry: { baseDelayMs: a.retryBaseDelayMs, maxDelayMs: a.retryMaxDelayMs },
    runtime: a.runtime,
    createdAt: toIso(a.createdAt),
    updatedAt: toIso(a.updatedAt),
  };
}

export function replicaView(r: ReplicaRecord): ReplicaView {
  return {
    id: r.id,
    agent: r.agent,
    site: r.site,
    status: r.status,
    maxConcurrency: r.maxConcurrency,
    inFlight: r.inFlight,
    registeredAt: toIso(r.registeredAt),
    lastSeenAt: toIso(r.lastSeenAt),
    lastAssignedAt: toIsoOrNull(r.lastAssignedAt),
    completed: r.completed,
    failed: r.failed,
  };
}

export function eventView(e: EventRecord): EventView {
  return {
    seq: e.seq,
    type: e.type,
    at: toIso(e.at),
    taskId: e.taskId,
    agent: e.agent,
    replicaId: e.replicaId,
    assignmentId: e.assignmentId,
    data: e.data,
  };
}
