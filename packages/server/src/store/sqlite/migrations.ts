// Numbered schema migrations of the SQLite store. A migration is never edited once released:
// a schema change is a new entry at the end. `schema_migrations` records what has been
// applied, so running them on every start is a no-op when the schema is current.
//
// Layout decisions (see also docs in sqlite-store.ts):
// - `tasks` is the narrow hot row the dispatcher reads and the state machine updates; the
//   payloads (type, input, result, error, correlation, traceparent) live in `task_payloads`
//   so updating a status never rewrites a large input document, and a page of the claim
//   index touches only small rows.
// - `tasks.seq` is the INTEGER PRIMARY KEY (the rowid) with AUTOINCREMENT: it is allocated
//   by the single writer in commit order, never reused (even after pruning the newest
//   rows), and every secondary index already carries it, so `(priority DESC, seq)` costs
//   nothing extra. `id` is the external key (UNIQUE).
// - Tables are STRICT: a value of the wrong type is an error instead of being stored as
//   something else. Times are INTEGER epoch milliseconds; JSON is TEXT.
// - Child rows (payloads, assignments) reference tasks without ON DELETE CASCADE: pruning
//   deletes them explicitly, and a forgotten child makes the delete fail loudly.

import type { DatabaseSync } from 'node:sqlite';

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
  seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
  id                  TEXT NOT NULL UNIQUE,
  status              TEXT NOT NULL CHECK (status IN ('pending', 'dispatched', 'running', 'completed', 'failed', 'cancelled')),
  priority            INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
  agent               TEXT,
  capabilities        TEXT NOT NULL DEFAULT '[]',
  replica             TEXT,
  site                TEXT,
  concurrency_key     TEXT,
  attempt             INTEGER NOT NULL CHECK (attempt >= 0),
  max_attempts        INTEGER NOT NULL CHECK (max_attempts >= 1),
  timeout_ms          INTEGER NOT NULL CHECK (timeout_ms >= 0),
  run_at              INTEGER NOT NULL,
  assignment_id       TEXT,
  cancel_requested_at INTEGER,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  finished_at         INTEGER,
  idempotency_key     TEXT UNIQUE,
  parent_id           TEXT,
  created_by          TEXT,
  -- Invariant: a task names a live assignment exactly while it is dispatched or running.
  CHECK ((assignment_id IS NOT NULL) = (status IN ('dispatched', 'running')))
) STRICT;

-- The claim query: pending tasks in dispatch order, globally and per agent (agent IS NULL
-- is the capability-routed queue). Partial, so the index holds only the queue itself.
CREATE INDEX tasks_pending_order ON tasks (priority DESC, seq) WHERE status = 'pending';
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
  task_id     TEXT PRIMARY KEY REFERENCES tasks (id),
  type        TEXT NOT NULL,
  input       TEXT NOT NULL,
  result      TEXT,
  error       TEXT,
  correlation TEXT NOT NULL DEFAULT '{}',
  traceparent TEXT
) STRICT;

CREATE TABLE assignments (
  id               TEXT PRIMARY KEY,
  task_id          TEXT NOT NULL REFERENCES tasks (id),
  agent            TEXT NOT NULL,
  replica_id       TEXT NOT NULL,
  attempt          INTEGER NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('dispatched', 'running', 'completed', 'failed', 'timed_out', 'lost', 'cancelled')),
  dispatched_at    INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  lease_expires_at INTEGER NOT NULL,
  deadline_at      INTEGER NOT NULL,
  progress_percent REAL,
  progress_message TEXT,
  progress_at      INTEGER,
  error            TEXT
) STRICT;

CREATE INDEX assignments_task ON assignments (task_id);
-- The reaper and the per-replica lookups only ever look at live attempts.
CREATE INDEX assignments_live_lease ON assignments (lease_expires_at) WHERE status IN ('dispatched', 'running');
CREATE INDEX assignments_live_deadline ON assignments (deadline_at) WHERE status IN ('dispatched', 'running');
CREATE INDEX assignments_live_replica ON assignments (replica_id) WHERE status IN ('dispatched', 'running');
-- Agent statistics: outcome counts and the most recent completions.
CREATE INDEX assignments_agent_outcome ON assignments (agent, status, finished_at);

CREATE TABLE replicas (
  id               TEXT PRIMARY KEY,
  agent            TEXT NOT NULL,
  site             TEXT,
  status           TEXT NOT NULL CHECK (status IN ('live', 'draining', 'lost', 'gone')),
  max_concurrency  INTEGER NOT NULL CHECK (max_concurrency >= 0),
  in_flight        INTEGER NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
  registered_at    INTEGER NOT NULL,
  last_seen_at     INTEGER NOT NULL,
  last_assigned_at INTEGER,
  completed        INTEGER NOT NULL DEFAULT 0 CHECK (completed >= 0),
  failed           INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0)
) STRICT;

CREATE INDEX replicas_agent ON replicas (agent);

-- A row exists only while the key has live assignments (it is deleted when it drops to 0).
CREATE TABLE concurrency_keys (
  key       TEXT PRIMARY KEY,
  in_flight INTEGER NOT NULL CHECK (in_flight >= 0)
) STRICT;

CREATE TABLE agents (
  name                TEXT PRIMARY KEY,
  description         TEXT NOT NULL,
  capabilities        TEXT NOT NULL,
  max_concurrency     INTEGER NOT NULL,
  max_attempts        INTEGER,
  timeout_ms          INTEGER,
  level               INTEGER NOT NULL,
  tool_domains        TEXT NOT NULL,
  concurrency_limits  TEXT NOT NULL,
  retry_base_delay_ms INTEGER,
  retry_max_delay_ms  INTEGER,
  runtime             TEXT NOT NULL CHECK (runtime IN ('pull', 'a2a', 'process')),
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
) STRICT;

-- AUTOINCREMENT: event seqs are never reused, even after the newest events are pruned, so a
-- consumer resuming from a seq it saw can never be handed a different event under that number.
CREATE TABLE events (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  type          TEXT NOT NULL,
  at            INTEGER NOT NULL,
  task_id       TEXT,
  agent         TEXT,
  replica_id    TEXT,
  assignment_id TEXT,
  data          TEXT NOT NULL
) STRICT;

CREATE INDEX events_task ON events (task_id, seq) WHERE task_id IS NOT NULL;
CREATE INDEX events_untasked_at ON events (at) WHERE task_id IS NULL;

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  role         TEXT NOT NULL,
  hash         TEXT NOT NULL UNIQUE,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER
) STRICT;
`,
  },
  {
    version: 2,
    name: 'task trees and owners',
    sql: `
-- On the hot row: listings filter on them. root_id is NOT NULL in practice but not in the
-- schema: SQLite adds a NOT NULL column only with a default, which would hide an insert that
-- forgot it, and rebuilding the hot table is not worth the constraint. The store always
-- writes it, and its reader refuses a NULL (record-mapping.ts).
ALTER TABLE tasks ADD COLUMN root_id TEXT;
ALTER TABLE tasks ADD COLUMN owner_id TEXT;

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
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
ALTER TABLE api_keys ADD COLUMN created_by TEXT;
-- JSON array of agent names (role agent only), or NULL.
ALTER TABLE api_keys ADD COLUMN agents TEXT;
`,
  },
  {
    version: 4,
    name: 'token revocations and audit log',
    sql: `
-- Revoked signed tokens, kept until they would have expired anyway (then pruned). Small: only
-- revoked, unexpired tokens, so pruning by expires_at needs no index of its own.
CREATE TABLE token_revocations (
  jti        TEXT PRIMARY KEY,
  revoked_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;

-- Every server process asks for the recent revocations every second.
CREATE INDEX token_revocations_revoked_at ON token_revocations (revoked_at);

-- AUTOINCREMENT: seqs are never reused, even after pruning, so a page position stays valid.
CREATE TABLE audit_log (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  at             INTEGER NOT NULL,
  principal_id   TEXT,
  principal_name TEXT,
  role           TEXT,
  action         TEXT NOT NULL,
  target         TEXT,
  outcome        TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
  status         INTEGER NOT NULL,
  request_id     TEXT,
  source         TEXT,
  details        TEXT
) STRICT;

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
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
`,
  },
  {
    version: 5,
    name: 'server secrets',
    sql: `
-- Secrets every server process sharing the database must agree on (the key that signs
-- scoped tokens). Written once by whichever process starts first; never updated.
CREATE TABLE server_secrets (
  name       TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
`,
  },
  {
    version: 6,
    name: 'assignments say whether they count',
    sql: `
-- An undone dispatch (the assignment never reached its replica) is kept in the history but
-- is not a failed attempt. The transition says so (core/transition-kinds.ts); statistics read
-- this column instead of recognising the undo by its error code.
ALTER TABLE assignments ADD COLUMN counted INTEGER NOT NULL DEFAULT 1 CHECK (counted IN (0, 1));
UPDATE assignments SET counted = 0 WHERE status = 'failed' AND json_extract(error, '$.code') = 'DISPATCH_FAILED';
`,
  },
  {
    version: 7,
    name: 'one claim index',
    sql: `
-- Every queue, the capability-routed one included (agent IS NULL), is read through
-- tasks_pending_agent_order; this global one was never used by a query, yet every submit
-- inserted into it and every claim deleted from it (as on PostgreSQL, which never had it).
DROP INDEX tasks_pending_order;
`,
  },
  {
    // PostgreSQL's 7 and 8 number events after commit (decisions.md 47). SQLite has one
    // writer and numbers events as it inserts them: nothing to change. Recorded so that a
    // version means the same step of the schema on both stores from here on (PostgreSQL's 7
    // is 'events numbered after commit'; it never had the index SQLite's 7 drops).
    version: 8,
    name: 'event numbering as a function',
    sql: `SELECT 1;`,
  },
  {
    version: 9,
    name: 'task depth',
    sql: `
-- How deep each task is in its tree (a root is 1), set at submit from the parent's. Existing
-- tasks are numbered from their roots down; a task whose parent is gone (retention deleted
-- it) counts as a root of what remains.
ALTER TABLE tasks ADD COLUMN depth INTEGER NOT NULL DEFAULT 1 CHECK (depth >= 1);
WITH RECURSIVE down (id, depth) AS (
  SELECT t.id, 1 FROM tasks t
  WHERE t.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM tasks p WHERE p.id = t.parent_id)
  UNION ALL
  SELECT c.id, down.depth + 1 FROM tasks c JOIN down ON c.parent_id = down.id
  WHERE down.depth < 100000
)
UPDATE tasks SET depth = down.depth FROM down WHERE down.id = tasks.id AND down.depth > 1;
`,
  },
  {
    version: 10,
    name: 'suspended tasks: waiting and input_required',
    sql: `
-- Two task statuses that hold no slot (waiting for children, asking for input) and the
-- assignment outcome 'suspended'. SQLite cannot change a CHECK constraint in place, so both
-- tables are rebuilt inside the migration's transaction, with foreign keys still enforced:
-- - tasks is copied aside, dropped (its children's rows become orphans, counted as deferred
--   violations), made again and filled from the copy (each row inserted settles the
--   violations of its children), so the children's REFERENCES tasks (id) never change and
--   the commit checks that every child found its parent again. Its AUTOINCREMENT counter is
--   carried over, so the seqs of pruned tasks are never reused.
-- - assignments, referenced by nobody, is made anew beside the old one and renamed.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE tasks_v9_copy AS SELECT * FROM tasks;
CREATE TABLE tasks_v9_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'tasks';
DROP TABLE tasks;
CREATE TABLE tasks (
  seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
  id                  TEXT NOT NULL UNIQUE,
  status              TEXT NOT NULL CHECK (status IN ('pending', 'dispatched', 'running', 'waiting', 'input_required', 'completed', 'failed', 'cancelled')),
  priority            INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
  agent               TEXT,
  capabilities        TEXT NOT NULL DEFAULT '[]',
  replica             TEXT,
  site                TEXT,
  concurrency_key     TEXT,
  attempt             INTEGER NOT NULL CHECK (attempt >= 0),
  max_attempts        INTEGER NOT NULL CHECK (max_attempts >= 1),
  timeout_ms          INTEGER NOT NULL CHECK (timeout_ms >= 0),
  run_at              INTEGER NOT NULL,
  assignment_id       TEXT,
  cancel_requested_at INTEGER,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  finished_at         INTEGER,
  idempotency_key     TEXT UNIQUE,
  parent_id           TEXT,
  created_by          TEXT,
  root_id             TEXT,
  owner_id            TEXT,
  depth               INTEGER NOT NULL DEFAULT 1 CHECK (depth >= 1),
  -- The awaited children (JSON array of ids) while waiting; when an input request expires.
  waiting_for         TEXT,
  input_expires_at    INTEGER,
  -- Invariant: a task names a live assignment exactly while it is dispatched or running.
  CHECK ((assignment_id IS NOT NULL) = (status IN ('dispatched', 'running'))),
  CHECK ((waiting_for IS NOT NULL) = (status = 'waiting')),
  CHECK (input_expires_at IS NULL OR status = 'input_required')
) STRICT;
INSERT INTO tasks (seq, id, status, priority, agent, capabilities, replica, site, concurrency_key, attempt, max_attempts,
  timeout_ms, run_at, assignment_id, cancel_requested_at, created_at, updated_at, finished_at, idempotency_key, parent_id,
  created_by, root_id, owner_id, depth)
SELECT seq, id, status, priority, agent, capabilities, replica, site, concurrency_key, attempt, max_attempts,
  timeout_ms, run_at, assignment_id, cancel_requested_at, created_at, updated_at, finished_at, idempotency_key, parent_id,
  created_by, root_id, owner_id, depth FROM tasks_v9_copy ORDER BY seq;
DROP TABLE tasks_v9_copy;
DELETE FROM sqlite_sequence WHERE name = 'tasks';
INSERT INTO sqlite_sequence (name, seq) SELECT 'tasks', seq FROM tasks_v9_seq;
DROP TABLE tasks_v9_seq;
CREATE INDEX tasks_pending_agent_order ON tasks (agent, priority DESC, seq) WHERE status = 'pending';
CREATE INDEX tasks_pending_run_at ON tasks (run_at) WHERE status = 'pending';
CREATE INDEX tasks_terminal_finished ON tasks (finished_at) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX tasks_live_cancel ON tasks (cancel_requested_at) WHERE status IN ('dispatched', 'running') AND cancel_requested_at IS NOT NULL;
CREATE INDEX tasks_status_seq ON tasks (status, seq);
CREATE INDEX tasks_agent_seq ON tasks (agent, seq);
CREATE INDEX tasks_parent_seq ON tasks (parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_root_seq ON tasks (root_id, seq);
-- The maintenance sweep's two questions: which waiting tasks may resume, which requests expired.
CREATE INDEX tasks_waiting ON tasks (seq) WHERE status = 'waiting';
CREATE INDEX tasks_input_expiry ON tasks (input_expires_at) WHERE input_expires_at IS NOT NULL;

CREATE TABLE assignments_v10 (
  id               TEXT PRIMARY KEY,
  task_id          TEXT NOT NULL REFERENCES tasks (id),
  agent            TEXT NOT NULL,
  replica_id       TEXT NOT NULL,
  attempt          INTEGER NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('dispatched', 'running', 'completed', 'failed', 'timed_out', 'lost', 'cancelled', 'suspended')),
  dispatched_at    INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  lease_expires_at INTEGER NOT NULL,
  deadline_at      INTEGER NOT NULL,
  progress_percent REAL,
  progress_message TEXT,
  progress_at      INTEGER,
  error            TEXT,
  counted          INTEGER NOT NULL DEFAULT 1 CHECK (counted IN (0, 1))
) STRICT;
INSERT INTO assignments_v10 SELECT id, task_id, agent, replica_id, attempt, status, dispatched_at, started_at, finished_at,
  lease_expires_at, deadline_at, progress_percent, progress_message, progress_at, error, counted FROM assignments;
DROP TABLE assignments;
ALTER TABLE assignments_v10 RENAME TO assignments;
CREATE INDEX assignments_task ON assignments (task_id);
CREATE INDEX assignments_live_lease ON assignments (lease_expires_at) WHERE status IN ('dispatched', 'running');
CREATE INDEX assignments_live_deadline ON assignments (deadline_at) WHERE status IN ('dispatched', 'running');
CREATE INDEX assignments_live_replica ON assignments (replica_id) WHERE status IN ('dispatched', 'running');
CREATE INDEX assignments_agent_outcome ON assignments (agent, status, finished_at);

-- What was asked, and what the next attempt is given after a suspension (JSON).
ALTER TABLE task_payloads ADD COLUMN input_request TEXT;
ALTER TABLE task_payloads ADD COLUMN resumed TEXT;
`,
  },
  {
    version: 11,
    name: 'tool sets and agent depth limits',
    sql: `
-- An agent's tool ceiling (JSON array of names and patterns; none declared: no tools) and its
-- own depth limit (NULL: the server's). A task's effective tool set, computed at submit; tasks
-- stored before it have none, which is what their agents (none declared) allowed.
ALTER TABLE agents ADD COLUMN tools TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agents ADD COLUMN max_depth INTEGER CHECK (max_depth IS NULL OR max_depth >= 1);
ALTER TABLE task_payloads ADD COLUMN tools TEXT NOT NULL DEFAULT '[]';
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
ALTER TABLE tasks ADD COLUMN sla_deadline INTEGER NOT NULL DEFAULT 9007199254740991;
ALTER TABLE tasks ADD COLUMN sla_state TEXT NOT NULL DEFAULT 'none' CHECK (sla_state IN ('none', 'ok', 'at_risk', 'violated', 'met'));
ALTER TABLE tasks ADD COLUMN sla_check_at INTEGER;
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
ALTER TABLE agents ADD COLUMN paused_at INTEGER;
ALTER TABLE agents ADD COLUMN overloaded_at INTEGER;
-- What a replica's heartbeat says of itself: routing skips unhealthy ones and prefers healthy.
ALTER TABLE replicas ADD COLUMN health TEXT NOT NULL DEFAULT 'healthy' CHECK (health IN ('healthy', 'degraded', 'unhealthy'));
ALTER TABLE replicas ADD COLUMN health_detail TEXT;
ALTER TABLE replicas ADD COLUMN health_at INTEGER;
`,
  },
  {
    version: 15,
    name: 'a2a agents and their remote tasks',
    sql: `
-- Where a runtime "a2a" agent is (JSON: cardUrl or url, headers as secret references; NULL for
-- every other runtime), and, on an attempt dispatched to one, the A2A task (and context) it
-- created remotely, written as soon as the remote answers: a node that takes the attempt over
-- resumes that task and never sends the message again (decisions.md 75).
ALTER TABLE agents ADD COLUMN a2a TEXT;
ALTER TABLE assignments ADD COLUMN remote_task_id TEXT;
ALTER TABLE assignments ADD COLUMN remote_context_id TEXT;
`,
  },
  {
    version: 16,
    name: 'A2A skills and push notifications',
    sql: `
-- Flotilla as an A2A agent (decisions 79-84). An agent's skill on the fleet's card (JSON;
-- NULL: not published).
ALTER TABLE agents ADD COLUMN a2a_skill TEXT;
-- A2A clients' push-notification configs, per task. last_state is the A2A state last queued
-- for it (the feed queues a notification when the task's state differs); a config is
-- deleted with its task's final notification. wire_version picks the body's shape.
CREATE TABLE a2a_push_configs (
  task_id          TEXT NOT NULL,
  id               TEXT NOT NULL,
  url              TEXT NOT NULL,
  token            TEXT,
  auth_scheme      TEXT,
  auth_credentials TEXT,
  wire_version     TEXT NOT NULL,
  owner_id         TEXT,
  created_at       INTEGER NOT NULL,
  last_state       TEXT,
  PRIMARY KEY (task_id, id)
) STRICT;
-- The outbox: each row one notification to POST, self-contained (the config may be gone),
-- sent by the maintenance node at least once, in id order per config, with backoff.
CREATE TABLE a2a_push_deliveries (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id          TEXT NOT NULL,
  config_id        TEXT NOT NULL,
  url              TEXT NOT NULL,
  token            TEXT,
  auth_scheme      TEXT,
  auth_credentials TEXT,
  wire_version     TEXT NOT NULL,
  payload          TEXT NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_at          INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  last_error       TEXT
) STRICT;
CREATE INDEX a2a_push_deliveries_due ON a2a_push_deliveries (next_at);
CREATE INDEX a2a_push_deliveries_config ON a2a_push_deliveries (task_id, config_id, id);
`,
  },
  {
    version: 17,
    name: 'tool domains, their health, the tool-call audit, tasks that run degraded',
    sql: `
-- MCP servers Flotilla checks and proxies to (issue 15, core/tool-domains.ts): the declaration
-- (spec, JSON: url + headers or command + args + env; secrets only as references) and the
-- health the maintenance node last found, which every node reads.
CREATE TABLE tool_domains (
  name        TEXT PRIMARY KEY,
  spec        TEXT NOT NULL,
  source      TEXT NOT NULL CHECK (source IN ('config', 'api')),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  status      TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('up', 'down', 'unknown')),
  checked_at  INTEGER,
  latency_ms  INTEGER,
  tool_count  INTEGER,
  last_error  TEXT,
  changed_at  INTEGER
) STRICT;
-- Every call through the gateway: append-only, paged newest first (seq), filtered by task.
CREATE TABLE tool_calls (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  at            INTEGER NOT NULL,
  task_id       TEXT NOT NULL,
  assignment_id TEXT NOT NULL,
  attempt       INTEGER NOT NULL,
  agent         TEXT NOT NULL,
  tool          TEXT NOT NULL,
  args_bytes    INTEGER NOT NULL,
  args_sha256   TEXT NOT NULL,
  duration_ms   INTEGER NOT NULL,
  outcome       TEXT NOT NULL CHECK (outcome IN ('ok', 'error', 'failed', 'refused')),
  rule          TEXT,
  error         TEXT
) STRICT;
CREATE INDEX tool_calls_task ON tool_calls (task_id, seq);
CREATE INDEX tool_calls_at ON tool_calls (at);
-- Whether a task may run while a tool domain of its agent is down (0: it waits).
ALTER TABLE task_payloads ADD COLUMN allow_degraded INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 18,
    name: 'dependencies between tasks: status blocked, the dependency edges, workflow refs and templates',
    sql: `
-- A task may wait for others (docs/workflows.md): status 'blocked', its dependencies in
-- waiting_for (as a waiting task's children), which widens two CHECKs; SQLite cannot change a
-- CHECK in place, so tasks is rebuilt as migration 10 did (foreign keys enforced, deferred to
-- the commit; the AUTOINCREMENT counter carried over). Two new hot columns:
-- - has_dependents: some task depends on this one (set when such a task is created), so a
--   task that ends without any costs no lookup of its dependents;
-- - on_dependency_failure: 'fail' or 'run' for a task with dependencies, NULL without.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE tasks_v17_copy AS SELECT * FROM tasks;
CREATE TABLE tasks_v17_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'tasks';
DROP TABLE tasks;
CREATE TABLE tasks (
  seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
  id                  TEXT NOT NULL UNIQUE,
  status              TEXT NOT NULL CHECK (status IN ('pending', 'dispatched', 'running', 'waiting', 'input_required', 'completed', 'failed', 'cancelled', 'blocked')),
  priority            INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
  agent               TEXT,
  capabilities        TEXT NOT NULL DEFAULT '[]',
  replica             TEXT,
  site                TEXT,
  concurrency_key     TEXT,
  attempt             INTEGER NOT NULL CHECK (attempt >= 0),
  max_attempts        INTEGER NOT NULL CHECK (max_attempts >= 1),
  timeout_ms          INTEGER NOT NULL CHECK (timeout_ms >= 0),
  run_at              INTEGER NOT NULL,
  assignment_id       TEXT,
  cancel_requested_at INTEGER,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  finished_at         INTEGER,
  idempotency_key     TEXT UNIQUE,
  parent_id           TEXT,
  created_by          TEXT,
  root_id             TEXT,
  owner_id            TEXT,
  depth               INTEGER NOT NULL DEFAULT 1 CHECK (depth >= 1),
  -- The awaited children while waiting, the dependencies while blocked (JSON array of ids).
  waiting_for         TEXT,
  input_expires_at    INTEGER,
  sla_deadline        INTEGER NOT NULL DEFAULT 9007199254740991,
  sla_state           TEXT NOT NULL DEFAULT 'none' CHECK (sla_state IN ('none', 'ok', 'at_risk', 'violated', 'met')),
  sla_check_at        INTEGER,
  has_dependents      INTEGER NOT NULL DEFAULT 0 CHECK (has_dependents IN (0, 1)),
  on_dependency_failure TEXT CHECK (on_dependency_failure IN ('fail', 'run')),
  CHECK ((assignment_id IS NOT NULL) = (status IN ('dispatched', 'running'))),
  CHECK ((waiting_for IS NOT NULL) = (status IN ('waiting', 'blocked'))),
  CHECK (input_expires_at IS NULL OR status = 'input_required')
) STRICT;
INSERT INTO tasks (seq, id, status, priority, agent, capabilities, replica, site, concurrency_key, attempt, max_attempts,
  timeout_ms, run_at, assignment_id, cancel_requested_at, created_at, updated_at, finished_at, idempotency_key, parent_id,
  created_by, root_id, owner_id, depth, waiting_for, input_expires_at, sla_deadline, sla_state, sla_check_at)
SELECT seq, id, status, priority, agent, capabilities, replica, site, concurrency_key, attempt, max_attempts,
  timeout_ms, run_at, assignment_id, cancel_requested_at, created_at, updated_at, finished_at, idempotency_key, parent_id,
  created_by, root_id, owner_id, depth, waiting_for, input_expires_at, sla_deadline, sla_state, sla_check_at FROM tasks_v17_copy ORDER BY seq;
DROP TABLE tasks_v17_copy;
DELETE FROM sqlite_sequence WHERE name = 'tasks';
INSERT INTO sqlite_sequence (name, seq) SELECT 'tasks', seq FROM tasks_v17_seq;
DROP TABLE tasks_v17_seq;
CREATE INDEX tasks_pending_agent_order ON tasks (agent, priority DESC, sla_deadline, seq) WHERE status = 'pending';
CREATE INDEX tasks_pending_run_at ON tasks (run_at) WHERE status = 'pending';
CREATE INDEX tasks_terminal_finished ON tasks (finished_at) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX tasks_live_cancel ON tasks (cancel_requested_at) WHERE status IN ('dispatched', 'running') AND cancel_requested_at IS NOT NULL;
CREATE INDEX tasks_status_seq ON tasks (status, seq);
CREATE INDEX tasks_agent_seq ON tasks (agent, seq);
CREATE INDEX tasks_parent_seq ON tasks (parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_root_seq ON tasks (root_id, seq);
CREATE INDEX tasks_waiting ON tasks (seq) WHERE status = 'waiting';
CREATE INDEX tasks_input_expiry ON tasks (input_expires_at) WHERE input_expires_at IS NOT NULL;
CREATE INDEX tasks_sla_check ON tasks (sla_check_at) WHERE sla_check_at IS NOT NULL;
CREATE INDEX tasks_sla_at_risk ON tasks (seq) WHERE sla_state = 'at_risk';
CREATE INDEX tasks_sla_violated ON tasks (seq) WHERE sla_state = 'violated';
-- The maintenance sweep's question: which blocked tasks can be decided (engine/unblocker.ts).
CREATE INDEX tasks_blocked ON tasks (seq) WHERE status = 'blocked';
-- One row per (dependent, dependency): the dependents of a task that ended, by index.
CREATE TABLE task_dependencies (
  depends_on TEXT NOT NULL,
  task_id    TEXT NOT NULL,
  PRIMARY KEY (depends_on, task_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX task_dependencies_task ON task_dependencies (task_id);
-- What the dependent keeps: its dependencies in order, its workflow ref, its input template,
-- and the outcomes its attempts are given once it is unblocked.
ALTER TABLE task_payloads ADD COLUMN depends_on TEXT NOT NULL DEFAULT '[]';
ALTER TABLE task_payloads ADD COLUMN ref TEXT;
ALTER TABLE task_payloads ADD COLUMN input_from TEXT;
ALTER TABLE task_payloads ADD COLUMN dependencies TEXT;
`,
  },
  {
    version: 19,
    name: 'schedules',
    sql: `
-- Schedules (issue 16, core/schedules.ts): the definition (JSON: timing, task template,
-- policies), whose tasks it submits (owner, JSON), and its firing state. next_fire_at moves
-- only by compare-and-set (scheduleAdvance); updated_at guards every other change.
CREATE TABLE schedules (
  name            TEXT PRIMARY KEY,
  definition      TEXT NOT NULL,
  source          TEXT NOT NULL CHECK (source IN ('config', 'api')),
  owner           TEXT NOT NULL,
  paused          INTEGER NOT NULL DEFAULT 0,
  paused_reason   TEXT,
  next_fire_at    INTEGER,
  last_fire_at    INTEGER,
  last_task_id    TEXT,
  last_fire_note  TEXT,
  last_fire_error TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;
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
ALTER TABLE tasks ADD COLUMN cache_key TEXT;
ALTER TABLE tasks ADD COLUMN cache_scope TEXT;
ALTER TABLE tasks ADD COLUMN cached_from TEXT;
-- The lookup of a submit with a cacheKey: the latest completed run (not a copy) of the key.
CREATE INDEX tasks_cache_done ON tasks (agent, cache_key, cache_scope, finished_at)
  WHERE cache_key IS NOT NULL AND cached_from IS NULL AND status = 'completed';
-- One open run per key and parent: a second submit (on any node, at the same instant) shares
-- it. Per parent, so that a parent never waits for a shared task that is not its child; root
-- submits (no parent) share among themselves.
CREATE UNIQUE INDEX tasks_cache_open ON tasks (agent, cache_key, cache_scope, coalesce(parent_id, ''))
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
  key          TEXT PRIMARY KEY,
  rpm          INTEGER,
  tpm          INTEGER,
  source       TEXT NOT NULL CHECK (source IN ('config', 'api', 'pause')),
  paused_until INTEGER,
  updated_at   INTEGER NOT NULL
) STRICT;
-- One row per attempt dispatched under a limited key, for the sliding minute: its tokens are
-- the estimate until the worker reports its usage. Pruned once older than the window.
CREATE TABLE rate_log (
  holder TEXT PRIMARY KEY,
  key    TEXT NOT NULL,
  at     INTEGER NOT NULL,
  tokens INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_log_key_at ON rate_log (key, at);
CREATE INDEX rate_log_at ON rate_log (at);
-- What each attempt used, as its worker reported it (one row per attempt, the last report wins).
CREATE TABLE attempt_usage (
  assignment_id TEXT PRIMARY KEY,
  task_id       TEXT NOT NULL,
  root_id       TEXT NOT NULL,
  agent         TEXT NOT NULL,
  model         TEXT,
  input_tokens  INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cost_usd      REAL NOT NULL,
  at            INTEGER NOT NULL
) STRICT;
CREATE INDEX attempt_usage_at ON attempt_usage (at);
CREATE INDEX attempt_usage_task ON attempt_usage (task_id);
CREATE INDEX attempt_usage_root ON attempt_usage (root_id);
-- A task's rate key and token estimate live on the hot row: the dispatcher reads them with the candidates.
ALTER TABLE tasks ADD COLUMN rate_key TEXT;
ALTER TABLE tasks ADD COLUMN estimated_tokens INTEGER;
-- The agent cap: live assignments across all of its replicas (null: none).
ALTER TABLE agents ADD COLUMN max_in_flight INTEGER;
`,
  },
  {
    version: 22,
    name: 'webhook subscriptions, their outbox, the feed cursor, notify URLs',
    sql: `
-- Webhooks (docs/webhooks.md, decisions 109-112). A subscription's secret is stored sealed
-- (AES-256-GCM, engine/webhook-secrets.ts), never in the clear; from_seq: it is sent only
-- events after it was created.
CREATE TABLE webhook_subscriptions (
  id            TEXT PRIMARY KEY,
  url           TEXT NOT NULL,
  events        TEXT NOT NULL,
  agents        TEXT,
  root_id       TEXT,
  enabled       INTEGER NOT NULL,
  description   TEXT NOT NULL,
  owner_id      TEXT NOT NULL,
  visibility    TEXT NOT NULL,
  secret_sealed TEXT NOT NULL,
  from_seq      INTEGER NOT NULL,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  expires_at    INTEGER
) STRICT;
-- The outbox: one row per (subscription, event) (subscription 'notify': a task's notify URL).
-- body is the exact text sent and signed. Sent rows are deleted; failed ones are parked.
CREATE TABLE webhook_deliveries (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  subscription_id TEXT NOT NULL,
  event_seq       INTEGER NOT NULL,
  event_type      TEXT NOT NULL,
  task_id         TEXT,
  url             TEXT,
  body            TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending', 'failed')),
  attempts        INTEGER NOT NULL,
  next_at         INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  last_error      TEXT,
  UNIQUE (subscription_id, event_seq)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (subscription_id, task_id, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (subscription_id, status, seq);
-- The notify URL of a task still running (from its task.created event), until its end is queued.
CREATE TABLE webhook_notifies (
  task_id    TEXT PRIMARY KEY,
  url        TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
-- The feed's cursor: the last event seq deliveries were queued for. It starts at the last
-- event there is, so an upgrade does not send the history.
CREATE TABLE webhook_feed (
  id  INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
) STRICT;
INSERT INTO webhook_feed (id, seq) SELECT 1, coalesce(max(seq), 0) FROM events;
`,
  },
];

/**
 * Applies the migrations not yet recorded, all in one IMMEDIATE transaction (so two
 * processes starting on the same file cannot both apply one). Returns the versions applied.
 * Refuses to run against a database written by a newer schema than this code knows.
 */
export function applyMigrations(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): number[] {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT`);
    const applied = new Set<number>();
    for (const row of db.prepare('SELECT version FROM schema_migrations').all()) {
      applied.add(Number(row.version));
    }
    const known = new Set(migrations.map((m) => m.version));
    const unknown = [...applied].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      throw new Error(`database has schema migrations this version does not know (${unknown.join(', ')}): it was written by a newer Flotilla`);
    }
    const done: number[] = [];
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
      done.push(m.version);
    }
    db.exec('COMMIT');
    return done;
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
