// Records (internal, epoch-ms times) to wire views (ISO times, camelCase JSON).

import type { AgentState, AgentView, ApiKeyView, AssignmentView, AuditEntryView, EventView, IssuedTokenView, ReplicaView, Role, TaskView, TokenScopeName, TreeNodeView, WaitingReason } from '@flotilla/sdk';
import type { AgentRecord, AssignmentRecord, EventRecord, ReplicaRecord, TaskRecord } from '../core/types.ts';
import { priorityBand, slaStateOf } from '../core/sla.ts';
import { redactSecretRefs } from '../core/secret-refs.ts';
import { keyStatus } from '../engine/api-keys.ts';
import type { IssuedToken } from '../engine/scoped-tokens.ts';
import type { ApiKeyRecord, AuditRecord } from '../store/store.ts';
import { toIso, toIsoOrNull } from '../engine/time.ts';
import type { FlowDetail } from '../engine/flow-detail.ts';
import { flowView } from './flow-views.ts';

export function taskView(t: TaskRecord, assignment?: AssignmentRecord | null, waitingReason?: WaitingReason | null, waitingDomains?: string[]): TaskView {
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
    rootId: t.rootId,
    depth: t.depth,
    tools: t.tools,
    allowDegraded: t.allowDegraded === true,
    cacheKey: t.cacheKey ?? null,
    cachedFrom: t.cachedFrom ?? null,
    createdBy: t.createdBy,
    ownerId: t.ownerId,
    waitingFor: t.waitingFor,
    inputRequest: t.inputRequest === null ? null : {
      prompt: t.inputRequest.prompt, schema: t.inputRequest.schema,
      requestedAt: toIso(t.inputRequest.requestedAt), expiresAt: toIsoOrNull(t.inputRequest.expiresAt),
    },
    sla: { band: priorityBand(t.priority), deadline: toIsoOrNull(t.slaDeadline), state: slaStateOf(t) },
    dependsOn: t.dependsOn ?? [],
    onDependencyFailure: t.onDependencyFailure ?? null,
    ref: t.ref ?? null,
    rateKey: t.rateKey ?? null,
    estimatedTokens: t.estimatedTokens ?? null,
  };
  if (assignment !== undefined) view.assignment = assignment === null ? null : assignmentView(assignment);
  if (waitingReason !== undefined) view.waitingReason = waitingReason;
  if (waitingDomains !== undefined) view.waitingDomains = waitingDomains;
  return view;
}

/** One node of a tree: the task's place and state, and what its latest attempt says. */
export function treeNodeView(t: TaskRecord, latest: AssignmentRecord | null): TreeNodeView {
  const a = latest === null ? null : assignmentView(latest);
  return {
    id: t.id,
    parentId: t.parentId,
    type: t.type,
    status: t.status,
    depth: t.depth,
    agent: t.agent ?? a?.agent ?? null,
    replica: a?.replicaId ?? null,
    attempt: t.attempt,
    maxAttempts: t.maxAttempts,
    progress: a?.progress ?? null,
    cancelRequested: t.cancelRequestedAt !== null,
    errorCode: t.error?.code ?? null,
    createdAt: toIso(t.createdAt),
    finishedAt: toIsoOrNull(t.finishedAt),
  };
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

export function agentView(a: AgentRecord, state: AgentState): AgentView {
  return {
    name: a.name,
    description: a.description,
    capabilities: a.capabilities,
    maxConcurrency: a.maxConcurrency,
    maxAttempts: a.maxAttempts,
    timeoutMs: a.timeoutMs,
    level: a.level,
    toolDomains: a.toolDomains,
    tools: a.tools,
    maxDepth: a.maxDepth,
    concurrencyLimits: a.concurrencyLimits,
    retry: { baseDelayMs: a.retryBaseDelayMs, maxDelayMs: a.retryMaxDelayMs },
    runtime: a.runtime,
    // Only on a2a agents. The headers may hold a secret: literals are shown as ***, references as they are.
    ...(a.a2a === null ? {} : { a2a: { ...a.a2a, ...(a.a2a.headers === undefined ? {} : { headers: redactSecretRefs(a.a2a.headers) }) } }),
    a2aSkill: a.a2aSkill,
    createdAt: toIso(a.createdAt),
    updatedAt: toIso(a.updatedAt),
    state,
    pausedAt: toIsoOrNull(a.pausedAt),
    maxInFlight: a.maxInFlight ?? null,
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
    health: r.health,
    healthDetail: r.healthDetail,
    healthAt: toIsoOrNull(r.healthAt),
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

export function apiKeyView(k: ApiKeyRecord, now: number): ApiKeyView {
  return {
    id: k.id, name: k.name, role: k.role as Role, agents: k.agents, status: keyStatus(k, now),
    createdAt: toIso(k.createdAt), createdBy: k.createdBy, lastUsedAt: toIsoOrNull(k.lastUsedAt),
    expiresAt: toIsoOrNull(k.expiresAt), revokedAt: toIsoOrNull(k.revokedAt),
  };
}

export function issuedTokenView(t: IssuedToken): IssuedTokenView {
  return {
    token: t.token, id: t.jti, scopes: [...t.scope.actions] as TokenScopeName[], agents: t.scope.agents === null ? null : [...t.scope.agents],
    rootTaskId: t.scope.root, expiresAt: toIso(t.expiresAt), maxExpiresAt: toIso(t.maxExpiresAt),
    tools: t.scope.tools === null ? null : [...t.scope.tools],
  };
}

export function auditView(a: AuditRecord): AuditEntryView {
  return { ...a, at: toIso(a.at) };
}

/** A submit's answer (POST /tasks, the socket's submit): the task, and its `then` task's id when it has one. */
export function submittedTaskView(r: { task: TaskRecord; thenTaskId?: string }): TaskView {
  return r.thenTaskId === undefined ? taskView(r.task) : { ...taskView(r.task), thenTaskId: r.thenTaskId };
}

/**
 * A task as GET /tasks/:id and the socket's `get` show it (one answer per operation, decisions.md
 * 36): its assignment, why it waits (the tool domains down; the rate key or cap, issue 16) and
 * its usage. The socket's `get` used to drop `waitingDomains` and could drift again.
 */
export function taskDetailView(got: { task: TaskRecord; assignment: AssignmentRecord | null; waitingReason: WaitingReason | null; waitingDomains?: string[]; flow?: FlowDetail }): TaskView {
  const view = taskView(got.task, got.assignment, got.waitingReason, got.waitingDomains);
  return got.flow === undefined ? view : { ...view, ...flowView(got.flow) };
}
