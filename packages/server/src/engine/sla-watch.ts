// SLA checks (core/sla.ts): the maintenance sweep (one node: the elected leader) finds the
// tasks whose check time has come with one indexed query and writes what core decides, each
// as a write guarded on the SLA state and task status it read, with its event in the same
// write. So `sla.at_risk` and `sla.violated` are written at most once per task even when two
// nodes sweep at once (a leadership hand-over): the second write finds the state moved on.
// A mark that lost to a status change is decided again, from a fresh read, next sweep.

import { decideSlaCheck, type SlaMark } from '../core/sla.ts';
import { announce, type EngineContext } from './context.ts';

/** Tasks checked per round; a larger backlog waits for the next sweep. */
const BATCH = 500;
const ROUNDS = 10;

export class SlaWatch {
  #ctx: EngineContext;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  /** One sweep: returns how many marks applied and how many events they wrote. */
  async sweep(): Promise<{ marked: number; events: number }> {
    const { store } = this.#ctx;
    let marked = 0;
    let events = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const now = this.#ctx.now();
      const due = await store.taskListSlaDue({ now, limit: BATCH });
      const marks = due.map((task) => decideSlaCheck({ task, now })).filter((m): m is SlaMark => m !== null);
      const result = await store.taskSlaMark({ marks });
      announce(this.#ctx, result.events);
      marked += result.applied.filter(Boolean).length;
      events += result.events.length;
      // Stop at the end of the backlog, or when nothing moved (what is left lost to status changes).
      if (due.length < BATCH || !result.applied.some(Boolean)) break;
    }
    return { marked, events };
  }
}
