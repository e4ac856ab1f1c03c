// `POST /workers/{replicaId}/reports`: several reports of one replica in one request
// (docs/protocol.md §4, Batch reports). Each item is applied as its single route
// (`POST /assignments/{assignmentId}/{op}`) applies it, with the same checks, and answered
// with the status and body that route answers. Items succeed or are refused on their own;
// the request fails as a whole only when it is malformed as a whole (not JSON, above the
// body limit, no `items` list, none or too many items), and then nothing is applied.
//
// Invariants:
// - Items about one assignment are applied in the order sent; items about different
//   assignments run concurrently, so they share the store's group commits.
// - The answer lists one `{status, body}` per item, in the order of the items.
// - Each item is audited as its single route would be (heartbeats only when denied); the
//   request itself only when it failed as a whole (http/audit-hook.ts).

import { ERROR_STATUS, type ErrorCode } from '@flotilla/sdk';
import type { Ajv, ValidateFunction } from 'ajv';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FlotillaError } from '../../core/errors.ts';
import { inadmissibleJson } from '../../core/json-limits.ts';
import type { Engine } from '../../engine/engine.ts';
import { BATCH_OPS, replicaParams, reportBatchSchema, reportItemSchemas, type BatchOp } from '../../schemas/schemas.ts';
import { answers } from '../../schemas/responses.ts';
import { outcomeOf } from '../audit-hook.ts';
import { principalOf } from '../auth.ts';
import { UNAVAILABLE_RETRY_AFTER_SECONDS } from '../error-handler.ts';
import { applyReport, REPORT_BATCH_ROUTE, type ReportFields } from '../reports.ts';

interface ItemAnswer { status: number; body: unknown }

const isBatchOp = (op: unknown): op is BatchOp => typeof op === 'string' && (BATCH_OPS as readonly string[]).includes(op);

function refused(code: ErrorCode, message: string, details?: unknown): ItemAnswer {
  return { status: ERROR_STATUS[code], body: { error: { code, message, ...(details === undefined ? {} : { details }) } } };
}

export function reportBatchRoutes(app: FastifyInstance, engine: Engine, ajv: Ajv): void {
  const validators = Object.fromEntries(BATCH_OPS.map((op) => [op, ajv.compile(reportItemSchemas[op])])) as Record<BatchOp, ValidateFunction>;

  /** One item's answer; never rejects. */
  async function answer(request: FastifyRequest<{ Params: { replicaId: string } }>, item: unknown, index: number): Promise<ItemAnswer> {
    const where = `items/${index}`;
    const fields = item !== null && typeof item === 'object' && !Array.isArray(item) ? item as Record<string, unknown> : null;
    const op = fields?.op;
    let result: ItemAnswer;
    // Checked in the order a single route checks its body: the text first, then the schema.
    const problem = inadmissibleJson(item);
    if (problem !== null) result = refused('VALIDATION_FAILED', `${where}: ${problem}`);
    else if (!isBatchOp(op)) result = refused('VALIDATION_FAILED', `${where}/op must be one of ${BATCH_OPS.join(', ')}`);
    else if (!validators[op](item)) {
      const errors = validators[op].errors ?? [];
      const first = errors[0];
      const property = first?.keyword === 'additionalProperties' ? String((first.params as { additionalProperty?: string }).additionalProperty) : null;
      result = refused('VALIDATION_FAILED', `${where}${first?.instancePath ?? ''} ${first?.message ?? 'is invalid'}${property === null ? '' : ` (${property})`}`,
        errors.map((e) => ({ path: `/${where}${e.instancePath}`, message: e.message, ...(e.keyword === 'additionalProperties' ? { property: (e.params as { additionalProperty?: string }).additionalProperty } : {}) })));
    } else {
      const { op: _op, assignmentId, ...report } = fields as { op: BatchOp; assignmentId: string } & ReportFields;
      try {
        result = { status: 200, body: await applyReport(engine, principalOf(request), op, assignmentId, request.params.replicaId, report) };
      } catch (err) {
        result = failure(request, err);
      }
    }
    audit(request, isBatchOp(op) ? op : null, typeof fields?.assignmentId === 'string' ? fields.assignmentId : null, result.status);
    return result;
  }

  /** What the error handler answers for `err` (http/error-handler.ts), as an item's answer. */
  function failure(request: FastifyRequest, err: unknown): ItemAnswer {
    if (err instanceof FlotillaError) {
      if (err.code === 'INTERNAL' || err.code === 'STORE_UNAVAILABLE') request.log.error({ err }, err.message);
      // An item has no Retry-After header of its own: the details say it, as a socket reply's do.
      const details = err.details ?? (ERROR_STATUS[err.code] === 503 ? { retryAfterMs: UNAVAILABLE_RETRY_AFTER_SECONDS * 1000 } : undefined);
      return refused(err.code, err.message, details);
    }
    request.log.error({ err }, 'unhandled error in a report batch item');
    return refused('INTERNAL', 'internal error; see the server log for the request id ' + request.id);
  }

  /** As the audit hook would record the item's single route (which leaves out heartbeats unless denied). */
  function audit(request: FastifyRequest<{ Params: { replicaId: string } }>, op: BatchOp | null, assignmentId: string | null, status: number): void {
    const outcome = outcomeOf(status);
    if (op === 'heartbeat' && outcome !== 'denied') return;
    const p = principalOf(request);
    engine.audit.record({
      principalId: p.id, principalName: p.name, role: p.role, action: 'worker.work',
      target: assignmentId === null ? `replicaId:${request.params.replicaId}` : `assignmentId:${assignmentId}`,
      outcome, status, requestId: request.id, source: request.ip ?? null,
      details: { route: `POST ${REPORT_BATCH_ROUTE}`, op: op ?? null },
    });
  }

  void app.register(async (scope) => {
    // Text no store can hold (core/json-limits.ts) is refused item by item here, so that one
    // item's NUL refuses that item only: this route parses JSON as the app's parser does
    // (prototype poisoning refused), without the app's check of the body as a whole.
    const parseJson = scope.getDefaultJsonParser('error', 'error');
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson);
    scope.post<{ Params: { replicaId: string }; Body: { items: unknown[] } }>('/workers/:replicaId/reports', {
      schema: {
        summary: 'Several reports of this replica at once (start, heartbeat, progress, complete, fail, cancelled); each answered as its own route would answer it',
        tags: ['workers'], params: replicaParams, body: reportBatchSchema, response: answers({ 200: 'ReportResults' }),
      },
    }, async (request) => {
      const chains = new Map<string, Promise<ItemAnswer>>();
      const answered = request.body.items.map((item, index) => {
        const assignmentId = (item as { assignmentId?: unknown } | null)?.assignmentId;
        if (typeof assignmentId !== 'string') return answer(request, item, index);
        const run = (chains.get(assignmentId) ?? Promise.resolve()).then(() => answer(request, item, index));
        chains.set(assignmentId, run);
        return run;
      });
      return { items: await Promise.all(answered) };
    });
  });
}
