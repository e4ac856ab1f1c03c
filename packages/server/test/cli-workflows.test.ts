// `flotilla submit` with dependencies and a `then`, and `flotilla workflow submit FILE.json`,
// as real processes against a real server process: what they send, print, and refuse.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serverApi } from './helpers/cli-process.ts';
import { startServerProcess, type ServerProcess } from './helpers/server-process.ts';

describe('flotilla submit --depends-on / --then-agent, flotilla workflow submit', () => {
  let dir: string;
  let server: ServerProcess;
  const cli = (...args: string[]) => runCli(server.url, args);
  const api = (method: string, path: string, body?: unknown) => serverApi(server.url, method, path, body);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-workflows-'));
    server = await startServerProcess({ database: join(dir, 'flotilla.db') });
    for (const name of ['fetch', 'sum']) await api('POST', '/agents', { name });
  });
  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('submits a dependent with a then, and a workflow from a file; refuses a bad flag and an unknown dependency', async () => {
    const first = await api('POST', '/tasks', { agent: 'fetch' }) as { id: string };
    const out = await cli('submit', '--agent', 'sum', '--depends-on', first.id, '--on-dependency-failure', 'run',
      '--input-from', JSON.stringify({ x: { $from: `${first.id}/result` } }), '--then-agent', 'fetch', '--then-input', '{"y":{"$from":"/result"}}', '--json');
    assert.equal(out.code, 0, out.stderr);
    const task = JSON.parse(out.stdout) as { id: string; status: string; dependsOn: string[]; onDependencyFailure: string; thenTaskId: string };
    assert.deepEqual([task.status, task.dependsOn, task.onDependencyFailure], ['blocked', [first.id], 'run']);
    const then = await api('GET', `/tasks/${task.thenTaskId}`);
    assert.deepEqual([then.status, then.agent, then.dependsOn], ['blocked', 'fetch', [task.id]]);

    const file = join(dir, 'wf.json');
    writeFileSync(file, JSON.stringify({ tasks: [{ ref: 'a', agent: 'fetch' }, { ref: 'b', agent: 'sum', dependsOn: ['#a'] }] }));
    const wf = await cli('workflow', 'submit', file);
    assert.equal(wf.code, 0, wf.stderr);
    assert.match(wf.stdout, /#a [0-9a-f-]{36}\n#b [0-9a-f-]{36}\n$/);
    assert.match(wf.stdout, /blocked/);

    const bad = await cli('submit', '--agent', 'sum', '--depends-on', first.id, '--on-dependency-failure', 'maybe');
    assert.equal(bad.code, 2);
    const unknown = await cli('submit', '--agent', 'sum', '--depends-on', 'no-such-task');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /UNKNOWN_DEPENDENCY/);
  });
});
