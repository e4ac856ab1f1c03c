// Usage and cost (issue 16, docs/usage.md): what a worker reports an attempt used, checked
// once here, and the shape of the sums the store returns. Pure.

import { FlotillaError } from './errors.ts';
import type { Millis } from './types.ts';

/** Bounds of one report: a provider's figures for one attempt are far below them. */
export const MAX_USAGE_TOKENS = 1_000_000_000;
export const MAX_USAGE_COST_USD = 1_000_000;

/** What a worker reports with its complete or fail (wire: `usage`). Every field optional. */
export interface UsageReport {
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
}

/** One attempt's usage as stored (a report for an attempt replaces the earlier one). */
export interface UsageRecord {
  assignmentId: string;
  taskId: string;
  rootId: string;
  agent: string;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  at: Millis;
}

export type UsageGroupBy = 'agent' | 'root' | 'day' | 'task';

/** One group of GET /usage: `key` is the agent, the root task id, the task id or the UTC day (YYYY-MM-DD). */
export interface UsageSum {
  key: string;
  attempts: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** A report checked: non-negative integers of tokens, a non-negative cost, within bounds. */
export function checkUsage(u: UsageReport): Required<Pick<UsageReport, 'inputTokens' | 'outputTokens' | 'costUsd'>> & { model: string | null } {
  for (const name of ['inputTokens', 'outputTokens'] as const) {
    const v = u[name];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > MAX_USAGE_TOKENS)) {
      throw new FlotillaError('VALIDATION_FAILED', `usage.${name} must be an integer 0..${MAX_USAGE_TOKENS}`);
    }
  }
  if (u.costUsd !== undefined && (!Number.isFinite(u.costUsd) || u.costUsd < 0 || u.costUsd > MAX_USAGE_COST_USD)) {
    throw new FlotillaError('VALIDATION_FAILED', `usage.costUsd must be a number 0..${MAX_USAGE_COST_USD}`);
  }
  if (u.model !== undefined && (typeof u.model !== 'string' || u.model.length === 0 || u.model.length > 200)) {
    throw new FlotillaError('VALIDATION_FAILED', 'usage.model must be a string of 1..200 characters');
  }
  return { model: u.model ?? null, inputTokens: u.inputTokens ?? 0, outputTokens: u.outputTokens ?? 0, costUsd: u.costUsd ?? 0 };
}

/** The UTC day of a time, as GET /usage?groupBy=day names it. */
export function usageDay(at: Millis): string {
  return new Date(Math.floor(at / 86_400_000) * 86_400_000).toISOString().slice(0, 10);
}
