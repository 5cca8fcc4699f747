/**
 * Small on-disk fixtures in the real formats, written by the tests themselves (never real data).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { TableDataset } from '../../src/data/dataset.ts';

/** A fresh temp folder and its cleanup. */
export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `moeclip-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A deterministic pixel value for sample i at (y, x, c). */
export function pix(i: number, y: number, x: number, c = 0): number {
  return (i * 37 + y * 11 + x * 3 + c * 50) % 256;
}

function write(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

/** idx bytes: magic (big-endian), dims, data. */
export function idxBytes(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, k) => header.writeUInt32BE(d, 4 + 4 * k));
  return Buffer.concat([header, data]);
}

/** Writes an MNIST-style idx pair; returns the images' pixels (n·rows·cols) and labels. */
export function writeIdxPair(
  root: string,
  prefix: 'train' | 't10k',
  n: number,
  rows: number,
  cols: number,
  gz: boolean,
  labelOf: (i: number) => number = (i) => i % 10,
): { pixels: Uint8Array; labels: number[] } {
  const pixels = new Uint8Array(n * rows * cols);
  for (let i = 0; i < n; i++) for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) pixels[(i * rows + y) * cols + x] = pix(i, y, x);
  const labels = Array.from({ length: n }, (_, i) => labelOf(i));
  const ext = gz ? '.gz' : '';
  const img = idxBytes(2051, [n, rows, cols], pixels);
  const lab = idxBytes(2049, [n], Uint8Array.from(labels));
  write(join(root, `${prefix}-images-idx3-ubyte${ext}`), gz ? gzipSync(img) : img);
  write(join(root, `${prefix}-labels-idx1-ubyte${ext}`), gz ? gzipSync(lab) : lab);
  return { pixels, labels };
}

/** One CIFAR record: label byte(s) then planar R, G, B 32×32 of sample i. */
export function cifarRecord(i: number, labels: number[]): Uint8Array {
  const rec = new Uint8Array(labels.length + 3072);
  rec.set(labels, 0);
  for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) rec[labels.length + c * 1024 + y * 32 + x] = pix(i, y, x, c);
  return rec;
}

export function writeFile(path: string, data: Uint8Array | string): void {
  write(path, data);
}

/** RGB pixels (HWC) of sample i with size h×w. */
export function rgbPixels(i: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = pix(i, y, x, c);
  return out;
}

function rgba(rgb: Uint8Array): Buffer {
  const n = rgb.length / 3;
  const out = Buffer.alloc(n * 4);
  for (let k = 0; k < n; k++) {
    out[4 * k] = rgb[3 * k]!;
    out[4 * k + 1] = rgb[3 * k + 1]!;
    out[4 * k + 2] = rgb[3 * k + 2]!;
    out[4 * k + 3] = 255;
  }
  return out;
}

/** Writes a PNG of the given RGB pixels. */
export function writePng(path: string, rgb: Uint8Array, h: number, w: number): void {
  const png = new PNG({ width: w, height: h });
  png.data = rgba(rgb);
  write(path, PNG.sync.write(png));
}

/** Writes a JPEG (quality 95) of the given RGB pixels. */
export function writeJpeg(path: string, rgb: Uint8Array, h: number, w: number): void {
  write(path, jpeg.encode({ width: w, height: h, data: rgba(rgb) }, 95).data);
}

/** Smooth RGB pixels (JPEG-friendly) of sample i. */
export function smoothPixels(i: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    out[(y * w + x) * 3] = 40 + 20 * (i % 5);
    out[(y * w + x) * 3 + 1] = 60 + 4 * y;
    out[(y * w + x) * 3 + 2] = 200 - 4 * x;
  }
  return out;
}

export function gz(text: string): Uint8Array {
  return gzipSync(Buffer.from(text));
}

/**
 * An in-memory dataset: `perClass[c]` samples of class c (class-sorted), 4×4 gray images whose first pixel is
 * the sample index mod 256.
 */
export function memoryDataset(name: string, split: string, perClass: number[], templates = ['a photo of a {}.']): TableDataset {
  const n = perClass.reduce((a, b) => a + b, 0);
  const labels = new Int32Array(n);
  const pixels = new Uint8Array(n * 16);
  let i = 0;
  perClass.forEach((k, c) => {
    for (let j = 0; j < k; j++, i++) {
      labels[i] = c;
      for (let p = 0; p < 16; p++) pixels[i * 16 + p] = (i + p * 7) % 256;
    }
  });
  return new TableDataset(
    { name, split, classNames: perClass.map((_, c) => `${name}-class${c}`), templates },
    { count: n, height: 4, width: 4, channels: 1, labels, pixels },
  );
}
