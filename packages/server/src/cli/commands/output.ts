// Output of the client commands: aligned tables for lists, key: value blocks for one
// object, and JSON (one document per command, or one line per event when following).

import type { AgentView, EventView, Json, ReplicaView, TaskView } from '@flotilla/sdk';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** `2025-01-02 03:04:05` (UTC) from an ISO timestamp; '-' for null. */
export function time(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  return String(value);
}

/** An aligned table with a header row; the last column is not padded. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(cell))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** `key: value` lines, keys aligned. */
export function block(entries: [string, unknown][]): string {
  const width = Math.max(...entries.map(([k]) => k.length)) + 1;
  return entries.map(([k, v]) => `${`${k}:`.padEnd(width)} ${cell(v)}`).join('\n') + '\n';
}

function compact(value: Json | null | undefined): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export function taskTable(tasks: TaskView[]): string {
  return table(
    ['ID', 'STATUS', 'PRIORITY', 'AGENT', 'ATTEMPT', 'UPDATED'],
    tasks.map((t) => [t.id, t.status, t.priority, t.agent ?? (t.capabilities.length ? `[${t.capabilities.join(',')}]` : null), `${t.attempt}/${t.maxAttempts}`, time(t.updatedAt)]),
  );
}

export function taskBlock(t: TaskView): string {
  const entries: [string, unknown][] = [
    ['id', t.id],
    ['type', t.type],
    ['status', t.status],
    ['priority', `${t.priority} (${t.sla.band})`],
    ['agent', t.agent],
  ];
  if (t.sla.deadline !== null) entries.push(['sla', `${t.sla.state}, deadline ${time(t.sla.deadline)}`]);
  if (t.capabilities.length > 0) entries.push(['capabilities', t.capabilities.join(', ')]);
  entries.push(
    ['attempt', `${t.attempt}/${t.maxAttempts}`],
    ['created', time(t.createdAt)],
    ['updated', time(t.updatedAt)],
    ['finished', time(t.finishedAt)],
  );
  if (t.assignment) {
    entries.push(['replica', t.assignment.replicaId]);
    if (t.assignment.progress) entries.push(['progress', `${t.assignment.progress.percent}%${t.assignment.progress.message ? ` ${t.assignment.progress.message}` : ''}`]);
  }
  if (t.idempotencyKey) entries.push(['idempotency key', t.idempotencyKey]);
  if (t.concurrencyKey) entries.push(['concurrency key', t.concurrencyKey]);
  if (t.replica) entries.push(['pinned to', t.replica]);
  if (t.site) entries.push(['preferred site', t.site]);
  if (Object.keys(t.correlation).length > 0) entries.push(['correlation', Object.entries(t.correlation).map(([k, v]) => `${k}=${v}`).join(', ')]);
  if (t.parentId) entries.push(['parent', t.parentId]);
  if (t.waitingFor) entries.push(['waiting for', t.waitingFor.join(', ')]);
  if (t.waitingDomains !== undefined && t.waitingDomains.length > 0) entries.push(['waiting for tool domains', t.waitingDomains.join(', ')]);
  if (t.allowDegraded) entries.push(['tool domains down', 'may run degraded']);
  if (t.inputRequest) {
    entries.push(['asks', t.inputRequest.prompt]);
    if (t.inputRequest.schema !== null) entries.push(['answer schema', compact(t.inputRequest.schema)]);
    if (t.inputRequest.expiresAt) entries.push(['answer by', time(t.inputRequest.expiresAt)]);
  }
  if (t.tools.length > 0) entries.push(['tools', t.tools.join(', ')]);
  entries.push(['input', compact(t.input)]);
  if (t.result !== null) entries.push(['result', compact(t.result)]);
  if (t.error) entries.push(['error', `${t.error.code ? `${t.error.code}: ` : ''}${t.error.message}`]);
  return block(entries);
}

export function agentTable(agents: AgentView[]): string {
  return table(
    ['NAME', 'STATE', 'RUNTIME', 'LEVEL', 'CONCURRENCY', 'CAPABILITIES', 'DESCRIPTION'],
    agents.map((a) => [a.name, a.pausedAt === null ? a.state : `${a.state} (paused)`, a.runtime, a.level, a.maxConcurrency, a.capabilities.join(','), a.description]),
  );
}

export function agentBlock(a: AgentView): string {
  return block([
    ['name', a.name],
    ['state', a.state],
    ['paused', a.pausedAt === null ? null : `since ${time(a.pausedAt)}`],
    ['description', a.description],
    ['runtime', a.runtime],
    ['a2a', a.a2a?.cardUrl ?? a.a2a?.url ?? null],
    ['level', a.level],
    ['capabilities', a.capabilities.join(', ')],
    ['max concurrency', a.maxConcurrency],
    ['max attempts', a.maxAttempts],
    ['timeout ms', a.timeoutMs],
    ['tool domains', a.toolDomains.join(', ')],
    ['tools', a.tools.join(', ')],
    ['max depth', a.maxDepth ?? 'the server\'s'],
    ['concurrency limits', Object.entries(a.concurrencyLimits).map(([k, n]) => `${k}=${n}`).join(', ')],
    ['retry delays ms', a.retry.baseDelayMs === null && a.retry.maxDelayMs === null ? null : `base ${a.retry.baseDelayMs ?? '-'}, max ${a.retry.maxDelayMs ?? '-'}`],
    ['A2A skill', a.a2aSkill === null ? 'not published' : `published${a.a2aSkill.examples.length > 0 ? `, examples: ${a.a2aSkill.examples.join(' | ')}` : ''}`],
    ['created', time(a.createdAt)],
    ['updated', time(a.updatedAt)],
  ]);
}

export function replicaTable(replicas: ReplicaView[]): string {
  return table(
    ['REPLICA', 'STATUS', 'HEALTH', 'SITE', 'IN FLIGHT', 'COMPLETED', 'FAILED', 'LAST SEEN'],
    replicas.map((r) => [r.id, r.status, r.health, r.site, `${r.inFlight}/${r.maxConcurrency}`, r.completed, r.failed, time(r.lastSeenAt)]),
  );
}

/** One readable line per event: seq, time, type, task, agent, data. */
export function eventLine(e: EventView): string {
  const parts = [`#${e.seq}`, time(e.at), e.type];
  if (e.taskId) parts.push(`task=${e.taskId}`);
  if (e.agent) parts.push(`agent=${e.agent}`);
  if (e.replicaId) parts.push(`replica=${e.replicaId}`);
  if (Object.keys(e.data).length > 0) parts.push(JSON.stringify(e.data));
  return parts.join('  ') + '\n';
}
