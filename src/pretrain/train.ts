/**
 * The pretraining loop: contrastive training of a CLIP — from scratch, or from an existing model's weights
 * (`init`, see init.ts) — on a labelled image dataset whose class names (and synonyms) become captions.
 *
 *   setup:  load the training split (class subset, limit), WordNet when captions or the text–text term use it
 *           (grounding.ts), the caption sampler, the text-pair synsets and the compact vocabulary of both,
 *           initialise the weights (CLIP's init, seeded; or the `init` model's weights, token table and
 *           logit_scale included, with AdamW moments at zero, step 0 and the LR schedule from its start),
 *           build the training-step graph (loss.ts) once;
 *   step t: lr = warmup+cosine(t); one `session.run` does forward, backward and AdamW on the batch prepared
 *           while the previous step ran (double buffering: the worker thread computes, the main thread
 *           augments and tokenises the next batch); logit_scale is clamped to [0, ln 100];
 *   every `checkpointEvery` steps, on stop requests and at the end: a checkpoint (checkpoint.ts);
 *   every `eval.every` steps and at the end: zero-shot accuracy on the evaluation split, on the training
 *           classes ("seen") and, for an even/odd subset, on the other half ("unseen"), and on `eval.datasets`;
 *   at the end: the Hugging Face model folder (export.ts).
 *
 * Determinism: batches depend only on the seed and the sampler state, the graph is fixed, and ONNX Runtime's
 * CPU kernels are deterministic for a fixed thread count, so a run stopped and resumed from a checkpoint ends
 * with the same weights as an uninterrupted run (bit for bit with the same `threads`).
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ClipModel } from '../clip/clip.ts';
import type { ClipConfig } from '../clip/config.ts';
import { clipPreprocessConfig, CLIP_MEAN, CLIP_STD, type PreprocessConfig } from '../clip/preprocess.ts';
import { randomClipWeights } from '../clip/random.ts';
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { ClipWeights } from '../clip/weights.ts';
import { fnv1a } from '../data/cache.ts';
import { loadDataset, type DatasetSpec } from '../data/registry.ts';
import type { Dataset } from '../data/types.ts';
import { WORDNET_DEFAULT_DIR, WordNet } from '../data/wordnet.ts';
import { Engine } from '../runtime/engine.ts';
import { warmupCosineLr } from '../runtime/schedule.ts';
import { TrainState } from '../runtime/train-state.ts';
import type { TensorData } from '../runtime/types.ts';
import { CaptionSampler } from './captions.ts';
import { classNameChoices, classSubsetOf, samplesOfClasses } from './classes.ts';
import { classRelatives, runTextPairItems } from './grounding.ts';
import { allPairTexts, type TextPairItem } from './text-pairs.ts';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type HistoryEntry } from './checkpoint.ts';
import { clipConfigOf, trainingSignature, type ClassSubset, type PretrainConfig } from './config.ts';
import { weightsFromState, writeHfClip } from './export.ts';
import { checkInitTokenizer, loadInitModel, type InitModel } from './init.ts';
import { buildPretrainStep, TOKEN_EMBEDDING } from './loss.ts';
import { BatchSampler, type PretrainBatch } from './sampler.ts';
import { CompactVocab } from './vocab.ts';
import { zeroShotAccuracy, type ZeroShotAccuracy } from './zeroshot-eval.ts';

/** Largest logit scale CLIP allows: ln 100. */
export const MAX_LOGIT_SCALE = Math.log(100);

/** Progress of a run, for the CLI (or any other observer). */
export type PretrainEvent =
  | { type: 'log'; message: string }
  | { type: 'data'; done: number; total: number; split: string }
  | {
      type: 'start';
      startStep: number;
      /** The model folder the weights were initialised from (null: CLIP's random init). */
      init: string | null;
      steps: number;
      stopAt: number;
      samples: number;
      classes: number;
      batchSize: number;
      vocab: number;
      params: number;
      /** Synsets of the text–text term (null without it). */
      pairSynsets: number | null;
    }
  | {
      type: 'step';
      step: number;
      steps: number;
      loss: number;
      lossI2T: number;
      lossT2I: number;
      /** The text–text term (null without it). */
      lossTT: number | null;
      /** Fraction of pairs whose most similar `b` is an interchangeable one (null without the term). */
      pairAccuracy: number | null;
      lr: number;
      logitScale: number;
      gradNorm: number | null;
      /** Fraction of the batch's images whose most similar caption is their own class's. */
      batchAccuracy: number;
      texts: number;
      stepMs: number;
      imagesPerSec: number;
    }
  | { type: 'eval'; step: number; seen: ZeroShotAccuracy; unseen: ZeroShotAccuracy | null; extra: ExtraEval[]; ms: number }
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'export'; dir: string };

/** A zero-shot evaluation on one of `eval.datasets`. */
export interface ExtraEval extends ZeroShotAccuracy {
  dataset: string;
  split: string;
}

export interface PretrainOptions {
  /** Tokenizer of the run (its vocabulary is exported with the model). */
  tokenizer: ClipTokenizer;
  /** Engine to run on (not closed here); default: a new engine with `config.threads` threads, closed at the end. */
  engine?: Engine;
  /** Model folder written when training completes (default `config.out`; none: no export). */
  outDir?: string;
  /** Checkpoint folder (default `config.checkpointDir`; none: no checkpoints). */
  checkpointDir?: string;
  /** Continue from the checkpoint in `checkpointDir`. */
  resume?: boolean;
  /** Stop (with a checkpoint, without export) once the run has made this many steps in total. */
  maxSteps?: number;
  /** Stop request (Ctrl-C): the current step finishes, a checkpoint is written, the run returns. */
  signal?: AbortSignal;
  onEvent?: (e: PretrainEvent) => void;
  /** Datasets to use instead of loading `config.data` / the eval split (tests). */
  trainData?: Dataset;
  evalData?: Dataset | null;
  /** The `eval.datasets` to use instead of loading them (tests), in config order. */
  extraEvalData?: Dataset[];
  /** WordNet to use instead of reading `config.wordnet` (tests). */
  wordnet?: WordNet;
}

export interface PretrainResult {
  config: ClipConfig;
  /** Steps made (in total, including those before a resume). */
  step: number;
  steps: number;
  finished: boolean;
  /** Full canonical weights at the end (token table rebuilt). */
  weights: ClipWeights;
  state: TrainState;
  vocab: CompactVocab;
  history: HistoryEntry[];
  /** The last evaluation, if any. */
  eval: { step: number; seen: ZeroShotAccuracy; unseen: ZeroShotAccuracy | null; extra: ExtraEval[] } | null;
  /** The text-pair synsets (empty without the text–text term). */
  pairItems: TextPairItem[];
  outDir: string | null;
  checkpointPath: string | null;
  elapsedMs: number;
}

/** The complementary subset used for the "unseen" evaluation (null for `all`). */
export function complementOf(subset: ClassSubset): ClassSubset | null {
  return subset === 'even' ? 'odd' : subset === 'odd' ? 'even' : null;
}

/** Total optimizer steps of a config for a training set of `samples` images. */
export function totalSteps(cfg: PretrainConfig, samples: number): number {
  if (cfg.optim.steps !== undefined) return cfg.optim.steps;
  return Math.max(1, Math.ceil((cfg.optim.epochs! * samples) / cfg.optim.batchSize));
}

/** First differing path of two JSON-like values, or null when equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return path || '(root)';
  if (typeof a !== 'object' || a === null) return Object.is(a, b) ? null : path || '(root)';
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  for (const k of new Set([...ka, ...kb])) {
    const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    if (d) return d;
  }
  return null;
}

function dataSpec(cfg: PretrainConfig, split: string, limitPerClass: number | undefined, onProgress?: (d: number, t: number) => void): DatasetSpec {
  return {
    name: cfg.data.dataset,
    split,
    ...(cfg.data.root !== undefined ? { root: cfg.data.root } : {}),
    ...(limitPerClass !== undefined ? { limitPerClass, seed: cfg.seed } : {}),
    ...(onProgress ? { onProgress } : {}),
  };
}

/** Fraction of rows whose argmax column is the row's target column. */
function batchAccuracy(logits: Float32Array, targets: Float32Array, B: number, K: number): number {
  let ok = 0;
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[b * K + k]! > logits[b * K + best]!) best = k;
    if (targets[b * K + best] === 1) ok++;
  }
  return ok / B;
}

/** Runs (or resumes) a pretraining run; see the module doc. */
export async function pretrain(cfg: PretrainConfig, opts: PretrainOptions): Promise<PretrainResult> {
  const emit = (e: PretrainEvent) => opts.onEvent?.(e);
  const clipCfg = clipConfigOf(cfg);
  const tokenizer = opts.tokenizer;
  if (tokenizer.vocabSize > clipCfg.text.vocabSize) {
    throw new Error(`model.text.vocabSize: ${clipCfg.text.vocabSize} is smaller than the tokenizer's ${tokenizer.vocabSize} tokens`);
  }
  const checkpointDir = opts.checkpointDir ?? cfg.checkpointDir ?? null;
  const outDir = opts.outDir ?? cfg.out ?? null;
  if (opts.resume && (!checkpointDir || !hasCheckpoint(checkpointDir))) {
    throw new Error(`--resume: no checkpoint in ${checkpointDir ?? '(no checkpoint folder configured)'}`);
  }

  // ---- data
  const onData = (split: string) => (done: number, total: number) => emit({ type: 'data', done, total, split });
  const train = opts.trainData ?? (await loadDataset(dataSpec(cfg, cfg.data.split, cfg.data.limitPerClass, onData(cfg.data.split))));
  const seenLabels = classSubsetOf(train, cfg.data.classes);
  const indices = samplesOfClasses(train, seenLabels);
  if (indices.length < 2) throw new Error(`data: ${train.name}/${train.split} has ${indices.length} samples in class subset '${cfg.data.classes}'`);
  const templates = cfg.captions.templates ?? train.templates;
  if (templates.length === 0) throw new Error(`captions.templates: dataset ${train.name} has no templates; give some`);
  const cap = cfg.captions;
  const mix = { hypernym: cap.hypernym, hypernymOnly: cap.hypernymOnly, gloss: cap.gloss };
  const needsWordNet = mix.hypernym + mix.hypernymOnly + mix.gloss > 0 || cfg.textText !== undefined;
  const wordnet = !needsWordNet ? null : (opts.wordnet ?? WordNet.load(cfg.wordnet ?? resolve(WORDNET_DEFAULT_DIR)));
  const captions = new CaptionSampler(
    classNameChoices(train, cap.synonyms),
    templates,
    wordnet ? { relatives: classRelatives(wordnet, train, seenLabels, cap.hypernymDepth), mix } : {},
  );
  const pairItems = wordnet ? runTextPairItems(wordnet, cfg, train, templates) : [];
  const tt = cfg.textText;
  const vocab = captions.vocabulary(tokenizer, seenLabels, clipCfg.text.contextLength, allPairTexts(pairItems));
  const steps = totalSteps(cfg, indices.length);
  if (cfg.optim.warmupSteps > steps) throw new Error(`optim.warmupSteps: ${cfg.optim.warmupSteps} is more than the ${steps} steps of the run`);
  const schedule = warmupCosineLr({ lr: cfg.optim.lr, warmupSteps: cfg.optim.warmupSteps, totalSteps: steps, floor: cfg.optim.lrFloor });

  // ---- weights and state
  // with `init`: the init model's weights (all of them: its token table is the base of the exported one, so
  // rows no caption uses are exported unchanged) and image normalisation; else CLIP's seeded random init
  let init: InitModel | null = null;
  if (cfg.init !== undefined) {
    init = loadInitModel(cfg.init, clipCfg);
    checkInitTokenizer(tokenizer, init.tokenizer, [...captions.allCaptions(seenLabels), ...allPairTexts(pairItems)], clipCfg.text.contextLength, cfg.init);
    for (const w of init.warnings) emit({ type: 'log', message: `init: ${w}` });
  }
  const initial = init ? init.weights : randomClipWeights(clipCfg, cfg.seed);
  const preprocess: PreprocessConfig = init ? init.preprocess : clipPreprocessConfig(clipCfg.vision.imageSize);
  const trainW: ClipWeights = new Map(initial);
  trainW.set(TOKEN_EMBEDDING, vocab.gatherRows(initial.get(TOKEN_EMBEDDING)!));
  let state: TrainState;
  let history: HistoryEntry[] = [];
  let elapsedBefore = 0;
  const sampler = new BatchSampler({
    dataset: train,
    indices,
    batchSize: cfg.optim.batchSize,
    imageSize: clipCfg.vision.imageSize,
    mean: init ? init.preprocess.mean : CLIP_MEAN,
    std: init ? init.preprocess.std : CLIP_STD,
    augment: cfg.augment,
    captions,
    tokenizer,
    vocab,
    contextLength: clipCfg.text.contextLength,
    seed: cfg.seed,
    textPairs: tt ? { items: pairItems, pairs: tt.batchSize, synonym: tt.synonym } : null,
  });
  const threads = opts.engine?.threads ?? cfg.threads ?? availableParallelism();
  if (opts.resume) {
    const ck = loadCheckpoint(checkpointDir!);
    const where = `${checkpointDir}/checkpoint.json`;
    const diff = firstDifference(ck.meta.signature, JSON.parse(JSON.stringify(trainingSignature(cfg))));
    if (diff) throw new Error(`${where}: the checkpoint was made with a different config (field '${diff}' differs); resuming needs the same training settings`);
    if (ck.meta.vocab.length !== vocab.size || ck.meta.vocab.some((id, i) => id !== vocab.ids[i])) {
      throw new Error(`${where}: vocab: the caption vocabulary differs from the checkpoint's (different dataset names, WordNet files or tokenizer?)`);
    }
    if (init && ck.meta.initFingerprint !== init.fingerprint) {
      throw new Error(`${where}: init: the weights in ${cfg.init} are not those the run started from (fingerprint ${init.fingerprint}, the checkpoint's ${ck.meta.initFingerprint ?? 'none'})`);
    }
    sampler.restore(ck.meta.sampler, `${where}: sampler`);
    state = ck.state;
    for (const [name, w] of trainW) {
      const t = state.get(name);
      if (t.dims.length !== w.shape.length || t.dims.some((d, i) => d !== w.shape[i])) {
        throw new Error(`${where}: tensor '${name}' has shape [${t.dims.join(',')}], the config needs [${w.shape.join(',')}]`);
      }
    }
    history = ck.meta.history ?? [];
    elapsedBefore = ck.meta.elapsedMs ?? 0;
    if (ck.meta.threads !== threads) emit({ type: 'log', message: `note: the checkpoint was made with ${ck.meta.threads} threads, now ${threads}: results are not bitwise identical to an uninterrupted run` });
  } else {
    const params: Record<string, TensorData> = {};
    for (const [name, w] of trainW) params[name] = { dtype: 'float32', dims: [...w.shape], data: w.data };
    state = new TrainState(params, { optimizer: 'adamw' });
  }

  // the evaluation split is loaded up front, so that a bad eval setting fails before training starts
  const evalEnabled = cfg.eval.enabled && opts.evalData !== null;
  const evalData: Dataset | null = !evalEnabled
    ? null
    : (opts.evalData ?? (await loadDataset(dataSpec(cfg, cfg.eval.split, cfg.eval.limitPerClass, onData(cfg.eval.split)))));
  const evalTemplates = cfg.eval.templates ?? cfg.captions.templates ?? undefined;
  const unseenSubset = complementOf(cfg.data.classes);
  const extraData: Dataset[] = !evalEnabled
    ? []
    : (opts.extraEvalData ??
      (await Promise.all(
        cfg.eval.datasets.map((d) =>
          loadDataset({
            name: d.dataset,
            split: d.split,
            ...(d.root !== undefined ? { root: d.root } : {}),
            ...(d.limitPerClass !== undefined ? { limitPerClass: d.limitPerClass, seed: cfg.seed } : {}),
            onProgress: onData(`${d.dataset}/${d.split}`),
          }),
        ),
      )));
  if (extraData.length !== (evalEnabled ? cfg.eval.datasets.length : 0)) throw new Error(`eval.datasets: ${cfg.eval.datasets.length} configured, ${extraData.length} given`);

  const engine = opts.engine ?? (await Engine.create({ threads }));
  const ownsEngine = opts.engine === undefined;
  let lastEval: PretrainResult['eval'] = null;
  const t0 = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - t0);

  const evaluate = async (step: number) => {
    const ds = evalData!;
    const te = Date.now();
    const weights = weightsFromState(state, initial, vocab);
    const model = await ClipModel.fromParts(
      { config: clipCfg, weights, tokenizer, preprocess },
      { engine, imageBatch: cfg.eval.batchSize, textBatch: 256 },
    );
    try {
      const zsOpts = { batchSize: cfg.eval.batchSize, ...(evalTemplates ? { templates: evalTemplates } : {}) };
      const seen = await zeroShotAccuracy(model, ds, { ...zsOpts, classes: cfg.data.classes });
      const unseen = unseenSubset ? await zeroShotAccuracy(model, ds, { ...zsOpts, classes: unseenSubset }) : null;
      const extra: ExtraEval[] = [];
      for (const [i, d] of cfg.eval.datasets.entries()) {
        const data = extraData[i]!;
        const acc = await zeroShotAccuracy(model, data, { batchSize: cfg.eval.batchSize, classes: d.classes, ...(d.templates ? { templates: d.templates } : {}) });
        extra.push({ dataset: d.dataset, split: d.split, ...acc });
      }
      lastEval = { step, seen, unseen, extra };
      history.push({
        step,
        type: 'eval',
        seen: seen.accuracy,
        seenN: seen.n,
        unseen: unseen?.accuracy ?? null,
        unseenN: unseen?.n ?? null,
        ...(extra.length > 0 ? { extra: extra.map((e) => ({ dataset: e.dataset, split: e.split, accuracy: e.accuracy, n: e.n })) } : {}),
      });
      emit({ type: 'eval', step, seen, unseen, extra, ms: Date.now() - te });
    } finally {
      await model.close();
    }
  };

  let checkpointPath: string | null = null;
  const checkpoint = (samplerState: ReturnType<BatchSampler['state']>) => {
    if (!checkpointDir) return;
    checkpointPath = saveCheckpoint(checkpointDir, state, {
      sampler: samplerState,
      vocab: Array.from(vocab.ids),
      signature: JSON.parse(JSON.stringify(trainingSignature(cfg))) as Record<string, unknown>,
      ...(init ? { initFingerprint: init.fingerprint } : {}),
      threads,
      elapsedMs: elapsed(),
      history,
    });
    emit({ type: 'checkpoint', step: state.step, path: checkpointPath });
  };

  const stopAt = Math.min(steps, opts.maxSteps ?? steps);
  try {
    const term = tt ? { pairs: tt.batchSize, weight: tt.weight } : undefined;
    const graphKey = fnv1a(JSON.stringify({ clipCfg, optim: cfg.optim, vocab: vocab.size, term: term ?? null })).toString(16);
    const step0 = await engine.session(`pretrain/${graphKey}`, () => {
      const built = buildPretrainStep(
        clipCfg,
        trainW,
        {
          weightDecay: cfg.optim.weightDecay,
          betas: cfg.optim.betas as [number, number],
          eps: cfg.optim.eps,
          clipNorm: cfg.optim.clipNorm,
        },
        term,
      );
      return built.bytes;
    });
    emit({
      type: 'start',
      startStep: state.step,
      init: cfg.init ?? null,
      steps,
      stopAt,
      samples: indices.length,
      classes: seenLabels.length,
      batchSize: cfg.optim.batchSize,
      vocab: vocab.size,
      params: state.size,
      pairSynsets: tt ? pairItems.length : null,
    });
    const B = cfg.optim.batchSize;
    const S = clipCfg.vision.imageSize;
    // `after` is always the sampler state before the batch in `next` was drawn: the resume point after the
    // last completed step
    let after = sampler.state();
    let next: PretrainBatch | null = state.step < stopAt ? sampler.next() : null;
    let window: { loss: number; n: number; tt?: number } = { loss: 0, n: 0 };
    let stopped = false;
    while (next && state.step < stopAt) {
      const batch: PretrainBatch = next;
      const t = state.step;
      const lr = schedule(t);
      const ts = Date.now();
      const K = batch.idsDims[0];
      const feeds: Record<string, TensorData> = {
        pixels: { dtype: 'float32', dims: [B, 3, S, S], data: batch.pixels },
        ids: { dtype: 'int64', dims: [...batch.idsDims], data: batch.ids },
        targets: { dtype: 'float32', dims: [B, K], data: batch.targets },
      };
      if (batch.pairs) {
        const N = batch.pairs.a.length;
        feeds['tt_ids'] = { dtype: 'int64', dims: [...batch.pairs.idsDims], data: batch.pairs.ids };
        feeds['tt_targets'] = { dtype: 'float32', dims: [N, N], data: batch.pairs.targets };
      }
      const running = state.trainStep(engine, step0, feeds, lr);
      // double buffering: prepare the next batch while the worker runs this step
      after = sampler.state();
      next = t + 1 < stopAt ? sampler.next() : null;
      const out = await running;
      // clamp the learned temperature (open_clip: logit_scale.clamp_(0, ln 100) after the step)
      const ls = state.get('logit_scale');
      const v = ls.data[0] as number;
      if (v > MAX_LOGIT_SCALE || v < 0) state.set('logit_scale', { dtype: 'float32', dims: [...ls.dims], data: Float32Array.of(Math.min(MAX_LOGIT_SCALE, Math.max(0, v))) });
      const stepMs = Date.now() - ts;
      const loss = out['loss']!.data[0] as number;
      if (!Number.isFinite(loss)) throw new Error(`step ${t + 1}: the loss is ${loss}; lower optim.lr or set optim.clipNorm`);
      window.loss += loss;
      window.n++;
      const step = state.step;
      emit({
        type: 'step',
        step,
        steps,
        loss,
        lossI2T: out['loss_i2t']!.data[0] as number,
        lossT2I: out['loss_t2i']!.data[0] as number,
        lossTT: out['loss_tt'] ? (out['loss_tt'].data[0] as number) : null,
        pairAccuracy: out['tt_logits'] && batch.pairs ? batchAccuracy(out['tt_logits'].data as Float32Array, batch.pairs.targets, batch.pairs.a.length, batch.pairs.a.length) : null,
        lr,
        logitScale: Math.exp(state.get('logit_scale').data[0] as number),
        gradNorm: out['grad_norm'] ? (out['grad_norm'].data[0] as number) : null,
        batchAccuracy: batchAccuracy(out['logits']!.data as Float32Array, batch.targets, B, K),
        texts: K,
        stepMs,
        imagesPerSec: (B * 1000) / Math.max(1, stepMs),
      });
      if (out['loss_tt']) {
        window.tt = (window.tt ?? 0) + (out['loss_tt'].data[0] as number);
      }
      if (step % 50 === 0 || step === stopAt) {
        history.push({
          step,
          type: 'train',
          loss: window.loss / window.n,
          ...(window.tt !== undefined ? { lossTT: window.tt / window.n } : {}),
          lr,
          elapsedMs: elapsed(),
        });
        window = { loss: 0, n: 0 };
      }
      const finishedNow = step === steps;
      stopped = opts.signal?.aborted === true;
      if (evalEnabled && !finishedNow && cfg.eval.every > 0 && step % cfg.eval.every === 0) await evaluate(step);
      if (!finishedNow && (stopped || step === stopAt || (cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0))) checkpoint(after);
      if (stopped) break;
    }
    const finished = state.step === steps;
    if (finished) {
      if (evalEnabled) await evaluate(state.step);
      checkpoint(after);
    }
    const weights = weightsFromState(state, initial, vocab);
    let exported: string | null = null;
    if (finished && outDir) {
      writeHfClip(outDir, clipCfg, weights, tokenizer, {
        float: cfg.float,
        mean: preprocess.mean,
        std: preprocess.std,
        info: {
          format: 'moeclip.pretrain-info',
          name: cfg.name ?? null,
          init: cfg.init ?? null,
          steps,
          samples: indices.length,
          classes: seenLabels.length,
          classSubset: cfg.data.classes,
          dataset: cfg.data.dataset,
          vocabularyRows: vocab.size,
          pairSynsets: tt ? pairItems.length : null,
          trainingSeconds: Math.round(elapsed() / 1000),
          eval: lastEval,
          training: trainingSignature(cfg),
          history,
        },
      });
      exported = outDir;
      emit({ type: 'export', dir: outDir });
    }
    return {
      config: clipCfg,
      step: state.step,
      steps,
      finished,
      weights,
      state,
      vocab,
      history,
      eval: lastEval,
      pairItems,
      outDir: exported,
      checkpointPath,
      elapsedMs: elapsed(),
    };
  } finally {
    if (ownsEngine) await engine.close();
  }
}
