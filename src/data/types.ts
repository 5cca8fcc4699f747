/**
 * The data contracts shared by datasets, transforms, streams, replay memory, the runner and the methods.
 * Images travel as decoded 8-bit pixels (HWC); models turn them into float tensors with their own preprocessing.
 */
import type { Rng } from '../util/rng.ts';

/** A decoded image: `height × width × channels` bytes, row-major, channels interleaved (HWC). */
export interface Image {
  width: number;
  height: number;
  channels: 1 | 3;
  pixels: Uint8Array;
}

/** A labelled image collection with its class names and prompt templates (templates contain `{}`). */
export interface Dataset {
  /** Registry name, e.g. `mnist`, `cifar10`, `tiny-imagenet`. */
  readonly name: string;
  /** `train`, `test` or `val`. */
  readonly split: string;
  readonly classNames: readonly string[];
  /** Prompt templates with a `{}` placeholder; the first is the training template. */
  readonly templates: readonly string[];
  readonly length: number;
  /** Labels of all samples, local to this dataset (0..classNames.length-1). */
  readonly labels: Int32Array;
  /** The decoded image of sample i. */
  image(i: number): Image;
}

/** A per-sample augmentation or preprocessing step; deterministic given the rng. */
export type Transform = (img: Image, rng: Rng) => Image;

/** One sample of a stream: where it comes from and how it is labelled in the stream's global label space. */
export interface StreamItem {
  /** The dataset the pixels come from. */
  dataset: Dataset;
  /** Index into `dataset`. */
  index: number;
  /** Global label (index into `Stream.classNames`). */
  label: number;
  /** Task (experience) this sample belongs to. */
  task: number;
}

export interface StreamTask {
  id: number;
  /** Training samples in stream order. */
  train: StreamItem[];
  /** Test samples of this task (its domain and its classes). */
  test: StreamItem[];
  /** Global labels that occur in this task's training samples. */
  classes: number[];
  /** Augmentation applied to training samples of this task (may be identity). */
  trainTransform: Transform;
  /** Deterministic transform for this task's test samples (e.g. the fixed rotation of a domain task). */
  testTransform: Transform;
  /** Human-readable name, e.g. `mnist rot=45`. */
  name: string;
  /**
   * Global labels first seen in this task's training samples (stream order). Test items of class-based streams
   * (class-incremental, Si-Blurry) are the test samples of exactly these classes, so the test items of tasks
   * 0..t together cover every class exposed by the end of task t, each once.
   */
  newClasses?: number[];
}

export type StreamKind = 'class-incremental' | 'si-blurry' | 'domain' | 'multi-dataset' | 'sets';

export interface Stream {
  kind: StreamKind;
  /** Global class names; a label indexes this list. Domain streams repeat no names: labels are shared. */
  classNames: string[];
  /** Prompt templates per global label (from the label's source dataset). */
  templatesFor(label: number): readonly string[];
  tasks: StreamTask[];
  /** A JSON-serialisable description of how the stream was built (kind, seed, options). */
  describe(): Record<string, unknown>;
}
