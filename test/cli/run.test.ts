import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { RUN_FILES, recomputeMetrics } from '../../src/report/run-folder.ts';
import { parseMatrixCsv } from '../../src/report/csv.ts';
import { writeMnistIdx } from '../run/fixtures.ts';

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

test('moeclip run on a tiny config writes a complete run folder and prints the table', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-run-'));
  try {
    mkdirSync(join(dir, 'data'));
    writeMnistIdx(join(dir, 'data'), 'train', 12, 10, 1);
    writeMnistIdx(join(dir, 'data'), 'test', 4, 10, 2);
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(
      cfg,
      [
        'name: tiny',
        'seed: 3',
        'stream:',
        '  kind: class-incremental',
        '  dataset: { name: mnist, root: data }',
        '  classOrder: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]',
        '  tasks: 5',
        'method: { name: ncm, size: 10, color: gray }',
        'run:',
        '  batchSize: 6',
        '  evalPeriod: 30',
        '  evalBatchSize: 7',
        '  memory: { capacity: 20, batchSize: 4 }',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const io = captureIO();
    assert.equal(await main(['run', cfg, '--out', out], io), 0, io.err);
    for (const f of RUN_FILES) assert.ok(existsSync(join(out, f)), `${f} missing`);
    assert.ok(io.out.endsWith(`run folder: ${out}\n`), io.out);
    const [header, rule, row] = io.out.split('\n');
    assert.deepEqual(header!.split(/\s{2,}/), ['method', 'A_auc', 'A_avg', 'A_last', 'F_last', 'online', 'last', 'BWT', 'forget', 'time [s]', 'ms/sample']);
    assert.match(rule!, /^-+( +-+)+$/);
    assert.match(row!, /^ncm\s/);
    // progress went to stderr as plain lines (not a TTY)
    assert.match(io.err, /stream: class-incremental, 5 tasks, 120 training samples, 10 classes/);
    assert.match(io.err, /end of task 5\/5: accuracy on exposed classes/);

    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    assert.deepEqual(recomputeMetrics(out), metrics);
    // the bars are separable: NCM gets every learned class right at every task end
    const A = parseMatrixCsv(readFileSync(join(out, 'acc_matrix.csv'), 'utf8'), 'acc_matrix.csv');
    assert.equal(A.length, 5);
    A.forEach((r, t) => r.forEach((v, j) => assert.equal(v, j <= t ? 1 : null, `A[${t}][${j}]`)));
    assert.equal(metrics.A_last, 1);
    // the printed row shows A_last = 100.00
    assert.equal(row!.split(/\s{2,}/)[3], '100.00');
    const resolved = JSON.parse(readFileSync(join(out, 'config.resolved.json'), 'utf8'));
    assert.equal(resolved.stream.dataset.root, join(dir, 'data'));
    assert.equal(resolved.method.normalize, true); // defaults are written out
    assert.equal(resolved.run.evalCandidates, 'exposed');
    const events = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const batches = events.filter((e) => e.type === 'batch');
    assert.equal(batches.length, 20); // 24 samples per task / 6
    assert.deepEqual(batches[1].replay, [4]); // memory of 6 after the first batch, 4 drawn per step

    // metrics --run recomputes the same numbers from the folder
    const m = captureIO();
    assert.equal(await main(['metrics', '--run', out, '--json'], m), 0, m.err);
    assert.deepEqual(JSON.parse(m.out), metrics);

    // a second run into the same folder is refused; --set with evalFutureTasks fills the matrix and the baseline
    const again = captureIO();
    assert.equal(await main(['run', cfg, '--out', out], again), 2);
    assert.match(again.err, /already holds a run; choose another output folder \(--out DIR\) or pass --overwrite to replace it/);
    const out2 = join(dir, 'out2');
    const io2 = captureIO();
    assert.equal(await main(['run', cfg, '--out', out2, '--set', 'run.evalFutureTasks=true'], io2), 0, io2.err);
    assert.ok(existsSync(join(out2, 'baseline.csv')));
    const m2 = JSON.parse(readFileSync(join(out2, 'metrics.json'), 'utf8'));
    assert.ok(typeof m2.transfer === 'number' && typeof m2.fwt === 'number' && typeof m2.average === 'number');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moeclip run: usage and config errors exit 2 with the field named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-run-err-'));
  try {
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'stream: { kind: class-incremental, dataset: mnist, tasks: 2 }\nmethod: { name: ncm }\n');
    const a = captureIO();
    assert.equal(await main(['run'], a), 2);
    assert.match(a.err, /expected exactly one CONFIG file/);
    const b = captureIO();
    assert.equal(await main(['run', cfg, '--set', 'run.batchSize=0', '--out', join(dir, 'o')], b), 2);
    assert.match(b.err, /run\.batchSize: expected a positive integer/);
    const c = captureIO();
    assert.equal(await main(['run', cfg, '--set', 'method.name=magic'], c), 2);
    assert.match(c.err, /unknown method 'magic'; known methods: .*ncm/);
    const d = captureIO();
    assert.equal(await main(['run', cfg, '--bogus'], d), 2);
    assert.match(d.err, /Unknown option '--bogus'/);
    assert.ok(!existsSync(join(dir, 'o')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
