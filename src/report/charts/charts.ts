/**
 * The charts of runs: per-run charts (written to `plots/` and shown per run in the report) and comparison charts
 * (one colour per run). Each builder returns `null` when no run has the data it draws, so a chart is skipped
 * rather than drawn empty.
 */
import type { RunData } from './run-data.ts';
import type { Bar, Chart, HeatCell, LinePoint } from './specs.ts';
import { barSpec, heatmapSpec, lineSpec, runColor } from './specs.ts';

/** A run with the label and colour it has in a report. */
export interface LabeledRun {
  label: string;
  color: string;
  data: RunData;
}

/** Labels runs and gives them colours in order. */
export function labelRuns(runs: readonly RunData[], labels: readonly string[]): LabeledRun[] {
  return runs.map((data, i) => ({ label: labels[i] ?? data.dir, color: runColor(i), data }));
}

/** What a run is, for subtitles: `method · benchmark · seed s`. */
export function describeRun(r: RunData): string {
  return [r.method, r.name, r.seed !== null ? `seed ${r.seed}` : null].filter((s) => s !== null).join(' · ');
}

const pct = (v: number) => `${Math.round(v * 100)}`;

/** Accuracy-matrix heatmap: A[t][j] after training task t (rows), on task j (columns); empty cells not drawn. */
export function accMatrixChart(r: RunData): Chart | null {
  const A = r.matrix;
  if (!A || A.length === 0) return null;
  const cells: HeatCell[] = [];
  A.forEach((row, t) => row.forEach((v, j) => v !== null && cells.push({ row: t, col: j, value: v, text: pct(v) })));
  if (cells.length === 0) return null;
  const idx = A.map((_, k) => k);
  return {
    id: 'acc-matrix',
    title: 'Accuracy matrix',
    spec: heatmapSpec({
      title: 'Accuracy matrix A[t][j]',
      subtitle: describeRun(r),
      cells,
      rowDomain: idx,
      colDomain: idx,
      rowTitle: 'after training task t',
      colTitle: 'accuracy on task j',
      legendTitle: 'accuracy',
      legendFormat: '.0%',
    }),
  };
}

/** Running prequential accuracy after each batch: Σ correct / Σ n over the batches so far (online.csv). */
export function cumulativeOnline(r: RunData): Array<{ samplesSeen: number; accuracy: number }> {
  let c = 0;
  let n = 0;
  const out: Array<{ samplesSeen: number; accuracy: number }> = [];
  for (const b of r.online) {
    c += b.correct;
    n += b.n;
    if (n > 0) out.push({ samplesSeen: b.samplesSeen, accuracy: c / n });
  }
  return out;
}

/** End-of-task accuracies that were evaluated and have a stream position. */
function taskEnds(r: RunData): Array<{ samplesSeen: number; accuracy: number }> {
  return r.taskAcc
    .filter((t): t is { task: number; samplesSeen: number; accuracy: number } => t.samplesSeen !== null && t.accuracy !== null)
    .map((t) => ({ samplesSeen: t.samplesSeen, accuracy: t.accuracy }));
}

/** Task boundaries (samples seen at each task end but the last) as rules. */
function taskRules(r: RunData): Array<{ x: number; kind: string }> {
  const ends = r.taskAcc.map((t) => t.samplesSeen).filter((s): s is number => s !== null);
  return ends.slice(0, -1).map((x) => ({ x, kind: 'task end' }));
}

const ACC_SERIES = ['anytime', 'end of task', 'online (cumulative)'] as const;

/**
 * One run's accuracy over the stream: anytime evaluation (anytime.csv), end-of-task accuracy (task_acc.csv) and
 * the running prequential accuracy (online.csv), with task boundaries as dashed rules.
 */
export function accuracyChart(r: RunData): Chart | null {
  const series: Array<[string, Array<{ samplesSeen: number; accuracy: number }>, boolean]> = [
    [ACC_SERIES[0], r.anytime, true],
    [ACC_SERIES[1], taskEnds(r), true],
    [ACC_SERIES[2], cumulativeOnline(r), false],
  ];
  const present = series.filter(([, pts]) => pts.length > 0);
  if (present.length === 0) return null;
  const points: LinePoint[] = present.flatMap(([name, pts, point]) => pts.map((p, i) => ({ x: p.samplesSeen, y: p.accuracy, series: name, order: i, point })));
  return {
    id: 'accuracy',
    title: 'Accuracy over the stream',
    spec: lineSpec({
      title: 'Accuracy over the stream',
      subtitle: describeRun(r),
      points,
      series: present.map(([n]) => n),
      colors: present.map(([n]) => runColor(ACC_SERIES.indexOf(n as (typeof ACC_SERIES)[number]))),
      xTitle: 'stream samples seen',
      yTitle: 'accuracy',
      yFormat: '.0%',
      yDomain: [0, 1],
      rules: taskRules(r),
    }),
  };
}

/** One line per run of `pick(run)` over the stream; null when every run's series is empty. */
function overlay(
  runs: readonly LabeledRun[],
  pick: (r: RunData) => Array<{ samplesSeen: number; accuracy: number }>,
  id: string,
  chartTitle: string,
  markPoints: (n: number) => boolean,
): Chart | null {
  const present = runs.map((run) => [run, pick(run.data)] as const).filter(([, pts]) => pts.length > 0);
  if (present.length === 0) return null;
  const points: LinePoint[] = present.flatMap(([run, pts]) =>
    pts.map((p, i) => ({ x: p.samplesSeen, y: p.accuracy, series: run.label, order: i, point: markPoints(pts.length) })),
  );
  return {
    id,
    title: chartTitle,
    spec: lineSpec({
      title: chartTitle,
      points,
      series: present.map(([run]) => run.label),
      colors: present.map(([run]) => run.color),
      xTitle: 'stream samples seen',
      yTitle: 'accuracy',
      yFormat: '.0%',
      yDomain: [0, 1],
    }),
  };
}

/** Anytime accuracy of every run, overlaid. */
export function anytimeCompareChart(runs: readonly LabeledRun[]): Chart | null {
  return overlay(runs, (r) => r.anytime, 'anytime', 'Anytime accuracy (exposed classes)', () => true);
}

/** End-of-task accuracy of every run, overlaid. */
export function taskAccCompareChart(runs: readonly LabeledRun[]): Chart | null {
  return overlay(runs, taskEnds, 'task-acc', 'End-of-task accuracy (exposed classes)', () => true);
}

/** Running prequential accuracy of every run, overlaid. */
export function onlineCompareChart(runs: readonly LabeledRun[]): Chart | null {
  return overlay(runs, cumulativeOnline, 'online', 'Online (prequential) accuracy, cumulative', (n) => n <= 40);
}

/** The last row of class_acc.csv that has values: per-class accuracy at the end of the run. */
export function finalClassAcc(r: RunData): Array<{ label: number; accuracy: number }> {
  for (let t = r.classAcc.length - 1; t >= 0; t--) if (r.classAcc[t]!.acc.length > 0) return r.classAcc[t]!.acc;
  return [];
}

/** Final per-class accuracy, bars grouped by class with one bar per run. */
export function classAccChart(runs: readonly LabeledRun[]): Chart | null {
  const present = runs.map((run) => [run, finalClassAcc(run.data)] as const).filter(([, a]) => a.length > 0);
  if (present.length === 0) return null;
  const labels = [...new Set(present.flatMap(([, a]) => a.map((c) => c.label)))].sort((a, b) => a - b);
  const bars: Bar[] = present.flatMap(([run, a]) => a.map((c) => ({ x: String(c.label), y: c.accuracy, series: run.label })));
  return {
    id: 'class-acc',
    title: 'Final per-class accuracy',
    spec: barSpec({
      title: 'Final per-class accuracy',
      ...(runs.length === 1 ? { subtitle: describeRun(runs[0]!.data) } : {}),
      bars,
      xDomain: labels.map(String),
      series: present.map(([run]) => run.label),
      colors: present.map(([run]) => run.color),
      xTitle: 'class (global label)',
      yTitle: 'accuracy after the last task',
      yFormat: '.0%',
      yDomain: [0, 1],
    }),
  };
}

/**
 * Trainable and total parameters: over the stream when the run recorded `cost` events, else the final counts of
 * cost.json as bars (trainable, total) per run.
 */
export function paramsChart(runs: readonly LabeledRun[]): Chart | null {
  const withSeries = runs.filter((r) => r.data.costSeries.length > 0);
  const subtitle = runs.length === 1 ? describeRun(runs[0]!.data) : undefined;
  if (withSeries.length > 0) {
    const series: string[] = [];
    const colors: string[] = [];
    const points: LinePoint[] = [];
    for (const run of withSeries) {
      for (const kind of ['trainable', 'total'] as const) {
        const name = runs.length === 1 ? kind : `${run.label} ${kind}`;
        series.push(name);
        colors.push(kind === 'trainable' ? run.color : shade(run.color));
        run.data.costSeries.forEach((c, i) =>
          points.push({ x: c.samplesSeen, y: kind === 'trainable' ? c.trainableParams : c.totalParams, series: name, order: i, point: true }),
        );
      }
    }
    return {
      id: 'params',
      title: 'Parameters over the stream',
      spec: lineSpec({ title: 'Trainable and total parameters over the stream', ...(subtitle ? { subtitle } : {}), points, series, colors, xTitle: 'stream samples seen', yTitle: 'parameters', yFormat: '~s', yZero: true, step: true }),
    };
  }
  const withCost = runs.filter((r) => r.data.cost !== null && typeof r.data.cost.totalParams === 'number');
  if (withCost.length === 0) return null;
  const bars: Bar[] = withCost.flatMap((run) => [
    { x: 'trainable', y: run.data.cost!.trainableParams, series: run.label },
    { x: 'total', y: run.data.cost!.totalParams, series: run.label },
  ]);
  return {
    id: 'params',
    title: 'Parameters at the end of the run',
    spec: barSpec({
      title: 'Trainable and total parameters at the end of the run',
      ...(subtitle ? { subtitle } : {}),
      bars,
      xDomain: ['trainable', 'total'],
      series: withCost.map((r) => r.label),
      colors: withCost.map((r) => r.color),
      xTitle: '',
      yTitle: 'parameters',
      yFormat: '~s',
    }),
  };
}

/** A lighter tint of a `#rrggbb` colour (for the second line of a run). */
function shade(hex: string): string {
  const c = [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
  return '#' + c.map((v) => Math.round(v + (255 - v) * 0.5).toString(16).padStart(2, '0')).join('');
}

/**
 * Experts per block over the stream (a step line; several values at one position keep their recorded order),
 * extended to the end of the run with cost.json's final `expertsPerBlock`.
 */
export function expertsChart(runs: readonly LabeledRun[]): Chart | null {
  const present = runs.filter((r) => r.data.expertsOverTime.length > 0);
  if (present.length === 0) return null;
  const points: LinePoint[] = present.flatMap((run) => {
    const pts = run.data.expertsOverTime.map((p, i) => ({ x: p.samplesSeen, y: p.experts, series: run.label, order: i, point: true }));
    const last = pts[pts.length - 1]!;
    const end = run.data.cost?.samplesSeen;
    const final = run.data.cost?.extra?.['expertsPerBlock'];
    if (typeof end === 'number' && typeof final === 'number' && end > last.x) pts.push({ x: end, y: final, series: run.label, order: pts.length, point: false });
    return pts;
  });
  return {
    id: 'experts',
    title: 'Experts per block over the stream',
    spec: lineSpec({
      title: 'Experts per block over the stream',
      ...(runs.length === 1 ? { subtitle: describeRun(runs[0]!.data) } : {}),
      points,
      series: present.map((r) => r.label),
      colors: present.map((r) => r.color),
      xTitle: 'stream samples seen',
      yTitle: 'experts per block (max over blocks)',
      yZero: true,
      step: true,
      rules: runs.length === 1 ? mergeRules(runs[0]!.data) : [],
    }),
  };
}

function mergeRules(r: RunData): Array<{ x: number; kind: string }> {
  return r.phases.filter((p) => p.name === 'merge').map((p) => ({ x: p.samplesSeen, kind: 'merge' }));
}

/**
 * One run's time: seconds per batch (batch events' `ms`, when recorded) and the duration of every reported phase
 * (task hooks, merges, DDAS routing…) at its stream position, on a log axis; merges also as dashed rules.
 */
export function timeChart(r: RunData): Chart | null {
  const phases = r.phases.filter((p) => p.ms > 0);
  const batches = r.batchMs.filter((b) => b.ms > 0);
  if (phases.length === 0 && batches.length === 0) return null;
  const names = [...new Set(phases.map((p) => p.name))].sort();
  const series = [...(batches.length > 0 ? ['batch'] : []), ...names];
  const points: LinePoint[] = [
    ...batches.map((b, i) => ({ x: b.samplesSeen, y: b.ms / 1000, series: 'batch', order: i, point: false })),
    ...phases.map((p, i) => ({ x: p.samplesSeen, y: p.ms / 1000, series: p.name, order: i, point: true, line: false })),
  ];
  return {
    id: 'time',
    title: batches.length > 0 ? 'Seconds per batch and phases' : 'Seconds per phase',
    spec: lineSpec({
      title: batches.length > 0 ? 'Seconds per batch, with phases (merges: dashed)' : 'Seconds per phase (merges: dashed)',
      subtitle: describeRun(r),
      points,
      series,
      colors: series.map((_, k) => runColor(k)),
      xTitle: 'stream samples seen',
      yTitle: 'seconds',
      yLog: true,
      rules: mergeRules(r),
    }),
  };
}

/**
 * Seconds per batch of every run overlaid (when recorded), with each merge as a point at its duration; null when
 * no run recorded batch times or merges.
 */
export function timeCompareChart(runs: readonly LabeledRun[]): Chart | null {
  const points: LinePoint[] = [];
  const present: LabeledRun[] = [];
  for (const run of runs) {
    const b = run.data.batchMs.filter((x) => x.ms > 0);
    const m = run.data.phases.filter((p) => p.name === 'merge' && p.ms > 0);
    if (b.length === 0 && m.length === 0) continue;
    present.push(run);
    b.forEach((x, i) => points.push({ x: x.samplesSeen, y: x.ms / 1000, series: run.label, order: i, point: false }));
    m.forEach((p, i) => points.push({ x: p.samplesSeen, y: p.ms / 1000, series: run.label, order: b.length + i, point: true, line: false }));
  }
  if (present.length === 0) return null;
  const anyBatch = present.some((r) => r.data.batchMs.length > 0);
  return {
    id: 'time',
    title: anyBatch ? 'Seconds per batch (points: merges)' : 'Merge durations',
    spec: lineSpec({
      title: anyBatch ? 'Seconds per batch (points: merges)' : 'Merge durations',
      points,
      series: present.map((r) => r.label),
      colors: present.map((r) => r.color),
      xTitle: 'stream samples seen',
      yTitle: 'seconds',
      yLog: true,
    }),
  };
}

/**
 * DDAS routing confusion at end-of-task evaluations (cost.json `ddasRoute:<expected>-><routed>` counts; −1 =
 * zero-shot): rows are the expected DDAS id, columns where samples were routed; the fill is the row fraction,
 * the label the count.
 */
export function routingChart(r: RunData): Chart | null {
  if (r.routing.length === 0) return null;
  const rowTotals = new Map<number, number>();
  for (const c of r.routing) rowTotals.set(c.expected, (rowTotals.get(c.expected) ?? 0) + c.count);
  const ids = [...new Set(r.routing.flatMap((c) => [c.expected, c.routed]))].sort((a, b) => a - b);
  const cells: HeatCell[] = r.routing.map((c) => ({
    row: c.expected,
    col: c.routed,
    value: (rowTotals.get(c.expected) ?? 0) > 0 ? c.count / rowTotals.get(c.expected)! : 0,
    text: String(c.count),
  }));
  const acc = r.cost?.extra?.['ddasRoutingAcc'];
  return {
    id: 'ddas-routing',
    title: 'DDAS routing confusion',
    spec: heatmapSpec({
      title: `DDAS routing at end-of-task evaluation${typeof acc === 'number' ? ` (accuracy ${(acc * 100).toFixed(1)}%)` : ''}`,
      subtitle: describeRun(r),
      cells,
      rowDomain: ids.filter((i) => rowTotals.has(i)),
      colDomain: ids,
      rowTitle: 'expected (DDAS id)',
      colTitle: 'routed to',
      legendTitle: 'row fraction',
      legendFormat: '.0%',
      tickLabel: "datum.value == -1 ? 'zero-shot' : datum.value",
    }),
  };
}

/** The per-run charts of one run, in display order, skipping those without data. */
export function runCharts(run: LabeledRun): Chart[] {
  const one = [run];
  return [accMatrixChart(run.data), accuracyChart(run.data), classAccChart(one), paramsChart(one), expertsChart(one), timeChart(run.data), routingChart(run.data)].filter(
    (c): c is Chart => c !== null,
  );
}

/** The comparison charts of several runs (one colour per run), skipping those without data. */
export function compareCharts(runs: readonly LabeledRun[]): Chart[] {
  return [
    anytimeCompareChart(runs),
    taskAccCompareChart(runs),
    onlineCompareChart(runs),
    classAccChart(runs),
    paramsChart(runs),
    expertsChart(runs),
    timeCompareChart(runs),
  ].filter((c): c is Chart => c !== null);
}
