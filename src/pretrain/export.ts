/**
 * Turning pretraining state into CLIP weights, and writing them as a Hugging Face `CLIPModel` folder:
 * `config.json`, `model.safetensors` (F16 or F32), `vocab.json` + `merges.txt` (from the tokenizer),
 * `tokenizer_config.json`, `special_tokens_map.json`, `preprocessor_config.json`, and optionally
 * `pretrain.json` (how the model was trained). `loadClip` (src/clip/load.ts) reads the folder back.
 */
import type { ClipConfig } from '../clip/config.ts';
import { saveClipHF } from '../clip/save.ts';
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { ClipWeights } from '../clip/weights.ts';
import type { TrainState } from '../runtime/train-state.ts';
import { TOKEN_EMBEDDING } from './loss.ts';
import type { CompactVocab } from './vocab.ts';

/**
 * The full canonical weights of a training state: every trained tensor from `state`, the token embedding
 * rebuilt from `initial` (the run's initial weights) with the trained compact rows written back.
 */
export function weightsFromState(state: TrainState, initial: ClipWeights, vocab: CompactVocab): ClipWeights {
  const out: ClipWeights = new Map();
  for (const [name, w] of initial) {
    if (!state.names.includes(name)) {
      out.set(name, { shape: [...w.shape], data: w.data.slice() });
      continue;
    }
    const t = state.get(name);
    const data = t.data as Float32Array;
    if (name === TOKEN_EMBEDDING) out.set(name, vocab.scatterRows(w, data));
    else out.set(name, { shape: [...w.shape], data: data.slice() });
  }
  return out;
}

/** Options of {@link writeHfClip}. */
export interface WriteHfClipOptions {
  /** Storage of the weights (default F16: half the size, ~1e-3 relative rounding). */
  float?: 'F16' | 'F32';
  mean?: readonly number[];
  std?: readonly number[];
  /** Written as `pretrain.json` when given. */
  info?: Record<string, unknown>;
}

/**
 * Writes a Hugging Face layout CLIP folder (see the module doc) with {@link saveClipHF}: the folder is written
 * as a whole into a temporary sibling and renamed into place, replacing an earlier model folder at `dir`.
 */
export function writeHfClip(dir: string, cfg: ClipConfig, weights: ClipWeights, tokenizer: ClipTokenizer, opts: WriteHfClipOptions = {}): void {
  saveClipHF(dir, {
    config: cfg,
    weights,
    tokenizer,
    float: opts.float ?? 'F16',
    preprocess: { mean: opts.mean, std: opts.std },
    ...(opts.info ? { extraJson: { 'pretrain.json': opts.info } } : {}),
  });
}
