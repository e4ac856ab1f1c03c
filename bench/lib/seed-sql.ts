// The rows W3 seeds straight into a store's database, as INSERT ... SELECT statements over a
// series of task numbers, written once for both stores (the dialects differ only in the
// fragments below). Each statement names its columns and leaves the rest to the columns'
// defaults, so a column added with a default does not break the seeding.
//
// Task i of `count` (0 ≤ i < count):
//   at       t0 + ⌊i · spanMs / count⌋: the tasks were created over `spanMs`, oldest first,
//            all before the seeding, so the ids the server makes later sort after them
//   id       the server's id shape (UUID version 7: the 48-bit ms timestamp, then bits that
//            here hold i), so the `id` index grows at its right end as it does in use; an
//            attempt's id differs in one digit
//   agent    pending: every stride-th task (stride = ⌊count / drained⌋), `drained` of them,
//            goes to agent 0, the queue W3 drains; the others round robin over agents 1..99;
//            history: round robin over all the agents
//   input    { n: i, pad } of about the bench's input size; type: the agent's name, as the
//            server names a task submitted without one
//   status   pending: pending, never attempted; history: completed at at + 1 after one
//            attempt (its assignment row, on a replica that has since gone: no replica row)
//   events   one per task, as the server writes it: `task.created` for a pending task,
//            `task.completed` for a finished one. A finished task really has two or three
//            (created, dispatched, completed); one keeps the events table at the tasks' scale
//            and the seeding time in bounds.
// Values come from the bench (numbers, and the server's own ids for the creator): they are
// written as literals, quoted.

export interface TaskTemplate {
  /** What the server fills in for a task the bench's admin token submits. */
  priority: number;
  maxAttempts: number;
  timeoutMs: number;
  createdBy: string | null;
  ownerId: string | null;
}

export interface SeedRows {
  kind: 'pending' | 'history';
  count: number;
  /** pending: how many go to agent 0. */
  drained: number;
  /** The agents are <prefix>00 .. <prefix><count − 1> (count ≤ 100). */
  agentPrefix: string;
  agentCount: number;
  t0: number;
  spanMs: number;
  pad: string;
  template: TaskTemplate;
  /** history: the attempts' replica, and their lease. */
  replica: string;
  leaseMs: number;
}

export interface Dialect {
  /** A CTE `s(i)` of the task numbers this statement inserts. */
  series: string;
  /** Text of `x` as lower-case hex, left-padded with zeros to `width`. */
  hex(x: string, width: number): string;
  /** Text of `x`, left-padded with zeros to `width`. */
  zeroPad(x: string, width: number): string;
  /** The ISO 8601 text of epoch milliseconds `x`, as JavaScript writes it. */
  iso(x: string): string;
  /** A JSON text expression as the column's type. */
  json(x: string): string;
  /**
   * The seq of the event seeded for row `i`, where the store does not number events as it
   * inserts them (PostgreSQL numbers them after commit, from event_counter: decision 47).
   */
  eventSeq?: (i: string) => string;
}

function literal(v: string | number | null): string {
  if (v === null) return 'NULL';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`not an integer: ${v}`);
    return String(v);
  }
  return `'${v.replaceAll("'", "''")}'`;
}

/** The statements, in order (tasks before the rows that refer to them). */
export function seedStatements(d: Dialect, r: SeedRows): string[] {
  const L = literal;
  if (r.agentCount < 2 || r.agentCount > 100) throw new Error(`seeding: ${r.agentCount} agents; 2 to 100 (two-digit names)`);
  if (r.kind === 'pending' && (r.drained < 1 || r.drained > r.count)) throw new Error(`seeding: ${r.drained} of ${r.count} pending tasks to drain`);
  const agentOf = (k: string) => `${L(r.agentPrefix)} || ${d.zeroPad(k, 2)}`;
  const stride = Math.floor(r.count / Math.max(1, r.drained));
  const agent = r.kind === 'pending'
    ? `CASE WHEN i % ${stride} = 0 AND i / ${stride} < ${L(r.drained)} THEN ${agentOf('0')} ELSE ${agentOf(`1 + i % ${r.agentCount - 1}`)} END`
    : agentOf(`i % ${r.agentCount}`);
  const uuid = (variant: string) => `${d.hex('at >> 16', 8)} || '-' || ${d.hex('at & 65535', 4)} || '-7000-${variant}000-' || ${d.hex('i', 12)}`;
  const rows = `WITH RECURSIVE ${d.series},
t AS (SELECT i, ${L(r.t0)} + i * ${L(r.spanMs)} / ${L(r.count)} AS at FROM s),
r AS (SELECT i, at, ${agent} AS agent, ${uuid('8')} AS id, ${uuid('9')} AS aid FROM t)`;
  const input = d.json(`'{"n":' || i || ',"pad":"' || ${L(r.pad)} || '"}'`);
  const { priority, maxAttempts, timeoutMs, createdBy, ownerId } = r.template;
  const taskCols = 'id, status, priority, agent, attempt, max_attempts, timeout_ms, run_at, created_at, updated_at, finished_at, created_by, root_id, owner_id';
  const seqCol = d.eventSeq ? 'seq, ' : '';
  const seq = d.eventSeq ? `${d.eventSeq('i')}, ` : '';
  const eventCols = `${seqCol}type, at, task_id, agent, replica_id, assignment_id, data`;
  if (r.kind === 'pending') {
    return [
      `${rows} INSERT INTO tasks (${taskCols}) SELECT id, 'pending', ${L(priority)}, agent, 0, ${L(maxAttempts)}, ${L(timeoutMs)}, at, at, at, NULL, ${L(createdBy)}, id, ${L(ownerId)} FROM r`,
      `${rows} INSERT INTO task_payloads (task_id, type, input) SELECT id, agent, ${input} FROM r`,
      `${rows} INSERT INTO events (${eventCols}) SELECT ${seq}'task.created', at, id, agent, NULL, NULL, ${d.json(`'{"type":"' || agent || '","priority":${priority},"runAt":"' || ${d.iso('at')} || '"}'`)} FROM r`,
    ];
  }
  return [
    `${rows} INSERT INTO tasks (${taskCols}) SELECT id, 'completed', ${L(priority)}, agent, 1, ${L(maxAttempts)}, ${L(timeoutMs)}, at, at, at + 1, at + 1, ${L(createdBy)}, id, ${L(ownerId)} FROM r`,
    `${rows} INSERT INTO task_payloads (task_id, type, input, result) SELECT id, agent, ${input}, ${d.json(`'{"ok":true,"n":' || i || '}'`)} FROM r`,
    `${rows} INSERT INTO assignments (id, task_id, agent, replica_id, attempt, status, dispatched_at, started_at, finished_at, lease_expires_at, deadline_at)
      SELECT aid, id, agent, ${L(r.replica)}, 1, 'completed', at, at, at + 1, at + ${L(r.leaseMs)}, at + ${L(timeoutMs)} FROM r`,
    `${rows} INSERT INTO events (${eventCols}) SELECT ${seq}'task.completed', at + 1, id, agent, ${L(r.replica)}, aid, ${d.json(`'{"attempt":1,"durationMs":1}'`)} FROM r`,
  ];
}
