/**
 * `moeclip pretrain` end to end on a generated ImageFolder dataset: stop with --max-steps, continue with
 * --resume, load the written model; usage and config errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { loadClip } from '../../src/clip/load.ts';
import { clipConfigOf } from '../../src/pretrain/config.ts';
import { randomClipWeights, writeRandomClip } from '../../src/clip/random.ts';
import { writePng } from '../data/fixtures.ts';
import { BPE_PATH, shapesDataset, tempDir, tinyConfig } from '../pretrain/fixtures.ts';

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

/** <root>/<split>/<class folder>/<i>.png from the shapes dataset. */
function writeShapesFolder(root: string, split: string, perClass: number, seed: number): void {
  const ds = shapesDataset(perClass, 16, seed, split);
  for (let i = 0; i < ds.length; i++) {
    const folder = ds.classNames[ds.labels[i]!]!.replace(/ /g, '_');
    writePng(join(root, split, folder, `${String(i).padStart(3, '0')}.png`), ds.image(i).pixels, 16, 16);
  }
}

const CONFIG = (extra: string[] = []) =>
  [
    'name: cli-tiny',
    'seed: 5',
    'model:',
    '  vision: { imageSize: 16, patchSize: 8, width: 16, layers: 1, heads: 2 }',
    '  text: { contextLength: 12, width: 16, layers: 1, heads: 2 }',
    '  embedDim: 8',
    'data: { dataset: imagefolder, root: data, split: train, classes: even }',
    "captions: { templates: ['a photo of a {}.', 'a drawing of the {}.'] }",
    'augment: { crop: { kind: pad, padding: 2 }, flip: 0.5, grayscale: 0.1 }',
    'optim: { batchSize: 6, steps: 6, lr: 0.003, warmupSteps: 2, clipNorm: 1.0 }',
    'checkpointEvery: 2',
    'eval: { every: 0, split: test }',
    'threads: 1',
    'float: F32',
    'out: model',
    'checkpointDir: ck',
    `tokenizer: ${JSON.stringify(BPE_PATH)}`,
    ...extra,
    '',
  ].join('\n');

test('moeclip pretrain: --max-steps stops with a checkpoint, --resume finishes and writes a loadable model', async () => {
  const { dir, cleanup } = tempDir('cli-pretrain');
  try {
    writeShapesFolder(join(dir, 'data'), 'train', 6, 1);
    writeShapesFolder(join(dir, 'data'), 'test', 3, 2);
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(cfg, CONFIG());
    const io = captureIO();
    assert.equal(await main(['pretrain', cfg, '--max-steps', '3'], io), 0, io.err);
    const first = JSON.parse(io.out);
    assert.equal(first.step, 3);
    assert.equal(first.steps, 6);
    assert.equal(first.finished, false);
    assert.equal(first.out, null);
    assert.equal(first.checkpoint, join(dir, 'ck', 'checkpoint.json'));
    assert.match(io.err, /pretraining: 12 images of 2 classes, batch 6, 6 steps \(stopping at 3\)/);
    assert.match(io.err, /step 3\/6: loss/);
    assert.match(io.err, /continue with --resume/);
    assert.ok(!existsSync(join(dir, 'model')));

    const io2 = captureIO();
    assert.equal(await main(['pretrain', cfg, '--resume'], io2), 0, io2.err);
    const done = JSON.parse(io2.out);
    assert.equal(done.step, 6);
    assert.equal(done.finished, true);
    assert.equal(done.out, join(dir, 'model'));
    assert.match(io2.err, /resuming at step 3/);
    // the final evaluation: the even classes (blue stripe, red circle) are seen, the odd ones held out
    assert.equal(done.eval.step, 6);
    assert.equal(done.eval.seen.classes, 2);
    assert.equal(done.eval.seen.n, 6);
    assert.equal(done.eval.unseen.n, 6);
    const m = loadClip(join(dir, 'model'));
    assert.equal(m.config.vision.imageSize, 16);
    assert.equal(m.config.text.vocabSize, 49408);
    assert.equal(m.tokenizer.vocabSize, 49408);

    // --out overrides the config
    const io3 = captureIO();
    assert.equal(await main(['pretrain', cfg, '--set', 'optim.steps=2', '--set', 'checkpointDir=' + join(dir, 'ck2'), '--out', join(dir, 'other')], io3), 0, io3.err);
    assert.ok(existsSync(join(dir, 'other', 'model.safetensors')));
  } finally {
    cleanup();
  }
});

test('moeclip pretrain: bad arguments and config errors name the problem (exit code 2)', async () => {
  const { dir, cleanup } = tempDir('cli-pretrain-err');
  try {
    const cfg = join(dir, 'tiny.yaml');
    writeFileSync(cfg, CONFIG());
    let io = captureIO();
    assert.equal(await main(['pretrain'], io), 2);
    assert.match(io.err, /expected exactly one CONFIG file/);
    io = captureIO();
    assert.equal(await main(['pretrain', cfg, '--max-steps', '0'], io), 2);
    assert.match(io.err, /--max-steps must be a positive integer/);
    io = captureIO();
    assert.equal(await main(['pretrain', cfg, '--set', 'optim.lr=-1'], io), 2);
    assert.match(io.err, /tiny\.yaml: invalid pretraining config:\noptim\.lr: expected a number ≥ 0/);
    io = captureIO();
    writeFileSync(cfg, CONFIG(['bogus: 1']));
    assert.equal(await main(['pretrain', cfg], io), 2);
    assert.match(io.err, /bogus/);
    io = captureIO();
    assert.equal(await main(['pretrain', '--help'], io), 0);
    assert.match(io.out, /usage: moeclip pretrain CONFIG/);
  } finally {
    cleanup();
  }
});

test('moeclip pretrain --init: starts from a model folder (architecture and tokenizer from it); mismatches and another init on --resume are refused', async () => {
  const { dir, cleanup } = tempDir('cli-pretrain-init');
  try {
    writeShapesFolder(join(dir, 'data'), 'train', 6, 1);
    // the CONFIG architecture (16 px, one layer per tower, embedDim 8) is tinyConfig's
    const arch = clipConfigOf(tinyConfig());
    for (const [name, seed] of [['init', 1], ['other', 2]] as const) {
      writeRandomClip(join(dir, name), arch, { layout: 'hf', seed, bpePath: BPE_PATH, weights: randomClipWeights(arch, seed, { perturbStd: 0.05 }) });
    }
    // no model block and no tokenizer: both come from the init folder
    const lines = CONFIG().split('\n');
    const m = lines.indexOf('model:');
    lines.splice(m, 4);
    const cfg = join(dir, 'init.yaml');
    writeFileSync(cfg, lines.filter((l) => !l.startsWith('tokenizer:')).map((l) => (l.startsWith('eval:') ? 'eval: { enabled: false }' : l)).join('\n'));
    const io = captureIO();
    assert.equal(await main(['pretrain', cfg, '--init', join(dir, 'init'), '--max-steps', '2'], io), 0, io.err);
    assert.match(io.err, new RegExp(`caption tokens, initialised from ${join(dir, 'init').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\n`));
    assert.equal(JSON.parse(io.out).step, 2);
    // --resume with another init folder is refused; with the same one it finishes
    const io2 = captureIO();
    assert.equal(await main(['pretrain', cfg, '--init', join(dir, 'other'), '--resume'], io2), 1);
    assert.match(io2.err, /field 'init' differs/);
    const io3 = captureIO();
    assert.equal(await main(['pretrain', cfg, '--set', `init=${join(dir, 'init')}`, '--resume'], io3), 0, io3.err);
    assert.match(io3.err, /resuming at step 2/);
    const out = loadClip(join(dir, 'model'));
    assert.deepEqual(out.config, loadClip(join(dir, 'init')).config);
    // a model block that differs from the init model: a usage error naming the field and the folder
    const full = join(dir, 'full.yaml');
    writeFileSync(full, CONFIG());
    const io4 = captureIO();
    assert.equal(await main(['pretrain', full, '--init', join(dir, 'init'), '--set', 'model.text.layers=2'], io4), 2);
    assert.match(io4.err, /model\.text\.layers: 2 in the config, 1 in the init model/);
    assert.ok(io4.err.includes(join(dir, 'init')), io4.err);
    const io5 = captureIO();
    assert.equal(await main(['pretrain', full, '--init', join(dir, 'missing')], io5), 2);
    assert.match(io5.err, /init: model folder .*missing does not exist/);
  } finally {
    cleanup();
  }
});
