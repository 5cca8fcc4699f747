/**
 * Turning pretraining state into CLIP weights, and writing them as a Hugging Face `CLIPModel` folder:
 * `config.json`, `model.safetensors` (F16 or F32), `vocab.json` + `merges.txt` (from the tokenizer),
 * `tokenizer_config.json`, `special_tokens_map.json`, `preprocessor_config.json`, and optionally
 * `pretrain.json` (how the model was trained). `loadClip` (src/clip/load.ts) reads the folder back.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { clipConfigToHF, type ClipConfig } from '../clip/config.ts';
import { hfPreprocessorConfig } from '../clip/random.ts';
import type { ClipTokenizer } from '../clip/tokenizer.ts';
import type { ClipWeights } from '../clip/weights.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { writeSafetensors, type StTensor } from '../io/safetensors.ts';
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

/** Writes a Hugging Face layout CLIP folder (see the module doc); every file is written atomically. */
export function writeHfClip(dir: string, cfg: ClipConfig, weights: ClipWeights, tokenizer: ClipTokenizer, opts: WriteHfClipOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(join(dir, 'config.json'), clipConfigToHF(cfg));
  const tensors = new Map<string, StTensor>();
  for (const [name, w] of weights) tensors.set(name, { dtype: 'float32', shape: [...w.shape], data: w.data });
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' }, { float: opts.float ?? 'F16' });
  const { vocab, merges } = tokenizer.exportVocabMerges();
  writeFileAtomic(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileAtomic(join(dir, 'merges.txt'), ['#version: 0.2', ...merges].join('\n') + '\n');
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
  writeJsonAtomic(join(dir, 'preprocessor_config.json'), hfPreprocessorConfig(cfg.vision.imageSize, opts.mean, opts.std));
  if (opts.info) writeJsonAtomic(join(dir, 'pretrain.json'), opts.info);
}
