// Unblocking tasks that wait for their dependencies (docs/workflows.md). The decisions are
// core's (core/dependencies.ts decideUnblock); this decides when to ask, exactly as the
// resumer does for parents waiting for children (engine/resumer.ts).
//
// When a blocked task is looked at:
// - right after a dependency of it ended: context.commit names the ended tasks marked
//   `hasDependents` (as the ending write read the row back: a mark set while the task ran
//   counts), and their blocked dependents are read by the edges' index;
// - right after it was created (its dependencies may all have ended before its commit);
// - by the maintenance sweep (the elected node), which finds every blocked task that can be
//   decided with one indexed query. It covers a look that never happened: the node died
//   between the commit and the look, or the look failed.
//
// Why the last dependency's look sees the others ended: each look reads after its own commit,
// so of two dependencies ending at once at least the later commit's look reads both as ended;
// a dependent created while its last dependency ends is covered by its own look after its
// create committed. Unblocking is a guarded write (still blocked): two looks at once, on one
// node or two, unblock it once; the other's write conflicts and changes nothing.

import { decideUnblock } from '../core/dependencies.ts';
import type { TaskRecord, Transition } from '../core/types.ts';
import { commit, type EngineContext } from './context.ts';

/** Blocked tasks handled per round; a larger backlog waits for the next round (or sweep). */
const BATCH = 200;
const ROUNDS = 10;

export class Unblocker {
  #ctx: EngineContext;
  /** Tasks that ended, whose dependents to look at. */
  #ended = new Set<string>();
  /** Blocked tasks to look at themselves (just created). */
  #blocked = new Set<string>();
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  /** Look soon at the blocked dependents of these ended tasks (coalesced; errors are logged: the sweep retries). */
  dependentsOf(taskIds: Iterable<string>): void {
    for (const id of taskIds) this.#ended.add(id);
    this.#kick();
  }

  /** Look soon at these blocked tasks. */
  look(taskIds: Iterable<string>): void {
    for (const id of taskIds) this.#blocked.add(id);
    this.#kick();
  }

  #kick(): void {
    if (this.#stopped) return;
    this.#running ??= Promise.resolve().then(() => this.#drain()).finally(() => {
      this.#running = null;
      if (this.#ended.size + this.#blocked.size > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#ended.size + this.#blocked.size > 0 && !this.#stopped) {
      const ended = take(this.#ended);
      const blocked = take(this.#blocked);
      try {
        const { store } = this.#ctx;
        const tasks = [
          ...(ended.length === 0 ? [] : await store.taskListDependents({ ids: ended, limit: BATCH * ROUNDS })),
          ...(blocked.length === 0 ? [] : (await store.taskGetMany({ ids: blocked })).filter((t) => t.status === 'blocked')),
        ];
        await this.#decide(tasks);
      } catch (err) {
        this.#ctx.log.warn({ err, tasks: ended.length + blocked.length }, 'looking at blocked tasks failed; the maintenance sweep will');
      }
    }
  }

  /** Decides and writes what happens to each of `tasks` given its dependencies now; returns how many changed. */
  async #decide(tasks: TaskRecord[]): Promise<number> {
    const unique = [...new Map(tasks.map((t) => [t.id, t])).values()];
    if (unique.length === 0) return 0;
    const dependencies = await this.#ctx.store.taskGetMany({ ids: unique.flatMap((t) => t.waitingFor ?? []) });
    const now = this.#ctx.now();
    // The outcomes travel in the task's assignment: keep them under one message (as a resume does).
    // The templated input travels there too: the other half.
    const maxResultBytes = Math.floor(this.#ctx.config.bodyLimitBytes / 2);
    const transitions = unique.map((task) => decideUnblock({ task, dependencies, now, maxResultBytes, maxInputBytes: maxResultBytes })).filter((t): t is Transition => t !== null);
    // commit() looks at the dependents of the tasks this fails in turn (a chain fails link by link).
    return (await commit(this.#ctx, transitions)).filter((r) => r.ok).length;
  }

  /** The maintenance sweep: decides every blocked task that can be decided. */
  async sweep(): Promise<number> {
    let decided = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const due = await this.#ctx.store.taskListUnblockable({ limit: BATCH });
      decided += await this.#decide(due);
      if (due.length < BATCH) break;
    }
    return decided;
  }

  /** Stops taking looks and waits for the one running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#ended.clear();
    this.#blocked.clear();
    await this.#running;
  }
}

/** Up to BATCH ids out of the set. */
function take(set: Set<string>): string[] {
  const ids = [...set].slice(0, BATCH);
  for (const id of ids) set.delete(id);
  return ids;
}
