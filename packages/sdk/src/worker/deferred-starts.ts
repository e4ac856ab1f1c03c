// `start` reports held back to the end of the event-loop turn in which their handlers began.
//
// Why: the server accepts `complete` and `fail` from a dispatched attempt (`start` is
// optional), so a handler that finishes within the turn it started in (a cache hit, a quick
// tool call) needs no `start` at all: one message, one write and one event fewer per task,
// about a third of a fast task's server work. A handler still running at the end of the turn
// is reported started then, a fraction of a millisecond later than before.
//
// Only for transports that keep one assignment's reports in order (the WebSocket): over
// HTTP a later report could overtake a deferred `start`, so the worker awaits it instead.
// One scheduled flush serves every deferred start of a turn: no timer per task.

const nextTurn: (fn: () => void) => void = typeof setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0);

export class DeferredStarts {
  readonly #pending = new Map<string, () => void>();
  #scheduled = false;

  /** `send` runs at the end of this turn unless `settle(id)` is called first. */
  defer(id: string, send: () => void): void {
    this.#pending.set(id, send);
    if (this.#scheduled) return;
    this.#scheduled = true;
    nextTurn(() => {
      this.#scheduled = false;
      const due = [...this.#pending.values()];
      this.#pending.clear();
      for (const sendOne of due) sendOne();
    });
  }

  /** The handler has finished: true if its `start` was never sent (and now never will be). */
  settle(id: string): boolean {
    return this.#pending.delete(id);
  }
}
