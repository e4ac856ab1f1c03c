// The embedded store: one SQLite file, one connection, one process (capabilities.multiNode
// is false). node:sqlite is synchronous; every method is async only to honour the Store
// interface.
//
// Writes go through the write batch (group commit, see write-batch.ts): each mutating method
// enqueues a synchronous closure and resolves after the COMMIT that made it durable. Reads
// run directly against the connection; they cannot interleave with an open batch because a
// flush never yields to the event loop.
//
// Events that do not come from a transition carry no time of their own (NewEvent has no
// `at`): they are stamped with the time of the record they describe when there is one
// (agent createdAt/updatedAt, replica lastSeenAt, task createdAt) and with the store's clock
// otherwise.

import { toStoreError } from './errors.ts';
import type { DatabaseSync } from 'node:sqlite';
import { FlotillaError } from '../../core/errors.ts';
import type {
  AgentRecord, AssignmentRecord, EventRecord, Json, Millis, NewEvent, NewTask, ReplicaHealth, ReplicaRecord, ReplicaStatus,
  TaskHead, TaskRecord, TaskStatus, Transition, TransitionResult,
} from '../../core/types.ts';
import type { SlaMark } from '../../core/sla.ts';
import { delegationFigures, delegationStatements } from '../delegation-report.ts';
import type { StoreSignal, NewReplica, DelegationFigures,
  AgentStats, ApiKeyRecord, AuditListParams, AuditRecord, DueAssignment, HeartbeatParams, HeartbeatResult, NewAuditRecord, Store,
  StoreCapabilities, TaskCandidatesParams, TaskCreateResult, TaskListParams, TaskToCreate, TokenRevocation,
  RemoteAttempt,
} from '../store.ts';
import type { A2aPushConfigRecord, A2aPushConfigSaveResult, A2aPushDeliveryRecord, A2aPushEnqueueItem } from '../store.ts';
import { TASK_STATUSES } from '@flotilla/sdk';
import {
  appendAudit, countApiKeys, createApiKey, findApiKeyByHash, getApiKey, listApiKeys, listAudit, listTokenRevocations, pruneAudit,
  ensureSecret, pruneTokenRevocations, revokeApiKey, revokeToken, touchApiKey,
} from './auth.ts';
import { openDatabase, type SynchronousMode } from './connection.ts';
import {
  deleteA2aPushConfig, doneA2aPush, dueA2aPush, enqueueA2aPush, getA2aPushConfig, listA2aPushConfigs, pageA2aPushConfigs, retryA2aPush, saveA2aPushConfig,
} from './a2a-push.ts';
import { applyMigrations } from './migrations.ts';
import {
  ASSIGNMENT_COLUMNS, TASK_HEAD_COLUMNS, TASK_RECORD_SELECT, agentFromRow, agentParams, assignmentFromRow, changes, eventFromRow,
  insertSql, replicaFromRow, slaDeadlineColumn, selectList, valuesOf, taskHeadFromRow, taskRecordFromRow, toJson, toJsonOrNull, type Params, type Row,
} from './rows.ts';
import { StatementCache, type CountedStatement } from './statement-cache.ts';
import { counterCopy, counterZero, type StoreCounters } from '../counters.ts';
import { taskCandidates, taskList } from './task-queries.ts';
import { insertEvents } from './transitions.ts';
import { lookupCachedResult, openCacheRun } from './result-cache.ts';
import { advanceSchedule, createSchedule, deleteSchedule, getSchedule, listDueSchedules, listSchedules, nextScheduleFireAt, updateSchedule } from './schedules.ts';
import type { ScheduleFire, ScheduleRecord } from '../../core/schedules.ts';
import { appendToolCalls, deleteToolDomain, getToolDomain, listToolCalls, listToolDomains, pruneToolCalls, setToolDomainHealth, upsertToolDomain } from './tool-domains.ts';
import type { NewToolCall, ToolCallListParams, ToolCallRecord, ToolDomainHealth, ToolDomainRecord, ToolDomainSpec } from '../../core/tool-domains.ts';
import { WriteBatch, refuse, type Mergeable, type Refusal } from './write-batch.ts';
import { applyTransitionSet, insertEventRows } from './transition-set.ts';
import {
  advanceWebhookFeed, createWebhook, deleteWebhook, doneWebhookDelivery, dueWebhookDeliveries, getWebhook, listWebhookDeliveries,
  listWebhookNotifies, listWebhooks, replayWebhookDeliveries, retryWebhookDelivery, updateWebhook, webhookCursor,
} from './webhooks.ts';
import type {
  NewWebhookDelivery, WebhookDeliveryRecord, WebhookDeliveryStatus, WebhookDueDelivery, WebhookNotifyRecord, WebhookRecord,
} from '../store.ts';
import { deleteRateLimit, giveBackRate, listRateLimits, pauseRate, pruneRateLog, putRateLimit, recordUsage, summarizeUsage, takeRate } from './flow.ts';
import type { RateLimitState } from '../../core/rate-limits.ts';
import type { UsageGroupBy, UsageRecord, UsageSum } from '../../core/usage.ts';

export interface OpenSqliteStoreParams {
  /** A file path, or ':memory:' (tests). */
  path: string;
  /** FULL (default) survives power loss; NORMAL only a process crash. See connection.ts. */
  synchronous?: SynchronousMode;
  /** Most operations per group commit. */
  maxBatchOps?: number;
  /** Clock for events whose time is not given by a record. */
  now?: () => Millis;
}

/** Opens (creating if needed) and migrates the database. */
export async function openSqliteStore(params: OpenSqliteStoreParams): Promise<SqliteStore> {
  const db = openDatabase(params);
  try {
    applyMigrations(db);
    return new SqliteStore(db, params);
  } catch (err) {
    db.close();
    throw err;
  }
}

const LIVE_ASSIGNMENT = `status IN ('dispatched', 'running')`;
/** Heartbeats, progress and liveness commit without an fsync (docs/decisions.md 41). */
const RELAXED = { durable: false } as const;

const TASK_INSERT_COLUMNS = [
  'id', 'status', 'priority', 'agent', 'capabilities', 'replica', 'site', 'concurrency_key', 'attempt', 'max_attempts',
  'timeout_ms', 'run_at', 'assignment_id', 'cancel_requested_at', 'created_at', 'updated_at', 'finished_at', 'idempotency_key',
  'parent_id', 'created_by', 'root_id', 'depth', 'owner_id', 'sla_deadline', 'sla_state', 'sla_check_at',
  'waiting_for', 'has_dependents', 'on_dependency_failure',
  'cache_key', 'cache_scope', 'cached_from',
  'rate_key', 'estimated_tokens',
] as const;

/** Head columns of `tasks t` prefixed `t_`, and assignment columns of `assignments a` prefixed `a_`, for joins. */
const DUE_SELECT = `${selectList('t', TASK_HEAD_COLUMNS, 't_')}, ${selectList('a', ASSIGNMENT_COLUMNS, 'a_')}`;
const ASSIGNMENT_SELECT = ASSIGNMENT_COLUMNS.join(', ');

function zeroCounts(): Record<TaskStatus, number> {
  const counts = {} as Record<TaskStatus, number>;
  for (const s of TASK_STATUSES) counts[s] = 0;
  return counts;
}

function addCounts(into: Record<TaskStatus, number>, rows: Row[]): void {
  for (const row of rows) {
    const status = row.status as TaskStatus;
    into[status] += Number(row.n);
  }
}

function dueFromRow(row: Row): DueAssignment {
  return { task: taskHeadFromRow(row, 't_'), assignment: assignmentFromRow(row, 'a_') };
}

/** Cuts the results of merged calls back into one list per call. */
function splitResults<T>(lists: ReadonlyArray<readonly unknown[]>, results: T[]): T[][] {
  let next = 0;
  return lists.map((list) => {
    const mine = results.slice(next, next + list.length);
    next += list.length;
    return mine;
  });
}

export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { multiNode: false, crossNodeNotify: false, eventSeqsOnWrite: true };
  readonly #db: DatabaseSync;
  readonly #cache: StatementCache;
  readonly #batch: WriteBatch;
  readonly #now: () => Millis;
  /** Every statement is counted by the statement cache, every commit by the write batch. roundTrips stays 0: in process. */
  readonly #counters: StoreCounters = counterZero();
  #closed = false;

  /** Use openSqliteStore(): the database must be configured and migrated first. */
  constructor(db: DatabaseSync, options: { maxBatchOps?: number; now?: () => Millis; synchronous?: SynchronousMode } = {}) {
    this.#db = db;
    this.#cache = new StatementCache(db, this.#counters);
    this.#batch = new WriteBatch(db, {
      counters: this.#counters,
      synchronous: options.synchronous ?? 'FULL',
      ...(options.maxBatchOps === undefined ? {} : { maxOps: options.maxBatchOps }),
    });
    this.#now = options.now ?? Date.now;
  }

  /** Transactions committed by the write batch (group commit makes this far fewer than the writes). */
  get commitCount(): number {
    return this.#batch.commits;
  }

  /** The underlying connection, for diagnostics and tests. Do not write through it. */
  get database(): DatabaseSync {
    return this.#db;
  }

  counterSnapshot(): StoreCounters {
    return counterCopy(this.#counters);
  }

  #sql(sql: string): CountedStatement {
    return this.#cache.sql(sql);
  }

  /** Runs a read now. Throws STORE_UNAVAILABLE after close. */
  #read<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new FlotillaError('STORE_UNAVAILABLE', 'the store is closed'));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(toStoreError(err));
    }
  }

  /** Queues a write for the next group commit; `durable: false` for a relaxed write (write-batch.ts). */
  #write<T, I = never>(fn: () => T | Refusal, options: { durable?: boolean; merge?: Mergeable<I> } = {}): Promise<T> {
    return this.#batch.enqueue(fn, options);
  }

  // -- lifecycle ----------------------------------------------------------------------

  async migrate(): Promise<void> {
    await this.#read(() => applyMigrations(this.#db));
  }

  async ping(): Promise<void> {
    await this.#read(() => this.#sql('SELECT 1').get());
  }

  /** Flushes queued writes (they commit and their promises resolve), then closes. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#batch.close();
    this.#closed = true;
    this.#db.close();
  }

  // -- tasks --------------------------------------------------------------------------

  taskCreate(params: { tasks: TaskToCreate[] }): Promise<TaskCreateResult[]> {
    if (params.tasks.length === 0) return this.#read(() => []);
    // One operation for the whole call (its tasks commit together or not at all), merged with
    // the other calls queued beside it: their events and hand-offs are written together.
    const { tasks } = params;
    return this.#write(() => this.#createLists([tasks])[0]!, {
      merge: { kind: 'task_create', item: tasks, runMany: (lists) => this.#createLists(lists) },
    });
  }

  /**
   * The tasks of several taskCreate calls, in call order: each call refused as a whole
   * (UNKNOWN_AGENT) before any of its tasks is written, or created, then its tasks' events,
   * then its hand-offs as one set of transitions (transition-set.ts). Each call's events take
   * consecutive seqs, in call order: the engine publishes each call's events as it returns,
   * and a live stream that saw a later seq skips an earlier one.
   */
  #createLists(lists: ReadonlyArray<readonly TaskToCreate[]>): Array<TaskCreateResult[] | Refusal> {
    // In the same write as the insert, and before any of it: a delete of the agent is
    // either before (refused here, nothing written) or after (refused there, since these
    // tasks are then unfinished).
    const agentExists = this.#sql('SELECT 1 AS one FROM agents WHERE name = ?');
    const known = new Set<string>();
    return lists.map((list) => {
      const missing = list.find(({ task }) => {
        if (task.agent === null || known.has(task.agent)) return false;
        if (!agentExists.get(task.agent)) return true;
        known.add(task.agent);
        return false;
      });
      if (missing) return refuse(new FlotillaError('UNKNOWN_AGENT', `no agent named "${missing.task.agent}" is registered`));
      const events: Array<{ event: NewEvent; at: Millis }> = [];
      const created: Array<{ result: Extract<TaskCreateResult, { created: true }>; count: number }> = [];
      const handOffs: Array<{ result: Extract<TaskCreateResult, { created: true }>; dispatch: Transition }> = [];
      const results = list.map(({ task, events: mine, dispatch }) => {
        const result = this.#createTask(task);
        if (!result.created) return result;
        for (const event of mine) events.push({ event, at: task.createdAt });
        created.push({ result, count: mine.length });
        if (dispatch) handOffs.push({ result, dispatch });
        return result;
      });
      const records = insertEventRows(this.#cache, events);
      let next = 0;
      for (const { result, count } of created) {
        result.events = records.slice(next, next + count);
        next += count;
      }
      if (handOffs.length > 0) {
        applyTransitionSet(this.#cache, handOffs.map((h) => h.dispatch)).forEach((r, i) => (handOffs[i]!.result.handOff = r));
      }
      return results;
    });
  }

  /** Inserts the task (its events are the caller's), or returns the task its idempotency key names. */
  #createTask(task: NewTask): TaskCreateResult {
    if (task.idempotencyKey !== null) {
      const row = this.#sql(
        `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id WHERE t.idempotency_key = ?`,
      ).get(task.idempotencyKey);
      if (row) return { created: false, task: taskRecordFromRow(row) };
    }
    // A run of the same cached work still open: the submit shares it (core/result-cache.ts).
    const open = openCacheRun(this.#cache, task);
    if (open !== null) return { created: false, task: open };
    const inserted = this.#sql(insertSql('tasks', TASK_INSERT_COLUMNS)).run(...valuesOf({
      id: task.id,
      status: task.status,
      priority: task.priority,
      agent: task.agent,
      capabilities: toJson(task.capabilities),
      replica: task.replica,
      site: task.site,
      concurrency_key: task.concurrencyKey,
      attempt: task.attempt,
      max_attempts: task.maxAttempts,
      timeout_ms: task.timeoutMs,
      run_at: task.runAt,
      assignment_id: task.assignmentId,
      cancel_requested_at: task.cancelRequestedAt,
      created_at: task.createdAt,
      updated_at: task.updatedAt,
      finished_at: task.finishedAt,
      idempotency_key: task.idempotencyKey,
      parent_id: task.parentId,
      created_by: task.createdBy,
      root_id: task.rootId,
      depth: task.depth,
      owner_id: task.ownerId,
      sla_deadline: slaDeadlineColumn(task.slaDeadline),
      sla_state: task.slaState,
      sla_check_at: task.slaCheckAt,
      // Only a blocked task is created waiting (for its dependencies).
      waiting_for: task.status === 'blocked' ? toJson(task.waitingFor ?? []) : null,
      has_dependents: task.hasDependents === true ? 1 : 0,
      on_dependency_failure: task.onDependencyFailure ?? null,
      cache_key: task.cacheKey ?? null,
      cache_scope: task.cacheScope ?? null,
      cached_from: task.cachedFrom ?? null,
      rate_key: task.rateKey ?? null,
      estimated_tokens: task.estimatedTokens ?? null,
    }, TASK_INSERT_COLUMNS));
    this.#sql('INSERT INTO task_payloads (task_id, type, input, result, error, correlation, traceparent, tools, allow_degraded, depends_on, ref, input_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      task.id, task.type, toJson(task.input), toJsonOrNull(task.result), toJsonOrNull(task.error), toJson(task.correlation), task.traceparent, toJson(task.tools),
      task.allowDegraded === true ? 1 : 0, toJson(task.dependsOn ?? []), task.ref ?? null, toJsonOrNull(task.inputFrom ?? null),
    );
    if (task.dependsOn !== undefined && task.dependsOn.length > 0) this.#dependenciesWrite(task.id, task.dependsOn);
    const seq = Number(inserted.lastInsertRowid);
    return { created: true, task: { ...task, seq }, events: [], handOff: null };
  }

  /** The dependency edges of a new task, and the mark on each dependency that something depends on it. */
  #dependenciesWrite(taskId: string, dependsOn: readonly string[]): void {
    const ids = JSON.stringify(dependsOn);
    this.#sql('INSERT OR IGNORE INTO task_dependencies (depends_on, task_id) SELECT value, :task FROM json_each(:ids)').run({ task: taskId, ids });
    this.#sql('UPDATE tasks SET has_dependents = 1 WHERE id IN (SELECT value FROM json_each(:ids)) AND has_dependents = 0').run({ ids });
  }

  taskListDependents(params: { ids: string[]; limit: number }): Promise<TaskRecord[]> {
    return this.#read(() => this.#sql(
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
       WHERE t.status = 'blocked' AND t.id IN (
         SELECT d.task_id FROM task_dependencies d WHERE d.depends_on IN (SELECT value FROM json_each(:ids)))
       ORDER BY t.seq LIMIT :limit`,
    ).all({ ids: JSON.stringify(params.ids), limit: params.limit }).map(taskRecordFromRow));
  }

  taskListUnblockable(params: { limit: number }): Promise<TaskRecord[]> {
    // Blocked with every dependency ended (or gone), or, under policy 'fail', one failed, was
    // cancelled or is gone: what decideUnblock would act on.
    return this.#read(() => this.#sql(
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t INDEXED BY tasks_blocked JOIN task_payloads p ON p.task_id = t.id
       WHERE t.status = 'blocked' AND (
         NOT EXISTS (
           SELECT 1 FROM json_each(t.waiting_for) w JOIN tasks d ON d.id = w.value
           WHERE d.status NOT IN ('completed', 'failed', 'cancelled'))
         OR (t.on_dependency_failure = 'fail' AND EXISTS (
           SELECT 1 FROM json_each(t.waiting_for) w LEFT JOIN tasks d ON d.id = w.value
           WHERE d.id IS NULL OR d.status IN ('failed', 'cancelled'))))
       ORDER BY t.seq LIMIT ?`,
    ).all(params.limit).map(taskRecordFromRow));
  }

  taskGet(params: { id: string }): Promise<TaskRecord | null> {
    return this.#read(() => {
      const row = this.#sql(`SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id WHERE t.id = ?`).get(params.id);
      return row ? taskRecordFromRow(row) : null;
    });
  }

  taskGetMany(params: { ids: string[] }): Promise<TaskRecord[]> {
    return this.#read(() => {
      const out: TaskRecord[] = [];
      // One prepared point lookup per id: in process, as cheap as an IN list and no statement per list length.
      const stmt = this.#sql(`SELECT ${TASK_RECORD_SELECT} FROM tasks t JOIN task_payloads p ON p.task_id = t.id WHERE t.id = ?`);
      for (const id of new Set(params.ids)) {
        const row = stmt.get(id);
        if (row) out.push(taskRecordFromRow(row));
      }
      return out;
    });
  }

  taskList(params: TaskListParams): Promise<{ items: TaskRecord[]; nextCursor: string | null }> {
    return this.#read(() => taskList(this.#cache, params));
  }

  taskCandidates(params: TaskCandidatesParams): Promise<TaskHead[]> {
    return this.#read(() => taskCandidates(this.#cache, params));
  }

  taskListResumable(params: { limit: number }): Promise<TaskRecord[]> {
    return this.#read(() => this.#sql(
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t INDEXED BY tasks_waiting JOIN task_payloads p ON p.task_id = t.id
       WHERE t.status = 'waiting' AND NOT EXISTS (
         SELECT 1 FROM json_each(t.waiting_for) w JOIN tasks c ON c.id = w.value
         WHERE c.status NOT IN ('completed', 'failed', 'cancelled'))
       ORDER BY t.seq LIMIT ?`,
    ).all(params.limit).map(taskRecordFromRow));
  }

  taskListSlaDue(params: { now: Millis; limit: number }): Promise<TaskRecord[]> {
    return this.#read(() => this.#sql(
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t INDEXED BY tasks_sla_check JOIN task_payloads p ON p.task_id = t.id
       WHERE t.sla_check_at IS NOT NULL AND t.sla_check_at <= ? ORDER BY t.sla_check_at LIMIT ?`,
    ).all(params.now, params.limit).map(taskRecordFromRow));
  }

  taskSlaMark(params: { marks: SlaMark[] }): Promise<{ applied: boolean[]; events: EventRecord[] }> {
    if (params.marks.length === 0) return this.#read(() => ({ applied: [], events: [] }));
    return this.#write(() => {
      const applied: boolean[] = [];
      const events: NewEvent[] = [];
      for (const m of params.marks) {
        // The guard and the event in one write: of two sweeps marking the same task, one changes the row.
        const r = this.#sql('UPDATE tasks SET sla_state = ?, sla_check_at = ? WHERE id = ? AND sla_state = ? AND status = ?')
          .run(m.state, m.checkAt, m.taskId, m.fromState, m.fromStatus);
        const ok = changes(r) > 0;
        applied.push(ok);
        if (ok && m.event !== null) events.push(m.event);
      }
      return { applied, events: events.length > 0 ? insertEvents(this.#cache, events, this.#now()) : [] };
    }, { durable: false });
  }

  reportDelegation(params: { since: Millis; now: Millis }): Promise<DelegationFigures[]> {
    return this.#read(() => {
      const sql = delegationStatements({ since: ':since', now: ':now', insertion: 'rowid', counted: 'counted = 1' });
      const args = { since: params.since, now: params.now };
      const all = (text: string) => this.#sql(text).all(...(text.includes(':now') ? [args] : [{ since: params.since }]));
      const agents = this.#sql('SELECT name FROM agents ORDER BY name').all().map((r) => String(r.name));
      return delegationFigures(agents, { attempts: all(sql.attempts), durations: all(sql.durations), met: all(sql.met), violated: all(sql.violated) });
    });
  }

  taskListInputExpired(params: { now: Millis; limit: number }): Promise<TaskRecord[]> {
    return this.#read(() => this.#sql(
      `SELECT ${TASK_RECORD_SELECT} FROM tasks t INDEXED BY tasks_input_expiry JOIN task_payloads p ON p.task_id = t.id
       WHERE t.input_expires_at IS NOT NULL AND t.input_expires_at <= ? AND t.status = 'input_required'
       ORDER BY t.input_expires_at LIMIT ?`,
    ).all(params.now, params.limit).map(taskRecordFromRow));
  }

  taskNextRunAt(params: { now: Millis }): Promise<Millis | null> {
    return this.#read(() => {
      // INDEXED BY: without statistics the planner would rather use the equality on status
      // (tasks_status_seq) and sort; the partial index answers with one seek.
      const row = this.#sql(
        `SELECT run_at FROM tasks INDEXED BY tasks_pending_run_at
         WHERE status = 'pending' AND run_at > ? ORDER BY run_at LIMIT 1`,
      ).get(params.now);
      return row ? Number(row.run_at) : null;
    });
  }

  taskTransition(params: { transitions: Transition[] }): Promise<TransitionResult[]> {
    if (params.transitions.length === 0) return this.#read(() => []);
    // One batch operation, merged with the other calls queued beside it (transition-set.ts):
    // a conflict undoes only its own transition. An unexpected error rejects the call and
    // undoes all of it (the batch reruns the others without it).
    const { transitions } = params;
    return this.#write(() => applyTransitionSet(this.#cache, transitions), {
      durable: transitions.some((t) => t.durable),
      merge: { kind: 'transitions', item: transitions, runMany: (lists) => splitResults(lists, applyTransitionSet(this.#cache, lists.flat())) },
    });
  }

  taskCountByStatus(params: { agent?: string }): Promise<Record<TaskStatus, number>> {
    return this.#read(() => {
      const counts = zeroCounts();
      const rows = params.agent === undefined
        ? this.#sql('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status').all()
        : this.#sql('SELECT status, COUNT(*) AS n FROM tasks WHERE agent = ? GROUP BY status').all(params.agent);
      addCounts(counts, rows);
      return counts;
    });
  }

  taskPrune(params: { finishedBefore: Millis; limit: number }): Promise<number> {
    return this.#write(() => {
      const limit = Math.max(0, Math.floor(params.limit));
      const ids = this.#sql(
        `SELECT id FROM tasks INDEXED BY tasks_terminal_finished
         WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < :before
         ORDER BY finished_at LIMIT :limit`,
      ).all({ before: params.finishedBefore, limit }).map((r) => String(r.id));
      if (ids.length > 0) {
        const list = JSON.stringify(ids);
        // Children first: the references to tasks have no cascade.
        for (const sql of [
          'DELETE FROM events WHERE task_id IN (SELECT value FROM json_each(:ids))',
          'DELETE FROM assignments WHERE task_id IN (SELECT value FROM json_each(:ids))',
          'DELETE FROM task_payloads WHERE task_id IN (SELECT value FROM json_each(:ids))',
          'DELETE FROM task_dependencies WHERE task_id IN (SELECT value FROM json_each(:ids))',
          'DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(:ids))',
        ]) {
          this.#sql(sql).run({ ids: list });
        }
      }
      // Events about no task in particular (agents, replicas) age out with the same horizon.
      this.#sql(
        `DELETE FROM events WHERE seq IN (
           SELECT seq FROM events WHERE task_id IS NULL AND at < :before ORDER BY at LIMIT :limit)`,
      ).run({ before: params.finishedBefore, limit });
      return ids.length;
    });
  }

  // -- assignments --------------------------------------------------------------------

  assignmentGet(params: { id: string }): Promise<AssignmentRecord | null> {
    return this.#read(() => this.#assignment(params.id));
  }

  #assignment(id: string): AssignmentRecord | null {
    const row = this.#sql(`SELECT ${ASSIGNMENT_SELECT} FROM assignments WHERE id = ?`).get(id);
    return row ? assignmentFromRow(row) : null;
  }

  assignmentListByTask(params: { taskId: string }): Promise<AssignmentRecord[]> {
    return this.#read(() =>
      this.#sql(`SELECT ${ASSIGNMENT_SELECT} FROM assignments WHERE task_id = ? ORDER BY rowid`)
        .all(params.taskId)
        .map((row) => assignmentFromRow(row)),
    );
  }

  assignmentListLatest(params: { taskIds: string[] }): Promise<AssignmentRecord[]> {
    return this.#read(() => {
      // One prepared point lookup per task (assignments_task holds the rowid): as cheap as a set statement in process.
      const stmt = this.#sql(`SELECT ${ASSIGNMENT_SELECT} FROM assignments WHERE task_id = ? ORDER BY rowid DESC LIMIT 1`);
      const out: AssignmentRecord[] = [];
      for (const taskId of new Set(params.taskIds)) {
        const row = stmt.get(taskId);
        if (row) out.push(assignmentFromRow(row));
      }
      return out;
    });
  }

  assignmentListByReplica(params: { replicaId: string }): Promise<DueAssignment[]> {
    return this.#read(() =>
      this.#sql(
        `SELECT ${DUE_SELECT} FROM assignments a JOIN tasks t ON t.id = a.task_id
         WHERE a.replica_id = ? AND a.${LIVE_ASSIGNMENT} ORDER BY a.rowid`,
      ).all(params.replicaId).map(dueFromRow),
    );
  }

  assignmentListDue(params: { now: Millis; cancelGraceMs: Millis; limit: number }): Promise<DueAssignment[]> {
    // Three range scans of partial indexes (lease, deadline, cancellations past their grace),
    // united; each is pinned with INDEXED BY so the reaper never walks every assignment.
    // Oldest dispatch first, so a backlog of expiries drains in a stable order.
    return this.#read(() =>
      this.#sql(
        `WITH due (id) AS (
           SELECT id FROM assignments INDEXED BY assignments_live_lease
           WHERE ${LIVE_ASSIGNMENT} AND lease_expires_at <= :now
           UNION
           SELECT id FROM assignments INDEXED BY assignments_live_deadline
           WHERE ${LIVE_ASSIGNMENT} AND deadline_at <= :now
           UNION
           SELECT assignment_id FROM tasks INDEXED BY tasks_live_cancel
           WHERE status IN ('dispatched', 'running') AND cancel_requested_at IS NOT NULL AND cancel_requested_at <= :cancel_before
         )
         SELECT ${DUE_SELECT} FROM due JOIN assignments a ON a.id = due.id JOIN tasks t ON t.id = a.task_id
         WHERE a.${LIVE_ASSIGNMENT}
         ORDER BY a.rowid LIMIT :limit`,
      ).all({ now: params.now, cancel_before: params.now - params.cancelGraceMs, limit: Math.max(0, params.limit) }).map(dueFromRow),
    );
  }

  assignmentHeartbeat(params: HeartbeatParams): Promise<HeartbeatResult> {
    return this.#write((): HeartbeatResult => {
      const guard = `WHERE id = :id AND replica_id = :replica_id AND ${LIVE_ASSIGNMENT} RETURNING ${ASSIGNMENT_SELECT}`;
      const base = { id: params.assignmentId, replica_id: params.replicaId, lease: params.leaseExpiresAt };
      const row = params.progress
        ? this.#sql(
          `UPDATE assignments SET lease_expires_at = :lease, progress_percent = :percent, progress_message = :message,
             progress_at = :progress_at ${guard}`,
        ).get({ ...base, percent: params.progress.percent, message: params.progress.message, progress_at: params.progress.at })
        : this.#sql(`UPDATE assignments SET lease_expires_at = :lease ${guard}`).get(base);
      if (!row) return { ok: false, assignment: this.#assignment(params.assignmentId) };
      const assignment = assignmentFromRow(row);
      const task = this.#sql('SELECT cancel_requested_at FROM tasks WHERE id = ?').get(assignment.taskId);
      return { ok: true, cancelRequested: task !== undefined && task.cancel_requested_at !== null, assignment };
    }, RELAXED);
  }

  assignmentSetRemote(params: { assignmentId: string; replicaId: string; remoteTaskId: string; remoteContextId: string | null }): Promise<boolean> {
    return this.#write(() => {
      const r = this.#sql(
        `UPDATE assignments SET remote_task_id = :remote, remote_context_id = :context
         WHERE id = :id AND replica_id = :replica_id AND ${LIVE_ASSIGNMENT} AND (remote_task_id IS NULL OR remote_task_id = :remote)`,
      ).run({ id: params.assignmentId, replica_id: params.replicaId, remote: params.remoteTaskId, context: params.remoteContextId });
      return changes(r) > 0;
    });
  }

  assignmentRemoteList(params: { taskId: string }): Promise<RemoteAttempt[]> {
    return this.#read(() => this.#sql(
      `SELECT id, attempt, remote_task_id, remote_context_id FROM assignments
       WHERE task_id = ? AND remote_task_id IS NOT NULL ORDER BY attempt`,
    ).all(params.taskId).map((row) => ({
      assignmentId: String(row.id), attempt: Number(row.attempt), remoteTaskId: String(row.remote_task_id),
      remoteContextId: row.remote_context_id === null ? null : String(row.remote_context_id),
    })));
  }

  /**
   * byStatus counts the agent's tasks: those addressed to it by name, plus capability-routed
   * tasks whose most recent attempt ran on it (an addressed task can only ever run on its
   * agent, so nothing is counted twice). Attempt counts cover the retained history; dispatch
   * failures are not counted as failed attempts, as the state machine does not count them.
   */
  agentStats(params: { agent: string; sample: number }): Promise<AgentStats> {
    return this.#read(() => {
      const byStatus = zeroCounts();
      addCounts(byStatus, this.#sql('SELECT status, COUNT(*) AS n FROM tasks WHERE agent = ? GROUP BY status').all(params.agent));
      addCounts(byStatus, this.#sql(
        `SELECT t.status AS status, COUNT(*) AS n
         FROM (SELECT DISTINCT task_id FROM assignments WHERE agent = :agent) mine
         JOIN tasks t ON t.id = mine.task_id
         WHERE t.agent IS NULL
           AND (SELECT a.agent FROM assignments a WHERE a.task_id = t.id ORDER BY a.rowid DESC LIMIT 1) = :agent
         GROUP BY t.status`,
      ).all({ agent: params.agent }));
      const recentDurationsMs = this.#sql(
        `SELECT finished_at - started_at AS d FROM assignments
         WHERE agent = :agent AND status = 'completed' AND started_at IS NOT NULL
         ORDER BY finished_at DESC LIMIT :sample`,
      ).all({ agent: params.agent, sample: Math.max(0, params.sample) }).map((r) => Number(r.d));
      const outcomes = this.#sql(
        `SELECT
           COUNT(*) FILTER (WHERE status = 'completed') AS completed,
           COUNT(*) FILTER (WHERE status IN ('failed', 'timed_out', 'lost') AND counted = 1) AS failed
         FROM assignments WHERE agent = ?`,
      ).get(params.agent);
      return {
        byStatus,
        recentDurationsMs,
        attemptsCompleted: Number(outcomes?.completed ?? 0),
        attemptsFailed: Number(outcomes?.failed ?? 0),
      };
    });
  }

  // -- agents -------------------------------------------------------------------------

  agentCreate(params: { agent: AgentRecord; event: NewEvent }): Promise<EventRecord[]> {
    return this.#write(() => {
      if (this.#sql('SELECT 1 FROM agents WHERE name = ?').get(params.agent.name)) {
        return refuse(new FlotillaError('AGENT_EXISTS', `agent ${params.agent.name} already exists`));
      }
      this.#sql(
        `INSERT INTO agents (name, description, capabilities, max_concurrency, max_attempts, timeout_ms, level, tool_domains,
           concurrency_limits, retry_base_delay_ms, retry_max_delay_ms, runtime, created_at, updated_at, tools, max_depth, a2a, a2a_skill,
           max_in_flight)
         VALUES (:name, :description, :capabilities, :max_concurrency, :max_attempts, :timeout_ms, :level, :tool_domains,
           :concurrency_limits, :retry_base_delay_ms, :retry_max_delay_ms, :runtime, :created_at, :updated_at, :tools, :max_depth, :a2a, :a2a_skill,
           :max_in_flight)`,
      ).run(agentParams(params.agent));
      return insertEvents(this.#cache, [params.event], params.agent.createdAt);
    });
  }

  /** Replacing keeps the original createdAt: re-reading a config file does not recreate its agents. */
  agentUpsert(params: { agent: AgentRecord; event: NewEvent }): Promise<EventRecord[]> {
    return this.#write(() => {
      this.#sql(
        `INSERT INTO agents (name, description, capabilities, max_concurrency, max_attempts, timeout_ms, level, tool_domains,
           concurrency_limits, retry_base_delay_ms, retry_max_delay_ms, runtime, created_at, updated_at, tools, max_depth, a2a, a2a_skill,
           max_in_flight)
         VALUES (:name, :description, :capabilities, :max_concurrency, :max_attempts, :timeout_ms, :level, :tool_domains,
           :concurrency_limits, :retry_base_delay_ms, :retry_max_delay_ms, :runtime, :created_at, :updated_at, :tools, :max_depth, :a2a, :a2a_skill,
           :max_in_flight)
         ON CONFLICT (name) DO UPDATE SET
           description = excluded.description, capabilities = excluded.capabilities,
           max_concurrency = excluded.max_concurrency, max_attempts = excluded.max_attempts,
           timeout_ms = excluded.timeout_ms, level = excluded.level, tool_domains = excluded.tool_domains,
           concurrency_limits = excluded.concurrency_limits, retry_base_delay_ms = excluded.retry_base_delay_ms,
           retry_max_delay_ms = excluded.retry_max_delay_ms, runtime = excluded.runtime, updated_at = excluded.updated_at,
           tools = excluded.tools, max_depth = excluded.max_depth, a2a = excluded.a2a, a2a_skill = excluded.a2a_skill,
           max_in_flight = excluded.max_in_flight`,
      ).run(agentParams(params.agent));
      return insertEvents(this.#cache, [params.event], params.agent.updatedAt);
    });
  }

  agentGet(params: { name: string }): Promise<AgentRecord | null> {
    return this.#read(() => {
      const row = this.#sql('SELECT * FROM agents WHERE name = ?').get(params.name);
      return row ? agentFromRow(row) : null;
    });
  }

  agentList(): Promise<AgentRecord[]> {
    return this.#read(() => this.#sql('SELECT * FROM agents ORDER BY name').all().map(agentFromRow));
  }

  agentUpdate(params: { agent: AgentRecord; event: NewEvent }): Promise<{ updated: boolean; events: EventRecord[] }> {
    return this.#write(() => {
      const r = this.#sql(
        `UPDATE agents SET description = :description, capabilities = :capabilities, max_concurrency = :max_concurrency,
           max_attempts = :max_attempts, timeout_ms = :timeout_ms, level = :level, tool_domains = :tool_domains,
           concurrency_limits = :concurrency_limits, retry_base_delay_ms = :retry_base_delay_ms,
           retry_max_delay_ms = :retry_max_delay_ms, runtime = :runtime, created_at = :created_at, updated_at = :updated_at,
           tools = :tools, max_depth = :max_depth, a2a = :a2a, a2a_skill = :a2a_skill,
           max_in_flight = :max_in_flight
         WHERE name = :name`,
      ).run(agentParams(params.agent));
      if (changes(r) === 0) return { updated: false, events: [] };
      return { updated: true, events: insertEvents(this.#cache, [params.event], params.agent.updatedAt) };
    });
  }

  agentSetControl(params: { name: string; control: 'paused' | 'overloaded'; at: Millis | null; event: NewEvent }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }> {
    const column = params.control === 'paused' ? 'paused_at' : 'overloaded_at';
    return this.#write(() => {
      // Guarded on the column's present state: set only when clear, cleared only when set.
      const r = this.#sql(`UPDATE agents SET ${column} = ? WHERE name = ? AND (${column} IS NULL) = (? IS NOT NULL)`).run(params.at, params.name, params.at);
      if (changes(r) === 0) return { found: this.#sql('SELECT 1 AS one FROM agents WHERE name = ?').get(params.name) !== undefined, changed: false, events: [] };
      return { found: true, changed: true, events: insertEvents(this.#cache, [params.event], this.#now()) };
    });
  }

  agentQueueStats(params: { now: Millis }): Promise<Array<{ agent: string | null; pending: number; oldestRunAt: Millis }>> {
    return this.#read(() => this.#sql(
      `SELECT agent, count(*) AS n, min(run_at) AS oldest FROM tasks INDEXED BY tasks_pending_agent_order
       WHERE status = 'pending' AND run_at <= ? GROUP BY agent`,
    ).all(params.now).map((row) => ({ agent: row.agent === null ? null : String(row.agent), pending: Number(row.n), oldestRunAt: Number(row.oldest) })));
  }

  agentDelete(params: { name: string; event: NewEvent }): Promise<{ outcome: 'deleted' | 'not_found' | 'in_use'; events: EventRecord[] }> {
    return this.#write(() => {
      const r = this.#sql(
        `DELETE FROM agents WHERE name = :name AND NOT EXISTS (
           SELECT 1 FROM tasks WHERE agent = :name AND status IN ('pending', 'dispatched', 'running', 'blocked'))`,
      ).run({ name: params.name });
      if (changes(r) === 0) {
        const exists = this.#sql('SELECT 1 AS one FROM agents WHERE name = ?').get(params.name);
        return { outcome: exists ? 'in_use' as const : 'not_found' as const, events: [] };
      }
      return { outcome: 'deleted' as const, events: insertEvents(this.#cache, [params.event], this.#now()) };
    });
  }

  // -- replicas -----------------------------------------------------------------------

  /**
   * The status always becomes live (the `status` of the given record is not consulted), and
   * a re-registration keeps registeredAt, inFlight, the outcome counters and lastAssignedAt.
   */
  replicaRegister(params: { replica: NewReplica; event: NewEvent }): Promise<{ replica: ReplicaRecord; events: EventRecord[] }> {
    return this.#write(() => {
      const r = params.replica;
      const row = this.#sql(
        `INSERT INTO replicas (id, agent, site, status, max_concurrency, in_flight, registered_at, last_seen_at,
           last_assigned_at, completed, failed)
         VALUES (:id, :agent, :site, 'live', :max_concurrency, 0, :registered_at, :last_seen_at, NULL, 0, 0)
         ON CONFLICT (id) DO UPDATE SET
           agent = excluded.agent, site = excluded.site, status = CASE replicas.status WHEN 'draining' THEN 'draining' ELSE 'live' END,
           health = 'healthy', health_detail = NULL, health_at = NULL,
           max_concurrency = excluded.max_concurrency, last_seen_at = excluded.last_seen_at
         RETURNING *`,
      ).get({
        id: r.id,
        agent: r.agent,
        site: r.site,
        max_concurrency: r.maxConcurrency,
        registered_at: r.registeredAt,
        last_seen_at: r.lastSeenAt,
      });
      if (!row) throw new Error(`replica ${r.id} upsert returned no row`);
      const events = insertEvents(this.#cache, [params.event], r.lastSeenAt);
      return { replica: replicaFromRow(row), events };
    });
  }

  replicaGet(params: { id: string }): Promise<ReplicaRecord | null> {
    return this.#read(() => {
      const row = this.#sql('SELECT * FROM replicas WHERE id = ?').get(params.id);
      return row ? replicaFromRow(row) : null;
    });
  }

  replicaList(params: { agent?: string; statuses?: ReplicaStatus[] }): Promise<ReplicaRecord[]> {
    return this.#read(() => {
      const where: string[] = [];
      const args: Params = {};
      if (params.agent !== undefined) {
        where.push('agent = :agent');
        args.agent = params.agent;
      }
      if (params.statuses !== undefined && params.statuses.length > 0) {
        where.push('status IN (SELECT value FROM json_each(:statuses))');
        args.statuses = JSON.stringify(params.statuses);
      }
      const sql = `SELECT * FROM replicas ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY registered_at, id`;
      return this.#sql(sql).all(args).map(replicaFromRow);
    });
  }

  /** Never moves lastSeenAt backwards (touches may arrive out of order). */
  replicaTouch(params: { ids: string[]; at: Millis }): Promise<void> {
    if (params.ids.length === 0) return this.#read(() => undefined);
    return this.#write(() => {
      this.#sql(
        `UPDATE replicas SET last_seen_at = max(last_seen_at, :at) WHERE id IN (SELECT value FROM json_each(:ids))`,
      ).run({ at: params.at, ids: JSON.stringify(params.ids) });
    }, RELAXED);
  }

  replicaSetStatus(params: { id: string; from: ReplicaStatus[]; to: ReplicaStatus; event: NewEvent }): Promise<{ changed: boolean; events: EventRecord[] }> {
    return this.#write(() => {
      const r = this.#sql(
        'UPDATE replicas SET status = :to WHERE id = :id AND status IN (SELECT value FROM json_each(:from))',
      ).run({ id: params.id, to: params.to, from: JSON.stringify(params.from) });
      if (changes(r) === 0) return { changed: false, events: [] };
      return { changed: true, events: insertEvents(this.#cache, [params.event], this.#now()) };
    });
  }

  replicaSetHealth(params: { id: string; health: ReplicaHealth; detail: Record<string, Json> | null; at: Millis; event: NewEvent }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }> {
    return this.#write(() => {
      const before = this.#sql('SELECT health FROM replicas WHERE id = ?').get(params.id);
      if (!before) return { found: false, changed: false, events: [] };
      this.#sql('UPDATE replicas SET health = ?, health_detail = ?, health_at = ? WHERE id = ?').run(params.health, toJsonOrNull(params.detail), params.at, params.id);
      if (before.health === params.health) return { found: true, changed: false, events: [] };
      return { found: true, changed: true, events: insertEvents(this.#cache, [params.event], params.at) };
    });
  }

  replicaListStale(params: { seenBefore: Millis }): Promise<ReplicaRecord[]> {
    return this.#read(() =>
      this.#sql(
        `SELECT * FROM replicas WHERE status IN ('live', 'draining') AND last_seen_at < ? ORDER BY last_seen_at, id`,
      ).all(params.seenBefore).map(replicaFromRow),
    );
  }

  // -- coordination: one process owns a SQLite file, so it is always the leader and no
  // other process ever needs a signal.

  signalSubscribe(_params: { listener: (signal: StoreSignal) => void }): Promise<() => Promise<void>> {
    return Promise.resolve(async () => {});
  }

  leadershipAcquire(_params: { name: string }): Promise<boolean> {
    return Promise.resolve(true);
  }

  eventLastSeq(): Promise<number> {
    return this.#read(() => {
      const row = this.#sql('SELECT coalesce(max(seq), 0) AS seq FROM events').get();
      return Number(row?.seq ?? 0);
    });
  }

  // -- concurrency keys ---------------------------------------------------------------

  /** Only keys with live assignments are in the map. */
  concurrencyKeyInFlight(params: { keys: string[] }): Promise<Map<string, number>> {
    return this.#read(() => {
      const out = new Map<string, number>();
      if (params.keys.length === 0) return out;
      const rows = this.#sql(
        'SELECT key, in_flight FROM concurrency_keys WHERE key IN (SELECT value FROM json_each(?)) AND in_flight > 0',
      ).all(JSON.stringify(params.keys));
      for (const row of rows) out.set(String(row.key), Number(row.in_flight));
      return out;
    });
  }

  // -- events -------------------------------------------------------------------------

  eventAppend(params: { events: NewEvent[]; durable?: boolean }): Promise<EventRecord[]> {
    if (params.events.length === 0) return this.#read(() => []);
    return this.#write(() => insertEvents(this.#cache, params.events, this.#now()), { durable: params.durable ?? true });
  }

  eventList(params: { after: number; limit: number; taskId?: string }): Promise<EventRecord[]> {
    return this.#read(() => {
      const limit = Math.max(0, params.limit);
      const rows = params.taskId === undefined
        ? this.#sql('SELECT * FROM events WHERE seq > :after ORDER BY seq LIMIT :limit').all({ after: params.after, limit })
        : this.#sql('SELECT * FROM events WHERE task_id = :task_id AND seq > :after ORDER BY seq LIMIT :limit')
          .all({ after: params.after, limit, task_id: params.taskId });
      return rows.map(eventFromRow);
    });
  }

  // -- auth ---------------------------------------------------------------------------

  apiKeyCreate(params: { key: ApiKeyRecord }): Promise<void> {
    return this.#write(() => createApiKey(this.#cache, params.key));
  }

  apiKeyFindByHash(params: { hash: string }): Promise<ApiKeyRecord | null> {
    return this.#read(() => findApiKeyByHash(this.#cache, params.hash));
  }

  apiKeyGet(params: { id: string }): Promise<ApiKeyRecord | null> {
    return this.#read(() => getApiKey(this.#cache, params.id));
  }

  apiKeyList(params: { includeRevoked?: boolean }): Promise<ApiKeyRecord[]> {
    return this.#read(() => listApiKeys(this.#cache, params.includeRevoked ?? false));
  }

  apiKeyRevoke(params: { id: string; at: Millis }): Promise<{ revoked: boolean }> {
    return this.#write(() => revokeApiKey(this.#cache, params.id, params.at));
  }

  apiKeyCount(): Promise<number> {
    return this.#read(() => countApiKeys(this.#cache));
  }

  apiKeyTouch(params: { id: string; at: Millis }): Promise<void> {
    return this.#write(() => touchApiKey(this.#cache, params.id, params.at));
  }

  secretEnsure(params: { name: string; value: string; at: Millis }): Promise<string> {
    return this.#write(() => ensureSecret(this.#cache, params));
  }

  tokenRevoke(params: { jti: string; at: Millis; expiresAt: Millis }): Promise<{ revoked: boolean }> {
    return this.#write(() => revokeToken(this.#cache, params));
  }

  tokenRevocationList(params: { since: Millis }): Promise<TokenRevocation[]> {
    return this.#read(() => listTokenRevocations(this.#cache, params.since));
  }

  tokenRevocationPrune(params: { expiredBefore: Millis }): Promise<number> {
    return this.#write(() => pruneTokenRevocations(this.#cache, params.expiredBefore));
  }

  // -- audit log ----------------------------------------------------------------------

  auditAppend(params: { entries: NewAuditRecord[] }): Promise<AuditRecord[]> {
    if (params.entries.length === 0) return this.#read(() => []);
    // One operation: the entries commit together, in order.
    return this.#write(() => appendAudit(this.#cache, params.entries));
  }

  auditList(params: AuditListParams): Promise<{ items: AuditRecord[]; nextBefore: number | null }> {
    return this.#read(() => listAudit(this.#cache, params));
  }

  auditPrune(params: { before: Millis; limit: number }): Promise<number> {
    return this.#write(() => pruneAudit(this.#cache, params));
  }

  // -- A2A push notifications (a2a-push.ts) ---------------------------------------------

  a2aPushConfigSave(params: { config: A2aPushConfigRecord; ownerOnly?: boolean; maxPerTask?: number }): Promise<A2aPushConfigSaveResult> {
    return this.#write(() => saveA2aPushConfig(this.#cache, params));
  }

  a2aPushConfigGet(params: { taskId: string; id: string }): Promise<A2aPushConfigRecord | null> {
    return this.#read(() => getA2aPushConfig(this.#cache, params.taskId, params.id));
  }

  a2aPushConfigList(params: { taskIds: string[] | null }): Promise<A2aPushConfigRecord[]> {
    return this.#read(() => listA2aPushConfigs(this.#cache, params.taskIds));
  }

  a2aPushConfigDelete(params: { taskId: string; id: string; ownerId?: string | null }): Promise<{ deleted: boolean }> {
    return this.#write(() => deleteA2aPushConfig(this.#cache, params));
  }

  a2aPushConfigPage(params: { after: { taskId: string; id: string } | null; limit: number }): Promise<A2aPushConfigRecord[]> {
    return this.#read(() => pageA2aPushConfigs(this.#cache, params));
  }

  a2aPushEnqueue(params: { items: A2aPushEnqueueItem[] }): Promise<number> {
    if (params.items.length === 0) return this.#read(() => 0);
    return this.#write(() => enqueueA2aPush(this.#cache, params.items), RELAXED);
  }

  a2aPushDue(params: { now: Millis; limit: number }): Promise<{ deliveries: A2aPushDeliveryRecord[]; nextAt: Millis | null }> {
    return this.#read(() => dueA2aPush(this.#cache, params.now, params.limit));
  }

  a2aPushDone(params: { id: number }): Promise<void> {
    return this.#write(() => doneA2aPush(this.#cache, params.id), RELAXED);
  }

  a2aPushRetry(params: { id: number; attempts: number; nextAt: Millis; error: string }): Promise<void> {
    return this.#write(() => retryA2aPush(this.#cache, params), RELAXED);
  }

  // -- tool domains (issue 15) ----------------------------------------------------------

  toolDomainUpsert(params: { name: string; spec: ToolDomainSpec; source: 'config' | 'api'; at: Millis }): Promise<{ created: boolean; domain: ToolDomainRecord }> {
    return this.#write(() => upsertToolDomain(this.#cache, params));
  }

  toolDomainGet(params: { name: string }): Promise<ToolDomainRecord | null> {
    return this.#read(() => getToolDomain(this.#cache, params.name));
  }

  toolDomainList(): Promise<ToolDomainRecord[]> {
    return this.#read(() => listToolDomains(this.#cache));
  }

  toolDomainDelete(params: { name: string }): Promise<{ deleted: boolean }> {
    return this.#write(() => deleteToolDomain(this.#cache, params.name));
  }

  toolDomainSetHealth(params: { name: string; health: ToolDomainHealth; event: NewEvent; updatedAt?: Millis }): Promise<{ found: boolean; changed: boolean; events: EventRecord[] }> {
    return this.#write(() => {
      const before = setToolDomainHealth(this.#cache, params.name, params.health, params.updatedAt);
      if (before === undefined) return { found: false, changed: false, events: [] };
      if (before === params.health.status) return { found: true, changed: false, events: [] };
      return { found: true, changed: true, events: insertEvents(this.#cache, [params.event], params.health.checkedAt ?? this.#now()) };
    });
  }

  toolCallAppend(params: { calls: NewToolCall[] }): Promise<void> {
    if (params.calls.length === 0) return this.#read(() => undefined);
    return this.#write(() => appendToolCalls(this.#cache, params.calls), RELAXED);
  }

  toolCallList(params: ToolCallListParams): Promise<{ items: ToolCallRecord[]; nextBefore: number | null }> {
    return this.#read(() => listToolCalls(this.#cache, params));
  }

  toolCallPrune(params: { before: Millis; limit: number }): Promise<number> {
    return this.#write(() => pruneToolCalls(this.#cache, params));
  }

  // -- webhooks (webhooks.ts) -----------------------------------------------------------

  webhookCreate(params: { webhook: WebhookRecord }): Promise<void> {
    return this.#write(() => createWebhook(this.#cache, params.webhook));
  }

  webhookGet(params: { id: string }): Promise<WebhookRecord | null> {
    return this.#read(() => getWebhook(this.#cache, params.id));
  }

  webhookList(params: { ownerId?: string }): Promise<WebhookRecord[]> {
    return this.#read(() => listWebhooks(this.#cache, params.ownerId));
  }

  webhookUpdate(params: { webhook: WebhookRecord; ifUpdatedAt: Millis }): Promise<{ updated: boolean }> {
    return this.#write(() => updateWebhook(this.#cache, params.webhook, params.ifUpdatedAt));
  }

  webhookDelete(params: { id: string }): Promise<{ deleted: boolean }> {
    return this.#write(() => deleteWebhook(this.#cache, params.id));
  }

  webhookFeedCursor(): Promise<number> {
    return this.#read(() => webhookCursor(this.#cache));
  }

  webhookFeedAdvance(params: { from: number; to: number; deliveries: NewWebhookDelivery[]; notifies: WebhookNotifyRecord[]; notified: string[] }): Promise<{ advanced: boolean }> {
    return this.#write(() => advanceWebhookFeed(this.#cache, params), RELAXED);
  }

  webhookNotifyList(params: { taskIds: string[] }): Promise<WebhookNotifyRecord[]> {
    return this.#read(() => listWebhookNotifies(this.#cache, params.taskIds));
  }

  webhookDeliveryDue(params: { now: Millis; limit: number }): Promise<{ deliveries: WebhookDueDelivery[]; nextAt: Millis | null }> {
    return this.#read(() => dueWebhookDeliveries(this.#cache, params.now, params.limit));
  }

  webhookDeliveryDone(params: { seq: number }): Promise<void> {
    return this.#write(() => doneWebhookDelivery(this.#cache, params.seq), RELAXED);
  }

  webhookDeliveryRetry(params: { seq: number; attempts: number; nextAt: Millis; error: string; park: boolean }): Promise<void> {
    return this.#write(() => retryWebhookDelivery(this.#cache, params), RELAXED);
  }

  webhookDeliveryList(params: { subscriptionId: string; status: WebhookDeliveryStatus; limit: number }): Promise<WebhookDeliveryRecord[]> {
    return this.#read(() => listWebhookDeliveries(this.#cache, params));
  }

  webhookDeliveryReplay(params: { subscriptionId: string; eventSeq?: number; now: Millis }): Promise<number> {
    return this.#write(() => replayWebhookDeliveries(this.#cache, params));
  }

  // -- schedules (issue 16) -------------------------------------------------------------
  scheduleCreate(params: { schedule: ScheduleRecord }): Promise<{ created: boolean }> {
    return this.#write(() => createSchedule(this.#cache, params.schedule));
  }

  scheduleGet(params: { name: string }): Promise<ScheduleRecord | null> {
    return this.#read(() => getSchedule(this.#cache, params.name));
  }

  scheduleList(): Promise<ScheduleRecord[]> {
    return this.#read(() => listSchedules(this.#cache));
  }

  scheduleUpdate(params: { expectedUpdatedAt: Millis; schedule: ScheduleRecord }): Promise<{ updated: boolean }> {
    return this.#write(() => updateSchedule(this.#cache, params));
  }

  scheduleAdvance(params: { name: string; expectedNextFireAt: Millis; nextFireAt: Millis | null; fire: ScheduleFire | null }): Promise<{ advanced: boolean }> {
    return this.#write(() => advanceSchedule(this.#cache, params));
  }

  scheduleDelete(params: { name: string }): Promise<{ deleted: boolean }> {
    return this.#write(() => deleteSchedule(this.#cache, params.name));
  }

  scheduleListDue(params: { now: Millis; limit: number }): Promise<ScheduleRecord[]> {
    return this.#read(() => listDueSchedules(this.#cache, params));
  }

  scheduleNextFireAt(): Promise<Millis | null> {
    return this.#read(() => nextScheduleFireAt(this.#cache));
  }

  // -- cached results (issue 16) ----------------------------------------------------------
  taskCacheLookup(params: { agent: string; cacheKey: string; scope: string; finishedAfter: Millis }): Promise<TaskRecord | null> {
    return this.#read(() => lookupCachedResult(this.#cache, params));
  }

  taskCacheOpenRun(params: { agent: string; cacheKey: string; scope: string; parentId: string | null }): Promise<TaskRecord | null> {
    return this.#read(() => openCacheRun(this.#cache, { agent: params.agent, cacheKey: params.cacheKey, cacheScope: params.scope, cachedFrom: null, parentId: params.parentId }));
  }

  // -- provider rate limits and usage (issue 16: flow.ts) ---------------------------------

  rateLimitPut(params: { key: string; rpm: number | null; tpm: number | null; source: 'config' | 'api'; at: Millis }): Promise<{ created: boolean }> {
    return this.#write(() => putRateLimit(this.#cache, params));
  }

  rateLimitDelete(params: { key: string }): Promise<{ deleted: boolean }> {
    return this.#write(() => deleteRateLimit(this.#cache, params.key));
  }

  rateLimitList(params: { keys?: string[]; now: Millis }): Promise<RateLimitState[]> {
    return this.#read(() => listRateLimits(this.#cache, params));
  }

  rateLimitTake(params: { key: string; now: Millis; requests: Array<{ holder: string; tokens: number }> }): Promise<{ taken: number }> {
    if (params.requests.length === 0) return this.#read(() => ({ taken: 0 }));
    return this.#write(() => takeRate(this.#cache, params), RELAXED);
  }

  rateLimitGiveBack(params: { holders: string[] }): Promise<void> {
    if (params.holders.length === 0) return this.#read(() => undefined);
    return this.#write(() => giveBackRate(this.#cache, params.holders), RELAXED);
  }

  rateLimitPause(params: { key: string; until: Millis; at: Millis }): Promise<void> {
    return this.#write(() => pauseRate(this.#cache, params));
  }

  rateLogPrune(params: { before: Millis; limit: number }): Promise<number> {
    return this.#write(() => pruneRateLog(this.#cache, params), RELAXED);
  }

  usageRecord(params: { usage: UsageRecord }): Promise<void> {
    return this.#write(() => recordUsage(this.#cache, params.usage), RELAXED);
  }

  usageSummary(params: { groupBy: UsageGroupBy; since: Millis | null; until: Millis | null; taskId?: string }): Promise<UsageSum[]> {
    return this.#read(() => summarizeUsage(this.#cache, params));
  }
}
