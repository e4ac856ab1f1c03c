// The client commands of the `flotilla` CLI (submit, get, ls, cancel, retry, agents, events)
// run as real processes against a real server process, including their exit codes: submit
// with every task option, agents create / update / delete with every agent field.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serverApi, type CliResult } from './helpers/cli-process.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';


describe('flotilla client commands', () => {
  let dir: string;
  let server: ServerProcess;

  const cli = (...args: string[]) => runCli(server.url, args);
  const api = (method: string, path: string, body?: unknown) => serverApi(server.url, method, path, body);

  /** Registers a replica of `agent` and leases its next task (long-polling up to 10 s). */
  async function leaseOne(agent: string): Promise<{ replicaId: string; assignmentId: string; taskId: string }> {
    const replicaId = (await api('POST', '/workers/register', { agent })).replica.id as string;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const { assignments } = await api('POST', `/workers/${replicaId}/lease`, { max: 1, waitMs: 2_000 });
      if (assignments.length > 0) return { replicaId, assignmentId: assignments[0].assignmentId, taskId: assignments[0].task.id };
    }
    throw new Error(`no task for ${agent}`);
  }

  function json(r: CliResult): any {
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
    server = await startServerProcess({ database: join(dir, 'flotilla.db') });
    await Promise.all(['cli-main', 'cli-retry', 'cli-wait-ok', 'cli-wait-fail', 'cli-options', 'cli-idle', 'cli-ask', 'cli-sla'].map((name) =>
      api('POST', '/agents', { name, description: `${name} agent`, capabilities: ['cli'] })));
  });

  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('submit, get, ls --status, cancel and events', async () => {
    const submitted = json(await cli('submit', '--agent', 'cli-main', '--input', '{"q":1}', '--priority', '7', '--type', 'ask', '--json'));
    assert.equal(submitted.status, 'pending');
    assert.equal(submitted.priority, 7);
    assert.deepEqual(submitted.input, { q: 1 });
    const other = json(await cli('submit', '--agent', 'cli-main', '--json'));

    const [table, asJson, cancelled] = await Promise.all([
      cli('get', submitted.id),
      cli('get', submitted.id, '--json'),
      cli('cancel', other.id, '--reason', 'not needed', '--json'),
    ]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^id: +${submitted.id}$`, 'm'));
    assert.match(table.stdout, /^status: +pending$/m);
    assert.match(table.stdout, /^input: +\{"q":1\}$/m);
    assert.equal(json(asJson).id, submitted.id);
    assert.equal(json(cancelled).status, 'cancelled');

    const [pendingLs, cancelledLs, lsTable, events, eventsJson, allEvents] = await Promise.all([
      cli('ls', '--status', 'pending', '--agent', 'cli-main', '--json'),
      cli('ls', '--status', 'cancelled', '--json'),
      cli('ls', '--agent', 'cli-main'),
      cli('events', '--task', submitted.id),
      cli('events', '--task', submitted.id, '--json'),
      cli('events', '--json'),
    ]);
    assert.deepEqual(json(pendingLs).map((t: any) => t.id), [submitted.id]);
    assert.deepEqual(json(cancelledLs).map((t: any) => t.id), [other.id]);
    assert.equal(lsTable.code, 0, lsTable.stderr);
    assert.match(lsTable.stdout, /^ID +STATUS +PRIORITY +AGENT +ATTEMPT +UPDATED$/m);
    assert.match(lsTable.stdout, new RegExp(`^${submitted.id} +pending +7 +cli-main +0/\\d+ `, 'm'));
    assert.match(lsTable.stdout, new RegExp(`^${other.id} +cancelled `, 'm'));
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /task\.created/);
    assert.deepEqual(json(eventsJson).map((e: any) => e.type), ['task.created']);
    const types = json(allEvents).filter((e: any) => e.taskId === other.id).map((e: any) => e.type);
    assert.ok(types.includes('task.created') && types.includes('task.cancelled'), types.join());
  });

  it('retry of a failed task', async () => {
    const task = json(await cli('submit', '--agent', 'cli-retry', '--json'));
    const leased = await leaseOne('cli-retry');
    assert.equal(leased.taskId, task.id);
    await api('POST', `/assignments/${leased.assignmentId}/fail`, { replicaId: leased.replicaId, error: { message: 'boom', code: 'BOOM' }, retryable: false });
    const failed = await cli('get', task.id);
    assert.match(failed.stdout, /^status: +failed$/m);
    assert.match(failed.stdout, /^error: +BOOM: boom$/m);
    const retried = json(await cli('retry', task.id, '--json'));
    assert.equal(retried.status, 'pending');
  });

  it('answer: a task asking for input shows the question, a wrong answer exits 1, a right one resumes it', async () => {
    const task = json(await cli('submit', '--agent', 'cli-ask', '--json'));
    const leased = await leaseOne('cli-ask');
    assert.equal(leased.taskId, task.id);
    await api('POST', `/assignments/${leased.assignmentId}/ask`, { replicaId: leased.replicaId, prompt: 'Ship it?', schema: { type: 'boolean' } });
    const shown = await cli('get', task.id);
    assert.match(shown.stdout, /^status: +input_required$/m);
    assert.match(shown.stdout, /^asks: +Ship it\?$/m);
    assert.match(shown.stdout, /^answer schema: +\{"type":"boolean"\}$/m);
    assert.deepEqual(json(await cli('ls', '--status', 'input_required', '--json')).map((t: any) => t.id), [task.id]);
    const wrong = await cli('answer', task.id, '--input', '"yes"');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /VALIDATION_FAILED/);
    const usage = await cli('answer', task.id, '--input', 'yes');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--input is not valid JSON/);
    assert.equal((await cli('answer', task.id)).code, 2);
    const answered = json(await cli('answer', task.id, '--input', 'true', '--json'));
    assert.equal(answered.status, 'pending');
    const resumed = await leaseOne('cli-ask');
    assert.equal(resumed.taskId, task.id);
  });

  it('agents ls and agents show', async () => {
    const [ls, lsJson, bare, show, showJson] = await Promise.all([
      cli('agents', 'ls'), cli('agents', '--json'), cli('agents'), cli('agents', 'show', 'cli-main'), cli('agents', 'show', 'cli-main', '--json'),
    ]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^NAME +STATE +RUNTIME/m);
    assert.match(ls.stdout, /^cli-main +(offline|idle|active|overloaded) +pull /m);
    assert.equal(bare.stdout, ls.stdout);
    const names = json(lsJson).map((a: any) => a.name);
    for (const n of ['cli-main', 'cli-retry']) assert.ok(names.includes(n), names.join());
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^name: +cli-main$/m);
    assert.match(show.stdout, /^description: +cli-main agent$/m);
    const detail = json(showJson);
    assert.equal(detail.agent.name, 'cli-main');
    assert.ok(Array.isArray(detail.replicas));
    assert.equal(typeof detail.stats.totals.pending, 'number');
  });

  it('submit --wait: exit 0 with the result when completed, 1 when it fails', async () => {
    const okRun = cli('submit', '--agent', 'cli-wait-ok', '--input', '{"n":2}', '--wait', '--wait-timeout', '15s');
    const failRun = cli('submit', '--agent', 'cli-wait-fail', '--wait', '--json');
    const [ok, bad] = await Promise.all([leaseOne('cli-wait-ok'), leaseOne('cli-wait-fail')]);
    await api('POST', `/assignments/${ok.assignmentId}/start`, { replicaId: ok.replicaId });
    await api('POST', `/assignments/${ok.assignmentId}/complete`, { replicaId: ok.replicaId, result: { answer: 42 } });
    await api('POST', `/assignments/${bad.assignmentId}/fail`, { replicaId: bad.replicaId, error: { message: 'nope' }, retryable: false });

    const done = await okRun;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /^status: +completed$/m);
    assert.match(done.stdout, /^result: +\{"answer":42\}$/m);
    assert.match(done.stderr, /task\.created/);
    assert.match(done.stderr, /task\.completed/);

    const failed = await failRun;
    assert.equal(failed.code, 1, failed.stderr);
    const task = JSON.parse(failed.stdout);
    assert.equal(task.status, 'failed');
    assert.equal(task.error.message, 'nope');
  });

  it('submit sets the task\'s own options: timeout, attempts, delay or run-at, priority, keys, correlation, site, replica', async () => {
    const replicaId = (await api('POST', '/workers/register', { agent: 'cli-options', site: 'lab' })).replica.id as string;
    const before = Date.now();
    const delayed = await cli('submit', '--agent', 'cli-options', '--timeout', '90s', '--max-attempts', '7', '--delay', '1h', '--priority', '8',
      '--idempotency-key', 'cli-opt-1', '--concurrency-key', 'host:gpu-1', '--correlation', 'ticket=OPS-12', '--correlation', 'env=a=b',
      '--site', 'lab', '--type', 'probe', '--json');
    const [again, scheduled, pinned] = await Promise.all([
      cli('submit', '--agent', 'cli-options', '--idempotency-key', 'cli-opt-1', '--json'),
      cli('submit', '--capabilities', 'cli', '--run-at', '2099-01-31T09:00:00Z', '--json'),
      cli('submit', '--agent', 'cli-options', '--replica', replicaId, '--delay', '1h'),
    ]);
    const t = json(delayed);
    assert.deepEqual(
      [t.timeoutMs, t.maxAttempts, t.priority, t.idempotencyKey, t.concurrencyKey, t.correlation, t.site, t.type],
      [90_000, 7, 8, 'cli-opt-1', 'host:gpu-1', { ticket: 'OPS-12', env: 'a=b' }, 'lab', 'probe'],
    );
    const runAt = Date.parse(t.runAt);
    assert.ok(runAt >= before + 3_600_000 - 1_000 && runAt <= Date.now() + 3_600_000 + 1_000, t.runAt);
    assert.equal(json(again).id, t.id, 'the same idempotency key answers the first task');
    const s = json(scheduled);
    assert.equal(s.runAt, '2099-01-31T09:00:00.000Z');
    assert.deepEqual(s.capabilities, ['cli']);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.match(pinned.stdout, new RegExp(`^pinned to: +${replicaId}$`, 'm'));
  });

  it('submit: the wait timeout is --wait-timeout (it implies --wait); the old --timeout-ms is refused with the new names', async () => {
    const [waited, old, bare, both] = await Promise.all([
      cli('submit', '--agent', 'cli-idle', '--wait-timeout', '1s'),
      cli('submit', '--agent', 'cli-idle', '--wait', '--timeout-ms', '1000'),
      cli('submit', '--agent', 'cli-idle', '--timeout', '30'),
      cli('submit', '--agent', 'cli-idle', '--delay', '1m', '--run-at', '2099-01-01T00:00:00Z'),
    ]);
    assert.equal(waited.code, 1, waited.stderr);
    assert.match(waited.stdout, /^status: +pending$/m);
    assert.match(waited.stderr, /is still pending after --wait-timeout 1s; it goes on/);
    assert.equal(old.code, 2);
    assert.match(old.stderr, /^flotilla: --timeout-ms is gone: .*--wait-timeout D.*--timeout D/m);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /--timeout must be a duration like .* \(a number needs a unit: 30s, 30ms/);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--delay and --run-at cannot be combined/);
    const idle = await api('GET', '/tasks?agent=cli-idle');
    assert.equal(idle.items.length, 1, 'only the --wait-timeout submit created a task');
  });

  it('agents create, update and delete, with every field the agent API takes', async () => {
    const created = json(await cli('agents', 'create', 'cli-new', '--description', 'made by the CLI', '--capabilities', 'a,b', '--capabilities', 'c',
      '--max-concurrency', '3', '--max-attempts', '4', '--timeout', '10m', '--level', '2', '--tool-domains', 'web,files',
      '--concurrency-limit', 'host:vllm-1=2', '--concurrency-limit', 'gpu=1', '--retry-base-delay', '2s', '--retry-max-delay', '5m',
      '--runtime', 'pull', '--tools', 'web:*,gh:read', '--max-depth', '2', '--a2a-example', 'hi', '--a2a-input-modes', 'text/plain', '--json'));
    const expected = {
      name: 'cli-new', description: 'made by the CLI', capabilities: ['a', 'b', 'c'], maxConcurrency: 3, maxAttempts: 4, timeoutMs: 600_000,
      level: 2, toolDomains: ['web', 'files'], tools: ['web:*', 'gh:read'], maxDepth: 2, concurrencyLimits: { 'host:vllm-1': 2, gpu: 1 }, retry: { baseDelayMs: 2_000, maxDelayMs: 300_000 }, runtime: 'pull',
      a2aSkill: { inputModes: ['text/plain'], outputModes: [], examples: ['hi'] },
    };
    for (const [field, value] of Object.entries(expected)) assert.deepEqual(created[field], value, field);
    const stored = await api('GET', '/agents/cli-new');
    for (const [field, value] of Object.entries(expected)) assert.deepEqual(stored[field], value, field);

    const updated = await cli('agents', 'update', 'cli-new', '--max-concurrency', '5', '--capabilities', '', '--retry-max-delay', '1m');
    assert.equal(updated.code, 0, updated.stderr);
    assert.match(updated.stdout, /^max concurrency: +5$/m);
    const after = await api('GET', '/agents/cli-new');
    assert.deepEqual([after.maxConcurrency, after.capabilities, after.retry, after.description, after.maxAttempts],
      [5, [], { baseDelayMs: 2_000, maxDelayMs: 60_000 }, 'made by the CLI', 4], 'only the fields given change');

    // A submit narrows the agent's tools; the task shows what it may use.
    const narrowed = await cli('submit', '--agent', 'cli-new', '--allow-tools', 'web:*', '--deny-tools', 'web:delete');
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.match(narrowed.stdout, /^tools: +web:\*, !web:delete$/m);
    const outside = await cli('submit', '--agent', 'cli-new', '--allow-tools', 'fs:read');
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /TOOL_OUTSIDE_CEILING/);
    const cleared = await cli('agents', 'update', 'cli-new', '--tools', '', '--max-depth', '', '--a2a-skill', 'off', '--json');
    assert.deepEqual([json(cleared).tools, json(cleared).maxDepth, json(cleared).a2aSkill], [[], null, null], '"" clears the tools and the depth limit; off unpublishes');
    const republished = await cli('agents', 'update', 'cli-new', '--a2a-skill', 'on');
    assert.match(republished.stdout, /^A2A skill: +published$/m);
    const mixed = await cli('agents', 'update', 'cli-new', '--a2a-skill', 'off', '--a2a-example', 'x');
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /--a2a-skill off cannot be combined with --a2a-example/);
    await api('POST', `/tasks/${/^id: +(\S+)$/m.exec(narrowed.stdout)![1]}/cancel`);

    const task = await api('POST', '/tasks', { agent: 'cli-new' });
    const [nothing, badRuntime, exists, inUse] = await Promise.all([
      cli('agents', 'update', 'cli-new'),
      cli('agents', 'create', 'cli-bad', '--runtime', 'lambda'),
      cli('agents', 'create', 'cli-new'),
      cli('agents', 'delete', 'cli-new'),
    ]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /nothing to update/);
    assert.equal(badRuntime.code, 2);
    assert.match(badRuntime.stderr, /unknown runtime "lambda"/);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /AGENT_EXISTS/);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /AGENT_IN_USE/);

    await api('POST', `/tasks/${task.id}/cancel`);
    const deleted = await cli('agents', 'delete', 'cli-new');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, 'deleted agent cli-new\n');
    const gone = await cli('agents', 'show', 'cli-new');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /AGENT_NOT_FOUND/);
  });

  it('exit codes: 1 for a server error, 2 for usage errors, 3 when unreachable', async () => {
    const [notFound, badInput, unknownFlag, missingArg, noTarget, badStatus, unreachable] = await Promise.all([
      cli('get', 'nope'),
      cli('submit', '--agent', 'cli-main', '--input', '{not json'),
      cli('ls', '--frobnicate'),
      cli('get'),
      cli('submit'),
      cli('ls', '--status', 'sleeping'),
      cli('get', 'x', '--url', 'http://127.0.0.1:1'),
    ]);
    assert.equal(notFound.code, 1);
    assert.match(notFound.stderr, /^flotilla: TASK_NOT_FOUND: /);
    assert.equal(badInput.code, 2);
    assert.match(badInput.stderr, /--input is not valid JSON/);
    assert.equal(unknownFlag.code, 2);
    assert.match(unknownFlag.stderr, /--frobnicate/);
    assert.equal(missingArg.code, 2);
    assert.match(missingArg.stderr, /missing argument ID/);
    assert.equal(noTarget.code, 2);
    assert.equal(badStatus.code, 2);
    assert.equal(unreachable.code, 3);
    assert.match(unreachable.stderr, /cannot reach the server/);
  });

  it('submit --priority P1, --deadline and --sla; ls --sla; report as a table and as JSON', async () => {
    const p1 = json(await cli('submit', '--agent', 'cli-sla', '--priority', 'P1', '--json'));
    assert.deepEqual([p1.priority, p1.sla.band, p1.sla.state], [7, 'P1', 'ok']);
    const deadline = new Date(Date.now() + 3_600_000).toISOString();
    const own = json(await cli('submit', '--agent', 'cli-sla', '--priority', 'p3', '--deadline', deadline, '--json'));
    assert.deepEqual([own.priority, own.sla.deadline], [2, deadline]);
    const quick = json(await cli('submit', '--agent', 'cli-sla', '--sla', '90m', '--json'));
    assert.equal(Date.parse(quick.sla.deadline) - Date.parse(quick.createdAt), 90 * 60_000);
    const shown = await cli('get', p1.id);
    assert.match(shown.stdout, /priority: +7 \(P1\)/);
    assert.match(shown.stdout, /sla: +ok, deadline /);
    for (const bad of [['--priority', 'P7'], ['--priority', '10'], ['--deadline', deadline, '--sla', '1h']]) {
      const r = await cli('submit', '--agent', 'cli-sla', ...bad);
      assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
    }
    assert.match((await cli('submit', '--agent', 'cli-sla', '--priority', 'P7')).stderr, /--priority must be 0\.\.9 or one of P0, P1, P2, P3/);
    assert.deepEqual(json(await cli('ls', '--sla', 'violated', '--json')), []);
    assert.equal((await cli('ls', '--sla', 'late')).code, 2);
    // The report: one completed attempt of cli-sla.
    const { replicaId, assignmentId } = await leaseOne('cli-sla');
    await api('POST', `/assignments/${assignmentId}/complete`, { replicaId, result: null });
    const report = json(await cli('report', '--since', '1h', '--json'));
    const row = report.agents.find((r: { agent: string }) => r.agent === 'cli-sla');
    assert.deepEqual([row.assigned, row.completed, row.failed, row.inFlight, row.sla.met, row.reliability], [1, 1, 0, 0, 1, 1]);
    assert.ok(Date.parse(report.until) - Date.parse(report.since) >= 3_600_000);
    const table = await cli('report');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /AGENT +ASSIGNED +COMPLETED +FAILED +IN FLIGHT +MEDIAN +P95 +SLA MET +SLA VIOLATED +RELIABILITY +TOKENS +COST USD/);
    assert.match(table.stdout, /cli-sla +1 +1 +0 +0 +\S+ +\S+ +1 +0 +100\.0%/);
    assert.equal((await cli('report', '--since', 'yesterday')).code, 2);
  });

  it('--help of every command exits 0 and prints its usage', async () => {
    const commands = [['submit'], ['get'], ['ls'], ['cancel'], ['retry'], ['agents'], ['agents', 'ls'], ['agents', 'show'], ['agents', 'create'],
      ['agents', 'update'], ['agents', 'delete'], ['events'], ['report']];
    // A few at a time: thirteen CLI processes at once on a loaded 2-core machine outlast the timeout.
    const results: Awaited<ReturnType<typeof cli>>[] = [];
    for (let i = 0; i < commands.length; i += 3) results.push(...await Promise.all(commands.slice(i, i + 3).map((c) => cli(...c, '--help'))));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, `${commands[i]!.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage:/);
      assert.match(r.stdout, /--url URL/);
    });
    const submit = results[0]!.stdout;
    assert.match(submit, /--timeout D +execution timeout of each attempt/);
    assert.match(submit, /--wait-timeout D +stop waiting after D/);
    assert.match(results[5]!.stdout, /flotilla agents create NAME/);
    assert.match(results[5]!.stdout, /--concurrency-limit K=N/);
    const top = await cli('help');
    assert.match(top.stdout, /flotilla submit/);
    assert.match(top.stdout, /flotilla serve/);
    assert.match(top.stdout, /flotilla agents create NAME/);
    assert.match(top.stdout, /flotilla keys bootstrap/);
    assert.match(top.stdout, /flotilla report \[--since T\]/);
    assert.match(submit, /--priority N +0\.\.9, 9 most urgent \(default 5\), or an alias:\n +P0=9, P1=7, P2=5, P3=2/);
  });
});
