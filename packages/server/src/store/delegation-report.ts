// The delegation report's statements (Store.reportDelegation), shared by both stores: the same
// columns, with each store's placeholders and its insertion-order column for "the latest
// attempt". Four set queries, none per agent, each served by an index:
// - attempts: those that ended in the window (assignments_agent_outcome: agent, status,
//   finished_at; one seek per registered agent and status) and those live now (the partial
//   live indexes). An attempt dispatched in the window has ended in it or is live, so
//   "assigned" needs no index on dispatched_at (which every dispatch would have to write);
// - durations: nearest-rank median and p95, rank ceil(p x n) in integer arithmetic, so both
//   databases pick the same attempt (no percentile function SQLite lacks);
// - SLA met: terminal tasks finished in the window (tasks_terminal_finished) by their deadline;
// - SLA violated: tasks whose deadline passed in the window unmet: those the sweep marked
//   (tasks_sla_violated) and those it has not looked at yet (tasks_sla_check), disjoint.

import { NO_SLA_DEADLINE } from './record-mapping.ts';
import type { DelegationFigures } from './store.ts';

export interface DelegationDialect {
  since: string;
  now: string;
  /** The column that orders a task's assignments by insertion (SQLite's rowid, PostgreSQL's seq). */
  insertion: string;
  /** `counted` as a condition (an integer 0/1 in SQLite, a boolean in PostgreSQL). */
  counted: string;
}

const ENDED = `('completed', 'failed', 'timed_out', 'lost', 'cancelled', 'suspended')`;
const TERMINAL = `('completed', 'failed', 'cancelled')`;

/** The agent a task counts for: its own, or (routed by capability) that of its latest attempt. */
function agentOf(d: DelegationDialect): string {
  return `COALESCE(t.agent, (SELECT a.agent FROM assignments a WHERE a.task_id = t.id ORDER BY a.${d.insertion} DESC LIMIT 1))`;
}

export function delegationStatements(d: DelegationDialect): { attempts: string; durations: string; met: string; violated: string } {
  return {
    attempts: `SELECT agent,
        SUM(CASE WHEN dispatched_at >= ${d.since} THEN 1 ELSE 0 END) AS assigned,
        SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed,
        SUM(CASE WHEN status IN ('failed', 'timed_out', 'lost') AND ${d.counted} THEN 1 ELSE 0 END) AS failed,
        SUM(CASE WHEN status IN ('dispatched', 'running') THEN 1 ELSE 0 END) AS in_flight
      FROM (
        SELECT a.agent, a.status, a.dispatched_at, a.counted FROM agents g JOIN assignments a ON a.agent = g.name
        WHERE a.status IN ${ENDED} AND a.finished_at >= ${d.since}
        UNION ALL
        SELECT a.agent, a.status, a.dispatched_at, a.counted FROM assignments a
        WHERE a.status IN ('dispatched', 'running')
      ) x GROUP BY agent`,
    durations: `SELECT agent,
        MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN d END) AS median,
        MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN d END) AS p95
      FROM (
        SELECT a.agent, a.finished_at - a.dispatched_at AS d,
          ROW_NUMBER() OVER (PARTITION BY a.agent ORDER BY a.finished_at - a.dispatched_at) AS rn,
          COUNT(*) OVER (PARTITION BY a.agent) AS n
        FROM agents g JOIN assignments a ON a.agent = g.name
        WHERE a.status = 'completed' AND a.finished_at >= ${d.since}
      ) r GROUP BY agent`,
    met: `SELECT ${agentOf(d)} AS agent, COUNT(*) AS n FROM tasks t
      WHERE t.status IN ${TERMINAL} AND t.finished_at >= ${d.since}
        AND t.sla_deadline <> ${NO_SLA_DEADLINE} AND t.finished_at <= t.sla_deadline
      GROUP BY 1`,
    violated: `SELECT agent, COUNT(*) AS n FROM (
        SELECT ${agentOf(d)} AS agent FROM tasks t
        WHERE t.sla_state = 'violated' AND t.sla_deadline >= ${d.since}
        UNION ALL
        SELECT ${agentOf(d)} AS agent FROM tasks t
        WHERE t.sla_check_at IS NOT NULL AND t.sla_check_at <= ${d.now}
          AND t.sla_deadline >= ${d.since} AND t.sla_deadline <= ${d.now}
          AND (t.finished_at IS NULL OR t.finished_at > t.sla_deadline)
      ) v GROUP BY agent`,
  };
}

type Row = Record<string, unknown>;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** One row per registered agent (in `agents` order), from the four statements' rows. */
export function delegationFigures(agents: readonly string[], rows: { attempts: Row[]; durations: Row[]; met: Row[]; violated: Row[] }): DelegationFigures[] {
  const by = (list: Row[]) => new Map(list.map((r) => [String(r.agent), r]));
  const attempts = by(rows.attempts);
  const durations = by(rows.durations);
  const met = by(rows.met);
  const violated = by(rows.violated);
  return agents.map((agent) => {
    const a = attempts.get(agent);
    const d = durations.get(agent);
    return {
      agent,
      assigned: num(a?.assigned),
      completed: num(a?.completed),
      failed: num(a?.failed),
      inFlight: num(a?.in_flight),
      medianMs: numOrNull(d?.median),
      p95Ms: numOrNull(d?.p95),
      slaMet: num(met.get(agent)?.n),
      slaViolated: num(violated.get(agent)?.n),
    };
  });
}
