/**
 * Multi-seed runs: a seed sets the run seed and the stream seed (two seeds give different streams, one seed the
 * same stream twice); mean / sample std / n against hand-computed values; the summary of three NCM runs against
 * their own metrics.json files; resuming keeps finished seed folders and reruns an unfinished one identically.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { buildStream } from '../../src/data/streams.ts';
import { streamFingerprint } from '../../src/run/checkpoint.ts';
import { resumeSeeds, runSeeds, seedStat, withSeed, type SeedStart } from '../../src/run/seeds.ts';
import { tempMnistRoot } from './fixtures.ts';

const root = tempMnistRoot('moeclip-seeds-', 6);

const cfgFile = join(root, 'ncm.yaml');
writeFileSync(
  cfgFile,
  [
    'stream:',
    '  kind: class-incremental',
    '  dataset: { name: mnist, root: data }',
    '  tasks: 5',
    '  trainTransform: [{ randomCrop: { padding: 2 } }]',
    'method: { name: ncm, size: 10, color: gray }',
    'run: { batchSize: 6, evalPeriod: 20 }',
    'seeds: [1, 2, 3]',
    '',
  ].join('\n'),
);

test('seedStat: mean, sample std (n − 1) and n, nulls skipped', () => {
  const s = seedStat([1, null, 2, 4]);
  assert.equal(s.n, 3);
  assert.ok(Math.abs(s.mean! - 7 / 3) < 1e-15);
  // Σ (x − 7/3)² = 16/9 + 1/9 + 25/9 = 42/9; / (n − 1) = 7/3
  assert.ok(Math.abs(s.std! - Math.sqrt(7 / 3)) < 1e-15);
  assert.deepEqual(s.values, [1, null, 2, 4]);
  assert.deepEqual(seedStat([0.5]), { mean: 0.5, std: null, n: 1, values: [0.5] });
  assert.deepEqual(seedStat([null]), { mean: null, std: null, n: 0, values: [null] });
  // 0.772 · 3 / 3 is not 0.772 in floating point: equal values keep their value and std 0
  assert.deepEqual(seedStat([0.772, 0.772, 0.772]), { mean: 0.772, std: 0, n: 3, values: [0.772, 0.772, 0.772] });
});

test('a seed sets the stream order: two seeds differ, the same seed repeats', async () => {
  const loaded = await loadConfig(cfgFile);
  const s1 = withSeed(loaded, 1);
  assert.equal(s1.config.seed, 1);
  assert.equal((s1.config.stream as { seed: number }).seed, 1);
  assert.equal(s1.config.seeds, undefined);
  assert.deepEqual(loaded.config.seeds, [1, 2, 3], 'the loaded config is not changed');
  const a = await buildStream(s1.config.stream);
  const b = await buildStream(withSeed(loaded, 2).config.stream);
  const a2 = await buildStream(withSeed(loaded, 1).config.stream);
  assert.equal(streamFingerprint(a2), streamFingerprint(a));
  assert.deepEqual(a2.tasks.map((t) => t.train.map((i) => i.index)), a.tasks.map((t) => t.train.map((i) => i.index)));
  assert.notEqual(streamFingerprint(b), streamFingerprint(a));
  // labels are relabelled in task order: the class names per task show the drawn class order
  const names = (st: typeof a) => st.tasks.map((t) => t.classes.map((c) => st.classNames[c]));
  assert.notDeepEqual(names(b), names(a), 'class order differs');
  assert.deepEqual(names(a2), names(a));
});

test('three seeds: per-seed folders, summary mean ± std of their metrics; resuming keeps or reruns seed folders', async () => {
  const loaded = await loadConfig(cfgFile);
  const out = join(root, 'out');
  const starts: SeedStart[] = [];
  const summary = await runSeeds(loaded, out, loaded.config.seeds!, { onSeed: (s) => starts.push(s) });
  assert.deepEqual(starts.map((s) => [s.seed, s.action]), [[1, 'run'], [2, 'run'], [3, 'run']]);
  const per = [1, 2, 3].map((s) => JSON.parse(readFileSync(join(out, `seed-${s}`, 'metrics.json'), 'utf8')) as Record<string, number | null>);
  const resolved = [1, 2, 3].map((s) => JSON.parse(readFileSync(join(out, `seed-${s}`, 'config.resolved.json'), 'utf8')));
  assert.deepEqual(resolved.map((r) => [r.seed, r.stream.seed]), [[1, 1], [2, 2], [3, 3]]);
  for (const k of Object.keys(per[0]!)) {
    const vals = per.map((m) => m[k] ?? null);
    assert.deepEqual(summary.metrics[k], seedStat(vals), k);
  }
  const A = per.map((m) => m['A_last']!);
  const mean = (A[0]! + A[1]! + A[2]!) / 3;
  assert.ok(Math.abs(summary.metrics['A_last']!.mean! - mean) < 1e-12);
  assert.ok(Math.abs(summary.metrics['A_last']!.std! - Math.sqrt(A.reduce((s, x) => s + (x - mean) ** 2, 0) / 2)) < 1e-12);
  assert.equal(summary.cost['trainableParams']!.mean, 0);
  assert.equal(summary.cost['samplesSeen']!.mean, 60);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), JSON.parse(JSON.stringify(summary)));
  const csv = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'group,metric,mean,std,n,seed-1,seed-2,seed-3');
  const row = csv.find((l) => l.startsWith('metrics,A_last,'))!.split(',');
  assert.deepEqual(row.slice(4).map(Number), [3, ...A]);

  // a used folder is refused; resuming keeps every finished seed
  await assert.rejects(runSeeds(loaded, out, [1, 2, 3]), /already holds a multi-seed run \(seed folders seed-1, seed-2, seed-3\)/);
  const again: SeedStart[] = [];
  const same = await resumeSeeds(out, { onSeed: (s) => again.push(s) });
  assert.deepEqual(again.map((s) => s.action), ['skip', 'skip', 'skip']);
  assert.deepEqual(same, summary);
  // a seed folder left unfinished (no metrics.json, no checkpoint) is run again, with the same result
  const before = readFileSync(join(out, 'seed-2', 'metrics.json'), 'utf8');
  rmSync(join(out, 'seed-2', 'metrics.json'));
  const third: SeedStart[] = [];
  await resumeSeeds(out, { onSeed: (s) => third.push(s) });
  assert.deepEqual(third.map((s) => s.action), ['skip', 'run', 'skip']);
  assert.equal(readFileSync(join(out, 'seed-2', 'metrics.json'), 'utf8'), before);
});
