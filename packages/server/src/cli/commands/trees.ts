// Task trees and an operator's hands: `flotilla tree ID` draws the tree a task belongs to;
// `flotilla assign ID` dispatches a pending task now; `flotilla fail ID --reason R` fails a
// task for good (cancel --no-cascade is in tasks.ts, with cancel).

import type { TaskTreeView, TreeNodeView } from '@flotilla/sdk';
import { MAX_TREE_PAGE } from '../../schemas/schemas.ts';
import { intFlag, parseCommand, stringFlag, usageError, type CommandSpec } from './args.ts';
import { printJson, taskBlock } from './output.ts';

/** How many tasks `flotilla tree` reads at most unless --limit says otherwise. */
const DEFAULT_TREE_LIMIT = 1_000;

export const TREE_USAGE = `Usage: flotilla tree ID [--subtree] [--limit N]

Draws the tree task ID belongs to, from its root (ID is marked ◀), one task a line:
status, agent, id, attempt, progress.

  --subtree       only ID and the tasks under it
  --limit N       read at most N tasks of the tree (default ${DEFAULT_TREE_LIMIT}); a line says when
                  there are more
  --json          the API's answer (GET /tasks/{id}/tree, its pages joined)
`;

export const ASSIGN_USAGE = `Usage: flotilla assign ID [--agent NAME] [--replica ID]

Dispatches the pending task ID now (also before its run-at time), to a replica of NAME,
to the replica named, or to any replica that serves it and waits for work. Exit 1 with
the reason (NOT_ASSIGNABLE) when nothing can take it now.

  --agent NAME    a replica of this agent
  --replica ID    this replica
`;

export const FAIL_USAGE = `Usage: flotilla fail ID --reason R

Fails task ID for good (error OPERATOR_FAILED), a running one too (its worker is told the
attempt ended). It joins the dead-letter list: flotilla ls --status failed; flotilla retry
ID runs it again.

  --reason R      why (required; recorded as the task's error)
`;

/** One line of a node: status (and what is pending on it), agent, id, attempt, progress. */
function nodeLine(n: TreeNodeView, askedFor: string): string {
  let status: string = n.status;
  if (n.cancelRequested && n.status !== 'cancelled') status += ' (cancel requested)';
  if (n.errorCode !== null && n.status === 'failed') status += ` (${n.errorCode})`;
  const parts = [status, n.agent ?? '-', n.id, `attempt ${n.attempt}/${n.maxAttempts}`];
  if (n.progress) parts.push(`${n.progress.percent}%${n.progress.message ? ` ${n.progress.message}` : ''}`);
  return `${parts.join('  ')}${n.id === askedFor ? '  ◀' : ''}`;
}

/**
 * The tree drawn with box characters, children in submission order under their parent. A
 * task whose parent is not among the nodes (the top asked for with --subtree, or one whose
 * parent retention deleted) starts a tree of its own.
 */
export function drawTree(nodes: readonly TreeNodeView[], askedFor: string): string {
  const ids = new Set(nodes.map((n) => n.id));
  const children = new Map<string, TreeNodeView[]>();
  const tops: TreeNodeView[] = [];
  for (const n of nodes) {
    if (n.parentId === null || !ids.has(n.parentId)) tops.push(n);
    else children.set(n.parentId, [...(children.get(n.parentId) ?? []), n]);
  }
  const lines: string[] = [];
  // Iterative, deepest first: a tree may be up to maxDepth (1000) deep.
  const stack: Array<{ node: TreeNodeView; lead: string; branch: string }> = tops.map((node) => ({ node, lead: '', branch: '' })).reverse();
  while (stack.length > 0) {
    const { node, lead, branch } = stack.pop()!;
    lines.push(`${lead}${branch}${nodeLine(node, askedFor)}`);
    const kids = children.get(node.id) ?? [];
    const nextLead = lead + (branch === '' ? '' : branch === '└─ ' ? '   ' : '│  ');
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ node: kids[i]!, lead: nextLead, branch: i === kids.length - 1 ? '└─ ' : '├─ ' });
  }
  return `${lines.join('\n')}\n`;
}

/** `id` and every node under it (the nodes come parents first). */
export function subtree(nodes: readonly TreeNodeView[], id: string): TreeNodeView[] {
  const inside = new Set([id]);
  return nodes.filter((n) => {
    if (n.id === id) return true;
    if (n.parentId === null || !inside.has(n.parentId)) return false;
    inside.add(n.id);
    return true;
  });
}

export async function treeCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'tree', usage: TREE_USAGE, positionals: ['ID'], options: { subtree: { type: 'boolean' }, limit: { type: 'string' } } });
  if (cmd === null) return;
  const id = cmd.positionals[0]!;
  const max = intFlag(cmd.values.limit, '--limit', 1) ?? DEFAULT_TREE_LIMIT;
  const tree: TaskTreeView & { truncated: boolean } = await cmd.client().tasks.tree(id, { max, pageSize: Math.min(max, MAX_TREE_PAGE) });
  const nodes = cmd.values.subtree === true ? subtree(tree.items, id) : tree.items;
  if (cmd.json) {
    printJson({ ...tree, items: nodes });
    return;
  }
  process.stdout.write(drawTree(nodes, id));
  if (tree.truncated) process.stdout.write(`… the tree has more tasks than the ${tree.items.length} shown (--limit N shows more)\n`);
}

export async function assignCommand(argv: string[]): Promise<void> {
  const cmd = parseCommand(argv, { command: 'assign', usage: ASSIGN_USAGE, positionals: ['ID'], options: { agent: { type: 'string' }, replica: { type: 'string' } } });
  if (cmd === null) return;
  const agent = stringFlag(cmd.values.agent);
  const replica = stringFlag(cmd.values.replica);
  const task = await cmd.client().tasks.assign(cmd.positionals[0]!, { ...(agent !== undefined ? { agent } : {}), ...(replica !== undefined ? { replica } : {}) });
  if (cmd.json) printJson(task);
  else process.stdout.write(taskBlock(task));
}

export async function failCommand(argv: string[]): Promise<void> {
  const spec: CommandSpec = { command: 'fail', usage: FAIL_USAGE, positionals: ['ID'], options: { reason: { type: 'string' } } };
  const cmd = parseCommand(argv, spec);
  if (cmd === null) return;
  const reason = stringFlag(cmd.values.reason);
  if (reason === undefined || reason.trim() === '') throw usageError('--reason is required (why the task fails)', spec);
  const task = await cmd.client().tasks.fail(cmd.positionals[0]!, reason);
  if (cmd.json) printJson(task);
  else process.stdout.write(taskBlock(task));
}
