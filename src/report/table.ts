/**
 * Plain-text results tables (methods × metrics) for the CLI and the demo. Accuracies are shown in percent with
 * two decimals, undefined values as `—`.
 */
import type { RunMetrics } from '../eval/metrics.ts';

export type ColumnFormat = 'pct' | 'num' | 'sec' | 'int' | 'text';

export interface Column {
  key: string;
  title: string;
  format: ColumnFormat;
}

/** A table row: a name and its values by column key. */
export interface ResultRow {
  name: string;
  values: Record<string, number | string | null | undefined>;
}

/** Default metric columns, in display order. */
export const METRIC_COLUMNS: readonly Column[] = [
  { key: 'A_auc', title: 'A_auc', format: 'pct' },
  { key: 'A_avg', title: 'A_avg', format: 'pct' },
  { key: 'A_last', title: 'A_last', format: 'pct' },
  { key: 'F_last', title: 'F_last', format: 'pct' },
  { key: 'online', title: 'online', format: 'pct' },
  { key: 'transfer', title: 'transfer', format: 'pct' },
  { key: 'average', title: 'average', format: 'pct' },
  { key: 'last', title: 'last', format: 'pct' },
  { key: 'bwt', title: 'BWT', format: 'pct' },
  { key: 'forgetting', title: 'forget', format: 'pct' },
  { key: 'fwt', title: 'FWT', format: 'pct' },
];

/** Formats one value for a column. */
export function formatValue(v: number | string | null | undefined, format: ColumnFormat): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  switch (format) {
    case 'pct':
      return (v * 100).toFixed(2);
    case 'sec':
      return v.toFixed(1);
    case 'int':
      return String(Math.round(v));
    case 'num':
      return Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3);
    case 'text':
      return String(v);
  }
}

/**
 * A plain-text table: a header line, a rule, one line per row; the first column left-aligned, numbers
 * right-aligned. With `dropEmpty` (default), metric columns that are undefined in every row are left out.
 */
export function formatResultsTable(
  rows: readonly ResultRow[],
  columns: readonly Column[] = METRIC_COLUMNS,
  opts: { dropEmpty?: boolean; firstTitle?: string } = {},
): string {
  const dropEmpty = opts.dropEmpty ?? true;
  const cols = dropEmpty
    ? columns.filter((c) => rows.some((r) => r.values[c.key] !== null && r.values[c.key] !== undefined))
    : [...columns];
  const header = [opts.firstTitle ?? 'method', ...cols.map((c) => c.title)];
  const body = rows.map((r) => [r.name, ...cols.map((c) => formatValue(r.values[c.key], c.format))]);
  const widths = header.map((h, k) => Math.max(h.length, ...body.map((b) => b[k]!.length)));
  const line = (cells: string[]) =>
    cells.map((s, k) => (k === 0 ? s.padEnd(widths[k]!) : s.padStart(widths[k]!))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...body.map(line)].join('\n') + '\n';
}

/** A row from a run's metrics plus its wall time (seconds) and time per sample (ms). */
export function metricsRow(
  name: string,
  metrics: RunMetrics,
  extra: Record<string, number | string | null> = {},
): ResultRow {
  return { name, values: { ...metrics, ...extra } };
}

/** The metric columns followed by wall time and time per sample. */
export const RUN_COLUMNS: readonly Column[] = [
  ...METRIC_COLUMNS,
  { key: 'time_s', title: 'time [s]', format: 'sec' },
  { key: 'ms_per_sample', title: 'ms/sample', format: 'num' },
];
