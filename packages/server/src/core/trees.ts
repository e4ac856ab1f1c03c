// Task trees: how deep a task is, and how deep a tree may grow (issue 14).
//   depth      a root task is 1; a child's depth is its parent's + 1 (never changed)
//   maxDepth   the deepest a task may be: a task at maxDepth may not spawn children

/** The server's default for `maxDepth` (config `maxDepth`, FLOTILLA_MAX_DEPTH). */
export const DEFAULT_MAX_DEPTH = 3;

/** The depth of a task submitted under `parent` (a root when there is none). */
export function childDepth(parent: { depth: number } | null): number {
  return parent === null ? 1 : parent.depth + 1;
}

/** Why `parent` may not have a child under `maxDepth`, or null when it may. */
export function spawnRefusal(parent: { id: string; depth: number }, maxDepth: number): string | null {
  if (parent.depth < maxDepth) return null;
  return `task ${parent.id} is at depth ${parent.depth} and the deepest a task may be is ${maxDepth}: it cannot spawn children`;
}

/**
 * Whether a task may no longer have children because it is cancelled or being cancelled: a
 * cancellation cascades down its tree, and a child added under it would be an orphan that runs.
 */
export function cancelledParent(parent: { status: string; cancelRequestedAt: number | null }): boolean {
  return parent.status === 'cancelled' || (parent.cancelRequestedAt !== null && parent.status !== 'completed' && parent.status !== 'failed');
}
