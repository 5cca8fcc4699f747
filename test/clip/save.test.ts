/**
 * Model-folder writing (save.ts): both layouts round-trip through loadClip, extra JSON files, the whole-folder
 * atomic write (an earlier model folder is replaced, a failed write leaves it intact, no temporary siblings stay),
 * and the refusal to replace a folder that is not a model folder.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyClipConfig, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../../src/clip/config.ts';
import { randomClipWeights } from '../../src/clip/random.ts';
import { hfTokenizerFiles, saveClipHF, saveClipOpenClip } from '../../src/clip/save.ts';
import { ClipTokenizer } from '../../src/clip/tokenizer.ts';
import { loadClip } from '../../src/clip/load.ts';
import type { ClipWeights } from '../../src/clip/weights.ts';

const BPE = fileURLToPath(new URL('../../../shared/clip/bpe_simple_vocab_16e6.txt.gz', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'moeclip-clip-save-'));
after(() => rmSync(root, { recursive: true, force: true }));

const cfg = tinyClipConfig();
const tokenizer = ClipTokenizer.fromBpeGz(BPE);
const w1 = randomClipWeights(cfg, 1, { perturbStd: 0.1 });
const w2 = randomClipWeights(cfg, 2, { perturbStd: 0.1 });

function assertSameWeights(got: ClipWeights, want: ClipWeights): void {
  assert.equal(got.size, want.size);
  for (const [name, w] of want) {
    const g = got.get(name)!;
    assert.deepEqual(g.shape, w.shape, name);
    assert.ok(g.data.every((v, i) => v === w.data[i]), `${name} round-trips exactly in F32`);
  }
}

/** Nothing but `names` in root: no temporary `.x.new.*.tmp` / `.x.old.*.tmp` siblings left behind. */
function assertOnly(names: string[]): void {
  assert.deepEqual(readdirSync(root).sort(), [...names].sort());
}

test('an HF folder round-trips weights, tokenizer, preprocessing and extra JSON files', () => {
  const dir = join(root, 'hf');
  const mean = [0.5, 0.25, 0.125];
  saveClipHF(dir, { config: cfg, weights: w1, tokenizer, preprocess: { mean }, extraJson: { 'info.json': { a: 1 } } });
  const files = ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json', 'info.json'];
  assert.deepEqual(readdirSync(dir).sort(), [...files].sort());
  const loaded = loadClip(dir);
  assert.equal(loaded.layout, 'hf');
  assert.deepEqual(loaded.config, cfg);
  assertSameWeights(loaded.weights, w1);
  assert.deepEqual(loaded.tokenizer.encode('a photo of a dog'), tokenizer.encode('a photo of a dog'));
  const pre = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
  assert.deepEqual(pre.image_mean, mean);
  assert.deepEqual(pre.image_std, OPENAI_CLIP_STD);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'info.json'), 'utf8')), { a: 1 });
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'special_tokens_map.json'), 'utf8')).eos_token, '<|endoftext|>');
  const { merges } = hfTokenizerFiles(tokenizer);
  assert.equal(readFileSync(join(dir, 'merges.txt'), 'utf8'), merges);
  assert.ok(merges.startsWith('#version: 0.2\n'));
});

test('an open_clip folder round-trips weights and preprocessing', () => {
  const dir = join(root, 'oc');
  saveClipOpenClip(dir, { config: cfg, weights: w1, bpePath: BPE });
  const loaded = loadClip(dir);
  assert.equal(loaded.layout, 'open_clip');
  assertSameWeights(loaded.weights, w1);
  const oc = JSON.parse(readFileSync(join(dir, 'open_clip_config.json'), 'utf8'));
  assert.deepEqual(oc.preprocess_cfg.mean, OPENAI_CLIP_MEAN);
  assert.ok(existsSync(join(dir, 'bpe_simple_vocab_16e6.txt.gz')));
});

test('an existing model folder is replaced as a whole; a failed write leaves it intact; other folders are refused', () => {
  const dir = join(root, 'replace');
  saveClipHF(dir, { config: cfg, weights: w1, tokenizer, extraJson: { 'stale.json': {} } });
  saveClipHF(dir, { config: cfg, weights: w2, tokenizer: hfTokenizerFiles(tokenizer) }); // tokenizer files given as contents
  assert.ok(!existsSync(join(dir, 'stale.json')), 'files of the old folder do not survive');
  assertSameWeights(loadClip(dir).weights, w2);
  assert.deepEqual(loadClip(dir).tokenizer.encode('two cats'), tokenizer.encode('two cats'));

  // a write that fails part-way (bad weights for the open_clip conversion) leaves the old folder as it was
  const broken: ClipWeights = new Map(w1);
  broken.delete('visual_projection.weight');
  assert.throws(() => saveClipOpenClip(dir, { config: cfg, weights: broken, bpePath: BPE }), /missing tensor 'visual_projection\.weight'/);
  assert.equal(loadClip(dir).layout, 'hf');
  assertSameWeights(loadClip(dir).weights, w2);

  // an empty folder may be filled; a folder with other things in it is not wiped
  const empty = join(root, 'empty');
  mkdirSync(empty);
  saveClipHF(empty, { config: cfg, weights: w1, tokenizer, float: 'F16' });
  assert.equal(loadClip(empty).layout, 'hf');
  const other = join(root, 'other');
  mkdirSync(other);
  writeFileSync(join(other, 'notes.txt'), 'keep me');
  assert.throws(() => saveClipHF(other, { config: cfg, weights: w1, tokenizer }), (e: Error) => e.message.includes(other) && /not a CLIP model folder/.test(e.message));
  assert.equal(readFileSync(join(other, 'notes.txt'), 'utf8'), 'keep me');
  assert.throws(() => saveClipHF(join(root, 'x'), { config: cfg, weights: w1, tokenizer, extraJson: { '../escape.json': 1 } }), /plain file name/);
  assertOnly(['hf', 'oc', 'replace', 'empty', 'other']);
});
