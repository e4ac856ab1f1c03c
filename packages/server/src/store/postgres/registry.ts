// The registry: agents and replicas (API keys are in auth.ts). Reads take any connection;
// writes are write-batch operations (repeatable, run inside the batch's transaction, see
// write-batch.ts).

import { FlotillaError } from '../../core/errors.ts';
import type { AgentRecord, EventRecord, Json, Millis, NewEvent, ReplicaHealth, ReplicaRecord, ReplicaStatus } from '../../core/types.ts';
import type { NewReplica } from '../store.ts';
import { stamp } from './events.ts';
import { AGENT_COLUMNS, AGENT_CONTROL_COLUMNS, REPLICA_COLUMNS, agentFromRow, agentValues, replicaFromRow, toJsonOrNull } from './rows.ts';
import { run, type Queryable } from './sql.ts';
import { refused, withEvents, written, type WriteOp } from './write-batch.ts';

const AGENT_SELECT = [...AGENT_COLUMNS, ...AGENT_CONTROL_COLUMNS].join(', ');
const AGENT_WRITE = AGENT_COLUMNS.join(', ');
const REPLICA_SELECT = REPLICA_COLUMNS.join(', ');

// -- agents -------------------------------------------------------------------------------

/** SQL types of AGENT_COLUMNS, in order. */
const AGENT_TYPES = [
  'text', 'text', 'jsonb', 'integer', 'integer', 'bigint', 'integer', 'jsonb', 'jsonb', 'bigint', 'bigint', 'text', 'bigint', 'bigint',
  'jsonb', 'integer', 'jsonb',
  'jsonb',
  'bigint',
] as const;
const AGENT_INSERT = `INSERT INTO agents (${AGENT_WRITE}) VALUES (${AGENT_TYPES.map((type, i) => `$${i + 1}::${type}`).join(', ')})`;
/** Every column but the key and created_at: re-reading a config file does not recreate its agents. */
const AGENT_REPLACE = AGENT_COLUMNS.filter((c) => c !== 'name' && c !== 'created_at').map((c) => `${c} = excluded.${c}`).join(', ');
const AGENT_UPDATE = `UPDATE agents SET ${AGENT_COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}::${AGENT_TYPES[i + 1]}`).join(', ')}
  WHERE name = $1::text RETURNING name`;

/** Rejects with AGENT_EXISTS (writing nothing) if the name is taken. */
export function createAgent(agent: AgentRecord, event: NewEvent): WriteOp<EventRecord[]> {
  return async (tx) => {
    const rows = await run(tx, `${AGENT_INSERT} ON CONFLICT (name) DO NOTHING RETURNING name`, agentValues(agent));
    if (rows.length === 0) return refused(new FlotillaError('AGENT_EXISTS', `agent ${agent.name} already exists`));
    return withEvents(stamp([event], agent.createdAt), ['agents'], (events) => events);
  };
}

/** Creates or replaces; replacing keeps the original createdAt. */
export function upsertAgent(agent: AgentRecord, event: NewEvent): WriteOp<EventRecord[]> {
  return async (tx) => {
    await run(tx, `${AGENT_INSERT} ON CONFLICT (name) DO UPDATE SET ${AGENT_REPLACE}`, agentValues(agent));
    return withEvents(stamp([event], agent.updatedAt), ['agents'], (events) => events);
  };
}

export function updateAgent(agent: AgentRecord, event: NewEvent): WriteOp<{ updated: boolean; events: EventRecord[] }> {
  return async (tx) => {
    if ((await run(tx, AGENT_UPDATE, agentValues(agent))).length === 0) return written({ updated: false, events: [] });
    return withEvents(stamp([event], agent.updatedAt), ['agents'], (events) => ({ updated: true, events }));
  };
}

/**
 * Locks the agent row first (FOR UPDATE), then deletes it unless it still has unfinished
 * tasks, in a second statement: under READ COMMITTED that statement sees every task committed
 * before it, including those of a concurrent taskCreate, which holds FOR KEY SHARE on the
 * agent row until it commits (task-writes.ts) and is therefore waited for. A create that
 * comes after the lock waits instead, and finds the agent gone.
 */
export function deleteAgent(name: string, event: NewEvent, now: () => Millis): WriteOp<{ outcome: 'deleted' | 'not_found' | 'in_use'; events: EventRecord[] }> {
  return async (tx) => {
    if ((await run(tx, 'SELECT name FROM agents WHERE name = $1::text FOR UPDATE', [name])).length === 0) {
      return written({ outcome: 'not_found', events: [] });
    }
    const deleted = await run(tx,
      `DELETE FROM agents WHERE name = $1::text AND NOT EXISTS (
         SELECT 1 FROM tasks WHERE agent = $1::text AND status IN ('pending', 'dispatched', 'running', 'blocked'))
       RETURNING name`,
      [name]);
    if (deleted.length === 0) return written({ outcome: 'in_use', events: [] });
    return withEvents(stamp([event], now()), ['agents'], (events) => ({ outcome: 'deleted', events }));
  };
}

export async function getAgent(db: Queryable, name: string): Promise<AgentRecord | null> {
  const [row] = await run(db, `SELECT ${AGENT_SELECT} FROM agents WHERE name = $1::text`, [name]);
  return row ? agentFromRow(row) : null;
}

/** In byte order of the name (COLLATE "C"), like the SQLite store, whatever the database's collation. */
export async function listAgents(db: Queryable): Promise<AgentRecord[]> {
  return (await run(db, `SELECT ${AGENT_SELECT} FROM agents ORDER BY name COLLATE "C"`)).map(agentFromRow);
}

// -- replicas -----------------------------------------------------------------------------

/**
 * The status always becomes live (the `status` of the given record is not consulted), and
 * a re-registration keeps registeredAt, inFlight, the outcome counters and lastAssignedAt.
 * A replica (re)appearing is capacity: dispatchers of every process are woken.
 */
export function registerReplica(r: NewReplica, event: NewEvent): WriteOp<{ replica: ReplicaRecord; events: EventRecord[] }> {
  return async (tx) => {
    const [row] = await run(tx,
      `INSERT INTO replicas (id, agent, site, status, max_concurrency, in_flight, registered_at, last_seen_at,
         last_assigned_at, completed, failed)
       VALUES ($1::text, $2::text, $3::text, 'live', $4::integer, 0, $5::bigint, $6::bigint, NULL, 0, 0)
       ON CONFLICT (id) DO UPDATE SET
         agent = excluded.agent, site = excluded.site, status = CASE replicas.status WHEN 'draining' THEN 'draining' ELSE 'live' END,
           health = 'healthy', health_detail = NULL, health_at = NULL,
         max_concurrency = excluded.max_concurrency, last_seen_at = excluded.last_seen_at
       RETURNING ${REPLICA_SELECT}`,
      [r.id, r.agent, r.site, r.maxConcurrency, r.registeredAt, r.lastSeenAt]);
    if (!row) throw new Error(`replica ${r.id} upsert returned no row`);
    const replica = replicaFromRow(row);
    return withEvents(stamp([event], r.lastSeenAt), ['wake'], (events) => ({ replica, events }));
  };
}

/** Never moves lastSeenAt backwards (touches may arrive out of order), and writes only rows that change. */
export function touchReplicas(ids: readonly string[], at: Millis): WriteOp<void> {
  return async (tx) => {
    await run(tx, 'UPDATE replicas SET last_seen_at = $2::bigint WHERE id = ANY($1::text[]) AND last_seen_at < $2::bigint', [ids, at]);
    return written(undefined);
  };
}

export function setAgentControl(
  params: { name: string; control: 'paused' | 'overloaded'; at: Millis | null; event: NewEvent },
  now: () => Millis,
): WriteOp<{ found: boolean; changed: boolean; events: EventRecord[] }> {
  const column = params.control === 'paused' ? 'paused_at' : 'overloaded_at';
  return async (tx) => {
    // Guarded on the column's present state: set only when clear, cleared only when set.
    const rows = await run(tx,
      `UPDATE agents SET ${column} = $2::bigint WHERE name = $1::text AND (${column} IS NULL) = ($2::bigint IS NOT NULL) RETURNING name`,
      [params.name, params.at]);
    if (rows.length === 0) {
      const found = (await run(tx, 'SELECT 1 AS one FROM agents WHERE name = $1::text', [params.name])).length > 0;
      return written({ found, changed: false, events: [] });
    }
    // A pause changes what every node's dispatcher may do: their registries reload.
    return withEvents(stamp([params.event], now()), ['agents'], (events) => ({ found: true, changed: true, events }));
  };
}

export async function queueStats(db: Queryable, now: Millis): Promise<Array<{ agent: string | null; pending: number; oldestRunAt: Millis }>> {
  const rows = await run(db,
    `SELECT agent, count(*) AS n, min(run_at) AS oldest FROM tasks WHERE status = 'pending' AND run_at <= $1::bigint GROUP BY agent`, [now]);
  return rows.map((row) => ({ agent: row.agent === null ? null : String(row.agent), pending: Number(row.n), oldestRunAt: Number(row.oldest) }));
}

export function setReplicaHealth(
  params: { id: string; health: ReplicaHealth; detail: Record<string, Json> | null; at: Millis; event: NewEvent },
): WriteOp<{ found: boolean; changed: boolean; events: EventRecord[] }> {
  return async (tx) => {
    const rows = await run(tx,
      `UPDATE replicas r SET health = $2::text, health_detail = $3::jsonb, health_at = $4::bigint
       FROM (SELECT id, health FROM replicas WHERE id = $1::text FOR UPDATE) before
       WHERE r.id = before.id RETURNING before.health AS before`,
      [params.id, params.health, toJsonOrNull(params.detail), params.at]);
    if (rows.length === 0) return written({ found: false, changed: false, events: [] });
    if (rows[0]!.before === params.health) return written({ found: true, changed: false, events: [] });
    return withEvents(stamp([params.event], params.at), ['wake'], (events) => ({ found: true, changed: true, events }));
  };
}

export function setReplicaStatus(
  params: { id: string; from: ReplicaStatus[]; to: ReplicaStatus; event: NewEvent },
  now: () => Millis,
): WriteOp<{ changed: boolean; events: EventRecord[] }> {
  return async (tx) => {
    const rows = await run(tx,
      'UPDATE replicas SET status = $3::text WHERE id = $1::text AND status = ANY($2::text[]) RETURNING id',
      [params.id, params.from, params.to]);
    if (rows.length === 0) return written({ changed: false, events: [] });
    return withEvents(stamp([params.event], now()), [], (events) => ({ changed: true, events }));
  };
}

export async function getReplica(db: Queryable, id: string): Promise<ReplicaRecord | null> {
  const [row] = await run(db, `SELECT ${REPLICA_SELECT} FROM replicas WHERE id = $1::text`, [id]);
  return row ? replicaFromRow(row) : null;
}

export async function listReplicas(db: Queryable, params: { agent?: string; statuses?: ReplicaStatus[] }): Promise<ReplicaRecord[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  if (params.agent !== undefined) {
    values.push(params.agent);
    where.push(`agent = $${values.length}::text`);
  }
  if (params.statuses !== undefined && params.statuses.length > 0) {
    values.push(params.statuses);
    where.push(`status = ANY($${values.length}::text[])`);
  }
  const sql = `SELECT ${REPLICA_SELECT} FROM replicas ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY registered_at, id COLLATE "C"`;
  return (await run(db, sql, values)).map(replicaFromRow);
}

/** Live or draining replicas not seen since `seenBefore`. */
export async function listStaleReplicas(db: Queryable, seenBefore: Millis): Promise<ReplicaRecord[]> {
  return (await run(db,
    `SELECT ${REPLICA_SELECT} FROM replicas WHERE status IN ('live', 'draining') AND last_seen_at < $1::bigint
     ORDER BY last_seen_at, id COLLATE "C"`,
    [seenBefore])).map(replicaFromRow);
}
