/**
 * scikit-learn's digits (UCI optdigits test set): `digits.csv.gz`, 1,797 rows of 64 values 0–16 (an 8×8
 * image, row-major) and the label. Pixels are scaled to bytes as round(v·255/16).
 * There is no official split; `train`/`test` is the deterministic stratified 80/20 split of
 * `stratifiedSplit` (first 80 % of each class in file order are train), `all` is everything.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../types.ts';
import { stratifiedSplitOfTable, type LoadContext } from './common.ts';
import { readMaybeGzip } from './idx.ts';

/** Parses the digits CSV text into an 8×8×1 table; errors name the file and line. */
export function parseDigitsCsv(text: string, file: string): { labels: Int32Array; pixels: Uint8Array } {
  const rows = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  const labels = new Int32Array(rows.length);
  const pixels = new Uint8Array(rows.length * 64);
  rows.forEach((row, r) => {
    const v = row.split(',').map((s) => Number(s.trim()));
    if (v.length !== 65) throw new Error(`${file}:${r + 1}: expected 65 comma-separated values (64 pixels + label), got ${v.length}`);
    for (let k = 0; k < 64; k++) {
      const x = v[k]!;
      if (!Number.isInteger(x) || x < 0 || x > 16) throw new Error(`${file}:${r + 1}: pixel ${k} is ${x}, expected an integer 0..16`);
      pixels[r * 64 + k] = Math.round((x * 255) / 16);
    }
    const y = v[64]!;
    if (!Number.isInteger(y) || y < 0 || y > 9) throw new Error(`${file}:${r + 1}: label ${y} is not 0..9`);
    labels[r] = y;
  });
  return { labels, pixels };
}

/** Registry loader for `digits` (splits `train`, `test`, `all`); `root` is the csv(.gz) file or its folder. */
export async function loadDigits(ctx: LoadContext): Promise<Dataset> {
  let file = ctx.root;
  if (existsSync(file) && statSync(file).isDirectory()) {
    const candidates = ['digits.csv.gz', 'digits.csv'].map((f) => join(ctx.root, f));
    const found = candidates.find((f) => existsSync(f));
    if (!found) throw new Error(`${ctx.root}: no digits.csv.gz or digits.csv`);
    file = found;
  }
  const { labels, pixels } = parseDigitsCsv(Buffer.from(readMaybeGzip(file)).toString('utf8'), file);
  return stratifiedSplitOfTable(ctx, { count: labels.length, height: 8, width: 8, channels: 1, labels, pixels }, file);
}
