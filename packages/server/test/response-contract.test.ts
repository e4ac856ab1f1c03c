// Every answer of every route against the schema the OpenAPI document gives for its route and
// status, on both stores. A scenario reaches each route of the authorization table
// (http/route-actions.ts) with a success, and a few with errors; hooks record each answer
// twice: the object the route returned (before serialization) and the text that left. The
// object must validate (Ajv, strict, closed objects closed), and the text must be the same
// JSON value as JSON.stringify of it: a field the view has and the schema lacks fails here instead of
// silently vanishing, and so does a value the serializer would coerce (a null written as "").
// A route of the table without a recorded success fails the test, so a new route needs its
// schema and a place in this scenario.
//
// The OpenAPI document itself is checked against the OpenAPI 3.1 schema published by the
// OpenAPI Initiative (fixtures/openapi-3.1.schema.json, as shipped by the npm package
// @seriousme/openapi-schema-validator 2.11.0), and every $ref in it must resolve.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { buildApp } from '../src/http/app.ts';
import { collectRoutes } from '../src/http/openapi.ts';
import { ROUTE_ACTIONS } from '../src/http/route-actions.ts';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { description: string; content?: Record<string, Record<string, unknown>> }> }>>; components: { schemas: Record<string, unknown> } };

interface Answer { route: string; status: number; object: unknown; text: string | undefined }

const BASE = 'https://flotilla.invalid/components/';

/** The document's references (`#/components/schemas/X`) as absolute ids Ajv knows. */
function rebase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rebase);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', BASE) : rebase(v)]));
}

function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv;
}

/** Validators for the document's schemas, with its components resolvable. */
function validators(doc: Doc): (schema: unknown) => ValidateFunction {
  const ajv = newAjv();
  for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(rebase(schema) as object, BASE + name);
  const compiled = new Map<string, ValidateFunction>();
  return (schema) => {
    const key = JSON.stringify(schema);
    let validate = compiled.get(key);
    if (!validate) compiled.set(key, validate = ajv.compile(rebase(schema) as object));
    return validate;
  };
}

function documentedResponse(doc: Doc, route: string, status: number) {
  const [method, url] = route.split(' ') as [string, string];
  const op = doc.paths[url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[method.toLowerCase()];
  assert.ok(op, `${route} is in the OpenAPI document`);
  return op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`];
}

/** Records every answer: the payload before serialization, and the text sent. */
function recorder(app: FastifyInstance, answers: Answer[] = []): Answer[] {
  const payloads = new WeakMap<FastifyRequest, unknown>();
  app.addHook('preSerialization', async (request, _reply, payload) => {
    payloads.set(request, payload);
    return payload;
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const url = request.routeOptions.url;
    if (url !== undefined) answers.push({ route: `${request.method} ${url}`, status: reply.statusCode, object: payloads.get(request), text: payload === undefined || payload === null ? undefined : String(payload) });
    return payload;
  });
  return answers;
}

/** Drives every route; returns the routes whose success was checked outside `app.inject` (stream, upgrades). */
async function scenario(h: Harness, doc: Doc, validate: (schema: unknown) => ValidateFunction, answers: Answer[]): Promise<Set<string>> {
  const call = async (method: string, url: string, status: number, body?: unknown, headers?: Record<string, string>) => {
    const res = await h.api(method, url, body, headers);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  await call('GET', '/healthz', 200);
  await call('GET', '/readyz', 200);
  await call('GET', '/openapi.json', 200);

  // Agents.
  await call('POST', '/agents', 201, { name: 'contract', capabilities: ['x'], tools: ['web:*', 'flotilla:spawn'], concurrencyLimits: { 'host:a': 5 }, retry: { baseDelayMs: 10 }, description: 'd' });
  await call('POST', '/agents', 201, { name: 'doomed' });
  await call('POST', '/agents', 201, { name: 'helper', level: 2, tools: ['web:*'], maxDepth: 2 });
  await call('DELETE', '/agents/doomed', 204);
  await call('GET', '/agents', 200);
  await call('GET', '/agents/contract', 200);
  await call('PATCH', '/agents/contract', 200, { maxAttempts: 3, timeoutMs: 60_000 });

  // Tasks: one created and found again by its idempotency key, a batch with a child, a manual assignment.
  const first = await call('POST', '/tasks', 201, { agent: 'contract', input: { deep: [1, { a: null }], s: 'é"\\' }, correlation: { caseId: 'C-1' }, idempotencyKey: 'k-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
  await call('POST', '/tasks', 200, { agent: 'contract', idempotencyKey: 'k-1' });
  const batch = await call('POST', '/tasks/batch', 201, { tasks: [{ agent: 'contract', input: [1, 2] }, { agent: 'contract', parentId: first.id, input: null, concurrencyKey: 'host:a', tools: { allow: ['web:search'] } }] });
  const assigned = await call('POST', '/agents/contract/assign', 201, { input: 'text', site: 'eu' });
  const pending = await call('POST', '/tasks', 201, { capabilities: ['x'], runAt: new Date(Date.now() + 3_600_000).toISOString() });
  await call('GET', `/tasks?rootId=${first.id}`, 200);
  await call('GET', '/tasks?limit=2', 200);
  await call('GET', `/tasks/${pending.id}`, 200);

  // A worker takes all four runnable tasks and ends them in different ways.
  const registered = await call('POST', '/workers/register', 201, { agent: 'contract', maxConcurrency: 10, site: 'eu' });
  const replicaId = registered.replica.id as string;
  await call('POST', `/workers/${replicaId}/heartbeat`, 200);
  const { assignments } = await call('POST', `/workers/${replicaId}/lease`, 200, { max: 10, waitMs: 0 });
  assert.equal(assignments.length, 4);
  const byTask = new Map<string, string>(assignments.map((a: { assignmentId: string; task: { id: string } }) => [a.task.id, a.assignmentId]));
  const [completed, failed, cancelled, tokenHolder] = [first.id, batch.items[0].task.id, batch.items[1].task.id, assigned.id].map((id) => byTask.get(id)!);
  await call('POST', `/assignments/${completed}/start`, 200, { replicaId });
  await call('POST', `/assignments/${completed}/heartbeat`, 200, { replicaId, percent: 10, message: 'warming up' });
  await call('POST', `/assignments/${completed}/progress`, 200, { replicaId, percent: 50.5 });
  await call('POST', `/assignments/${completed}/complete`, 200, { replicaId, result: { ok: [true, null], n: 1.5 } });
  await call('POST', `/assignments/${completed}/complete`, 409, { replicaId, result: 1 });
  await call('POST', `/assignments/${failed}/fail`, 200, { replicaId, retryable: false, error: { message: 'broke', code: 'E_BROKE', details: { line: 3 } } });
  await call('POST', `/tasks/${batch.items[0].task.id}/retry`, 200);
  await call('POST', `/tasks/${batch.items[1].task.id}/cancel`, 200, { reason: 'not needed' });
  await call('POST', `/assignments/${cancelled}/cancelled`, 200, { replicaId });
  const attemptToken = (await call('POST', `/assignments/${tokenHolder}/token`, 201, { replicaId })).token as string;
  // The MCP gateway answers through the MCP SDK (a hijacked reply, not recorded by the hooks):
  // its answer is checked here, against the documented schema.
  const gateway = await h.api('POST', '/api/v1/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }, { authorization: `Bearer ${attemptToken}`, accept: 'application/json, text/event-stream' });
  assert.equal(gateway.status, 200, JSON.stringify(gateway.body));
  assert.deepEqual(gateway.body, { jsonrpc: '2.0', id: 1, result: { tools: [] } });
  const gatewaySchema = documentedResponse(doc, 'POST /api/v1/mcp', 200)?.content?.['application/json']?.schema;
  assert.ok(gatewaySchema !== undefined && validate(gatewaySchema)(gateway.body), 'the gateway answer is documented');
  // A report batch whose items answer each of the report bodies: Ok, LeaseRenewal, Error.
  await call('POST', `/workers/${replicaId}/reports`, 200, { items: [
    { op: 'start', assignmentId: tokenHolder }, { op: 'progress', assignmentId: tokenHolder, percent: 5 }, { op: 'complete', assignmentId: completed },
  ] });
  await call('POST', `/assignments/${tokenHolder}/complete`, 200, { replicaId });
  // Suspensions: a parent waits for its child and is resumed with its outcome; a task asks for
  // input, a wrong answer is refused, a right one resumes it.
  const parent = await call('POST', '/tasks', 201, { agent: 'contract' });
  const asker = await call('POST', '/tasks', 201, { agent: 'contract' });
  // (The lease also brings the task requeued above: it is completed at the end.)
  const suspending = (await call('POST', `/workers/${replicaId}/lease`, 200, { max: 10, waitMs: 0 })).assignments as Array<{ assignmentId: string; task: { id: string } }>;
  const leasedParent = suspending.find((a) => a.task.id === parent.id)!;
  const leasedAsker = suspending.find((a) => a.task.id === asker.id)!;
  const child = await call('POST', '/tasks', 201, { agent: 'contract', parentId: parent.id });
  await call('POST', `/assignments/${leasedParent.assignmentId}/wait`, 200, { replicaId, children: [child.id] });
  await call('GET', `/tasks/${parent.id}`, 200);
  await call('POST', `/assignments/${leasedAsker.assignmentId}/ask`, 200, { replicaId, prompt: 'Which region?', schema: { type: 'string', enum: ['eu', 'us'] }, timeoutMs: 60_000 });
  await call('GET', `/tasks/${asker.id}`, 200);
  await call('POST', `/tasks/${asker.id}/input`, 400, { input: 'mars' });
  await call('POST', `/tasks/${asker.id}/input`, 200, { input: 'eu' });
  await call('POST', `/tasks/${asker.id}/input`, 409, { input: 'eu' });
  type Leased = { assignmentId: string; task: { id: string; resumed: { reason: string } | null } };
  const afterAnswer = (await call('POST', `/workers/${replicaId}/lease`, 200, { max: 10, waitMs: 0 })).assignments as Leased[];
  const leasedChild = afterAnswer.find((a) => a.task.id === child.id)!;
  await call('POST', `/assignments/${leasedChild.assignmentId}/complete`, 200, { replicaId, result: { region: 'eu' }, usage: { model: 'gpt-4o', inputTokens: 10, outputTokens: 5, costUsd: 0.001 } });
  assert.equal((await call('GET', `/tasks/${child.id}`, 200)).usage.inputTokens, 10);
  await h.engine.resumer.sweep();
  const resumed = [...afterAnswer.filter((a) => a !== leasedChild), ...(await call('POST', `/workers/${replicaId}/lease`, 200, { max: 10, waitMs: 0 })).assignments as Leased[]];
  assert.deepEqual(resumed.filter((a) => a.task.id === parent.id || a.task.id === asker.id).map((a) => a.task.resumed?.reason).sort(), ['children', 'input']);
  for (const a of [...resumed, ...suspending.filter((l) => l !== leasedParent && l !== leasedAsker)]) await call('POST', `/assignments/${a.assignmentId}/complete`, 200, { replicaId });
  for (const id of [first.id, batch.items[0].task.id, batch.items[1].task.id]) {
    await call('GET', `/tasks/${id}`, 200);
    await call('GET', `/tasks/${id}/assignment`, 200);
  }
  await call('GET', `/tasks/${first.id}?waitMs=10`, 200);
  await call('GET', `/tasks/${first.id}/events`, 200);
  await call('GET', '/agents/contract/queue', 200);
  await call('GET', '/agents/contract/replicas', 200);
  await call('GET', '/agents/contract/stats', 200);
  await call('GET', '/overview', 200);
  await call('GET', '/reports/delegation', 200);
  // Operators' controls: a pause and its resume, a replica drained and taken back, an agent's drain.
  await call('POST', '/agents/contract/pause', 200);
  await call('POST', '/agents/contract/resume', 200);
  await call('POST', `/replicas/${replicaId}/drain`, 200);
  await call('POST', `/replicas/${replicaId}/resume`, 200);
  await call('POST', `/workers/${replicaId}/heartbeat`, 200, { health: 'degraded', healthDetail: { cpu: 0.9 } });
  await call('POST', '/agents/contract/drain', 200);
  await call('POST', `/replicas/${replicaId}/resume`, 200);
  await call('POST', '/agents/ghost/pause', 404);
  await call('GET', '/events/page?limit=50', 200);
  await call('GET', `/tasks/${first.id}/tree`, 200);
  await call('GET', `/tasks/${batch.items[1].task.id}/tree?limit=1`, 200);
  // An operator's hands: a delayed task dispatched now to a waiting replica, then failed.
  // (The requeued task, which would be the waiting lease's first, was completed above.)
  await call('POST', `/tasks/${batch.items[0].task.id}/cancel`, 409, { cascade: false });
  const later = await call('POST', '/tasks', 201, { agent: 'contract', delayMs: 3_600_000 });
  const waiting = h.api('POST', `/workers/${replicaId}/lease`, { max: 1, waitMs: 10_000 });
  for (const until = Date.now() + 5_000; !h.engine.dispatcher.waitingReplicaIds().includes(replicaId);) {
    assert.ok(Date.now() < until, 'the lease request waits');
    await new Promise((r) => setTimeout(r, 2));
  }
  await call('POST', `/tasks/${later.id}/assign`, 200, { replica: replicaId });
  assert.equal((await waiting).body.assignments[0].task.id, later.id);
  await call('POST', `/tasks/${later.id}/assign`, 409, {});
  await call('POST', `/tasks/${later.id}/fail`, 200, { reason: 'not wanted after all' });
  await call('POST', `/tasks/${pending.id}/fail`, 200, { reason: 'never mind' });
  await call('POST', `/tasks/${pending.id}/fail`, 409, { reason: 'again' });
  await call('POST', `/workers/${replicaId}/deregister`, 204);

  // Dependencies (docs/workflows.md): a workflow on a task that failed is created blocked (then
  // failed by its dependency); a submit with a `then` answers its follow-up's id.
  const workflow = await call('POST', '/workflows', 201, { tasks: [
    { ref: 'a', agent: 'contract', dependsOn: [pending.id] },
    { agent: 'contract', dependsOn: ['#a'], inputFrom: { x: { $from: '#a/result' } }, then: { agent: 'contract', input: { $from: '/result' } } },
  ] });
  await call('GET', `/tasks/${workflow.items[1].id}`, 200);
  await call('POST', '/tasks', 201, { agent: 'contract', dependsOn: [workflow.items[0].id], onDependencyFailure: 'run', then: { agent: 'contract' } });

  // Keys and tokens.
  const created = await call('POST', '/keys', 201, { name: 'reader', role: 'viewer', expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
  await call('POST', '/keys', 201, { name: 'worker', role: 'agent', agents: ['contract'] });
  await call('GET', '/keys?includeRevoked=true', 200);
  await call('GET', `/keys/${created.key.id}`, 200);
  await call('POST', `/keys/${created.key.id}/revoke`, 200);
  const token = await call('POST', '/tokens', 201, { scopes: ['task.read', 'task.submit'], rootTaskId: first.id, name: 'tree' });
  await call('POST', '/tokens/renew', 201, undefined, { authorization: `Bearer ${token.token}` });
  await call('POST', `/tokens/${token.id}/revoke`, 200);
  await h.engine.audit.flush();
  await call('GET', '/audit?limit=20', 200);

  // A2A (http/a2a/): the card in both shapes, and a JSON-RPC answer of each version (the
  // streams are SSE written by hand, as /events is: a2a-server.test.ts reads them).
  await call('PATCH', '/agents/contract', 200, { a2aSkill: { examples: ['do it'] } });
  for (const headers of [{ 'a2a-version': '1.0' }, {}]) {
    assert.equal((await h.app.inject({ method: 'GET', url: '/.well-known/agent-card.json', headers })).statusCode, 200);
  }
  for (const [url, method, version] of [['/a2a/jsonrpc', 'GetTask', '1.0'], ['/a2a/v0.3/jsonrpc', 'tasks/get', '0.3']] as const) {
    const res = await h.app.inject({
      method: 'POST', url, payload: { jsonrpc: '2.0', id: 1, method, params: { id: first.id } },
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'a2a-version': version },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(JSON.parse(res.body).result.id, first.id);
  }
  // MCP tool domains (unreachable ones: never checked here), their health, the tool-call audit.
  await call('PUT', '/tool-domains/contract-web', 201, { url: 'http://127.0.0.1:9/mcp', headers: { authorization: { env: 'FLOTILLA_SECRET_CONTRACT_TOKEN' }, 'x-literal': 'v' }, description: 'd' });
  await call('PUT', '/tool-domains/contract-web', 200, { url: 'http://127.0.0.1:9/mcp' });
  await call('PUT', '/tool-domains/contract-stdio', 201, { command: 'true', args: ['x'], env: { A: { env: 'FLOTILLA_SECRET_B' } } });
  await call('GET', '/tool-domains', 200);
  await call('GET', '/tool-domains/contract-web', 200);
  await call('GET', '/mcp/health', 200);
  await call('GET', '/tool-calls?limit=5', 200);
  await call('DELETE', '/tool-domains/contract-stdio', 200);
  await call('GET', '/tool-domains/contract-stdio', 404);
  // Webhooks: a subscription, a delivery queued for it (fed, not sent), the notify secret.
  const hook = await call('POST', '/webhooks', 201, { url: 'http://127.0.0.1:9/hook', events: ['task.*'], agents: ['contract'], description: 'd' });
  await call('POST', '/tasks', 201, { agent: 'contract' });
  await h.engine.webhookOutbox.feed();
  await call('GET', '/webhooks', 200);
  await call('GET', `/webhooks/${hook.id}`, 200);
  await call('PATCH', `/webhooks/${hook.id}`, 200, { rootId: 'r', enabled: false });
  await call('POST', `/webhooks/${hook.id}/rotate-secret`, 200);
  assert.ok((await call('GET', `/webhooks/${hook.id}/deliveries?status=pending`, 200)).items.length > 0);
  await call('POST', `/webhooks/${hook.id}/deliveries/replay`, 200, {});
  await call('GET', '/webhooks/notify-secret', 200);
  await call('DELETE', `/webhooks/${hook.id}`, 200);
  await call('GET', `/webhooks/${hook.id}`, 404);
  // Schedules (one fired, so its view has a last firing) and cached results.
  await call('POST', '/schedules', 201, { name: 'contract-every', everyMs: 60_000, overlap: 'allow', task: { agent: 'contract', input: { n: 1 }, priority: 'P2' } });
  h.advance(60_000);
  await h.engine.schedules.sweep();
  await call('GET', '/schedules', 200);
  await call('GET', '/schedules/contract-every', 200);
  await call('PATCH', '/schedules/contract-every', 200, { cron: '0 0 3 * * *', timezone: 'Europe/Paris' });
  await call('POST', '/schedules/contract-every/pause', 200);
  await call('POST', '/schedules/contract-every/resume', 200);
  await call('POST', '/schedules', 400, { name: 'bad', cron: 'nope', task: { agent: 'contract' } });
  await call('POST', '/schedules', 409, { name: 'contract-every', everyMs: 60_000, task: { agent: 'contract' } });
  await call('DELETE', '/schedules/contract-every', 200);
  await call('GET', '/schedules/contract-every', 404);
  await call('POST', '/tasks', 201, { agent: 'contract', cacheKey: 'contract-cache' });
  await call('POST', '/tasks', 200, { agent: 'contract', cacheKey: 'contract-cache' });
  // Provider rate limits and usage (issue 16).
  await call('PUT', '/rate-limits/openai:gpt-4o', 201, { rpm: 1, tpm: 1000 });
  await call('PUT', '/rate-limits/openai:gpt-4o', 200, { rpm: 1 });
  await call('GET', '/rate-limits', 200);
  await call('PUT', '/rate-limits/bad%20key', 400, { rpm: 1 });
  await call('GET', '/usage?groupBy=agent', 200);
  await call('GET', '/usage?groupBy=day&since=2026-01-01T00:00:00Z', 200);
  await call('DELETE', '/rate-limits/openai:gpt-4o', 200);
  await call('DELETE', '/rate-limits/openai:gpt-4o', 404);

  // Errors.
  await call('GET', '/tasks/missing', 404);
  await call('POST', '/tasks', 422, { agent: 'ghost' });
  await call('POST', '/tasks', 400, { agent: 'contract', priority: 'high' });
  await call('GET', '/agents', 401, undefined, { authorization: 'Bearer not-a-valid-token-at-all' });
  await call('GET', '/socket', 426);
  await call('GET', '/workers/socket', 426);
  await call('POST', '/agents', 409, { name: 'contract' });
  // 503s: the database down (readiness says so in its own shape), and a node shutting down.
  const ping = h.store.ping;
  h.store.ping = async () => { throw new Error('down'); };
  try {
    assert.equal((await call('GET', '/readyz', 503)).status, 'database_unavailable');
  } finally {
    h.store.ping = ping;
  }
  const closing = await buildApp({ engine: h.engine, log: pino({ level: 'silent' }), state: { shuttingDown: true } });
  recorder(closing, answers);
  try {
    for (const [method, url] of [['GET', '/readyz'], ['GET', '/healthz'], ['POST', '/api/v1/tasks']] as const) {
      const res = await closing.inject({ method, url, headers: { authorization: `Bearer ${TOKEN}` }, ...(method === 'POST' ? { payload: { agent: 'contract' } } : {}) });
      assert.equal(res.statusCode, 503);
    }
  } finally {
    await closing.close();
  }

  // The event stream and the WebSocket upgrades, over a real connection.
  const checked = new Set<string>(['POST /api/v1/mcp']);
  const base = await h.listen();
  const controller = new AbortController();
  const stream = await fetch(`${base}/api/v1/events?after=0`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: controller.signal });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
  const sse = documentedResponse(doc, 'GET /api/v1/events', 200);
  assert.ok(sse?.content?.['text/event-stream'], 'the stream is documented as text/event-stream');
  const eventData = validate(sse.content['text/event-stream']['x-event-data']);
  const reader = stream.body!.getReader();
  let text = '';
  while ((text.match(/^data: /gm) ?? []).length < 10) text += new TextDecoder().decode((await reader.read()).value);
  controller.abort();
  const events = text.split('\n\n').filter((block) => block.includes('\ndata: ')).map((block) => block.split('\ndata: ')[1]!);
  assert.ok(events.length >= 10);
  for (const data of events) assert.ok(eventData(JSON.parse(data)), `an event on the stream: ${JSON.stringify(eventData.errors)}\n${data}`);
  checked.add('GET /api/v1/events');
  for (const path of ['/api/v1/workers/socket', '/api/v1/socket']) {
    const socket = new WebSocket(base.replace(/^http/, 'ws') + path, { headers: { authorization: `Bearer ${TOKEN}` } });
    const [response] = await once(socket, 'upgrade') as [{ statusCode: number }];
    assert.equal(response.statusCode, 101);
    assert.ok(documentedResponse(doc, `GET ${path}`, 101), `${path}: 101 is documented`);
    socket.close();
    await once(socket, 'close');
    checked.add(`GET ${path}`);
  }
  return checked;
}

const clip = (text: string) => text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text;

function checkAnswers(answers: Answer[], doc: Doc, validate: (schema: unknown) => ValidateFunction): void {
  const problems: string[] = [];
  for (const a of answers) {
    const where = `${a.route} ${a.status}`;
    const response = documentedResponse(doc, a.route, a.status);
    if (!response) {
      problems.push(`${where}: status not documented`);
      continue;
    }
    const schema = response.content?.['application/json']?.schema;
    if (a.object === undefined) {
      if (schema !== undefined) problems.push(`${where}: documented with a body, answered without one`);
      if ((a.text ?? '') !== '') problems.push(`${where}: a body without a payload: ${a.text}`);
      continue;
    }
    if (schema === undefined) {
      problems.push(`${where}: answered with a body that is not documented`);
      continue;
    }
    const plain: unknown = JSON.parse(JSON.stringify(a.object));
    const check = validate(schema);
    if (!check(plain)) problems.push(`${where}: ${JSON.stringify(check.errors)}\n  ${clip(JSON.stringify(plain))}`);
    // The same JSON value (key order aside: the serializer writes the schema's order, and
    // PostgreSQL's jsonb its own for stored objects such as a task's error).
    try {
      assert.deepStrictEqual(a.text === undefined ? undefined : JSON.parse(a.text), plain);
    } catch {
      problems.push(`${where}: serialization changed the answer\n  view: ${clip(JSON.stringify(plain))}\n  sent: ${clip(a.text ?? '')}`);
    }
  }
  assert.deepEqual(problems, []);
}

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;

for (const store of stores) {
  describe(`answers and their schemas (${store})`, () => {
    it('every route answers what the OpenAPI document says, and exactly what its view holds', async () => {
      // One agent runs the whole scenario, a child under its parent too: equal levels may delegate.
      const h = await harness({ store, config: { leaseMs: 30_000, replicaTtlMs: 60_000, allowEqualLevel: true } });
      try {
        const answers = recorder(h.app);
        const doc = (await h.api('GET', '/openapi.json')).body as Doc;
        const validate = validators(doc);
        const checked = await scenario(h, doc, validate, answers);
        checkAnswers(answers, doc, validate);

        const succeeded = new Set([...checked, ...answers.filter((a) => a.status < 300).map((a) => a.route)]);
        assert.deepEqual(Object.keys(ROUTE_ACTIONS).filter((route) => !succeeded.has(route)), [], 'routes without a checked success answer');
        const statuses = new Set(answers.map((a) => a.status));
        for (const s of [200, 201, 204, 400, 401, 404, 409, 422, 426, 503]) assert.ok(statuses.has(s), `a ${s} was checked`);
      } finally {
        await h.close();
      }
    });
  });
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document, its $refs resolve, and every route documents its success and its errors', async () => {
    const h = await harness();
    try {
      const doc = (await h.api('GET', '/openapi.json')).body as Doc & Record<string, unknown>;
      const ajv = new Ajv2020({ strict: false, allErrors: true });
      (addFormats as unknown as (a: Ajv2020) => void)(ajv);
      ajv.addFormat('media-range', /^[\w.+*-]+\/[\w.+*-]+(\s*;.*)?$/);
      const oas = ajv.compile(JSON.parse(readFileSync(new URL('./fixtures/openapi-3.1.schema.json', import.meta.url), 'utf8')));
      assert.ok(oas(doc), JSON.stringify(oas.errors, null, 2));

      const unresolved: string[] = [];
      const walk = (value: unknown, where: string): void => {
        if (value === null || typeof value !== 'object') return;
        for (const [k, v] of Object.entries(value)) {
          if (k === '$ref') {
            const target = typeof v === 'string' && v.startsWith('#/') ? v.slice(2).split('/').reduce<unknown>((o, part) => (o as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc) : undefined;
            if (target === undefined) unresolved.push(`${where}: ${String(v)}`);
          } else walk(v, `${where}/${k}`);
        }
      };
      walk(doc, '#');
      assert.deepEqual(unresolved, []);
      // Every schema compiles in strict mode (unknown keywords, loose types and the like are errors).
      const strict = validators(doc);
      for (const name of Object.keys(doc.components.schemas)) strict({ $ref: `#/components/schemas/${name}` });

      const missing: string[] = [];
      for (const route of Object.keys(ROUTE_ACTIONS)) {
        const [method, url] = route.split(' ') as [string, string];
        const responses = doc.paths[url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[method.toLowerCase()]?.responses;
        if (!responses) missing.push(`${route}: not documented`);
        else {
          if (!Object.keys(responses).some((s) => /^[12]/.test(s))) missing.push(`${route}: no success answer`);
          if (!responses['4XX'] || !responses['5XX']) missing.push(`${route}: errors not documented`);
        }
      }
      assert.deepEqual(missing, []);
    } finally {
      await h.close();
    }
  });

  it('a route without a schema for its success answer stops the server from starting', async () => {
    const app = Fastify();
    collectRoutes(app);
    assert.throws(() => app.get('/undocumented', async () => ({ ok: true })), /no schema for its success answer/);
    await app.close();
  });
});
