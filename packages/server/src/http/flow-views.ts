// Wire views of flow control and usage (issue 16): rate limits with their minute, usage sums,
// and what GET /tasks/:id adds (the key that holds the task, its usage).

import type { RateLimitView, TaskView, UsageGroup } from '@flotilla/sdk';
import type { RateLimitState } from '../core/rate-limits.ts';
import type { UsageSum } from '../core/usage.ts';
import type { FlowDetail } from '../engine/flow-detail.ts';
import { toIso, toIsoOrNull } from '../engine/time.ts';

export function rateLimitView(s: RateLimitState, now: number): RateLimitView {
  return {
    key: s.key,
    rpm: s.rpm,
    tpm: s.tpm,
    source: s.source,
    used: { requests: s.window.requests, tokens: s.window.tokens },
    remaining: {
      requests: s.rpm === null ? null : Math.max(0, s.rpm - s.window.requests),
      tokens: s.tpm === null ? null : Math.max(0, s.tpm - s.window.tokens),
    },
    // A pause that has ended is no pause.
    pausedUntil: s.pausedUntil !== null && s.pausedUntil > now ? toIsoOrNull(s.pausedUntil) : null,
    updatedAt: toIso(s.updatedAt),
  };
}

export function usageGroupView(s: UsageSum): UsageGroup {
  return { key: s.key, attempts: s.attempts, inputTokens: s.inputTokens, outputTokens: s.outputTokens, costUsd: s.costUsd };
}

export function flowView(d: FlowDetail): Pick<TaskView, 'rateLimit' | 'usage'> {
  return {
    ...(d.rateLimit === undefined ? {} : { rateLimit: { key: d.rateLimit.key, until: toIso(d.rateLimit.until), reason: d.rateLimit.reason } }),
    ...(d.usage === undefined ? {} : { usage: d.usage }),
  };
}
