// The tool-call audit's writer: calls through the gateway are buffered and appended in
// batches (a relaxed write, like the audit log's), so a burst of calls costs one insert per
// batch, and a plain task that calls no tool costs nothing. `flush()` on shutdown.

import type { NewToolCall } from '../../core/tool-domains.ts';
import type { EngineContext } from '../context.ts';

const FLUSH_DELAY_MS = 25;
const RETRY_DELAY_MS = 1_000;
const MAX_BUFFERED = 100_000;

export class ToolCallLog {
  readonly #ctx: EngineContext;
  #buffer: NewToolCall[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  dropped = 0;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  record(call: NewToolCall): void {
    if (this.#buffer.length >= MAX_BUFFERED) {
      this.dropped++;
      return;
    }
    this.#buffer.push(call);
    this.#schedule(FLUSH_DELAY_MS);
  }

  #schedule(ms: number): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, ms);
    this.#timer.unref();
  }

  /**
   * Writes what is buffered; a failed write keeps the calls and tries again in a second.
   * Invariant: when it returns, every call recorded before it was called is written (or, after
   * a failed write, back in the buffer). Hence `while`: a flush that waited on one write may
   * find the next already started by another waiter, which holds its calls, and waits for it.
   */
  async flush(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
    if (this.#buffer.length === 0) return;
    const calls = this.#buffer;
    this.#buffer = [];
    this.#flushing = this.#ctx.store.toolCallAppend({ calls }).catch((err: unknown) => {
      this.#ctx.log.warn({ err, count: calls.length }, 'tool calls could not be recorded; retrying');
      this.#buffer = [...calls, ...this.#buffer];
      this.#schedule(RETRY_DELAY_MS);
    }).finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }
}
