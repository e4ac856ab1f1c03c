// `flotilla events --follow` as a real process against a real server process: the live
// stream in JSON lines and as a table, the --task filter, and a clean exit (code 0) on
// SIGINT and SIGTERM. No fixed sleeps: every step waits for the output line it needs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Flotilla } from '@flotilla/sdk';
import { TOKEN } from './helpers/harness.ts';
import { serverApi } from './helpers/cli-process.ts';
import { HttpWorker } from './helpers/http-worker.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** The events one task produces when a worker leases, starts, reports progress and completes it. */
const LIFECYCLE = ['task.created', 'task.dispatched', 'task.started', 'task.progress', 'task.completed'];

interface Followed {
  lines(): string[];
  stderr(): string;
  /** Resolves once `done(lines)` holds; rejects after `timeoutMs` or when the process exits first. */
  waitFor(what: string, done: (lines: string[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and resolves to the exit code (rejects if the process is still running after 5 s). */
  stop(signal: NodeJS.Signals): Promise<number | null>;
}

describe('flotilla events --follow', () => {
  let dir: string;
  let server: ServerProcess;
  let client: Flotilla;
  const children: ChildProcess[] = [];
  const workers: HttpWorker[] = [];

  function follow(...args: string[]): Followed {
    const child = spawn(process.execPath, [CLI, 'events', '--follow', ...args], {
      env: { ...process.env, FLOTILLA_URL: server.url, FLOTILLA_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })));
    // Only whole lines: a line still being written is not looked at yet.
    const lines = () => out.split('\n').slice(0, -1);
    return {
      lines,
      stderr: () => err,
      waitFor(what, done, timeoutMs = 10_000) {
        return new Promise((resolve, reject) => {
          const check = () => {
            if (!done(lines())) return;
            cleanup();
            resolve();
          };
          const timer = setTimeout(() => {
            cleanup();
            reject(new Error(`timed out waiting for ${what}; stdout:\n${out}\nstderr:\n${err}`));
          }, timeoutMs);
          const onExit = () => {
            cleanup();
            reject(new Error(`events --follow exited (${child.exitCode ?? child.signalCode}) before ${what}; stdout:\n${out}\nstderr:\n${err}`));
          };
          const cleanup = () => {
            clearTimeout(timer);
            child.stdout!.off('data', check);
            child.off('exit', onExit);
          };
          child.stdout!.on('data', check);
          child.once('exit', onExit);
          check();
        });
      },
      async stop(signal) {
        child.kill(signal);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const slow = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`events --follow still running 5 s after ${signal}; stderr:\n${err}`)), 5_000);
        });
        try {
          const { code, signal: bySignal } = await Promise.race([exited, slow]);
          assert.equal(bySignal, null, `killed by ${bySignal} instead of exiting on ${signal}`);
          return code;
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }

  const api = (method: string, path: string, body?: unknown) => serverApi(server.url, method, path, body);

  /**
   * Plays a worker of `agent` by hand for its next task: register, lease, start, progress 50%,
   * complete. Produces exactly the LIFECYCLE events for that task.
   */
  async function runOne(agent: string, expectedTaskId: string): Promise<void> {
    const replicaId = (await api('POST', '/workers/register', { agent })).replica.id as string;
    const { assignments } = await api('POST', `/workers/${replicaId}/lease`, { max: 1, waitMs: 10_000 });
    assert.equal(assignments.length, 1, `no task leased for ${agent}`);
    const { assignmentId, task } = assignments[0];
    assert.equal(task.id, expectedTaskId);
    await api('POST', `/assignments/${assignmentId}/start`, { replicaId });
    await api('POST', `/assignments/${assignmentId}/progress`, { replicaId, percent: 50, message: 'halfway' });
    await api('POST', `/assignments/${assignmentId}/complete`, { replicaId, result: { ok: true } });
  }

  function parseJsonLines(lines: string[]): any[] {
    return lines.map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        assert.fail(`not a JSON line: ${line}`);
      }
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-events-'));
    server = await startServerProcess({ database: join(dir, 'flotilla.db') });
    client = new Flotilla({ url: server.url, token: TOKEN });
    for (const name of ['ev-main', 'ev-filter', 'ev-noise']) await client.agents.create({ name });
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--json prints every event once, in order, as one JSON line each, live; SIGINT exits 0', { timeout: 30_000 }, async () => {
    const followed = follow('--json');
    // Stored events are replayed first: seeing the agents created in before() means the
    // stream is connected, so everything below arrives live.
    await followed.waitFor('the stored agent.created of ev-main', (lines) => lines.some((l) => l.includes('"agent.created"') && l.includes('"ev-main"')));

    const task = await client.tasks.submit({ agent: 'ev-main', input: { text: 'hello' } });
    await runOne('ev-main', task.id);
    await followed.waitFor(`task.completed of ${task.id}`, (lines) => lines.some((l) => l.includes(task.id) && l.includes('"task.completed"')));

    const events = parseJsonLines(followed.lines());
    const seqs = events.map((e) => e.seq as number);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `seq not increasing: ${seqs.join(',')}`);
    assert.ok(events.some((e) => e.type === 'agent.created' && e.agent === 'ev-filter'), 'stored events of other agents are followed too');
    const mine = events.filter((e) => e.taskId === task.id);
    assert.deepEqual(mine.map((e) => e.type), LIFECYCLE);
    for (const e of mine) assert.equal(e.agent, 'ev-main');
    assert.equal(mine[0].data.priority, 5);
    assert.deepEqual(mine[3].data, { percent: 50, message: 'halfway' });
    assert.equal(mine[4].data.attempt, 1);
    assert.equal(mine[4].assignmentId, mine[1].assignmentId);

    assert.equal(await followed.stop('SIGINT'), 0);
    assert.equal(followed.stderr(), '');
  });

  it('--task follows one task only, in JSON and as a table; SIGTERM and SIGINT exit 0', { timeout: 30_000 }, async () => {
    const task = await client.tasks.submit({ agent: 'ev-filter', input: { n: 1 } });
    const asJson = follow('--task', task.id, '--json');
    const asTable = follow('--task', task.id);
    // The stored task.created arrives first: both streams are connected.
    await Promise.all([
      asJson.waitFor('the stored task.created', (lines) => lines.some((l) => l.includes('"task.created"'))),
      asTable.waitFor('the stored task.created', (lines) => lines.some((l) => l.includes(' task.created '))),
    ]);

    // Other tasks, whole lifecycles, while both are following: none of it may show up.
    const worker = new HttpWorker({ urls: () => [server.url], agent: 'ev-noise', maxConcurrency: 2, handle: async (t) => ({ echo: t.input }) });
    workers.push(worker);
    worker.start();
    const noise = await Promise.all([1, 2, 3].map((i) => client.tasks.submit({ agent: 'ev-noise', input: i })));
    for (const t of noise) assert.equal((await client.tasks.wait(t.id, { timeoutMs: 10_000 })).status, 'completed');

    // The followed task's lifecycle comes after the noise, so a filter that let the noise
    // through would have printed it before this task's task.completed.
    await runOne('ev-filter', task.id);
    await Promise.all([
      asJson.waitFor('task.completed', (lines) => lines.some((l) => l.includes('"task.completed"'))),
      asTable.waitFor('task.completed', (lines) => lines.some((l) => l.includes(' task.completed '))),
    ]);

    const events = parseJsonLines(asJson.lines());
    assert.deepEqual(events.map((e) => e.type), LIFECYCLE);
    for (const e of events) assert.equal(e.taskId, task.id);
    assert.equal(events.some((e) => noise.some((t) => t.id === e.taskId)), false);

    // The table: one readable line per event, `#seq  date time  type  task=  agent=  ...`, in
    // the same order and with the same sequence numbers as the JSON.
    const rows = asTable.lines();
    assert.equal(rows.length, LIFECYCLE.length, rows.join('\n'));
    rows.forEach((row, i) => {
      const m = /^#(\d+) {2}(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) {2}(task\.[a-z]+) {2}task=(\S+) {2}agent=ev-filter(?: {2}replica=\S+)?(?: {2}(\{.*\}))?$/.exec(row);
      assert.ok(m, `not an event line: ${row}`);
      assert.equal(Number(m[1]), events[i].seq);
      assert.equal(m[2], events[i].at.replace('T', ' ').slice(0, 19));
      assert.equal(m[3], LIFECYCLE[i]);
      assert.equal(m[4], task.id);
    });
    assert.match(rows[3]!, / {2}\{"percent":50,"message":"halfway"\}$/);
    assert.doesNotMatch(rows.join('\n'), /"seq"|\{"id"/, 'the table is not JSON');

    const [jsonCode, tableCode] = await Promise.all([asJson.stop('SIGTERM'), asTable.stop('SIGINT')]);
    assert.equal(jsonCode, 0);
    assert.equal(tableCode, 0);
    assert.equal(asJson.stderr(), '');
    assert.equal(asTable.stderr(), '');
  });
});
