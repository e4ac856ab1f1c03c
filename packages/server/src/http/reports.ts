// The HTTP worker protocol's reports about one assignment (start, heartbeat, progress,
// complete, fail, cancelled, wait, ask), one function for all: what each single route
// (`POST /assignments/{assignmentId}/{op}`) runs and what each item of a report batch
// (`POST /workers/{replicaId}/reports`) runs, so both answer the same body for the same report.

import type { Json, TaskErrorInfo } from '@flotilla/sdk';
import type { Principal } from '../core/permissions.ts';
import type { Engine } from '../engine/engine.ts';
import { toIso } from '../engine/time.ts';
import type { BatchOp } from '../schemas/schemas.ts';
import type { UsageReport } from '../core/usage.ts';

/** The report batch route as Fastify names it (the audit hook leaves its 200s to the items). */
export const REPORT_BATCH_ROUTE = '/api/v1/workers/:replicaId/reports';

/** A report's fields as its body has them (validated), without `replicaId`. */
export type ReportFields = {
  percent?: number;
  message?: string;
  result?: unknown;
  error?: TaskErrorInfo;
  retryable?: boolean;
  children?: string[];
  prompt?: string;
  schema?: unknown;
  timeoutMs?: number;
  rateLimited?: boolean;
  retryAfterMs?: number;
  usage?: UsageReport;
};

/** The body of a report's 200 answer: `Ok`, or `LeaseRenewal` for heartbeat and progress. */
export type ReportAnswer = { ok: true } | { leaseExpiresAt: string; cancelRequested: boolean };

/** Applies one report; rejects with the FlotillaError its route answers. */
export async function applyReport(engine: Engine, principal: Principal, op: BatchOp, assignmentId: string, replicaId: string, f: ReportFields): Promise<ReportAnswer> {
  const workers = engine.workers;
  switch (op) {
    case 'start':
      await workers.start(principal, { assignmentId, replicaId });
      return { ok: true };
    case 'heartbeat':
    case 'progress': {
      const beat = await workers.heartbeat(principal, {
        assignmentId, replicaId,
        ...(f.percent === undefined ? {} : { percent: f.percent }),
        ...(f.message === undefined ? {} : { message: f.message }),
      });
      return { leaseExpiresAt: toIso(beat.leaseExpiresAt), cancelRequested: beat.cancelRequested };
    }
    case 'complete':
      await workers.complete(principal, { assignmentId, replicaId, result: (f.result ?? null) as Json, ...(f.usage === undefined ? {} : { usage: f.usage }) });
      return { ok: true };
    case 'fail':
      await workers.fail(principal, { assignmentId, replicaId, error: f.error!, retryable: f.retryable ?? true, ...flowFields(f) });
      return { ok: true };
    case 'cancelled':
      await workers.acknowledgeCancel(principal, { assignmentId, replicaId });
      return { ok: true };
    case 'wait':
      await workers.wait(principal, { assignmentId, replicaId, children: f.children! });
      return { ok: true };
    case 'ask':
      await workers.askInput(principal, { assignmentId, replicaId, prompt: f.prompt!, schema: (f.schema ?? null) as Json, timeoutMs: f.timeoutMs ?? null });
      return { ok: true };
  }
}

/** A fail's and a complete's flow-control fields (issue 16), as given. */
export function flowFields(f: Pick<ReportFields, 'rateLimited' | 'retryAfterMs' | 'usage'>): { rateLimited?: boolean; retryAfterMs?: number; usage?: UsageReport } {
  return {
    ...(f.rateLimited === undefined ? {} : { rateLimited: f.rateLimited }),
    ...(f.retryAfterMs === undefined ? {} : { retryAfterMs: f.retryAfterMs }),
    ...(f.usage === undefined ? {} : { usage: f.usage }),
  };
}
