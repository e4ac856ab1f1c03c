// Dependencies, workflows and `then` through the HTTP API and the worker protocol, in process,
// on both stores (docs/workflows.md): a chain of three agents with mapped inputs, a failed
// dependency failing (or, with onDependencyFailure "run", still running) its dependent, what
// a submit refuses (and that it then wrote nothing), dependencies the submitter cannot see,
// the sweep deciding what a lost look left blocked, a restart while blocked, and cancels.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import pino from 'pino';
import type { LeasedTask, TaskView } from '@flotilla/sdk';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { Engine } from '../src/engine/engine.ts';
import { openStore } from '../src/store/open-store.ts';
import { buildApp } from '../src/http/app.ts';

const stores = ['sqlite', ...(await postgresAvailable() ? ['postgres' as const] : [])] as const;

/** Polls until `check` holds (the look after a commit runs just after the answer). */
async function until<T>(what: string, read: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const store of stores) describe(`workflows (${store})`, () => {
  let h: Harness;
  const replicas: Record<string, string> = {};
  beforeEach(async () => {
    h = await harness({ store, config: { leaseMs: 30_000, replicaTtlMs: 60_000, allowEqualLevel: true } });
    for (const name of ['fetcher', 'summarizer', 'translator']) {
      await h.agent({ name, maxConcurrency: 4, maxAttempts: 1 });
      replicas[name] = await h.register(name);
    }
  });
  afterEach(() => h.close());

  async function leaseOne(agent: string): Promise<LeasedTask> {
    const [leased] = await h.lease(replicas[agent]!);
    assert.ok(leased, `a task for ${agent}`);
    return leased;
  }
  async function complete(agent: string, leased: LeasedTask, result: unknown): Promise<void> {
    const res = await h.api('POST', `/assignments/${leased.assignmentId}/complete`, { replicaId: replicas[agent], result });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  async function fail(agent: string, leased: LeasedTask): Promise<void> {
    const res = await h.api('POST', `/assignments/${leased.assignmentId}/fail`, { replicaId: replicas[agent], error: { message: 'upstream 500' }, retryable: false });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  const status = (id: string) => until(`task ${id}`, () => h.task(id), () => true);
  const settled = (id: string, s: TaskView['status']) => until(`task ${id} ${s}`, () => h.task(id), (t) => t.status === s);
  async function count(): Promise<number> {
    return (await h.api('GET', '/tasks?limit=200')).body.items.length;
  }

  it('a chain of three agents (workflow refs, inputFrom and then) runs with mapped inputs', async () => {
    const res = await h.api('POST', '/workflows', {
      tasks: [
        { ref: 'fetch', agent: 'fetcher', input: { url: 'http://127.0.0.1/doc' } },
        {
          ref: 'summary', agent: 'summarizer', dependsOn: ['#fetch'],
          inputFrom: { text: { $from: '#fetch/result/body' }, lang: 'en', words: { $from: '#fetch/result/words', default: 100 } },
          then: { agent: 'translator', input: { summary: { $from: '/result/summary' }, to: 'fr' } },
        },
      ],
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const { ids, items } = res.body as { ids: Record<string, string>; items: TaskView[] };
    assert.deepEqual(Object.keys(ids).sort(), ['fetch', 'summary']);
    assert.deepEqual(items.map((t) => t.status), ['pending', 'blocked']);
    const thenId = items[1]!.thenTaskId!;
    assert.ok(thenId);
    const blocked = await h.task(ids.summary!);
    assert.deepEqual([blocked.waitingReason, blocked.waitingFor, blocked.dependsOn, blocked.ref], ['dependencies', [ids.fetch], [ids.fetch], 'summary']);
    assert.deepEqual((await h.api('GET', '/tasks?status=blocked')).body.items.map((t: TaskView) => t.id).sort(), [ids.summary, thenId].sort());
    // Blocked tasks hold no slot: only the first is leased.
    const first = await leaseOne('fetcher');
    assert.equal(first.task.id, ids.fetch);
    assert.equal(first.task.dependencies, undefined);
    assert.deepEqual(await h.lease(replicas.summarizer!), []);
    await complete('fetcher', first, { body: 'a long text' });
    await settled(ids.summary!, 'pending');
    const second = await leaseOne('summarizer');
    assert.deepEqual(second.task.input, { text: 'a long text', lang: 'en', words: 100 });
    assert.deepEqual(second.task.dependencies, [{ id: ids.fetch, ref: 'fetch', status: 'completed', result: { body: 'a long text' }, error: null }]);
    await complete('summarizer', second, { summary: 'short' });
    await settled(thenId, 'pending');
    const third = await leaseOne('translator');
    assert.equal(third.task.id, thenId);
    assert.deepEqual(third.task.input, { summary: 'short', to: 'fr' });
    await complete('translator', third, 'court');
    assert.equal((await h.task(thenId)).status, 'completed');
  });

  it('a failed dependency fails its dependents down the chain; with onDependencyFailure "run" one still runs', async () => {
    const first = await h.submit({ agent: 'fetcher' });
    const strict = await h.submit({ agent: 'summarizer', dependsOn: [first.id] });
    const chained = await h.submit({ agent: 'translator', dependsOn: [strict.id] });
    const lenient = await h.submit({ agent: 'translator', dependsOn: [first.id], onDependencyFailure: 'run' });
    await fail('fetcher', await leaseOne('fetcher'));
    const failed = await settled(strict.id, 'failed');
    assert.equal(failed.error?.code, 'DEPENDENCY_FAILED');
    assert.match(failed.error!.message, new RegExp(`dependency ${first.id} failed`));
    assert.deepEqual(failed.error?.details, { dependency: first.id, ref: null, status: 'failed', error: { message: 'upstream 500' } });
    assert.equal((await settled(chained.id, 'failed')).error?.code, 'DEPENDENCY_FAILED');
    await settled(lenient.id, 'pending');
    const ran = await leaseOne('translator');
    assert.equal(ran.task.id, lenient.id);
    assert.deepEqual(ran.task.dependencies?.map((d) => [d.id, d.status, d.error?.message]), [[first.id, 'failed', 'upstream 500']]);
  });

  it('unknown ids, unknown and duplicate refs, cycles and bad templates are 400 and write nothing', async () => {
    const deep = (levels: number): unknown => {
      let v: unknown = { $from: '/result' };
      for (let i = 0; i < levels; i++) v = { x: v };
      return v;
    };
    const before = await count();
    const refusals: Array<[unknown, string, string]> = [
      [{ agent: 'fetcher', dependsOn: ['no-such-task'] }, '/tasks', 'UNKNOWN_DEPENDENCY'],
      [{ tasks: [{ agent: 'fetcher', ref: 'a' }, { agent: 'fetcher', dependsOn: ['#b'] }] }, '/workflows', 'UNKNOWN_DEPENDENCY'],
      [{ tasks: [{ agent: 'fetcher', ref: 'a' }, { agent: 'fetcher', ref: 'a' }] }, '/workflows', 'DUPLICATE_REF'],
      [{ tasks: [
        { agent: 'fetcher', ref: 'a', dependsOn: ['#c'] }, { agent: 'fetcher', ref: 'b', dependsOn: ['#a'] }, { agent: 'fetcher', ref: 'c', dependsOn: ['#b'] },
      ] }, '/workflows', 'DEPENDENCY_CYCLE'],
      [{ tasks: [{ agent: 'fetcher', ref: 'a', dependsOn: ['#a'] }] }, '/workflows', 'DEPENDENCY_CYCLE'],
      [{ tasks: [{ agent: 'fetcher', ref: 'a' }, { agent: 'fetcher', dependsOn: ['#a'], inputFrom: { x: { $from: '#zz/result' } } }] }, '/workflows', 'INVALID_TEMPLATE'],
      [{ agent: 'fetcher', then: { agent: 'translator', input: { $from: 'result' } } }, '/tasks', 'INVALID_TEMPLATE'],
      // More than a workflow may hold (100), and more dependencies than a task may name (100).
      [{ tasks: Array.from({ length: 101 }, () => ({ agent: 'fetcher' })) }, '/workflows', 'VALIDATION_FAILED'],
      [{ agent: 'fetcher', dependsOn: Array.from({ length: 101 }, (_, i) => `t${i}`) }, '/tasks', 'VALIDATION_FAILED'],
      // A template nests no deeper than an input may (64): nested deeper, walking it could overflow the stack.
      [{ agent: 'fetcher', then: { agent: 'translator', input: deep(100) } }, '/tasks', 'VALIDATION_FAILED'],
      [{ tasks: [{ agent: 'fetcher', ref: 'a' }, { agent: 'fetcher', dependsOn: ['#a'], inputFrom: deep(2_000) }] }, '/workflows', 'VALIDATION_FAILED'],
      // One valid item beside an invalid one: the whole workflow is refused.
      [{ tasks: [{ agent: 'fetcher', ref: 'ok' }, { agent: 'nobody', dependsOn: ['#ok'] }] }, '/workflows', 'UNKNOWN_AGENT'],
    ];
    for (const [body, path, code] of refusals) {
      const res = await h.api('POST', path, body);
      assert.equal(res.body?.error?.code, code, JSON.stringify(body));
      assert.equal(res.status, code === 'UNKNOWN_AGENT' ? 422 : 400);
    }
    const cycle = await h.api('POST', '/workflows', refusals[3]![0]);
    assert.deepEqual(cycle.body.error.details.cycle, ['a', 'c', 'b']);
    assert.equal(await count(), before);
  });

  it("a dependency the submitter cannot see is unknown to it", async () => {
    const alice = (await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit'] })).body.token as string;
    const bob = (await h.api('POST', '/tokens', { scopes: ['task.read', 'task.submit'] })).body.token as string;
    const hers = (await h.api('POST', '/tasks', { agent: 'fetcher' }, { authorization: `Bearer ${alice}` })).body as TaskView;
    const refused = await h.api('POST', '/tasks', { agent: 'fetcher', dependsOn: [hers.id] }, { authorization: `Bearer ${bob}` });
    assert.deepEqual([refused.status, refused.body.error.code, refused.body.error.details.unknown], [400, 'UNKNOWN_DEPENDENCY', [hers.id]]);
    const own = await h.api('POST', '/tasks', { agent: 'fetcher', dependsOn: [hers.id] }, { authorization: `Bearer ${alice}` });
    assert.equal(own.status, 201);
  });

  it('the maintenance sweep unblocks a task whose look after its dependency ended was lost', async () => {
    const first = await h.submit({ agent: 'fetcher' });
    const second = await h.submit({ agent: 'summarizer', dependsOn: [first.id], inputFrom: { $from: '/result' } });
    const leased = await leaseOne('fetcher');
    const look = h.engine.ctx.unblockDependents;
    h.engine.ctx.unblockDependents = () => {};
    try {
      await complete('fetcher', leased, 'abc');
    } finally {
      h.engine.ctx.unblockDependents = look;
    }
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await h.task(second.id)).status, 'blocked');
    assert.equal(await h.engine.unblocker.sweep(), 1);
    assert.equal((await h.task(second.id)).status, 'pending');
    assert.equal((await leaseOne('summarizer')).task.input, 'abc');
    assert.equal(await h.engine.unblocker.sweep(), 0);
  });

  it('a dependency that completed before its dependent was submitted unblocks it at once', async () => {
    const first = await h.submit({ agent: 'fetcher' });
    await complete('fetcher', await leaseOne('fetcher'), { n: 1 });
    const late = await h.submit({ agent: 'summarizer', dependsOn: [first.id], inputFrom: { n: { $from: `${first.id}/result/n` } } });
    assert.equal(late.status, 'blocked');
    await settled(late.id, 'pending');
    assert.deepEqual((await leaseOne('summarizer')).task.input, { n: 1 });
  });

  it('a dependent submitted while its dependency runs is unblocked when that completes, not by the sweep', async () => {
    // Only the look after the completion may unblock it here: the sweep that covers a lost look is taken away.
    h.engine.unblocker.sweep = async () => 0;
    const first = await h.submit({ agent: 'fetcher' });
    // Dispatched: the node keeps the head it read then, before anything depended on the task.
    const leased = await leaseOne('fetcher');
    const late = await h.submit({ agent: 'summarizer', dependsOn: [first.id], inputFrom: { n: { $from: '/result/n' } } });
    await complete('fetcher', leased, { n: 3 });
    await settled(late.id, 'pending');
    assert.deepEqual((await leaseOne('summarizer')).task.input, { n: 3 });
  });

  it("a template's #ref reads its own workflow's item, not an older dependency that had the same ref in its workflow", async () => {
    const old = (await h.api('POST', '/workflows', { tasks: [{ ref: 'fetch', agent: 'fetcher' }] })).body.ids.fetch as string;
    await complete('fetcher', await leaseOne('fetcher'), 'old');
    const res = await h.api('POST', '/workflows', { tasks: [
      { ref: 'fetch', agent: 'fetcher' },
      { ref: 'use', agent: 'summarizer', dependsOn: [old, '#fetch'], inputFrom: { got: { $from: '#fetch/result' } } },
    ] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    await complete('fetcher', await leaseOne('fetcher'), 'new');
    await settled(res.body.ids.use, 'pending');
    assert.deepEqual((await leaseOne('summarizer')).task.input, { got: 'new' });
  });

  // Two nodes need PostgreSQL.
  if (store === 'postgres') it('on PostgreSQL, a dependent submitted on another node while the dependency runs here is unblocked when it completes', async () => {
    assert.ok(h.schema);
    const first = await h.submit({ agent: 'fetcher' });
    const leased = await leaseOne('fetcher');
    // The second node takes the submit; neither node's maintenance sweep runs (the harness's interval is an hour).
    const store2 = await openStore({ url: h.schema.url });
    const engine2 = new Engine({ store: store2, config: h.config, log: pino({ level: 'silent' }) });
    await engine2.start();
    const app2 = await buildApp({ engine: engine2, log: pino({ level: 'silent' }) });
    try {
      const res = await app2.inject({ method: 'POST', url: '/api/v1/tasks', headers: { authorization: `Bearer ${TOKEN}` }, payload: { agent: 'summarizer', dependsOn: [first.id] } });
      const late = JSON.parse(res.body) as TaskView;
      assert.deepEqual([res.statusCode, late.status], [201, 'blocked']);
      await complete('fetcher', leased, 'done');
      await settled(late.id, 'pending');
    } finally {
      await app2.close();
      await engine2.stop();
      await store2.close();
    }
  });

  it('a batch answers the id of each item\'s then, as a single submit does', async () => {
    const res = await h.api('POST', '/tasks/batch', { tasks: [{ agent: 'fetcher', then: { agent: 'summarizer' } }, { agent: 'fetcher' }] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const [withThen, plain] = res.body.items as Array<{ task: TaskView }>;
    assert.ok(withThen!.task.thenTaskId);
    assert.deepEqual((await h.task(withThen!.task.thenTaskId!)).dependsOn, [withThen!.task.id]);
    assert.equal(plain!.task.thenTaskId, undefined);
  });

  it('a pointer that finds nothing, without a default, fails the dependent with DEPENDENCY_INPUT_MISSING', async () => {
    const first = await h.submit({ agent: 'fetcher', then: { agent: 'summarizer', input: { text: { $from: '/result/missing' } } } });
    await complete('fetcher', await leaseOne('fetcher'), { other: 1 });
    const failed = await settled(first.thenTaskId!, 'failed');
    assert.deepEqual([failed.error?.code, failed.error?.details], ['DEPENDENCY_INPUT_MISSING', { path: '/text', from: '/result/missing' }]);
  });

  it('a template that copies a large result past the input limit fails the dependent with DEPENDENCY_INPUT_TOO_LARGE', async () => {
    // Six copies of a 100 kB result: more than half the 1 MiB body limit.
    const copies = Array.from({ length: 6 }, () => ({ $from: '/result' }));
    const first = await h.submit({ agent: 'fetcher', then: { agent: 'summarizer', input: copies } });
    await complete('fetcher', await leaseOne('fetcher'), 'x'.repeat(100_000));
    const failed = await settled(first.thenTaskId!, 'failed');
    assert.deepEqual([failed.error?.code, failed.error?.details], ['DEPENDENCY_INPUT_TOO_LARGE', { path: '/5', from: '/result', limit: 512 * 1024 }]);
  });

  it('a requeued dependent waits for its dependencies again: it fails again while one failed, and runs with its template once they completed', async () => {
    const first = await h.submit({ agent: 'fetcher', then: { agent: 'summarizer', input: { got: { $from: '/result' } } } });
    await fail('fetcher', await leaseOne('fetcher'));
    assert.equal((await settled(first.thenTaskId!, 'failed')).error?.code, 'DEPENDENCY_FAILED');
    // Requeued first while its dependency is still failed: it fails again (it does not run without its input).
    assert.equal((await h.api('POST', `/tasks/${first.thenTaskId}/retry`, {})).status, 200);
    assert.equal((await settled(first.thenTaskId!, 'failed')).error?.code, 'DEPENDENCY_FAILED');
    assert.deepEqual(await h.lease(replicas.summarizer!), []);
    // The dependency requeued and completed, then the dependent: it runs with the mapped input.
    assert.equal((await h.api('POST', `/tasks/${first.id}/retry`, {})).status, 200);
    await complete('fetcher', await leaseOne('fetcher'), 'second try');
    assert.equal((await h.api('POST', `/tasks/${first.thenTaskId}/retry`, {})).status, 200);
    await settled(first.thenTaskId!, 'pending');
    const ran = await leaseOne('summarizer');
    assert.deepEqual([ran.task.input, ran.task.dependencies?.[0]?.status], [{ got: 'second try' }, 'completed']);
  });

  it('cancels: a blocked task; a cancelled dependency fails its dependent; a tree cancel covers blocked descendants', async () => {
    const first = await h.submit({ agent: 'fetcher' });
    const a = await h.submit({ agent: 'summarizer', dependsOn: [first.id] });
    assert.equal((await h.api('POST', `/tasks/${a.id}/cancel`, {})).status, 200);
    assert.deepEqual([(await h.task(a.id)).status, (await h.task(a.id)).waitingFor], ['cancelled', null]);
    const b = await h.submit({ agent: 'summarizer', dependsOn: [first.id] });
    assert.equal((await h.api('POST', `/tasks/${first.id}/cancel`, {})).status, 200);
    const failed = await settled(b.id, 'failed');
    assert.deepEqual([failed.error?.code, (failed.error?.details as { status: string }).status], ['DEPENDENCY_FAILED', 'cancelled']);
    // A blocked child in a tree: cancelling the root cancels it too.
    const root = await h.submit({ agent: 'fetcher' });
    const other = await h.submit({ agent: 'fetcher' });
    const child = await h.submit({ agent: 'summarizer', parentId: root.id, dependsOn: [other.id] });
    assert.equal((await h.api('POST', `/tasks/${root.id}/cancel`, {})).status, 200);
    assert.equal((await status(child.id)).status, 'cancelled');
  });

  it('a blocked task survives a restart (the same database, a new engine) and is unblocked after it', async () => {
    const first = await h.submit({ agent: 'fetcher' });
    const second = await h.submit({ agent: 'summarizer', dependsOn: [first.id], inputFrom: { got: { $from: '/result' } } });
    const leased = await leaseOne('fetcher');
    // A second engine on the same database: a reopened SQLite file after this one stops, or
    // another PostgreSQL node beside it.
    const url = h.schema ? h.schema.url : `${h.dir}/flotilla.db`;
    if (!h.schema) {
      await h.app.close();
      await h.engine.stop();
      await h.store.close();
    }
    const store2 = await openStore({ url });
    const engine2 = new Engine({ store: store2, config: h.config, log: pino({ level: 'silent' }) });
    await engine2.start();
    const app2 = await buildApp({ engine: engine2, log: pino({ level: 'silent' }) });
    try {
      const api = async (method: string, path: string, body?: unknown) => {
        const res = await app2.inject({ method: method as 'GET', url: `/api/v1${path}`, headers: { authorization: `Bearer ${TOKEN}` }, ...(body === undefined ? {} : { payload: body as object }) });
        return { status: res.statusCode, body: JSON.parse(res.body) };
      };
      assert.equal((await api('GET', `/tasks/${second.id}`)).body.status, 'blocked');
      assert.equal((await api('POST', `/assignments/${leased.assignmentId}/complete`, { replicaId: replicas.fetcher, result: 42 })).status, 200);
      const unblocked = await until('unblocked after the restart', async () => (await api('GET', `/tasks/${second.id}`)).body, (t) => t.status === 'pending');
      assert.deepEqual(unblocked.input, { got: 42 });
    } finally {
      await app2.close();
      await engine2.stop();
      await store2.close();
      if (!h.schema) {
        // The first engine and store are closed already: afterEach only removes the files.
        const dir = h.dir;
        (h as { close: () => Promise<void> }).close = async () => rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
