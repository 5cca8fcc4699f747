/**
 * Loading a CLIP model folder in either layout:
 * - Hugging Face: `config.json` (CLIPModel) + `model.safetensors` + `vocab.json`/`merges.txt`
 *   (+ optional `preprocessor_config.json`);
 * - open_clip: `open_clip_config.json` + `open_clip_model.safetensors` (or the folder's only `*.safetensors`)
 *   + optional `bpe_simple_vocab_16e6.txt.gz` or `vocab.json`/`merges.txt` (without them: the bundled CLIP
 *   vocabulary, open_clip's default tokenizer).
 * Weights are converted to the canonical Hugging Face names (see weights.ts) and checked against the config.
 */
import { readJsonFile } from '../io/json.ts';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, type StTensor } from '../io/safetensors.ts';
import type { ClipConfig } from './config.ts';
import { clipConfigFromHF, clipConfigFromOpenClip } from './config.ts';
import { clipPreprocessConfig, preprocessConfigFromHF, type PreprocessConfig } from './preprocess.ts';
import { ClipTokenizer } from './tokenizer.ts';
import type { ClipLayout, ClipWeights, WeightTensor } from './weights.ts';
import { weightsFromHF, weightsFromOpenClip } from './weights.ts';

/** Everything needed to run a CLIP model. */
export interface LoadedClip {
  dir: string;
  layout: ClipLayout;
  config: ClipConfig;
  weights: ClipWeights;
  tokenizer: ClipTokenizer;
  preprocess: PreprocessConfig;
  /** Non-fatal findings (unknown extra tensors, preprocessing options that were approximated). */
  warnings: string[];
}


/** Safetensors tensors as float32 weight tensors (F16/BF16 are widened by the reader; ints are converted). */
function toWeightTensors(tensors: Map<string, StTensor>): Map<string, WeightTensor> {
  const out = new Map<string, WeightTensor>();
  for (const [name, t] of tensors) {
    let data: Float32Array;
    if (t.data instanceof Float32Array) data = t.data;
    else if (t.data instanceof BigInt64Array) data = Float32Array.from(t.data, (v) => Number(v));
    else data = Float32Array.from(t.data);
    out.set(name, { shape: [...t.shape], data });
  }
  return out;
}

/** Which layout a folder holds: `hf` when `config.json` exists, `open_clip` when `open_clip_config.json` does. */
export function detectModelDir(dir: string): ClipLayout {
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  if (existsSync(join(dir, 'config.json'))) return 'hf';
  if (existsSync(join(dir, 'open_clip_config.json'))) return 'open_clip';
  throw new Error(`${dir}: not a CLIP model folder (no config.json or open_clip_config.json)`);
}

function openClipWeightsFile(dir: string): string {
  const preferred = join(dir, 'open_clip_model.safetensors');
  if (existsSync(preferred)) return preferred;
  const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  if (files.length === 1) return join(dir, files[0]!);
  if (files.length === 0) throw new Error(`${dir}: no *.safetensors weights file next to open_clip_config.json (only safetensors is supported)`);
  throw new Error(`${dir}: several *.safetensors files (${files.join(', ')}); name the weights open_clip_model.safetensors`);
}

/**
 * Loads a CLIP model folder (layout detected, see the module doc): config, canonical weights (presence and shapes
 * checked), tokenizer and image preprocessing. Errors name the file and the field or tensor.
 */
export function loadClip(dir: string): LoadedClip {
  const layout = detectModelDir(dir);
  const warnings: string[] = [];
  let config: ClipConfig;
  let preprocess: PreprocessConfig;
  let weights: ClipWeights;
  if (layout === 'hf') {
    const cfgPath = join(dir, 'config.json');
    config = clipConfigFromHF(readJsonFile(cfgPath), cfgPath);
    const wPath = join(dir, 'model.safetensors');
    if (!existsSync(wPath)) throw new Error(`${wPath}: missing (only safetensors weights are supported)`);
    const r = weightsFromHF(toWeightTensors(readSafetensors(wPath).tensors), config, wPath);
    weights = r.weights;
    warnings.push(...r.warnings);
    const ppPath = join(dir, 'preprocessor_config.json');
    if (existsSync(ppPath)) {
      preprocess = preprocessConfigFromHF(readJsonFile(ppPath), ppPath);
      if (preprocess.size !== config.vision.imageSize) {
        throw new Error(`${ppPath}: crop_size ${preprocess.size} differs from the model's image_size ${config.vision.imageSize}`);
      }
    } else {
      preprocess = clipPreprocessConfig(config.vision.imageSize);
      warnings.push(`${ppPath}: missing, using OpenAI CLIP preprocessing at ${config.vision.imageSize} px`);
    }
  } else {
    const cfgPath = join(dir, 'open_clip_config.json');
    const oc = clipConfigFromOpenClip(readJsonFile(cfgPath), cfgPath);
    config = oc.config;
    const wPath = openClipWeightsFile(dir);
    const r = weightsFromOpenClip(toWeightTensors(readSafetensors(wPath).tensors), config, wPath);
    weights = r.weights;
    warnings.push(...r.warnings);
    const interp = oc.preprocess.interpolation;
    if (interp !== undefined && interp !== 'bicubic' && interp !== 'bilinear') {
      warnings.push(`${cfgPath}: preprocess_cfg.interpolation '${interp}' is not supported, using bicubic`);
    }
    const mode = oc.preprocess.resizeMode;
    if (mode !== undefined && mode !== 'shortest') {
      warnings.push(`${cfgPath}: preprocess_cfg.resize_mode '${mode}' is not supported, using 'shortest' + center crop`);
    }
    preprocess = {
      size: config.vision.imageSize,
      mean: [...oc.preprocess.mean],
      std: [...oc.preprocess.std],
      resample: interp === 'bilinear' ? 'bilinear' : 'bicubic',
    };
  }
  const tokenizer = ClipTokenizer.fromModelDir(dir, { bundledFallback: layout === 'open_clip' });
  if (tokenizer.vocabSize > config.text.vocabSize) {
    throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the text tower only ${config.text.vocabSize} (vocab_size)`);
  }
  return { dir, layout, config, weights, tokenizer, preprocess, warnings };
}
