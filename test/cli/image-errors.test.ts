/**
 * A truncated JPEG is reported once, on one line, naming the file (libvips repeats libjpeg's messages).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { tinyClipConfig } from '../../src/clip/config.ts';
import { writeRandomClip } from '../../src/clip/random.ts';
import { bundledBpePath } from '../../src/clip/tokenizer.ts';
import { decodeImageFile } from '../../src/data/decode.ts';
import { decoderMessage, encodeJpeg } from '../../src/io/image.ts';
import { Rng } from '../../src/util/rng.ts';

const root = mkdtempSync(join(tmpdir(), 'moeclip-image-errors-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A 64×64 JPEG cut inside its Huffman tables, where libvips reports the header error and repeats libjpeg's. */
function truncatedJpeg(): Uint8Array {
  const r = new Rng(4);
  const jpg = encodeJpeg({ width: 64, height: 64, channels: 3, pixels: Uint8Array.from({ length: 64 * 64 * 3 }, () => r.int(256)) });
  return jpg.subarray(0, 200);
}

test('decoderMessage: libvips\' repeated lines become each part once, on one line', () => {
  const vips =
    'Input buffer has corrupt header: VipsJpeg: premature end of JPEG image\nVipsJpeg: JPEG datastream contains no image\n' +
    'VipsJpeg: premature end of JPEG image\nVipsJpeg: JPEG datastream contains no image\nVipsJpeg: premature end of JPEG image';
  assert.equal(
    decoderMessage(new Error(vips)),
    'Input buffer has corrupt header; premature end of JPEG image; JPEG datastream contains no image; the file looks truncated',
  );
  assert.equal(decoderMessage(new Error('marker was not found')), 'marker was not found');
  assert.equal(decoderMessage('plain'), 'plain');
});

test('moeclip encode on a truncated JPEG: one line naming the file, no part repeated', async () => {
  const model = join(root, 'model');
  writeRandomClip(model, tinyClipConfig(), { layout: 'open_clip', seed: 2, bpePath: bundledBpePath() });
  const img = join(root, 'cut.jpg');
  writeFileSync(img, truncatedJpeg());
  let err = '';
  const io: CliIO = { stdout: () => {}, stderr: (t) => void (err += t), isTTY: false, env: {} };
  assert.equal(await main(['encode', '--model', model, '--image', img, '--threads', '1'], io), 1);
  assert.equal(err.split('\n').length, 2, err); // one line + the final newline
  const m = /^moeclip encode: image (.*): cannot decode JPEG \((.*)\)\n$/.exec(err);
  assert.ok(m, err);
  assert.equal(m[1], img);
  const parts = m[2]!.split('; ');
  assert.equal(new Set(parts).size, parts.length, `repeated part in: ${m[2]}`);
  assert.ok(!/Vips/.test(err), err);
});

test('the dataset decoder (jpeg-js) names the file once too', () => {
  assert.throws(
    () => decodeImageFile(truncatedJpeg(), '/data/x/cut.jpg'),
    (e: unknown) => /^\/data\/x\/cut\.jpg: cannot decode JPEG: [^\n]+$/.test((e as Error).message),
  );
});
