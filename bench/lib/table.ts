// The results table: one row per metric; per store the median [min–max] of the runs and
// the target with met / NOT met (judged on the median); then the competitors' figures.
// Markdown pipes, padded to line up in a terminal.

import type { Store } from './server.ts';
import type { Summary } from './stats.ts';
import { COMPETITORS, meets, METRICS, STORE_LABEL, TARGETS, type Metric, type MetricKey } from './targets.ts';

export type Summaries = Partial<Record<Store, Partial<Record<MetricKey, Summary>>>>;

function fmt(unit: Metric['unit'], x: number): string {
  if (unit === 'tasks/s') return Math.round(x).toLocaleString('en-US');
  if (unit === 'MB') return x.toFixed(1);
  return x.toFixed(2);
}

function cell(metric: Metric, s: Summary | undefined, runs: number): string {
  if (!s) return '—';
  const median = fmt(metric.unit, s.median);
  return runs > 1 ? `${median} [${fmt(metric.unit, s.min)}–${fmt(metric.unit, s.max)}]` : median;
}

function targetCell(store: Store, metric: Metric, s: Summary | undefined): string {
  const t = TARGETS[store][metric.key];
  if (!t) return '';
  const goal = `${t.op === '>=' ? '≥' : '≤'} ${t.value.toLocaleString('en-US')}`;
  if (!s) return goal;
  return `${goal} ${meets(t, s.median) ? 'met' : 'NOT met'}`;
}

export function renderTable(summaries: Summaries, stores: readonly Store[], runs: number, batch: number): string {
  const header = ['metric', ...stores.flatMap((st) => [`${STORE_LABEL[st]} median${runs > 1 ? ' [min–max]' : ''}`, 'target']), ...Object.keys(COMPETITORS)];
  const rows = METRICS.map((m) => {
    const label = `${m.key === 'bulkSubmitPerSecond' ? `W1 bulk submit, ${batch.toLocaleString('en-US')} per call` : m.label} (${m.unit})`;
    return [
      label,
      ...stores.flatMap((st) => [cell(m, summaries[st]?.[m.key], runs), targetCell(st, m, summaries[st]?.[m.key])]),
      ...Object.values(COMPETITORS).map((c) => c[m.key] ?? ''),
    ];
  });
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
