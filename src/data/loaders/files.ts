/**
 * Datasets made of image files (ImageFolder, Tiny ImageNet, the CIFAR-10 JPEG archive): selection,
 * decoding and the decoded-pixel cache (./../cache.ts).
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import {
  allocateCacheTable,
  cacheFilePath,
  fnv1a,
  readPixelCache,
  stampFiles,
  writePixelCache,
  type SourceStamp,
} from '../cache.ts';
import { decodeImageFile } from '../decode.ts';
import { resizeCenterSquare } from '../image-ops.ts';
import { selectPerClass, SubsetDataset, TableDataset, tableFromImages, type DatasetExtras, type PixelTable } from '../dataset.ts';
import type { Dataset, Image } from '../types.ts';
import type { LoadContext } from './common.ts';

/** The samples of a file-based split: one path and label per sample (in dataset order). */
export interface FileList {
  files: string[];
  labels: Int32Array;
}

/** Version of the decoding rules; bump it when decoding changes so that old caches are ignored. */
const DECODE_VERSION = 1;

function cacheKey(ctx: LoadContext, root: string, list: FileList): number {
  let h = fnv1a(JSON.stringify({ v: DECODE_VERSION, name: ctx.name, split: ctx.split, imageSize: ctx.options.imageSize ?? 0 }));
  for (let i = 0; i < list.files.length; i++) h = fnv1a(`${relative(root, list.files[i]!)}\t${list.labels[i]}\n`, h);
  return h;
}

function cachePath(ctx: LoadContext, root: string, tag: string, key: number): string {
  return cacheFilePath(root, `${ctx.name}-${ctx.split}-${tag}${key.toString(16).padStart(8, '0')}.mcpx`, {
    ...(ctx.options.cacheDir !== undefined ? { cacheDir: ctx.options.cacheDir } : {}),
    ...(ctx.options.fallbackCacheDir !== undefined ? { fallbackDir: ctx.options.fallbackCacheDir } : {}),
  });
}

/** Decodes the files (optionally resized to a square), straight into a cache-shaped buffer when sizes agree. */
async function decodeAll(
  ctx: LoadContext,
  list: FileList,
): Promise<{ table: PixelTable; file?: Uint8Array }> {
  const n = list.files.length;
  const size = ctx.options.imageSize;
  let fixed: ReturnType<typeof allocateCacheTable> | null = null;
  let images: Image[] | null = null;
  let h = 0;
  let w = 0;
  for (let i = 0; i < n; i++) {
    const path = list.files[i]!;
    let img = decodeImageFile(readFileSync(path), path);
    if (size !== undefined) img = resizeCenterSquare(img, size);
    if (i === 0) {
      h = img.height;
      w = img.width;
      fixed = allocateCacheTable(n, h, w, 3);
    }
    if (fixed && (img.height !== h || img.width !== w)) {
      // sizes differ: fall back to a variable-size table
      const bytes = h * w * 3;
      images = [];
      for (let j = 0; j < i; j++) {
        images.push({ width: w, height: h, channels: 3, pixels: fixed.table.pixels.subarray(j * bytes, (j + 1) * bytes) });
      }
      fixed = null;
    }
    if (fixed) fixed.table.pixels.set(img.pixels, i * h * w * 3);
    else images!.push(img);
    if ((i + 1) % 500 === 0 || i + 1 === n) {
      ctx.options.onProgress?.(i + 1, n);
      await new Promise((r) => setImmediate(r));
    }
  }
  if (fixed) {
    fixed.table.labels.set(list.labels);
    return { table: fixed.table, file: fixed.file };
  }
  return { table: tableFromImages(images ?? [], Int32Array.from(list.labels)) };
}

function sameLabels(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Reads a valid cache for this list, or decodes the files and (best effort) writes the cache. */
async function loadOrDecode(
  ctx: LoadContext,
  root: string,
  list: FileList,
  tag: string,
): Promise<PixelTable> {
  const useCache = ctx.options.cache !== false;
  if (!useCache) return (await decodeAll(ctx, list)).table;
  const key = cacheKey(ctx, root, list);
  const stamp: SourceStamp = stampFiles(list.files);
  const path = cachePath(ctx, root, tag, key);
  const cached = readPixelCache(path, key, stamp);
  if (cached && sameLabels(cached.labels, list.labels)) return cached;
  const { table, file } = await decodeAll(ctx, list);
  try {
    writePixelCache(path, table, key, stamp, file);
  } catch (e) {
    ctx.options.onWarning?.(`could not write the pixel cache ${path}: ${(e as Error).message}`);
  }
  return table;
}

/**
 * Builds the dataset of a file list: applies `limitPerClass` before decoding, and serves pixels from the
 * cache when one matches (a cache of the whole split also serves any subset of it).
 */
export async function loadFileDataset(
  ctx: LoadContext,
  root: string,
  list: FileList,
  classNames: readonly string[],
  extras: DatasetExtras,
): Promise<Dataset> {
  if (list.files.length === 0) throw new Error(`${root}: no image files found for split "${ctx.split}"`);
  const meta = { name: ctx.name, split: ctx.split, classNames, templates: ctx.templates };
  const limit = ctx.options.limitPerClass;
  if (limit === undefined) return new TableDataset(meta, await loadOrDecode(ctx, root, list, ''), extras);
  const sel = selectPerClass(list.labels, limit, ctx.options.seed);
  if (ctx.options.cache !== false) {
    // a cache of the whole split, when present, is cheaper than decoding the subset
    const key = cacheKey(ctx, root, list);
    const path = cachePath(ctx, root, '', key);
    const full = readPixelCache(path, key, stampFiles(list.files));
    if (full && sameLabels(full.labels, list.labels)) return new SubsetDataset(new TableDataset(meta, full, extras), sel);
  }
  const sub: FileList = { files: Array.from(sel, (i) => list.files[i]!), labels: Int32Array.from(sel, (i) => list.labels[i]!) };
  const tag = `l${limit}s${ctx.options.seed ?? 'none'}-`;
  return new TableDataset(meta, await loadOrDecode(ctx, root, sub, tag), extras);
}
