/**
 * Tiny ImageNet (official layout):
 * ```
 * tiny-imagenet-200/wnids.txt                        200 WordNet ids
 * tiny-imagenet-200/words.txt                        wnid \t "name, synonym, …" (all of ImageNet)
 * tiny-imagenet-200/train/<wnid>/images/*.JPEG        500 per class
 * tiny-imagenet-200/val/images/val_N.JPEG            + val/val_annotations.txt: file \t wnid \t box
 * ```
 * Class order = sorted wnids. Display name = the first synonym; all synonyms are in `extras.classSynonyms`.
 * The test split has no labels: `test` is an alias of `val`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../types.ts';
import type { LoadContext } from './common.ts';
import { loadFileDataset } from './files.ts';
import { listImages } from './imagefolder.ts';

/** Sorted WordNet ids from wnids.txt. */
export function readWnids(root: string): string[] {
  const path = join(root, 'wnids.txt');
  if (!existsSync(path)) throw new Error(`${root}: no wnids.txt (is this the tiny-imagenet-200 folder?)`);
  const ids = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new Error(`${path}: no WordNet ids`);
  if (new Set(ids).size !== ids.length) throw new Error(`${path}: duplicate WordNet ids`);
  return ids.sort();
}

/** Synonym lists per wnid from words.txt (only the requested ids; a missing entry falls back to the id). */
export function readSynonyms(root: string, wnids: readonly string[]): string[][] {
  const path = join(root, 'words.txt');
  const want = new Set(wnids);
  const found = new Map<string, string[]>();
  if (existsSync(path)) {
    for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
      const tab = line.indexOf('\t');
      if (tab < 0) continue;
      const id = line.slice(0, tab).trim();
      if (!want.has(id)) continue;
      const names = line
        .slice(tab + 1)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (names.length > 0) found.set(id, names);
    }
  }
  return wnids.map((id) => found.get(id) ?? [id]);
}

/** Registry loader for `tiny-imagenet` (splits `train`, `val`). */
export async function loadTinyImageNet(ctx: LoadContext): Promise<Dataset> {
  const root = existsSync(join(ctx.root, 'wnids.txt')) ? ctx.root : join(ctx.root, 'tiny-imagenet-200');
  const wnids = readWnids(root);
  const index = new Map(wnids.map((id, i) => [id, i]));
  const synonyms = readSynonyms(root, wnids);
  const files: string[] = [];
  const labels: number[] = [];
  if (ctx.split === 'train') {
    wnids.forEach((id, y) => {
      const dir = join(root, 'train', id, 'images');
      if (!existsSync(dir)) throw new Error(`${dir}: missing (train images of class ${id})`);
      for (const f of listImages(dir)) {
        files.push(f);
        labels.push(y);
      }
    });
  } else {
    const ann = join(root, 'val', 'val_annotations.txt');
    if (!existsSync(ann)) throw new Error(`${root}: no val/val_annotations.txt`);
    readFileSync(ann, 'utf8')
      .split(/\r?\n/)
      .forEach((line, n) => {
        if (!line.trim()) return;
        const [file, id] = line.split('\t');
        const y = id === undefined ? undefined : index.get(id.trim());
        if (!file || y === undefined) throw new Error(`${ann}:${n + 1}: expected "file<TAB>wnid<TAB>box" with a wnid from wnids.txt`);
        files.push(join(root, 'val', 'images', file.trim()));
        labels.push(y);
      });
  }
  return loadFileDataset(ctx, root, { files, labels: Int32Array.from(labels) }, synonyms.map((s) => s[0]!), {
    source: root,
    classIds: wnids,
    classSynonyms: synonyms,
  });
}
