// Tool domains and tool calls as the API shows them. Secrets never: a header or env value is
// shown as its reference (`{ env: NAME }`) or `***` (core/secret-refs.ts redactSecretRefs), a
// URL's userinfo as `***`.

import type { ToolCallView, ToolDomainHealthView, ToolDomainView } from '@flotilla/sdk';
import { redactSecretRefs, redactUrlCredentials } from '../../core/secret-refs.ts';
import { transportOf, type ToolCallRecord, type ToolDomainRecord } from '../../core/tool-domains.ts';
import { toIso, toIsoOrNull } from '../../engine/time.ts';

export function toolDomainHealthView(d: ToolDomainRecord): ToolDomainHealthView {
  const h = d.health;
  return {
    name: d.spec.name, transport: transportOf(d.spec), status: h.status, checkedAt: toIsoOrNull(h.checkedAt),
    latencyMs: h.latencyMs, toolCount: h.toolCount, lastError: h.lastError, changedAt: toIsoOrNull(h.changedAt),
  };
}

export function toolDomainView(d: ToolDomainRecord): ToolDomainView {
  const s = d.spec;
  return {
    name: s.name, description: s.description ?? null, transport: transportOf(s), url: s.url === undefined ? null : redactUrlCredentials(s.url), headers: redactSecretRefs(s.headers),
    command: s.command ?? null, args: s.args ?? [], env: redactSecretRefs(s.env), source: d.source,
    createdAt: toIso(d.createdAt), updatedAt: toIso(d.updatedAt), health: toolDomainHealthView(d),
  };
}

export function toolCallView(c: ToolCallRecord): ToolCallView {
  return {
    seq: c.seq, at: toIso(c.at), taskId: c.taskId, assignmentId: c.assignmentId, attempt: c.attempt, agent: c.agent, tool: c.tool,
    argsBytes: c.argsBytes, argsSha256: c.argsSha256, durationMs: c.durationMs, outcome: c.outcome, rule: c.rule, error: c.error,
  };
}
