/**
 * Zero-shot accuracy of a CLIP model on a labelled dataset, with CLIP's template-ensemble classifier: per
 * class, every template filled with the class name is encoded and L2-normalised, the mean is L2-normalised
 * again (`ClipModel.zeroShotClassifier`); an image is assigned the class of highest cosine similarity.
 *
 * `classes` restricts both the candidate classes and the samples to a subset of the sorted class ids (see
 * classes.ts: `even` = the pretraining base classes of Tiny ImageNet, `odd` = the held-out ones), so the `odd`
 * accuracy of Tiny ImageNet is a 100-way accuracy over classes never seen in pretraining.
 */
import type { ClipModel, Matrix } from '../clip/clip.ts';
import type { Dataset } from '../data/types.ts';
import { classSubsetOf, samplesOfClasses } from './classes.ts';
import type { ClassSubset } from './config.ts';

export interface ZeroShotOptions {
  classes?: ClassSubset;
  /** Prompt templates with `{}`; default the dataset's templates. */
  templates?: readonly string[];
  /** Images per encoder run (default 64). */
  batchSize?: number;
  /** Class names to use instead of `dataset.classNames` (label order). */
  classNames?: readonly string[];
  onProgress?: (done: number, total: number) => void;
}

export interface ZeroShotAccuracy {
  /** Fraction of correctly classified samples (0 when there are none). */
  accuracy: number;
  /** Number of samples evaluated. */
  n: number;
  /** Number of candidate classes. */
  classes: number;
}

/** Index of the largest entry of row `i` of `scores` restricted to nothing (plain argmax; first on ties). */
function rowArgmax(scores: Float32Array, i: number, C: number): number {
  let best = 0;
  let bv = -Infinity;
  for (let c = 0; c < C; c++) {
    const v = scores[i * C + c]!;
    if (v > bv) {
      bv = v;
      best = c;
    }
  }
  return best;
}

/** normalised images [n, e] · classifierᵀ [C, e] → [n, C]. */
function cosineScores(img: Matrix, cls: Matrix): Float32Array {
  const [n, e] = img.dims;
  const [C] = cls.dims;
  const out = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let k = 0; k < e; k++) s += img.data[i * e + k]! * cls.data[c * e + k]!;
      out[i * C + c] = s;
    }
  }
  return out;
}

/** Zero-shot accuracy of `model` on `dataset` (see the module doc). */
export async function zeroShotAccuracy(model: ClipModel, dataset: Dataset, opts: ZeroShotOptions = {}): Promise<ZeroShotAccuracy> {
  const labels = classSubsetOf(dataset, opts.classes ?? 'all');
  const names = opts.classNames ?? dataset.classNames;
  if (names.length !== dataset.classNames.length) throw new Error(`zeroShotAccuracy: ${names.length} class names for ${dataset.classNames.length} classes`);
  const templates = opts.templates ?? dataset.templates;
  if (templates.length === 0) throw new Error(`zeroShotAccuracy: ${dataset.name}: no prompt templates`);
  const samples = samplesOfClasses(dataset, labels);
  const C = labels.length;
  if (samples.length === 0 || C === 0) return { accuracy: 0, n: 0, classes: C };
  const candidate = new Int32Array(dataset.classNames.length).fill(-1);
  labels.forEach((y, c) => (candidate[y] = c));
  const classifier = await model.zeroShotClassifier(
    labels.map((y) => names[y]!),
    templates,
  );
  const batch = opts.batchSize ?? 64;
  let correct = 0;
  for (let a = 0; a < samples.length; a += batch) {
    const idx = samples.subarray(a, Math.min(samples.length, a + batch));
    const images = Array.from(idx, (i) => dataset.image(i));
    const emb = await model.encodeImages(model.preprocessImages(images));
    const scores = cosineScores(emb, classifier);
    idx.forEach((i, r) => {
      if (rowArgmax(scores, r, C) === candidate[dataset.labels[i]!]) correct++;
    });
    opts.onProgress?.(a + idx.length, samples.length);
  }
  return { accuracy: correct / samples.length, n: samples.length, classes: C };
}
