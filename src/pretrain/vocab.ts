/**
 * The compact token table of pretraining.
 *
 * CLIP's token embedding has 49 408 rows, but the captions of a pretraining run (class names × templates) use
 * only a few thousand token ids. A row that never occurs in any input gets an exactly zero gradient at every
 * step, so with AdamW (m = v = 0, no weight decay on embeddings) it never changes. Training only the rows of the
 * ids that can occur — a [U, width] table indexed by compact ids — therefore gives bit-for-bit the same model as
 * training the full table, at a fraction of the cost (no 49 408-row gradient scatter, Adam update and transfer
 * per step). The full table is rebuilt for export by writing the trained rows into the initial table.
 *
 * The compact ids keep the order of the original ids, so the end-of-text token (the highest original id) stays
 * the highest compact id, which the text tower's EOT pooling (argmax of ids) relies on. Padding (original id 0
 * after EOT) maps to compact id 0; its value is irrelevant (the causal mask hides positions after EOT).
 */
import type { WeightTensor } from '../clip/weights.ts';

export class CompactVocab {
  /** Original token ids, ascending; compact id i ↔ original id `ids[i]`. */
  readonly ids: Int32Array;
  private readonly toCompact: Map<number, number>;

  /** From any collection of original ids (deduplicated and sorted here). */
  constructor(originalIds: Iterable<number>) {
    const sorted = [...new Set(originalIds)].sort((a, b) => a - b);
    if (sorted.length === 0) throw new Error('CompactVocab: no token ids');
    for (const id of sorted) if (!Number.isInteger(id) || id < 0) throw new Error(`CompactVocab: invalid token id ${id}`);
    this.ids = Int32Array.from(sorted);
    this.toCompact = new Map(sorted.map((id, i) => [id, i]));
  }

  get size(): number {
    return this.ids.length;
  }

  /** Compact id of an original id; throws for an id outside the table (a caption the vocabulary did not see). */
  compact(id: number): number {
    const c = this.toCompact.get(id);
    if (c === undefined) throw new Error(`CompactVocab: token id ${id} is not in the compact table`);
    return c;
  }

  /**
   * Converts zero-padded rows of original ids ([n, T], row lengths given) to compact ids as int64, padding with
   * compact id 0.
   */
  compactRows(ids: Int32Array, n: number, T: number, lengths: readonly number[]): BigInt64Array {
    const out = new BigInt64Array(n * T);
    for (let r = 0; r < n; r++) {
      const len = lengths[r]!;
      for (let t = 0; t < len; t++) out[r * T + t] = BigInt(this.compact(ids[r * T + t]!));
    }
    return out;
  }

  /** The rows `ids` of a full [V, w] table, as a [U, w] table. */
  gatherRows(full: WeightTensor): WeightTensor {
    const [V, w] = full.shape as [number, number];
    const out = new Float32Array(this.size * w);
    this.ids.forEach((id, i) => {
      if (id >= V) throw new Error(`CompactVocab: token id ${id} is outside the table of ${V} rows`);
      out.set(full.data.subarray(id * w, (id + 1) * w), i * w);
    });
    return { shape: [this.size, w], data: out };
  }

  /** A copy of the full table with the compact rows written back at their original ids. */
  scatterRows(full: WeightTensor, compact: Float32Array): WeightTensor {
    const [, w] = full.shape as [number, number];
    if (compact.length !== this.size * w) throw new Error(`CompactVocab: compact table has ${compact.length} values, expected ${this.size}×${w}`);
    const data = full.data.slice();
    this.ids.forEach((id, i) => data.set(compact.subarray(i * w, (i + 1) * w), id * w));
    return { shape: [...full.shape], data };
  }
}
