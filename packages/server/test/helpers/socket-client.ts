// A bare client of the WebSocket protocol (docs/protocol.md §11) for tests: requests get
// their replies by id, whole (`re`, `ok`, `status`, `result` or `error`), also out of a
// coalesced `replies` frame; pushes queue up until a test takes them. Every frame received
// is kept, as received, in `frames`.
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { TOKEN, type Harness } from './harness.ts';

export type Frame = Record<string, any>;

export class SocketClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly #replies = new Map<unknown, Frame>();
  readonly #pushes: Frame[] = [];
  readonly #waiters: Array<() => void> = [];
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      this.frames.push(frame);
      if ('push' in frame) this.#pushes.push(frame);
      else for (const reply of 'replies' in frame ? frame.replies as Frame[] : [frame]) this.#replies.set(reply.re, reply);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Opens `/api/v1{path}` on a harness that listens (`h.listen()`). */
  static async open(h: Harness, path: '/socket' | '/workers/socket' = '/socket', token = TOKEN): Promise<SocketClient> {
    const port = (h.app.server.address() as AddressInfo).port;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new SocketClient(ws);
  }

  async #until<T>(pick: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = pick();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Sends one request and resolves with its whole reply frame. */
  request(op: string, fields: Frame = {}): Promise<Frame> {
    const id = this.#nextId++;
    this.ws.send(JSON.stringify({ op, id, ...fields }));
    return this.#until(() => this.#replies.get(id), `the reply to ${op}`);
  }

  /** The reply with this id, once it has come. */
  reply(id: unknown): Promise<Frame> {
    return this.#until(() => this.#replies.get(id), `the reply to ${JSON.stringify(id)}`);
  }

  /** Whether a reply with this id has come. */
  answered(id: unknown): boolean {
    return this.#replies.has(id);
  }

  /** Sends a raw text frame that has no id (not JSON, say) and resolves with the reply to it (`re: null`). */
  async sendRaw(text: string): Promise<Frame> {
    this.#replies.delete(null);
    this.ws.send(text);
    const reply = await this.#until(() => this.#replies.get(null), 'the reply to a frame without an id');
    this.#replies.delete(null);
    return reply;
  }

  /** The next push of a kind. */
  next(kind: string): Promise<Frame> {
    return this.#until(() => {
      const i = this.#pushes.findIndex((p) => p.push === kind);
      return i === -1 ? undefined : this.#pushes.splice(i, 1)[0];
    }, `a ${kind} push`);
  }

  close(): void {
    this.ws.close();
  }
}
