/**
 * The stream spec (JSON/YAML config), validated with zod and discriminated on `kind`.
 *
 * ```yaml
 * kind: class-incremental          # disjoint classes per task
 * dataset: cifar100                # or { name, root, trainSplit, testSplit, imageSize }
 * increment: 10                    # or tasks: 10; initialIncrement: 50 for a 50+10·5 split
 * classOrder: [87, 0, 52, ...]     # default: a permutation drawn from `seed`
 * seed: 1
 * limitPerClass: 100               # quick runs; testLimitPerClass likewise
 * trainTransform: [{ randomCrop: { padding: 4 } }, { flip: 0.5 }]
 * ---
 * kind: si-blurry                  # LifeLong-CLIP / Si-Blurry online stream
 * dataset: cifar100
 * tasks: 5
 * n: 50                            # % disjoint classes
 * m: 10                            # % blurred samples of the blurry classes
 * randomNM: true                   # stochastic task sizes (true Si-Blurry), default true as in every script
 * ---
 * kind: domain                     # same label space, shifting inputs (FCP-Rot-Seq pattern)
 * tasks:
 *   - { dataset: mnist, rotate: 0 }
 *   - { dataset: mnist, rotate: 45, part: { index: 1, of: 5 } }
 *   - { dataset: mnist, blur: 3 }
 * ---
 * kind: multi-dataset              # MTIL: each task a dataset, labels offset by earlier tasks' class counts
 * datasets: mtil-order-1           # or a list of datasets / task objects as in `domain`
 * ---
 * kind: sets                       # OMCP pattern: fixed-size sets drawn from named sources that recur
 * sources:
 *   - { name: tin0, dataset: tiny-imagenet, classes: [1, 3, 5], transform: [{ resize: 32 }] }
 *   - { name: pm0, dataset: mnist, transform: [{ resize: 32 }, { toRgb: true }, { permute: 0 }] }
 * sequence: [tin0, pm0, pm0, tin0]  # each entry one set (task) of setSize samples; labels per (dataset, class)
 * setSize: 1000
 * ```
 */
import { z } from 'zod';
import { TransformSpecSchema } from '../transforms.ts';

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().min(0);

/** A dataset reference: a registry name, or an object with a root folder, split names and decode size. */
export const DatasetRefSchema = z.union([
  z.string().min(1),
  z.strictObject({
    name: z.string().min(1),
    root: z.string().optional(),
    trainSplit: z.string().optional(),
    testSplit: z.string().optional(),
    imageSize: posInt.optional(),
  }),
]);
export type DatasetRef = z.output<typeof DatasetRefSchema>;

/** Sample split k of `of`: every class's samples cut into `of` contiguous near-equal chunks, chunk `index` kept. */
export const PartSchema = z
  .strictObject({ index: nonNegInt, of: posInt })
  .refine((p) => p.index < p.of, { message: 'part.index must be < part.of' });

/** One task of a domain or multi-dataset stream. */
export const TaskSourceSchema = z.strictObject({
  dataset: DatasetRefSchema,
  /** Human-readable task name (default: derived from dataset and shift). */
  name: z.string().optional(),
  part: PartSchema.optional(),
  /**
   * A subset of the dataset's classes, relabelled by position: `even` / `odd` — every other class by sorted class
   * id (Tiny ImageNet: the 100 base / 100 held-out classes of the shipped model), or a list of dataset labels.
   */
  classes: z.union([z.enum(['even', 'odd']), z.array(nonNegInt).min(1)]).optional(),
  /** Rotation domain: train rotates by rotate ± jitter and crops the √2 centre (resized back); test the fixed angle. */
  rotate: z.number().optional(),
  /** Rotation jitter in degrees for `rotate` (default 10, as FCP-Rot). */
  jitter: z.number().min(0).optional(),
  /** Blur domain: Gaussian blur level 0–4 (kernel [0,5,9,13,17][level], σ ~ U(0.1, 2)) on train and test. */
  blur: z.number().int().min(0).max(4).optional(),
  /** Extra steps for train; the test steps default to its deterministic counterpart. */
  transform: TransformSpecSchema.optional(),
  trainTransform: TransformSpecSchema.optional(),
  testTransform: TransformSpecSchema.optional(),
});
export type TaskSource = z.output<typeof TaskSourceSchema>;

/** A task entry: a full task object, or just a dataset reference (wrapped as `{ dataset }`). */
const TaskEntrySchema = z.preprocess(
  (v) => (typeof v === 'string' || (v !== null && typeof v === 'object' && !('dataset' in v)) ? { dataset: v } : v),
  TaskSourceSchema,
);

const common = {
  seed: z.number().int().default(0),
  /** Keep at most this many training samples per class (first ones in dataset order). */
  limitPerClass: posInt.optional(),
  /** Keep at most this many test samples per class. */
  testLimitPerClass: posInt.optional(),
  /** Augmentation of every task's training samples (after the task's own steps). */
  trainTransform: TransformSpecSchema.optional(),
  /** Steps for every test sample; default: the deterministic counterpart of `trainTransform`. */
  testTransform: TransformSpecSchema.optional(),
};

export const ClassIncrementalSpecSchema = z
  .strictObject({
    kind: z.literal('class-incremental'),
    dataset: DatasetRefSchema,
    /** Dataset labels in task order (a subset is allowed); default: permutation of all classes from `seed`. */
    classOrder: z.array(nonNegInt).min(1).optional(),
    /** Without `classOrder`: a seeded permutation of this subset only (`even` / `odd` by sorted class id, or labels). */
    classes: z.union([z.enum(['even', 'odd']), z.array(nonNegInt).min(1)]).optional(),
    /** Number of tasks of equal size (the first C mod T tasks get one more class). */
    tasks: posInt.optional(),
    /** Classes per task after the first. */
    increment: posInt.optional(),
    /** Classes in the first task (default `increment`). */
    initialIncrement: posInt.optional(),
    ...common,
  })
  .refine((s) => s.tasks !== undefined || s.increment !== undefined, {
    message: 'class-incremental needs `tasks` or `increment`',
  });

export const SiBlurrySpecSchema = z.strictObject({
  kind: z.literal('si-blurry'),
  dataset: DatasetRefSchema,
  /** Number of tasks T. */
  tasks: posInt.default(5),
  /** Percentage of disjoint classes (N). */
  n: z.number().min(0).max(100).default(50),
  /** Percentage of blurry-class samples that are blurred into other tasks (M). */
  m: z.number().min(0).max(100).default(10),
  /** Stochastic N/M (random cut points), the true Si-Blurry; false = equal groups and M% of every task. */
  randomNM: z.boolean().default(true),
  /** Use only this subset of the dataset's classes (`even` / `odd` by sorted class id, or labels). */
  classes: z.union([z.enum(['even', 'odd']), z.array(nonNegInt).min(1)]).optional(),
  ...common,
});

export const DomainSpecSchema = z.strictObject({
  kind: z.literal('domain'),
  tasks: z.array(TaskEntrySchema).min(1),
  ...common,
});

export const MultiDatasetSpecSchema = z.strictObject({
  kind: z.literal('multi-dataset'),
  /** The datasets in task order, or an MTIL order preset. */
  datasets: z.union([
    z.enum(['mtil-order-1', 'mtil-order-2']),
    z.array(TaskEntrySchema).min(1),
  ]),
  ...common,
});

export const SetsSpecSchema = z
  .strictObject({
    kind: z.literal('sets'),
    /** Named sources (TaskSource objects); a source may occur many times in `sequence`. */
    sources: z.array(TaskSourceSchema.extend({ name: z.string().min(1) })).min(1),
    /** Source names in stream order: each entry is one set (one runner task) of `setSize` training samples. */
    sequence: z.array(z.string().min(1)).min(1),
    setSize: posInt,
    ...common,
  })
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.sources.forEach((src, i) => {
      if (names.has(src.name)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `duplicate source name '${src.name}'` });
      names.add(src.name);
    });
    s.sequence.forEach((n, i) => {
      if (!names.has(n)) ctx.addIssue({ code: 'custom', path: ['sequence', i], message: `'${n}' names no source (have: ${[...names].join(', ')})` });
    });
  });

const StreamSpecUnion = z.discriminatedUnion('kind', [
  ClassIncrementalSpecSchema,
  SiBlurrySpecSchema,
  DomainSpecSchema,
  MultiDatasetSpecSchema,
  SetsSpecSchema,
]);

/** A validated stream spec (defaults filled in). */
export type StreamSpec = z.output<typeof StreamSpecUnion>;
/** A stream spec as written in a config (defaults optional). */
export type StreamSpecInput = z.input<typeof StreamSpecUnion>;
export type ClassIncrementalSpec = z.output<typeof ClassIncrementalSpecSchema>;
export type SiBlurrySpec = z.output<typeof SiBlurrySpecSchema>;
export type SetsSpec = z.output<typeof SetsSpecSchema>;
export type DomainSpec = z.output<typeof DomainSpecSchema>;
export type MultiDatasetSpec = z.output<typeof MultiDatasetSpecSchema>;

export const StreamSpecSchema: z.ZodType<StreamSpec, StreamSpecInput> = StreamSpecUnion;

/** Parses a stream spec, throwing one readable error that lists every problem with its path. */
export function parseStreamSpec(input: unknown): StreamSpec {
  const r = StreamSpecUnion.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(stream)'}: ${i.message}`).join('; ');
    throw new Error(`invalid stream spec: ${msg}`);
  }
  return r.data;
}
