// W3's table: per store, each figure measured under the grown load beside the same figure
// measured in a control run of the same sitting, their ratio, and the issue's bound on it.
// Every compared figure is a cost (time per task, latency): a ratio above 1 is a slowdown.

import type { Store } from './server.ts';
import { STORE_LABEL } from './targets.ts';

export interface Figure {
  figure: string;
  unit: 'µs/task' | 'ms' | 's' | 'MB' | 'kB';
  value: number | null;
  /** The same figure in the control run; null for a figure that is only stated. */
  control: number | null;
  /** value / control, at most this (the issue's bound); null: no bound. */
  maxRatio: number | null;
}

export function ratioOf(f: Figure): number | null {
  return f.value === null || f.control === null || f.control === 0 ? null : f.value / f.control;
}

export function metOf(f: Figure): boolean | null {
  const ratio = ratioOf(f);
  return ratio === null || f.maxRatio === null ? null : ratio <= f.maxRatio;
}

function fmt(unit: Figure['unit'], x: number | null): string {
  if (x === null) return '—';
  if (unit === 'µs/task') return Math.round(x).toLocaleString('en-US');
  if (unit === 'ms') return x.toFixed(2);
  return x.toFixed(1);
}

export function renderW3Table(figures: Partial<Record<Store, Figure[]>>): string {
  const header = ['store', 'figure', 'W3', 'control', 'ratio', 'target', 'met'];
  const rows = Object.entries(figures).flatMap(([store, list]) => list.map((f) => {
    const ratio = ratioOf(f);
    const met = metOf(f);
    return [
      STORE_LABEL[store as Store], `${f.figure} (${f.unit})`, fmt(f.unit, f.value), fmt(f.unit, f.control),
      ratio === null ? '' : `${ratio.toFixed(2)}×`, f.maxRatio === null ? '' : `≤ ${f.maxRatio}×`, met === null ? '' : met ? 'met' : 'NOT met',
    ];
  }));
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const left = (i: number) => i <= 1;
  const line = (r: string[]) => `| ${r.map((c, i) => (left(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (left(i) ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
