/**
 * Sample-level accuracy primitives: top-1 accuracy, per-class accuracy and confusion counts.
 * Predictions and labels are global labels (indices into `Stream.classNames`); a prediction of -1 means the
 * method abstained and always counts as wrong.
 */

/** Number of positions where `predictions[i] === labels[i]`. Throws when the lengths differ. */
export function countCorrect(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predictions.length !== labels.length) {
    throw new Error(`countCorrect: ${predictions.length} predictions for ${labels.length} labels`);
  }
  let c = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) c++;
  return c;
}

/**
 * Top-1 accuracy in [0, 1]: `#{i : pred_i = y_i} / n`. Returns `null` for an empty set (undefined, not 0).
 */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  if (labels.length === 0) return null;
  return countCorrect(predictions, labels) / labels.length;
}

/** Per-class tallies: `total[c]` samples of true class c, `correct[c]` of them predicted as c. */
export interface ClassTally {
  correct: Map<number, number>;
  total: Map<number, number>;
}

/** Counts, per true class, how many samples there are and how many were predicted correctly. */
export function classTally(predictions: ArrayLike<number>, labels: ArrayLike<number>): ClassTally {
  if (predictions.length !== labels.length) {
    throw new Error(`classTally: ${predictions.length} predictions for ${labels.length} labels`);
  }
  const correct = new Map<number, number>();
  const total = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    total.set(y, (total.get(y) ?? 0) + 1);
    if (predictions[i] === y) correct.set(y, (correct.get(y) ?? 0) + 1);
    else if (!correct.has(y)) correct.set(y, 0);
  }
  return { correct, total };
}

/**
 * Per-class accuracy `acc_c = #{i : y_i = c, pred_i = c} / #{i : y_i = c}` for every class that occurs in
 * `labels` (classes with no test sample are absent from the map, not 0).
 */
export function perClassAccuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): Map<number, number> {
  const { correct, total } = classTally(predictions, labels);
  const out = new Map<number, number>();
  for (const [c, n] of [...total].sort((a, b) => a[0] - b[0])) out.set(c, (correct.get(c) ?? 0) / n);
  return out;
}

/**
 * Confusion counts over the given class list: `counts[r * K + k]` = number of samples of true class
 * `classes[r]` predicted as `classes[k]`, K = classes.length. Predictions outside `classes` (including -1) are
 * counted in `other[r]`; samples whose true label is outside `classes` are ignored.
 */
export function confusionCounts(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: readonly number[],
): { classes: number[]; counts: Int32Array; other: Int32Array } {
  if (predictions.length !== labels.length) {
    throw new Error(`confusionCounts: ${predictions.length} predictions for ${labels.length} labels`);
  }
  const K = classes.length;
  const index = new Map<number, number>();
  classes.forEach((c, i) => index.set(c, i));
  const counts = new Int32Array(K * K);
  const other = new Int32Array(K);
  for (let i = 0; i < labels.length; i++) {
    const r = index.get(labels[i]!);
    if (r === undefined) continue;
    const k = index.get(predictions[i]!);
    if (k === undefined) other[r]!++;
    else counts[r * K + k]!++;
  }
  return { classes: [...classes], counts, other };
}
