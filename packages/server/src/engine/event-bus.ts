// In-process fan-out of committed events to live listeners (SSE streams, task waiters).
// The store is the source of truth and assigns sequence numbers; the bus only carries
// what was already committed, in commit order.

import type { EventRecord } from '../core/types.ts';

export type EventListener = (event: EventRecord) => void;

export class EventBus {
  #all = new Set<EventListener>();
  #byTask = new Map<string, Set<EventListener>>();

  publish(events: readonly EventRecord[]): void {
    for (const event of events) {
      for (const listener of this.#all) listener(event);
      if (event.taskId !== null) {
        const forTask = this.#byTask.get(event.taskId);
        if (forTask) for (const listener of forTask) listener(event);
      }
    }
  }

  subscribe(listener: EventListener): () => void {
    this.#all.add(listener);
    return () => this.#all.delete(listener);
  }

  /** Listen to one task's events only; cheap with many waiters. */
  subscribeTask(taskId: string, listener: EventListener): () => void {
    let set = this.#byTask.get(taskId);
    if (!set) this.#byTask.set(taskId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#byTask.delete(taskId);
    };
  }

  get listenerCount(): number {
    let n = this.#all.size;
    for (const set of this.#byTask.values()) n += set.size;
    return n;
  }
}
