// Usage and cost (issue 16, docs/usage.md): a worker's report of what an attempt used, stored
// per attempt, and its sums per agent, tree (root), day or task. The report is written just
// before the attempt's outcome (relaxed: the outcome's durable commit flushes it, decisions.md
// 106) and corrects the attempt's request in its rate key's window (estimate → actual).

import { checkUsage, type UsageGroupBy, type UsageReport, type UsageSum } from '../core/usage.ts';
import { FlotillaError } from '../core/errors.ts';
import type { AssignmentRecord, Millis, TaskRecord } from '../core/types.ts';
import type { EngineContext } from './context.ts';

export type UsageTotals = Omit<UsageSum, 'key'>;

/** The widest window one GET /usage may sum over needs no bound: the sums are indexed by time. */
export class UsageService {
  #ctx: EngineContext;

  constructor(params: { ctx: EngineContext }) {
    this.#ctx = params.ctx;
  }

  /** Checked before anything is written (a bad report is a 400 and changes nothing). */
  check(report: UsageReport | undefined): void {
    if (report !== undefined) checkUsage(report);
  }

  async record(assignment: AssignmentRecord, task: Pick<TaskRecord, 'id' | 'rootId'>, report: UsageReport): Promise<void> {
    const u = checkUsage(report);
    await this.#ctx.store.usageRecord({
      usage: { assignmentId: assignment.id, taskId: task.id, rootId: task.rootId, agent: assignment.agent, ...u, at: this.#ctx.now() },
    });
  }

  async summary(groupBy: string, since: Millis | null, until: Millis | null): Promise<UsageSum[]> {
    if (groupBy !== 'agent' && groupBy !== 'root' && groupBy !== 'day') {
      throw new FlotillaError('VALIDATION_FAILED', `groupBy must be agent, root or day, got "${groupBy}"`);
    }
    if (since !== null && until !== null && until < since) throw new FlotillaError('VALIDATION_FAILED', '"until" is before "since"');
    return this.#ctx.store.usageSummary({ groupBy: groupBy as UsageGroupBy, since, until });
  }

  /** A task's own usage (all its attempts); null before any report. */
  async forTask(taskId: string): Promise<UsageTotals | null> {
    const [sum] = await this.#ctx.store.usageSummary({ groupBy: 'task', since: null, until: null, taskId });
    if (sum === undefined) return null;
    const { key: _key, ...totals } = sum;
    return totals;
  }

  /** Usage per agent over a report's window (the delegation report's tokens and cost). */
  async perAgent(since: Millis, until: Millis): Promise<Map<string, UsageTotals>> {
    const sums = await this.#ctx.store.usageSummary({ groupBy: 'agent', since, until: until + 1 });
    return new Map(sums.map(({ key, ...totals }) => [key, totals]));
  }
}
