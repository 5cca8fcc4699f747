/**
 * The fixed class split of pretraining.
 *
 * Classes are ordered by their SORTED class ids (Tiny ImageNet: the 200 WordNet ids `n01443537`, …, sorted as
 * strings, which is also the loader's label order; other datasets: `extras.classIds` when the loader gives them,
 * else the class names). Then:
 * - `even`: positions 0, 2, 4, … (Tiny ImageNet: 100 "base" classes, used to pretrain moeclip-tiny);
 * - `odd`:  positions 1, 3, 5, … (Tiny ImageNet: the 100 held-out classes, never seen in pretraining);
 * - `all`:  every class.
 */
import type { Dataset } from '../data/types.ts';
import type { DatasetExtras } from '../data/dataset.ts';
import type { ClassSubset } from './config.ts';

/** The dataset's extras (class ids, synonyms), if its implementation carries them. */
export function datasetExtras(ds: Dataset): DatasetExtras {
  return (ds as { extras?: DatasetExtras }).extras ?? {};
}

/** The id of each class (label order): `extras.classIds`, else the class names. */
export function classIdsOf(ds: Dataset): readonly string[] {
  const ids = datasetExtras(ds).classIds;
  return ids && ids.length === ds.classNames.length ? ids : ds.classNames;
}

/**
 * The labels (ascending) of the classes in `subset`, chosen by position in the sorted class ids (see the module
 * doc). Works on any list of ids; ties (equal ids) keep label order.
 */
export function selectClassLabels(classIds: readonly string[], subset: ClassSubset): number[] {
  const order = classIds.map((id, label) => ({ id, label })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.label - b.label));
  const picked = order.filter((_, pos) => subset === 'all' || (subset === 'even' ? pos % 2 === 0 : pos % 2 === 1));
  return picked.map((p) => p.label).sort((a, b) => a - b);
}

/** {@link selectClassLabels} for a dataset's classes. */
export function classSubsetOf(ds: Dataset, subset: ClassSubset): number[] {
  return selectClassLabels(classIdsOf(ds), subset);
}

/** Indices (ascending) of the samples whose label is in `labels`. */
export function samplesOfClasses(ds: Dataset, labels: readonly number[]): Int32Array {
  const keep = new Uint8Array(ds.classNames.length);
  for (const y of labels) keep[y] = 1;
  const out: number[] = [];
  for (let i = 0; i < ds.length; i++) if (keep[ds.labels[i]!]) out.push(i);
  return Int32Array.from(out);
}

/**
 * The names a caption may use for each class (label order): every synonym the dataset lists
 * (`extras.classSynonyms`, e.g. Tiny ImageNet's comma-separated WordNet names) when `synonyms`, else the
 * display name only. Empty names are dropped; duplicates removed.
 */
export function classNameChoices(ds: Dataset, synonyms: boolean): string[][] {
  const syn = datasetExtras(ds).classSynonyms;
  return ds.classNames.map((name, y) => {
    const list = synonyms && syn && syn[y] && syn[y].length > 0 ? syn[y] : [name];
    const uniq = [...new Set(list.map((s) => s.trim()).filter(Boolean))];
    return uniq.length > 0 ? uniq : [name];
  });
}
