// The client answers the same whatever its transport (docs/decisions.md 36): `tasks.submit`
// and `tasks.submitMany` over `transport: 'websocket'` return exactly what they return over
// HTTP, against an in-process server; and the client still reads a server from before
// reply statuses, whose `submit` answered `{created, task}`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { harness, TOKEN, type Harness } from '../../server/test/helpers/harness.ts';
import { Flotilla, isFlotillaError, type FlotillaApiError, type FlotillaOptions, type TaskView } from '../src/index.ts';

let h: Harness;
let http: Flotilla;
let ws: Flotilla;

before(async () => {
  h = await harness({ config: { rateLimitPerSecond: 0 } });
  const url = await h.listen();
  await h.agent({ name: 'parity' });
  http = new Flotilla({ url, token: TOKEN });
  ws = new Flotilla({ url, token: TOKEN, transport: 'websocket' });
});
after(async () => {
  ws.close();
  await h.close();
});

describe('the client over HTTP and over the WebSocket', () => {
  it('submit returns the same TaskView, created by either and found by the other', async () => {
    const viaHttp = await http.tasks.submit({ agent: 'parity', input: 1, idempotencyKey: 'sdk-1' });
    assert.deepEqual(await ws.tasks.submit({ agent: 'parity', input: 1, idempotencyKey: 'sdk-1' }), viaHttp);
    const viaSocket = await ws.tasks.submit({ agent: 'parity', input: 2, idempotencyKey: 'sdk-2' });
    assert.deepEqual(await http.tasks.submit({ agent: 'parity', input: 2, idempotencyKey: 'sdk-2' }), viaSocket);
    assert.equal(viaSocket.input, 2);
    assert.deepEqual(Object.keys(viaSocket).sort(), Object.keys(viaHttp).sort());
    // GET adds what only it answers: the attempt, and why the task waits (no worker here).
    assert.deepEqual(await http.tasks.get(viaSocket.id), { ...viaSocket, assignment: null, waitingReason: 'no_live_replica' });
    assert.deepEqual(await ws.tasks.get(viaSocket.id), await http.tasks.get(viaSocket.id));
  });

  it('submitMany returns the same results', async () => {
    const specs = [{ agent: 'parity', idempotencyKey: 'sdk-b1' }, { agent: 'parity', idempotencyKey: 'sdk-b2' }];
    const viaHttp = await http.tasks.submitMany(specs);
    const viaSocket = await ws.tasks.submitMany(specs);
    assert.deepEqual(viaHttp.map((r) => r.created), [true, true]);
    assert.deepEqual(viaSocket, viaHttp.map((r) => ({ ...r, created: false })));
  });

  it('refusals are the same typed error with the same status', async () => {
    const refused = async (c: Flotilla) => c.tasks.submit({ agent: 'nobody' }).then(() => assert.fail('accepted'), (err: unknown) => err);
    const [a, b] = [await refused(http), await refused(ws)];
    assert.ok(isFlotillaError(a, 'UNKNOWN_AGENT') && isFlotillaError(b, 'UNKNOWN_AGENT'));
    assert.equal((a as FlotillaApiError).status, 422);
    assert.equal((b as FlotillaApiError).status, 422);
    assert.equal((a as FlotillaApiError).message, (b as FlotillaApiError).message);
  });
});

/** A WebSocket whose server answers each request with `answer(request)`. */
function scriptedSocket(answer: (request: { op: string; id: number }) => Record<string, unknown>): NonNullable<FlotillaOptions['WebSocket']> {
  class ScriptedWebSocket {
    readonly OPEN = 1;
    readyState = 0;
    onopen: (() => void) | null = null;
    onerror: (() => void) | null = null;
    onclose: (() => void) | null = null;
    onmessage: ((e: { data: string }) => void) | null = null;
    constructor() {
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.();
      });
    }
    send(text: string): void {
      const request = JSON.parse(text) as { op: string; id: number };
      queueMicrotask(() => this.onmessage?.({ data: JSON.stringify({ re: request.id, ...answer(request) }) }));
    }
    close(): void {
      this.readyState = 3;
    }
  }
  return ScriptedWebSocket as unknown as NonNullable<FlotillaOptions['WebSocket']>;
}

describe('the client against servers old and new', () => {
  const view = { id: 't-1', type: 'parity', status: 'pending' } as TaskView;

  it('reads submit\'s {created, task} from a server that sends no reply status', async () => {
    const old = new Flotilla({ url: 'http://127.0.0.1:1', token: TOKEN, transport: 'websocket', WebSocket: scriptedSocket(() => ({ ok: true, result: { created: true, task: view } })) });
    assert.deepEqual(await old.tasks.submit({ agent: 'parity' }), view);
    old.close();
  });

  it('reads the TaskView from a server that sends reply statuses, and takes an error\'s status from the reply', async () => {
    let next: Record<string, unknown> = { ok: true, status: 201, result: view };
    const current = new Flotilla({ url: 'http://127.0.0.1:1', token: TOKEN, transport: 'websocket', WebSocket: scriptedSocket(() => next) });
    assert.deepEqual(await current.tasks.submit({ agent: 'parity' }), view);
    next = { ok: true, status: 200, result: view };
    assert.deepEqual(await current.tasks.submit({ agent: 'parity', idempotencyKey: 'k' }), view);
    // A status other than the code table's (422 for UNKNOWN_AGENT): the reply's own is the one taken.
    next = { ok: false, status: 400, error: { code: 'UNKNOWN_AGENT', message: 'no agent named "x" is registered' } };
    await assert.rejects(current.tasks.submit({ agent: 'x' }), (err: unknown) => isFlotillaError(err, 'UNKNOWN_AGENT') && err.status === 400);
    current.close();
  });
});
