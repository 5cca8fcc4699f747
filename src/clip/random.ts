/**
 * Random CLIP models: weights initialised like OpenAI's CLIP, and a writer that lays out a complete model folder
 * (config + safetensors + tokenizer files + preprocessing config) in the Hugging Face or open_clip layout, so that
 * tests, demos and the pretraining command can create models without downloading anything.
 *
 * Initialisation (OpenAI CLIP `initialize_parameters`, all normal with mean 0):
 * - text token embedding std 0.02, text positional embedding std 0.01;
 * - per block of width w in a tower of L layers: q/k/v std w^-½, out-projection std w^-½·(2L)^-½,
 *   fc1 std (2w)^-½, fc2 std w^-½·(2L)^-½; biases 0; LayerNorm weight 1, bias 0;
 * - text projection std w_text^-½; image class embedding, positional embedding and projection std w_vision^-½;
 * - patch embedding (a conv without bias) std (3·p²)^-½; `logit_scale` = config.logitScaleInit.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { writeSafetensors, type StTensor } from '../io/safetensors.ts';
import { Rng } from '../util/rng.ts';
import { ClipTokenizer } from './tokenizer.ts';
import type { ClipConfig, OpenClipPreprocess } from './config.ts';
import { clipConfigToHF, clipConfigToOpenClip, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from './config.ts';
import type { ClipWeights, WeightTensor } from './weights.ts';
import { clipWeightShapes, weightsToOpenClip } from './weights.ts';

export interface RandomClipOptions {
  /**
   * Standard deviation of random noise put on biases (otherwise 0) and on LayerNorm weights/biases (otherwise 1/0).
   * Default 0 (CLIP's init). Tests set it so that every tensor influences the output.
   */
  perturbStd?: number;
}

/** The init std of a canonical tensor (see the module doc), or null for "constant" tensors. */
function initStd(name: string, shape: number[], cfg: ClipConfig): number | null {
  const tower = name.startsWith('vision_model.') ? cfg.vision : cfg.text;
  const width = tower.width;
  const L = tower.layers;
  if (name.endsWith('.bias')) return null;
  if (name.includes('layer_norm') || name.includes('layrnorm') || name.includes('layernorm')) return null;
  if (name === 'logit_scale') return null;
  if (name === 'text_model.embeddings.token_embedding.weight') return 0.02;
  if (name === 'text_model.embeddings.position_embedding.weight') return 0.01;
  if (name === 'vision_model.embeddings.patch_embedding.weight') return 1 / Math.sqrt(3 * shape[2]! * shape[3]!);
  if (name === 'vision_model.embeddings.class_embedding' || name === 'vision_model.embeddings.position_embedding.weight') return width ** -0.5;
  if (name === 'visual_projection.weight') return cfg.vision.width ** -0.5;
  if (name === 'text_projection.weight') return cfg.text.width ** -0.5;
  if (/self_attn\.[qkv]_proj\.weight$/.test(name)) return width ** -0.5;
  if (name.endsWith('self_attn.out_proj.weight') || name.endsWith('mlp.fc2.weight')) return width ** -0.5 * (2 * L) ** -0.5;
  if (name.endsWith('mlp.fc1.weight')) return (2 * width) ** -0.5;
  throw new Error(`randomClipWeights: no init rule for '${name}'`);
}

/**
 * Random canonical CLIP weights for `cfg`, deterministic in `seed` (each tensor draws from its own forked stream,
 * in the order of {@link clipWeightShapes}).
 */
export function randomClipWeights(cfg: ClipConfig, seed: number, opts: RandomClipOptions = {}): ClipWeights {
  const rng = new Rng(seed);
  const perturb = opts.perturbStd ?? 0;
  const out: ClipWeights = new Map();
  for (const [name, shape] of clipWeightShapes(cfg)) {
    const r = rng.fork();
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const std = initStd(name, shape, cfg);
    if (name === 'logit_scale') data[0] = cfg.logitScaleInit;
    else if (std !== null) for (let i = 0; i < n; i++) data[i] = std * r.normal();
    else {
      const isLnWeight = !name.endsWith('.bias');
      for (let i = 0; i < n; i++) data[i] = (isLnWeight ? 1 : 0) + (perturb > 0 ? perturb * r.normal() : 0);
    }
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer files

/**
 * Hugging Face `vocab.json` and `merges.txt` contents for CLIP's BPE, made from the original merge list
 * (`bpe_simple_vocab_16e6.txt.gz`): the same 49 408 ids, merges in rank order after a `#version: 0.2` header.
 */
export function hfTokenizerFilesFromBpe(bpeGzPath: string): { vocab: Record<string, number>; merges: string } {
  const { vocab, merges } = ClipTokenizer.fromBpeGz(bpeGzPath).exportVocabMerges();
  return { vocab, merges: ['#version: 0.2', ...merges].join('\n') + '\n' };
}

/** The Hugging Face `preprocessor_config.json` of a CLIP image processor for square `size` inputs. */
export function hfPreprocessorConfig(size: number, mean: readonly number[] = OPENAI_CLIP_MEAN, std: readonly number[] = OPENAI_CLIP_STD): Record<string, unknown> {
  return {
    crop_size: { height: size, width: size },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [...mean],
    image_processor_type: 'CLIPImageProcessor',
    image_std: [...std],
    resample: 3,
    rescale_factor: 1 / 255,
    size: { shortest_edge: size },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Model folders

export interface WriteRandomClipOptions extends RandomClipOptions {
  /** `hf`: config.json + model.safetensors + vocab.json/merges.txt; `open_clip`: open_clip_config.json + open_clip_model.safetensors + the BPE gz. */
  layout: 'hf' | 'open_clip';
  seed: number;
  /** Storage of float tensors (default F32). */
  float?: 'F32' | 'F16';
  /** Path of CLIP's `bpe_simple_vocab_16e6.txt.gz`, from which the tokenizer files are made. */
  bpePath: string;
  /** Weights to write instead of random ones (e.g. a trained model). */
  weights?: ClipWeights;
  /** Image normalisation written to the preprocessing config (default OpenAI's). */
  preprocess?: OpenClipPreprocess;
}

function toSt(m: Map<string, WeightTensor>): Map<string, StTensor> {
  const out = new Map<string, StTensor>();
  for (const [k, v] of m) out.set(k, { dtype: 'float32', shape: v.shape, data: v.data });
  return out;
}

/**
 * Writes a complete CLIP model folder for `cfg` into `dir` (created if missing) and returns the weights written.
 * - `hf`: `config.json`, `model.safetensors` (HF names), `vocab.json`, `merges.txt`, `tokenizer_config.json`,
 *   `special_tokens_map.json`, `preprocessor_config.json`;
 * - `open_clip`: `open_clip_config.json` (with `preprocess_cfg`), `open_clip_model.safetensors` (open_clip names),
 *   and a copy of `bpe_simple_vocab_16e6.txt.gz`.
 */
export function writeRandomClip(dir: string, cfg: ClipConfig, opts: WriteRandomClipOptions): ClipWeights {
  const weights = opts.weights ?? randomClipWeights(cfg, opts.seed, opts);
  mkdirSync(dir, { recursive: true });
  const meta = { format: 'pt' };
  const stOpts = { float: opts.float ?? 'F32' } as const;
  const mean = opts.preprocess?.mean ?? OPENAI_CLIP_MEAN;
  const std = opts.preprocess?.std ?? OPENAI_CLIP_STD;
  if (opts.layout === 'hf') {
    writeJsonAtomic(join(dir, 'config.json'), clipConfigToHF(cfg));
    writeSafetensors(join(dir, 'model.safetensors'), toSt(weights), meta, stOpts);
    const { vocab, merges } = hfTokenizerFilesFromBpe(opts.bpePath);
    writeJsonAtomic(join(dir, 'vocab.json'), vocab);
    writeFileAtomic(join(dir, 'merges.txt'), merges);
    writeJsonAtomic(join(dir, 'tokenizer_config.json'), {
      tokenizer_class: 'CLIPTokenizer',
      model_max_length: cfg.text.contextLength,
      bos_token: '<|startoftext|>',
      eos_token: '<|endoftext|>',
      pad_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
      do_lower_case: true,
    });
    writeJsonAtomic(join(dir, 'special_tokens_map.json'), {
      bos_token: '<|startoftext|>',
      eos_token: '<|endoftext|>',
      pad_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
    });
    writeJsonAtomic(join(dir, 'preprocessor_config.json'), hfPreprocessorConfig(cfg.vision.imageSize, mean, std));
  } else if (opts.layout === 'open_clip') {
    writeJsonAtomic(join(dir, 'open_clip_config.json'), clipConfigToOpenClip(cfg, opts.preprocess));
    writeSafetensors(join(dir, 'open_clip_model.safetensors'), toSt(weightsToOpenClip(weights, cfg)), meta, stOpts);
    copyFileSync(opts.bpePath, join(dir, 'bpe_simple_vocab_16e6.txt.gz'));
  } else {
    throw new Error(`writeRandomClip: unknown layout '${String(opts.layout)}' (expected hf or open_clip)`);
  }
  return weights;
}
