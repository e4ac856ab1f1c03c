// `flotilla worker` running the examples against a real server process: the echo agent, the
// fan-out agent (children joined), the flaky agent (retry, then the dead-letter queue), a
// clean drain on SIGTERM, and the documented exit codes of a worker that cannot start (1: the
// server refused it, e.g. a wrong token; 3: no server reached), over both transports.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Flotilla } from '@flotilla/sdk';
import { TOKEN } from './helpers/harness.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const example = (name: string) => fileURLToPath(new URL(`../../../examples/${name}.ts`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-worker-'));
let server: ServerProcess;
let client: Flotilla;
const workers: ChildProcess[] = [];

function runWorker(file: string, agent: string, concurrency = 2, extra: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker', example(file), '--agent', agent, '--concurrency', String(concurrency), ...extra], {
    env: { ...process.env, FLOTILLA_URL: server.url, FLOTILLA_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
  return child;
}

before(async () => {
  server = await startServerProcess({ database: join(dir, 'f.db') });
  client = new Flotilla({ url: server.url, token: TOKEN });
  // fan-out delegates to echo: echo is a level below it.
  await client.agents.create({ name: 'echo', maxConcurrency: 4, level: 2 });
  await client.agents.create({ name: 'fan-out' });
  await client.agents.create({ name: 'flaky', maxAttempts: 2, retry: { baseDelayMs: 50, maxDelayMs: 100 } });
});
after(async () => {
  for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
  await server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('flotilla worker with the examples', () => {
  it('echo and fan-out: children are spawned, completed and joined', { timeout: 30_000 }, async () => {
    runWorker('echo', 'echo', 4);
    runWorker('fan-out', 'fan-out');
    const echo = await client.tasks.submit({ agent: 'echo', input: { text: 'hi' } });
    assert.deepEqual((await client.tasks.wait(echo.id, { timeoutMs: 15_000 })).result, { echo: { text: 'hi' } });
    const fan = await client.tasks.submit({ agent: 'fan-out', input: { items: ['a', 'b', 'c'] } });
    const done = await client.tasks.wait(fan.id, { timeoutMs: 20_000 });
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { results: [{ echo: 'a' }, { echo: 'b' }, { echo: 'c' }] });
    const children = [];
    for await (const t of client.tasks.list({ parentId: fan.id })) children.push(t);
    assert.equal(children.length, 3);
  });

  it('flaky: a retryable failure is retried; bad input and exhausted attempts land in the dead-letter queue', { timeout: 30_000 }, async () => {
    runWorker('flaky', 'flaky');
    const retried = await client.tasks.submit({ agent: 'flaky', input: { failTimes: 1 } });
    const bad = await client.tasks.submit({ agent: 'flaky', input: { bad: true } });
    const exhausted = await client.tasks.submit({ agent: 'flaky', input: { failTimes: 5 } });
    const [a, b, c] = await Promise.all([retried, bad, exhausted].map((t) => client.tasks.wait(t.id, { timeoutMs: 20_000 })));
    assert.equal(a!.status, 'completed');
    assert.deepEqual(a!.result, { succeededOnAttempt: 2 });
    assert.equal(b!.status, 'failed');
    assert.equal(b!.error?.code, 'BAD_INPUT');
    assert.equal(b!.attempt, 1);
    assert.equal(c!.status, 'failed');
    assert.equal(c!.attempt, 2);
    assert.equal(c!.error?.code, 'UPSTREAM_UNAVAILABLE');
    const dead = [];
    for await (const t of client.tasks.list({ status: 'failed', agent: 'flaky' })) dead.push(t.id);
    assert.deepEqual(dead.sort(), [bad.id, exhausted.id].sort());
  });

  it('SIGTERM drains the worker and it exits 0', { timeout: 20_000 }, async () => {
    const child = runWorker('echo', 'echo');
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    for (let i = 0; i < 100 && !err.includes('serving agent'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(err.includes('serving agent "echo" with concurrency 2 over websocket'), err);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('--transport http serves over the long-poll protocol', { timeout: 20_000 }, async () => {
    const child = runWorker('echo', 'echo', 1, ['--transport', 'http']);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    for (let i = 0; i < 100 && !err.includes('serving agent'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(err.includes('over http'), err);
    const task = await client.tasks.submit({ agent: 'echo', input: { via: 'http' } });
    assert.deepEqual((await client.tasks.wait(task.id, { timeoutMs: 15_000 })).result, { echo: { via: 'http' } });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('refuses a module without a handler, a missing --agent, a bad --transport, a capability the agent lacks', async () => {
    const run = (args: string[]) => new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, [CLI, 'worker', ...args], { env: { ...process.env, FLOTILLA_URL: server.url, FLOTILLA_TOKEN: TOKEN }, stdio: 'ignore' });
      c.once('exit', (code) => resolve(code));
    });
    assert.equal(await run([example('echo')]), 2);
    assert.equal(await run([fileURLToPath(new URL('./helpers/tcp-proxy.ts', import.meta.url)), '--agent', 'echo']), 2);
    assert.equal(await run([example('echo'), '--agent', 'echo', '--transport', 'carrier-pigeon']), 2);
    assert.notEqual(await run([example('echo'), '--agent', 'echo', '--capabilities', 'gpu']), 0);
  });

  it('a wrong token exits 1 and an unreachable server exits 3, each in one line, over WebSocket and HTTP', { timeout: 60_000 }, async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const run = (args: string[], env: Record<string, string>) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'worker', example('echo'), '--agent', 'echo', ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0, stderr });
      });
    });
    const wrong = { FLOTILLA_URL: server.url, FLOTILLA_TOKEN: 'not-the-right-token-0123456789' };
    const nowhere = { FLOTILLA_URL: closedUrl, FLOTILLA_TOKEN: TOKEN };
    const [wsWrong, httpWrong, wsNowhere, httpNowhere] = await Promise.all([
      run([], wrong), run(['--transport', 'http'], wrong), run([], nowhere), run(['--transport', 'http'], nowhere),
    ]);
    const unauthenticated = /^flotilla: UNAUTHENTICATED: .*; check --token or FLOTILLA_TOKEN/;
    const refused = `flotilla: cannot reach the server at ${closedUrl}: connection refused (ECONNREFUSED); is the server running? npm start starts one; --url or FLOTILLA_URL says where it is`;
    for (const [name, r, code, line] of [
      ['websocket, wrong token', wsWrong, 1, unauthenticated], ['http, wrong token', httpWrong, 1, unauthenticated],
      ['websocket, unreachable', wsNowhere, 3, refused], ['http, unreachable', httpNowhere, 3, refused],
    ] as const) {
      assert.equal(r.code, code, `${name}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${name}: one line, no stack:\n${r.stderr}`);
      if (typeof line === 'string') assert.equal(lines[0], line, name);
      else assert.match(lines[0]!, line, name);
    }
  });
});
