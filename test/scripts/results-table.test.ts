import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cnnTables } from '../../scripts/results-table.ts';

function writeRun(dir: string, online: number, aLast: number, totalMs: number, extra: Record<string, number>, csv: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'metrics.json'), JSON.stringify({ online, A_last: aLast, last: 0.5 }));
  writeFileSync(join(dir, 'cost.json'), JSON.stringify({ timingsMs: { total: totalMs, train: totalMs / 2 }, extra }));
  writeFileSync(join(dir, 'online.csv'), csv);
}

test('cnnTables: a row with seed folders shows mean ± sample std over them, and the per-set table of the first seed', () => {
  const root = mkdtempSync(join(tmpdir(), 'moeclip-cnn-table-'));
  try {
    const row = join(root, 'omtp', 'cnn-subnets');
    // seeds out of lexical order (seed-10 after seed-2) to check the numeric order of "first seed"
    writeRun(join(row, 'seed-2'), 0.2, 0.1, 100_000, { merges: 1, mergeMs: 4000, freeCapacity: 0.3, 'setTask:0': 0, 'setSeconds:0': 7 }, 'batch,task,n,correct\n0,0,10,4\n1,0,10,6\n');
    writeRun(join(row, 'seed-10'), 0.4, 0.3, 300_000, { merges: 3, mergeMs: 8000, freeCapacity: 0.1, 'setTask:0': 5 }, 'batch,task,n,correct\n0,0,10,1\n');
    // one older single run (files in the row's folder) still reads as one seed
    writeRun(join(root, 'omtp', 'cnn-prune'), 0.25, 0.15, 50_000, {}, 'batch,task,n,correct\n0,0,4,1\n');
    const md = cnnTables(root);
    // online (0.2, 0.4): mean 30.00, sample std 14.14; A_last (0.1, 0.3) the same; Last equal: std 0; total s 200 ± 141; merges 2.0 ± 1.4 (6 ± 3 s)
    assert.match(md, /\| cnn-subnets \| 30\.00 ± 14\.14 \| 20\.00 ± 14\.14 \| 50\.00 ± 0\.00 \| 200 ± 141 \| 100 ± 71 \| 2\.0 ± 1\.4 \(6 ± 3\) \| — \| 20\.00 ± 14\.14 \| 2 \|/);
    assert.match(md, /\| cnn-prune \| 25\.00 \| 15\.00 \| 50\.00 \| 50 \| 25 \| 0\.0 \(0\) \| — \| — \| 1 \|/);
    // per set from seed-2: 10 of 20 correct, task 0, 7 s, 30 %
    assert.match(md, /\| cnn-subnets \| 50\.0 \[0\] \/ 7 s \|/);
    assert.ok(md.indexOf('| cnn-subnets |') < md.indexOf('| cnn-prune |'), 'the method order of the CNN track');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
