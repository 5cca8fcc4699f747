/**
 * Random CLIP models: weights initialised like OpenAI's CLIP, and a writer that lays out a complete model folder
 * (config + safetensors + tokenizer files + preprocessing config, via save.ts) in the Hugging Face or open_clip
 * layout, so that tests, demos and the pretraining command can create models without downloading anything.
 *
 * Initialisation (OpenAI CLIP `initialize_parameters`, all normal with mean 0):
 * - text token embedding std 0.02, text positional embedding std 0.01;
 * - per block of width w in a tower of L layers: q/k/v std w^-½, out-projection std w^-½·(2L)^-½,
 *   fc1 std (2w)^-½, fc2 std w^-½·(2L)^-½; biases 0; LayerNorm weight 1, bias 0;
 * - text projection std w_text^-½; image class embedding, positional embedding and projection std w_vision^-½;
 * - patch embedding (a conv without bias) std (3·p²)^-½; `logit_scale` = config.logitScaleInit.
 */
import { Rng } from '../util/rng.ts';
import type { ClipConfig, OpenClipPreprocess } from './config.ts';
import { saveClipHF, saveClipOpenClip } from './save.ts';
import { ClipTokenizer } from './tokenizer.ts';
import type { ClipWeights } from './weights.ts';
import { clipWeightShapes } from './weights.ts';

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

/**
 * Writes a complete CLIP model folder for `cfg` into `dir` and returns the weights written; the files of each
 * layout and the rules for an existing `dir` are those of {@link saveClipHF} / {@link saveClipOpenClip} (save.ts).
 */
export function writeRandomClip(dir: string, cfg: ClipConfig, opts: WriteRandomClipOptions): ClipWeights {
  const weights = opts.weights ?? randomClipWeights(cfg, opts.seed, opts);
  const common = { config: cfg, weights, float: opts.float, preprocess: opts.preprocess };
  if (opts.layout === 'hf') saveClipHF(dir, { ...common, tokenizer: ClipTokenizer.fromBpeGz(opts.bpePath) });
  else if (opts.layout === 'open_clip') saveClipOpenClip(dir, { ...common, bpePath: opts.bpePath });
  else throw new Error(`writeRandomClip: unknown layout '${String(opts.layout)}' (expected hf or open_clip)`);
  return weights;
}
