/**
 * MNIST-style idx files (MNIST, Fashion-MNIST), raw or gzip-compressed.
 *
 * Format (big-endian): u8 0, u8 0, u8 type (0x08 = unsigned byte), u8 ndim, then ndim u32 sizes, then data.
 * Images: magic 0x00000803 = 2051, sizes (n, rows, cols). Labels: magic 0x00000801 = 2049, size (n).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TableDataset } from '../dataset.ts';
import type { Dataset } from '../types.ts';
import { applyLimit, datasetMeta, type LoadContext } from './common.ts';

export const IDX_IMAGES_MAGIC = 2051;
export const IDX_LABELS_MAGIC = 2049;

/** Reads a file and gunzips it when it starts with the gzip magic 1F 8B; errors name the file. */
export function readMaybeGzip(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${path}: corrupt or truncated gzip data: ${(e as Error).message}`);
    }
  }
  // a plain Uint8Array view (image pixels should not be Buffers)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A parsed idx file: its magic, its dimension sizes and a view of its data bytes. */
export interface IdxArray {
  magic: number;
  dims: number[];
  data: Uint8Array;
}

/** Parses idx bytes, checking the magic number against `expectMagic` and the byte count against the dims. */
export function parseIdx(bytes: Uint8Array, file: string, expectMagic: number): IdxArray {
  if (bytes.length < 8) throw new Error(`${file}: too short for an idx header (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expectMagic) {
    throw new Error(`${file}: bad idx magic number ${magic} (0x${magic.toString(16)}), expected ${expectMagic}`);
  }
  const ndim = magic & 0xff;
  const header = 4 + 4 * ndim;
  if (bytes.length < header) throw new Error(`${file}: truncated idx header`);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const need = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - header !== need) {
    throw new Error(
      `${file}: idx data has ${bytes.length - header} bytes but the header (${dims.join('×')}) needs ${need}` +
        (bytes.length - header < need ? ' (file truncated)' : ''),
    );
  }
  return { magic, dims, data: bytes.subarray(header) };
}

/** Finds `<prefix>-images-idx3-ubyte[.gz]` and the labels file for a split (`train` or `test` = `t10k`). */
export function findIdxFiles(root: string, split: string): { images: string; labels: string } {
  const prefix = split === 'train' ? 'train' : 't10k';
  const pick = (kind: 'images' | 'labels', nd: 3 | 1): string => {
    const bases = [`${prefix}-${kind}-idx${nd}-ubyte`, `${prefix}-${kind}.idx${nd}-ubyte`];
    for (const b of bases) for (const ext of ['', '.gz']) if (existsSync(join(root, b + ext))) return join(root, b + ext);
    throw new Error(`${root}: no ${split} ${kind} file (looked for ${bases[0]} and ${bases[0]}.gz)`);
  };
  return { images: pick('images', 3), labels: pick('labels', 1) };
}

/** Loads an images/labels idx pair as a dataset of 1-channel images. */
export function loadIdxPair(imagesFile: string, labelsFile: string, ctx: LoadContext): TableDataset {
  const img = parseIdx(readMaybeGzip(imagesFile), imagesFile, IDX_IMAGES_MAGIC);
  const lab = parseIdx(readMaybeGzip(labelsFile), labelsFile, IDX_LABELS_MAGIC);
  if (img.dims.length !== 3) throw new Error(`${imagesFile}: expected 3 dimensions (n, rows, cols), got ${img.dims.length}`);
  const [n, rows, cols] = img.dims as [number, number, number];
  if (lab.dims[0] !== n) throw new Error(`${labelsFile}: ${lab.dims[0]} labels but ${imagesFile} has ${n} images`);
  const labels = Int32Array.from(lab.data);
  for (let i = 0; i < n; i++) {
    if (labels[i]! >= ctx.classNames.length) {
      throw new Error(`${labelsFile}: label ${labels[i]} at index ${i} is outside 0..${ctx.classNames.length - 1}`);
    }
  }
  return new TableDataset(
    datasetMeta(ctx),
    { count: n, height: rows, width: cols, channels: 1, labels, pixels: img.data },
    { source: imagesFile },
  );
}

/** Registry loader for idx datasets laid out as `<root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`. */
export async function loadIdxDataset(ctx: LoadContext): Promise<Dataset> {
  const { images, labels } = findIdxFiles(ctx.root, ctx.split);
  return applyLimit(loadIdxPair(images, labels, ctx), ctx.options);
}
