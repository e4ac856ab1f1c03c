// With a multi-node store, live events reach this process's bus through the store: on each
// `events` signal (from any node, this one included) the relay reads what was committed after
// the last event it published, in sequence order, and publishes it. The store guarantees that
// a reader following eventList(after) never skips an event (conformance suite), so every
// node's SSE clients see every node's events once, in order.

import type { StoreSignal } from '../store/store.ts';
import type { EngineContext } from './context.ts';

const PAGE = 1_000;

export class EventRelay {
  #ctx: EngineContext;
  #last = 0;
  #pumping: Promise<void> | null = null;
  #again = false;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  /** Starts after what is already committed: history is for replay, not for the live bus. */
  async start(): Promise<void> {
    this.#last = await this.#ctx.store.eventLastSeq();
  }

  onSignal(signal: StoreSignal): void {
    if (signal.kind === 'events' || signal.kind === 'reconnected') this.pump();
  }

  /** Coalesced: a pump requested while one runs causes exactly one more. */
  pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = this.#drain()
      .catch((err: unknown) => {
        this.#ctx.log.warn({ err }, 'event relay could not read events; retrying on the next signal');
      })
      .finally(() => {
        this.#pumping = null;
        if (this.#again) {
          this.#again = false;
          this.pump();
        }
      });
  }

  async idle(): Promise<void> {
    while (this.#pumping) await this.#pumping;
  }

  async #drain(): Promise<void> {
    for (;;) {
      const events = await this.#ctx.store.eventList({ after: this.#last, limit: PAGE });
      if (events.length === 0) return;
      this.#last = events[events.length - 1]!.seq;
      this.#ctx.bus.publish(events);
      if (events.length < PAGE) return;
    }
  }
}
