// Numbered schema migrations of the PostgreSQL store. A migration is never edited once
// released: a schema change is a new entry at the end. `schema_migrations` records what has
// been applied, so running them on every start is a no-op when the schema is current.
//
// The schema mirrors the SQLite store's (sqlite/migrations.ts) table for table and column for
// column, with the same CHECK constraints and invariants. PostgreSQL-specific decisions:
// - Times are BIGINT epoch milliseconds, JSON is jsonb (validated on write; the JSON shape of
//   each column is a CHECK). Counters and small numbers are INTEGER.
// - `tasks.seq` and `events.seq` are identity columns: allocated from a sequence, never reused
//   (not even after the newest rows are pruned). `tasks.seq` is the primary key, `id` the
//   external key (UNIQUE), as in SQLite. Since migration 7 `events.seq` is given by the
//   numbering step after commit (events.ts), from `event_counter`; task seqs only need to be unique and follow submission order
//   within one process, which the write batch gives.
// - `assignments.seq` (identity) stands in for SQLite's implicit rowid: attempts are listed in
//   insertion order, which attempt numbers alone do not give (a failed dispatch reuses its
//   attempt number).
// - The hot `tasks` row stays narrow; payloads live in `task_payloads`, so a status change never
//   rewrites (or TOASTs) a large input or result.
// - The claim query is served by one partial index, `tasks_pending_agent_order (agent, priority
//   DESC, sla_deadline, seq) WHERE status = 'pending'` (sla_deadline since migration 13): a seek to one agent's queue in dispatch order, and,
//   since btree indexes NULLs and `agent IS NULL` is an index condition, to the capability-routed
//   queue too. SQLite's global `tasks_pending_order` is not needed: candidates are always read
//   queue by queue.
// - replicas and concurrency_keys are small and updated on every dispatch and completion;
//   free space on their pages (fillfactor) lets those updates be HOT (no index writes).

import type pg from 'pg';
import { quoteIdent } from './connection.ts';
import { isUnavailableError } from './errors.ts';
import { runOnce } from './sql.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE tasks (
  seq                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id                  text NOT NULL UNIQUE,
  status              text NOT NULL CHECK (status IN ('pending', 'dispatched', 'running', 'completed', 'failed', 'cancelled')),
  priority            integer NOT NULL CHECK (priority BETWEEN 0 AND 9),
  agent               text,
  capabilities        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(capabilities) = 'array'),
  replica             text,
  site                text,
  concurrency_key     text,
  attempt             integer NOT NULL CHECK (attempt >= 0),
  max_attempts        integer NOT NULL CHECK (max_attempts >= 1),
  timeout_ms          bigint NOT NULL CHECK (timeout_ms >= 0),
  run_at              bigint NOT NULL,
  assignment_id       text,
  cancel_requested_at bigint,
  created_at          bigint NOT NULL,
  updated_at          bigint NOT NULL,
  finished_at         bigint,
  idempotency_key     text UNIQUE,
  parent_id           text,
  created_by          text,
  -- Invariant: a task names a live assignment exactly while it is dispatched or running.
  CHECK ((assignment_id IS NOT NULL) = (status IN ('dispatched', 'running')))
);

-- The claim query: each queue (one agent's, or the capability-routed one: agent IS NULL) in
-- dispatch order. Partial, so the index holds only the queue itself.
CREATE INDEX tasks_pending_agent_order ON tasks (agent, priority DESC, seq) WHERE status = 'pending';
-- Next wake-up for delayed and backing-off tasks.
CREATE INDEX tasks_pending_run_at ON tasks (run_at) WHERE status = 'pending';
-- Retention: the oldest finished tasks first.
CREATE INDEX tasks_terminal_finished ON tasks (finished_at) WHERE status IN ('completed', 'failed', 'cancelled');
-- Cancellations waiting for the worker's acknowledgement (the reaper's grace check).
CREATE INDEX tasks_live_cancel ON tasks (cancel_requested_at) WHERE status IN ('dispatched', 'running') AND cancel_requested_at IS NOT NULL;
-- Listing filters, newest first.
CREATE INDEX tasks_status_seq ON tasks (status, seq);
CREATE INDEX tasks_agent_seq ON tasks (agent, seq);
CREATE INDEX tasks_parent_seq ON tasks (parent_id, seq) WHERE parent_id IS NOT NULL;

CREATE TABLE task_payloads (
  task_id     text PRIMARY KEY REFERENCES tasks (id),
  type        text NOT NULL,
  input       jsonb NOT NULL,
  result      jsonb,
  error       jsonb,
  correlation jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(correlation) = 'object'),
  traceparent text
);

CREATE TABLE assignments (
  seq              bigint GENERATED ALWAYS AS IDENTITY,
  id               text PRIMARY KEY,
  task_id          text NOT NULL REFERENCES tasks (id),
  agent            text NOT NULL,
  replica_id       text NOT NULL,
  attempt          integer NOT NULL,
  status           text NOT NULL CHECK (status IN ('dispatched', 'running', 'completed', 'failed', 'timed_out', 'lost', 'cancelled')),
  dispatched_at    bigint NOT NULL,
  started_at       bigint,
  finished_at      bigint,
  lease_expires_at bigint NOT NULL,
  deadline_at      bigint NOT NULL,
  progress_percent double precision,
  progress_message text,
  progress_at      bigint,
  error            jsonb
);

-- A task's attempts in order (and the foreign key's index for pruning).
CREATE INDEX assignments_task ON assignments (task_id, seq);
-- The reaper and the per-replica lookups only ever look at live attempts.
CREATE INDEX assignments_live_lease ON assignments (lease_expires_at) WHERE status IN ('dispatched', 'running');
CREATE INDEX assignments_live_deadline ON assignments (deadline_at) WHERE status IN ('dispatched', 'running');
CREATE INDEX assignments_live_replica ON assignments (replica_id) WHERE status IN ('dispatched', 'running');
-- Agent statistics: outcome counts and the most recent completions.
CREATE INDEX assignments_agent_outcome ON assignments (agent, status, finished_at);

CREATE TABLE replicas (
  id               text PRIMARY KEY,
  agent            text NOT NULL,
  site             text,
  status           text NOT NULL CHECK (status IN ('live', 'draining', 'lost', 'gone')),
  max_concurrency  integer NOT NULL CHECK (max_concurrency >= 0),
  in_flight        integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
  registered_at    bigint NOT NULL,
  last_seen_at     bigint NOT NULL,
  last_assigned_at bigint,
  completed        bigint NOT NULL DEFAULT 0 CHECK (completed >= 0),
  failed           bigint NOT NULL DEFAULT 0 CHECK (failed >= 0)
) WITH (fillfactor = 50);

CREATE INDEX replicas_agent ON replicas (agent);

-- A row exists only while the key has live assignments (it is deleted when it drops to 0).
CREATE TABLE concurrency_keys (
  key       text PRIMARY KEY,
  in_flight integer NOT NULL CHECK (in_flight >= 0)
) WITH (fillfactor = 50);

CREATE TABLE agents (
  name                text PRIMARY KEY,
  description         text NOT NULL,
  capabilities        jsonb NOT NULL CHECK (jsonb_typeof(capabilities) = 'array'),
  max_concurrency     integer NOT NULL,
  max_attempts        integer,
  timeout_ms          bigint,
  level               integer NOT NULL,
  tool_domains        jsonb NOT NULL CHECK (jsonb_typeof(tool_domains) = 'array'),
  concurrency_limits  jsonb NOT NULL CHECK (jsonb_typeof(concurrency_limits) = 'object'),
  retry_base_delay_ms bigint,
  retry_max_delay_ms  bigint,
  runtime             text NOT NULL CHECK (runtime IN ('pull', 'a2a', 'process')),
  created_at          bigint NOT NULL,
  updated_at          bigint NOT NULL
);

CREATE TABLE events (
  seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type          text NOT NULL,
  at            bigint NOT NULL,
  task_id       text,
  agent         text,
  replica_id    text,
  assignment_id text,
  data          jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object')
);

CREATE INDEX events_task ON events (task_id, seq) WHERE task_id IS NOT NULL;
CREATE INDEX events_untasked_at ON events (at) WHERE task_id IS NULL;

CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  role         text NOT NULL,
  hash         text NOT NULL UNIQUE,
  created_at   bigint NOT NULL,
  last_used_at bigint
);
`,
  },
  {
    version: 2,
    name: 'task trees and owners',
    sql: `
-- On the hot row: listings filter on them. Adding a column without a default rewrites nothing.
ALTER TABLE tasks ADD COLUMN root_id text, ADD COLUMN owner_id text;

-- Backfill: each task walks up its parents to the topmost task it can reach. Its root is that
-- task, or, when the walk ends at a parent that is gone (pruned), that parent's id, the best
-- root known. Its owner is the creator of the topmost task, as children inherit their
-- parent's owner. A parent exists before its children, so there are no cycles; the depth
-- bound only keeps hand-edited data from looping forever (such a task becomes its own root).
WITH RECURSIVE up (task_id, top_id, top_owner, up_id, depth) AS (
  SELECT id, id, created_by, parent_id, 0 FROM tasks
  UNION ALL
  SELECT up.task_id, t.id, t.created_by, t.parent_id, up.depth + 1
  FROM up JOIN tasks t ON t.id = up.up_id
  WHERE up.depth < 10000
),
found (task_id, root_id, owner_id) AS (
  SELECT task_id, coalesce(up_id, top_id), top_owner FROM up
  WHERE up_id IS NULL OR NOT EXISTS (SELECT 1 FROM tasks p WHERE p.id = up.up_id)
)
UPDATE tasks SET root_id = found.root_id, owner_id = found.owner_id FROM found WHERE found.task_id = tasks.id;
UPDATE tasks SET root_id = id, owner_id = created_by WHERE root_id IS NULL;
ALTER TABLE tasks ALTER COLUMN root_id SET NOT NULL;

-- A tree's tasks, newest first. Deliberately no index on owner_id: every submit would pay one
-- more index write on the hot insert path, and a listing by owner is served by the seq order
-- (newest first) with the owner as a filter, usually beside a status, agent or root filter.
CREATE INDEX tasks_root_seq ON tasks (root_id, seq);
`,
  },
  {
    version: 3,
    name: 'api key lifecycle',
    sql: `
-- Existing keys: no expiry, not revoked, creator unknown, not restricted to agents.
ALTER TABLE api_keys
  ADD COLUMN expires_at bigint,
  ADD COLUMN revoked_at bigint,
  ADD COLUMN created_by text,
  -- Agent names (role agent only), or NULL.
  ADD COLUMN agents jsonb CHECK (agents IS NULL OR jsonb_typeof(agents) = 'array');
`,
  },
  {
    version: 4,
    name: 'token revocations and audit log',
    sql: `
-- Revoked signed tokens, kept until they would have expired anyway (then pruned). Small: only
-- revoked, unexpired tokens, so pruning by expires_at needs no index of its own.
CREATE TABLE token_revocations (
  jti        text PRIMARY KEY,
  revoked_at bigint NOT NULL,
  expires_at bigint NOT NULL
);

-- Every server process asks for the recent revocations every second.
CREATE INDEX token_revocations_revoked_at ON token_revocations (revoked_at);

-- Seqs increase in append order; across concurrent writers an entry may become visible after
-- one with a higher seq. Harmless here: the log is read newest first by page, never followed
-- from a position the way events are, so appends take no lock like the events lock.
CREATE TABLE audit_log (
  seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at             bigint NOT NULL,
  principal_id   text,
  principal_name text,
  role           text,
  action         text NOT NULL,
  target         text,
  outcome        text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
  status         integer NOT NULL,
  request_id     text,
  source         text,
  details        jsonb
);

-- Every audited request appends here, so indexes are few. The primary key (seq) serves paging
-- newest first, and a filter on action scans it; the others serve:
-- what one principal did;
CREATE INDEX audit_log_principal ON audit_log (principal_id, seq);
-- time windows, and retention (oldest first);
CREATE INDEX audit_log_at ON audit_log (at);
-- denials and failures, the entries a review looks for, rare among the allowed ones (partial:
-- an allowed request, the common case, costs this index nothing).
CREATE INDEX audit_log_not_allowed ON audit_log (outcome, seq) WHERE outcome <> 'allowed';

-- Append-only in the schema too: a bug (or a hand) that updates an entry fails loudly.
CREATE FUNCTION audit_log_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_update();
`,
  },
  {
    version: 5,
    name: 'server secrets',
    sql: `
-- Secrets every server process sharing the database must agree on (the key that signs
-- scoped tokens). Written once by whichever process starts first; never updated.
CREATE TABLE server_secrets (
  name       text PRIMARY KEY,
  value      text NOT NULL,
  created_at bigint NOT NULL
);
`,
  },
  {
    version: 6,
    name: 'assignments say whether they count',
    sql: `
-- An undone dispatch (the assignment never reached its replica) is kept in the history but
-- is not a failed attempt. The transition says so (core/transition-kinds.ts); statistics read
-- this column instead of recognising the undo by its error code.
ALTER TABLE assignments ADD COLUMN counted boolean NOT NULL DEFAULT true;
UPDATE assignments SET counted = false WHERE status = 'failed' AND (error ->> 'code') = 'DISPATCH_FAILED';
`,
  },
  {
    version: 7,
    name: 'events numbered after commit',
    sql: `
-- Nodes of an older version must be stopped first: their inserts into events would fail
-- once seq has no default. The lock keeps any still running from taking a seq meanwhile.
LOCK TABLE events IN ACCESS EXCLUSIVE MODE;
-- Writers no longer take the events lock (events.ts, docs/decisions.md 47): they append to
-- this queue, and a numbering run moves committed rows into events with the next seqs. The
-- queue holds rows for milliseconds: one index (its primary key, the order of insertion).
CREATE TABLE event_queue (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type          text NOT NULL,
  at            bigint NOT NULL,
  task_id       text,
  agent         text,
  replica_id    text,
  assignment_id text,
  data          jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object')
);

-- The last seq handed out. A row rather than max(seq): retention may delete the newest
-- events, and a seq once read by a follower must never be given to another event.
CREATE TABLE event_counter (
  one  boolean PRIMARY KEY DEFAULT true CHECK (one),
  last bigint NOT NULL
);
INSERT INTO event_counter (last)
SELECT greatest(
  (SELECT coalesce(max(seq), 0) FROM events),
  coalesce((SELECT s.last_value FROM pg_sequences s
            WHERE format('%I.%I', s.schemaname, s.sequencename) = pg_get_serial_sequence('events', 'seq')), 0));

-- Seqs are now given by the numbering run.
ALTER TABLE events ALTER COLUMN seq DROP IDENTITY;
`,
  },
  {
    version: 8,
    name: 'event numbering as a function',
    sql: `
-- The numbering step (events.ts, docs/decisions.md 47) as a function, so that its plans are
-- made once per connection and cached: sent as a text of statements it was parsed and planned
-- on every call (p50 ~2 ms a step under W2's load, and a step runs on every read of the log,
-- so on every live event). Each statement of a
-- volatile function at READ COMMITTED takes a new snapshot, so the move sees every step that
-- committed before this one took the lock. The search_path is pinned to this schema.
CREATE FUNCTION event_numbering_step(lock_key bigint, page integer)
RETURNS TABLE (picked bigint, moved bigint, numbered bigint)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
-- The estimate for a page of rows passes jit_above_cost; compiling took ~50 ms.
SET jit = off
-- The queue is read through its primary key only. It churns (every row is deleted within
-- milliseconds), so until a vacuum its heap is mostly dead rows, which a sequential scan
-- reads every time; a planner without statistics (a new table, autovacuum off) chose one.
SET enable_seqscan = off
AS $fn$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    -- Under REPEATABLE READ the snapshot would predate the lock, and rows committed by the
    -- step before this one would be numbered again.
    RAISE EXCEPTION 'event numbering needs READ COMMITTED, not %', current_setting('transaction_isolation');
  END IF;
  PERFORM pg_advisory_xact_lock(lock_key);
  WITH p AS MATERIALIZED (SELECT q.id FROM event_queue q ORDER BY q.id LIMIT page),
  m AS (
    DELETE FROM event_queue q WHERE q.id IN (SELECT p.id FROM p)
    RETURNING q.id, q.type, q.at, q.task_id, q.agent, q.replica_id, q.assignment_id, q.data
  ),
  c AS MATERIALIZED (SELECT count(*) AS n FROM m),
  k AS (
    UPDATE event_counter SET last = event_counter.last + (SELECT c.n FROM c)
    WHERE (SELECT c.n FROM c) > 0
    RETURNING event_counter.last - (SELECT c.n FROM c) AS base
  ),
  i AS (
    INSERT INTO events (seq, type, at, task_id, agent, replica_id, assignment_id, data)
    SELECT k.base + row_number() OVER (ORDER BY m.id), m.type, m.at, m.task_id, m.agent, m.replica_id, m.assignment_id, m.data
    FROM m CROSS JOIN k
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM m), (SELECT count(*) FROM i)
  INTO picked, moved, numbered;
  -- Queue rows deleted but not inserted would be lost events (no counter row, say): abort
  -- before the commit, and the rows stay queued.
  IF moved <> numbered THEN
    RAISE EXCEPTION 'event numbering moved % rows but numbered %', moved, numbered;
  END IF;
  RETURN NEXT;
END
$fn$;
`,
  },
  {
    version: 9,
    name: 'task depth',
    sql: `
-- How deep each task is in its tree (a root is 1), set at submit from the parent's. Existing
-- tasks are numbered from their roots down; a task whose parent is gone (retention deleted
-- it) counts as a root of what remains. A constant default adds the column without
-- rewriting the table.
ALTER TABLE tasks ADD COLUMN depth integer NOT NULL DEFAULT 1 CHECK (depth >= 1);
WITH RECURSIVE down (id, depth) AS (
  SELECT t.id, 1 FROM tasks t
  WHERE t.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM tasks p WHERE p.id = t.parent_id)
  UNION ALL
  SELECT c.id, down.depth + 1 FROM tasks c JOIN down ON c.parent_id = down.id
  WHERE down.depth < 100000
)
UPDATE tasks t SET depth = down.depth FROM down WHERE down.id = t.id AND down.depth > 1;
`,
  },
  {
    version: 10,
    name: 'suspended tasks: waiting and input_required',
    sql: `
-- Two task statuses that hold no slot (waiting for children, asking for input) and the
-- assignment outcome 'suspended'. The status CHECKs are replaced by wider ones: added NOT
-- VALID and then validated, as every existing row satisfies the wider set.
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
  CHECK (status IN ('pending', 'dispatched', 'running', 'waiting', 'input_required', 'completed', 'failed', 'cancelled')) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_status_check;
ALTER TABLE assignments DROP CONSTRAINT assignments_status_check;
ALTER TABLE assignments ADD CONSTRAINT assignments_status_check
  CHECK (status IN ('dispatched', 'running', 'completed', 'failed', 'timed_out', 'lost', 'cancelled', 'suspended')) NOT VALID;
ALTER TABLE assignments VALIDATE CONSTRAINT assignments_status_check;
-- The awaited children (a JSON array of ids) while waiting; when an input request expires.
ALTER TABLE tasks ADD COLUMN waiting_for jsonb CHECK (waiting_for IS NULL OR jsonb_typeof(waiting_for) = 'array');
ALTER TABLE tasks ADD COLUMN input_expires_at bigint;
ALTER TABLE tasks ADD CONSTRAINT tasks_waiting_invariant CHECK ((waiting_for IS NOT NULL) = (status = 'waiting'));
ALTER TABLE tasks ADD CONSTRAINT tasks_input_expiry_invariant CHECK (input_expires_at IS NULL OR status = 'input_required');
-- The maintenance sweep's two questions: which waiting tasks may resume, which requests expired.
CREATE INDEX tasks_waiting ON tasks (seq) WHERE status = 'waiting';
CREATE INDEX tasks_input_expiry ON tasks (input_expires_at) WHERE input_expires_at IS NOT NULL;
-- What was asked, and what the next attempt is given after a suspension.
ALTER TABLE task_payloads ADD COLUMN input_request jsonb;
ALTER TABLE task_payloads ADD COLUMN resumed jsonb;
`,
  },
  {
    version: 11,
    name: 'tool sets and agent depth limits',
    sql: `
-- An agent's tool ceiling (names and patterns; none declared: no tools) and its own depth
-- limit (NULL: the server's). A task's effective tool set, computed at submit; tasks stored
-- before it have none, which is what their agents (none declared) allowed. Constant
-- defaults add the columns without rewriting the tables.
ALTER TABLE agents
  ADD COLUMN tools jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tools) = 'array'),
  ADD COLUMN max_depth integer CHECK (max_depth >= 1);
ALTER TABLE task_payloads ADD COLUMN tools jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tools) = 'array');
`,
  },
  {
    version: 13,
    name: 'task SLAs',
    sql: `
-- SLAs (issue 14, decisions 68-71). The deadline a task must be terminal by, stored as the
-- largest exact integer (2^53 - 1) when it has none, so that "without a deadline sorts after
-- every deadline" is the index's own order on both stores; where it stands (only the
-- maintenance sweep moves it: ok, at_risk, then violated or met); when the sweep looks next.
-- Tasks that exist already have no SLA (policies apply from submit).
ALTER TABLE tasks ADD COLUMN sla_deadline bigint NOT NULL DEFAULT 9007199254740991;
ALTER TABLE tasks ADD COLUMN sla_state text NOT NULL DEFAULT 'none' CHECK (sla_state IN ('none', 'ok', 'at_risk', 'violated', 'met'));
ALTER TABLE tasks ADD COLUMN sla_check_at bigint;
-- Dispatch order within a priority: the earlier deadline first, then submission order.
DROP INDEX tasks_pending_agent_order;
CREATE INDEX tasks_pending_agent_order ON tasks (agent, priority DESC, sla_deadline, seq) WHERE status = 'pending';
-- The sweep's question (whose check time has come) and GET /tasks?sla=at_risk|violated.
CREATE INDEX tasks_sla_check ON tasks (sla_check_at) WHERE sla_check_at IS NOT NULL;
CREATE INDEX tasks_sla_at_risk ON tasks (seq) WHERE sla_state = 'at_risk';
CREATE INDEX tasks_sla_violated ON tasks (seq) WHERE sla_state = 'violated';
`,
  },
  {
    version: 14,
    name: 'operators pause agents, replicas report health',
    sql: `
-- An operator's pause of an agent (no new dispatches while set) and when the maintenance
-- sweep last found it overloaded (NULL: not overloaded); both written only by their own
-- guarded statements, never by an agent's create, update or replacement from the config file.
ALTER TABLE agents ADD COLUMN paused_at bigint, ADD COLUMN overloaded_at bigint;
-- What a replica's heartbeat says of itself: routing skips unhealthy ones and prefers healthy.
ALTER TABLE replicas
  ADD COLUMN health text NOT NULL DEFAULT 'healthy' CHECK (health IN ('healthy', 'degraded', 'unhealthy')),
  ADD COLUMN health_detail jsonb,
  ADD COLUMN health_at bigint;
`,
  },
  {
    version: 15,
    name: 'a2a agents and their remote tasks',
    sql: `
-- Where a runtime "a2a" agent is (cardUrl or url, headers as secret references; NULL for every
-- other runtime), and, on an attempt dispatched to one, the A2A task (and context) it created
-- remotely, written as soon as the remote answers: a node that takes the attempt over resumes
-- that task and never sends the message again (decisions.md 75).
ALTER TABLE agents ADD COLUMN a2a jsonb CHECK (a2a IS NULL OR jsonb_typeof(a2a) = 'object');
ALTER TABLE assignments ADD COLUMN remote_task_id text, ADD COLUMN remote_context_id text;
`,
  },
  {
    version: 16,
    name: 'A2A skills and push notifications',
    sql: `
-- Flotilla as an A2A agent (decisions 79-84); see the SQLite migration for the why.
ALTER TABLE agents ADD COLUMN a2a_skill jsonb;
CREATE TABLE a2a_push_configs (
  task_id          text NOT NULL,
  id               text NOT NULL,
  url              text NOT NULL,
  token            text,
  auth_scheme      text,
  auth_credentials text,
  wire_version     text NOT NULL,
  owner_id         text,
  created_at       bigint NOT NULL,
  last_state       text,
  PRIMARY KEY (task_id, id)
);
CREATE TABLE a2a_push_deliveries (
  id               bigserial PRIMARY KEY,
  task_id          text NOT NULL,
  config_id        text NOT NULL,
  url              text NOT NULL,
  token            text,
  auth_scheme      text,
  auth_credentials text,
  wire_version     text NOT NULL,
  payload          jsonb NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  next_at          bigint NOT NULL,
  created_at       bigint NOT NULL,
  last_error       text
);
CREATE INDEX a2a_push_deliveries_due ON a2a_push_deliveries (next_at);
CREATE INDEX a2a_push_deliveries_config ON a2a_push_deliveries (task_id, config_id, id);
`,
  },
  {
    version: 17,
    name: 'tool domains, their health, the tool-call audit, tasks that run degraded',
    sql: `
-- MCP servers Flotilla checks and proxies to (issue 15, core/tool-domains.ts): the declaration
-- (spec: url + headers or command + args + env; secrets only as references) and the health
-- the maintenance node last found, which every node reads.
CREATE TABLE tool_domains (
  name        text PRIMARY KEY,
  spec        jsonb NOT NULL,
  source      text NOT NULL CHECK (source IN ('config', 'api')),
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL,
  status      text NOT NULL DEFAULT 'unknown' CHECK (status IN ('up', 'down', 'unknown')),
  checked_at  bigint,
  latency_ms  bigint,
  tool_count  integer,
  last_error  text,
  changed_at  bigint
);
-- Every call through the gateway: append-only, paged newest first (seq), filtered by task.
CREATE TABLE tool_calls (
  seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at            bigint NOT NULL,
  task_id       text NOT NULL,
  assignment_id text NOT NULL,
  attempt       integer NOT NULL,
  agent         text NOT NULL,
  tool          text NOT NULL,
  args_bytes    bigint NOT NULL,
  args_sha256   text NOT NULL,
  duration_ms   bigint NOT NULL,
  outcome       text NOT NULL CHECK (outcome IN ('ok', 'error', 'failed', 'refused')),
  rule          text,
  error         text
);
CREATE INDEX tool_calls_task ON tool_calls (task_id, seq);
CREATE INDEX tool_calls_at ON tool_calls (at);
-- Whether a task may run while a tool domain of its agent is down (0: it waits).
ALTER TABLE task_payloads ADD COLUMN allow_degraded integer NOT NULL DEFAULT 0;
`,
  },
  {
    version: 18,
    name: 'dependencies between tasks: status blocked, the dependency edges, workflow refs and templates',
    sql: `
-- A task may wait for others (docs/workflows.md): status 'blocked', its dependencies in
-- waiting_for (as a waiting task's children); both CHECKs are widened (added NOT VALID, then
-- validated: every existing row satisfies the wider ones).
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
  CHECK (status IN ('pending', 'dispatched', 'running', 'waiting', 'input_required', 'completed', 'failed', 'cancelled', 'blocked')) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_status_check;
ALTER TABLE tasks DROP CONSTRAINT tasks_waiting_invariant;
ALTER TABLE tasks ADD CONSTRAINT tasks_waiting_invariant CHECK ((waiting_for IS NOT NULL) = (status IN ('waiting', 'blocked'))) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_waiting_invariant;
-- Some task depends on this one (set when such a task is created): a task that ends without
-- any costs no lookup of its dependents. And 'fail' or 'run' for a task with dependencies.
ALTER TABLE tasks ADD COLUMN has_dependents integer NOT NULL DEFAULT 0 CHECK (has_dependents IN (0, 1));
ALTER TABLE tasks ADD COLUMN on_dependency_failure text CHECK (on_dependency_failure IN ('fail', 'run'));
-- The maintenance sweep's question: which blocked tasks can be decided (engine/unblocker.ts).
CREATE INDEX tasks_blocked ON tasks (seq) WHERE status = 'blocked';
-- One row per (dependent, dependency): the dependents of a task that ended, by index.
CREATE TABLE task_dependencies (
  depends_on text NOT NULL,
  task_id    text NOT NULL,
  PRIMARY KEY (depends_on, task_id)
);
CREATE INDEX task_dependencies_task ON task_dependencies (task_id);
-- What the dependent keeps: its dependencies in order, its workflow ref, its input template,
-- and the outcomes its attempts are given once it is unblocked.
ALTER TABLE task_payloads ADD COLUMN depends_on jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(depends_on) = 'array');
ALTER TABLE task_payloads ADD COLUMN ref text;
ALTER TABLE task_payloads ADD COLUMN input_from jsonb;
ALTER TABLE task_payloads ADD COLUMN dependencies jsonb;
`,
  },
  {
    version: 19,
    name: 'schedules',
    sql: `
-- Schedules (issue 16, core/schedules.ts): the definition (timing, task template, policies),
-- whose tasks it submits (owner), and its firing state. next_fire_at moves only by
-- compare-and-set (scheduleAdvance); updated_at guards every other change.
CREATE TABLE schedules (
  name            text PRIMARY KEY,
  definition      jsonb NOT NULL,
  source          text NOT NULL CHECK (source IN ('config', 'api')),
  owner           jsonb NOT NULL,
  paused          integer NOT NULL DEFAULT 0,
  paused_reason   text,
  next_fire_at    bigint,
  last_fire_at    bigint,
  last_task_id    text,
  last_fire_note  text,
  last_fire_error text,
  created_at      bigint NOT NULL,
  updated_at      bigint NOT NULL
);
-- The maintenance node's sweep and timer: the unpaused schedules by their next fire time.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0 AND next_fire_at IS NOT NULL;
`,
  },
  {
    version: 20,
    name: 'cached results',
    sql: `
-- Cached results (issue 16, core/result-cache.ts): the key a task's result is cached under,
-- whose cache it is in, and, for a task answered from the cache, the task it copied.
ALTER TABLE tasks ADD COLUMN cache_key text;
ALTER TABLE tasks ADD COLUMN cache_scope text;
ALTER TABLE tasks ADD COLUMN cached_from text;
-- The lookup of a submit with a cacheKey: the latest completed run (not a copy) of the key.
CREATE INDEX tasks_cache_done ON tasks (agent, cache_key, cache_scope, finished_at)
  WHERE cache_key IS NOT NULL AND cached_from IS NULL AND status = 'completed';
-- One open run per key and parent: a second submit (on any node, at the same instant) shares
-- it. Per parent, so that a parent never waits for a shared task that is not its child; root
-- submits (no parent) share among themselves.
CREATE UNIQUE INDEX tasks_cache_open ON tasks (agent, cache_key, cache_scope, (coalesce(parent_id, '')))
  WHERE cache_key IS NOT NULL AND cached_from IS NULL AND finished_at IS NULL;
`,
  },
  {
    version: 21,
    name: 'provider rate limits, the rate log, attempt usage, agent caps',
    sql: `
-- Provider rate limits (issue 16, core/rate-limits.ts): a key's limits per minute (null: not
-- limited in that dimension; both null: a key that is only paused) and its pause.
CREATE TABLE rate_limits (
  key          text PRIMARY KEY,
  rpm          bigint,
  tpm          bigint,
  source       text NOT NULL CHECK (source IN ('config', 'api', 'pause')),
  paused_until bigint,
  updated_at   bigint NOT NULL
);
-- One row per attempt dispatched under a limited key, for the sliding minute: its tokens are
-- the estimate until the worker reports its usage. Pruned once older than the window.
CREATE TABLE rate_log (
  holder text PRIMARY KEY,
  key    text NOT NULL,
  at     bigint NOT NULL,
  tokens bigint NOT NULL
);
CREATE INDEX rate_log_key_at ON rate_log (key, at);
CREATE INDEX rate_log_at ON rate_log (at);
-- What each attempt used, as its worker reported it (one row per attempt, the last report wins).
CREATE TABLE attempt_usage (
  assignment_id text PRIMARY KEY,
  task_id       text NOT NULL,
  root_id       text NOT NULL,
  agent         text NOT NULL,
  model         text,
  input_tokens  bigint NOT NULL,
  output_tokens bigint NOT NULL,
  cost_usd      double precision NOT NULL,
  at            bigint NOT NULL
);
CREATE INDEX attempt_usage_at ON attempt_usage (at);
CREATE INDEX attempt_usage_task ON attempt_usage (task_id);
CREATE INDEX attempt_usage_root ON attempt_usage (root_id);
-- A task's rate key and token estimate live on the hot row: the dispatcher reads them with the candidates.
ALTER TABLE tasks ADD COLUMN rate_key text;
ALTER TABLE tasks ADD COLUMN estimated_tokens bigint;
-- The agent cap: live assignments across all of its replicas (null: none).
ALTER TABLE agents ADD COLUMN max_in_flight bigint;
`,
  },
  {
    version: 22,
    name: 'webhook subscriptions, their outbox, the feed cursor, notify URLs',
    sql: `
-- Webhooks (docs/webhooks.md, decisions 109-112); the SQLite migration 22 says what each holds.
CREATE TABLE webhook_subscriptions (
  id            text PRIMARY KEY,
  url           text NOT NULL,
  events        jsonb NOT NULL,
  agents        jsonb,
  root_id       text,
  enabled       boolean NOT NULL,
  description   text NOT NULL,
  owner_id      text NOT NULL,
  visibility    jsonb NOT NULL,
  secret_sealed text NOT NULL,
  from_seq      bigint NOT NULL,
  created_at    bigint NOT NULL,
  updated_at    bigint NOT NULL,
  expires_at    bigint
);
CREATE TABLE webhook_deliveries (
  seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id text NOT NULL,
  event_seq       bigint NOT NULL,
  event_type      text NOT NULL,
  task_id         text,
  url             text,
  body            text NOT NULL,
  status          text NOT NULL CHECK (status IN ('pending', 'failed')),
  attempts        integer NOT NULL,
  next_at         bigint NOT NULL,
  created_at      bigint NOT NULL,
  last_error      text,
  UNIQUE (subscription_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
-- coalesce: "an earlier pending delivery of the same task" must be an index lookup (IS NOT
-- DISTINCT FROM is not indexable, which made the sender's query quadratic in the backlog).
-- Task ids are never empty.
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (subscription_id, (coalesce(task_id, '')), seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (subscription_id, status, seq);
CREATE TABLE webhook_notifies (
  task_id    text PRIMARY KEY,
  url        text NOT NULL,
  created_at bigint NOT NULL
);
CREATE TABLE webhook_feed (
  id  integer PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL
);
INSERT INTO webhook_feed (id, seq) SELECT 1, coalesce(max(seq), 0) FROM events;
`,
  },
];

/**
 * Applies the migrations not yet recorded, all in one transaction, and returns the versions
 * applied. The transaction first takes an advisory lock keyed on the schema, so several
 * server processes starting at once are safe: the first applies everything, the others wait
 * for its commit and then find nothing left to do (each statement of a READ COMMITTED
 * transaction sees what was committed before it started). DDL is transactional in
 * PostgreSQL: a migration that fails leaves nothing behind.
 *
 * Creates the schema if it is missing. Refuses to run against a schema migrated by a newer
 * version of Flotilla (one that recorded migrations this code does not know).
 */
export async function applyMigrations(
  newClient: () => pg.Client,
  params: { schema: string; lockKey: string },
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  // A session of its own rather than a pooled one: a migration may legitimately run (or wait
  // for another process's migration) longer than the pool's query timeout allows.
  const client = newClient();
  // A connection error is reported by the pending query; this listener only keeps the 'error'
  // event from being unhandled (which would crash the process).
  client.on('error', () => {});
  try {
    await client.connect();
    await runOnce(client, 'BEGIN');
    try {
      // Another process may be migrating (and DDL may wait for other sessions): wait as long as it takes.
      await runOnce(client, 'SET LOCAL lock_timeout = 0');
      await runOnce(client, 'SELECT pg_advisory_xact_lock($1::bigint)', [params.lockKey]);
      // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the database
      // even when the schema exists, and an operator may have created it for a less privileged role.
      const exists = await runOnce(client, 'SELECT 1 FROM pg_namespace WHERE nspname = $1', [params.schema]);
      if (exists.length === 0) await runOnce(client, `CREATE SCHEMA ${quoteIdent(params.schema)}`);
      const [current] = await runOnce(client, 'SELECT current_schema() AS schema');
      if (current?.schema !== params.schema) {
        throw new Error(`the search_path resolves to schema ${String(current?.schema)}, expected ${params.schema}`);
      }
      await runOnce(client, `CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at bigint NOT NULL
      )`);
      const applied = new Set((await runOnce(client, 'SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
      const known = new Set(migrations.map((m) => m.version));
      const unknown = [...applied].filter((v) => !known.has(v)).sort((a, b) => a - b);
      if (unknown.length > 0) {
        throw new Error(`schema ${params.schema} has schema migrations this version does not know (${unknown.join(', ')}): it was written by a newer Flotilla`);
      }
      const done: number[] = [];
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (applied.has(m.version)) continue;
        await runOnce(client, m.sql);
        await runOnce(client, 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
        done.push(m.version);
      }
      await runOnce(client, 'COMMIT');
      return done;
    } catch (err) {
      // Ending the session rolls back whatever it had begun; an explicit ROLLBACK first is
      // only politeness towards a healthy connection.
      if (!isUnavailableError(err)) await runOnce(client, 'ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    await client.end().catch(() => {});
  }
}
