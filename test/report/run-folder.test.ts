import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMethod } from '../../src/methods/registry.ts';
import { runStream } from '../../src/run/runner.ts';
import { RUN_FILES, RunFolder, readMetricLog, readRunEvents, recomputeMetrics } from '../../src/report/run-folder.ts';
import { formatMatrixCsv, parseMatrixCsv, parseTableCsv } from '../../src/report/csv.ts';
import { formatResultsTable, formatValue, METRIC_COLUMNS } from '../../src/report/table.ts';
import { Rng } from '../../src/util/rng.ts';
import { makeDataset, makeStream } from '../run/fixtures.ts';

test('NCM end to end on a synthetic stream writes a complete, self-consistent run folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-runfolder-'));
  try {
    // 6 classes with distinct pixel patterns, 3 tasks of 2 classes, 20 train / 10 test per class
    const train = makeDataset('pat', 'train', 6, 20, { pattern: true, seed: 1 });
    const test = makeDataset('pat', 'test', 6, 10, { pattern: true, seed: 2, offset: 5000 });
    const stream = makeStream(train, test, [[0, 1], [2, 3], [4, 5]], { seed: 3 });
    const env = { stream: { classNames: stream.classNames, templatesFor: () => ['{}'], kind: stream.kind }, rng: new Rng(1) };
    const method = await createMethod('ncm', { size: 8, color: 'gray' }, env);
    const folder = RunFolder.create(join(dir, 'run'), { seed: 1, method: { name: 'ncm' } });
    const r = await runStream({ stream, method, memory: null, rng: 1, options: { batchSize: 8, evalPeriod: 30, evalBatchSize: 16 }, onEvent: (e) => folder.event(e) });
    folder.finish('ncm', r);
    const run = join(dir, 'run');
    for (const f of RUN_FILES) assert.ok(existsSync(join(run, f)), `${f} missing`);
    assert.ok(!existsSync(join(run, 'baseline.csv')));
    assert.deepEqual(readdirSync(run).filter((f) => f.startsWith('.')), [], 'no temp/partial files left');

    // separable patterns: NCM classifies everything it has seen correctly, no forgetting
    assert.deepEqual(r.log.matrix, [
      [1, null, null],
      [1, 1, null],
      [1, 1, 1],
    ]);
    assert.equal(r.metrics.A_last, 1);
    assert.equal(r.metrics.forgetting, 0);
    assert.equal(r.metrics.F_last, 0);
    // prequential: a sample whose class had no mean before its batch arrived is unanswerable (-1); every other
    // sample is classified correctly, so the online tallies are exactly "samples of classes seen in earlier batches"
    const seen = new Set<number>();
    let expectCorrect = 0;
    stream.tasks.forEach((t) => {
      for (let s = 0; s < t.train.length; s += 8) {
        const batch = t.train.slice(s, s + 8);
        expectCorrect += batch.filter((it) => seen.has(it.label)).length;
        batch.forEach((it) => seen.add(it.label));
      }
    });
    assert.equal(r.log.online.reduce((a, b) => a + b.correct, 0), expectCorrect);
    assert.equal(r.metrics.online, expectCorrect / 120);

    // files agree with the in-memory log, and metrics recompute from the CSVs alone
    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
    assert.deepEqual(recomputeMetrics(run), metrics);
    assert.deepEqual(metrics, JSON.parse(JSON.stringify(r.metrics)));
    assert.equal(readFileSync(join(run, 'acc_matrix.csv'), 'utf8'), '1,,\n1,1,\n1,1,1\n');
    const log = readMetricLog(run);
    assert.deepEqual(log.anytime, r.log.anytime);
    // reference cadence: samples seen must exceed 30, 60, 90, 120 (batches of 8): no point at the final 120
    assert.deepEqual(log.anytime.map((p) => p.samplesSeen), [32, 64, 96]);
    assert.deepEqual(log.classAcc, r.log.classAcc);
    assert.deepEqual(log.online, r.log.online);
    const events = readRunEvents(run);
    assert.equal(events[0]!.type, 'run_start');
    assert.equal(events[events.length - 1]!.type, 'run_end');
    assert.equal(events.filter((e) => e.type === 'batch').length, r.batches);
    const cfg = JSON.parse(readFileSync(join(run, 'config.resolved.json'), 'utf8'));
    assert.deepEqual(cfg, { seed: 1, method: { name: 'ncm' } });
    const cost = JSON.parse(readFileSync(join(run, 'cost.json'), 'utf8'));
    assert.equal(cost.method, 'ncm');
    assert.equal(cost.trainableParams, 0);
    assert.equal(cost.totalParams, 6 * 64);
    assert.equal(cost.samplesSeen, 120);
    assert.equal(cost.batches, 15);
    assert.ok(cost.peakRssBytes > 1e6);
    for (const k of ['train', 'eval', 'online_eval', 'data', 'total']) assert.ok(typeof cost.timingsMs[k] === 'number', k);
    assert.ok(Math.abs(cost.msPerSample - cost.timingsMs.total / 120) < 1e-9);
    const task = parseTableCsv(readFileSync(join(run, 'task_acc.csv'), 'utf8'), 'task_acc.csv');
    assert.deepEqual(task.header, ['task', 'samples_seen', 'accuracy']);
    assert.deepEqual(task.rows, [
      [0, 40, 1],
      [1, 80, 1],
      [2, 120, 1],
    ]);
    // an existing run is not overwritten by accident
    assert.throws(() => RunFolder.create(run, {}), /already holds a run/);
    RunFolder.create(run, {}, { overwrite: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('matrix CSV round trip and malformed-CSV errors naming file, line and column', () => {
  const A = [
    [0.5, null],
    [0.25, 0.75],
  ];
  assert.deepEqual(parseMatrixCsv(formatMatrixCsv(A), 'a.csv'), A);
  assert.deepEqual(parseMatrixCsv(' 1 , 2\r\n3,4\r\n\r\n', 'a.csv'), [
    [1, 2],
    [3, 4],
  ]);
  assert.throws(() => parseMatrixCsv('1,2\n3\n', 'm.csv'), /m\.csv: line 2 has 1 cells, expected 2/);
  assert.throws(() => parseMatrixCsv('1,2\n3,x\n', 'm.csv'), /m\.csv: line 2, column 2: 'x' is not a number/);
  assert.throws(() => parseMatrixCsv('1,2,3\n4,5,6\n', 'm.csv'), /m\.csv: line 1 has 3 cells, expected 2/);
  assert.throws(() => parseMatrixCsv('', 'm.csv'), /m\.csv: empty/);
  assert.throws(() => parseMatrixCsv('1\n\n2\n', 'm.csv'), /line 2 is blank/);
  assert.throws(() => parseMatrixCsv('0x10\n', 'm.csv'), /'0x10' is not a number/);
});

test('results table: percent, em dash for undefined, empty columns dropped', () => {
  const t = formatResultsTable(
    [
      { name: 'ncm', values: { A_auc: 0.5, A_last: 0.91234, F_last: null, bwt: -0.05 } },
      { name: 'zero-shot', values: { A_auc: 0.25, A_last: null, bwt: null } },
    ],
    METRIC_COLUMNS,
  );
  const lines = t.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.deepEqual(lines[0]!.split(/\s+/), ['method', 'A_auc', 'A_last', 'BWT']);
  assert.deepEqual(lines[2]!.split(/\s+/), ['ncm', '50.00', '91.23', '-5.00']);
  assert.deepEqual(lines[3]!.split(/\s+/), ['zero-shot', '25.00', '—', '—']);
  assert.equal(formatValue(12.34, 'sec'), '12.3');
  assert.equal(formatValue(0.001234, 'num'), '1.23e-3');
  assert.equal(formatValue(3, 'int'), '3');
});
