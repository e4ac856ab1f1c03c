// Resuming suspended tasks: a parent waiting for its children becomes pending again once they
// have all ended, and an input request nobody answered in time fails its task. Decisions are
// core's (decideResume, decideInputTimeout); this decides when to ask.
//
// When a parent is looked at:
// - right after a child of it ended (context.commit names the parents of ended tasks), and
//   right after it started waiting (its children may all have ended before it did);
// - by the maintenance sweep (one node: the elected leader), which finds every waiting task
//   whose children have all ended with one indexed query. It covers a look that never
//   happened: the node died between the child's commit and the look, or the look failed.
//
// Why the last child's look always sees the others ended: each look reads after its own
// commit, so of two children ending concurrently at least the later commit's look reads both
// as terminal. A parent that starts waiting while its last child ends is covered the same way:
// the child's look may read the parent still running, but the parent's own look, after its
// wait committed, reads the child ended.
//
// Resuming is a guarded write (the task is still waiting): two looks at once, on one node or
// two, resume it once; the other's write finds nothing to do.

import { decideInputTimeout, decideResume } from '../core/task-machine.ts';
import type { TaskRecord, Transition } from '../core/types.ts';
import { commit, type EngineContext } from './context.ts';

/** Waiting tasks (or expired requests) handled per sweep round; a larger backlog waits for the next round. */
const BATCH = 200;
const ROUNDS = 10;

export class Resumer {
  #ctx: EngineContext;
  #queued = new Set<string>();
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  /** Look at these tasks soon (coalesced; errors are logged: the sweep retries). */
  look(taskIds: Iterable<string>): void {
    if (this.#stopped) return;
    for (const id of taskIds) this.#queued.add(id);
    this.#running ??= Promise.resolve().then(() => this.#drain()).finally(() => {
      this.#running = null;
      if (this.#queued.size > 0) this.look([]);
    });
  }

  async #drain(): Promise<void> {
    while (this.#queued.size > 0 && !this.#stopped) {
      const ids = [...this.#queued].slice(0, BATCH);
      for (const id of ids) this.#queued.delete(id);
      try {
        const tasks = (await this.#ctx.store.taskGetMany({ ids })).filter((t) => t.status === 'waiting');
        await this.#resume(tasks);
      } catch (err) {
        this.#ctx.log.warn({ err, tasks: ids.length }, 'looking at waiting tasks failed; the maintenance sweep will');
      }
    }
  }

  /** Decides and writes the resume of each of `tasks` whose children have all ended. */
  async #resume(tasks: TaskRecord[]): Promise<number> {
    if (tasks.length === 0) return 0;
    const childIds = tasks.flatMap((t) => t.waitingFor ?? []);
    const children = await this.#ctx.store.taskGetMany({ ids: childIds });
    const now = this.#ctx.now();
    // The outcomes travel in the resumed attempt's assignment: keep them under one message.
    const maxResultBytes = Math.floor(this.#ctx.config.bodyLimitBytes / 2);
    const transitions = tasks.map((task) => decideResume({ task, children, now, maxResultBytes })).filter((t): t is Transition => t !== null);
    const results = await commit(this.#ctx, transitions);
    return results.filter((r) => r.ok).length;
  }

  /** The maintenance sweep: resumes what is due and fails expired input requests. */
  async sweep(): Promise<{ resumed: number; expired: number }> {
    const { store } = this.#ctx;
    let resumed = 0;
    let expired = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const due = await store.taskListResumable({ limit: BATCH });
      resumed += await this.#resume(due);
      if (due.length < BATCH) break;
    }
    for (let round = 0; round < ROUNDS; round++) {
      const now = this.#ctx.now();
      const due = await store.taskListInputExpired({ now, limit: BATCH });
      const transitions = due.map((task) => decideInputTimeout({ task, now })).filter((t): t is Transition => t !== null);
      expired += (await commit(this.#ctx, transitions)).filter((r) => r.ok).length;
      if (due.length < BATCH) break;
    }
    return { resumed, expired };
  }

  /** Stops taking looks and waits for the one running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queued.clear();
    await this.#running;
  }
}
