// Flotilla as an A2A agent in a real `flotilla serve` process (SQLite file), driven by the
// A2A SDK's clients over HTTP: a task sent over A2A survives a restart of the server, and a
// client resubscribing to it after the restart (to another port, from the card) follows it
// to its result, which a worker speaking Flotilla's HTTP protocol produces. A2A task ids are
// Flotilla task ids and nothing of an A2A task lives in the server's memory (decisions.md 80).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TaskState, type StreamResponse, type Task } from '@a2a-js/sdk';
import { data, text, userMessage, v03Client, v1Client } from './helpers/a2a-clients.ts';
import { HttpWorker } from './helpers/http-worker.ts';
import { callServer, startServerProcess, type ServerProcess } from './helpers/server-process.ts';

function stateOf(e: StreamResponse): TaskState | undefined {
  if (e.payload?.$case === 'task') return e.payload.value.status?.state;
  if (e.payload?.$case === 'statusUpdate') return e.payload.value.status?.state;
  return undefined;
}

describe('Flotilla as an A2A agent, a real server process', () => {
  it('a task sent over A2A (v1.0 and v0.3) survives a restart; a resubscription after it follows the task to its result', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-a2a-'));
    const database = join(dir, 'flotilla.db');
    let server: ServerProcess | null = await startServerProcess({ database });
    let worker: HttpWorker | null = null;
    t.after(async () => {
      await worker?.stop();
      await server?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    assert.equal((await callServer(server.url, 'POST', '/agents', { name: 'echo', capabilities: ['echo'], a2aSkill: {} })).status, 201);

    const v1 = await v1Client(server.url);
    assert.deepEqual((await v1.getAgentCard()).skills.map((s) => s.id), ['echo']);
    const queued = await v1.sendMessage({
      tenant: '', message: userMessage([data({ n: 1 })], { metadata: { skill: 'echo' } }), metadata: undefined,
      configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true },
    }) as Task;
    assert.equal(queued.status?.state, TaskState.TASK_STATE_SUBMITTED);
    const legacy = await v03Client(server.url);
    const queuedLegacy = await legacy.sendMessage({
      tenant: '', message: userMessage([text('two')]), metadata: undefined,
      configuration: { acceptedOutputModes: [], taskPushNotificationConfig: undefined, returnImmediately: true },
    }) as Task;

    // A restart: the A2A tasks are Flotilla tasks in the database, read back as they were.
    assert.equal(await server.kill('SIGTERM'), 0);
    server = await startServerProcess({ database });
    const after = await v1Client(server.url);
    const got = await after.getTask({ tenant: '', id: queued.id });
    assert.deepEqual([got.id, got.status?.state], [queued.id, TaskState.TASK_STATE_SUBMITTED]);
    assert.equal((await (await v03Client(server.url)).getTask({ tenant: '', id: queuedLegacy.id })).status?.state, TaskState.TASK_STATE_SUBMITTED);

    // Resubscribed after the restart, then the work is done: the stream follows it to the end.
    const url = server.url;
    const events: StreamResponse[] = [];
    for await (const e of after.resubscribeTask({ tenant: '', id: queued.id })) {
      events.push(e);
      if (events.length === 1) {
        worker = new HttpWorker({ urls: () => [url], agent: 'echo', maxConcurrency: 2, handle: async (task) => ({ echo: task.input }) });
        worker.start();
      }
    }
    assert.equal(events.at(-1)?.payload?.$case, 'statusUpdate');
    assert.equal(stateOf(events[0]!), TaskState.TASK_STATE_SUBMITTED);
    assert.equal(stateOf(events.at(-1)!), TaskState.TASK_STATE_COMPLETED);
    const artifact = events.find((e) => e.payload?.$case === 'artifactUpdate');
    assert.deepEqual(artifact?.payload?.$case === 'artifactUpdate' ? artifact.payload.value.artifact?.parts[0]?.content : null, { $case: 'data', value: { echo: { n: 1 } } });
    // The v0.3 client's task, done by the same worker, reads completed with its result.
    const deadline = Date.now() + 30_000;
    let done = await after.getTask({ tenant: '', id: queuedLegacy.id });
    while (done.status?.state !== TaskState.TASK_STATE_COMPLETED && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      done = await after.getTask({ tenant: '', id: queuedLegacy.id });
    }
    assert.deepEqual(done.artifacts[0]?.parts[0]?.content, { $case: 'data', value: { echo: 'two' } });
  });
});
