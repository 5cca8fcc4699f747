/**
 * Decoded-pixel cache: one compact binary file per (dataset, split, selection) so that a second run does not
 * decode thousands of JPEGs again.
 *
 * File layout (little-endian):
 * ```
 *  0  8 bytes  magic "MCPXCACH"
 *  8  u32      version (1)
 * 12  u32      count
 * 16  u32      height  (0 = variable size)
 * 20  u32      width   (0 = variable size)
 * 24  u32      channels
 * 28  u32      key hash (FNV-1a of the loader's description of the selection)
 * 32  f64      source size   (sum of the source files' sizes, bytes)
 * 40  f64      source mtime  (largest mtime of the source files, ms)
 * 48  u32      source file count
 * 52  u32      source hash   (FNV-1a over every file's size and mtime)
 * 56  i32[count]               labels
 *     u32[2·count]             (variable size only) height, width per image
 *     u8[...]                  pixels, HWC, images back to back
 * ```
 * The cache is stale (ignored and rewritten) when the key or any source stamp field differs.
 * It lives beside the data in `<root>/.moeclip-cache/` when that folder is writable, else in a fallback folder
 * (by default `.data/cache/` under the working directory). Writes are atomic (temp file + rename).
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import type { PixelTable } from './dataset.ts';

export const CACHE_MAGIC = 'MCPXCACH';
export const CACHE_VERSION = 1;
const HEADER_BYTES = 56;

/** Size/mtime fingerprint of the files a dataset was decoded from. */
export interface SourceStamp {
  size: number;
  mtimeMs: number;
  files: number;
  hash: number;
}

/** 32-bit FNV-1a hash of a string (UTF-16 code units folded bytewise). */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), 0x01000193) >>> 0;
    h = Math.imul(h ^ (c >>> 8), 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Stats every file and folds sizes and mtimes into a stamp; any change of any file changes `hash`. */
export function stampFiles(paths: readonly string[]): SourceStamp {
  let size = 0;
  let mtimeMs = 0;
  let hash = 0x811c9dc5;
  for (const p of paths) {
    const st = statSync(p);
    size += st.size;
    if (st.mtimeMs > mtimeMs) mtimeMs = st.mtimeMs;
    hash = fnv1a(`${st.size}:${Math.round(st.mtimeMs)};`, hash);
  }
  return { size, mtimeMs, files: paths.length, hash };
}

/** True when `dir` exists and should receive cache files: it has a user-write mode bit and is writable. */
export function isWritableDir(dir: string): boolean {
  try {
    const st = statSync(dir);
    // root ignores permission bits, so a read-only shared folder is recognised by its mode, not by access()
    if (!st.isDirectory() || (st.mode & 0o200) === 0) return false;
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where the cache lives for this data: options decided by the caller (`cacheDir` forces a folder). */
export interface CacheLocation {
  /** Force this folder for cache files. */
  cacheDir?: string;
  /** Folder used when the data folder is not writable (default `.data/cache` under the working directory). */
  fallbackDir?: string;
}

/**
 * The cache file path for a dataset whose files live under `dataRoot`: `<dataRoot>/.moeclip-cache/<file>` when
 * writable, otherwise `<fallback>/<name>-<hash of dataRoot>-<file>`.
 */
export function cacheFilePath(dataRoot: string, fileName: string, loc: CacheLocation = {}): string {
  const absRoot = resolve(dataRoot);
  const tag = `${fnv1a(absRoot).toString(16).padStart(8, '0')}-${fileName}`;
  if (loc.cacheDir) return join(resolve(loc.cacheDir), tag);
  if (isWritableDir(absRoot)) return join(absRoot, '.moeclip-cache', fileName);
  return join(resolve(loc.fallbackDir ?? join('.data', 'cache')), tag);
}

/**
 * Allocates a fixed-size table whose bytes are already laid out as a cache file, so decoding writes straight
 * into the buffer that will be saved (no second copy of a large dataset).
 */
export function allocateCacheTable(
  count: number,
  height: number,
  width: number,
  channels: 1 | 3,
): { table: PixelTable; file: Uint8Array } {
  const pixelBytes = count * height * width * channels;
  const file = new Uint8Array(HEADER_BYTES + 4 * count + pixelBytes);
  const labels = new Int32Array(file.buffer, HEADER_BYTES, count);
  const pixels = file.subarray(HEADER_BYTES + 4 * count);
  return { table: { count, height, width, channels, labels, pixels }, file };
}

function writeHeader(view: DataView, t: PixelTable, keyHash: number, stamp: SourceStamp): void {
  for (let i = 0; i < 8; i++) view.setUint8(i, CACHE_MAGIC.charCodeAt(i));
  view.setUint32(8, CACHE_VERSION, true);
  view.setUint32(12, t.count, true);
  view.setUint32(16, t.height, true);
  view.setUint32(20, t.width, true);
  view.setUint32(24, t.channels, true);
  view.setUint32(28, keyHash >>> 0, true);
  view.setFloat64(32, stamp.size, true);
  view.setFloat64(40, stamp.mtimeMs, true);
  view.setUint32(48, stamp.files, true);
  view.setUint32(52, stamp.hash >>> 0, true);
}

/**
 * Writes a table to `path` atomically. When `file` is the buffer from `allocateCacheTable` it is written
 * as is (after filling in the header); otherwise the bytes are assembled.
 */
export function writePixelCache(
  path: string,
  table: PixelTable,
  keyHash: number,
  stamp: SourceStamp,
  file?: Uint8Array,
): void {
  let out = file;
  if (!out) {
    const variable = table.height === 0;
    const dimsBytes = variable ? 8 * table.count : 0;
    out = new Uint8Array(HEADER_BYTES + 4 * table.count + dimsBytes + table.pixels.length);
    out.set(new Uint8Array(table.labels.buffer, table.labels.byteOffset, table.labels.byteLength), HEADER_BYTES);
    if (variable) {
      out.set(new Uint8Array(table.dims!.buffer, table.dims!.byteOffset, table.dims!.byteLength), HEADER_BYTES + 4 * table.count);
    }
    out.set(table.pixels, HEADER_BYTES + 4 * table.count + dimsBytes);
  }
  writeHeader(new DataView(out.buffer, out.byteOffset, HEADER_BYTES), table, keyHash, stamp);
  writeFileAtomic(path, out);
}

/** Reads just the header fields of a cache file (for checks and tools). */
export interface CacheHeader {
  version: number;
  count: number;
  height: number;
  width: number;
  channels: number;
  keyHash: number;
  stamp: SourceStamp;
}

function readHeader(bytes: Uint8Array): CacheHeader | null {
  if (bytes.length < HEADER_BYTES) return null;
  for (let i = 0; i < 8; i++) if (bytes[i] !== CACHE_MAGIC.charCodeAt(i)) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  return {
    version: v.getUint32(8, true),
    count: v.getUint32(12, true),
    height: v.getUint32(16, true),
    width: v.getUint32(20, true),
    channels: v.getUint32(24, true),
    keyHash: v.getUint32(28, true),
    stamp: {
      size: v.getFloat64(32, true),
      mtimeMs: v.getFloat64(40, true),
      files: v.getUint32(48, true),
      hash: v.getUint32(52, true),
    },
  };
}

/**
 * Loads a cache file when it exists, is well formed and matches `keyHash` and `stamp`; otherwise `null`
 * (the caller decodes and rewrites it). Pixels are a view into the file's bytes.
 */
export function readPixelCache(path: string, keyHash: number, stamp: SourceStamp): PixelTable | null {
  if (!existsSync(path)) return null;
  let bytes: Uint8Array;
  try {
    const b = readFileSync(path);
    bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // plain Uint8Array views, not Buffers
  } catch {
    return null;
  }
  const h = readHeader(bytes);
  if (!h || h.version !== CACHE_VERSION || h.keyHash !== keyHash >>> 0) return null;
  if (h.stamp.size !== stamp.size || h.stamp.mtimeMs !== stamp.mtimeMs) return null;
  if (h.stamp.files !== stamp.files || h.stamp.hash !== stamp.hash >>> 0) return null;
  if (h.channels !== 1 && h.channels !== 3) return null;
  const channels = h.channels as 1 | 3;
  const count = h.count;
  const variable = h.height === 0;
  const labelsEnd = HEADER_BYTES + 4 * count;
  const dimsEnd = labelsEnd + (variable ? 8 * count : 0);
  if (bytes.length < dimsEnd) return null;
  // copy the small arrays (alignment of a pooled Buffer is not guaranteed); pixels stay a view
  const labels = new Int32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) labels[i] = dv.getInt32(HEADER_BYTES + 4 * i, true);
  const pixels = bytes.subarray(dimsEnd);
  if (!variable) {
    if (pixels.length !== count * h.height * h.width * channels) return null;
    return { count, height: h.height, width: h.width, channels, labels, pixels };
  }
  const dims = new Uint32Array(2 * count);
  const offsets = new Float64Array(count + 1);
  let off = 0;
  for (let i = 0; i < count; i++) {
    dims[2 * i] = dv.getUint32(labelsEnd + 8 * i, true);
    dims[2 * i + 1] = dv.getUint32(labelsEnd + 8 * i + 4, true);
    offsets[i] = off;
    off += dims[2 * i]! * dims[2 * i + 1]! * channels;
  }
  offsets[count] = off;
  if (off !== pixels.length) return null;
  return { count, height: 0, width: 0, channels, labels, pixels, dims, offsets };
}

/** The header of a cache file, or null when it is not one. */
export function readCacheHeader(path: string): CacheHeader | null {
  try {
    return readHeader(readFileSync(path).subarray(0, HEADER_BYTES));
  } catch {
    return null;
  }
}
