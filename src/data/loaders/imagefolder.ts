/**
 * ImageFolder layout: `<root>/<split>/<class>/**\/*.{jpg,jpeg,png}` (or `<root>/<class>/…` for split `all`).
 * Classes are the sub-folders sorted by name (hidden entries skipped); files are found recursively and sorted.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { underscoresToSpaces } from '../catalog.ts';
import type { Dataset } from '../types.ts';
import type { LoadContext } from './common.ts';
import { loadFileDataset, type FileList } from './files.ts';

const IMAGE_EXT = /\.(jpe?g|png)$/i;

/** Image files under `dir`, recursively, in sorted order. */
export function listImages(dir: string): string[] {
  const out: string[] = [];
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listImages(p));
    else if (IMAGE_EXT.test(e.name)) out.push(p);
  }
  return out;
}

/** The class folders and samples of an ImageFolder directory. */
export function scanImageFolder(dir: string): { classIds: string[]; list: FileList } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder`);
  const classIds = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (classIds.length === 0) throw new Error(`${dir}: no class sub-folders (expected <class>/<image files>)`);
  const files: string[] = [];
  const labels: number[] = [];
  classIds.forEach((c, y) => {
    for (const f of listImages(join(dir, c))) {
      files.push(f);
      labels.push(y);
    }
  });
  return { classIds, list: { files, labels: Int32Array.from(labels) } };
}

/** The split folder: `<root>/<split>` when it exists; `<root>` itself for split `all`. */
export function splitFolder(root: string, split: string): string {
  const sub = join(root, split);
  if (existsSync(sub) && statSync(sub).isDirectory()) return sub;
  if (split === 'all') return root;
  throw new Error(`${root}: no "${split}" folder (ImageFolder layout <root>/${split}/<class>/<images>)`);
}

/**
 * Loads an ImageFolder split. Display names: the registry's list when it has one (matched by position to the
 * sorted folders; the counts must agree), else the folder names with "_" → space.
 */
export async function loadImageFolder(ctx: LoadContext): Promise<Dataset> {
  const dir = splitFolder(ctx.root, ctx.split);
  const { classIds, list } = scanImageFolder(dir);
  let classNames: readonly string[];
  if (ctx.classNames.length > 0) {
    if (ctx.classNames.length !== classIds.length) {
      throw new Error(
        `${dir}: found ${classIds.length} class folders but dataset "${ctx.name}" has ${ctx.classNames.length} classes`,
      );
    }
    classNames = ctx.classNames;
  } else {
    classNames = classIds.map(underscoresToSpaces);
  }
  return loadFileDataset(ctx, ctx.root, list, classNames, { source: dir, classIds });
}
