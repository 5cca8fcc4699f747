import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import {
  decodeImage,
  decodeImageSync,
  readImage,
  encodePng,
  encodeJpeg,
  detectImageFormat,
  defaultImageBackend,
  jpegComponents,
  type Image,
} from '../../src/io/image.ts';
import { Rng } from '../../src/util/rng.ts';

const BACKENDS = ['sharp', 'js'] as const;

/** sharp is an optional dependency but installed in this project; the cross-backend tests need it. */
async function requireSharp(): Promise<void> {
  assert.equal(await defaultImageBackend(), 'sharp', 'sharp (optional dependency) must be installed for these tests');
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * A minimal PNG writer independent of the code under test: IHDR, optional extra chunks (PLTE, tRNS), one IDAT
 * with filter type 0 on every row, IEND. `rows` holds the packed samples of each row (without filter bytes).
 */
function makePng(width: number, height: number, colorType: number, bitDepth: number, rows: Uint8Array[], extra: Uint8Array[] = []): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const raw: number[] = [];
  for (const r of rows) raw.push(0, ...r);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...extra,
    chunk('IDAT', deflateSync(new Uint8Array(raw))),
    chunk('IEND', new Uint8Array(0)),
  ];
  return Buffer.concat(parts);
}

function randomImage(width: number, height: number, channels: 1 | 3, seed: number): Image {
  const rng = new Rng(seed);
  const pixels = new Uint8Array(width * height * channels);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
  return { width, height, channels, pixels };
}

/** A smooth image (gradients) that JPEG reproduces closely. */
function smoothImage(width: number, height: number): Image {
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = Math.round((255 * x) / (width - 1));
      pixels[i + 1] = Math.round((255 * y) / (height - 1));
      pixels[i + 2] = Math.round(128 + 100 * Math.sin((x + y) / 6));
    }
  }
  return { width, height, channels: 3, pixels };
}

test('format detection by magic bytes', () => {
  assert.equal(detectImageFormat(encodePng(randomImage(2, 2, 3, 1))), 'png');
  assert.equal(detectImageFormat(encodeJpeg(randomImage(2, 2, 3, 1))), 'jpeg');
  assert.equal(detectImageFormat(new TextEncoder().encode('GIF89a....')), null);
  assert.equal(detectImageFormat(new Uint8Array(0)), null);
  assert.throws(() => decodeImageSync(new TextEncoder().encode('GIF89a'), 'x.gif'), /image x\.gif: unknown image format \(expected PNG or JPEG; first bytes: 47 49 46 38 39 61\)/);
});

test('encodePng round trip, both backends identical (RGB and gray)', async () => {
  await requireSharp();
  for (const img of [randomImage(7, 5, 3, 11), randomImage(9, 4, 1, 12), randomImage(1, 1, 3, 13)]) {
    const png = encodePng(img);
    for (const backend of BACKENDS) {
      const d = await decodeImage(png, 'rt.png', { backend });
      assert.equal(d.width, img.width);
      assert.equal(d.height, img.height);
      assert.equal(d.channels, img.channels, backend);
      assert.deepEqual(d.pixels, img.pixels, backend);
    }
  }
});

test('hand-built PNGs: RGBA, colour key, palette, 16-bit, 1-bit gray, gray+alpha — same pixels on both backends', async () => {
  await requireSharp();
  const cases: Array<{ name: string; png: Uint8Array; channels: 1 | 3; pixels: number[] }> = [
    {
      // RGBA: alpha dropped, colours kept even under alpha 0
      name: 'rgba',
      png: makePng(2, 1, 6, 8, [new Uint8Array([10, 20, 30, 0, 200, 100, 50, 128])]),
      channels: 3,
      pixels: [10, 20, 30, 200, 100, 50],
    },
    {
      // RGB with a tRNS colour key matching the first pixel: its colour is kept
      name: 'rgb+tRNS',
      png: makePng(2, 1, 2, 8, [new Uint8Array([1, 2, 3, 4, 5, 6])], [chunk('tRNS', new Uint8Array([0, 1, 0, 2, 0, 3]))]),
      channels: 3,
      pixels: [1, 2, 3, 4, 5, 6],
    },
    {
      // 2-bit palette: indices 0,1,2,3 packed in one byte 0b00_01_10_11 = 0x1B; second row 3,2 → 0b11_10_0000 = 0xE0
      name: 'palette',
      png: makePng(
        4,
        2,
        3,
        2,
        [new Uint8Array([0x1b]), new Uint8Array([0xe0])],
        [chunk('PLTE', new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7])), chunk('tRNS', new Uint8Array([0, 255]))],
      ),
      channels: 3,
      pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7, 9, 8, 7, 0, 0, 255, 255, 0, 0, 255, 0, 0],
    },
    {
      // 16-bit RGB big-endian samples: 0x1234 0xFFFF 0x00FF | 0x8080 0x7FFF 0x0100 → high bytes
      name: 'rgb16',
      png: makePng(2, 1, 2, 16, [new Uint8Array([0x12, 0x34, 0xff, 0xff, 0x00, 0xff, 0x80, 0x80, 0x7f, 0xff, 0x01, 0x00])]),
      channels: 3,
      pixels: [0x12, 0xff, 0x00, 0x80, 0x7f, 0x01],
    },
    {
      // 1-bit gray: 0b10110000 for 4 pixels → 1,0,1,1 → 255,0,255,255
      name: 'gray1',
      png: makePng(4, 1, 0, 1, [new Uint8Array([0xb0])]),
      channels: 1,
      pixels: [255, 0, 255, 255],
    },
    {
      // 4-bit gray: 0x3F → 3·17 = 51, 15·17 = 255
      name: 'gray4',
      png: makePng(2, 1, 0, 4, [new Uint8Array([0x3f])]),
      channels: 1,
      pixels: [51, 255],
    },
    {
      // 16-bit gray: 0xABCD, 0x01FF → high bytes
      name: 'gray16',
      png: makePng(2, 1, 0, 16, [new Uint8Array([0xab, 0xcd, 0x01, 0xff])]),
      channels: 1,
      pixels: [0xab, 0x01],
    },
    {
      name: 'gray+alpha',
      png: makePng(3, 1, 4, 8, [new Uint8Array([7, 0, 100, 255, 250, 3])]),
      channels: 1,
      pixels: [7, 100, 250],
    },
  ];
  for (const c of cases) {
    for (const backend of BACKENDS) {
      const d = await decodeImage(c.png, `${c.name}.png`, { backend });
      assert.equal(d.channels, c.channels, `${c.name} ${backend}`);
      assert.deepEqual(Array.from(d.pixels), c.pixels, `${c.name} ${backend}`);
    }
    assert.deepEqual(Array.from(decodeImageSync(c.png, `${c.name}.png`).pixels), c.pixels, `${c.name} sync`);
  }
});

test('JPEG: both backends nearly the same, and close to the source on a smooth image', async () => {
  await requireSharp();
  const src = smoothImage(40, 24);
  const jpg = encodeJpeg(src, 95);
  assert.equal(jpegComponents(jpg), 3);
  const a = await decodeImage(jpg, 'smooth.jpg', { backend: 'sharp' });
  const b = await decodeImage(jpg, 'smooth.jpg', { backend: 'js' });
  assert.deepEqual(decodeImageSync(jpg, 'smooth.jpg'), b);
  assert.equal(a.channels, 3);
  assert.equal(b.channels, 3);
  assert.equal(a.width, 40);
  assert.equal(b.height, 24);
  let maxAB = 0;
  let sumAB = 0;
  let sumSrc = 0;
  for (let i = 0; i < a.pixels.length; i++) {
    const d = Math.abs(a.pixels[i]! - b.pixels[i]!);
    maxAB = Math.max(maxAB, d);
    sumAB += d;
    sumSrc += Math.abs(b.pixels[i]! - src.pixels[i]!);
  }
  assert.ok(maxAB <= 8, `max backend difference ${maxAB}`);
  assert.ok(sumAB / a.pixels.length <= 1.5, `mean backend difference ${sumAB / a.pixels.length}`);
  assert.ok(sumSrc / a.pixels.length <= 3, `mean difference to the source ${sumSrc / a.pixels.length}`);
});

test('grayscale JPEG decodes to one channel on both backends', async () => {
  await requireSharp();
  const sharpName = 'sharp'; // optional dependency, checked above
  const sharp = (await import(sharpName)).default;
  const w = 16;
  const h = 8;
  const gray = new Uint8Array(w * h);
  for (let i = 0; i < gray.length; i++) gray[i] = (i * 7) % 200 + 20;
  const jpg = new Uint8Array(await sharp(Buffer.from(gray), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 95 }).toBuffer());
  assert.equal(jpegComponents(jpg), 1);
  const a = await decodeImage(jpg, 'g.jpg', { backend: 'sharp' });
  const b = await decodeImage(jpg, 'g.jpg', { backend: 'js' });
  assert.equal(a.channels, 1);
  assert.equal(b.channels, 1);
  let max = 0;
  for (let i = 0; i < a.pixels.length; i++) max = Math.max(max, Math.abs(a.pixels[i]! - b.pixels[i]!));
  assert.ok(max <= 4, `max backend difference ${max}`);
});

test('readImage from files, and errors naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'img-'));
  try {
    const img = randomImage(3, 2, 3, 5);
    const p = join(dir, 'a.png');
    writeFileSync(p, encodePng(img));
    assert.deepEqual((await readImage(p)).pixels, img.pixels);

    const bad = join(dir, 'notes.png');
    writeFileSync(bad, 'hello world');
    await assert.rejects(readImage(bad), (e: Error) => e.message.includes(bad) && /unknown image format/.test(e.message));
    await assert.rejects(readImage(join(dir, 'missing.jpg')), (e: Error) => e.message.includes('missing.jpg') && /cannot read file/.test(e.message));

    const png = encodePng(randomImage(20, 20, 3, 6));
    const trunc = join(dir, 'trunc.png');
    writeFileSync(trunc, png.subarray(0, 60));
    for (const backend of BACKENDS) {
      await assert.rejects(readImage(trunc, { backend }), (e: Error) => e.message.includes(trunc) && /cannot decode PNG/.test(e.message), backend);
    }
    const jpg = encodeJpeg(randomImage(20, 20, 3, 7));
    const corrupt = new Uint8Array(jpg.subarray(0, 30));
    for (const backend of BACKENDS) {
      await assert.rejects(decodeImage(corrupt, 'corrupt.jpg', { backend }), /image corrupt\.jpg: cannot decode JPEG/, backend);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encodePng validates its input', () => {
  assert.throws(() => encodePng({ width: 2, height: 2, channels: 3, pixels: new Uint8Array(5) }), /5 bytes do not match 2×2×3/);
});
