// A worker written against nothing but the HTTP protocol (docs/protocol.md), as a worker in
// any language would be. Survives server restarts and dead nodes: after a network error it
// moves to the next server URL, and a replica the server no longer knows as live registers
// again (with the same id, so it keeps the assignments it holds).

import { TOKEN } from './harness.ts';

export interface HttpWorkerOptions {
  /** Server URLs, tried in turn; the first is preferred. */
  urls: () => string[];
  agent: string;
  maxConcurrency: number;
  handle: (task: { id: string; input: unknown; attempt: number }) => Promise<unknown>;
}

export class HttpWorker {
  #opts: HttpWorkerOptions;
  #replicaId: string | null = null;
  #stopped = false;
  #loop: Promise<void> | null = null;
  /** Completions the server acknowledged with 200, by task id. */
  readonly acknowledged = new Map<string, number>();
  readonly superseded: string[] = [];
  /** Completions acknowledged after `markTime` (set by a test, e.g. when it kills a node). */
  acknowledgedAfterMark = 0;
  markTime = Infinity;
  #urlIndex = 0;

  get replicaId(): string | null {
    return this.#replicaId;
  }

  constructor(opts: HttpWorkerOptions) {
    this.#opts = opts;
  }

  async #call(path: string, body: unknown): Promise<{ status: number; body: any }> {
    const urls = this.#opts.urls();
    const base = urls[this.#urlIndex % urls.length]!;
    let res: Response;
    try {
      res = await fetch(`${base}/api/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body ?? {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      this.#urlIndex += 1; // that node is unreachable: the next call goes to another
      throw err;
    }
    if (res.status === 503) this.#urlIndex += 1; // shutting down, or lost its database
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  start(): void {
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  async #register(): Promise<void> {
    const res = await this.#call('/workers/register', { agent: this.#opts.agent, maxConcurrency: this.#opts.maxConcurrency, ...(this.#replicaId ? { replicaId: this.#replicaId } : {}) });
    if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
    this.#replicaId = res.body.replica.id;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (!this.#replicaId) await this.#register();
        const res = await this.#call(`/workers/${this.#replicaId}/lease`, { max: this.#opts.maxConcurrency, waitMs: 500 });
        if (res.status === 503) throw new Error('node unavailable');
        if (res.status === 409 || res.status === 404) {
          await this.#register();
          continue;
        }
        if (res.status !== 200) throw new Error(`lease: ${res.status}`);
        await Promise.all((res.body.assignments as Array<{ assignmentId: string; task: { id: string; input: unknown; attempt: number } }>).map((a) => this.#execute(a)));
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async #execute(a: { assignmentId: string; task: { id: string; input: unknown; attempt: number } }): Promise<void> {
    const result = await this.#opts.handle(a.task);
    // Retry the report through network errors: the server may be restarting.
    for (let i = 0; i < 100 && !this.#stopped; i++) {
      try {
        const res = await this.#call(`/assignments/${a.assignmentId}/complete`, { replicaId: this.#replicaId, result });
        if (res.status === 200) {
          this.acknowledged.set(a.task.id, (this.acknowledged.get(a.task.id) ?? 0) + 1);
          if (Date.now() > this.markTime) this.acknowledgedAfterMark += 1;
        }
        else this.superseded.push(a.task.id);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}
