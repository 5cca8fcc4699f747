/**
 * The HTML report of one or more run folders (`moeclip report`): one self-contained page — inline CSS and inline
 * SVG charts, no script, no external resource — that opens offline from file://. It holds the runs, their final
 * metrics and costs as tables, comparison charts with one colour per run, and each run's own charts.
 */
import { resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import type { LabeledRun } from './charts/charts.ts';
import type { Chart } from './charts/specs.ts';
import { compareCharts, describeRun, labelRuns, runCharts } from './charts/charts.ts';
import { prefixSvgIds, renderSvg } from './charts/render.ts';
import { expandRunDirs, readRunData, runLabels } from './charts/run-data.ts';
import { formatValue, METRIC_COLUMNS, type ColumnFormat } from './table.ts';

/** Per-run charts shown in each run's section (the others are in the comparison). */
const PER_RUN = new Set(['acc-matrix', 'accuracy', 'time', 'ddas-routing']);

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = `
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; } h3 { font-size: 15px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; } th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: middle; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure.chart { margin: 0; overflow-x: auto; max-width: 100%; }
.muted { color: #777; font-size: 13px; }
code { font-size: 12px; }
`;

interface Cell {
  text: string;
  num?: boolean;
  html?: string;
}

function tableHtml(header: readonly string[], rows: ReadonlyArray<readonly Cell[]>, cls: string): string {
  const th = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td${c.num ? ' class="num"' : ''}>${c.html ?? escapeHtml(c.text)}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table class="${cls}">\n<thead><tr>${th}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function runCell(r: LabeledRun): Cell {
  return { text: r.label, html: `<span class="swatch" style="background:${r.color}"></span>${escapeHtml(r.label)}` };
}

function runsTable(runs: readonly LabeledRun[]): string {
  const rows = runs.map((r) => {
    const d = r.data;
    const tasks = d.matrix?.length ?? (d.taskAcc.length > 0 ? d.taskAcc.length : null);
    return [
      runCell(r),
      { text: d.method ?? '—' },
      { text: d.name ?? '—' },
      { text: d.seed === null ? '—' : String(d.seed), num: true },
      { text: tasks === null ? '—' : String(tasks), num: true },
      { text: d.cost ? String(d.cost.samplesSeen) : '—', num: true },
      { text: d.dir, html: `<code>${escapeHtml(d.dir)}</code>` },
    ];
  });
  return tableHtml(['run', 'method', 'benchmark', 'seed', 'tasks', 'samples', 'folder'], rows, 'runs');
}

function metricsTable(runs: readonly LabeledRun[]): string {
  const cols = METRIC_COLUMNS.filter((c) => runs.some((r) => typeof r.data.metrics[c.key] === 'number'));
  const rows = runs.map((r) => [runCell(r), ...cols.map((c) => ({ text: formatValue(r.data.metrics[c.key], c.format), num: true }))]);
  return tableHtml(['run', ...cols.map((c) => `${c.title}${c.format === 'pct' ? ' [%]' : ''}`)], rows, 'metrics');
}

const COST_COLUMNS: ReadonlyArray<{ title: string; format: ColumnFormat; get: (r: LabeledRun) => number | null | undefined }> = [
  { title: 'trainable params', format: 'int', get: (r) => r.data.cost?.trainableParams },
  { title: 'total params', format: 'int', get: (r) => r.data.cost?.totalParams },
  { title: 'trainable [%]', format: 'pct', get: (r) => (r.data.cost && r.data.cost.totalParams > 0 ? r.data.cost.trainableParams / r.data.cost.totalParams : null) },
  { title: 'experts / block', format: 'int', get: (r) => r.data.cost?.extra?.['expertsPerBlock'] },
  { title: 'merges', format: 'int', get: (r) => r.data.cost?.extra?.['merges'] },
  { title: 'DDAS routing [%]', format: 'pct', get: (r) => r.data.cost?.extra?.['ddasRoutingAcc'] },
  { title: 'time [s]', format: 'sec', get: (r) => (typeof r.data.cost?.timingsMs?.['total'] === 'number' ? r.data.cost.timingsMs['total'] / 1000 : null) },
  { title: 'ms / sample', format: 'num', get: (r) => r.data.cost?.msPerSample },
  { title: 'peak RSS [GB]', format: 'num', get: (r) => (typeof r.data.cost?.peakRssBytes === 'number' ? r.data.cost.peakRssBytes / 1e9 : null) },
];

function costTable(runs: readonly LabeledRun[]): string | null {
  const cols = COST_COLUMNS.filter((c) => runs.some((r) => typeof c.get(r) === 'number'));
  if (cols.length === 0) return null;
  const rows = runs.map((r) => [runCell(r), ...cols.map((c) => ({ text: formatValue(c.get(r) ?? null, c.format), num: true }))]);
  return tableHtml(['run', ...cols.map((c) => c.title)], rows, 'cost');
}

async function figure(chart: Chart, key: string, prefix: string, warnings: string[]): Promise<string> {
  const svg = prefixSvgIds(await renderSvg(chart.spec, `${chart.id} (${key})`, warnings), prefix);
  return `<figure class="chart" data-chart="${escapeHtml(key)}" id="${prefix}">\n${svg}\n</figure>`;
}

/** What {@link buildReport} produced. */
export interface Report {
  html: string;
  /** The run folders shown (multi-seed folders expanded), in order. */
  runs: string[];
  /** `data-chart` keys of the figures, in page order: `compare/<id>` and `<run label>/<id>`. */
  charts: string[];
  /** Warnings of the chart compiler (none expected). */
  warnings: string[];
}

/**
 * Builds the report page of `runDirs` (run folders, or multi-seed folders of `seed-<s>` runs). Throws a
 * RunFolderError naming the folder when one is not a run folder or is incomplete.
 */
export async function buildReport(runDirs: readonly string[], opts: { title?: string } = {}): Promise<Report> {
  if (runDirs.length === 0) throw new Error('no run folders given');
  const dirs = expandRunDirs(runDirs);
  const runs = labelRuns(dirs.map((d) => readRunData(d)), runLabels(dirs));
  const warnings: string[] = [];
  const keys: string[] = [];
  let n = 0;
  const figs = async (charts: Chart[], scope: string) => {
    const out: string[] = [];
    for (const c of charts) {
      const key = `${scope}/${c.id}`;
      keys.push(key);
      out.push(await figure(c, key, `chart${n++}`, warnings));
    }
    return out.length > 0 ? `<div class="charts">\n${out.join('\n')}\n</div>` : '<p class="muted">no chart: the run folder has none of the data they need</p>';
  };
  const title = opts.title ?? (runs.length === 1 ? `moeclip report: ${runs[0]!.label}` : `moeclip report: ${runs.length} runs`);
  const parts: string[] = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeHtml(title)}</h1>`,
    '<p class="muted">Accuracies in percent. Charts: docs/report.md.</p>',
    '<h2>Runs</h2>',
    runsTable(runs),
    '<h2>Final metrics</h2>',
    metricsTable(runs),
  ];
  const cost = costTable(runs);
  if (cost !== null) parts.push('<h2>Cost</h2>', cost);
  parts.push('<h2>Comparison</h2>', await figs(compareCharts(runs), 'compare'));
  for (const r of runs) {
    parts.push(`<section class="run">`, `<h2>${runCell(r).html}</h2>`, `<p class="muted">${escapeHtml(describeRun(r.data))}</p>`);
    parts.push(await figs(runCharts(r).filter((c) => PER_RUN.has(c.id)), r.label), '</section>');
  }
  parts.push('</body>', '</html>', '');
  return { html: parts.join('\n'), runs: dirs, charts: keys, warnings };
}

/** Builds the report of `runDirs` and writes it atomically to `out`; returns the report (with `out` resolved). */
export async function writeReport(runDirs: readonly string[], out: string, opts: { title?: string } = {}): Promise<Report & { out: string }> {
  const report = await buildReport(runDirs, opts);
  const path = resolve(out);
  writeFileAtomic(path, report.html);
  return { ...report, out: path };
}
