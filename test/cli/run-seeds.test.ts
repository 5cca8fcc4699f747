/**
 * `moeclip run` flags of issue G in process: `--seeds` and `seeds:` (per-seed folders, summary files, the
 * printed seed / mean / std rows), `--resume` of a multi-seed folder, `--resume` and `--checkpoint-every`
 * errors, the messages for a folder that already holds a run, and `moeclip metrics --run` on a partial folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { registerMethod } from '../../src/methods/registry.ts';
import { loadConfig } from '../../src/config/load.ts';
import { runExperiment, RunStoppedError } from '../../src/run/experiment.ts';
import { tempMnistRoot } from '../run/fixtures.ts';

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

const dir = tempMnistRoot('moeclip-run-seeds-', 6);
const base = ['stream:', '  kind: class-incremental', '  dataset: { name: mnist, root: data }', '  tasks: 5', 'method: { name: ncm, size: 10, color: gray }', 'run: { batchSize: 6, evalPeriod: 20 }'];
const cfg = join(dir, 'ncm.yaml');
writeFileSync(cfg, base.join('\n') + '\n');
const cfgSeeds = join(dir, 'ncm-seeds.yaml');
writeFileSync(cfgSeeds, [...base, 'seeds: [3, 4]', ''].join('\n'));

test('--seeds: one folder per seed, summary files, a row per seed plus mean and std', async () => {
  const out = join(dir, 'seeds');
  const io = captureIO();
  assert.equal(await main(['run', cfg, '--seeds', '1,2', '--out', out], io), 0, io.err);
  for (const s of [1, 2]) assert.ok(existsSync(join(out, `seed-${s}`, 'metrics.json')));
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.seeds, [1, 2]);
  const lines = io.out.split('\n');
  assert.deepEqual(lines.slice(2, 6).map((l) => l.split(/\s{2,}/)[0]), ['seed 1', 'seed 2', 'mean', 'std']);
  // the printed mean of A_last is the summary's, in percent
  assert.equal(lines[4]!.split(/\s{2,}/)[3], (100 * summary.metrics.A_last.mean).toFixed(2));
  assert.match(io.out, /summary: .*summary\.json, .*summary\.csv/);
  assert.match(io.err, /seed 1 \(1\/2\): running → .*seed-1/);

  // the same command again is refused; --resume keeps both seeds
  const again = captureIO();
  assert.equal(await main(['run', cfg, '--seeds', '1,2', '--out', out], again), 2);
  assert.match(again.err, /already holds a multi-seed run; continue it with `moeclip run --resume .*`, choose another output folder \(--out DIR\) or pass --overwrite/);
  const res = captureIO();
  assert.equal(await main(['run', '--resume', out], res), 0, res.err);
  assert.match(res.err, /seed 1 \(1\/2\): finished, kept/);
  assert.match(res.err, /seed 2 \(2\/2\): finished, kept/);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), summary);

  // seeds: in the config does the same; metrics --run on the multi-seed folder points at its parts
  const out2 = join(dir, 'seeds-config');
  const io2 = captureIO();
  assert.equal(await main(['run', cfgSeeds, '--out', out2], io2), 0, io2.err);
  assert.ok(existsSync(join(out2, 'seed-3', 'metrics.json')) && existsSync(join(out2, 'seed-4', 'metrics.json')));
  const m = captureIO();
  assert.equal(await main(['metrics', '--run', out2], m), 2);
  assert.match(m.err, /holds a multi-seed run \(seeds 3, 4\): read .*summary\.json or give one of its seed-<s> folders/);
});

test('flag errors: --seeds, --checkpoint-every, --threads, --resume', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', cfg, '--seeds', '1,,2'], /--seeds must be a comma-separated list of integers ≥ 0, got '1,,2'/],
    [['run', cfg, '--seeds', '1,1'], /--seeds lists a seed twice/],
    [['run', cfg, '--checkpoint-every', '0'], /--checkpoint-every must be a positive integer \(stream samples\), got '0'/],
    [['run', cfg, '--threads', 'two'], /--threads must be a positive integer, got 'two'/],
    [['run', cfg, '--resume', dir], /--resume continues a run folder: give no CONFIG/],
    [['run', '--resume', dir, '--set', 'seed=2'], /--resume takes its config from the run folder: drop --set/],
    [['run', '--resume', join(dir, 'nowhere')], /not a run folder/],
  ];
  for (const [args, re] of cases) {
    const io = captureIO();
    assert.equal(await main(args, io), 2, args.join(' '));
    assert.match(io.err, re);
  }
  const done = join(dir, 'done');
  assert.equal(await main(['run', cfg, '--out', done], captureIO()), 0);
  const io = captureIO();
  assert.equal(await main(['run', '--resume', done], io), 2);
  assert.match(io.err, /the run has finished \(metrics\.json exists\); nothing to resume/);
});

test('an interrupted run folder: metrics says so, a new run there is refused, --resume finishes it', async () => {
  const part = join(dir, 'part');
  await assert.rejects(runExperiment(await loadConfig(cfg), { outDir: part, shouldStop: () => true }), RunStoppedError);
  const m = captureIO();
  assert.equal(await main(['metrics', '--run', part], m), 2);
  assert.match(m.err, /the run is incomplete \(no metrics\.json\): it was interrupted after 6\/60 stream samples \(task 1\/5\); continue it with `moeclip run --resume /);
  assert.doesNotMatch(m.err, /ENOENT/);
  const fresh = captureIO();
  assert.equal(await main(['run', cfg, '--out', part], fresh), 2);
  assert.match(fresh.err, /holds an interrupted run; continue it with `moeclip run --resume .*part` or pass --overwrite to start again/);
  const res = captureIO();
  assert.equal(await main(['run', '--resume', part], res), 0, res.err);
  assert.match(res.err, /resuming after 6\/60 samples \(task 1\/5\)/);
  assert.match(res.out, /run folder: /);
});

test('--checkpoint-every with a method that keeps no state: a clear error', async () => {
  registerMethod('stateless-cli', {
    summary: 'keeps no state',
    schema: z.strictObject({}),
    create: async () => ({
      name: 'stateless-cli',
      observe: async () => {},
      predict: async (images) => new Int32Array(images.length).fill(-1),
      describeCost: () => ({ trainableParams: 0, totalParams: 0 }),
    }),
  });
  const io = captureIO();
  assert.equal(await main(['run', cfg, '--set', 'method={name: stateless-cli}', '--checkpoint-every', '10', '--out', join(dir, 'sl')], io), 1);
  assert.match(io.err, /method 'stateless-cli' cannot save its state \(no saveState\/loadState\), so it cannot be checkpointed: drop --checkpoint-every/);
});
