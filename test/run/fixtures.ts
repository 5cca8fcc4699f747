/**
 * In-memory datasets and streams for runner / report / CLI tests. Images are small gray images; image i of a
 * dataset encodes its index in the first two bytes (i mod 256, ⌊i/256⌋) so fake methods can recognise samples.
 */
import type { Dataset, Image, Stream, StreamItem, StreamTask } from '../../src/data/types.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { Rng } from '../../src/util/rng.ts';

export class MemDataset implements Dataset {
  readonly templates = ['a photo of a {}.'];
  readonly length: number;
  constructor(
    readonly name: string,
    readonly split: string,
    readonly classNames: readonly string[],
    readonly labels: Int32Array,
    private readonly images: Image[],
  ) {
    this.length = labels.length;
  }
  image(i: number): Image {
    const im = this.images[i];
    if (!im) throw new RangeError(`${this.name}: index ${i}`);
    return im;
  }
}

/** A key identifying the sample an image came from (first two bytes). */
export function imageKey(im: Image): number {
  return im.pixels[0]! + 256 * im.pixels[1]!;
}

/**
 * A dataset of `perClass` samples per class. With `pattern`, class c lights the c-th 2-pixel column pair of a
 * `4·C`-wide 4-row image (plus seeded noise), which raw-pixel NCM separates; the index key bytes are kept in
 * the top-left corner either way.
 */
export function makeDataset(name: string, split: string, numClasses: number, perClass: number, opts: { pattern?: boolean; seed?: number; offset?: number } = {}): MemDataset {
  const rng = new Rng(opts.seed ?? 1);
  const labels: number[] = [];
  const images: Image[] = [];
  const w = Math.max(4, 4 * numClasses);
  const h = 4;
  for (let c = 0; c < numClasses; c++) {
    for (let k = 0; k < perClass; k++) {
      const i = labels.length;
      const px = new Uint8Array(w * h);
      if (opts.pattern) {
        for (let y = 1; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = rng.int(40);
        for (let y = 1; y < h; y++) for (let x = 4 * c; x < 4 * c + 4; x++) px[y * w + x] = 200 + rng.int(55);
      }
      const key = i + (opts.offset ?? 0);
      px[0] = key % 256;
      px[1] = Math.floor(key / 256);
      labels.push(c);
      images.push({ width: w, height: h, channels: 1, pixels: px });
    }
  }
  const classNames = Array.from({ length: numClasses }, (_, c) => `class${c}`);
  return new MemDataset(name, split, classNames, Int32Array.from(labels), images);
}

/**
 * A class-incremental stream over `train`/`test` datasets: task t holds the classes in `taskClasses[t]`, its
 * training samples in dataset order (or shuffled with `seed`), its test samples of those classes.
 */
export function makeStream(train: Dataset, test: Dataset, taskClasses: number[][], opts: { seed?: number; kind?: Stream['kind'] } = {}): Stream {
  const identity = (im: Image) => im;
  const tasks: StreamTask[] = taskClasses.map((classes, t) => {
    const pick = (ds: Dataset): StreamItem[] => {
      const out: StreamItem[] = [];
      for (let i = 0; i < ds.length; i++) if (classes.includes(ds.labels[i]!)) out.push({ dataset: ds, index: i, label: ds.labels[i]!, task: t });
      return out;
    };
    const tr = pick(train);
    if (opts.seed !== undefined) new Rng(opts.seed + t).shuffle(tr);
    return { id: t, train: tr, test: pick(test), classes: [...classes], trainTransform: identity, testTransform: identity, name: `task${t}` };
  });
  return {
    kind: opts.kind ?? 'class-incremental',
    classNames: [...train.classNames],
    templatesFor: () => train.templates,
    tasks,
    describe: () => ({ kind: opts.kind ?? 'class-incremental', tasks: taskClasses }),
  };
}

/**
 * Writes an MNIST-layout idx pair (`train-*` or `t10k-*`, uncompressed) of `perClass` `size×size` images per
 * class for 10 classes into `dir`: class c draws a bright horizontal bar at row ⌊c·size/10⌋ over seeded noise
 * (distinct rows, hence separable classes, need size ≥ 10).
 * Returns the label of every written sample, in file order (classes interleaved 0,1,…,9,0,1,…).
 */
export function writeMnistIdx(dir: string, split: 'train' | 'test', perClass: number, size = 10, seed = 1): number[] {
  const rng = new Rng(seed);
  const n = perClass * 10;
  const header = (magic: number, dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  const pixels = Buffer.alloc(n * size * size);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 10;
    labels.push(c);
    const row = Math.floor((c * size) / 10);
    for (let p = 0; p < size * size; p++) pixels[i * size * size + p] = rng.int(30);
    for (let x = 0; x < size; x++) pixels[i * size * size + row * size + x] = 220 + rng.int(30);
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), Buffer.concat([header(2051, [n, size, size]), pixels]));
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), Buffer.concat([header(2049, [n]), Buffer.from(labels)]));
  return labels;
}

/**
 * A temporary folder with MNIST idx files in `data/` (`trainPerClass` / 3 test images per class, seeds 1 and 2),
 * removed after the test file (unless `cleanup: false`).
 */
export function tempMnistRoot(prefix: string, trainPerClass: number, opts: { cleanup?: boolean } = {}): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(root, 'data'));
  writeMnistIdx(join(root, 'data'), 'train', trainPerClass, 10, 1);
  writeMnistIdx(join(root, 'data'), 'test', 3, 10, 2);
  if (opts.cleanup !== false) after(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** Config lines (`stream:` and `run:`) for a class-incremental stream of `tasks` tasks of 2 digits over a `data/` MNIST root. */
export function digitStreamYaml(tasks: number, evalBatchSize: number): string[] {
  return [
    'stream:',
    '  kind: class-incremental',
    '  dataset: { name: mnist, root: data }',
    `  classOrder: [${Array.from({ length: 2 * tasks }, (_, i) => i).join(', ')}]`,
    `  tasks: ${tasks}`,
    'run:',
    '  batchSize: 4',
    '  evalPeriod: 12',
    `  evalBatchSize: ${evalBatchSize}`,
  ];
}
