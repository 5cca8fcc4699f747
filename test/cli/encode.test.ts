/**
 * `moeclip encode` and `moeclip zeroshot` on a tiny random model and PNGs written by the test.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { ClipModel, matrixRows, softmaxRows } from '../../src/clip/clip.ts';
import { encodePng, readImage } from '../../src/io/image.ts';
import type { Image } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BPE = join(REPO, '../shared/clip/bpe_simple_vocab_16e6.txt.gz');
const root = mkdtempSync(join(tmpdir(), 'moeclip-cli-encode-'));
after(() => rmSync(root, { recursive: true, force: true }));

const modelDir = join(root, 'model');
writeRandomClip(modelDir, tinyClipConfig(), { layout: 'open_clip', seed: 3, bpePath: BPE, perturbStd: 0.1 });
const pngs = [0, 1].map((i) => {
  const r = new Rng(10 + i);
  const img: Image = { width: 48, height: 40, channels: 3, pixels: Uint8Array.from({ length: 48 * 40 * 3 }, () => r.int(256)) };
  const p = join(root, `img${i}.png`);
  writeFileSync(p, encodePng(img));
  return p;
});

async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: (t) => (out += t), stderr: (t) => (err += t), isTTY: false, env: {} };
  const code = await main(argv, { ...io, env: { ...io.env } });
  return { code, out, err };
}

function norm(v: number[]): number {
  return Math.hypot(...v);
}

test('bin/moeclip.js encode --json prints unit-norm embeddings equal to the library call, and tokens', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(REPO, 'bin/moeclip.js'), 'encode', '--model', modelDir, '--image', pngs[0]!, '--image', pngs[1]!, '--text', 'a photo of a dog.', '--text', 'cat', '--json', '--threads', '1'],
    { cwd: REPO },
  );
  const j = JSON.parse(stdout) as { image_embeds: number[][]; text_embeds: number[][]; text_tokens: number[][] };
  assert.deepEqual(Object.keys(j).sort(), ['image_embeds', 'text_embeds', 'text_tokens']);
  assert.equal(j.image_embeds.length, 2);
  assert.equal(j.text_embeds.length, 2);
  for (const v of [...j.image_embeds, ...j.text_embeds]) {
    assert.equal(v.length, 16);
    assert.ok(Math.abs(norm(v) - 1) < 1e-5);
  }
  // real CLIP ids: SOT a photo of a dog . EOT / SOT cat EOT
  assert.deepEqual(j.text_tokens, [
    [49406, 320, 1125, 539, 320, 1929, 269, 49407],
    [49406, 2368, 49407],
  ]);
  const m = await ClipModel.load(modelDir, { threads: 1 });
  try {
    const imgs = await Promise.all(pngs.map((p) => readImage(p)));
    assert.deepEqual(j.image_embeds, matrixRows(await m.encodeImages(imgs)));
    assert.deepEqual(j.text_embeds, matrixRows(await m.encodeTexts(['a photo of a dog.', 'cat'])));
  } finally {
    await m.close();
  }
});

test('moeclip zeroshot --json: probabilities of the library recipe, argmax and label', async () => {
  const classes = ['dog', 'cat', 'car'];
  const templates = ['a photo of a {}.', 'a sketch of the {}'];
  const r = await runCli(['zeroshot', '--model', modelDir, ...pngs.flatMap((p) => ['--image', p]), ...classes.flatMap((c) => ['--class', c]), ...templates.flatMap((t) => ['--template', t]), '--json', '--threads', '1']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { results: Array<{ image: string; probs: number[]; argmax: number; label: string }> };
  assert.equal(j.results.length, 2);
  const m = await ClipModel.load(modelDir, { threads: 1 });
  try {
    const W = await m.zeroShotClassifier(classes, templates);
    const imgs = await Promise.all(pngs.map((p) => readImage(p)));
    const probs = matrixRows(softmaxRows(m.logits(await m.encodeImages(imgs), W)));
    j.results.forEach((res, i) => {
      assert.equal(res.image, pngs[i]);
      assert.equal(res.probs.length, 3);
      assert.ok(Math.abs(res.probs.reduce((a, b) => a + b, 0) - 1) < 1e-6);
      res.probs.forEach((p, c) => assert.ok(Math.abs(p - probs[i]![c]!) < 1e-6));
      assert.equal(res.argmax, res.probs.indexOf(Math.max(...res.probs)));
      assert.equal(res.label, classes[res.argmax]);
    });
  } finally {
    await m.close();
  }
  // the human-readable table names each image
  const t = await runCli(['zeroshot', '--model', modelDir, '--image', pngs[0]!, '--class', 'dog', '--class', 'cat', '--threads', '1']);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, new RegExp(`${pngs[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+(dog|cat)\\s+\\(0\\.\\d{4}\\)`));
});

test('bad arguments are usage errors (exit 2); a missing image file names the file (exit 1)', async () => {
  const noModel = await runCli(['encode', '--text', 'x']);
  assert.equal(noModel.code, 2);
  assert.match(noModel.err, /--model DIR is required/);
  const nothing = await runCli(['encode', '--model', modelDir]);
  assert.equal(nothing.code, 2);
  const oneClass = await runCli(['zeroshot', '--model', modelDir, '--image', pngs[0]!, '--class', 'dog']);
  assert.equal(oneClass.code, 2);
  assert.match(oneClass.err, /at least two --class/);
  const badTemplate = await runCli(['zeroshot', '--model', modelDir, '--image', pngs[0]!, '--class', 'a', '--class', 'b', '--template', 'no placeholder']);
  assert.equal(badTemplate.code, 2);
  assert.match(badTemplate.err, /no \{\} placeholder/);
  const unknown = await runCli(['encode', '--model', modelDir, '--bogus']);
  assert.equal(unknown.code, 2);
  const missing = join(root, 'nope.png');
  const noFile = await runCli(['encode', '--model', modelDir, '--image', missing, '--threads', '1']);
  assert.equal(noFile.code, 1);
  assert.ok(noFile.err.includes(missing), noFile.err);
  const badModel = await runCli(['encode', '--model', join(root, 'nomodel'), '--text', 'x']);
  assert.equal(badModel.code, 1);
  assert.match(badModel.err, /does not exist/);
});
