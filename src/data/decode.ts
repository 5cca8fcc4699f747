/**
 * Image file decoding for the dataset loaders: JPEG (jpeg-js) and PNG (pngjs), pure JS.
 * Always returns 3-channel RGB (grayscale is replicated, alpha dropped), the form ImageFolder-style datasets use.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { decoderMessage } from '../io/image.ts';
import type { Image } from './types.ts';

/** Counts decodes, so tests (and progress logs) can tell whether a load decoded files or hit the cache. */
export const decodeStats = { files: 0 };

/** True when the bytes start with the JPEG SOI marker FF D8. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length > 2 && bytes[0] === 0xff && bytes[1] === 0xd8;
}

/** True when the bytes start with the 8-byte PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  return bytes.length > 8 && sig.every((b, i) => bytes[i] === b);
}

/**
 * Decodes a JPEG or PNG file's bytes to RGB pixels (HWC). The format is detected from the magic bytes;
 * `source` (a path) only appears in error messages.
 */
export function decodeImageFile(bytes: Uint8Array, source: string): Image {
  decodeStats.files++;
  if (isJpeg(bytes)) {
    let out: { width: number; height: number; data: Uint8Array };
    try {
      out = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    } catch (e) {
      throw new Error(`${source}: cannot decode JPEG: ${decoderMessage(e)}`);
    }
    if (out.data.length !== out.width * out.height * 3) throw new Error(`${source}: JPEG decoded to a wrong size`);
    return { width: out.width, height: out.height, channels: 3, pixels: out.data };
  }
  if (isPng(bytes)) {
    let png: PNG;
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (e) {
      throw new Error(`${source}: cannot decode PNG: ${decoderMessage(e)}`);
    }
    const n = png.width * png.height;
    const rgb = new Uint8Array(n * 3);
    const rgba = png.data;
    for (let i = 0; i < n; i++) {
      rgb[3 * i] = rgba[4 * i]!;
      rgb[3 * i + 1] = rgba[4 * i + 1]!;
      rgb[3 * i + 2] = rgba[4 * i + 2]!;
    }
    return { width: png.width, height: png.height, channels: 3, pixels: rgb };
  }
  throw new Error(`${source}: not a JPEG or PNG file (unrecognised magic bytes)`);
}
