// A read-through cache of the agent registry: routing runs on every dispatch pass and must
// not query the agents table each time. Invalidated on every local change; refreshed after
// `maxAgeMs` so changes made by another server process sharing the database show up.

import type { AgentRecord } from '../core/types.ts';
import type { Store } from '../store/store.ts';

export class AgentRegistry {
  #store: Store;
  #maxAgeMs: number;
  #now: () => number;
  #agents: Map<string, AgentRecord> | null = null;
  #loadedAt = 0;

  constructor(params: { store: Store; now: () => number; maxAgeMs?: number }) {
    this.#store = params.store;
    this.#now = params.now;
    this.#maxAgeMs = params.maxAgeMs ?? 5_000;
  }

  async map(): Promise<ReadonlyMap<string, AgentRecord>> {
    if (this.#agents === null || this.#now() - this.#loadedAt > this.#maxAgeMs) {
      const list = await this.#store.agentList();
      this.#agents = new Map(list.map((a) => [a.name, a]));
      this.#loadedAt = this.#now();
    }
    return this.#agents;
  }

  async get(name: string): Promise<AgentRecord | undefined> {
    return (await this.map()).get(name);
  }

  invalidate(): void {
    this.#agents = null;
  }
}
