/**
 * `moeclip zeroshot --dataset`: the zero-shot accuracy of a tiny random model on a generated ImageFolder dataset,
 * against a direct computation of CLIP's template-ensemble classifier; class subsets and argument errors.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { ClipModel } from '../../src/clip/clip.ts';
import { CIFAR_TEMPLATES } from '../../src/data/catalog.ts';
import { loadDataset } from '../../src/data/registry.ts';
import { writePng } from '../data/fixtures.ts';
import { BPE_PATH, shapesDataset, tempDir } from '../pretrain/fixtures.ts';

const { dir, cleanup } = tempDir('cli-zeroshot-dataset');
after(cleanup);
const modelDir = join(dir, 'model');
writeRandomClip(modelDir, tinyClipConfig({ vision: { imageSize: 16, patchSize: 8 } }), { layout: 'hf', seed: 4, bpePath: BPE_PATH, perturbStd: 0.1 });
const dataRoot = join(dir, 'data');
// 4 classes × 5 test images (16×16 PNG), folders named after the classes
const shapes = shapesDataset(5, 16, 7, 'test');
for (let i = 0; i < shapes.length; i++) {
  const folder = shapes.classNames[shapes.labels[i]!]!.replace(/ /g, '_');
  writePng(join(dataRoot, 'test', folder, `${String(i).padStart(2, '0')}.png`), shapes.image(i).pixels, 16, 16);
}

async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTTY: false, env: {} };
  const code = await main(argv, io);
  return { code, out, err };
}

/** Accuracy by hand: per class the renormalised mean of normalised template embeddings, argmax of cosines. */
async function directAccuracy(classes: number[]): Promise<{ accuracy: number; n: number }> {
  const ds = await loadDataset({ name: 'imagefolder', root: dataRoot, split: 'test' });
  const model = await ClipModel.load(modelDir, { threads: 1 });
  try {
    const names = classes.map((y) => ds.classNames[y]!);
    const T = CIFAR_TEMPLATES.length;
    const txt = await model.encodeTexts(names.flatMap((n) => CIFAR_TEMPLATES.map((t) => t.replace('{}', n))));
    const E = model.config.embedDim;
    const cls = names.map((_, c) => {
      const v = new Float64Array(E);
      for (let k = 0; k < T; k++) for (let j = 0; j < E; j++) v[j]! += txt.data[(c * T + k) * E + j]!;
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    });
    const idx = Array.from({ length: ds.length }, (_, i) => i).filter((i) => classes.includes(ds.labels[i]!));
    const emb = await model.encodeImages(idx.map((i) => ds.image(i)));
    let correct = 0;
    idx.forEach((i, r) => {
      const e = emb.data.subarray(r * E, (r + 1) * E);
      const s = cls.map((c) => c.reduce((acc, x, j) => acc + x * e[j]!, 0));
      if (classes[s.indexOf(Math.max(...s))] === ds.labels[i]) correct++;
    });
    return { accuracy: correct / idx.length, n: idx.length };
  } finally {
    await model.close();
  }
}

test('zeroshot --dataset --json prints the accuracy of the template-ensemble classifier', async () => {
  const r = await runCli(['zeroshot', '--model', modelDir, '--dataset', 'imagefolder', '--root', dataRoot, '--split', 'test', '--json', '--threads', '1', '--batch', '7']);
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  assert.deepEqual(Object.keys(got).sort(), ['accuracy', 'n']);
  const want = await directAccuracy([0, 1, 2, 3]);
  assert.equal(got.n, 20);
  assert.ok(Math.abs(got.accuracy - want.accuracy) < 1e-12, `${got.accuracy} vs ${want.accuracy}`);
});

test('zeroshot --dataset --classes even|odd restricts the classes and the images (sorted folder names)', async () => {
  // sorted folders: blue_stripe (2), green_square (1), red_circle (0), yellow_cross (3) → even = labels of blue, red
  const ds = await loadDataset({ name: 'imagefolder', root: dataRoot, split: 'test' });
  const order = ds.classNames.map((n, y) => ({ n, y })).sort((a, b) => (a.n < b.n ? -1 : 1));
  const even = order.filter((_, i) => i % 2 === 0).map((o) => o.y).sort();
  const odd = order.filter((_, i) => i % 2 === 1).map((o) => o.y).sort();
  for (const [subset, labels] of [['even', even], ['odd', odd]] as const) {
    const r = await runCli(['zeroshot', '--model', modelDir, '--dataset', 'imagefolder', '--root', dataRoot, '--classes', subset, '--json', '--threads', '1']);
    assert.equal(r.code, 0, r.err);
    const got = JSON.parse(r.out);
    const want = await directAccuracy(labels);
    assert.equal(got.n, 10);
    assert.ok(Math.abs(got.accuracy - want.accuracy) < 1e-12, `${subset}: ${got.accuracy} vs ${want.accuracy}`);
  }
  // the text form and --limit-per-class
  const t = await runCli(['zeroshot', '--model', modelDir, '--dataset', 'imagefolder', '--root', dataRoot, '--limit-per-class', '2', '--threads', '1']);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /^zero-shot accuracy on imagefolder\/test \(all classes: 4, 8 images\): \d+\.\d\d%\n$/);
});

test('zeroshot --dataset argument errors', async () => {
  const base = ['zeroshot', '--model', modelDir];
  let r = await runCli([...base, '--dataset', 'imagefolder', '--root', dataRoot, '--classes', 'some']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--classes must be all, even or odd/);
  r = await runCli([...base, '--dataset', 'nosuchset']);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown dataset "nosuchset"/);
  r = await runCli([...base, '--dataset', 'imagefolder', '--root', dataRoot, '--image', 'x.png']);
  assert.equal(r.code, 2);
  assert.match(r.err, /cannot be combined/);
  r = await runCli([...base, '--classes', 'even', '--image', 'x.png', '--class', 'a', '--class', 'b']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--classes needs --dataset/);
  r = await runCli([...base, '--dataset', 'imagefolder', '--root', dataRoot, '--limit-per-class', '0']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--limit-per-class must be a positive integer/);
});
