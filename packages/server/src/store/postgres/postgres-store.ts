// The PostgreSQL store: several server processes share one database (capabilities.multiNode)
// and hear each other's changes through LISTEN/NOTIFY (capabilities.crossNodeNotify).
//
// How the work is laid out:
// - reads run on any pooled connection and see what is committed;
// - writes go through the write batch (write-batch.ts): group commit, in call order, each
//   operation atomic and independent, shared counters locked in one global order, events
//   appended last under the events lock (events.ts), so readers following the log never skip
//   one and every process hears of the commit;
// - transitions are one guarded statement each (transitions.ts); claims skip rows another
//   process is claiming;
// - a dedicated session LISTENs for signals (notifier.ts), another holds maintenance
//   leadership as session advisory locks (leadership.ts);
// - a database that cannot be reached makes every method reject with STORE_UNAVAILABLE, fast
//   (connection timeout), and the store recovers by itself when it is back (errors.ts).
//
// Every table lives in the store's schema (the search_path of each of its sessions), so one
// database can hold several independent Flotilla deployments, and tests get a schema each.
//
// Events that do not come from a transition carry no time of their own (NewEvent has no
// `at`): they are stamped with the time of the record they describe when there is one
// (agent createdAt/updatedAt, replica lastSeenAt, task createdAt) and with the store's clock
// otherwise, as in the SQLite store.

import pg from 'pg';
import type {
  AgentRecord, AssignmentRecord, EventRecord, Json, Millis, NewEvent, ReplicaHealth, ReplicaRecord, ReplicaStatus,
  TaskHead, TaskRecord, TaskStatus, Transition, TransitionResult,
} from '../../core/types.ts';
import type {
  AgentStats, ApiKeyRecord, DelegationFigures, AuditListParams, AuditRecord, DueAssignment, HeartbeatParams, HeartbeatResult, NewAuditRecord, NewReplica,
  Store, StoreCapabilities, StoreSignal, TaskCandidatesParams, TaskCreateResult, TaskToCreate, TaskListParams, TokenRevocation,
  RemoteAttempt,
} from '../store.ts';
import {
  agentStats, getAssignment, heartbeat, listAssignmentsByReplica, listAssignmentsByTask, listDueAssignments, listLatestAssignments,
  listRemoteAttempts, setRemote,
} from './assignments.ts';
import {
  appendAudit, countApiKeys, createApiKey, findApiKeyByHash, getApiKey, listApiKeys, listAudit, listTokenRevocations, pruneAudit,
  ensureSecret, pruneTokenRevocations, revokeApiKey, revokeToken, touchApiKey,
} from './auth.ts';
import {
  deleteA2aPushConfig, doneA2aPush, dueA2aPush, enqueueA2aPush, getA2aPushConfig, listA2aPushConfigs, pageA2aPushConfigs, retryA2aPush, saveA2aPushConfig,
} from './a2a-push.ts';
import type { A2aPushConfigRecord, A2aPushConfigSaveResult, A2aPushDeliveryRecord, A2aPushEnqueueItem } from '../store.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, channelName, createClient, createPool, lockKeys,
  validateSchema, type ConnectionSettings, type LockKeys,
} from './connection.ts';
import { FlotillaError } from '../../core/errors.ts';
import { storeClosed, toStoreError } from './errors.ts';
import { EventNumbering, stamp } from './events.ts';
import { lookupCachedResult, openCacheRuns } from './result-cache.ts';
import { advanceSchedule, createSchedule, deleteSchedule, getSchedule, listDueSchedules, listSchedules, nextScheduleFireAt, updateSchedule } from './schedules.ts';
import type { ScheduleFire, ScheduleRecord } from '../../core/schedules.ts';
import { appendToolCalls, deleteToolDomain, getToolDomain, listToolCalls, listToolDomains, pruneToolCalls, setToolDomainHealth, upsertToolDomain } from './tool-domains.ts';
import type { NewToolCall, ToolCallListParams, ToolCallRecord, ToolDomainHealth, ToolDomainRecord, ToolDomainSpec } from '../../core/tool-domains.ts';
import { Leadership } from './leadership.ts';
import { applyMigrations } from './migrations.ts';
import {
  advanceWebhookFeed, createWebhook, deleteWebhook, doneWebhookDelivery, dueWebhookDeliveries, getWebhook, listWebhookDeliveries,
  listWebhookNotifies, listWebhooks, replayWebhookDeliveries, retryWebhookDelivery, updateWebhook, webhookCursor,
} from './webhooks.ts';
import type {
  NewWebhookDelivery, WebhookDeliveryRecord, WebhookDeliveryStatus, WebhookDueDelivery, WebhookNotifyRecord, WebhookRecord,
} from '../store.ts';
import { Notifier } from './notifier.ts';
import {
  createAgent, deleteAgent, getAgent, getReplica, listAgents, listReplicas, listStaleReplicas, queueStats, registerReplica, setAgentControl, setReplicaHealth, setReplicaStatus,
  touchReplicas, updateAgent, upsertAgent,
} from './registry.ts';
import { EVENT_COLUMNS, TASK_RECORD_SELECT, addStatusCounts, eventFromRow, taskRecordFromRow, zeroStatusCounts } from './rows.ts';
import { countedQueryable, run, runOnce, type Queryable } from './sql.ts';
import { counterCopy, counterZero, type StoreCounters } from '../counters.ts';
import { taskCandidates, taskList } from './task-queries.ts';
import { createTaskLists, createTasks, markSla, pruneTasks } from './task-writes.ts';
import { delegationFigures, delegationStatements } from '../delegation-report.ts';
import type { SlaMark } from '../../core/sla.ts';
import { applyTransitionLists, applyTransitions, transitionLocks } from './transitions.ts';
import { WriteBatch, withEvents, type EnqueueOptions, type WriteOp } from './write-batch.ts';
import { deleteRateLimit, giveBackRate, listRateLimits, pauseRate, pruneRateLog, putRateLimit, rateLock, recordUsage, summarizeUsage, takeRate } from './flow.ts';
import type { RateLimitState } from '../../core/rate-limits.ts';
import type { UsageGroupBy, UsageRecord, UsageSum } from '../../core/usage.ts';


/** Heartbeats (lease renewals) commit without waiting for the flush (docs/decisions.md 41). */
const RELAXED = { durable: false } as const;
export interface OpenPostgresStoreParams {
  /** postgres:// or postgresql:// URL. */
  url: string;
  /** Where every table lives (created if missing). Default `public`. */
  schema?: string;
  /** Pooled connections, shared by write batches (see writeConcurrency) and reads. Default 10. */
  poolSize?: number;
  /** Shown in pg_stat_activity; the LISTEN and leadership sessions append `/listen`, `/leader`. */
  applicationName?: string;
  /** How long opening a connection may take before a call fails with STORE_UNAVAILABLE. Default 3 s. */
  connectTimeoutMs?: number;
  /** Apply pending migrations before returning (as openSqliteStore does). Default true. */
  migrate?: boolean;
  /** Most operations per group commit. */
  maxBatchOps?: number;
  /** Write batches that may run at once, each on a pooled connection. Default: a third of the pool, at least 1. */
  writeConcurrency?: number;
  /** Clock for events whose time is not given by a record. */
  now?: () => Millis;
}

/** Opens a pool on the database and (unless told not to) migrates the schema. */
export async function openPostgresStore(params: OpenPostgresStoreParams): Promise<PostgresStore> {
  const store = new PostgresStore(params);
  if (params.migrate === false) return store;
  try {
    await store.migrate();
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}

const EVENT_SELECT = EVENT_COLUMNS.join(', ');

export class PostgresStore implements Store {
  readonly capabilities: StoreCapabilities = { multiNode: true, crossNodeNotify: true, eventSeqsOnWrite: false };
  /** The schema every table lives in. */
  readonly schema: string;
  /** The schema's LISTEN/NOTIFY channel. */
  readonly channel: string;
  readonly #settings: ConnectionSettings;
  readonly #pool: pg.Pool;
  readonly #ownBackends = new Set<number>();
  /** Counted by countedQueryable (reads on the pool, batches and the audit append) and at each COMMIT. */
  readonly #counters: StoreCounters = counterZero();
  /** The pool, counted: every read goes through it. */
  readonly #reads: Queryable;
  readonly #keys: LockKeys;
  readonly #batch: WriteBatch;
  readonly #notifier: Notifier;
  readonly #leadership: Leadership;
  readonly #numbering: EventNumbering;
  readonly #now: () => Millis;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** Use openPostgresStore(): the schema must be migrated first. Connects lazily. */
  constructor(params: OpenPostgresStoreParams) {
    this.schema = validateSchema(params.schema ?? DEFAULT_SCHEMA);
    this.channel = channelName(this.schema);
    const settings: ConnectionSettings = {
      url: params.url,
      schema: this.schema,
      poolSize: Math.max(1, params.poolSize ?? DEFAULT_POOL_SIZE),
      applicationName: params.applicationName ?? null,
      connectTimeoutMs: params.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    };
    this.#settings = settings;
    this.#keys = lockKeys(this.schema);
    this.#pool = createPool(settings);
    // The backends of this store's own connections: a signal one of them sent was written by
    // this process, which has acted on it already (StoreSignal.own). pg knows each client's
    // backend pid from the connection's start (BackendKeyData), so this costs no round trip.
    this.#pool.on('connect', (client) => {
      const pid = (client as pg.PoolClient & { processID?: number }).processID;
      if (typeof pid === 'number') this.#ownBackends.add(pid);
    });
    this.#pool.on('remove', (client) => {
      const pid = (client as pg.PoolClient & { processID?: number }).processID;
      if (typeof pid === 'number') this.#ownBackends.delete(pid);
    });
    this.#reads = countedQueryable(this.#pool, this.#counters);
    this.#batch = new WriteBatch({
      pool: this.#pool,
      counters: this.#counters,
      keyLock: this.#keys.concurrencyKey,
      channel: this.channel,
      ...(params.maxBatchOps === undefined ? {} : { maxOps: params.maxBatchOps }),
      // The rest of the pool stays free for reads, which the dispatcher and every API call need.
      lanes: params.writeConcurrency ?? Math.max(1, Math.floor(settings.poolSize / 3)),
    });
    this.#notifier = new Notifier({
      newClient: () => createClient(settings, 'listen'),
      channel: this.channel,
      isOwn: (pid) => this.#ownBackends.has(pid),
    });
    this.#numbering = new EventNumbering({
      lockKey: this.#keys.events,
      committed: () => {
        this.#counters.commits += 1;
      },
      connect: async () => {
        const client = await this.#pool.connect();
        // A connection error while checked out is reported by the pending query; the listener
        // only keeps the 'error' event from being unhandled (which would crash the process).
        const onError = (): void => {};
        client.on('error', onError);
        return {
          db: countedQueryable(client, this.#counters),
          release: (broken?: Error) => {
            client.off('error', onError);
            client.release(broken);
          },
        };
      },
    });
    this.#leadership = new Leadership({ newClient: () => createClient(settings, 'leader'), key: this.#keys.leader });
    this.#now = params.now ?? Date.now;
  }

  /** Transactions committed by the write batch (group commit makes this far fewer than the writes). */
  get commitCount(): number {
    return this.#batch.commits;
  }

  counterSnapshot(): StoreCounters {
    return counterCopy(this.#counters);
  }

  /** Runs a read on the pool. Rejects with STORE_UNAVAILABLE after close or when the database is unreachable. */
  async #read<T>(fn: (db: Queryable) => Promise<T>): Promise<T> {
    if (this.#closed) throw storeClosed();
    try {
      return await fn(this.#reads);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /** Queues a write for the next group commit; `locks` are the shared counters it will write. */
  #write<T, I = never>(op: WriteOp<T>, options: EnqueueOptions<I> = {}): Promise<T> {
    if (this.#closed) return Promise.reject(storeClosed());
    return this.#batch.enqueue(op, options);
  }

  // -- lifecycle ----------------------------------------------------------------------

  async migrate(): Promise<void> {
    await this.#read(() => applyMigrations(() => createClient(this.#settings, 'migrate'), { schema: this.schema, lockKey: this.#keys.migrations }));
  }

  async ping(): Promise<void> {
    await this.#read((db) => run(db, 'SELECT 1'));
  }

  /**
   * Commits the writes already issued (their promises resolve), then ends every session: the
   * pool, the LISTEN session and the leadership session (so leadership is released at once).
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#batch.close();
      await Promise.all([this.#notifier.close(), this.#leadership.close()]);
      await this.#pool.end();
    })();
    return this.#closing;
  }

  // -- tasks --------------------------------------------------------------------------

  taskCreate(params: { tasks: TaskToCreate[] }): Promise<TaskCreateResult[]> {
    if (params.tasks.length === 0) return this.#read(async () => []);
    const dispatches = params.tasks.flatMap(({ dispatch }) => (dispatch ? [dispatch] : []));
    // One operation for the whole call: its tasks commit together or not at all.
    return this.#write(createTasks(params.tasks), {
      merge: { kind: 'task_create', item: params.tasks, runMany: createTaskLists },
      ...(dispatches.length > 0 ? { locks: transitionLocks(dispatches) } : {}),
    });
  }

  taskGet(params: { id: string }): Promise<TaskRecord | null> {
    return this.#read(async (db) => {
      const [row] = await run(db, `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id WHERE t.id = $1::text`, [params.id]);
      return row ? taskRecordFromRow(row) : null;
    });
  }

  taskGetMany(params: { ids: string[] }): Promise<TaskRecord[]> {
    if (params.ids.length === 0) return this.#read(async () => []);
    return this.#read(async (db) => {
      const rows = await run(db, `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id WHERE t.id = ANY($1::text[])`, [params.ids]);
      return rows.map(taskRecordFromRow);
    });
  }

  taskList(params: TaskListParams): Promise<{ items: TaskRecord[]; nextCursor: string | null }> {
    return this.#read((db) => taskList(db, params));
  }

  taskCandidates(params: TaskCandidatesParams): Promise<TaskHead[]> {
    return this.#read((db) => taskCandidates(db, params));
  }

  taskListResumable(params: { limit: number }): Promise<TaskRecord[]> {
    return this.#read(async (db) => (await run(db,
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
       WHERE t.status = 'waiting' AND NOT EXISTS (
         SELECT 1 FROM jsonb_array_elements_text(t.waiting_for) w (id) JOIN tasks c ON c.id = w.id
         WHERE c.status NOT IN ('completed', 'failed', 'cancelled'))
       ORDER BY t.seq LIMIT $1::integer`, [params.limit])).map(taskRecordFromRow));
  }

  taskListDependents(params: { ids: string[]; limit: number }): Promise<TaskRecord[]> {
    return this.#read(async (db) => (await run(db,
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
       WHERE t.status = 'blocked' AND t.id IN (SELECT d.task_id FROM task_dependencies d WHERE d.depends_on = ANY($1::text[]))
       ORDER BY t.seq LIMIT $2::integer`, [params.ids, params.limit])).map(taskRecordFromRow));
  }

  taskListUnblockable(params: { limit: number }): Promise<TaskRecord[]> {
    // Blocked with every dependency ended (or gone), or, under policy 'fail', one failed, was
    // cancelled or is gone: what decideUnblock would act on.
    return this.#read(async (db) => (await run(db,
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
       WHERE t.status = 'blocked' AND (
         NOT EXISTS (
           SELECT 1 FROM jsonb_array_elements_text(t.waiting_for) w (id) JOIN tasks d ON d.id = w.id
           WHERE d.status NOT IN ('completed', 'failed', 'cancelled'))
         OR (t.on_dependency_failure = 'fail' AND EXISTS (
           SELECT 1 FROM jsonb_array_elements_text(t.waiting_for) w (id) LEFT JOIN tasks d ON d.id = w.id
           WHERE d.id IS NULL OR d.status IN ('failed', 'cancelled'))))
       ORDER BY t.seq LIMIT $1::integer`, [params.limit])).map(taskRecordFromRow));
  }

  taskListSlaDue(params: { now: Millis; limit: number }): Promise<TaskRecord[]> {
    return this.#read(async (db) => (await run(db,
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
       WHERE t.sla_check_at IS NOT NULL AND t.sla_check_at <= $1::bigint
       ORDER BY t.sla_check_at LIMIT $2::integer`, [params.now, params.limit])).map(taskRecordFromRow));
  }

  taskSlaMark(params: { marks: SlaMark[] }): Promise<{ applied: boolean[]; events: EventRecord[] }> {
    if (params.marks.length === 0) return this.#read(async () => ({ applied: [], events: [] }));
    return this.#write(markSla(params.marks, this.#now), { durable: false });
  }

  reportDelegation(params: { since: Millis; now: Millis }): Promise<DelegationFigures[]> {
    return this.#read(async (db) => {
      const sql = delegationStatements({ since: '$1::bigint', now: '$2::bigint', insertion: 'seq', counted: 'counted' });
      const all = (text: string) => run(db, text, text.includes('$2') ? [params.since, params.now] : [params.since]);
      const agents = (await run(db, 'SELECT name FROM agents ORDER BY name COLLATE "C"')).map((r) => String(r.name));
      return delegationFigures(agents, { attempts: await all(sql.attempts), durations: await all(sql.durations), met: await all(sql.met), violated: await all(sql.violated) });
    });
  }

  taskListInputExpired(params: { now: Millis; limit: number }): Promise<TaskRecord[]> {
    return this.#read(async (db) => (await run(db,
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
       WHERE t.input_expires_at IS NOT NULL AND t.input_expires_at <= $1::bigint AND t.status = 'input_required'
       ORDER BY t.input_expires_at LIMIT $2::integer`, [params.now, params.limit])).map(taskRecordFromRow));
  }

  taskNextRunAt(params: { now: Millis }): Promise<Millis | null> {
    return this.#read(async (db) => {
      const [row] = await run(db, `SELECT run_at FROM tasks WHERE status = 'pending' AND run_at > $1::bigint ORDER BY run_at LIMIT 1`, [params.now]);
      return row ? Number(row.run_at) : null;
    });
  }

  taskTransition(params: { transitions: Transition[] }): Promise<TransitionResult[]> {
    if (params.transitions.length === 0) return this.#read(async () => []);
    const { transitions } = params;
    return this.#write(applyTransitions(transitions), {
      locks: transitionLocks(transitions),
      merge: { kind: 'transitions', item: transitions, runMany: applyTransitionLists },
      durable: transitions.some((t) => t.durable),
    });
  }

  taskCountByStatus(params: { agent?: string }): Promise<Record<TaskStatus, number>> {
    return this.#read(async (db) => addStatusCounts(zeroStatusCounts(), params.agent === undefined
      ? await run(db, 'SELECT status, count(*) AS n FROM tasks GROUP BY status')
      : await run(db, 'SELECT status, count(*) AS n FROM tasks WHERE agent = $1::text GROUP BY status', [params.agent])));
  }

  taskPrune(params: { finishedBefore: Millis; limit: number }): Promise<number> {
    return this.#write(pruneTasks(params));
  }

  // -- assignments --------------------------------------------------------------------

  assignmentGet(params: { id: string }): Promise<AssignmentRecord | null> {
    return this.#read((db) => getAssignment(db, params.id));
  }

  assignmentListByTask(params: { taskId: string }): Promise<AssignmentRecord[]> {
    return this.#read((db) => listAssignmentsByTask(db, params.taskId));
  }

  assignmentListLatest(params: { taskIds: string[] }): Promise<AssignmentRecord[]> {
    return this.#read((db) => listLatestAssignments(db, params.taskIds));
  }

  assignmentListByReplica(params: { replicaId: string }): Promise<DueAssignment[]> {
    return this.#read((db) => listAssignmentsByReplica(db, params.replicaId));
  }

  assignmentListDue(params: { now: Millis; cancelGraceMs: Millis; limit: number }): Promise<DueAssignment[]> {
    return this.#read((db) => listDueAssignments(db, params));
  }

  assignmentHeartbeat(params: HeartbeatParams): Promise<HeartbeatResult> {
    return this.#write(heartbeat(params), RELAXED);
  }

  agentStats(params: { agent: string; sample: number }): Promise<AgentStats> {
    return this.#read((db) => agentStats(db, params));
  }

  assignmentSetRemote(params: { assignmentId: string; replicaId: string; remoteTaskId: string; remoteContextId: string | null }): Promise<boolean> {
    return this.#write(setRemote(params));
  }

  assignmentRemoteList(params: { taskId: string }): Promise<RemoteAttempt[]> {
    return this.#read((db) => listRemoteAttempts(db, params.taskId));
  }

  // -- agents -------------------------------------------------------------------------

  agentCreate(params: { agent: AgentRecord; event: NewEvent }): Promise<EventRecord[]> {
    return this.#write(createAgent(params.agent, params.event));
  }

  agentUpsert(params: { agent: AgentRecord; event: NewEvent }): Promise<EventRecord[]> {
    return this.#write(upsertAgent(params.agent, params.event));
  }

  agentGet(params: { name: string }): Promise<AgentRecord | null> {
    return this.#read((db) => getAgent(db, params.name));
  }

  agentList(): Promise<AgentRecord[]> {
    return this.#read((db) => listAgents(db));
  }

  agentUpdate(params: { agent: AgentRecord; event: NewEvent }): Promise<{ updated: boolean; events: EventRecord[] }> {
    return this.#write(updateAgent(params.agent, params.event));
  }

  agentDelete(params: { name: string; event: NewEvent }): Promise<{ outcome: 'deleted' | 'not_found' | 'in_use'; events: EventRecord[] }> {
    return this.#write(deleteAgent(params.name, params.event, this.#now));
  }

  agentSetControl(params: { name: string; control: 'paused' | 'overloaded'; at: Millis | null; event: NewEvent }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }> {
    return this.#write(setAgentControl(params, this.#now));
  }

  agentQueueStats(params: { now: Millis }): Promise<Array<{ agent: string | null; pending: number; oldestRunAt: Millis }>> {
    return this.#read((db) => queueStats(db, params.now));
  }

  // -- replicas -----------------------------------------------------------------------

  replicaRegister(params: { replica: NewReplica; event: NewEvent }): Promise<{ replica: ReplicaRecord; events: EventRecord[] }> {
    return this.#write(registerReplica(params.replica, params.event), { locks: { replicas: [params.replica.id] } });
  }

  replicaGet(params: { id: string }): Promise<ReplicaRecord | null> {
    return this.#read((db) => getReplica(db, params.id));
  }

  replicaList(params: { agent?: string; statuses?: ReplicaStatus[] }): Promise<ReplicaRecord[]> {
    return this.#read((db) => listReplicas(db, params));
  }

  replicaTouch(params: { ids: string[]; at: Millis }): Promise<void> {
    if (params.ids.length === 0) return this.#read(async () => undefined);
    const ids = [...new Set(params.ids)];
    return this.#write(touchReplicas(ids, params.at), { locks: { replicas: ids }, durable: false });
  }

  replicaSetStatus(params: { id: string; from: ReplicaStatus[]; to: ReplicaStatus; event: NewEvent }): Promise<{ changed: boolean; events: EventRecord[] }> {
    return this.#write(setReplicaStatus(params, this.#now), { locks: { replicas: [params.id] } });
  }

  replicaSetHealth(params: { id: string; health: ReplicaHealth; detail: Record<string, Json> | null; at: Millis; event: NewEvent }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }> {
    return this.#write(setReplicaHealth(params), { locks: { replicas: [params.id] } });
  }

  replicaListStale(params: { seenBefore: Millis }): Promise<ReplicaRecord[]> {
    return this.#read((db) => listStaleReplicas(db, params.seenBefore));
  }

  // -- coordination between server processes --------------------------------------------

  signalSubscribe(params: { listener: (signal: StoreSignal) => void }): Promise<() => Promise<void>> {
    if (this.#closed) return Promise.reject(storeClosed());
    return this.#notifier.subscribe(params.listener);
  }

  leadershipAcquire(params: { name: string }): Promise<boolean> {
    if (this.#closed) return Promise.reject(storeClosed());
    return this.#leadership.acquire(params.name);
  }

  /**
   * The highest seq handed out, after numbering what was committed before the call: every seq
   * at or below it is settled (visible, or deleted by retention). See events.ts.
   */
  eventLastSeq(): Promise<number> {
    return this.#read(async () => Number((await this.#numbering.read('SELECT last FROM event_counter'))[0]?.last ?? 0));
  }

  // -- concurrency keys ---------------------------------------------------------------

  /** Only keys with live assignments are in the map. */
  concurrencyKeyInFlight(params: { keys: string[] }): Promise<Map<string, number>> {
    return this.#read(async (db) => {
      const out = new Map<string, number>();
      if (params.keys.length === 0) return out;
      const rows = await run(db, 'SELECT key, in_flight FROM concurrency_keys WHERE key = ANY($1::text[]) AND in_flight > 0', [params.keys]);
      for (const row of rows) out.set(String(row.key), Number(row.in_flight));
      return out;
    });
  }

  // -- events -------------------------------------------------------------------------

  eventAppend(params: { events: NewEvent[]; durable?: boolean }): Promise<EventRecord[]> {
    if (params.events.length === 0) return this.#read(async () => []);
    return this.#write(async () => withEvents(stamp(params.events, this.#now()), [], (records) => records), { durable: params.durable ?? true });
  }

  eventList(params: { after: number; limit: number; taskId?: string }): Promise<EventRecord[]> {
    return this.#read(async () => {
      // Numbered first, in the same round trip, so the page holds every event committed before the call.
      const after = Math.floor(params.after);
      const limit = Math.max(0, Math.floor(params.limit));
      if (!Number.isSafeInteger(after) || !Number.isSafeInteger(limit)) throw new FlotillaError('VALIDATION_FAILED', 'after and limit must be safe integers');
      const byTask = params.taskId === undefined ? '' : `task_id = ${pg.escapeLiteral(params.taskId)} AND `;
      const rows = await this.#numbering.read(`SELECT ${EVENT_SELECT} FROM events WHERE ${byTask}seq > ${after} ORDER BY seq LIMIT ${limit}`);
      return rows.map(eventFromRow);
    });
  }

  // -- auth ---------------------------------------------------------------------------

  apiKeyCreate(params: { key: ApiKeyRecord }): Promise<void> {
    return this.#write(createApiKey(params.key));
  }

  apiKeyFindByHash(params: { hash: string }): Promise<ApiKeyRecord | null> {
    return this.#read((db) => findApiKeyByHash(db, params.hash));
  }

  apiKeyGet(params: { id: string }): Promise<ApiKeyRecord | null> {
    return this.#read((db) => getApiKey(db, params.id));
  }

  apiKeyList(params: { includeRevoked?: boolean }): Promise<ApiKeyRecord[]> {
    return this.#read((db) => listApiKeys(db, params.includeRevoked ?? false));
  }

  apiKeyRevoke(params: { id: string; at: Millis }): Promise<{ revoked: boolean }> {
    return this.#write(revokeApiKey(params.id, params.at));
  }

  apiKeyCount(): Promise<number> {
    return this.#read((db) => countApiKeys(db));
  }

  apiKeyTouch(params: { id: string; at: Millis }): Promise<void> {
    return this.#write(touchApiKey(params.id, params.at));
  }

  secretEnsure(params: { name: string; value: string; at: Millis }): Promise<string> {
    return this.#write(ensureSecret(params));
  }

  tokenRevoke(params: { jti: string; at: Millis; expiresAt: Millis }): Promise<{ revoked: boolean }> {
    return this.#write(revokeToken(params));
  }

  tokenRevocationList(params: { since: Millis }): Promise<TokenRevocation[]> {
    return this.#read((db) => listTokenRevocations(db, params.since));
  }

  tokenRevocationPrune(params: { expiredBefore: Millis }): Promise<number> {
    return this.#write(pruneTokenRevocations(params.expiredBefore));
  }

  // -- audit log ----------------------------------------------------------------------

  auditAppend(params: { entries: NewAuditRecord[] }): Promise<AuditRecord[]> {
    if (params.entries.length === 0) return this.#read(async () => []);
    // Its own transaction, outside the group commit, committed without waiting for the WAL
    // flush: the audit log is written after the answers it records (decisions.md #34), and
    // a commit of its own per batch otherwise waits on the disk the task writes are waiting
    // on. A database crash can lose the last fraction of a second of entries, never a task
    // write (those keep synchronous commits). The entries commit together, in order.
    return this.#read(async () => {
      const client = await this.#pool.connect();
      const tx = countedQueryable(client, this.#counters);
      // A connection error while checked out is reported by the pending query; the listener
      // only keeps the 'error' event from being unhandled (which would crash the process).
      const onError = (): void => {};
      client.on('error', onError);
      let broken: Error | undefined;
      try {
        await runOnce(tx, 'BEGIN; SET LOCAL synchronous_commit TO OFF');
        const outcome = await appendAudit(params.entries)(tx);
        if (!outcome.ok) throw outcome.error;
        await runOnce(tx, 'COMMIT');
        this.#counters.commits += 1;
        return outcome.result([]);
      } catch (err) {
        broken = err instanceof Error ? err : new Error(String(err));
        await runOnce(tx, 'ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.off('error', onError);
        // A connection that failed is destroyed rather than returned to the pool.
        client.release(broken);
      }
    });
  }

  auditList(params: AuditListParams): Promise<{ items: AuditRecord[]; nextBefore: number | null }> {
    return this.#read((db) => listAudit(db, params));
  }

  auditPrune(params: { before: Millis; limit: number }): Promise<number> {
    return this.#write(pruneAudit(params));
  }

  // -- A2A push notifications (a2a-push.ts) ---------------------------------------------

  a2aPushConfigSave(params: { config: A2aPushConfigRecord; ownerOnly?: boolean; maxPerTask?: number }): Promise<A2aPushConfigSaveResult> {
    return this.#write(saveA2aPushConfig(params));
  }

  a2aPushConfigGet(params: { taskId: string; id: string }): Promise<A2aPushConfigRecord | null> {
    return this.#read((db) => getA2aPushConfig(db, params.taskId, params.id));
  }

  a2aPushConfigList(params: { taskIds: string[] | null }): Promise<A2aPushConfigRecord[]> {
    return this.#read((db) => listA2aPushConfigs(db, params.taskIds));
  }

  a2aPushConfigDelete(params: { taskId: string; id: string; ownerId?: string | null }): Promise<{ deleted: boolean }> {
    return this.#write(deleteA2aPushConfig(params));
  }

  a2aPushConfigPage(params: { after: { taskId: string; id: string } | null; limit: number }): Promise<A2aPushConfigRecord[]> {
    return this.#read((db) => pageA2aPushConfigs(db, params));
  }

  a2aPushEnqueue(params: { items: A2aPushEnqueueItem[] }): Promise<number> {
    if (params.items.length === 0) return Promise.resolve(0);
    return this.#write(enqueueA2aPush(params.items), RELAXED);
  }

  a2aPushDue(params: { now: Millis; limit: number }): Promise<{ deliveries: A2aPushDeliveryRecord[]; nextAt: Millis | null }> {
    return this.#read((db) => dueA2aPush(db, params.now, params.limit));
  }

  a2aPushDone(params: { id: number }): Promise<void> {
    return this.#write(doneA2aPush(params.id), RELAXED);
  }

  a2aPushRetry(params: { id: number; attempts: number; nextAt: Millis; error: string }): Promise<void> {
    return this.#write(retryA2aPush(params), RELAXED);
  }

  // -- tool domains (issue 15) ----------------------------------------------------------

  toolDomainUpsert(params: { name: string; spec: ToolDomainSpec; source: 'config' | 'api'; at: Millis }): Promise<{ created: boolean; domain: ToolDomainRecord }> {
    return this.#write(upsertToolDomain(params));
  }

  toolDomainGet(params: { name: string }): Promise<ToolDomainRecord | null> {
    return this.#read((db) => getToolDomain(db, params.name));
  }

  toolDomainList(): Promise<ToolDomainRecord[]> {
    return this.#read((db) => listToolDomains(db));
  }

  toolDomainDelete(params: { name: string }): Promise<{ deleted: boolean }> {
    return this.#write(deleteToolDomain(params.name));
  }

  toolDomainSetHealth(params: { name: string; health: ToolDomainHealth; event: NewEvent; updatedAt?: Millis }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }> {
    return this.#write(setToolDomainHealth(params, this.#now));
  }

  toolCallAppend(params: { calls: NewToolCall[] }): Promise<void> {
    if (params.calls.length === 0) return this.#read(async () => undefined);
    // Relaxed, like the audit log: the calls are recorded after the answers they record.
    return this.#write(appendToolCalls(params.calls), { durable: false });
  }

  toolCallList(params: ToolCallListParams): Promise<{ items: ToolCallRecord[]; nextBefore: number | null }> {
    return this.#read((db) => listToolCalls(db, params));
  }

  toolCallPrune(params: { before: Millis; limit: number }): Promise<number> {
    return this.#write(pruneToolCalls(params));
  }

  // -- webhooks (webhooks.ts) -----------------------------------------------------------

  webhookCreate(params: { webhook: WebhookRecord }): Promise<void> {
    return this.#write(createWebhook(params.webhook));
  }

  webhookGet(params: { id: string }): Promise<WebhookRecord | null> {
    return this.#read((db) => getWebhook(db, params.id));
  }

  webhookList(params: { ownerId?: string }): Promise<WebhookRecord[]> {
    return this.#read((db) => listWebhooks(db, params.ownerId));
  }

  webhookUpdate(params: { webhook: WebhookRecord; ifUpdatedAt: Millis }): Promise<{ updated: boolean }> {
    return this.#write(updateWebhook(params.webhook, params.ifUpdatedAt));
  }

  webhookDelete(params: { id: string }): Promise<{ deleted: boolean }> {
    return this.#write(deleteWebhook(params.id));
  }

  webhookFeedCursor(): Promise<number> {
    return this.#read((db) => webhookCursor(db));
  }

  webhookFeedAdvance(params: { from: number; to: number; deliveries: NewWebhookDelivery[]; notifies: WebhookNotifyRecord[]; notified: string[] }): Promise<{ advanced: boolean }> {
    return this.#write(advanceWebhookFeed(params), RELAXED);
  }

  webhookNotifyList(params: { taskIds: string[] }): Promise<WebhookNotifyRecord[]> {
    return this.#read((db) => listWebhookNotifies(db, params.taskIds));
  }

  webhookDeliveryDue(params: { now: Millis; limit: number }): Promise<{ deliveries: WebhookDueDelivery[]; nextAt: Millis | null }> {
    return this.#read((db) => dueWebhookDeliveries(db, params.now, params.limit));
  }

  webhookDeliveryDone(params: { seq: number }): Promise<void> {
    return this.#write(doneWebhookDelivery(params.seq), RELAXED);
  }

  webhookDeliveryRetry(params: { seq: number; attempts: number; nextAt: Millis; error: string; park: boolean }): Promise<void> {
    return this.#write(retryWebhookDelivery(params), RELAXED);
  }

  webhookDeliveryList(params: { subscriptionId: string; status: WebhookDeliveryStatus; limit: number }): Promise<WebhookDeliveryRecord[]> {
    return this.#read((db) => listWebhookDeliveries(db, params));
  }

  webhookDeliveryReplay(params: { subscriptionId: string; eventSeq?: number; now: Millis }): Promise<number> {
    return this.#write(replayWebhookDeliveries(params));
  }

  // -- schedules (issue 16) -------------------------------------------------------------
  scheduleCreate(params: { schedule: ScheduleRecord }): Promise<{ created: boolean }> {
    return this.#write(createSchedule(params.schedule));
  }

  scheduleGet(params: { name: string }): Promise<ScheduleRecord | null> {
    return this.#read((db) => getSchedule(db, params.name));
  }

  scheduleList(): Promise<ScheduleRecord[]> {
    return this.#read((db) => listSchedules(db));
  }

  scheduleUpdate(params: { expectedUpdatedAt: Millis; schedule: ScheduleRecord }): Promise<{ updated: boolean }> {
    return this.#write(updateSchedule(params));
  }

  scheduleAdvance(params: { name: string; expectedNextFireAt: Millis; nextFireAt: Millis | null; fire: ScheduleFire | null }): Promise<{ advanced: boolean }> {
    return this.#write(advanceSchedule(params));
  }

  scheduleDelete(params: { name: string }): Promise<{ deleted: boolean }> {
    return this.#write(deleteSchedule(params.name));
  }

  scheduleListDue(params: { now: Millis; limit: number }): Promise<ScheduleRecord[]> {
    return this.#read((db) => listDueSchedules(db, params));
  }

  scheduleNextFireAt(): Promise<Millis | null> {
    return this.#read((db) => nextScheduleFireAt(db));
  }

  // -- cached results (issue 16) ----------------------------------------------------------
  taskCacheLookup(params: { agent: string; cacheKey: string; scope: string; finishedAfter: Millis }): Promise<TaskRecord | null> {
    return this.#read((db) => lookupCachedResult(db, params));
  }

  taskCacheOpenRun(params: { agent: string; cacheKey: string; scope: string; parentId: string | null }): Promise<TaskRecord | null> {
    return this.#read(async (db) => (await openCacheRuns(db, [{ id: '', agent: params.agent, cacheKey: params.cacheKey, cacheScope: params.scope, cachedFrom: null, parentId: params.parentId }])).get('') ?? null);
  }

  // -- provider rate limits and usage (issue 16: flow.ts) ---------------------------------

  rateLimitPut(params: { key: string; rpm: number | null; tpm: number | null; source: 'config' | 'api'; at: Millis }): Promise<{ created: boolean }> {
    return this.#write(putRateLimit(params));
  }

  rateLimitDelete(params: { key: string }): Promise<{ deleted: boolean }> {
    return this.#write(deleteRateLimit(params.key));
  }

  rateLimitList(params: { keys?: string[]; now: Millis }): Promise<RateLimitState[]> {
    return this.#read((db) => listRateLimits(db, params));
  }

  rateLimitTake(params: { key: string; now: Millis; requests: Array<{ holder: string; tokens: number }> }): Promise<{ taken: number }> {
    if (params.requests.length === 0) return this.#read(async () => ({ taken: 0 }));
    return this.#write(takeRate(params), { durable: false, locks: { keys: [rateLock(params.key)] } });
  }

  rateLimitGiveBack(params: { holders: string[] }): Promise<void> {
    if (params.holders.length === 0) return this.#read(async () => undefined);
    return this.#write(giveBackRate(params.holders), { durable: false });
  }

  rateLimitPause(params: { key: string; until: Millis; at: Millis }): Promise<void> {
    return this.#write(pauseRate(params));
  }

  rateLogPrune(params: { before: Millis; limit: number }): Promise<number> {
    return this.#write(pruneRateLog(params), { durable: false });
  }

  usageRecord(params: { usage: UsageRecord }): Promise<void> {
    return this.#write(recordUsage(params.usage), { durable: false });
  }

  usageSummary(params: { groupBy: UsageGroupBy; since: Millis | null; until: Millis | null; taskId?: string }): Promise<UsageSum[]> {
    return this.#read((db) => summarizeUsage(db, params));
  }
}
