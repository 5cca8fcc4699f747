/**
 * `moeclip zeroshot --model DIR --image PATH... --class NAME... [--template T]... [--json]` — zero-shot
 * classification with CLIP's recipe (per class: mean of normalised template embeddings, renormalised; softmax of
 * exp(logit_scale)·cosine similarities).
 *
 * Dataset mode: `moeclip zeroshot --model DIR --dataset NAME [--root DIR] [--split S] [--classes all|even|odd]
 * [--json]` — the zero-shot accuracy on a registry dataset (src/pretrain/zeroshot-eval.ts), restricted to a class
 * subset of the sorted class ids (`even`/`odd`: Tiny ImageNet's pretraining base / held-out classes), printed as
 * `{"accuracy": number, "n": number}` with --json.
 *
 * The command is split into "where images and classes come from" ({@link ZeroShotSource}, built by
 * {@link sourceFromArgs}) and "classify and report" ({@link classify}), so that a dataset mode
 * (`--dataset NAME --root DIR --split S --classes all|even|odd`) only has to add another source, whose items carry
 * a `label`, and an accuracy line.
 */
import { asUsageError, parseCli, parsePositiveInt, parseThreads } from '../args.ts';
import type { Command, CliIO } from '../command.ts';
import { UsageError } from '../command.ts';
import { ClipModel, softmaxRows } from '../../clip/clip.ts';
import { loadClip } from '../../clip/load.ts';
import { readImage } from '../../io/image.ts';
import type { Image } from '../../data/types.ts';
import { DATASETS, loadDataset, resolveDatasetName } from '../../data/registry.ts';
import { zeroShotAccuracy } from '../../pretrain/zeroshot-eval.ts';

const DEFAULT_TEMPLATE = 'a photo of a {}.';

const USAGE = `usage: moeclip zeroshot --model DIR --image PATH... --class NAME... [--template T]... [--json] [--threads N]

Zero-shot classification of images among the given class names. Each class's text embedding is the
renormalised mean of its normalised template embeddings ("{}" in a template is replaced by the class name;
default template: "${DEFAULT_TEMPLATE}"). Probabilities are softmax(exp(logit_scale) · cosine similarity).

  --model DIR      the model folder (Hugging Face or open_clip layout)
  --image PATH     a PNG or JPEG file (repeatable)
  --class NAME     a class name (repeatable, at least two)
  --template T     a prompt template with {} (repeatable)
  --json           print {"results": [{"image", "probs", "argmax", "label"}]}
  --batch N        images per batch (default 32)
  --threads N      ONNX Runtime threads (default: all cores)

dataset mode: moeclip zeroshot --model DIR --dataset NAME [--root DIR] [--split val|test] [--classes all|even|odd]
              [--limit-per-class N] [--template T]... [--json]
  --dataset NAME        a registry dataset (tiny-imagenet, cifar10, mnist, imagefolder, ...)
  --root DIR            its folder (default: the registry's, e.g. .data/tiny-imagenet-200)
  --split S             the split to evaluate (default: test, or val when the dataset has no test split)
  --classes SUBSET      all (default), or even / odd positions of the sorted class ids: the candidate classes
                        and the evaluated images are both restricted to the subset
  --limit-per-class N   evaluate at most N images per class (the first ones)
  --template T          prompt templates (default: the dataset's)
  --json                print {"accuracy": number, "n": number}`;

/** One image to classify. `label` (the true class index) is known in dataset mode. */
export interface ZeroShotItem {
  id: string;
  load: () => Promise<Image>;
  label?: number;
}

/** Where the images, classes and templates come from. */
export interface ZeroShotSource {
  classNames: string[];
  templates: string[];
  items: ZeroShotItem[];
}

/** The result for one image. */
export interface ZeroShotResult {
  image: string;
  probs: number[];
  argmax: number;
  label: string;
}

type Values = { image: string[]; class: string[]; template: string[] };

/** The explicit-files source: `--image` paths and `--class` names (dataset mode would add a second branch here). */
export function sourceFromArgs(values: Values): ZeroShotSource {
  if (values.image.length === 0) throw new UsageError(`give at least one --image\n\n${USAGE}`);
  if (values.class.length < 2) throw new UsageError(`give at least two --class names\n\n${USAGE}`);
  const templates = values.template.length ? values.template : [DEFAULT_TEMPLATE];
  for (const t of templates) if (!t.includes('{}')) throw new UsageError(`--template ${JSON.stringify(t)} has no {} placeholder for the class name`);
  return {
    classNames: values.class,
    templates,
    items: values.image.map((p) => ({ id: p, load: () => readImage(p) })),
  };
}

/** Classifies every item of `source` in batches; `onBatch` reports progress. */
export async function classify(model: ClipModel, source: ZeroShotSource, batch: number, onBatch?: (done: number, total: number) => void): Promise<ZeroShotResult[]> {
  const classifier = await model.zeroShotClassifier(source.classNames, source.templates);
  const results: ZeroShotResult[] = [];
  const C = source.classNames.length;
  for (let a = 0; a < source.items.length; a += batch) {
    const chunk = source.items.slice(a, a + batch);
    const images = await Promise.all(chunk.map((it) => it.load()));
    const probs = softmaxRows(model.logits(await model.encodeImages(images), classifier));
    chunk.forEach((it, i) => {
      const p = Array.from(probs.data.subarray(i * C, (i + 1) * C));
      let best = 0;
      for (let c = 1; c < C; c++) if (p[c]! > p[best]!) best = c;
      results.push({ image: it.id, probs: p, argmax: best, label: source.classNames[best]! });
    });
    onBatch?.(Math.min(a + batch, source.items.length), source.items.length);
  }
  return results;
}

function printTable(io: CliIO, results: ZeroShotResult[]): void {
  const w = Math.max(5, ...results.map((r) => r.image.length));
  io.stdout(`${'image'.padEnd(w)}  label  (probability)\n`);
  for (const r of results) io.stdout(`${r.image.padEnd(w)}  ${r.label}  (${r.probs[r.argmax]!.toFixed(4)})\n`);
}

type DatasetValues = {
  model: string;
  dataset: string;
  image: string[];
  class: string[];
  template: string[];
  json: boolean;
  root?: string;
  split?: string;
  classes?: string;
  'limit-per-class'?: string;
};

/** Dataset mode: the zero-shot accuracy on a registry dataset (optionally a class subset). */
async function datasetMode(values: DatasetValues, batch: number, threads: number | undefined, io: CliIO): Promise<number> {
  if (values.image.length > 0 || values.class.length > 0) throw new UsageError(`--dataset cannot be combined with --image or --class\n\n${USAGE}`);
  const classes = values.classes ?? 'all';
  if (classes !== 'all' && classes !== 'even' && classes !== 'odd') throw new UsageError(`--classes must be all, even or odd, got '${classes}'`);
  const limitPerClass = parsePositiveInt('--limit-per-class', values['limit-per-class']);
  for (const t of values.template) if (!t.includes('{}')) throw new UsageError(`--template ${JSON.stringify(t)} has no {} placeholder for the class name`);
  const key = await asUsageError(() => resolveDatasetName(values.dataset));
  const splits = DATASETS[key]!.splits;
  const split = values.split ?? (splits.includes('test') ? 'test' : splits.includes('val') ? 'val' : splits[0]!);
  const loaded = loadClip(values.model);
  for (const w of loaded.warnings) io.stderr(`warning: ${w}\n`);
  let lastLine = 0;
  const dataset = await loadDataset({
    name: key,
    split,
    ...(values.root !== undefined ? { root: values.root } : {}),
    ...(limitPerClass !== undefined ? { limitPerClass } : {}),
    onProgress: (done, total) => {
      if (done === total || Date.now() - lastLine > 5000) {
        lastLine = Date.now();
        io.stderr(`decoding ${key}/${split}: ${done}/${total} images\n`);
      }
    },
    onWarning: (m) => io.stderr(`warning: ${m}\n`),
  });
  const model = await ClipModel.fromParts(loaded, { imageBatch: batch, ...(threads !== undefined ? { threads } : {}) });
  let result;
  try {
    result = await zeroShotAccuracy(model, dataset, {
      classes,
      batchSize: batch,
      ...(values.template.length > 0 ? { templates: values.template } : {}),
      onProgress: (done, total) => {
        if (Date.now() - lastLine > 5000) {
          lastLine = Date.now();
          io.stderr(`classified ${done}/${total}\n`);
        }
      },
    });
  } finally {
    await model.close();
  }
  if (values.json) io.stdout(JSON.stringify({ accuracy: result.accuracy, n: result.n }) + '\n');
  else {
    io.stdout(
      `zero-shot accuracy on ${key}/${split} (${classes} classes: ${result.classes}, ${result.n} images): ${(result.accuracy * 100).toFixed(2)}%\n`,
    );
  }
  return 0;
}

const zeroshot: Command = {
  summary: 'Zero-shot classify images among class names with a CLIP model',
  usage: USAGE,
  async run(argv, io) {
    const values = parseCli(
      argv,
      {
        model: { type: 'string' },
        image: { type: 'string', multiple: true, default: [] },
        class: { type: 'string', multiple: true, default: [] },
        template: { type: 'string', multiple: true, default: [] },
        json: { type: 'boolean', default: false },
        batch: { type: 'string' },
        threads: { type: 'string' },
        dataset: { type: 'string' },
        root: { type: 'string' },
        split: { type: 'string' },
        classes: { type: 'string' },
        'limit-per-class': { type: 'string' },
      },
      USAGE,
    );
    if (values.model === undefined) throw new UsageError(`--model DIR is required\n\n${USAGE}`);
    const batch = parsePositiveInt('--batch', values.batch) ?? 32;
    const threads = parseThreads(values.threads);
    if (values.dataset !== undefined) return datasetMode(values as DatasetValues, batch, threads, io);
    for (const flag of ['root', 'split', 'classes', 'limit-per-class'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} needs --dataset\n\n${USAGE}`);
    }
    const source = sourceFromArgs(values);

    const loaded = loadClip(values.model);
    for (const w of loaded.warnings) io.stderr(`warning: ${w}\n`);
    const model = await ClipModel.fromParts(loaded, { imageBatch: batch, ...(threads !== undefined ? { threads } : {}) });
    let results: ZeroShotResult[];
    try {
      results = await classify(model, source, batch, (done, total) => {
        if (total > batch) io.stderr(`classified ${done}/${total}\n`);
      });
    } finally {
      await model.close();
    }
    if (values.json) io.stdout(JSON.stringify({ results }) + '\n');
    else printTable(io, results);
    return 0;
  },
};
export default zeroshot;
