/**
 * Test-set prediction for the runner: picks the test samples of an evaluation, materialises them with their
 * task's deterministic test transform, and asks the method in chunks of `evalBatchSize`.
 *
 * Within one evaluation round (one anytime point, one end of task) predictions are memoised per
 * (candidate set, sample), so the pooled exposed-class accuracy and the accuracy-matrix row share the work when
 * they classify the same images among the same classes.
 */
import type { Dataset, Stream, StreamItem } from '../data/types.ts';
import { materialize } from '../data/batch.ts';
import type { Method, PredictContext } from '../methods/method.ts';
import type { Rng } from '../util/rng.ts';

const datasetIds = new WeakMap<Dataset, number>();
let nextDatasetId = 0;

/**
 * A key naming the image a test item produces. Outside domain streams the same dataset sample gives the same
 * test image whatever task lists it (Si-Blurry classes can belong to several tasks), so the task is not part of
 * the key; in domain streams each task has its own test transform, so it is.
 */
export function itemKey(item: StreamItem, perTask: boolean): string {
  let id = datasetIds.get(item.dataset);
  if (id === undefined) {
    id = nextDatasetId++;
    datasetIds.set(item.dataset, id);
  }
  return perTask ? `${id}:${item.index}@${item.task}` : `${id}:${item.index}`;
}

/**
 * Whether a stream's test items are told apart by task: `domain` and `sets` streams show the same dataset item
 * through different tasks' transforms (rotations, permutations), so an item counts once per task.
 */
export function testsPerTask(stream: Pick<Stream, 'kind'>): boolean {
  return stream.kind === 'domain' || stream.kind === 'sets';
}

/** Removes items whose {@link itemKey} occurred before. */
export function dedupe(items: readonly StreamItem[], perTask: boolean): StreamItem[] {
  const seen = new Set<string>();
  const out: StreamItem[] = [];
  for (const it of items) {
    const k = itemKey(it, perTask);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(it);
    }
  }
  return out;
}

/** One evaluation round with memoised predictions. */
export class EvalRound {
  private readonly memo = new Map<string, Map<string, number>>();

  constructor(
    private readonly stream: Stream,
    private readonly method: Method,
    private readonly batchSize: number,
    private readonly rng: Rng,
    private readonly ctx: PredictContext,
  ) {}

  /** Predictions (global labels, -1 = abstain) for `items` among `candidates`. */
  async predict(items: readonly StreamItem[], candidates: readonly number[]): Promise<Int32Array> {
    const perTask = testsPerTask(this.stream);
    const candKey = [...candidates].join(',');
    let memo = this.memo.get(candKey);
    if (!memo) {
      memo = new Map();
      this.memo.set(candKey, memo);
    }
    const todo: StreamItem[] = [];
    const pending = new Set<string>();
    for (const it of items) {
      const k = itemKey(it, perTask);
      if (!memo.has(k) && !pending.has(k)) {
        pending.add(k);
        todo.push(it);
      }
    }
    for (let s = 0; s < todo.length; s += this.batchSize) {
      const chunk = todo.slice(s, s + this.batchSize);
      const images = materialize(chunk, this.stream.tasks, false, this.rng);
      const preds = await this.method.predict(images, candidates, this.ctx);
      if (preds.length !== chunk.length) {
        throw new Error(`method '${this.method.name}' returned ${preds.length} predictions for ${chunk.length} images`);
      }
      chunk.forEach((it, i) => memo.set(itemKey(it, perTask), preds[i]!));
    }
    const out = new Int32Array(items.length);
    items.forEach((it, i) => (out[i] = memo.get(itemKey(it, perTask))!));
    return out;
  }
}
