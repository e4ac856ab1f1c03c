// The worker coalesces the reports of one event-loop turn (docs/protocol.md §4 Batch reports,
// §11 Batches), over both transports, against a real in-process server whose frames and
// requests are observed on the server's side (socket frames) or at the worker's fetch (HTTP):
// completions released in one turn leave as one batch; batches are split to stay within the
// server's maxMessageBytes; a server that does not announce batches (an older one, simulated
// by removing `maxBatchItems` from its answers) gets each report alone; a batch the server
// refuses as a whole has its reports sent again alone, and nothing is lost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { WebSocket as ServerSocket } from 'ws';
import { createWorker, Flotilla, type FlotillaWorker, type Json, type TaskView, type WorkerOptions } from '../src/index.ts';
import { DEFAULT_CONFIG } from '../../server/src/config/config.ts';
import { startServer, type RunningServer } from '../../server/src/server.ts';
import { TOKEN } from '../../server/test/helpers/harness.ts';

const LIMIT = 64 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'flotilla-batching-'));
let server: RunningServer;
let client: Flotilla;
const workers: FlotillaWorker[] = [];
/** Every frame the server received on a worker socket, with its size, by agent (from its hello). */
const frames = new Map<string, Array<{ bytes: number; frame: Record<string, any> }>>();

before(async () => {
  server = await startServer({
    config: {
      ...DEFAULT_CONFIG, port: 0, databaseUrl: join(dir, 'f.db'), adminToken: TOKEN, bodyLimitBytes: LIMIT,
      leaseMs: 5_000, replicaTtlMs: 10_000, reaperIntervalMs: 100,
    },
    log: pino({ level: 'silent' }),
  });
  server.app.websocketServer.on('connection', (ws: ServerSocket) => {
    let seen: Array<{ bytes: number; frame: Record<string, any> }> | null = null;
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(String(data)) as Record<string, any>;
      if (frame.op === 'hello') frames.set(frame.agent, seen = frames.get(frame.agent) ?? []);
      seen?.push({ bytes: data.length, frame });
    });
  });
  client = new Flotilla({ url: server.url, token: TOKEN });
});
after(async () => {
  await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 100 })));
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The reports a socket frame carries: its items, or itself. */
const reportsOf = (frame: Record<string, any>): Array<Record<string, any>> => frame.op === 'batch' ? frame.items : [frame];

/** Removes `maxBatchItems` from a server's answers, as a server older than batches sends them. */
function strip(text: string): string {
  const frame = JSON.parse(text) as { result?: { maxBatchItems?: unknown }; maxBatchItems?: unknown };
  if (frame.result && typeof frame.result === 'object') delete frame.result.maxBatchItems;
  delete frame.maxBatchItems;
  return JSON.stringify(frame);
}

/** What the worker's socket receives, and optionally a change to what it sends. */
function observedSocket(o: { older?: boolean; received: string[]; rewrite?: (text: string) => string }): WorkerOptions['WebSocket'] {
  class Observed extends WebSocket {
    override set onmessage(fn: ((this: WebSocket, e: MessageEvent) => unknown) | null) {
      super.onmessage = fn === null ? null : (e: MessageEvent) => {
        o.received.push(String(e.data));
        fn.call(this, new MessageEvent('message', { data: o.older ? strip(String(e.data)) : e.data }));
      };
    }
    override get onmessage(): ((this: WebSocket, e: MessageEvent) => unknown) | null {
      return super.onmessage;
    }
    override send(data: string): void {
      super.send(o.rewrite ? o.rewrite(data) : data);
    }
  }
  return Observed as unknown as WorkerOptions['WebSocket'];
}

/** The worker's HTTP requests (method, path, body), with an older server's register answer if asked, and a refusal of batches if asked. */
function observedFetch(o: { older?: boolean; requests: Array<{ path: string; body: any }>; refuseBatches?: boolean }): typeof fetch {
  return async (input, init) => {
    const url = new URL(String(input));
    o.requests.push({ path: `${init?.method ?? 'GET'} ${url.pathname.replace('/api/v1', '')}`, body: typeof init?.body === 'string' ? JSON.parse(init.body) : null });
    if (o.refuseBatches && url.pathname.endsWith('/reports')) {
      return new Response(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }), { status: 404, headers: { 'content-type': 'application/json' } });
    }
    const res = await fetch(input, init);
    if (!(o.older && url.pathname.endsWith('/workers/register'))) return res;
    const text = await res.text();
    assert.match(text, /"maxBatchItems":\d+/, 'this server announces batches (the field is removed for the test)');
    return new Response(strip(text), { status: res.status, headers: res.headers });
  };
}

let seq = 0;

/**
 * `n` tasks whose handlers all wait until the last of them has started, so their completions
 * are written in one turn; resolves with the tasks once terminal. `result(i)` is each one's result.
 */
async function gatedRun(transport: 'websocket' | 'http', n: number, extra: Partial<WorkerOptions>, result: (i: number) => Json = (i) => ({ i })): Promise<{ agent: string; worker: FlotillaWorker; done: TaskView[] }> {
  const agent = `batching-${transport}-${++seq}`;
  await client.agents.create({ name: agent, maxConcurrency: n });
  let started = 0;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const worker = createWorker({
    url: server.url, token: TOKEN, agent, transport, concurrency: n, leaseWaitMs: 1_000, log: () => {},
    handler: async (task) => {
      if (++started === n) open();
      await gate;
      return result((task.input as { i: number }).i);
    },
    ...extra,
  });
  workers.push(worker);
  await worker.start();
  const submitted = await client.tasks.submitMany(Array.from({ length: n }, (_, i) => ({ agent, input: { i } })));
  const done = await Promise.all(submitted.map((s) => client.tasks.wait(s.task.id, { timeoutMs: 10_000 })));
  return { agent, worker, done };
}

describe('the worker coalesces the reports of one turn', () => {
  it('over the socket: completions written in one turn leave as one batch frame; replies come back coalesced', async () => {
    const received: string[] = [];
    const { agent, done } = await gatedRun('websocket', 5, { WebSocket: observedSocket({ received }) });
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    const seen = frames.get(agent)!;
    const completing = seen.filter((f) => reportsOf(f.frame).some((r) => r.op === 'complete'));
    assert.equal(completing.length, 1, `one frame carries the completions: ${JSON.stringify(completing.map((f) => f.frame.op))}`);
    assert.equal(completing[0]!.frame.op, 'batch');
    // The starts too, here: over the socket the handlers run without waiting for them, so all ten were written in one turn.
    assert.deepEqual(reportsOf(completing[0]!.frame).filter((r) => r.op === 'complete').length, 5);
    assert.ok(received.some((text) => text.startsWith('{"replies":')), 'the server coalesced its replies');
  });

  it('over the socket: a server that does not announce batches gets each report alone, and never sends replies frames', async () => {
    const received: string[] = [];
    const { agent, done } = await gatedRun('websocket', 5, { WebSocket: observedSocket({ older: true, received }) });
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    const seen = frames.get(agent)!;
    assert.equal(seen.filter((f) => f.frame.op === 'batch').length, 0);
    assert.equal(seen.filter((f) => f.frame.op === 'complete').length, 5);
    assert.ok(!received.some((text) => text.startsWith('{"replies":')));
  });

  it('over the socket: batches are split to stay within maxMessageBytes', async () => {
    // Five results of about 20 KB: more than one 64 KiB frame holds, less than one each.
    const { agent, worker, done } = await gatedRun('websocket', 5, {}, (i) => ({ i, blob: 'x'.repeat(20_000) }));
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    // Its replies: the server may finish the tasks a moment before the worker reads them.
    for (const until = Date.now() + 5_000; worker.stats.completed < 5 && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
    assert.equal(worker.stats.completed, 5);
    const seen = frames.get(agent)!;
    const completing = seen.filter((f) => reportsOf(f.frame).some((r) => r.op === 'complete'));
    assert.ok(completing.length >= 2 && completing.length < 5, `split into ${completing.length} frames`);
    assert.ok(completing.some((f) => f.frame.op === 'batch'));
    for (const f of seen) assert.ok(f.bytes <= LIMIT, `a frame of ${f.bytes} bytes`);
    assert.equal(seen.filter((f) => f.frame.op === 'hello').length, 1, 'no reconnection (no 1009)');
  });

  it('over the socket: a batch refused as a whole has its reports sent again alone; none is lost', async () => {
    let mangled = 0;
    const rewrite = (text: string): string => {
      if (!text.startsWith('{"op":"batch"') || mangled > 0) return text;
      mangled++;
      return text.replace('{"op":"batch"', '{"op":"batch","unknown":1');
    };
    const { agent, done } = await gatedRun('websocket', 5, { WebSocket: observedSocket({ received: [], rewrite }) });
    assert.equal(mangled, 1);
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    const seen = frames.get(agent)!;
    const batches = seen.filter((f) => f.frame.op === 'batch');
    assert.equal(batches.length, 1, 'no batch after the refused one');
    assert.equal(seen.filter((f) => f.frame.op === 'complete').length, 5, 'each completion sent again alone');
  });

  const ofPath = <R extends { path: string }>(requests: R[], suffix: string): R[] => requests.filter((r) => r.path.startsWith('POST ') && r.path.endsWith(suffix));

  it('over HTTP: completions written in one turn go as one report batch', async () => {
    const requests: Array<{ path: string; body: any }> = [];
    const { done } = await gatedRun('http', 5, { fetch: observedFetch({ requests }) });
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    assert.equal(ofPath(requests, '/complete').length, 0, 'no completion on its own route');
    const completing = ofPath(requests, '/reports').filter((r) => r.body.items.some((i: { op: string }) => i.op === 'complete'));
    assert.equal(completing.length, 1);
    assert.deepEqual(completing[0]!.body.items.map((i: { op: string }) => i.op), Array(5).fill('complete'));
    assert.match(completing[0]!.path, /^POST \/workers\/[^/]+\/reports$/);
  });

  it('over HTTP: a server that does not announce batches gets each report on its route', async () => {
    const requests: Array<{ path: string; body: any }> = [];
    const { done } = await gatedRun('http', 5, { fetch: observedFetch({ older: true, requests }) });
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    assert.equal(ofPath(requests, '/reports').length, 0);
    assert.equal(ofPath(requests, '/complete').length, 5);
  });

  it('over HTTP: a node without the batch route (404) gets the same reports alone; none is lost', async () => {
    const requests: Array<{ path: string; body: any }> = [];
    const { done } = await gatedRun('http', 5, { fetch: observedFetch({ requests, refuseBatches: true }) });
    assert.deepEqual(done.map((t) => t.status), Array(5).fill('completed'));
    assert.equal(ofPath(requests, '/reports').length, 1, 'one refused batch, then none');
    assert.equal(ofPath(requests, '/start').length, 5);
    assert.equal(ofPath(requests, '/complete').length, 5);
  });
});
