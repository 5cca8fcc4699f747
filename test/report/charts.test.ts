import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Chart, LinePoint } from '../../src/report/charts/specs.ts';
import { HEATMAP_RANGE, runColor } from '../../src/report/charts/specs.ts';
import {
  accMatrixChart,
  accuracyChart,
  classAccChart,
  compareCharts,
  expertsChart,
  labelRuns,
  paramsChart,
  routingChart,
  runCharts,
  timeChart,
} from '../../src/report/charts/charts.ts';
import { prefixSvgIds, renderSvg } from '../../src/report/charts/render.ts';
import { expandRunDirs, readRunData, RunFolderError, runLabels } from '../../src/report/charts/run-data.ts';
import { PLOT_FILES, writeRunPlots } from '../../src/report/plots.ts';
import { FIXTURE, writeFixtureRun } from './fixture.ts';
import { markItems, parseColor, rectOf } from './svg-marks.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'moeclip-charts-'));
const values = (c: Chart) => (c.spec as { data: { values: unknown[] } }).data.values;
const one = (dir: string) => labelRuns([readRunData(dir)], ['run']);

async function svgOf(c: Chart): Promise<string> {
  const warnings: string[] = [];
  const svg = await renderSvg(c.spec, c.id, warnings);
  assert.deepEqual(warnings, [], `${c.id}: no Vega warnings`);
  return svg;
}

/** The heatmap fill of value v: linear RGB between the two range colours, rounded per channel. */
function heatFill(v: number): [number, number, number] {
  const [a, b] = [parseColor(HEATMAP_RANGE[0]), parseColor(HEATMAP_RANGE[1])];
  return [0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * v)) as [number, number, number];
}

function assertFill(actual: string, v: number, what: string) {
  const got = parseColor(actual);
  const want = heatFill(v);
  for (let k = 0; k < 3; k++) assert.ok(Math.abs(got[k]! - want[k]!) <= 1, `${what}: fill ${actual}, expected rgb(${want.join(', ')}) for ${v}`);
}

test('readRunData reads every file of the fixture run folder as written', () => {
  const dir = tmp();
  try {
    const r = readRunData(writeFixtureRun(join(dir, 'run')));
    assert.deepEqual(r.matrix, FIXTURE.matrix);
    assert.deepEqual(r.anytime, FIXTURE.anytime);
    assert.deepEqual(r.taskAcc, FIXTURE.taskAcc);
    assert.deepEqual(
      r.classAcc.map((row) => Object.fromEntries(row.acc.map((c) => [c.label, c.accuracy]))),
      FIXTURE.classAcc.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [Number(k), v]))),
    );
    assert.deepEqual(
      r.online.map((o) => [o.batch, o.task, o.n, o.correct, o.samplesSeen]),
      FIXTURE.online,
    );
    assert.deepEqual(r.taskNames, ['task-0', 'task-1']);
    assert.deepEqual(r.phases, FIXTURE.phases);
    assert.deepEqual(r.expertsOverTime, FIXTURE.expertsOverTime.map(([s, e]) => ({ samplesSeen: s, experts: e })));
    assert.deepEqual(
      r.routing,
      [
        { expected: -1, routed: 0, count: 2 },
        { expected: 0, routed: 0, count: 3 },
        { expected: 0, routed: 1, count: 1 },
        { expected: 1, routed: 1, count: 4 },
      ],
    );
    assert.equal(r.method, 'cm-moe');
    assert.equal(r.name, 'fixture-bench');
    assert.equal(r.seed, 7);
    assert.deepEqual(r.batchMs, [], 'the fixture without batch times records none');
    assert.deepEqual(r.costSeries, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('accuracy-matrix heatmap: one rect per evaluated cell, placed at (j, t) and filled by its value', async () => {
  const dir = tmp();
  try {
    const [run] = one(writeFixtureRun(join(dir, 'run')));
    const c = accMatrixChart(run!.data)!;
    assert.deepEqual(values(c), [
      { row: 0, col: 0, value: 0.9, text: '90' },
      { row: 0, col: 1, value: 0.1, text: '10' },
      { row: 1, col: 0, value: 0.6, text: '60' },
      { row: 1, col: 1, value: 0.8, text: '80' },
    ]);
    const rects = markItems(await svgOf(c), 'rect');
    assert.equal(rects.length, 4);
    const boxes = rects.map((r) => rectOf(r.attrs['d']!));
    const step = boxes[0]!.w;
    for (const [k, cell] of FIXTURE.matrix.flat().entries()) {
      const [t, j] = [Math.floor(k / 2), k % 2];
      assert.equal(Math.round(boxes[k]!.x / step), j, `cell ${k}: column`);
      assert.equal(Math.round(boxes[k]!.y / step), t, `cell ${k}: row`);
      assertFill(rects[k]!.attrs['fill']!, cell, `A[${t}][${j}]`);
    }
    // darker for higher accuracy: order of the fills' brightness is the reverse order of the values
    const brightness = rects.map((r) => parseColor(r.attrs['fill']!).reduce((a, b) => a + b, 0));
    const byValue = [0, 1, 2, 3].sort((a, b) => FIXTURE.matrix.flat()[a]! - FIXTURE.matrix.flat()[b]!);
    for (let k = 1; k < 4; k++) assert.ok(brightness[byValue[k]!]! < brightness[byValue[k - 1]!]!);
    assert.deepEqual(markItems(await svgOf(c), 'text').map((t) => t.text), ['90', '10', '60', '80']);

    // a lower-triangular matrix (upper cells not evaluated): 3 rects, the empty cell is not drawn
    writeFileSync(join(dir, 'run', 'acc_matrix.csv'), '0.25,\n0.5,1\n');
    const c2 = accMatrixChart(readRunData(join(dir, 'run')))!;
    const rects2 = markItems(await svgOf(c2), 'rect');
    assert.equal(rects2.length, 3);
    [0.25, 0.5, 1].forEach((v, k) => assertFill(rects2[k]!.attrs['fill']!, v, `cell ${k}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('accuracy over the stream: anytime, end-of-task and cumulative online series equal the CSVs', async () => {
  const dir = tmp();
  try {
    const [run] = one(writeFixtureRun(join(dir, 'run')));
    const c = accuracyChart(run!.data)!;
    const pts = values(c) as LinePoint[];
    const series = (s: string) => pts.filter((p) => p.series === s).map((p) => [p.x, p.y]);
    assert.deepEqual(series('anytime'), FIXTURE.anytime.map((p) => [p.samplesSeen, p.accuracy]));
    assert.deepEqual(series('end of task'), FIXTURE.taskAcc.map((p) => [p.samplesSeen, p.accuracy]));
    // running Σcorrect/Σn over online.csv: 1/2, 3/4, 3/6, 4/8; the last equals metrics.json's online
    assert.deepEqual(series('online (cumulative)'), [
      [2, 1 / 2],
      [4, 3 / 4],
      [6, 3 / 6],
      [8, 4 / 8],
    ]);
    assert.equal(JSON.parse(readFileSync(join(dir, 'run', 'metrics.json'), 'utf8')).online, 4 / 8);
    const svg = await svgOf(c);
    assert.equal(markItems(svg, 'line').length, 3, 'one line per series');
    assert.equal(markItems(svg, 'symbol').length, 4, 'points at the anytime and end-of-task evaluations');
    assert.equal(markItems(svg, 'rule').length, 1, 'one task boundary (the end of the last task is the end)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('final per-class accuracy: the last class_acc row, bar heights proportional to the accuracies', async () => {
  const dir = tmp();
  try {
    const [run] = one(writeFixtureRun(join(dir, 'run')));
    const c = classAccChart([run!])!;
    const final = FIXTURE.classAcc[1]!;
    assert.deepEqual(values(c), Object.entries(final).map(([k, v]) => ({ x: k, y: v, series: 'run' })));
    const bars = markItems(await svgOf(c), 'rect').map((b) => rectOf(b.attrs['d']!));
    assert.equal(bars.length, 4);
    const full = 220; // the chart height, the length of the [0, 1] y axis
    Object.values(final).forEach((v, k) => assert.ok(Math.abs(bars[k]!.h - v * full) < 1e-6, `class ${k}: height ${bars[k]!.h}`));
    for (let k = 1; k < 4; k++) assert.ok(bars[k]!.x > bars[k - 1]!.x, 'classes in label order');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parameters: final counts as bars from cost.json, or lines over the stream from cost events', async () => {
  const dir = tmp();
  try {
    const [run] = one(writeFixtureRun(join(dir, 'a')));
    const bars = paramsChart([run!])!;
    assert.deepEqual(values(bars), [
      { x: 'trainable', y: FIXTURE.trainableParams, series: 'run' },
      { x: 'total', y: FIXTURE.totalParams, series: 'run' },
    ]);
    const rects = markItems(await svgOf(bars), 'rect').map((b) => rectOf(b.attrs['d']!));
    assert.equal(rects.length, 2);
    assert.ok(Math.abs(rects[1]!.h / rects[0]!.h - FIXTURE.totalParams / FIXTURE.trainableParams) < 1e-6);

    const [withEvents] = one(writeFixtureRun(join(dir, 'b'), { costEvents: true }));
    assert.deepEqual(withEvents!.data.costSeries, FIXTURE.costEvents);
    const lines = paramsChart([withEvents!])!;
    const pts = values(lines) as LinePoint[];
    assert.deepEqual(pts.filter((p) => p.series === 'trainable').map((p) => [p.x, p.y]), FIXTURE.costEvents.map((e) => [e.samplesSeen, e.trainableParams]));
    assert.deepEqual(pts.filter((p) => p.series === 'total').map((p) => [p.x, p.y]), FIXTURE.costEvents.map((e) => [e.samplesSeen, e.totalParams]));
    assert.equal(markItems(await svgOf(lines), 'line').length, 2);
    // cost events carry experts per block too, and take precedence over cost.json's expertsOverTime extras
    assert.deepEqual(withEvents!.data.expertsOverTime, FIXTURE.costEvents.map((e) => ({ samplesSeen: e.samplesSeen, experts: e.expertsPerBlock })));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('experts per block: the recorded steps in order, extended to the end of the run with the final count', async () => {
  const dir = tmp();
  try {
    const [run] = one(writeFixtureRun(join(dir, 'run')));
    const c = expertsChart([run!])!;
    const pts = values(c) as LinePoint[];
    // expertsOverTime:0:0=2, 1:4=4, 2:4=2 (a merge at 4 samples), then cost.json's expertsPerBlock=3 at samplesSeen=8
    assert.deepEqual(pts.map((p) => [p.x, p.y, p.order]), [
      [0, 2, 0],
      [4, 4, 1],
      [4, 2, 2],
      [8, 3, 3],
    ]);
    const svg = await svgOf(c);
    assert.equal(markItems(svg, 'line').length, 1);
    assert.equal(markItems(svg, 'symbol').length, 3, 'a symbol per recorded point');
    assert.equal(markItems(svg, 'rule').length, 1, 'the merge');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('time: phase durations in seconds at their stream positions, batch seconds as a line when recorded', async () => {
  const dir = tmp();
  try {
    const [plain] = one(writeFixtureRun(join(dir, 'a')));
    const c = timeChart(plain!.data)!;
    assert.deepEqual(
      (values(c) as LinePoint[]).map((p) => [p.series, p.x, p.y]),
      FIXTURE.phases.map((p) => [p.name, p.samplesSeen, p.ms / 1000]),
    );
    let svg = await svgOf(c);
    assert.equal(markItems(svg, 'line').length, 0, 'phases alone: points, no line');
    assert.equal(markItems(svg, 'symbol').length, 3);
    assert.equal(markItems(svg, 'rule').length, 1, 'one merge');

    const [timed] = one(writeFixtureRun(join(dir, 'b'), { batchMs: true }));
    const c2 = timeChart(timed!.data)!;
    const batch = (values(c2) as LinePoint[]).filter((p) => p.series === 'batch');
    assert.deepEqual(batch.map((p) => [p.x, p.y]), FIXTURE.batchMs.map((ms, b) => [FIXTURE.online[b]![4], ms / 1000]));
    svg = await svgOf(c2);
    assert.equal(markItems(svg, 'line').length, 1, 'one line: seconds per batch');
    assert.equal(markItems(svg, 'symbol').length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DDAS routing confusion: counts from cost.json, fill = row fraction, zero-shot row and column', async () => {
  const dir = tmp();
  try {
    const [run] = one(writeFixtureRun(join(dir, 'run')));
    const c = routingChart(run!.data)!;
    assert.deepEqual(values(c), [
      { row: -1, col: 0, value: 1, text: '2' },
      { row: 0, col: 0, value: 3 / 4, text: '3' },
      { row: 0, col: 1, value: 1 / 4, text: '1' },
      { row: 1, col: 1, value: 1, text: '4' },
    ]);
    const svg = await svgOf(c);
    const rects = markItems(svg, 'rect');
    assert.equal(rects.length, 4);
    [1, 3 / 4, 1 / 4, 1].forEach((v, k) => assertFill(rects[k]!.attrs['fill']!, v, `routing cell ${k}`));
    assert.deepEqual(markItems(svg, 'text').map((t) => t.text), ['2', '3', '1', '4']);
    assert.match(svg, />zero-shot</, 'the −1 id is labelled zero-shot');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('charts whose data a run lacks are skipped, not drawn empty', () => {
  const dir = tmp();
  try {
    const bare = join(dir, 'bare');
    mkdirSync(bare);
    writeFileSync(join(bare, 'metrics.json'), JSON.stringify({ A_last: 0.5 }));
    const [run] = one(bare);
    assert.deepEqual(runCharts(run!), []);
    assert.deepEqual(compareCharts([run!]), []);

    // a run without DDAS, merges, anytime evaluation or growth (e.g. NCM): no routing, experts or anytime series
    const ncm = writeFixtureRun(join(dir, 'ncm'), { method: 'ncm' });
    writeFileSync(join(ncm, 'anytime.csv'), 'samples_seen,accuracy\n');
    writeFileSync(join(ncm, 'cost.json'), JSON.stringify({ method: 'ncm', trainableParams: 0, totalParams: 10, extra: {}, samplesSeen: 8, timingsMs: {} }));
    const [n] = one(ncm);
    assert.deepEqual(runCharts(n!).map((c) => c.id), ['acc-matrix', 'accuracy', 'class-acc', 'params', 'time']);
    assert.deepEqual((values(accuracyChart(n!.data)!) as LinePoint[]).filter((p) => p.series === 'anytime'), []);
    assert.deepEqual(compareCharts([n!]).map((c) => c.id), ['task-acc', 'online', 'class-acc', 'params', 'time']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeRunPlots writes plots/*.svg atomically, returns their paths and removes plots whose data went', async () => {
  const dir = tmp();
  try {
    const run = writeFixtureRun(join(dir, 'run'), { batchMs: true });
    const paths = await writeRunPlots(run);
    assert.deepEqual(paths, [...PLOT_FILES].map((f) => join(run, 'plots', f)));
    for (const p of paths) assert.match(readFileSync(p, 'utf8'), /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>$/);
    assert.deepEqual(readdirSync(join(run, 'plots')).sort(), [...PLOT_FILES].sort(), 'no temp files left');
    assert.equal(markItems(readFileSync(join(run, 'plots', 'acc-matrix.svg'), 'utf8'), 'rect').length, 4);

    // without cost.json there are no parameter, expert or routing plots: the old files go
    rmSync(join(run, 'cost.json'));
    const again = await writeRunPlots(run);
    assert.deepEqual(again.map((p) => p.slice(join(run, 'plots').length + 1)), ['acc-matrix.svg', 'accuracy.svg', 'class-acc.svg', 'time.svg']);
    assert.deepEqual(readdirSync(join(run, 'plots')).sort(), ['acc-matrix.svg', 'accuracy.svg', 'class-acc.svg', 'time.svg']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('not a run folder, an incomplete run and a malformed file are named in the error', async () => {
  const dir = tmp();
  try {
    assert.throws(() => readRunData(join(dir, 'nope')), (e: Error) => e instanceof RunFolderError && e.message === `${join(dir, 'nope')}: no such folder`);
    mkdirSync(join(dir, 'empty'));
    assert.throws(() => readRunData(join(dir, 'empty')), { message: `${join(dir, 'empty')}: not a run folder (no metrics.json or config.resolved.json)` });
    await assert.rejects(writeRunPlots(join(dir, 'empty')), /not a run folder/);

    // an interrupted run: config and the hidden partial event log, no metrics.json
    const part = join(dir, 'part');
    mkdirSync(part);
    writeFileSync(join(part, 'config.resolved.json'), '{}');
    writeFileSync(join(part, '.events.jsonl.part'), '');
    assert.throws(() => readRunData(part), { message: `${part}: the run is incomplete (no metrics.json: it was interrupted or is still running)` });
    mkdirSync(join(part, 'checkpoint'));
    assert.throws(() => readRunData(part), { message: new RegExp(`resume it with \`moeclip run --resume ${part}\``) });

    const bad = writeFixtureRun(join(dir, 'bad'));
    writeFileSync(join(bad, 'anytime.csv'), 'samples_seen,accuracy\n4,x\n');
    assert.throws(() => readRunData(bad), { message: `${join(bad, 'anytime.csv')}: line 2, column 'accuracy': 'x' is not a number` });
    writeFileSync(join(bad, 'anytime.csv'), 'samples,acc\n');
    assert.throws(() => readRunData(bad), { message: `${join(bad, 'anytime.csv')}: no 'samples_seen' column (header: samples,acc)` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a multi-seed folder stands for its seed-<s> runs in seed order; labels are the shortest distinct suffixes', () => {
  const dir = tmp();
  try {
    for (const s of [10, 2]) writeFixtureRun(join(dir, 'multi', `seed-${s}`), { seed: s });
    mkdirSync(join(dir, 'multi', 'seed-3')); // not a run folder: ignored
    const single = writeFixtureRun(join(dir, 'single'));
    const dirs = expandRunDirs([join(dir, 'multi'), single]);
    assert.deepEqual(dirs, [join(dir, 'multi', 'seed-2'), join(dir, 'multi', 'seed-10'), single]);
    assert.deepEqual(runLabels(dirs), ['seed-2', 'seed-10', 'single']);
    assert.deepEqual(runLabels([join(dir, 'a', 'seed-1'), join(dir, 'b', 'seed-1')]), ['a/seed-1', 'b/seed-1']);
    assert.deepEqual(runLabels([single, single]), ['single #1', 'single #2']);
    assert.throws(() => expandRunDirs([join(dir, 'multi', 'seed-3')]), /seed-3: not a run folder \(no metrics.json or config.resolved.json, and no seed-<s> run folders\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('prefixSvgIds renames every id and its references, and nothing else', () => {
  const svg = '<svg><defs><linearGradient id="gradient_0"/><clipPath id="clip1"/></defs><path fill="url(#gradient_0)" clip-path="url(#clip1)"/><use href="#clip1"/><use xlink:href="#gradient_0"/><a href="#other"/></svg>';
  assert.equal(
    prefixSvgIds(svg, 'c7'),
    '<svg><defs><linearGradient id="c7-gradient_0"/><clipPath id="c7-clip1"/></defs><path fill="url(#c7-gradient_0)" clip-path="url(#c7-clip1)"/><use href="#c7-clip1"/><use xlink:href="#c7-gradient_0"/><a href="#other"/></svg>',
  );
  assert.equal(prefixSvgIds('<svg><path/></svg>', 'x'), '<svg><path/></svg>');
});

test('comparison charts give each run its colour, the same in every chart', async () => {
  const dir = tmp();
  try {
    const a = writeFixtureRun(join(dir, 'a'));
    const b = writeFixtureRun(join(dir, 'b'), { method: 'moe-adapters' });
    const runs = labelRuns([readRunData(a), readRunData(b)], ['a', 'b']);
    const charts = compareCharts(runs);
    assert.deepEqual(charts.map((c) => c.id), ['anytime', 'task-acc', 'online', 'class-acc', 'params', 'experts', 'time']);
    const anytime = await svgOf(charts[0]!);
    assert.deepEqual(markItems(anytime, 'line').map((l) => l.attrs['stroke']), [runColor(0), runColor(1)]);
    const bars = await svgOf(charts.find((c) => c.id === 'class-acc')!);
    const fills = markItems(bars, 'rect').map((r) => r.attrs['fill']);
    assert.equal(fills.length, 8);
    assert.deepEqual([...new Set(fills)], [runColor(0), runColor(1)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('expertsChart and routingChart read nothing from runs that do not record them', () => {
  const dir = tmp();
  try {
    const ncm = writeFixtureRun(join(dir, 'ncm'), { omit: ['cost.json'] });
    assert.ok(!existsSync(join(ncm, 'cost.json')));
    const [r] = one(ncm);
    assert.equal(expertsChart([r!]), null);
    assert.equal(routingChart(r!.data), null);
    assert.equal(paramsChart([r!]), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
