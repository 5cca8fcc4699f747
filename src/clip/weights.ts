/**
 * CLIP weights in memory, keyed by Hugging Face `CLIPModel` names (the canonical layout), plus the mapping to and
 * from open_clip / OpenAI names. Every expected tensor is checked for presence and shape against a
 * {@link ClipConfig}; the error names the file, the tensor (as spelled in the file) and both shapes.
 *
 * Layout differences handled here (open_clip → HF):
 * - `attn.in_proj_weight` [3w, w] / `attn.in_proj_bias` [3w] split row-wise into `q_proj`, `k_proj`, `v_proj`;
 * - `visual.proj` [w, e] and `text_projection` [w, e] are stored `[in, out]` and become `[e, w]` (transposed);
 * - everything else is a rename (`ln_1` → `layer_norm1`, `mlp.c_fc` → `mlp.fc1`, `visual.ln_pre` → `pre_layrnorm`, ...).
 */
import type { ClipConfig } from './config.ts';
import { visionTokens } from './config.ts';

/** One float tensor, row-major. */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** Canonical CLIP weights: Hugging Face `CLIPModel` names → tensors. */
export type ClipWeights = Map<string, WeightTensor>;

/** Weight-file layouts understood by the loader. */
export type ClipLayout = 'hf' | 'open_clip';

/** Names found in real checkpoints that carry no weights we need (buffers, OpenAI metadata). */
const KNOWN_EXTRAS = new Set([
  'text_model.embeddings.position_ids',
  'vision_model.embeddings.position_ids',
  'attn_mask',
  'input_resolution',
  'context_length',
  'vocab_size',
]);

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const fmt = (s: readonly number[]) => `[${s.join(',')}]`;

/** The per-block tensor names of one tower (HF spelling) with their shapes. */
function hfBlockShapes(prefix: string, width: number, mlp: number, out: Map<string, number[]>): void {
  for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
    out.set(`${prefix}.self_attn.${p}.weight`, [width, width]);
    out.set(`${prefix}.self_attn.${p}.bias`, [width]);
  }
  out.set(`${prefix}.layer_norm1.weight`, [width]);
  out.set(`${prefix}.layer_norm1.bias`, [width]);
  out.set(`${prefix}.mlp.fc1.weight`, [mlp, width]);
  out.set(`${prefix}.mlp.fc1.bias`, [mlp]);
  out.set(`${prefix}.mlp.fc2.weight`, [width, mlp]);
  out.set(`${prefix}.mlp.fc2.bias`, [width]);
  out.set(`${prefix}.layer_norm2.weight`, [width]);
  out.set(`${prefix}.layer_norm2.bias`, [width]);
}

/**
 * Every canonical (HF) tensor name of a CLIP with config `cfg`, mapped to its shape, in a stable order.
 * Linear weights are `[out, in]` (PyTorch convention); `logit_scale` is a scalar (shape `[]`).
 */
export function clipWeightShapes(cfg: ClipConfig): Map<string, number[]> {
  const v = cfg.vision;
  const t = cfg.text;
  const m = new Map<string, number[]>();
  m.set('vision_model.embeddings.patch_embedding.weight', [v.width, 3, v.patchSize, v.patchSize]);
  m.set('vision_model.embeddings.class_embedding', [v.width]);
  m.set('vision_model.embeddings.position_embedding.weight', [visionTokens(v), v.width]);
  m.set('vision_model.pre_layrnorm.weight', [v.width]);
  m.set('vision_model.pre_layrnorm.bias', [v.width]);
  for (let i = 0; i < v.layers; i++) hfBlockShapes(`vision_model.encoder.layers.${i}`, v.width, v.mlpDim, m);
  m.set('vision_model.post_layernorm.weight', [v.width]);
  m.set('vision_model.post_layernorm.bias', [v.width]);
  m.set('visual_projection.weight', [cfg.embedDim, v.width]);
  m.set('text_model.embeddings.token_embedding.weight', [t.vocabSize, t.width]);
  m.set('text_model.embeddings.position_embedding.weight', [t.contextLength, t.width]);
  for (let i = 0; i < t.layers; i++) hfBlockShapes(`text_model.encoder.layers.${i}`, t.width, t.mlpDim, m);
  m.set('text_model.final_layer_norm.weight', [t.width]);
  m.set('text_model.final_layer_norm.bias', [t.width]);
  m.set('text_projection.weight', [cfg.embedDim, t.width]);
  m.set('logit_scale', []);
  return m;
}

/** Strips a leading `module.` (DataParallel) and/or `model.` (wrapper) prefix from a tensor name. */
export function stripWrapperPrefix(name: string): string {
  let n = name;
  for (;;) {
    if (n.startsWith('module.')) n = n.slice(7);
    else if (n.startsWith('model.')) n = n.slice(6);
    else return n;
  }
}

/**
 * Guesses the layout of a weight file from its tensor names: open_clip/OpenAI names start with `visual.`,
 * Hugging Face names with `vision_model.`/`text_model.`.
 */
export function detectLayout(names: Iterable<string>, file = 'weights'): ClipLayout {
  let hf = 0;
  let oc = 0;
  for (const raw of names) {
    const n = stripWrapperPrefix(raw);
    if (n.startsWith('vision_model.') || n.startsWith('text_model.')) hf++;
    else if (n.startsWith('visual.') || n.startsWith('transformer.resblocks.')) oc++;
  }
  if (hf > 0 && oc === 0) return 'hf';
  if (oc > 0 && hf === 0) return 'open_clip';
  throw new Error(`${file}: cannot tell the weight layout (found ${hf} Hugging Face-style and ${oc} open_clip-style tensor names)`);
}

/** The result of reading a weight file into canonical form. */
export interface CanonicalResult {
  weights: ClipWeights;
  /** Human-readable notes, e.g. the unknown extra tensors that were ignored. */
  warnings: string[];
}

/** Renames of one residual block, open_clip suffix → HF suffix (the attention in-projection is split separately). */
const OC_BLOCK_RENAMES: Array<[string, string]> = [
  ['ln_1.weight', 'layer_norm1.weight'],
  ['ln_1.bias', 'layer_norm1.bias'],
  ['attn.out_proj.weight', 'self_attn.out_proj.weight'],
  ['attn.out_proj.bias', 'self_attn.out_proj.bias'],
  ['ln_2.weight', 'layer_norm2.weight'],
  ['ln_2.bias', 'layer_norm2.bias'],
  ['mlp.c_fc.weight', 'mlp.fc1.weight'],
  ['mlp.c_fc.bias', 'mlp.fc1.bias'],
  ['mlp.c_proj.weight', 'mlp.fc2.weight'],
  ['mlp.c_proj.bias', 'mlp.fc2.bias'],
];

/** How one open_clip tensor maps to canonical tensors. */
type OcRule =
  | { kind: 'rename'; src: string; dst: string }
  | { kind: 'transpose'; src: string; dst: string }
  | { kind: 'split3'; src: string; dst: [string, string, string] };

function openClipRules(cfg: ClipConfig): OcRule[] {
  const rules: OcRule[] = [];
  const ren = (src: string, dst: string) => rules.push({ kind: 'rename', src, dst });
  const blocks = (srcPrefix: string, dstPrefix: string, layers: number) => {
    for (let i = 0; i < layers; i++) {
      const s = `${srcPrefix}.${i}`;
      const d = `${dstPrefix}.${i}`;
      for (const [a, b] of OC_BLOCK_RENAMES) ren(`${s}.${a}`, `${d}.${b}`);
      for (const kind of ['weight', 'bias']) {
        rules.push({
          kind: 'split3',
          src: `${s}.attn.in_proj_${kind}`,
          dst: [`${d}.self_attn.q_proj.${kind}`, `${d}.self_attn.k_proj.${kind}`, `${d}.self_attn.v_proj.${kind}`],
        });
      }
    }
  };
  ren('visual.conv1.weight', 'vision_model.embeddings.patch_embedding.weight');
  ren('visual.class_embedding', 'vision_model.embeddings.class_embedding');
  ren('visual.positional_embedding', 'vision_model.embeddings.position_embedding.weight');
  ren('visual.ln_pre.weight', 'vision_model.pre_layrnorm.weight');
  ren('visual.ln_pre.bias', 'vision_model.pre_layrnorm.bias');
  blocks('visual.transformer.resblocks', 'vision_model.encoder.layers', cfg.vision.layers);
  ren('visual.ln_post.weight', 'vision_model.post_layernorm.weight');
  ren('visual.ln_post.bias', 'vision_model.post_layernorm.bias');
  rules.push({ kind: 'transpose', src: 'visual.proj', dst: 'visual_projection.weight' });
  ren('token_embedding.weight', 'text_model.embeddings.token_embedding.weight');
  ren('positional_embedding', 'text_model.embeddings.position_embedding.weight');
  blocks('transformer.resblocks', 'text_model.encoder.layers', cfg.text.layers);
  ren('ln_final.weight', 'text_model.final_layer_norm.weight');
  ren('ln_final.bias', 'text_model.final_layer_norm.bias');
  rules.push({ kind: 'transpose', src: 'text_projection', dst: 'text_projection.weight' });
  ren('logit_scale', 'logit_scale');
  return rules;
}

/** Expected shape of an open_clip source tensor, derived from the canonical shapes of its targets. */
function ocSourceShape(rule: OcRule, hf: Map<string, number[]>): number[] {
  if (rule.kind === 'rename') return hf.get(rule.dst)!;
  if (rule.kind === 'transpose') {
    const s = hf.get(rule.dst)!;
    return [s[1]!, s[0]!];
  }
  const s = hf.get(rule.dst[0])!;
  return [3 * s[0]!, ...s.slice(1)];
}

/**
 * Every open_clip / OpenAI tensor name of a CLIP with config `cfg`, mapped to its shape
 * (`visual.proj` and `text_projection` are `[width, embed]`; `in_proj_weight` is `[3·width, width]`).
 */
export function openClipWeightShapes(cfg: ClipConfig): Map<string, number[]> {
  const hf = clipWeightShapes(cfg);
  const m = new Map<string, number[]>();
  for (const r of openClipRules(cfg)) m.set(r.src, ocSourceShape(r, hf));
  return m;
}

/** Transposes a row-major `[r, c]` matrix. */
export function transpose2d(data: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = data[i * c + j]!;
  return out;
}

/** Shapes agree, treating `[]` and `[1]` as the same for scalars like `logit_scale`. */
function shapeMatches(expected: readonly number[], actual: readonly number[]): boolean {
  if (sameShape(expected, actual)) return true;
  return expected.length === 0 && numel(actual) === 1 && actual.length <= 1;
}

/** Looks a tensor up by name, checks its shape, and throws a message naming file, tensor and both shapes. */
function take(src: Map<string, WeightTensor>, name: string, expected: number[], file: string): WeightTensor {
  const t = src.get(name);
  if (!t) throw new Error(`${file}: missing tensor '${name}' (expected shape ${fmt(expected)})`);
  if (!shapeMatches(expected, t.shape)) throw new Error(`${file}: tensor '${name}' has shape ${fmt(t.shape)}, expected ${fmt(expected)}`);
  if (t.data.length !== numel(t.shape)) throw new Error(`${file}: tensor '${name}' has ${t.data.length} values for shape ${fmt(t.shape)}`);
  return t;
}

function extrasWarning(src: Map<string, WeightTensor>, used: Set<string>, file: string): string[] {
  const unknown = [...src.keys()].filter((n) => !used.has(n) && !KNOWN_EXTRAS.has(n));
  if (unknown.length === 0) return [];
  const shown = unknown.slice(0, 20).join(', ');
  return [`${file}: ignored ${unknown.length} unknown tensor(s): ${shown}${unknown.length > 20 ? ', ...' : ''}`];
}

/** Re-keys `tensors` with wrapper prefixes (`module.`, `model.`) stripped; a clash is an error. */
function stripAll(tensors: Map<string, WeightTensor>, file: string): Map<string, WeightTensor> {
  const out = new Map<string, WeightTensor>();
  for (const [k, v] of tensors) {
    const n = stripWrapperPrefix(k);
    if (out.has(n)) throw new Error(`${file}: tensor '${k}' clashes with another tensor named '${n}' once prefixes are stripped`);
    out.set(n, v);
  }
  return out;
}

/**
 * Canonical weights from a Hugging Face-layout tensor map: checks every expected tensor's presence and shape,
 * copies nothing (the returned tensors share the input arrays), and lists unknown extras in `warnings`.
 */
export function weightsFromHF(tensors: Map<string, WeightTensor>, cfg: ClipConfig, file = 'model.safetensors'): CanonicalResult {
  const src = stripAll(tensors, file);
  const weights: ClipWeights = new Map();
  const used = new Set<string>();
  for (const [name, shape] of clipWeightShapes(cfg)) {
    const t = take(src, name, shape, file);
    weights.set(name, { shape: [...shape], data: t.data });
    used.add(name);
  }
  return { weights, warnings: extrasWarning(src, used, file) };
}

/** Canonical weights from an open_clip / OpenAI-layout tensor map (see the module doc for the conversions). */
export function weightsFromOpenClip(tensors: Map<string, WeightTensor>, cfg: ClipConfig, file = 'open_clip_model.safetensors'): CanonicalResult {
  const src = stripAll(tensors, file);
  const hf = clipWeightShapes(cfg);
  const weights: ClipWeights = new Map();
  const used = new Set<string>();
  for (const rule of openClipRules(cfg)) {
    const shape = ocSourceShape(rule, hf);
    const t = take(src, rule.src, shape, file);
    used.add(rule.src);
    if (rule.kind === 'rename') {
      weights.set(rule.dst, { shape: [...hf.get(rule.dst)!], data: t.data });
    } else if (rule.kind === 'transpose') {
      weights.set(rule.dst, { shape: [...hf.get(rule.dst)!], data: transpose2d(t.data, shape[0]!, shape[1]!) });
    } else {
      const part = t.data.length / 3;
      rule.dst.forEach((dst, k) => weights.set(dst, { shape: [...hf.get(dst)!], data: t.data.slice(k * part, (k + 1) * part) }));
    }
  }
  return { weights, warnings: extrasWarning(src, used, file) };
}

/** Canonical weights from a tensor map of either layout (detected from the names). */
export function canonicalClipWeights(tensors: Map<string, WeightTensor>, cfg: ClipConfig, file = 'weights'): CanonicalResult & { layout: ClipLayout } {
  const layout = detectLayout(tensors.keys(), file);
  const r = layout === 'hf' ? weightsFromHF(tensors, cfg, file) : weightsFromOpenClip(tensors, cfg, file);
  return { ...r, layout };
}

/** The open_clip / OpenAI-layout tensor map of canonical weights (inverse of {@link weightsFromOpenClip}). */
export function weightsToOpenClip(weights: ClipWeights, cfg: ClipConfig): Map<string, WeightTensor> {
  const hf = clipWeightShapes(cfg);
  const out = new Map<string, WeightTensor>();
  const get = (n: string) => take(weights, n, hf.get(n)!, 'weights');
  for (const rule of openClipRules(cfg)) {
    const shape = ocSourceShape(rule, hf);
    if (rule.kind === 'rename') out.set(rule.src, { shape, data: get(rule.dst).data });
    else if (rule.kind === 'transpose') {
      const s = hf.get(rule.dst)!;
      out.set(rule.src, { shape, data: transpose2d(get(rule.dst).data, s[0]!, s[1]!) });
    } else {
      const parts = rule.dst.map((d) => get(d).data);
      const data = new Float32Array(parts[0]!.length * 3);
      parts.forEach((p, k) => data.set(p, k * p.length));
      out.set(rule.src, { shape, data });
    }
  }
  return out;
}

/** Checks that `weights` holds every canonical tensor of `cfg` with the right shape (throws otherwise). */
export function checkClipWeights(weights: ClipWeights, cfg: ClipConfig, what = 'weights'): void {
  for (const [name, shape] of clipWeightShapes(cfg)) take(weights, name, shape, what);
}

/** Total number of parameters of a CLIP with config `cfg`. */
export function clipParamCount(cfg: ClipConfig): number {
  let n = 0;
  for (const s of clipWeightShapes(cfg).values()) n += numel(s);
  return n;
}
