// Live events over a real socket: Server-Sent Events, in order, resumable without gaps or
// duplicates, filterable.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULT_CONFIG } from '../src/config/config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { TOKEN } from './helpers/harness.ts';

interface Sse { id: number; event: string; data: { seq: number; type: string; taskId: string | null } }

/** Reads an SSE stream until `until` says stop (or the timeout passes). */
async function readEvents(url: string, headers: Record<string, string>, until: (events: Sse[]) => boolean, timeoutMs = 5_000): Promise<Sse[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}`, ...headers }, signal: controller.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const events: Sse[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body!) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]));
        if (fields.id) events.push({ id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data!) });
      }
      if (until(events)) break;
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

let server: RunningServer;
const dir = mkdtempSync(join(tmpdir(), 'flotilla-sse-'));
before(async () => {
  server = await startServer({ config: { ...DEFAULT_CONFIG, port: 0, databaseUrl: join(dir, 'f.db'), adminToken: TOKEN }, log: pino({ level: 'silent' }) });
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function post(path: string, body: unknown): Promise<any> {
  const res = await fetch(`${server.url}/api/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return res.json();
}

describe('events over SSE', () => {
  it('streams live events in order, resumes after Last-Event-ID exactly once, and filters', async () => {
    await post('/agents', { name: 'echo' });
    const live = readEvents(`${server.url}/api/v1/events?type=task.created`, {}, (e) => e.length >= 3);
    await new Promise((r) => setTimeout(r, 50));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await post('/tasks', { agent: 'echo', input: { i } })).id);
    const got = await live;
    assert.deepEqual(got.map((e) => e.data.taskId), ids);
    assert.ok(got.every((e) => e.event === 'task.created'));
    assert.ok(got[0]!.id < got[1]!.id && got[1]!.id < got[2]!.id);

    // Everything so far, from the start: agent.created + 3 × task.created.
    const all = await readEvents(`${server.url}/api/v1/events`, {}, (e) => e.length >= 4);
    assert.deepEqual(all.map((e) => e.event), ['agent.created', 'task.created', 'task.created', 'task.created']);

    // Resume from the second event: exactly the later ones, nothing twice, plus new ones.
    const resumeFrom = all[1]!.id;
    for (let i = 0; i < 2; i++) ids.push((await post('/tasks', { agent: 'echo' })).id);
    const resumed = await readEvents(`${server.url}/api/v1/events`, { 'last-event-id': String(resumeFrom) }, (e) => e.length >= 4);
    assert.deepEqual(resumed.map((e) => e.data.taskId), ids.slice(1));
    assert.equal(new Set(resumed.map((e) => e.id)).size, resumed.length);
    const viaQuery = await readEvents(`${server.url}/api/v1/events?after=${resumeFrom}`, {}, (e) => e.length >= 4);
    assert.deepEqual(viaQuery.map((e) => e.id), resumed.map((e) => e.id));

    // One task's events only.
    const one = await readEvents(`${server.url}/api/v1/events?taskId=${ids[2]}`, {}, (e) => e.length >= 1, 1_000);
    assert.deepEqual(one.map((e) => e.data.taskId), [ids[2]]);
  });

  it('announces registry and replica changes live, not only task events', async () => {
    const live = readEvents(`${server.url}/api/v1/events?type=agent.updated&type=replica.connected&type=replica.disconnected`, {}, (e) => e.length >= 3);
    await new Promise((r) => setTimeout(r, 50));
    await fetch(`${server.url}/api/v1/agents/echo`, { method: 'PATCH', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ description: 'echoes' }) });
    const registered = await post('/workers/register', { agent: 'echo' });
    assert.equal(registered.replicaTtlMs, 30_000);
    assert.ok(registered.heartbeatIntervalMs <= 10_000);
    const gone = await fetch(`${server.url}/api/v1/workers/${registered.replica.id}/deregister`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(gone.status, 204);
    const got = await live;
    assert.deepEqual(got.map((e) => e.event), ['agent.updated', 'replica.connected', 'replica.disconnected']);
  });

  it('rejects a malformed Last-Event-ID', async () => {
    const res = await fetch(`${server.url}/api/v1/events`, { headers: { authorization: `Bearer ${TOKEN}`, 'last-event-id': 'abc' } });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'VALIDATION_FAILED');
  });
});
