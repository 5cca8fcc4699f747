/**
 * Fixtures of the pretraining tests: a tiny generated dataset of coloured shapes, a tiny config, the tokenizer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClipTokenizer } from '../../src/clip/tokenizer.ts';
import { TableDataset } from '../../src/data/dataset.ts';
import { parsePretrainConfig, type PretrainConfig } from '../../src/pretrain/config.ts';
import { Rng } from '../../src/util/rng.ts';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BPE_PATH = join(REPO, '..', 'shared', 'clip', 'bpe_simple_vocab_16e6.txt.gz');
/** The fixture WordNet (data.noun / index.noun in the real format). */
export const WORDNET_FIXTURE = join(REPO, 'test', 'fixtures', 'wordnet');
/** Fixture wnids for the four shapes (sorted: goldfish, dog, Chihuahua, fish; even = goldfish, Chihuahua). */
export const WORDNET_SHAPES = {
  ids: ['n01443537', 'n02084071', 'n02085620', 'n02512053'],
  names: [['goldfish'], ['dog', 'domestic dog'], ['Chihuahua'], ['fish']],
};

let tok: ClipTokenizer | null = null;
/** CLIP's tokenizer (loaded once per test file). */
export function tokenizer(): ClipTokenizer {
  tok ??= ClipTokenizer.fromBpeGz(BPE_PATH);
  return tok;
}

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `moeclip-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Class names, synonyms and colours of the shapes dataset (class ids c0..c3 sort in label order). */
export const SHAPE_CLASSES = [
  { id: 'c0', names: ['red circle', 'crimson disk'], rgb: [220, 30, 30], shape: 'circle' },
  { id: 'c1', names: ['green square', 'lime box'], rgb: [30, 200, 40], shape: 'square' },
  { id: 'c2', names: ['blue stripe', 'navy bar'], rgb: [30, 40, 220], shape: 'stripe' },
  { id: 'c3', names: ['yellow cross', 'golden plus'], rgb: [230, 210, 20], shape: 'cross' },
] as const;

/**
 * `perClass` images per class of `size`×`size` RGB: a coloured shape at a random position on a noisy dark
 * background (seeded). `classes` replaces the class ids and names (e.g. WordNet wnids of the fixture WordNet).
 */
export function shapesDataset(perClass: number, size = 16, seed = 1, split = 'train', classes?: { ids: string[]; names: string[][] }): TableDataset {
  const rng = new Rng(seed);
  const n = perClass * SHAPE_CLASSES.length;
  const pixels = new Uint8Array(n * size * size * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = i % SHAPE_CLASSES.length;
    labels[i] = y;
    const c = SHAPE_CLASSES[y]!;
    const cy = 4 + rng.int(size - 8);
    const cx = 4 + rng.int(size - 8);
    for (let r = 0; r < size; r++) {
      for (let q = 0; q < size; q++) {
        const dy = r - cy;
        const dx = q - cx;
        const inside =
          c.shape === 'circle' ? dy * dy + dx * dx <= 9 :
          c.shape === 'square' ? Math.abs(dy) <= 3 && Math.abs(dx) <= 3 :
          c.shape === 'stripe' ? Math.abs(dy) <= 1 :
          (Math.abs(dy) <= 1 && Math.abs(dx) <= 4) || (Math.abs(dx) <= 1 && Math.abs(dy) <= 4);
        for (let ch = 0; ch < 3; ch++) {
          const noise = rng.int(40);
          pixels[((i * size + r) * size + q) * 3 + ch] = inside ? Math.min(255, c.rgb[ch]! + noise) : 20 + noise;
        }
      }
    }
  }
  const names = classes?.names ?? SHAPE_CLASSES.map((c) => [...c.names]);
  return new TableDataset(
    { name: 'shapes', split, classNames: names.map((c) => c[0]!), templates: ['a photo of a {}.', 'a drawing of a {}.'] },
    { count: n, height: size, width: size, channels: 3, labels, pixels },
    { classIds: classes?.ids ?? SHAPE_CLASSES.map((c) => c.id), classSynonyms: names },
  );
}

/** A tiny pretraining config (model 16 px, one layer per tower) with overrides as `--set` strings. */
export function tinyConfig(sets: string[] = []): PretrainConfig {
  return parsePretrainConfig(
    {
      name: 'tiny-test',
      seed: 3,
      model: {
        vision: { imageSize: 16, patchSize: 8, width: 16, layers: 1, heads: 2 },
        text: { contextLength: 12, width: 16, layers: 1, heads: 2 },
        embedDim: 8,
      },
      data: { dataset: 'shapes', classes: 'all' },
      augment: { crop: { kind: 'random-resized', scale: [0.6, 1] }, flip: 0.5, colorJitter: { brightness: 0.1, contrast: 0.1, saturation: 0.1 }, grayscale: 0.1 },
      optim: { batchSize: 8, steps: 30, lr: 0.003, weightDecay: 0.01, warmupSteps: 3, lrFloor: 0.0003, clipNorm: 5 },
      eval: { every: 0, enabled: false },
      threads: 1,
    },
    { baseDir: REPO, sets, cwd: REPO },
  );
}
