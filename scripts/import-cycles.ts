// Import cycles between our own modules are refused (`npm run lint` runs this).
//
// Why not eslint-plugin-import-x's no-cycle: it depends on a native resolver whose optional
// per-platform packages npm does not record in a lockfile written without registry URLs,
// so `npm ci` on a clean clone fails. Our imports are exact relative paths with a `.ts`
// extension (required by Node's type stripping), so the graph needs no resolver at all.
//
// Usage: node scripts/import-cycles.ts [root ...]   (default: packages)

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;

export function importGraph(roots: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const visit = (path: string) => {
    for (const name of readdirSync(path)) {
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      const full = join(path, name);
      if (statSync(full).isDirectory()) visit(full);
      else if (full.endsWith('.ts') && !full.endsWith('.d.ts')) {
        const text = readFileSync(full, 'utf8');
        const deps = [...text.matchAll(IMPORT)].map((m) => resolve(dirname(full), m[1]!)).filter((d) => d.endsWith('.ts'));
        graph.set(full, deps);
      }
    }
  };
  for (const root of roots) visit(resolve(root));
  return graph;
}

/** Every elementary cycle found by depth-first search, each reported once (by its smallest member). */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles = new Map<string, string[]>();
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const dfs = (node: string) => {
    state.set(node, 'active');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'active') {
        const cycle = stack.slice(stack.indexOf(next));
        const start = cycle.indexOf([...cycle].sort()[0]!);
        const canonical = [...cycle.slice(start), ...cycle.slice(0, start)];
        cycles.set(canonical.join('→'), canonical);
      } else if (!state.has(next)) {
        dfs(next);
      }
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) dfs(node);
  return [...cycles.values()];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const roots = process.argv.length > 2 ? process.argv.slice(2) : ['packages'];
  const graph = importGraph(roots);
  const cycles = findCycles(graph);
  for (const cycle of cycles) {
    console.error(`import cycle: ${[...cycle, cycle[0]!].map((f) => relative(process.cwd(), f)).join(' -> ')}`);
  }
  if (cycles.length > 0) process.exit(1);
  console.log(`no import cycles among ${graph.size} modules`);
}
