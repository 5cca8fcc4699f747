/**
 * Text–text pairs of pretraining, from WordNet noun synsets: per synset, view `a` is one of its names in a
 * template ("a photo of a truck.") and view `b` describes it without that name — either a description
 * `a kind of ${h}, ${definition}` (h a name of an ancestor at most `depth` levels up; the definition alone for a
 * root) or, with probability `synonym`, another of its names in a template. The text–text term of the loss
 * (loss.ts) matches each `a` to its `b` among the N pairs of a step, so names that never caption an image get
 * token embeddings tied to words that do.
 *
 * Synsets: the `seeds` (e.g. every Tiny ImageNet class, the CIFAR-10 and MNIST class names), optionally all their
 * ancestors, and a seeded sample of `others` further synsets drawn from WordNet's tagged senses (common words),
 * optionally only below given synsets (e.g. `n00001930` physical entity: concrete things).
 * Pairs are drawn epoch by epoch over a fresh permutation of the synsets (like the image batches), with a saveable
 * state.
 */
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { WordNet } from '../data/wordnet.ts';
import { Rng, type RngState } from '../util/rng.ts';
import { fillCaption, type ClassText } from './captions.ts';
import { fnv1a } from '../data/cache.ts';
import type { CompactVocab } from './vocab.ts';

/** One synset's texts. */
export interface TextPairItem {
  wnid: string;
  /** Names for view `a` (and synonym views `b`). */
  names: string[];
  /** Templates with `{}` for the names. */
  templates: string[];
  /** Descriptions for view `b` (never empty). */
  descriptions: string[];
}

/** A synset that must be in the set, with extra names and templates (e.g. a dataset's class name). */
export interface TextPairSeed {
  wnid: string;
  names?: readonly string[];
  templates?: readonly string[];
}

export interface TextPairSetOptions {
  seeds: readonly TextPairSeed[];
  /** Add every ancestor of the seeds. */
  ancestors: boolean;
  /** Number of further synsets, sampled from the tagged senses (seeded). */
  others: number;
  /** When non-empty, the further synsets are drawn only among descendants of these wnids. */
  othersUnder?: readonly string[];
  seed: number;
  /** Ancestor levels named in descriptions. */
  depth: number;
  /** Templates of every synset's names. */
  templates: readonly string[];
}

/** The WordNet text of a synset for captions: ancestor names per level (≤ depth) and its definition. */
export function synsetText(wn: WordNet, wnid: string, depth: number): ClassText {
  const levels = wn.ancestorLevels(wnid, depth).map((l) => [...new Set(l.flatMap((w) => wn.names(w)))]);
  const d = wn.definition(wnid);
  return { hypernyms: levels, definition: d.length > 0 ? d : null };
}

/** The descriptions of a synset (see the module doc). */
export function describeSynset(wn: WordNet, wnid: string, depth: number): string[] {
  const { hypernyms, definition } = synsetText(wn, wnid, depth);
  const hs = [...new Set(hypernyms.flat())];
  if (hs.length === 0) return definition ? [definition] : [];
  return hs.map((h) => (definition ? `a kind of ${h}, ${definition}` : `a kind of ${h}`));
}

/** The synsets of a run with their texts, sorted by wnid (see the module doc). */
export function textPairItems(wn: WordNet, opts: TextPairSetOptions): TextPairItem[] {
  if (opts.templates.length === 0) throw new Error('textText.templates: no templates');
  const extra = new Map<string, { names: Set<string>; templates: Set<string> }>();
  for (const s of opts.seeds) {
    wn.synset(s.wnid);
    const e = extra.get(s.wnid) ?? { names: new Set<string>(), templates: new Set<string>() };
    for (const n of s.names ?? []) if (n.trim()) e.names.add(n.trim());
    for (const t of s.templates ?? []) e.templates.add(t);
    extra.set(s.wnid, e);
  }
  const chosen = new Set(extra.keys());
  if (opts.ancestors) for (const w of [...chosen]) for (const a of wn.ancestorLevels(w).flat()) chosen.add(a);
  if (opts.others > 0) {
    const under = new Set(opts.othersUnder ?? []);
    for (const w of under) wn.synset(w);
    const pool = wn
      .taggedSynsets()
      .filter((w) => !chosen.has(w) && (under.size === 0 || wn.ancestorLevels(w).some((l) => l.some((a) => under.has(a)))));
    new Rng(opts.seed).shuffle(pool);
    for (const w of pool.slice(0, opts.others)) chosen.add(w);
  }
  const items: TextPairItem[] = [];
  for (const wnid of [...chosen].sort()) {
    const e = extra.get(wnid);
    const names = [...new Set([...wn.names(wnid), ...(e?.names ?? [])])];
    const templates = [...new Set([...opts.templates, ...(e?.templates ?? [])])];
    const descriptions = describeSynset(wn, wnid, opts.depth);
    if (descriptions.length > 0) items.push({ wnid, names, templates, descriptions });
  }
  return items;
}

/** Every text a pair of `items` can hold (views a and b). */
export function* allPairTexts(items: readonly TextPairItem[]): Generator<string> {
  for (const it of items) {
    for (const n of it.names) for (const t of it.templates) yield fillCaption(t, n);
    yield* it.descriptions;
  }
}

/** N pairs, tokenised as compact ids [2N, T] (the `a` rows, then the `b` rows), with targets [N, N]. */
export interface TextPairBatch {
  wnids: string[];
  a: string[];
  b: string[];
  ids: BigInt64Array;
  idsDims: [number, number];
  /** targets[i·N + j] = 1 iff i = j, or a_i = a_j, or b_i = b_j (interchangeable pairs) */
  targets: Float32Array;
}

/** Everything needed to continue the pair stream exactly. */
export interface TextPairState {
  orderRng: RngState;
  epoch: number;
  position: number;
  drawRng: RngState;
  items: number;
  /** A hash of the items' texts (a resumed run must use the same set). */
  itemsHash: number;
}

/** FNV-1a of the items' texts. */
export function hashItems(items: readonly TextPairItem[]): number {
  return fnv1a(JSON.stringify(items.map((it) => [it.wnid, it.names, it.templates, it.descriptions])));
}

export class TextPairSampler {
  private readonly order: Rng;
  private readonly draw: Rng;
  private readonly hash: number;
  private epochStart: RngState;
  private perm: number[];
  private epoch = 0;
  private position = 0;

  /**
   * @param items the synsets (at least `pairs`)
   * @param pairs N, pairs per batch
   * @param synonym probability that view b is another name of the synset (when it has one)
   * @param rngs the order and draw generators
   */
  constructor(
    readonly items: readonly TextPairItem[],
    readonly pairs: number,
    readonly synonym: number,
    rngs: { order: Rng; draw: Rng },
  ) {
    if (!Number.isInteger(pairs) || pairs < 2) throw new Error(`textText.batchSize: expected an integer ≥ 2, got ${pairs}`);
    if (items.length < pairs) throw new Error(`textText: ${items.length} synsets, fewer than the ${pairs} pairs of a batch`);
    if (!(synonym >= 0 && synonym <= 1)) throw new Error(`textText.synonym: expected a probability in [0, 1], got ${synonym}`);
    this.order = rngs.order;
    this.draw = rngs.draw;
    this.hash = hashItems(items);
    this.epochStart = this.order.getState();
    this.perm = this.order.permutation(items.length);
  }

  state(): TextPairState {
    return {
      orderRng: this.epochStart,
      epoch: this.epoch,
      position: this.position,
      drawRng: this.draw.getState(),
      items: this.items.length,
      itemsHash: this.hash,
    };
  }

  restore(s: TextPairState, where = 'text pair state'): void {
    if (s.items !== this.items.length || s.itemsHash !== this.hash) {
      throw new Error(`${where}: the checkpoint was made with other text pairs (${s.items} synsets, hash ${s.itemsHash}; now ${this.items.length}, hash ${this.hash})`);
    }
    if (!Number.isInteger(s.position) || s.position < 0 || s.position > this.items.length) throw new Error(`${where}.position: out of range`);
    this.order.setState(s.orderRng);
    this.epochStart = this.order.getState();
    this.perm = this.order.permutation(this.items.length);
    this.epoch = s.epoch;
    this.position = s.position;
    this.draw.setState(s.drawRng);
  }

  private nextItem(): TextPairItem {
    if (this.position >= this.items.length) {
      this.epoch++;
      this.position = 0;
      this.epochStart = this.order.getState();
      this.perm = this.order.permutation(this.items.length);
    }
    return this.items[this.perm[this.position++]!]!;
  }

  /** The texts of one pair (draws: name, template, then the kind of b and its choice). */
  samplePair(it: TextPairItem): { a: string; b: string } {
    const r = this.draw;
    const ni = r.int(it.names.length);
    const a = fillCaption(it.templates[r.int(it.templates.length)]!, it.names[ni]!);
    if (it.names.length > 1 && r.float() < this.synonym) {
      let nj = r.int(it.names.length - 1);
      if (nj >= ni) nj++;
      return { a, b: fillCaption(it.templates[r.int(it.templates.length)]!, it.names[nj]!) };
    }
    return { a, b: it.descriptions[r.int(it.descriptions.length)]! };
  }

  /** The next N pairs (N distinct synsets unless an epoch boundary repeats one), tokenised. */
  next(tokenizer: ClipTokenizer, vocab: CompactVocab, contextLength: number): TextPairBatch {
    const N = this.pairs;
    const wnids: string[] = [];
    const a: string[] = [];
    const b: string[] = [];
    for (let i = 0; i < N; i++) {
      const it = this.nextItem();
      const p = this.samplePair(it);
      wnids.push(it.wnid);
      a.push(p.a);
      b.push(p.b);
    }
    const targets = new Float32Array(N * N);
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) if (i === j || a[i] === a[j] || b[i] === b[j] || wnids[i] === wnids[j]) targets[i * N + j] = 1;
    }
    const texts = [...a, ...b];
    const { ids, lengths } = tokenizer.tokenize(texts, contextLength);
    const T = Math.max(...lengths);
    const trimmed = new Int32Array(2 * N * T);
    for (let r = 0; r < 2 * N; r++) trimmed.set(ids.subarray(r * contextLength, r * contextLength + T), r * T);
    return { wnids, a, b, ids: vocab.compactRows(trimmed, 2 * N, T, lengths), idsDims: [2 * N, T], targets };
  }
}
