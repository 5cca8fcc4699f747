/**
 * Image decoding (PNG, JPEG) to 8-bit HWC pixels, and PNG encoding for fixtures.
 *
 * Backends: `sharp` (libvips) when the optional dependency can be imported, else pure JS (`pngjs` for PNG,
 * `jpeg-js` for JPEG); `decodeImageSync` always uses the pure JS decoders (for synchronous dataset access). Both
 * give the same pixels on PNG (lossless); on JPEG they differ slightly because the IDCT and the chroma up-sampling
 * differ (on CIFAR-10 JPEGs: mean |Δ| ≈ 1–2 levels, max up to ≈ 17). sharp may also apply an embedded ICC profile.
 *
 * Channel policy: grayscale sources (PNG colour types 0/4, single-component JPEG) decode to `channels: 1`, every
 * other source to `channels: 3` (RGB). Alpha is dropped without compositing (the colour values are kept as stored,
 * like PIL's `convert('RGB')`). 16-bit PNG samples are reduced to 8 bits by keeping the high byte (as PIL does for
 * 16-bit colour PNGs). EXIF orientation is not applied (PIL does not apply it either).
 */
import { readFile } from 'node:fs/promises';
import type { Image } from '../data/types.ts';
import pngjs from 'pngjs';
import * as jpegJs from 'jpeg-js';

export type { Image } from '../data/types.ts';
/** Alias kept for callers that know the decoded image as an RGB image. */
export type RgbImage = Image;

export type ImageFormat = 'png' | 'jpeg';
export type ImageBackend = 'sharp' | 'js';

export interface DecodeOptions {
  /** `auto` (default): sharp when available, else pure JS. `sharp` fails if sharp cannot be loaded. */
  backend?: 'auto' | ImageBackend;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Detects PNG or JPEG by the leading magic bytes; null when neither. */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// sharp loading (optional dependency)

/** The part of sharp's API used here (typed locally so that type-checking does not need the optional package). */
interface SharpPipeline {
  removeAlpha(): SharpPipeline;
  toColourspace(space: string): SharpPipeline;
  raw(opts?: { depth?: 'uchar' | 'ushort' }): SharpPipeline;
  toBuffer(opts: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}
type SharpFactory = (input: Buffer, opts?: { failOn?: 'none' | 'truncated' | 'error' | 'warning' }) => SharpPipeline;

let sharpPromise: Promise<SharpFactory | null> | null = null;

/** Imports sharp once; resolves to null when it is not installed or its native part fails to load. */
function loadSharp(): Promise<SharpFactory | null> {
  if (sharpPromise === null) {
    const name = 'sharp'; // a variable specifier: the optional package is resolved only at run time
    sharpPromise = import(name).then(
      (m: { default?: SharpFactory }) => m.default ?? (m as unknown as SharpFactory),
      () => null,
    );
  }
  return sharpPromise;
}

/** The backend `decodeImage` uses by default on this machine. */
export async function defaultImageBackend(): Promise<ImageBackend> {
  return (await loadSharp()) !== null ? 'sharp' : 'js';
}

// ---------------------------------------------------------------------------------------------------------------
// decoding

/**
 * Decodes PNG or JPEG bytes to 8-bit pixels (see the module comment for the channel policy). `source` names the
 * file in error messages.
 */
export async function decodeImage(bytes: Uint8Array, source: string, opts: DecodeOptions = {}): Promise<Image> {
  const format = detectImageFormat(bytes);
  if (format === null) throw unknownFormat(bytes, source);
  const backend = opts.backend ?? 'auto';
  const sharp = backend === 'js' ? null : await loadSharp();
  if (backend === 'sharp' && sharp === null) throw new Error(`image ${source}: the sharp backend is not available`);
  try {
    if (sharp !== null) return await decodeWithSharp(sharp, bytes, format);
    return format === 'png' ? decodePngJs(bytes) : decodeJpegJs(bytes);
  } catch (e) {
    throw new Error(`image ${source}: cannot decode ${format.toUpperCase()} (${decoderMessage(e)})`);
  }
}

/**
 * A decoder's error message on one line, each distinct part once: libvips (through sharp) reports a truncated
 * JPEG as "Input buffer has corrupt header: VipsJpeg: premature end of JPEG image" followed by the same
 * libjpeg messages again, one per line; the `Vips…:` prefixes go too, and a premature end is called a truncation.
 */
export function decoderMessage(e: unknown): string {
  const raw = e instanceof Error ? e.message : String(e);
  const parts: string[] = [];
  for (const line of raw.split(/\r?\n/)) {
    for (const piece of line.split(/(?<=^Input buffer has corrupt header): /)) {
      const p = piece.replace(/\bVips[A-Za-z]*: /g, '').trim();
      if (p !== '' && !parts.includes(p)) parts.push(p);
    }
  }
  if (parts.some((p) => /premature end/i.test(p))) parts.push('the file looks truncated');
  return parts.join('; ') || raw;
}

/** Synchronous decoding with the pure JS backend (pngjs / jpeg-js); same output as `decodeImage` with `js`. */
export function decodeImageSync(bytes: Uint8Array, source: string): Image {
  const format = detectImageFormat(bytes);
  if (format === null) throw unknownFormat(bytes, source);
  try {
    return format === 'png' ? decodePngJs(bytes) : decodeJpegJs(bytes);
  } catch (e) {
    throw new Error(`image ${source}: cannot decode ${format.toUpperCase()} (${decoderMessage(e)})`);
  }
}

function unknownFormat(bytes: Uint8Array, source: string): Error {
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return new Error(`image ${source}: unknown image format (expected PNG or JPEG; first bytes: ${head || 'none'})`);
}

/** Reads and decodes an image file; errors name the path. */
export async function readImage(path: string, opts: DecodeOptions = {}): Promise<Image> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`image ${path}: cannot read file (${(e as Error).message})`);
  }
  return decodeImage(bytes, path, opts);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

async function decodeWithSharp(sharp: SharpFactory, bytes: Uint8Array, format: ImageFormat): Promise<Image> {
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const gray = format === 'png' ? pngIsGray(bytes) : jpegComponents(bytes) === 1;
  const channels = gray ? 1 : 3;
  // 16-bit PNGs are read as 16-bit samples and reduced to their high byte here (sharp's own 16 → 8 bit
  // conversion rounds v/257 for gray but keeps the high byte for colour; pngjs/PIL-style is the high byte)
  const wide = format === 'png' && pngBitDepth(bytes) === 16;
  const space = wide ? (gray ? 'grey16' : 'rgb16') : gray ? 'b-w' : 'srgb';
  const pipeline = sharp(input, { failOn: 'error' })
    .removeAlpha()
    .toColourspace(space)
    .raw(wide ? { depth: 'ushort' } : { depth: 'uchar' });
  const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
  if (info.channels !== channels) {
    throw new Error(`sharp returned ${info.channels} channels, expected ${channels}`);
  }
  const n = info.width * info.height * channels;
  let pixels: Uint8Array;
  if (wide) {
    // raw 16-bit output is in host byte order
    pixels = new Uint8Array(n);
    const hi = LITTLE_ENDIAN_HOST ? 1 : 0;
    for (let i = 0; i < n; i++) pixels[i] = data[2 * i + hi]!;
  } else {
    pixels = new Uint8Array(data.buffer, data.byteOffset, n);
  }
  return { width: info.width, height: info.height, channels, pixels };
}

// ---- PNG (pngjs) ----

/** Iterates the chunks of a PNG: [length u32 BE][type 4 bytes][data][crc]. */
function* pngChunks(bytes: Uint8Array): Generator<{ type: string; start: number; end: number; dataStart: number }> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!, bytes[pos + 6]!, bytes[pos + 7]!);
    const end = pos + 12 + len;
    yield { type, start: pos, end: Math.min(end, bytes.length), dataStart: pos + 8 };
    if (type === 'IEND') return;
    pos = end;
  }
}

/** PNG colour type from IHDR (byte 9 of its data); 0 = gray, 2 = RGB, 3 = palette, 4 = gray+alpha, 6 = RGBA. */
function pngColorType(bytes: Uint8Array): number {
  for (const c of pngChunks(bytes)) {
    if (c.type === 'IHDR') return bytes[c.dataStart + 9] ?? -1;
    break;
  }
  throw new Error('missing IHDR chunk');
}

/** PNG sample bit depth from IHDR (byte 8 of its data): 1, 2, 4, 8 or 16. */
function pngBitDepth(bytes: Uint8Array): number {
  for (const c of pngChunks(bytes)) {
    if (c.type === 'IHDR') return bytes[c.dataStart + 8] ?? -1;
    break;
  }
  throw new Error('missing IHDR chunk');
}

function pngIsGray(bytes: Uint8Array): boolean {
  const t = pngColorType(bytes);
  return t === 0 || t === 4;
}

/**
 * A copy of the PNG without its tRNS chunk: pngjs zeroes the colour of colour-keyed transparent pixels, whereas we
 * drop alpha and keep the stored colours.
 */
function withoutTrns(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  let found = false;
  for (const c of pngChunks(bytes)) {
    if (c.type === 'tRNS') found = true;
    else parts.push(bytes.subarray(c.start, c.end));
  }
  if (!found) return bytes;
  return Buffer.concat(parts);
}

function decodePngJs(bytes: Uint8Array): Image {
  const colorType = pngColorType(bytes);
  const buf = withoutTrns(bytes);
  const input = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const png = pngjs.PNG.sync.read(input, { skipRescale: true });
  // data is RGBA; 16-bit images come back as 16-bit samples (skipRescale), low bit depths are already scaled to 8
  const depth = png.depth;
  const rgba = png.data as unknown as ArrayLike<number>;
  const gray = colorType === 0 || colorType === 4;
  const channels: 1 | 3 = gray ? 1 : 3;
  const n = png.width * png.height;
  const pixels = new Uint8Array(n * channels);
  if (depth === 16) {
    for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) pixels[i * channels + c] = rgba[i * 4 + c]! >>> 8;
  } else if (depth === 8 || colorType === 3) {
    for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) pixels[i * channels + c] = rgba[i * 4 + c]!;
  } else {
    // gray at 1/2/4 bits: with skipRescale pngjs leaves the raw sample; scale v·255/(2^depth−1) (exact: 255, 85, 17)
    const mul = 255 / (2 ** depth - 1);
    for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) pixels[i * channels + c] = rgba[i * 4 + c]! * mul;
  }
  return { width: png.width, height: png.height, channels, pixels };
}

// ---- JPEG (jpeg-js) ----

/** Number of colour components from the first SOF marker of a JPEG; 0 when none is found. */
export function jpegComponents(bytes: Uint8Array): number {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) return 0;
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      pos += 2;
      continue;
    }
    const len = (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    // SOF segment: length(2) precision(1) height(2) width(2) components(1)
    if (isSof) return bytes[pos + 9] ?? 0;
    if (marker === 0xda || marker === 0xd9) return 0; // start of scan / end before any SOF
    pos += 2 + len;
  }
  return 0;
}

function decodeJpegJs(bytes: Uint8Array): Image {
  const components = jpegComponents(bytes);
  const img = jpegJs.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
  const n = img.width * img.height;
  if (components === 1) {
    const pixels = new Uint8Array(n);
    for (let i = 0; i < n; i++) pixels[i] = img.data[i * 3]!;
    return { width: img.width, height: img.height, channels: 1, pixels };
  }
  return { width: img.width, height: img.height, channels: 3, pixels: img.data };
}

// ---------------------------------------------------------------------------------------------------------------
// encoding

/** Encodes an image as an 8-bit PNG (gray for 1 channel, RGB for 3) with pngjs. */
export function encodePng(img: Image): Uint8Array {
  const { width, height, channels, pixels } = img;
  if (channels !== 1 && channels !== 3) throw new Error(`encodePng: channels must be 1 or 3, got ${channels}`);
  if (pixels.length !== width * height * channels) {
    throw new Error(`encodePng: ${pixels.length} bytes do not match ${width}×${height}×${channels}`);
  }
  const input = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const out = pngjs.PNG.sync.write(
    Object.assign(new pngjs.PNG({ width, height }), { data: input }),
    channels === 1
      ? { colorType: 0, inputColorType: 0, inputHasAlpha: false }
      : { colorType: 2, inputColorType: 2, inputHasAlpha: false },
  );
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Encodes an image as a baseline JPEG with jpeg-js (quality 1..100); grayscale is written as RGB. For fixtures. */
export function encodeJpeg(img: Image, quality = 90): Uint8Array {
  const { width, height, channels, pixels } = img;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = pixels[i * channels + (channels === 1 ? 0 : c)]!;
    rgba[i * 4 + 3] = 255;
  }
  const out = jpegJs.encode({ width, height, data: rgba }, quality);
  return new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
}
