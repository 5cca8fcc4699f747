/**
 * The WordNet side of a pretraining run: which texts ground which classes.
 *
 * - Caption relatives: for each training class whose id is a WordNet noun wnid (Tiny ImageNet), the names of
 *   its ancestors up to `captions.hypernymDepth` levels and its definition. No held-out class name (a name of
 *   a dataset class outside the training subset, dataset synonyms and WordNet lemmas) ever captions an image:
 *   held-out ancestors and ancestor names equal to a held-out name are left out, and a definition that
 *   contains a held-out name as a phrase is not used.
 * - Text-pair synsets (`textText`): the dataset's classes of `trainClasses` by wnid (with their dataset
 *   synonyms as extra names), every class of the `datasets` (registry class names, looked up in index.noun,
 *   with the dataset's templates), their ancestors and the sampled others (text-pairs.ts).
 */
import { DATASETS, resolveDatasetName } from '../data/registry.ts';
import type { Dataset } from '../data/types.ts';
import type { WordNet } from '../data/wordnet.ts';
import type { ClassText } from './captions.ts';
import { classIdsOf, classNameChoices, classSubsetOf } from './classes.ts';
import type { ClassSubset, PretrainConfig } from './config.ts';
import { textPairItems, type TextPairItem, type TextPairSeed } from './text-pairs.ts';

/**
 * The synset of a class name: the most frequent sense of the first of these lemmas found in index.noun — the
 * whole name, then its parts split at " - " and "/" (MNIST's "7 - seven" → "7"), then its last word.
 */
export function synsetForName(wn: WordNet, name: string): string | null {
  const parts = name.split(/\s+-\s+|\//).map((s) => s.trim()).filter(Boolean);
  const words = name.trim().split(/\s+/);
  for (const c of [name, ...parts, words[words.length - 1]!]) {
    const e = wn.lookup(c);
    const w = e?.senses.find((s) => wn.has(s));
    if (w) return w;
  }
  return null;
}

/** Per class label of `ds`: its caption relatives (null for classes outside `labels` or not in WordNet). */
export function classRelatives(wn: WordNet, ds: Dataset, labels: readonly number[], depth: number): (ClassText | null)[] {
  const ids = classIdsOf(ds);
  const inSubset = new Set(labels);
  const heldOut = new Set(ids.filter((_, y) => !inSubset.has(y)));
  const synonyms = classNameChoices(ds, true);
  const heldOutNames = new Set<string>();
  ids.forEach((id, y) => {
    if (inSubset.has(y)) return;
    for (const n of [...synonyms[y]!, ...(wn.has(id) ? wn.names(id) : [])]) heldOutNames.add(n.toLowerCase());
  });
  const mentions = (text: string): boolean => {
    const t = ` ${text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ')} `;
    for (const n of heldOutNames) if (t.includes(` ${n.replace(/[^\p{L}\p{N}]+/gu, ' ').trim()} `)) return true;
    return false;
  };
  return ids.map((id, y) => {
    if (!inSubset.has(y) || !wn.has(id)) return null;
    const levels = wn
      .ancestorLevels(id, depth)
      .map((l) => [...new Set(l.filter((w) => !heldOut.has(w)).flatMap((w) => wn.names(w)))].filter((n) => !heldOutNames.has(n.toLowerCase())));
    const d = wn.definition(id);
    return { hypernyms: levels, definition: d.length > 0 && !mentions(d) ? d : null };
  });
}

/** The text-pair synsets of a run (see the module doc); errors name the config field. */
export function runTextPairItems(wn: WordNet, cfg: PretrainConfig, train: Dataset, templates: readonly string[]): TextPairItem[] {
  const tt = cfg.textText;
  if (!tt) return [];
  const seeds: TextPairSeed[] = [];
  if (tt.trainClasses !== 'none') {
    const ids = classIdsOf(train);
    const names = classNameChoices(train, true);
    for (const y of classSubsetOf(train, tt.trainClasses as ClassSubset)) {
      if (wn.has(ids[y]!)) seeds.push({ wnid: ids[y]!, names: names[y]! });
    }
  }
  for (const d of tt.datasets) {
    let key: string;
    try {
      key = resolveDatasetName(d);
    } catch (e) {
      throw new Error(`textText.datasets: ${(e as Error).message}`);
    }
    const info = DATASETS[key]!;
    if (info.classNames.length === 0) throw new Error(`textText.datasets: ${d} has no fixed class names`);
    for (const name of info.classNames) {
      const w = synsetForName(wn, name);
      if (!w) throw new Error(`textText.datasets: ${d}: class "${name}" is not a WordNet noun`);
      seeds.push({ wnid: w, names: [name], templates: info.templates });
    }
  }
  return textPairItems(wn, { seeds, ancestors: tt.ancestors, others: tt.others, othersUnder: tt.othersUnder, seed: cfg.seed, depth: tt.depth, templates: tt.templates ?? templates });
}

