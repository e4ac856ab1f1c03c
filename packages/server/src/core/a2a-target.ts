// Where a runtime "a2a" agent is (issue 15, decisions.md 73): the checks of its declaration.
// Pure: the engine fetches the card (engine/a2a/clients.ts); this only says whether the
// declaration can name one.
//
// Invariants: an agent has `a2a` exactly when its runtime is "a2a"; `a2a` names exactly one
// of `cardUrl` (the card itself) or `url` (the base URL, card at /.well-known/agent-card.json);
// both are absolute http(s) URLs.

import type { A2aTargetSpec } from '@flotilla/sdk';

export const A2A_WELL_KNOWN_CARD_PATH = '/.well-known/agent-card.json';

export interface A2aTargetProblem {
  path: string;
  message: string;
}

function urlProblem(value: string, path: string): A2aTargetProblem | null {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return { path, message: 'is not an absolute URL' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return { path, message: 'must be an http or https URL' };
  return null;
}

/** What is wrong with an agent's runtime / a2a pair (empty: nothing). */
export function a2aTargetProblems(runtime: string, a2a: A2aTargetSpec | null | undefined): A2aTargetProblem[] {
  if (runtime !== 'a2a') {
    return a2a == null ? [] : [{ path: '/a2a', message: `is only for runtime "a2a" (this agent's runtime is "${runtime}")` }];
  }
  if (a2a == null) return [{ path: '/a2a', message: 'is required for runtime "a2a": give its agent card URL (cardUrl) or its base URL (url)' }];
  const given = (['cardUrl', 'url'] as const).filter((k) => a2a[k] !== undefined);
  if (given.length !== 1) return [{ path: '/a2a', message: 'must name exactly one of cardUrl and url' }];
  const problem = urlProblem(a2a[given[0]!]!, `/a2a/${given[0]}`);
  return problem ? [problem] : [];
}

/** The agent card's URL: `cardUrl`, or the well-known path under `url`. */
export function a2aCardUrl(a2a: A2aTargetSpec): string {
  if (a2a.cardUrl !== undefined) return a2a.cardUrl;
  return `${a2a.url!.replace(/\/+$/, '')}${A2A_WELL_KNOWN_CARD_PATH}`;
}
