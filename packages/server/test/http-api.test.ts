// The HTTP API in process (app.inject): authentication, validation with stable error codes,
// and that rejected requests change nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_STATUS } from '@flotilla/sdk';
import { pino } from 'pino';
import { buildApp } from '../src/http/app.ts';
import { harness, type Harness } from './helpers/harness.ts';

let h: Harness;
before(async () => {
  h = await harness({ config: { bodyLimitBytes: 64 * 1024 } });
  await h.agent({ name: 'analyst', capabilities: ['triage'] });
});
after(() => h.close());

async function taskCount(): Promise<number> {
  const counts = await h.store.taskCountByStatus({});
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

describe('authentication', () => {
  it('every API route needs a bearer token; health checks do not', async () => {
    const none = await h.app.inject({ method: 'GET', url: '/api/v1/tasks' });
    assert.equal(none.statusCode, 401);
    assert.equal(JSON.parse(none.body).error.code, 'UNAUTHENTICATED');
    const wrong = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: 'Bearer nope-nope-nope' }, payload: { agent: 'analyst' } });
    assert.equal(wrong.statusCode, 401);
    const basic = await h.app.inject({ method: 'GET', url: '/api/v1/agents', headers: { authorization: 'Basic abc' } });
    assert.equal(basic.statusCode, 401);
    assert.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200);
    assert.equal(JSON.parse(ready.body).status, 'ready');
    assert.equal(await taskCount(), 0, 'the unauthenticated submit created nothing');
  });

  it('an unauthenticated request to an unknown route is still 401, not a route map', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/secret-admin' });
    assert.ok([401, 404].includes(res.statusCode));
  });
});

describe('validation', () => {
  const bad: Array<[string, unknown, string]> = [
    ['priority above 9', { agent: 'analyst', priority: 10 }, 'VALIDATION_FAILED'],
    ['priority below 0', { agent: 'analyst', priority: -1 }, 'VALIDATION_FAILED'],
    ['priority as a string', { agent: 'analyst', priority: '5' }, 'VALIDATION_FAILED'],
    ['priority not an integer', { agent: 'analyst', priority: 4.5 }, 'VALIDATION_FAILED'],
    ['unknown field', { agent: 'analyst', colour: 'red' }, 'VALIDATION_FAILED'],
    ['no target', { input: {} }, 'VALIDATION_FAILED'],
    ['agent and capabilities', { agent: 'analyst', capabilities: ['triage'] }, 'VALIDATION_FAILED'],
    ['bad traceparent', { agent: 'analyst', traceparent: 'zz' }, 'VALIDATION_FAILED'],
    ['bad runAt', { agent: 'analyst', runAt: 'tomorrow' }, 'VALIDATION_FAILED'],
    ['runAt and delayMs', { agent: 'analyst', runAt: new Date().toISOString(), delayMs: 5 }, 'VALIDATION_FAILED'],
    ['correlation values must be strings', { agent: 'analyst', correlation: { caseId: 7 } }, 'VALIDATION_FAILED'],
    ['unknown agent', { agent: 'ghost' }, 'UNKNOWN_AGENT'],
    ['no agent has the capabilities', { capabilities: ['triage', 'flying'] }, 'NO_AGENT_FOR_CAPABILITIES'],
    ['missing parent', { agent: 'analyst', parentId: 'nope' }, 'PARENT_NOT_FOUND'],
    ['body not an object', [1, 2], 'VALIDATION_FAILED'],
  ];
  for (const [name, body, code] of bad) {
    it(`rejects a submit with ${name} (${code}) and creates nothing`, async () => {
      const before = await taskCount();
      const res = await h.api('POST', '/tasks', body);
      assert.equal(res.status, ERROR_STATUS[code as keyof typeof ERROR_STATUS]);
      assert.equal(res.body.error.code, code);
      assert.equal(typeof res.body.error.message, 'string');
      assert.ok(res.body.error.message.length > 0);
      assert.equal(await taskCount(), before);
      if (name === 'unknown field') assert.match(res.body.error.message, /colour/);
    });
  }

  it('JSON nested too deeply is 400, on submit and on complete, not a 500', async () => {
    // Sent as raw text: JSON.stringify itself overflows on values this deep.
    const deep = `${'['.repeat(6_000)}"bottom"${']'.repeat(6_000)}`;
    const raw = (body: string, url: string) => h.app.inject({ method: 'POST', url, headers: { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' }, payload: body });
    const before = await taskCount();
    const res = await raw(`{"agent":"analyst","input":${deep}}`, '/api/v1/tasks');
    assert.equal(res.statusCode, 400);
    assert.equal(JSON.parse(res.body).error.code, 'VALIDATION_FAILED');
    assert.equal(await taskCount(), before);
    const replica = await h.register('analyst');
    const task = await h.submit({ agent: 'analyst' });
    const [l] = await h.lease(replica);
    const done = await raw(`{"replicaId":"${replica}","result":${deep}}`, `/api/v1/assignments/${l!.assignmentId}/complete`);
    assert.equal(done.statusCode, 400);
    assert.equal((await h.task(task.id)).status, 'dispatched', 'nothing changed');
    await h.api('POST', `/assignments/${l!.assignmentId}/complete`, { replicaId: replica, result: null });
  });

  it('a pin to an unknown replica, or to another agent\'s replica, is refused', async () => {
    assert.equal((await h.api('POST', '/tasks', { agent: 'analyst', replica: 'no-such-replica' })).body.error.code, 'UNKNOWN_REPLICA');
    await h.agent({ name: 'other-kind' });
    const foreign = await h.register('other-kind');
    const res = await h.api('POST', '/tasks', { agent: 'analyst', replica: foreign });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'UNKNOWN_REPLICA');
  });

  it('NUL characters are refused in any field, so no store ever sees one', async () => {
    const before = await taskCount();
    for (const body of [{ agent: 'analyst', input: { note: 'a\u0000b' } }, { agent: 'analyst', correlation: { caseId: 'x\u0000' } }, { agent: 'analyst', input: { ['k\u0000']: 1 } }]) {
      const res = await h.api('POST', '/tasks', body);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
    }
    assert.equal(await taskCount(), before);
    const task = await h.submit({ agent: 'analyst' });
    const cancel = await h.api('POST', `/tasks/${task.id}/cancel`, { reason: 'stop\u0000now' });
    assert.equal(cancel.status, 400);
    assert.equal((await h.task(task.id)).status, 'pending');
  });

  it('malformed JSON is 400 INVALID_JSON', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: `Bearer ${'test-admin-token-0123456789'}`, 'content-type': 'application/json' }, payload: '{"agent": "analyst",' });
    assert.equal(res.statusCode, 400);
    assert.equal(JSON.parse(res.body).error.code, 'INVALID_JSON');
  });

  it('an oversized body is 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await h.api('POST', '/tasks', { agent: 'analyst', input: 'x'.repeat(70 * 1024) });
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('a non-JSON content type is 415', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'text/plain' }, payload: 'hello' });
    assert.equal(res.statusCode, 415);
    assert.equal(JSON.parse(res.body).error.code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('bad query strings are 400', async () => {
    assert.equal((await h.api('GET', '/tasks?status=exploded')).body.error.code, 'VALIDATION_FAILED');
    assert.equal((await h.api('GET', '/tasks?limit=0')).status, 400);
    assert.equal((await h.api('GET', '/tasks?priority=12')).status, 400);
    assert.equal((await h.api('GET', '/tasks/x?waitMs=-1')).status, 400);
  });

  it('unknown ids are 404 with a specific code', async () => {
    assert.equal((await h.api('GET', '/tasks/nope')).body.error.code, 'TASK_NOT_FOUND');
    assert.equal((await h.api('POST', '/tasks/nope/cancel')).body.error.code, 'TASK_NOT_FOUND');
    assert.equal((await h.api('GET', '/agents/nope')).body.error.code, 'AGENT_NOT_FOUND');
    assert.equal((await h.api('POST', '/assignments/nope/complete', { replicaId: 'r' })).body.error.code, 'ASSIGNMENT_NOT_FOUND');
    assert.equal((await h.api('POST', '/workers/nope/lease', { max: 1, waitMs: 0 })).body.error.code, 'REPLICA_NOT_FOUND');
    assert.equal((await h.api('POST', '/workers/register', { agent: 'nope' })).body.error.code, 'UNKNOWN_AGENT');
    const route = await h.api('GET', '/nothing-here');
    assert.equal(route.status, 404);
    assert.equal(route.body.error.code, 'NOT_FOUND');
  });
});

describe('tasks', () => {
  it('keeps correlation, traceparent and parent lineage, and returns them', async () => {
    const parent = await h.submit({ agent: 'analyst', type: 'investigate' });
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await h.agent({ name: 'clerk', level: 2 });
    const child = await h.submit({ agent: 'clerk', parentId: parent.id, correlation: { caseId: 'C-1', alertId: 'A-9' }, traceparent: tp, input: { nested: [1, { a: null }] } });
    const got = await h.task(child.id);
    assert.deepEqual(got.correlation, { caseId: 'C-1', alertId: 'A-9' });
    assert.equal(got.traceparent, tp);
    assert.equal(got.parentId, parent.id);
    assert.deepEqual(got.input, { nested: [1, { a: null }] });
    assert.equal(parent.type, 'investigate');
    const children = await h.api('GET', `/tasks?parentId=${parent.id}`);
    assert.deepEqual(children.body.items.map((t: { id: string }) => t.id), [child.id]);
  });

  it('idempotent submit: the same key returns the same task with 200', async () => {
    const first = await h.api('POST', '/tasks', { agent: 'analyst', idempotencyKey: 'alert-77' });
    const again = await h.api('POST', '/tasks', { agent: 'analyst', idempotencyKey: 'alert-77', priority: 9 });
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.body.priority, 5);
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => h.api('POST', '/tasks', { agent: 'analyst', idempotencyKey: 'burst-1' })));
    assert.equal(new Set(concurrent.map((r) => r.body.id)).size, 1);
    assert.equal(concurrent.filter((r) => r.status === 201).length, 1);
  });

  it('lists with filters and cursor pagination, newest first, without gaps or repeats', async () => {
    await h.agent({ name: 'pager' });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await h.submit({ agent: 'pager', priority: i % 2 === 0 ? 2 : 8 })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: Array<{ id: string }>; nextCursor: string | null } } = await h.api('GET', `/tasks?agent=pager&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      seen.push(...page.body.items.map((t) => t.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, [...ids].reverse());
    const high = await h.api('GET', '/tasks?agent=pager&priority=8');
    assert.equal(high.body.items.length, 3);
    const multi = await h.api('GET', '/tasks?agent=pager&status=pending&status=running');
    assert.equal(multi.body.items.length, 7);
  });

  it('batch submit validates everything before writing anything', async () => {
    const before = await taskCount();
    const bad = await h.api('POST', '/tasks/batch', { tasks: [{ agent: 'analyst' }, { agent: 'ghost' }] });
    assert.equal(bad.status, 422);
    assert.equal(await taskCount(), before);
    const ok = await h.api('POST', '/tasks/batch', { tasks: [{ agent: 'analyst' }, { agent: 'analyst', priority: 9 }] });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.items.length, 2);
    assert.equal(await taskCount(), before + 2);
  });
});

describe('agents', () => {
  it('create, read, patch, delete; duplicates and deletes with open work are refused', async () => {
    const created = await h.api('POST', '/agents', { name: 'threat-hunter', capabilities: ['hunt'], maxConcurrency: 3, level: 2, toolDomains: ['siem'], concurrencyLimits: { 'host:vllm-1': 3 } });
    assert.equal(created.status, 201);
    assert.equal(created.body.maxConcurrency, 3);
    assert.equal((await h.api('POST', '/agents', { name: 'threat-hunter' })).body.error.code, 'AGENT_EXISTS');
    assert.equal((await h.api('POST', '/agents', { name: 'bad name!' })).status, 400);
    const patched = await h.api('PATCH', '/agents/threat-hunter', { maxAttempts: 5, retry: { baseDelayMs: 200 } });
    assert.equal(patched.body.maxAttempts, 5);
    assert.equal(patched.body.retry.baseDelayMs, 200);
    assert.deepEqual(patched.body.capabilities, ['hunt'], 'unpatched fields stay');
    assert.equal((await h.api('PATCH', '/agents/threat-hunter', { name: 'x' })).status, 400);
    const names = (await h.api('GET', '/agents')).body.items.map((a: { name: string }) => a.name);
    assert.ok(names.includes('threat-hunter'));
    const task = await h.submit({ agent: 'threat-hunter' });
    assert.equal((await h.api('DELETE', '/agents/threat-hunter')).body.error.code, 'AGENT_IN_USE');
    await h.api('POST', `/tasks/${task.id}/cancel`);
    assert.equal((await h.api('DELETE', '/agents/threat-hunter')).status, 204);
    assert.equal((await h.api('GET', '/agents/threat-hunter')).status, 404);
  });
});

describe('events as JSON pages', () => {
  it('pages stored events in order, with filters, continuing from lastSeq', async () => {
    await h.agent({ name: 'pager-events' });
    for (let i = 0; i < 5; i++) await h.submit({ agent: 'pager-events' });
    const seen: number[] = [];
    let after = 0;
    for (let guard = 0; guard < 100; guard++) {
      const page = await h.api('GET', `/events/page?agent=pager-events&type=task.created&limit=2&after=${after}`);
      assert.equal(page.status, 200);
      seen.push(...page.body.items.map((e: { seq: number }) => e.seq));
      assert.ok(page.body.items.every((e: { type: string; agent: string }) => e.type === 'task.created' && e.agent === 'pager-events'));
      if (!page.body.more) break;
      after = page.body.lastSeq;
    }
    assert.equal(seen.length, 5);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
    assert.equal((await h.api('GET', '/events/page?limit=0')).status, 400);
  });
});

describe('shutdown', () => {
  it('answers 503 SHUTTING_DOWN in the API error shape while closing', async () => {
    const closing = await buildApp({ engine: h.engine, log: pino({ level: 'silent' }), state: { shuttingDown: true } });
    const res = await closing.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: 'Bearer test-admin-token-0123456789' }, payload: { agent: 'analyst' } });
    assert.equal(res.statusCode, 503);
    assert.equal(JSON.parse(res.body).error.code, 'SHUTTING_DOWN');
    assert.equal((await closing.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
    await closing.close();
  });
});

describe('openapi', () => {
  it('serves a document that lists every route with its schemas and the error table', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = JSON.parse(res.body);
    assert.equal(doc.openapi, '3.1.0');
    for (const path of ['/api/v1/tasks', '/api/v1/tasks/{id}', '/api/v1/tasks/{id}/cancel', '/api/v1/agents/{name}/assign', '/api/v1/workers/{replicaId}/lease', '/api/v1/assignments/{assignmentId}/complete', '/api/v1/events']) {
      assert.ok(doc.paths[path], `${path} documented`);
    }
    const priority = doc.paths['/api/v1/tasks'].post.requestBody.content['application/json'].schema.properties.priority;
    assert.deepEqual([priority.anyOf[0].enum, priority.anyOf[1].maximum], [['P0', 'P1', 'P2', 'P3'], 9]);
    assert.ok(doc.paths['/api/v1/reports/delegation'].get, 'the delegation report documented');
    assert.equal(doc['x-error-codes'].TASK_NOT_FOUND, 404);
  });
});
