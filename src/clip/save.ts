/**
 * Writing CLIP model folders that `loadClip` (load.ts) reads back, in either layout:
 * - Hugging Face ({@link saveClipHF}): `config.json` (CLIPModel), `model.safetensors` (HF names), `vocab.json`,
 *   `merges.txt`, `tokenizer_config.json`, `special_tokens_map.json`, `preprocessor_config.json`;
 * - open_clip ({@link saveClipOpenClip}): `open_clip_config.json` (with `preprocess_cfg`),
 *   `open_clip_model.safetensors` (open_clip names) and a copy of `bpe_simple_vocab_16e6.txt.gz`;
 * plus, in both, any extra JSON files the caller names (e.g. `pretrain.json`).
 *
 * A folder is written as a whole: every file goes into a temporary sibling folder, which is renamed into place
 * once complete (`writeDirAtomic`), so a crash never leaves a half-written model folder. An existing target is
 * replaced only if it is empty or is itself a CLIP model folder; anything else is refused, so that a mistyped
 * output path cannot wipe an unrelated folder.
 */
import { copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeDirAtomic, writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { writeSafetensors, type StTensor } from '../io/safetensors.ts';
import type { ClipConfig, OpenClipPreprocess } from './config.ts';
import { clipConfigToHF, clipConfigToOpenClip, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from './config.ts';
import { ClipTokenizer, EOT_TOKEN, SOT_TOKEN } from './tokenizer.ts';
import type { ClipWeights } from './weights.ts';
import { weightsToOpenClip } from './weights.ts';

/** Hugging Face `vocab.json` (token → id) and `merges.txt` (text, `#version: 0.2` header, merges in rank order). */
export interface HfTokenizerFiles {
  vocab: Record<string, number>;
  merges: string;
}

/** The Hugging Face `vocab.json` / `merges.txt` contents of a tokenizer (the same ids, merges in rank order). */
export function hfTokenizerFiles(tokenizer: ClipTokenizer): HfTokenizerFiles {
  const { vocab, merges } = tokenizer.exportVocabMerges();
  return { vocab, merges: ['#version: 0.2', ...merges].join('\n') + '\n' };
}

/**
 * Hugging Face `vocab.json` and `merges.txt` contents for CLIP's BPE, made from the original merge list
 * (`bpe_simple_vocab_16e6.txt.gz`): the same 49 408 ids, merges in rank order after a `#version: 0.2` header.
 */
export function hfTokenizerFilesFromBpe(bpeGzPath: string): HfTokenizerFiles {
  return hfTokenizerFiles(ClipTokenizer.fromBpeGz(bpeGzPath));
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

/** The special tokens of CLIP's tokenizer, as Hugging Face's `special_tokens_map.json` spells them. */
const HF_SPECIAL_TOKENS = { bos_token: SOT_TOKEN, eos_token: EOT_TOKEN, pad_token: EOT_TOKEN, unk_token: EOT_TOKEN };

/** What both layouts need. */
export interface SaveClipOptions {
  config: ClipConfig;
  /** Canonical (HF-named) weights; checked against `config` when converted for open_clip. */
  weights: ClipWeights;
  /** Storage of the weights (default F32; F16 halves the file at ~1e-3 relative rounding). */
  float?: 'F32' | 'F16';
  /** Extra JSON files written into the folder: file name → value (e.g. `{ 'pretrain.json': info }`). */
  extraJson?: Record<string, unknown>;
}

/** Options of {@link saveClipHF}. */
export interface SaveClipHFOptions extends SaveClipOptions {
  /** The tokenizer whose vocabulary and merges become `vocab.json` + `merges.txt`. */
  tokenizer: ClipTokenizer | HfTokenizerFiles;
  /** Image normalisation written to `preprocessor_config.json` (default OpenAI's). */
  preprocess?: { mean?: readonly number[] | undefined; std?: readonly number[] | undefined };
}

/** Options of {@link saveClipOpenClip}. */
export interface SaveClipOpenClipOptions extends SaveClipOptions {
  /** Path of CLIP's `bpe_simple_vocab_16e6.txt.gz`, copied into the folder. */
  bpePath: string;
  /** Image preprocessing written to `preprocess_cfg` (default OpenAI's normalisation, bicubic, shortest side). */
  preprocess?: OpenClipPreprocess;
}

/** The safetensors metadata PyTorch writers put in, which some readers expect. */
const ST_METADATA = { format: 'pt' };

function toSt(weights: ClipWeights): Map<string, StTensor> {
  const out = new Map<string, StTensor>();
  for (const [name, w] of weights) out.set(name, { dtype: 'float32', shape: [...w.shape], data: w.data });
  return out;
}

/** Throws unless `dir` is missing, an empty folder, or a CLIP model folder (has config.json or open_clip_config.json). */
function checkReplaceable(dir: string): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a folder; cannot write a model folder there`);
  const entries = readdirSync(dir);
  if (entries.length === 0 || entries.includes('config.json') || entries.includes('open_clip_config.json')) return;
  throw new Error(`${dir} exists and is not a CLIP model folder (no config.json or open_clip_config.json); refusing to replace it`);
}

/** Writes the folder atomically (see the module doc): the files via `fill`, then the caller's extra JSON files. */
function saveFolder(dir: string, extraJson: Record<string, unknown> | undefined, fill: (tmp: string) => void): void {
  for (const name of Object.keys(extraJson ?? {})) {
    if (basename(name) !== name || name.startsWith('.')) throw new Error(`extra model file '${name}' must be a plain file name`);
  }
  checkReplaceable(dir);
  writeDirAtomic(dir, (tmp) => {
    fill(tmp);
    for (const [name, value] of Object.entries(extraJson ?? {})) writeJsonAtomic(join(tmp, name), value);
  });
}

/** Writes a Hugging Face layout CLIP model folder into `dir` (see the module doc for the files and the safety rules). */
export function saveClipHF(dir: string, opts: SaveClipHFOptions): void {
  const { config: cfg } = opts;
  const tok = opts.tokenizer instanceof ClipTokenizer ? hfTokenizerFiles(opts.tokenizer) : opts.tokenizer;
  saveFolder(dir, opts.extraJson, (tmp) => {
    writeJsonAtomic(join(tmp, 'config.json'), clipConfigToHF(cfg));
    writeSafetensors(join(tmp, 'model.safetensors'), toSt(opts.weights), ST_METADATA, { float: opts.float ?? 'F32' });
    writeFileAtomic(join(tmp, 'vocab.json'), JSON.stringify(tok.vocab));
    writeFileAtomic(join(tmp, 'merges.txt'), tok.merges);
    writeJsonAtomic(join(tmp, 'tokenizer_config.json'), {
      tokenizer_class: 'CLIPTokenizer',
      model_max_length: cfg.text.contextLength,
      ...HF_SPECIAL_TOKENS,
      do_lower_case: true,
    });
    writeJsonAtomic(join(tmp, 'special_tokens_map.json'), HF_SPECIAL_TOKENS);
    writeJsonAtomic(join(tmp, 'preprocessor_config.json'), hfPreprocessorConfig(cfg.vision.imageSize, opts.preprocess?.mean, opts.preprocess?.std));
  });
}

/** Writes an open_clip layout CLIP model folder into `dir` (see the module doc for the files and the safety rules). */
export function saveClipOpenClip(dir: string, opts: SaveClipOpenClipOptions): void {
  const { config: cfg } = opts;
  saveFolder(dir, opts.extraJson, (tmp) => {
    writeJsonAtomic(join(tmp, 'open_clip_config.json'), clipConfigToOpenClip(cfg, opts.preprocess));
    writeSafetensors(join(tmp, 'open_clip_model.safetensors'), toSt(weightsToOpenClip(opts.weights, cfg)), ST_METADATA, { float: opts.float ?? 'F32' });
    copyFileSync(opts.bpePath, join(tmp, 'bpe_simple_vocab_16e6.txt.gz'));
  });
}
