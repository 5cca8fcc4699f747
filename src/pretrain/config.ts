/**
 * The pretraining config (zod 4), read from YAML or JSON:
 *
 * ```yaml
 * name: moeclip-tiny
 * seed: 0                                  # weight init, data order, captions, augmentation
 * init: ../models/moeclip-tiny             # optional: start from this model folder's weights (see init.ts)
 * model:                                   # optional with init (then taken from the init model)
 *   act: quick_gelu                        # default activation of both towers (quick_gelu | gelu | gelu_tanh)
 *   vision: { imageSize: 64, patchSize: 8, width: 256, layers: 6, heads: 4 }   # mlpDim (default 4·width), act, lnEps
 *   text: { contextLength: 24, width: 128, layers: 4, heads: 4 }               # mlpDim, act, vocabSize (49408), lnEps
 *   embedDim: 128
 * data:
 *   dataset: tiny-imagenet                 # a registry name (src/data/registry.ts)
 *   root: ../.data/tiny-imagenet-200       # optional: the registry's default root
 *   split: train
 *   classes: even                          # all | even | odd over the SORTED class ids (see classes.ts)
 *   limitPerClass: 100                     # optional
 * wordnet: ../.data/wordnet               # WordNet 3.0 data.noun + index.noun (default .data/wordnet; needed by
 *                                          # the hypernym/gloss captions and textText)
 * captions:
 *   templates: ['a photo of a {}.', ...]   # default: the dataset's templates
 *   synonyms: true                         # draw from every synonym a dataset lists (Tiny ImageNet words.txt)
 *   hypernym: 0.25                         # P("a photo of a tabby, a kind of cat.")  (captions.ts; default 0)
 *   hypernymOnly: 0.1                      # P("a photo of a cat.") for a tabby              (default 0)
 *   gloss: 0.1                             # P("a photo of a tabby, <WordNet definition>.")  (default 0)
 *   hypernymDepth: 3                       # ancestor levels a hypernym caption may name
 * textText:                                # optional: the text–text term over WordNet synsets (text-pairs.ts)
 *   weight: 0.5                            # w in loss = image–text + w · text–text
 *   batchSize: 128                         # N pairs per step
 *   synonym: 0.2                           # P(view b is another name of the synset)
 *   depth: 2                               # ancestor levels named in descriptions
 *   trainClasses: all                      # classes of the training dataset (by wnid) included: all | even | odd | none
 *   datasets: [cifar10, mnist]             # registry datasets whose class names are included
 *   ancestors: true                        # with every ancestor of those synsets
 *   others: 3000                           # plus this many other (tagged) noun synsets, seeded
 *   othersUnder: [n00001930]               # … drawn only below these synsets (default: anywhere)
 *   templates: [...]                       # default: the caption templates
 * augment:
 *   crop: { kind: random-resized, scale: [0.35, 1], ratio: [0.75, 1.3333] }  # or { kind: pad, padding: 4 } | { kind: none }
 *   flip: 0.5
 *   colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 }
 *   grayscale: 0.05
 * optim:
 *   batchSize: 128
 *   epochs: 8                              # or steps: N (exactly one of the two)
 *   lr: 0.001                              # ≥ 0 (0: no change to the weights)
 *   weightDecay: 0.1                       # not on LayerNorm, biases, embeddings, logit_scale
 *   betas: [0.9, 0.98]
 *   eps: 1.0e-6
 *   warmupSteps: 500
 *   lrFloor: 0.00001                       # the cosine ends here
 *   clipNorm: 1.0                          # optional global gradient-norm clip
 * checkpointEvery: 500                     # steps (0 = only when stopping)
 * eval: { every: 1000, split: val, limitPerClass: 10, templates: [...], batchSize: 128 }   # every: 0 = only at the end
 *   # datasets: [{ dataset: cifar10, split: test, limitPerClass: 100 }]   # further zero-shot evaluations
 * threads: 2                               # ONNX Runtime intra-op threads
 * float: F16                               # storage of the exported weights (F16 | F32)
 * out: ../models/moeclip-tiny              # the exported model folder
 * checkpointDir: ../runs/pretrain/moeclip-tiny
 * tokenizer: ../shared/clip/bpe_simple_vocab_16e6.txt.gz   # optional (see tokenizer resolution in the CLI)
 * ```
 *
 * Unknown keys are errors; `key: null` (or `--set key=null`) unsets an optional key. Errors name the field path, e.g. `optim.lr: expected a number ≥ 0`.
 * Relative paths (`init`, `root`, `out`, `checkpointDir`, `tokenizer`, `wordnet`) in a file resolve against the file's folder.
 *
 * `init` (a Hugging Face or open_clip CLIP folder) starts training from that model's weights instead of CLIP's
 * random init: a new run (AdamW moments at zero, step 0, the LR schedule from its start), not a resume. Without a
 * `model` block the architecture is the init model's; with one, it must match the init model's, else the config
 * is rejected naming every differing field and the folder (init.ts). `model.logitScaleInit` is then unused: the
 * run starts from the init model's learned logit_scale.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LOGIT_SCALE_INIT, validateClipConfig, type ClipAct, type ClipConfig } from '../clip/config.ts';
import { applyOverride, parseOverride } from '../config/overrides.ts';
import { resolvePaths } from '../config/paths.ts';
import { checkInitArchitecture, DEFAULT_LN_EPS, modelBlockOf, readModelArchitecture } from './init.ts';

/** Thrown for invalid pretraining configs; the message names the file and the field path. */
export class PretrainConfigError extends Error {
  override name = 'PretrainConfigError';
}

const posInt = (what = 'a positive integer') => z.int({ error: `expected ${what}` }).positive({ error: `expected ${what}` });
const nonNegInt = () => z.int({ error: 'expected an integer ≥ 0' }).min(0, { error: 'expected an integer ≥ 0' });
const posNum = () => z.number({ error: 'expected a number > 0' }).positive({ error: 'expected a number > 0' });
const prob = () => z.number({ error: 'expected a probability in [0, 1]' }).min(0).max(1);
const act = z.enum(['quick_gelu', 'gelu', 'gelu_tanh']);

const VisionSchema = z.strictObject({
  imageSize: posInt(),
  patchSize: posInt(),
  width: posInt(),
  layers: posInt(),
  heads: posInt(),
  mlpDim: posInt().optional(),
  act: act.optional(),
  lnEps: posNum().optional(),
});

const TextSchema = z.strictObject({
  contextLength: z.int({ error: 'expected an integer ≥ 3' }).min(3, { error: 'expected an integer ≥ 3' }),
  width: posInt(),
  layers: posInt(),
  heads: posInt(),
  mlpDim: posInt().optional(),
  act: act.optional(),
  vocabSize: posInt().default(49408),
  lnEps: posNum().optional(),
});

const range2 = z
  .tuple([z.number(), z.number()], { error: 'expected [lo, hi]' })
  .refine(([a, b]) => a <= b, { message: 'expected lo ≤ hi' });

const CropSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('random-resized'),
    /** Fraction of the image area kept, [lo, hi] ⊂ (0, 1]. */
    scale: range2.refine(([a, b]) => a > 0 && b <= 1, { message: 'expected 0 < lo ≤ hi ≤ 1' }).default([0.35, 1]),
    /** Aspect ratio w/h range (sampled log-uniformly). */
    ratio: range2.refine(([a]) => a > 0, { message: 'expected 0 < lo ≤ hi' }).default([3 / 4, 4 / 3]),
  }),
  z.strictObject({ kind: z.literal('pad'), padding: nonNegInt().default(4) }),
  z.strictObject({ kind: z.literal('none') }),
]);

const JitterSchema = z.strictObject({
  brightness: z.number().min(0).max(1).default(0),
  contrast: z.number().min(0).max(1).default(0),
  saturation: z.number().min(0).max(1).default(0),
});

export const AugmentSchema = z.strictObject({
  crop: CropSchema.default({ kind: 'random-resized', scale: [0.35, 1], ratio: [3 / 4, 4 / 3] }),
  flip: prob().default(0.5),
  colorJitter: JitterSchema.default({ brightness: 0, contrast: 0, saturation: 0 }),
  grayscale: prob().default(0),
});

const OptimSchema = z
  .strictObject({
    batchSize: z.int({ error: 'expected an integer ≥ 2' }).min(2, { error: 'expected an integer ≥ 2' }),
    steps: posInt().optional(),
    epochs: posNum().optional(),
    lr: z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' }),
    weightDecay: z.number().min(0).default(0.1),
    betas: z
      .tuple([z.number(), z.number()], { error: 'expected [beta1, beta2]' })
      .refine(([a, b]) => a >= 0 && a < 1 && b >= 0 && b < 1, { message: 'expected betas in [0, 1)' })
      .default([0.9, 0.98]),
    eps: posNum().default(1e-6),
    warmupSteps: nonNegInt().default(0),
    lrFloor: z.number().min(0).default(0),
    clipNorm: posNum().optional(),
  })
  .check((ctx) => {
    const v = ctx.value;
    if ((v.steps === undefined) === (v.epochs === undefined)) {
      ctx.issues.push({ code: 'custom', message: 'give exactly one of steps and epochs', path: ['steps'], input: v });
    }
    if (v.lrFloor > v.lr) ctx.issues.push({ code: 'custom', message: `lrFloor ${v.lrFloor} is above lr ${v.lr}`, path: ['lrFloor'], input: v });
  });

const classesEnum = z.enum(['all', 'even', 'odd']);

const EvalDatasetSchema = z.strictObject({
  dataset: z.string().min(1),
  root: z.string().optional(),
  split: z.string().default('test'),
  classes: classesEnum.default('all'),
  limitPerClass: posInt().optional(),
  templates: z.array(z.string()).min(1).optional(),
});

const EvalSchema = z.strictObject({
  every: nonNegInt().default(0),
  split: z.string().default('val'),
  limitPerClass: posInt().optional(),
  templates: z.array(z.string()).min(1).optional(),
  batchSize: posInt().default(128),
  enabled: z.boolean().default(true),
  datasets: z.array(EvalDatasetSchema).default([]),
});

const template = z.string().refine((t) => t.includes('{}'), { message: 'a template needs a {} placeholder' });

const CaptionsSchema = z
  .strictObject({
    templates: z.array(template).min(1).optional(),
    synonyms: z.boolean().default(true),
    hypernym: prob().default(0),
    hypernymOnly: prob().default(0),
    gloss: prob().default(0),
    hypernymDepth: posInt().default(3),
  })
  .check((ctx) => {
    const v = ctx.value;
    if (v.hypernym + v.hypernymOnly + v.gloss > 1 + 1e-12) {
      ctx.issues.push({ code: 'custom', message: 'hypernym + hypernymOnly + gloss must be ≤ 1', path: ['hypernym'], input: v });
    }
  });

const TextTextSchema = z.strictObject({
  weight: z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' }).default(0.5),
  batchSize: z.int({ error: 'expected an integer ≥ 2' }).min(2, { error: 'expected an integer ≥ 2' }).default(128),
  synonym: prob().default(0.2),
  depth: posInt().default(2),
  trainClasses: z.enum(['all', 'even', 'odd', 'none']).default('all'),
  datasets: z.array(z.string().min(1)).default([]),
  ancestors: z.boolean().default(true),
  others: nonNegInt().default(3000),
  othersUnder: z.array(z.string().regex(/^n\d{8}$/, { error: 'expected a noun wnid (n + 8 digits)' })).default([]),
  templates: z.array(template).min(1).optional(),
});

const ModelSchema = z.strictObject({
  act: act.default('quick_gelu'),
  vision: VisionSchema,
  text: TextSchema,
  embedDim: posInt(),
  logitScaleInit: z.number().default(LOGIT_SCALE_INIT),
});

/** The schema of a config file; `model` may be left out only when `init` is given (checked after parsing). */
export const PretrainConfigSchema = z.strictObject({
  name: z.string().min(1).optional(),
  seed: nonNegInt().default(0),
  /** A model folder whose weights the run starts from (instead of the random init). */
  init: z.string().min(1).optional(),
  model: ModelSchema.optional(),
  data: z.strictObject({
    dataset: z.string().min(1),
    root: z.string().optional(),
    split: z.string().default('train'),
    classes: classesEnum.default('all'),
    limitPerClass: posInt().optional(),
  }),
  /** WordNet folder (data.noun, index.noun); default `.data/wordnet` under the working directory. */
  wordnet: z.string().min(1).optional(),
  captions: CaptionsSchema.default({ synonyms: true, hypernym: 0, hypernymOnly: 0, gloss: 0, hypernymDepth: 3 }),
  textText: TextTextSchema.optional(),
  augment: AugmentSchema.default({
    crop: { kind: 'random-resized', scale: [0.35, 1], ratio: [3 / 4, 4 / 3] },
    flip: 0.5,
    colorJitter: { brightness: 0, contrast: 0, saturation: 0 },
    grayscale: 0,
  }),
  optim: OptimSchema,
  checkpointEvery: nonNegInt().default(0),
  eval: EvalSchema.default({ every: 0, split: 'val', batchSize: 128, enabled: true, datasets: [] }),
  threads: posInt().optional(),
  float: z.enum(['F16', 'F32']).default('F16'),
  out: z.string().optional(),
  checkpointDir: z.string().optional(),
  tokenizer: z.string().optional(),
});

/** The `model` block (defaults filled in). */
export type ModelConfig = z.infer<typeof ModelSchema>;
/** A validated pretraining config: `model` is always present (from the file, or from the `init` model). */
export type PretrainConfig = Omit<z.infer<typeof PretrainConfigSchema>, 'model'> & { model: ModelConfig };
export type AugmentConfig = z.infer<typeof AugmentSchema>;
export type ClassSubset = z.infer<typeof classesEnum>;
export type CaptionsConfig = z.infer<typeof CaptionsSchema>;
export type TextTextConfig = z.infer<typeof TextTextSchema>;
export type EvalDatasetConfig = z.infer<typeof EvalDatasetSchema>;

/** Keys whose string values are filesystem paths (resolved against the config file's folder). */
const PATH_KEYS = new Set(['init', 'root', 'out', 'checkpointDir', 'tokenizer', 'wordnet']);

const isPretrainPathKey = (key: string): boolean => PATH_KEYS.has(key);

/** A deep copy without `null` values: `key: null` (or `--set key=null`) unsets an optional key. */
function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = dropNulls(v);
    return out;
  }
  return value;
}

function formatIssues(where: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
  return `${where}: invalid pretraining config:\n${lines.join('\n')}`;
}

/**
 * Validates a pretraining config value. Relative paths in `raw` resolve against `baseDir`; `sets` (`a.b=value`,
 * value parsed as YAML) apply afterwards with their paths resolved against `cwd`. Architecture invariants
 * (heads divide widths, patches tile the image) are checked too, naming `model.vision.width` etc. With `init`,
 * the init folder's config file is read: its architecture fills an omitted `model` block, or must equal the
 * given one (the error names every differing field and the folder).
 */
export function parsePretrainConfig(
  raw: unknown,
  opts: { baseDir: string; sets?: readonly string[]; cwd?: string; source?: string },
): PretrainConfig {
  const where = opts.source ?? 'config';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PretrainConfigError(`${where}: the config must be a mapping with model, data and optim sections`);
  }
  let value = resolvePaths(raw, opts.baseDir, '', isPretrainPathKey);
  for (const s of opts.sets ?? []) {
    try {
      const ov = parseOverride(s);
      const last = ov.path[ov.path.length - 1]!;
      if (typeof ov.value === 'string') ov.value = resolvePaths(ov.value, opts.cwd ?? opts.baseDir, last, isPretrainPathKey);
      value = applyOverride(value, ov);
    } catch (e) {
      throw new PretrainConfigError((e as Error).message);
    }
  }
  const r = PretrainConfigSchema.safeParse(dropNulls(value));
  if (!r.success) throw new PretrainConfigError(formatIssues(where, r.error));
  const { model, ...rest } = r.data;
  const invalid = (msg: string) => new PretrainConfigError(`${where}: invalid pretraining config:\n${msg}`);
  let initArch: ClipConfig | null = null;
  if (rest.init !== undefined) {
    try {
      initArch = readModelArchitecture(rest.init);
    } catch (e) {
      throw invalid(`init: ${(e as Error).message}`);
    }
  }
  if (model === undefined && initArch === null) throw invalid('model: required (or give init: a model folder to start from)');
  const cfg: PretrainConfig = { ...rest, model: model ?? modelBlockOf(initArch!) };
  let clipCfg: ClipConfig;
  try {
    clipCfg = clipConfigOf(cfg);
  } catch (e) {
    // validateClipConfig says `model: vision.width: ...`; report it as the field path `model.vision.width: ...`
    throw invalid((e as Error).message.replace(/^model: /, 'model.'));
  }
  if (initArch !== null) {
    try {
      checkInitArchitecture(clipCfg, initArch, rest.init!);
    } catch (e) {
      throw invalid((e as Error).message);
    }
  }
  return cfg;
}

/** Reads, overrides and validates a YAML (`.yaml`/`.yml`) or JSON pretraining config file. */
export function loadPretrainConfig(file: string, opts: { sets?: readonly string[]; cwd?: string } = {}): PretrainConfig {
  const cwd = opts.cwd ?? process.cwd();
  const abs = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new PretrainConfigError(`${abs}: cannot read config: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = extname(abs).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new PretrainConfigError(`${abs}: not valid ${extname(abs).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  const cfg = parsePretrainConfig(raw, { baseDir: dirname(abs), sets: opts.sets ?? [], cwd, source: abs });
  if (cfg.name === undefined) cfg.name = basename(abs).replace(/\.(ya?ml|json)$/i, '');
  return cfg;
}

/** The CLIP architecture a pretraining config describes (MLP width defaults to 4 × width). */
export function clipConfigOf(cfg: PretrainConfig): ClipConfig {
  const m = cfg.model;
  const vAct: ClipAct = m.vision.act ?? m.act;
  const tAct: ClipAct = m.text.act ?? m.act;
  return validateClipConfig(
    {
      vision: {
        imageSize: m.vision.imageSize,
        patchSize: m.vision.patchSize,
        width: m.vision.width,
        layers: m.vision.layers,
        heads: m.vision.heads,
        mlpDim: m.vision.mlpDim ?? 4 * m.vision.width,
        act: vAct,
        lnEps: m.vision.lnEps ?? DEFAULT_LN_EPS,
      },
      text: {
        contextLength: m.text.contextLength,
        vocabSize: m.text.vocabSize,
        width: m.text.width,
        layers: m.text.layers,
        heads: m.text.heads,
        mlpDim: m.text.mlpDim ?? 4 * m.text.width,
        act: tAct,
        lnEps: m.text.lnEps ?? DEFAULT_LN_EPS,
      },
      embedDim: m.embedDim,
      logitScaleInit: m.logitScaleInit,
    },
    'model',
  );
}

/**
 * The parts of a config that determine the trained weights bit for bit (everything but bookkeeping: output
 * folders, checkpoint/eval cadence, eval settings, float storage, the WordNet folder — whose texts the
 * checkpoint's vocabulary and pair hash cover). A resumed run must match these. `init`, `textText` and the
 * WordNet caption options are included only when set, so signatures of older runs are unchanged.
 */
export function trainingSignature(cfg: PretrainConfig): Record<string, unknown> {
  const { hypernym, hypernymOnly, gloss, hypernymDepth, ...captions } = cfg.captions;
  const wordnetCaptions = hypernym + hypernymOnly + gloss > 0;
  return {
    ...(cfg.init !== undefined ? { init: cfg.init } : {}),
    seed: cfg.seed,
    model: cfg.model,
    data: { dataset: cfg.data.dataset, split: cfg.data.split, classes: cfg.data.classes, limitPerClass: cfg.data.limitPerClass ?? null },
    captions: wordnetCaptions ? cfg.captions : captions,
    ...(cfg.textText !== undefined ? { textText: cfg.textText } : {}),
    augment: cfg.augment,
    optim: cfg.optim,
  };
}
