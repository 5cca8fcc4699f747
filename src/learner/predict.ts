/**
 * Predictions with probabilities and routes, shared by the run's final evaluation (src/run/final.ts) and a loaded
 * learner: `Method.predictDetailed` when the method has it, else `predict` (labels only).
 */
import type { Image } from '../data/types.ts';
import type { Method, PredictContext, StreamView } from '../methods/method.ts';

/** Labels, probabilities ([B, C]; null when the method gives none) and routes (null for a method without routing). */
export interface Detailed {
  labels: Int32Array;
  probs: Float64Array | null;
  routes: Int32Array | null;
}

/** One predict call of `method` with details; checks the lengths it returns. */
export async function predictDetailed(method: Method, images: Image[], candidates: readonly number[], ctx: PredictContext): Promise<Detailed> {
  const n = images.length;
  const C = candidates.length;
  if (!method.predictDetailed) {
    const labels = await method.predict(images, candidates, ctx);
    if (labels.length !== n) throw new Error(`method '${method.name}' returned ${labels.length} predictions for ${n} images`);
    return { labels, probs: null, routes: null };
  }
  const d = await method.predictDetailed(images, candidates, ctx);
  if (d.labels.length !== n) throw new Error(`method '${method.name}' returned ${d.labels.length} predictions for ${n} images`);
  if (d.probs.length !== n * C) throw new Error(`method '${method.name}' returned ${d.probs.length} probabilities for ${n} images × ${C} candidates`);
  if (d.routes && d.routes.length !== n) throw new Error(`method '${method.name}' returned ${d.routes.length} routes for ${n} images`);
  return { labels: d.labels, probs: d.probs, routes: d.routes ?? null };
}

/** The context of a learner's predictions: the end-of-task evaluation's (`task_end`) among `candidates`. */
export function learnerPredictContext(view: StreamView, candidates: readonly number[]): PredictContext {
  return { ...view, exposedClasses: [...candidates], purpose: 'task_end', reportPhase: () => {} };
}

/** The probability of image i's predicted label (null when abstaining or without probabilities). */
export function probOfLabel(d: Detailed, i: number, candidates: readonly number[]): number | null {
  const label = d.labels[i]!;
  if (!d.probs || label < 0) return null;
  const j = candidates.indexOf(label);
  return j < 0 ? null : d.probs[i * candidates.length + j]!;
}
