/**
 * Vega-Lite specs of the report charts. Every builder is pure: it takes plain rows (built from a run folder by
 * series.ts) and returns a spec whose inline data are exactly those rows, so tests can compare them with the
 * files. Accuracies stay fractions in [0, 1] and are shown as percentages by the axis format.
 */
import type { TopLevelSpec } from 'vega-lite';

/** A chart: a file-name-safe id, a title and its Vega-Lite spec. */
export interface Chart {
  id: string;
  title: string;
  spec: TopLevelSpec;
}

/** Colours given to runs in order (Tableau 10), repeated past ten runs. */
export const RUN_COLORS = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'] as const;

/** The colour of run `i`. */
export function runColor(i: number): string {
  return RUN_COLORS[i % RUN_COLORS.length]!;
}

/** Heatmap colours for 0 and 1, interpolated linearly in RGB (so a cell's fill is a known function of its value). */
export const HEATMAP_RANGE = ['#f7fbff', '#08306b'] as const;

/** Cell labels are drawn in heatmaps with at most this many rows and columns. */
const MAX_LABELLED_CELLS = 12;

const CONFIG = {
  background: 'white',
  font: 'sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 10, titleFontSize: 11 },
  legend: { labelFontSize: 10, titleFontSize: 11, labelLimit: 320, symbolOpacity: 1 },
  title: { fontSize: 13, subtitleFontSize: 11, anchor: 'start' as const },
};

const WIDTH = 440;
const HEIGHT = 220;

function title(text: string, subtitle?: string) {
  return subtitle === undefined || subtitle === '' ? { text } : { text, subtitle };
}

/** A cell of a heatmap: row and column index, the value coloured in [0, 1], and an optional label. */
export interface HeatCell {
  row: number;
  col: number;
  value: number;
  text?: string;
}

/**
 * A heatmap of `cells` over rows `rowDomain` × columns `colDomain` (missing cells are not drawn); the fill is the
 * value on a [0, 1] scale from {@link HEATMAP_RANGE}[0] to [1]. Axis labels: `tickLabel` maps an index to its
 * label (a Vega expression over `datum.value`).
 */
export function heatmapSpec(opts: {
  title: string;
  subtitle?: string;
  cells: HeatCell[];
  rowDomain: number[];
  colDomain: number[];
  rowTitle: string;
  colTitle: string;
  legendTitle: string;
  legendFormat: string;
  tickLabel?: string;
}): TopLevelSpec {
  const n = Math.max(opts.rowDomain.length, opts.colDomain.length);
  const step = n <= MAX_LABELLED_CELLS ? 30 : Math.max(8, Math.floor(360 / n));
  const labels = opts.tickLabel ? { labelExpr: opts.tickLabel } : {};
  const x = {
    field: 'col',
    type: 'ordinal' as const,
    title: opts.colTitle,
    scale: { domain: opts.colDomain },
    axis: { ...labels, orient: 'top' as const, labelAngle: opts.tickLabel ? -45 : 0, ...(opts.tickLabel ? { labelAlign: 'left' as const } : {}) },
  };
  const y = { field: 'row', type: 'ordinal' as const, title: opts.rowTitle, scale: { domain: opts.rowDomain }, axis: { ...labels, labelAngle: 0 } };
  const labelled = n <= MAX_LABELLED_CELLS && opts.cells.some((c) => c.text !== undefined);
  return {
    title: title(opts.title, opts.subtitle),
    config: CONFIG,
    data: { values: opts.cells },
    width: { step },
    height: { step },
    layer: [
      {
        mark: { type: 'rect' },
        encoding: {
          x,
          y,
          color: {
            field: 'value',
            type: 'quantitative',
            scale: { domain: [0, 1], range: [...HEATMAP_RANGE], interpolate: 'rgb' },
            legend: { title: opts.legendTitle, format: opts.legendFormat },
          },
        },
      },
      ...(labelled
        ? [
            {
              mark: { type: 'text' as const, fontSize: 9 },
              encoding: {
                x,
                y,
                text: { field: 'text', type: 'nominal' as const },
                color: { condition: { test: 'datum.value > 0.5', value: 'white' }, value: 'black' },
              },
            },
          ]
        : []),
    ],
  };
}

/**
 * A point of a line chart: `series` picks the colour; `point` draws a symbol; `line: false` keeps it off the
 * series' line (a point-only series); `order` keeps points at one x in order.
 */
export interface LinePoint {
  x: number;
  y: number;
  series: string;
  order: number;
  point: boolean;
  line?: boolean;
}

/**
 * Lines (one per series, coloured by `colors[k]` for `series[k]`), with symbols at the points flagged `point`
 * and dashed vertical rules at `rules` (e.g. task ends or merges).
 */
export function lineSpec(opts: {
  title: string;
  subtitle?: string;
  points: LinePoint[];
  series: string[];
  colors: string[];
  xTitle: string;
  yTitle: string;
  yFormat?: string;
  yDomain?: [number, number];
  yLog?: boolean;
  /** Include 0 in the y scale (counts); accuracies use `yDomain`, times `yLog`. */
  yZero?: boolean;
  step?: boolean;
  rules?: Array<{ x: number; kind: string }>;
}): TopLevelSpec {
  const x = { field: 'x', type: 'quantitative' as const, title: opts.xTitle, scale: { zero: true } };
  const y = {
    field: 'y',
    type: 'quantitative' as const,
    title: opts.yTitle,
    ...(opts.yFormat ? { axis: { format: opts.yFormat } } : {}),
    scale: { ...(opts.yDomain ? { domain: opts.yDomain } : {}), ...(opts.yLog ? { type: 'log' as const } : { zero: opts.yZero ?? false }) },
  };
  const color = { field: 'series', type: 'nominal' as const, scale: { domain: opts.series, range: opts.colors }, legend: { title: null } };
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [];
  if (opts.rules && opts.rules.length > 0) {
    layers.push({
      data: { values: opts.rules },
      mark: { type: 'rule', strokeDash: [4, 3], color: '#aaa' },
      encoding: { x: { field: 'x', type: 'quantitative' } },
    });
  }
  if (opts.points.some((p) => p.line !== false)) {
    layers.push({
      transform: [{ filter: 'datum.line !== false' }],
      mark: { type: 'line', interpolate: opts.step ? 'step-after' : 'linear', strokeWidth: 1.5 },
      encoding: { x, y, color, order: { field: 'order', type: 'quantitative' } },
    });
  }
  if (opts.points.some((p) => p.point)) {
    layers.push({
      transform: [{ filter: 'datum.point' }],
      mark: { type: 'point', filled: true, size: 28 },
      encoding: { x, y, color },
    });
  }
  return {
    title: title(opts.title, opts.subtitle),
    config: CONFIG,
    data: { values: opts.points },
    width: WIDTH,
    height: HEIGHT,
    layer: layers,
  };
}

/** A bar of a grouped bar chart: category `x` (sorted by `xDomain`), `series` (one bar per series in a group). */
export interface Bar {
  x: string;
  y: number;
  series: string;
}

/** Grouped bars: one group per category of `xDomain`, one bar per series inside it, coloured by series. */
export function barSpec(opts: {
  title: string;
  subtitle?: string;
  bars: Bar[];
  xDomain: string[];
  series: string[];
  colors: string[];
  xTitle: string;
  yTitle: string;
  yFormat?: string;
  yDomain?: [number, number];
}): TopLevelSpec {
  const groups = opts.xDomain.length;
  const per = opts.series.length;
  // px per bar shrinks with the number of bars; at least 240 px in all, at most 2000 (then bars get thinner)
  const barPx = groups * per > 200 ? 2 : groups * per > 60 ? 4 : 10;
  const step = Math.max(per * barPx + 2, Math.floor(240 / Math.max(groups, 1)));
  return {
    title: title(opts.title, opts.subtitle),
    config: CONFIG,
    data: { values: opts.bars },
    width: groups * step > 2000 ? 2000 : { step },
    height: HEIGHT,
    mark: { type: 'bar' },
    encoding: {
      x: {
        field: 'x',
        type: 'nominal',
        title: opts.xTitle,
        scale: { domain: opts.xDomain },
        axis: { labelAngle: groups > 20 ? -90 : 0, labelOverlap: true },
      },
      ...(per > 1 ? { xOffset: { field: 'series', type: 'nominal' as const, scale: { domain: opts.series } } } : {}),
      y: {
        field: 'y',
        type: 'quantitative',
        title: opts.yTitle,
        ...(opts.yFormat ? { axis: { format: opts.yFormat } } : {}),
        ...(opts.yDomain ? { scale: { domain: opts.yDomain } } : {}),
      },
      color: { field: 'series', type: 'nominal', scale: { domain: opts.series, range: opts.colors }, legend: per > 1 ? { title: null } : null },
    },
  };
}
