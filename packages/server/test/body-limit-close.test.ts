// A body far over the limit is answered 413 PAYLOAD_TOO_LARGE over a real socket, every
// time, and the connection is then closed: the client must never see a reset instead of the
// answer (it used to, for 3–4 of 20 uploads of 5–20 MB, when the server closed the socket
// while the body was still arriving).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { harness, TOKEN, type Harness } from './helpers/harness.ts';
import { LINGER_MS } from '../src/http/lingering-close.ts';

let h: Harness;
let port = 0;

before(async () => {
  h = await harness({ config: { bodyLimitBytes: 1024 * 1024 } });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  port = (h.app.server.address() as { port: number }).port;
});
after(() => h.close());

/**
 * One upload of `bytes` bytes on a fresh connection, by a client that sends the whole body
 * before it reads the answer (as most HTTP libraries outside Node do): the status and body,
 * or the socket error.
 */
function upload(bytes: number, chunked: boolean): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const head = [
      'POST /api/v1/tasks HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json',
      chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${bytes}`, '', '',
    ].join('\r\n');
    const body = Buffer.alloc(bytes, 0x20);
    let answer = '';
    let sent = false;
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    socket.on('data', (chunk) => {
      if (sent) answer += chunk.toString('utf8');
    });
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
      resolve({ status, body: answer.slice(answer.indexOf('\r\n\r\n') + 4) });
    });
    socket.pause();
    socket.write(head);
    const frame = chunked ? Buffer.concat([Buffer.from(`${bytes.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]) : body;
    socket.write(frame, () => {
      // Everything is handed to the kernel; only now does this client read.
      sent = true;
      socket.resume();
    });
  });
}

describe('a body far over the limit', () => {
  for (const chunked of [false, true]) {
    it(`is answered 413 PAYLOAD_TOO_LARGE every time, never a reset (${chunked ? 'chunked' : 'with Content-Length'})`, { timeout: 60_000 }, async () => {
      const outcomes = [];
      for (let i = 0; i < 20; i++) outcomes.push(await upload((5 + (i % 16)) * 1024 * 1024, chunked));
      const wrong = outcomes.filter((o) => !('status' in o) || o.status !== 413 || !o.body.includes('"PAYLOAD_TOO_LARGE"'));
      assert.deepEqual(wrong, [], `${wrong.length} of 20 uploads did not get the 413`);
      // The server is fine afterwards: a normal request on a new connection works.
      assert.equal((await h.api('GET', '/agents')).status, 200);
    });
  }

  it('never runs a request pipelined after the refused body (its answer would go nowhere)', { timeout: 60_000 }, async () => {
    const bytes = 2 * 1024 * 1024;
    for (let i = 0; i < 6; i++) {
      const name = `pipelined-${i}`;
      const second = JSON.stringify({ name });
      const answer = await new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port });
        let text = '';
        socket.on('data', (c) => (text += c.toString()));
        socket.on('error', () => resolve(text));
        socket.on('close', () => resolve(text));
        socket.write(['POST /api/v1/tasks HTTP/1.1', 'Host: x', `Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', `Content-Length: ${bytes}`, '', ''].join('\r\n'));
        socket.write(Buffer.alloc(bytes, 0x20));
        socket.write(['POST /api/v1/agents HTTP/1.1', 'Host: x', `Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(second)}`, '', second].join('\r\n'));
      });
      assert.match(answer, /^HTTP\/1\.1 413/);
      assert.equal((await h.api('GET', `/agents/${name}`)).status, 404, `try ${i}: the pipelined request was run`);
    }
  });

  it('cuts a client that keeps sending after LINGER_MS', { timeout: 30_000 }, async () => {
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      socket.on('data', () => {});
      socket.on('error', () => {});
      const drip = setInterval(() => { if (!socket.destroyed) socket.write('x'.repeat(1024)); }, 20);
      socket.on('close', () => { clearInterval(drip); resolve(); });
      socket.write(['POST /api/v1/tasks HTTP/1.1', 'Host: x', `Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', `Content-Length: ${100 * 1024 * 1024}`, '', ''].join('\r\n'));
    });
    const held = Date.now() - started;
    assert.ok(held >= LINGER_MS - 100 && held < LINGER_MS + 2_000, `held ${held} ms`);
  });
});

