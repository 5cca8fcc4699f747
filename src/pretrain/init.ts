/**
 * Starting a pretraining run from an existing model (`init: DIR` in the config) instead of CLIP's random init.
 *
 * `DIR` is a CLIP model folder in the Hugging Face or open_clip layout (read with `loadClip`, src/clip/load.ts).
 * Its architecture fixes the config's `model` block: an omitted block is taken from the folder
 * ({@link modelBlockOf}); a given block must describe the same architecture ({@link architectureDifferences}),
 * else the config is rejected with every differing field named. `model.logitScaleInit` is not compared: the run
 * starts from the folder's learned `logit_scale`.
 *
 * What the run takes from `DIR`: every weight (so the first step's forward pass is the init model's), the full
 * token table (the compact table of the caption tokens is gathered from it, and at export the trained rows are
 * written back into it, so every other row is exported unchanged — bit for bit when the config's `float` is at
 * least the precision `DIR` is stored in: an F32 folder exported as F16 is rounded), its `logit_scale`, and the
 * image normalisation (mean/std, also written to the exported folder). What it does not take: optimizer state
 * (AdamW moments start at zero, the step at 0) and the learning-rate schedule (warmup + cosine run anew). It is a
 * new run, not a resume; `--resume` continues a run's own checkpoints.
 *
 * A {@link weightsFingerprint} of the init weights is stored in checkpoints, so a resumed run refuses an init
 * folder whose weights changed in between (the untouched token rows come from it at export).
 */
import { readJsonFile } from '../io/json.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { clipConfigFromHF, clipConfigFromOpenClip, type ClipConfig } from '../clip/config.ts';
import { detectModelDir, loadClip, type LoadedClip } from '../clip/load.ts';
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { ClipWeights } from '../clip/weights.ts';
import type { ModelConfig } from './config.ts';

/** LayerNorm epsilon a `model` block implies when it gives none (PyTorch's default, CLIP's value). */
export const DEFAULT_LN_EPS = 1e-5;


/**
 * The architecture of a CLIP model folder from its config file alone (`config.json` or `open_clip_config.json`,
 * parsed as `loadClip` does), without reading the weights.
 */
export function readModelArchitecture(dir: string): ClipConfig {
  const layout = detectModelDir(dir);
  if (layout === 'hf') return clipConfigFromHF(readJsonFile(join(dir, 'config.json')), join(dir, 'config.json'));
  return clipConfigFromOpenClip(readJsonFile(join(dir, 'open_clip_config.json')), join(dir, 'open_clip_config.json')).config;
}

/**
 * The `model` block describing `cfg`, written as a user would (defaults left out: `mlpDim` only when it is not
 * 4 × width, a tower's `act` only when it differs from the shared `act`, `lnEps` only when not 1e-5), so that
 * `clipConfigOf` of a config with this block gives back `cfg`.
 */
export function modelBlockOf(cfg: ClipConfig): ModelConfig {
  const v = cfg.vision;
  const t = cfg.text;
  const act = v.act;
  return {
    act,
    vision: {
      imageSize: v.imageSize,
      patchSize: v.patchSize,
      width: v.width,
      layers: v.layers,
      heads: v.heads,
      ...(v.mlpDim !== 4 * v.width ? { mlpDim: v.mlpDim } : {}),
      ...(v.lnEps !== DEFAULT_LN_EPS ? { lnEps: v.lnEps } : {}),
    },
    text: {
      contextLength: t.contextLength,
      width: t.width,
      layers: t.layers,
      heads: t.heads,
      ...(t.mlpDim !== 4 * t.width ? { mlpDim: t.mlpDim } : {}),
      ...(t.act !== act ? { act: t.act } : {}),
      vocabSize: t.vocabSize,
      ...(t.lnEps !== DEFAULT_LN_EPS ? { lnEps: t.lnEps } : {}),
    },
    embedDim: cfg.embedDim,
    logitScaleInit: cfg.logitScaleInit,
  };
}

/** One architecture field that differs: its path in the pretraining config and both values. */
export interface ArchitectureDifference {
  /** e.g. `model.vision.width` */
  field: string;
  config: number | string;
  init: number | string;
}

const VISION_FIELDS = ['imageSize', 'patchSize', 'width', 'layers', 'heads', 'mlpDim', 'act', 'lnEps'] as const;
const TEXT_FIELDS = ['contextLength', 'vocabSize', 'width', 'layers', 'heads', 'mlpDim', 'act', 'lnEps'] as const;

/**
 * Every architecture field in which `config` (the pretraining config's model) and `init` (the init model's)
 * differ, named by its path in the pretraining config. `logitScaleInit` is not architecture and not compared.
 */
export function architectureDifferences(config: ClipConfig, init: ClipConfig): ArchitectureDifference[] {
  const out: ArchitectureDifference[] = [];
  for (const f of VISION_FIELDS) if (config.vision[f] !== init.vision[f]) out.push({ field: `model.vision.${f}`, config: config.vision[f], init: init.vision[f] });
  for (const f of TEXT_FIELDS) if (config.text[f] !== init.text[f]) out.push({ field: `model.text.${f}`, config: config.text[f], init: init.text[f] });
  if (config.embedDim !== init.embedDim) out.push({ field: 'model.embedDim', config: config.embedDim, init: init.embedDim });
  return out;
}

/**
 * Throws unless `config` and the init model's architecture `init` agree; the message names the init folder and
 * every differing field with both values.
 */
export function checkInitArchitecture(config: ClipConfig, init: ClipConfig, dir: string): void {
  const diffs = architectureDifferences(config, init);
  if (diffs.length === 0) return;
  const lines = diffs.map((d) => `  ${d.field}: ${d.config} in the config, ${d.init} in the init model`);
  throw new Error(
    `init: the config's model differs from the init model ${dir} in ${diffs.map((d) => d.field).join(', ')}:\n${lines.join('\n')}\n` +
      `(omit the config's model block to take the init model's architecture)`,
  );
}

/**
 * A 32-bit FNV-1a hash of weights: tensor names (sorted), shapes and the float32 bit patterns of the values.
 * Any change of any value changes it (up to hash collisions); printed as 8 hex digits.
 */
export function weightsFingerprint(weights: ClipWeights): string {
  let h = 0x811c9dc5;
  const word = (x: number) => {
    for (let k = 0; k < 4; k++) {
      h ^= x & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
      x >>>= 8;
    }
  };
  for (const name of [...weights.keys()].sort()) {
    const w = weights.get(name)!;
    for (let i = 0; i < name.length; i++) word(name.charCodeAt(i));
    word(w.shape.length);
    for (const d of w.shape) word(d);
    const bits = new Uint32Array(w.data.buffer, w.data.byteOffset, w.data.length);
    for (let i = 0; i < bits.length; i++) word(bits[i]!);
  }
  return h.toString(16).padStart(8, '0');
}

/** The init model of a run, loaded and checked against the run's architecture. */
export interface InitModel extends LoadedClip {
  /** {@link weightsFingerprint} of the weights. */
  fingerprint: string;
}

/** Loads the init model folder `dir` with `loadClip` and checks that it has the architecture `config`. */
export function loadInitModel(dir: string, config: ClipConfig): InitModel {
  if (!existsSync(dir)) throw new Error(`init: model folder ${dir} does not exist`);
  let loaded: LoadedClip;
  try {
    loaded = loadClip(dir);
  } catch (e) {
    throw new Error(`init: ${(e as Error).message}`);
  }
  checkInitArchitecture(config, loaded.config, dir);
  return { ...loaded, fingerprint: weightsFingerprint(loaded.weights) };
}

/**
 * Throws unless `tokenizer` turns every text into the same token ids as the init model's tokenizer (the token
 * table rows of the init model belong to its tokenizer's ids). `texts` are the run's possible captions.
 */
export function checkInitTokenizer(tokenizer: ClipTokenizer, init: ClipTokenizer, texts: readonly string[], contextLength: number, dir: string): void {
  const fail = (what: string): never => {
    throw new Error(`init: the tokenizer differs from the init model's (${dir}): ${what}; use the init model's tokenizer (e.g. tokenizer: ${dir})`);
  };
  if (tokenizer === init) return;
  if (tokenizer.vocabSize !== init.vocabSize) fail(`${tokenizer.vocabSize} vs ${init.vocabSize} tokens`);
  if (tokenizer.sot !== init.sot || tokenizer.eot !== init.eot) fail(`start/end-of-text ids ${tokenizer.sot}/${tokenizer.eot} vs ${init.sot}/${init.eot}`);
  const chunk = 512;
  for (let a = 0; a < texts.length; a += chunk) {
    const part = texts.slice(a, a + chunk);
    const x = tokenizer.tokenize(part, contextLength);
    const y = init.tokenize(part, contextLength);
    for (let r = 0; r < part.length; r++) {
      const n = x.lengths[r]!;
      let same = n === y.lengths[r];
      for (let t = 0; same && t < n; t++) same = x.ids[r * contextLength + t] === y.ids[r * contextLength + t];
      if (!same) fail(`caption ${JSON.stringify(part[r])} tokenises differently`);
    }
  }
}
