/**
 * Captions of pretraining: per class, a random name (one of its synonyms) in a random template, tokenised with
 * CLIP's BPE. With WordNet relatives of the classes (`ClassText`) and a `CaptionMix`, a caption may instead
 * name a hypernym or use the gloss, so that classes share words with their relatives:
 *
 *   name          fill(template, name)                          "a photo of a tabby."
 *   hypernym      fill(template, `${name}, a kind of ${h}`)      "a photo of a tabby, a kind of cat."
 *   hypernymOnly  fill(template, h)                              "a photo of a cat."
 *   gloss         fill(template, `${name}, ${definition}`)       "a photo of a tabby, a cat with a grey or …"
 *
 * h is a name of an ancestor at most `depth` levels up (a level first, then a name of it, both uniform). The set
 * of every caption that can be drawn, with any further texts of the run (text–text pairs), defines the compact
 * token table (vocab.ts).
 */
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { Rng } from '../util/rng.ts';
import { CompactVocab } from './vocab.ts';

/** Replaces every `{}` of a template with the class name. */
export function fillCaption(template: string, name: string): string {
  return template.replaceAll('{}', name);
}

/** WordNet text of a class: the names of its ancestors by level (1 = parents) and its definition. */
export interface ClassText {
  hypernyms: readonly (readonly string[])[];
  definition: string | null;
}

/** Probabilities of the caption kinds other than `name` (their sum must be ≤ 1). */
export interface CaptionMix {
  hypernym: number;
  hypernymOnly: number;
  gloss: number;
}

export type CaptionKind = 'name' | 'hypernym' | 'hypernymOnly' | 'gloss';

/** The text put into a template by a hypernym caption. */
export function hypernymPhrase(name: string, hypernym: string): string {
  return `${name}, a kind of ${hypernym}`;
}

/** The text put into a template by a gloss caption. */
export function glossPhrase(name: string, definition: string): string {
  return `${name}, ${definition}`;
}

export class CaptionSampler {
  private readonly relatives: readonly (ClassText | null)[];
  private readonly mix: CaptionMix | null;

  /**
   * @param names per class label: the names a caption may use (index = dataset label)
   * @param templates templates with `{}`
   * @param opts.relatives per class label: its WordNet text (null: name captions only)
   * @param opts.mix probabilities of the other caption kinds (absent or all 0: name captions only)
   */
  constructor(
    readonly names: readonly (readonly string[])[],
    readonly templates: readonly string[],
    opts: { relatives?: readonly (ClassText | null)[]; mix?: CaptionMix } = {},
  ) {
    if (templates.length === 0) throw new Error('captions: no templates');
    for (const t of templates) if (!t.includes('{}')) throw new Error(`captions: template ${JSON.stringify(t)} has no {} placeholder`);
    const m = opts.mix;
    if (m) {
      for (const k of ['hypernym', 'hypernymOnly', 'gloss'] as const) {
        if (!(m[k] >= 0 && m[k] <= 1)) throw new Error(`captions.${k}: expected a probability in [0, 1], got ${m[k]}`);
      }
      if (m.hypernym + m.hypernymOnly + m.gloss > 1 + 1e-12) throw new Error('captions: hypernym + hypernymOnly + gloss must be ≤ 1');
    }
    this.mix = m && m.hypernym + m.hypernymOnly + m.gloss > 0 ? m : null;
    this.relatives = opts.relatives ?? [];
  }

  /** The kind a uniform draw `u` ∈ [0, 1) selects for class `label` (`name` when the class lacks the text). */
  kindOf(label: number, u: number): CaptionKind {
    const m = this.mix;
    if (!m) return 'name';
    const rel = this.relatives[label] ?? null;
    const hasH = rel !== null && rel.hypernyms.some((l) => l.length > 0);
    let kind: CaptionKind = 'name';
    if (u < m.hypernym) kind = 'hypernym';
    else if (u < m.hypernym + m.hypernymOnly) kind = 'hypernymOnly';
    else if (u < m.hypernym + m.hypernymOnly + m.gloss) kind = 'gloss';
    if ((kind === 'hypernym' || kind === 'hypernymOnly') && !hasH) return 'name';
    if (kind === 'gloss' && !rel?.definition) return 'name';
    return kind;
  }

  /**
   * One caption for class `label`. Name captions only: a uniform synonym, then a uniform template (two draws).
   * With a mix: first the kind (one float), then synonym and template, then for hypernym kinds the level and
   * the name within it.
   */
  sample(label: number, rng: Rng): string {
    const list = this.names[label];
    if (!list || list.length === 0) throw new Error(`captions: no name for class ${label}`);
    const kind = this.mix ? this.kindOf(label, rng.float()) : 'name';
    const name = list[rng.int(list.length)]!;
    const template = this.templates[rng.int(this.templates.length)]!;
    if (kind === 'name') return fillCaption(template, name);
    const rel = this.relatives[label]!;
    if (kind === 'gloss') return fillCaption(template, glossPhrase(name, rel.definition!));
    const levels = rel.hypernyms.filter((l) => l.length > 0);
    const level = levels[rng.int(levels.length)]!;
    const h = level[rng.int(level.length)]!;
    return fillCaption(template, kind === 'hypernym' ? hypernymPhrase(name, h) : h);
  }

  /** Every caption that {@link sample} can return for the given classes (with repeats). */
  allCaptions(labels: readonly number[]): string[] {
    const out: string[] = [];
    const m = this.mix;
    for (const y of labels) {
      const names = this.names[y] ?? [];
      const rel = this.relatives[y] ?? null;
      const hs = rel ? [...new Set(rel.hypernyms.flat())] : [];
      const phrases: string[] = [...names];
      if (m && m.hypernym > 0) for (const n of names) for (const h of hs) phrases.push(hypernymPhrase(n, h));
      if (m && m.hypernymOnly > 0) phrases.push(...hs);
      if (m && m.gloss > 0 && rel?.definition) for (const n of names) phrases.push(glossPhrase(n, rel.definition));
      for (const p of new Set(phrases)) for (const t of this.templates) out.push(fillCaption(t, p));
    }
    return out;
  }

  /**
   * The compact vocabulary of every token that can reach the text tower for these classes (after truncation to
   * `contextLength`), plus the tokens of `extraTexts`, SOT, EOT and id 0 (padding).
   */
  vocabulary(tokenizer: ClipTokenizer, labels: readonly number[], contextLength: number, extraTexts: Iterable<string> = []): CompactVocab {
    return vocabularyOf(tokenizer, [this.allCaptions(labels), extraTexts], contextLength);
  }
}

/** The compact vocabulary of the given texts (truncated to `contextLength`), plus SOT, EOT and id 0. */
export function vocabularyOf(tokenizer: ClipTokenizer, textSets: Iterable<Iterable<string>>, contextLength: number): CompactVocab {
  const ids = new Set<number>([0, tokenizer.sot, tokenizer.eot]);
  const chunk = 512;
  let buf: string[] = [];
  const flush = () => {
    const { ids: rows, lengths } = tokenizer.tokenize(buf, contextLength);
    lengths.forEach((len, r) => {
      for (let t = 0; t < len; t++) ids.add(rows[r * contextLength + t]!);
    });
    buf = [];
  };
  for (const set of textSets) {
    for (const text of set) {
      buf.push(text);
      if (buf.length === chunk) flush();
    }
  }
  if (buf.length > 0) flush();
  return new CompactVocab(ids);
}

/** Tokenised captions padded to their longest row: compact int64 ids [n, T]. */
export interface CaptionBatch {
  texts: string[];
  ids: BigInt64Array;
  dims: [number, number];
}

/** Tokenises captions (truncated to `contextLength`), pads to the longest row and converts to compact ids. */
export function tokenizeCaptions(tokenizer: ClipTokenizer, vocab: CompactVocab, texts: string[], contextLength: number): CaptionBatch {
  const { ids, lengths } = tokenizer.tokenize(texts, contextLength);
  const T = Math.max(...lengths);
  const n = texts.length;
  const trimmed = new Int32Array(n * T);
  for (let r = 0; r < n; r++) trimmed.set(ids.subarray(r * contextLength, r * contextLength + T), r * T);
  return { texts, ids: vocab.compactRows(trimmed, n, T, lengths), dims: [n, T] };
}
