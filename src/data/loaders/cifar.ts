/**
 * CIFAR-10 / CIFAR-100 in the official binary format.
 *
 * CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_{1..5}.bin` (train) and `test_batch.bin`, records of
 * 1 label byte + 3072 pixel bytes. CIFAR-100 (`cifar-100-binary/`): `train.bin`, `test.bin`, records of
 * 1 coarse + 1 fine label byte + 3072 pixel bytes. Pixels are planar: 1024 red, 1024 green, 1024 blue, each
 * 32×32 row-major; the loader converts them to HWC. Class names come from `batches.meta.txt` /
 * `fine_label_names.txt` when present, else the standard lists ("_" → space).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CIFAR100_COARSE_RAW, CIFAR100_FINE_RAW, CIFAR10_CLASSES, underscoresToSpaces } from '../catalog.ts';
import { TableDataset } from '../dataset.ts';
import type { Dataset } from '../types.ts';
import { applyLimit, type LoadContext } from './common.ts';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXEL_BYTES = 3 * PLANE;

/** The folder holding the .bin files: `root` itself or its official sub-folder. */
export function cifarBinDir(root: string, sub: string, marker: string): string | null {
  for (const d of [root, join(root, sub)]) if (existsSync(join(d, marker))) return d;
  return null;
}

/** Reads non-empty lines of a names file, or null when it does not exist. */
function readNames(path: string): string[] | null {
  if (!existsSync(path)) return null;
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Decodes CIFAR binary records from several files into one HWC table. `labelBytes` is 1 (CIFAR-10) or
 * 2 (CIFAR-100: coarse, fine); the last label byte is the class label.
 */
export function decodeCifarRecords(
  files: readonly string[],
  labelBytes: 1 | 2,
  numClasses: number,
): { labels: Int32Array; coarse: Int32Array | null; pixels: Uint8Array } {
  const rec = labelBytes + PIXEL_BYTES;
  const buffers = files.map((f) => {
    let b: Uint8Array;
    try {
      b = readFileSync(f);
    } catch (e) {
      throw new Error(`${f}: cannot read: ${(e as Error).message}`);
    }
    if (b.length === 0 || b.length % rec !== 0) {
      throw new Error(`${f}: ${b.length} bytes is not a whole number of ${rec}-byte CIFAR records (truncated or wrong format)`);
    }
    return b;
  });
  const n = buffers.reduce((a, b) => a + b.length / rec, 0);
  const labels = new Int32Array(n);
  const coarse = labelBytes === 2 ? new Int32Array(n) : null;
  const pixels = new Uint8Array(n * PIXEL_BYTES);
  let i = 0;
  buffers.forEach((b, fi) => {
    for (let r = 0; r < b.length / rec; r++, i++) {
      const base = r * rec;
      const y = b[base + labelBytes - 1]!;
      if (y >= numClasses) throw new Error(`${files[fi]}: record ${r} has label ${y}, expected < ${numClasses}`);
      labels[i] = y;
      if (coarse) {
        const c = b[base]!;
        if (c >= 20) throw new Error(`${files[fi]}: record ${r} has coarse label ${c}, expected < 20`);
        coarse[i] = c;
      }
      const src = base + labelBytes;
      const dst = i * PIXEL_BYTES;
      for (let p = 0; p < PLANE; p++) {
        pixels[dst + 3 * p] = b[src + p]!;
        pixels[dst + 3 * p + 1] = b[src + PLANE + p]!;
        pixels[dst + 3 * p + 2] = b[src + 2 * PLANE + p]!;
      }
    }
  });
  return { labels, coarse, pixels };
}

/** True when `root` (or its `cifar-10-batches-bin/`) holds CIFAR-10 binary batches. */
export function hasCifar10Binary(root: string): boolean {
  return cifarBinDir(root, 'cifar-10-batches-bin', 'test_batch.bin') !== null;
}

/** CIFAR-10 binary loader (splits `train`, `test`). */
export async function loadCifar10Binary(ctx: LoadContext): Promise<Dataset> {
  const dir = cifarBinDir(ctx.root, 'cifar-10-batches-bin', 'test_batch.bin');
  if (!dir) throw new Error(`${ctx.root}: no CIFAR-10 binary files (test_batch.bin) here or in cifar-10-batches-bin/`);
  const files =
    ctx.split === 'train'
      ? readdirSync(dir)
          .filter((f) => /^data_batch_\d+\.bin$/.test(f))
          .sort()
          .map((f) => join(dir, f))
      : [join(dir, 'test_batch.bin')];
  if (files.length === 0) throw new Error(`${dir}: no data_batch_*.bin files for the train split`);
  const metaNames = readNames(join(dir, 'batches.meta.txt'));
  if (metaNames && metaNames.length !== 10) throw new Error(`${join(dir, 'batches.meta.txt')}: expected 10 class names, found ${metaNames.length}`);
  const classNames = (metaNames ?? CIFAR10_CLASSES).map(underscoresToSpaces);
  const { labels, pixels } = decodeCifarRecords(files, 1, 10);
  const ds = new TableDataset(
    { name: ctx.name, split: ctx.split, classNames, templates: ctx.templates },
    { count: labels.length, height: SIDE, width: SIDE, channels: 3, labels, pixels },
    { source: files.length === 1 ? files[0]! : dir },
  );
  return applyLimit(ds, ctx.options);
}

/** CIFAR-100 binary loader (splits `train`, `test`); `extras.coarseLabels` holds the 20 superclasses. */
export async function loadCifar100Binary(ctx: LoadContext): Promise<Dataset> {
  const file = `${ctx.split}.bin`;
  const dir = cifarBinDir(ctx.root, 'cifar-100-binary', file);
  if (!dir) throw new Error(`${ctx.root}: no CIFAR-100 ${file} here or in cifar-100-binary/`);
  const path = join(dir, file);
  if (!statSync(path).isFile()) throw new Error(`${path}: not a file`);
  const fineNames = readNames(join(dir, 'fine_label_names.txt'));
  if (fineNames && fineNames.length !== 100) throw new Error(`${join(dir, 'fine_label_names.txt')}: expected 100 class names, found ${fineNames.length}`);
  const coarseNames = readNames(join(dir, 'coarse_label_names.txt'));
  const { labels, coarse, pixels } = decodeCifarRecords([path], 2, 100);
  const ds = new TableDataset(
    { name: ctx.name, split: ctx.split, classNames: (fineNames ?? CIFAR100_FINE_RAW).map(underscoresToSpaces), templates: ctx.templates },
    { count: labels.length, height: SIDE, width: SIDE, channels: 3, labels, pixels },
    {
      source: path,
      coarseLabels: coarse!,
      coarseClassNames: (coarseNames && coarseNames.length === 20 ? coarseNames : CIFAR100_COARSE_RAW).map(underscoresToSpaces),
    },
  );
  return applyLimit(ds, ctx.options);
}
