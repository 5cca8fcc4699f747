/**
 * Captions of pretraining: per class, a random name (one of its synonyms) in a random template, tokenised with
 * CLIP's BPE. The set of every caption that can be drawn defines the compact token table (vocab.ts).
 */
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { Rng } from '../util/rng.ts';
import { CompactVocab } from './vocab.ts';

/** Replaces every `{}` of a template with the class name. */
export function fillCaption(template: string, name: string): string {
  return template.replaceAll('{}', name);
}

export class CaptionSampler {
  /**
   * @param names per class label: the names a caption may use (index = dataset label)
   * @param templates templates with `{}`
   */
  constructor(
    readonly names: readonly (readonly string[])[],
    readonly templates: readonly string[],
  ) {
    if (templates.length === 0) throw new Error('captions: no templates');
    for (const t of templates) if (!t.includes('{}')) throw new Error(`captions: template ${JSON.stringify(t)} has no {} placeholder`);
  }

  /** One caption for class `label`: a uniform synonym, then a uniform template (two rng draws, in that order). */
  sample(label: number, rng: Rng): string {
    const list = this.names[label];
    if (!list || list.length === 0) throw new Error(`captions: no name for class ${label}`);
    const name = list[rng.int(list.length)]!;
    const template = this.templates[rng.int(this.templates.length)]!;
    return fillCaption(template, name);
  }

  /** Every caption that {@link sample} can return for the given classes. */
  allCaptions(labels: readonly number[]): string[] {
    const out: string[] = [];
    for (const y of labels) for (const n of this.names[y] ?? []) for (const t of this.templates) out.push(fillCaption(t, n));
    return out;
  }

  /**
   * The compact vocabulary of every token that can reach the text tower for these classes (after truncation to
   * `contextLength`), plus SOT, EOT and id 0 (padding).
   */
  vocabulary(tokenizer: ClipTokenizer, labels: readonly number[], contextLength: number): CompactVocab {
    const ids = new Set<number>([0, tokenizer.sot, tokenizer.eot]);
    const texts = this.allCaptions(labels);
    const chunk = 512;
    for (let a = 0; a < texts.length; a += chunk) {
      const { ids: rows, lengths } = tokenizer.tokenize(texts.slice(a, a + chunk), contextLength);
      lengths.forEach((len, r) => {
        for (let t = 0; t < len; t++) ids.add(rows[r * contextLength + t]!);
      });
    }
    return new CompactVocab(ids);
  }
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
