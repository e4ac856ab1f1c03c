// Reports above the server's message limit (issue 11, defect 9), over both worker transports,
// against a real in-process server with a 64 KiB body limit. A result too big to send must
// fail its own attempt for good (RESULT_TOO_LARGE) and leave the worker working: no
// reconnect loop over the socket, no dropped report over HTTP. Two paths: the pre-check
// against the `maxMessageBytes` the server announces, and, for a server that announces none
// (an older one, simulated by removing the field from its answer), the server's own refusal
// (413 over HTTP, close 1009 over the socket).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createWorker, Flotilla, NonRetryableError, type FlotillaWorker, type Handler, type Json, type TaskView, type WorkerOptions } from '../src/index.ts';
import { DEFAULT_CONFIG } from '../../server/src/config/config.ts';
import { startServer, type RunningServer } from '../../server/src/server.ts';
import { TOKEN } from '../../server/test/helpers/harness.ts';

const LIMIT = 64 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'flotilla-limits-'));
let server: RunningServer;
let client: Flotilla;
const workers: FlotillaWorker[] = [];

before(async () => {
  server = await startServer({
    config: {
      ...DEFAULT_CONFIG, port: 0, databaseUrl: join(dir, 'f.db'), adminToken: TOKEN, bodyLimitBytes: LIMIT,
      leaseMs: 2_000, replicaTtlMs: 5_000, reaperIntervalMs: 100, retry: { baseDelayMs: 50, maxDelayMs: 100 },
    },
    log: pino({ level: 'silent' }),
  });
  client = new Flotilla({ url: server.url, token: TOKEN });
});
after(async () => {
  await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 100 })));
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

type Kind = 'big-result' | 'multibyte-result' | 'fits-result' | 'big-details' | 'big-progress' | 'small' | 'exact';

/** One handler for every case: what it does is chosen by the task's input. */
const handler: Handler = async (task, ctx): Promise<Json> => {
  const { kind } = task.input as { kind: Kind };
  switch (kind) {
    case 'big-result': return { blob: 'x'.repeat(LIMIT + 10_000) };
    // Fewer characters than the limit, more bytes (é is two bytes in UTF-8).
    case 'multibyte-result': return { blob: 'é'.repeat(LIMIT / 2 + 100) };
    // Just under the limit in bytes, whatever the envelope.
    case 'fits-result': return { blob: 'é'.repeat(LIMIT / 2 - 200) };
    case 'big-details': throw new NonRetryableError('the input is bad', { code: 'BAD_INPUT', details: { dump: 'y'.repeat(LIMIT + 10_000) } });
    case 'big-progress':
      await ctx.progress(50, 'z'.repeat(LIMIT + 10_000));
      return { progressed: true };
    case 'small': return { small: true };
    // Over HTTP the report is `{"replicaId":…,"result":…}`: a result that makes it exactly
    // LIMIT + extra bytes (with 2- and 4-byte characters, so characters ≠ bytes).
    case 'exact': {
      const { extra } = task.input as { extra: number };
      const envelope = Buffer.byteLength(JSON.stringify({ replicaId: ctx.replicaId, result: '😀' }));
      const room = LIMIT + extra - envelope;
      const result = '😀' + 'é'.repeat(Math.floor(room / 2)) + 'a'.repeat(room % 2);
      assert.equal(Buffer.byteLength(JSON.stringify({ replicaId: ctx.replicaId, result })), LIMIT + extra);
      return result;
    }
  }
};

async function terminal(id: string, timeoutMs = 10_000): Promise<TaskView> {
  return client.tasks.wait(id, { timeoutMs });
}

async function connections(agent: string): Promise<number> {
  let n = 0;
  for await (const _ of client.events.list({ agent, types: ['replica.connected'] })) n++;
  return n;
}

/** A server that does not announce `maxMessageBytes` (older than the field): the field is removed from its answers. */
function olderServer(transport: 'websocket' | 'http'): Partial<WorkerOptions> {
  const strip = (text: string): string => {
    const frame = JSON.parse(text) as { result?: { maxMessageBytes?: unknown }; maxMessageBytes?: unknown };
    if (frame.result && typeof frame.result === 'object') delete frame.result.maxMessageBytes;
    delete frame.maxMessageBytes;
    return JSON.stringify(frame);
  };
  if (transport === 'http') {
    return {
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (!String(input).endsWith('/workers/register')) return res;
        const text = await res.text();
        assert.match(text, /"maxMessageBytes":65536/, 'this server announces its limit (the field is removed for the test)');
        return new Response(strip(text), { status: res.status, headers: res.headers });
      },
    };
  }
  class OlderServerSocket extends WebSocket {
    override set onmessage(fn: ((this: WebSocket, e: MessageEvent) => unknown) | null) {
      super.onmessage = fn === null ? null : (e: MessageEvent) => fn.call(this, new MessageEvent('message', { data: strip(String(e.data)) }));
    }
    override get onmessage(): ((this: WebSocket, e: MessageEvent) => unknown) | null {
      return super.onmessage;
    }
  }
  // Node's WebSocket takes `{ headers }` as its second argument (undici), as the worker's type says.
  return { WebSocket: OlderServerSocket as unknown as WorkerOptions['WebSocket'] };
}

for (const transport of ['websocket', 'http'] as const) describe(`reports above the size limit, over ${transport}`, () => {
  let seq = 0;
  async function setup(extra: Partial<WorkerOptions> = {}): Promise<{ agent: string; worker: FlotillaWorker; logs: Array<{ level: string; message: string; data?: Record<string, unknown> }> }> {
    const agent = `limits-${transport}-${++seq}`;
    await client.agents.create({ name: agent, maxAttempts: 3 });
    const logs: Array<{ level: string; message: string; data?: Record<string, unknown> }> = [];
    const worker = createWorker({
      url: server.url, token: TOKEN, agent, handler, transport, concurrency: 1, leaseWaitMs: 1_000,
      log: (level, message, data) => logs.push({ level, message, ...(data ? { data } : {}) }),
      ...extra,
    });
    workers.push(worker);
    await worker.start();
    return { agent, worker, logs };
  }

  it('a result over the announced limit fails that attempt for good (RESULT_TOO_LARGE); the worker carries on', async () => {
    const { agent, worker } = await setup();
    const big = await client.tasks.submit({ agent, input: { kind: 'big-result' } });
    const small = await client.tasks.submit({ agent, input: { kind: 'small' } });
    const [a, b] = await Promise.all([terminal(big.id), terminal(small.id)]);
    assert.equal(a.status, 'failed');
    assert.equal(a.attempt, 1, 'not retried');
    assert.equal(a.error?.code, 'RESULT_TOO_LARGE');
    assert.match(a.error?.message ?? '', new RegExp(`\\b${LIMIT}\\b`), 'the message names the limit');
    assert.match(a.error?.message ?? '', /\b7\d{4} bytes\b/, 'and the size');
    assert.equal(b.status, 'completed');
    assert.deepEqual(b.result, { small: true });
    assert.equal(await connections(agent), 1, 'one connection: no reconnect loop');
    assert.equal(worker.stats.failed, 1);
    assert.equal(worker.stats.completed, 1);
  });

  it('sizes are bytes of the JSON sent: multibyte text over the limit fails, under it completes', async () => {
    const { agent } = await setup();
    const over = await client.tasks.submit({ agent, input: { kind: 'multibyte-result' } });
    const under = await client.tasks.submit({ agent, input: { kind: 'fits-result' } });
    const [a, b] = await Promise.all([terminal(over.id), terminal(under.id)]);
    assert.equal(a.status, 'failed');
    assert.equal(a.error?.code, 'RESULT_TOO_LARGE');
    assert.equal(a.attempt, 1);
    assert.equal(b.status, 'completed');
    assert.equal((b.result as { blob: string }).blob.length, LIMIT / 2 - 200);
    // A check that counted characters would have sent the multibyte result: the server closes
    // the socket (1009) and the worker reconnects.
    assert.equal(await connections(agent), 1);
  });

  it('huge error details and a huge progress message are checked too', async () => {
    const { agent } = await setup();
    const details = await client.tasks.submit({ agent, input: { kind: 'big-details' } });
    const progress = await client.tasks.submit({ agent, input: { kind: 'big-progress' } });
    const small = await client.tasks.submit({ agent, input: { kind: 'small' } });
    const [a, b, c] = await Promise.all([terminal(details.id), terminal(progress.id), terminal(small.id)]);
    assert.equal(a.status, 'failed');
    assert.equal(a.attempt, 1);
    assert.equal(a.error?.code, 'RESULT_TOO_LARGE');
    assert.match(a.error?.message ?? '', /the input is bad/, 'the handler\'s own message is kept');
    assert.equal((a.error?.details as { error?: { code?: string } } | undefined)?.error?.code, 'BAD_INPUT', 'and its code, in the details');
    // The progress went without its message (the lease was still renewed); the task completed.
    assert.equal(b.status, 'completed');
    assert.deepEqual(b.result, { progressed: true });
    assert.equal(c.status, 'completed');
    assert.equal(await connections(agent), 1);
  });

  if (transport === 'http') it('the limit is exact: a report of exactly maxMessageBytes is sent, one byte more is not', async () => {
    const { agent, logs } = await setup();
    const exact = await client.tasks.submit({ agent, input: { kind: 'exact', extra: 0 } });
    const over = await client.tasks.submit({ agent, input: { kind: 'exact', extra: 1 } });
    const [a, b] = await Promise.all([terminal(exact.id), terminal(over.id)]);
    assert.equal(a.status, 'completed', JSON.stringify(a.error));
    assert.equal(b.status, 'failed');
    assert.equal(b.error?.code, 'RESULT_TOO_LARGE');
    assert.match(b.error?.message ?? '', new RegExp(`${LIMIT + 1} bytes as sent.*${LIMIT} bytes per message`));
    assert.ok(!logs.some((l) => l.message.includes('413')), 'refused before sending, not by the server');
  });

  it(`a server that announces no limit: its refusal (${transport === 'http' ? '413' : 'close 1009'}) fails the attempt the same way, once`, async () => {
    const { agent, worker, logs } = await setup(olderServer(transport));
    const big = await client.tasks.submit({ agent, input: { kind: 'big-result' } });
    const small = await client.tasks.submit({ agent, input: { kind: 'small' } });
    const [a, b] = await Promise.all([terminal(big.id), terminal(small.id)]);
    assert.equal(a.status, 'failed');
    assert.equal(a.attempt, 1, 'not retried');
    assert.equal(a.error?.code, 'RESULT_TOO_LARGE');
    assert.equal(b.status, 'completed');
    // It was the server that refused it (no pre-check without a limit)...
    assert.ok(logs.some((l) => l.level === 'warn' && l.message.includes(transport === 'http' ? '413' : '1009')), 'the server refused the report');
    // ...and the socket it closed (1009) is reconnected once: the refused report is not sent again.
    const expected = transport === 'websocket' ? 2 : 1;
    assert.equal(await connections(agent), expected);
    assert.equal(worker.stats.completed, 1);
    const further = await client.tasks.submit({ agent, input: { kind: 'small' } });
    assert.equal((await terminal(further.id)).status, 'completed', 'the worker still works');
    assert.equal(await connections(agent), expected);
  });
});
