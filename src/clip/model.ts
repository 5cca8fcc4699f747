/**
 * The two CLIP towers as graph-building functions, written layer by layer:
 *
 * image tower (ViT, pre-LN):
 *   patches = unfold(pixels) [B·G², 3p²]            (G = imageSize / patchSize; no conv, so float64 builds work)
 *   x = [cls ; patches·Wpatchᵀ] + pos                 [B, G²+1, w]
 *   x = ln_pre(x); x = block_l(x) for l = 0..L−1
 *   embeds = ln_post(x[:, 0]) · Wprojᵀ                [B, e]
 * text tower (causal, pre-LN):
 *   x = tok[ids] + pos[0:T]                           [B, T, w]
 *   x = block_l(x) with a causal mask; x = ln_final(x)
 *   embeds = x[b, argmax_t ids[b, t]] · Wprojᵀ        (EOT pooling: the EOT token has the highest id)
 * residual block (both towers):
 *   x = x + out_proj(MHA(ln_1(x)))                    MHA: softmax(q·kᵀ/√d_head + mask)·v per head
 *   x = x + fc2(act(fc1(ln_2(x)))) + hook(x)          hook: adapters, in parallel with the MLP
 *
 * Weights come from a {@link WeightSource} `(name) => Tensor` keyed by the canonical (Hugging Face) names, so the
 * same builder makes frozen graphs (every weight an initializer) and training graphs (chosen weights are graph
 * inputs). Batch (and the text length) are symbolic. The dtype follows the weights and the pixels (float32 or
 * float64, the latter for gradient checks).
 */
import {
  type Graph,
  type Tensor,
  add,
  argMax,
  cast,
  concat,
  equal,
  expand,
  gather,
  gelu,
  layerNorm,
  linear,
  matmul,
  mul,
  quickGelu,
  reshape,
  shapeOf,
  softmax,
  transpose,
  unsqueeze,
  where,
  greater,
} from '../graph/index.ts';
import type { ClipAct, ClipConfig } from './config.ts';
import type { ClipWeights } from './weights.ts';
import { clipWeightShapes } from './weights.ts';

/** Looks up a weight tensor by its canonical (Hugging Face) name. */
export type WeightSource = (name: string) => Tensor;

/** A weight source that also reports the weights it declared as graph inputs. */
export type ClipWeightSource = WeightSource & {
  /** Canonical name → graph input, for the weights chosen as trainable (in first-use order). */
  readonly trainable: Map<string, Tensor>;
};

export interface WeightSourceOptions {
  /** Element type of the weights in the graph (default float32; float64 copies the data). */
  dtype?: 'float32' | 'float64';
  /** Weights for which this returns true become graph inputs (named as the weight) instead of initializers. */
  trainable?: (name: string) => boolean;
}

/**
 * A {@link WeightSource} over canonical weights: each name becomes, on first use, an initializer (`g.param`) or a
 * graph input (when `trainable(name)`), named as the weight. Unknown names throw.
 */
export function clipWeightSource(g: Graph, W: ClipWeights, opts: WeightSourceOptions = {}): ClipWeightSource {
  const dtype = opts.dtype ?? 'float32';
  const made = new Map<string, Tensor>();
  const trainable = new Map<string, Tensor>();
  const src = (name: string): Tensor => {
    const hit = made.get(name);
    if (hit) return hit;
    const w = W.get(name);
    if (!w) throw new Error(`CLIP weights: no tensor named '${name}'`);
    let t: Tensor;
    if (opts.trainable?.(name)) {
      t = g.input(name, dtype, [...w.shape]);
      trainable.set(name, t);
    } else {
      t = g.param(name, dtype === 'float64' ? Float64Array.from(w.data) : w.data, [...w.shape]);
    }
    made.set(name, t);
    return t;
  };
  return Object.assign(src, { trainable });
}

/** Which tower a hook is called for. */
export type Tower = 'image' | 'text';

/** What a block hook sees. */
export interface BlockHookArgs {
  g: Graph;
  tower: Tower;
  layer: number;
  /** The residual stream after the attention sub-layer, before ln_2: [B, T, w]. */
  x: Tensor;
  /** Scope path of the block, e.g. `image/block3/`, for naming the hook's own tensors. */
  scope: string;
}

/** Returns a tensor (broadcastable to [B, T, w]) added to the block output in parallel with the MLP, or nothing. */
export type BlockHook = (args: BlockHookArgs) => Tensor | null | undefined;

/** What an attention hook sees: one of the four attention projections of one block. */
export interface AttnHookArgs {
  g: Graph;
  tower: Tower;
  layer: number;
  proj: 'q' | 'k' | 'v' | 'out';
  /** The projection's input as a matrix of token rows [B·T, w]. */
  input: Tensor;
  /** The frozen projection's output `input·Wᵀ + b` [B·T, w]. */
  output: Tensor;
  scope: string;
}

/** Returns a delta [B·T, w] added to the projection's output (e.g. LoRA's `s·B·A·input`), or nothing. */
export type AttnHook = (args: AttnHookArgs) => Tensor | null | undefined;

/** Optional extension points of the towers. */
export interface ClipHooks {
  /** Per residual block: a branch parallel to the MLP (adapters, MoE). */
  block?: BlockHook;
  /** Per attention projection: a delta on q/k/v/out (LoRA). */
  attn?: AttnHook;
  /**
   * Called once per tower with its final token states: text after ln_final [B, T, w]; image after the last block
   * (before ln_post) [B, T, w]. For probes and tests.
   */
  final?: (args: { g: Graph; tower: Tower; hidden: Tensor }) => void;
}

/** Additive mask value for disallowed attention (exp underflows to exactly 0 in float32 and float64). */
const MASKED = -1e9;

function activation(x: Tensor, act: ClipAct): Tensor {
  if (act === 'quick_gelu') return quickGelu(x);
  if (act === 'gelu') return gelu(x, 'erf');
  return gelu(x, 'tanh');
}

/** Geometry of one tower's blocks. */
export interface BlockSpec {
  tower: Tower;
  width: number;
  heads: number;
  act: ClipAct;
  eps: number;
}

/**
 * Multi-head self-attention on h [B, T, w] (already layer-normed): q, k, v = h·Wᵀ + b per projection; per head
 * softmax(q·kᵀ/√d + mask)·v; heads concatenated and projected by out_proj. Returns [B, T, w].
 */
function selfAttention(g: Graph, W: WeightSource, prefix: string, h: Tensor, spec: BlockSpec, layer: number, mask: Tensor | null, hooks: ClipHooks | undefined): Tensor {
  const { width, heads } = spec;
  const hd = width / heads;
  const T = h.shape[1]!;
  const rows = reshape(h, [-1, width]); // [B·T, w]
  const project = (p: 'q' | 'k' | 'v' | 'out', input: Tensor): Tensor =>
    g.scope(`${p}_proj`, () => {
      const out = linear(input, W(`${prefix}.self_attn.${p}_proj.weight`), W(`${prefix}.self_attn.${p}_proj.bias`));
      const delta = hooks?.attn?.({ g, tower: spec.tower, layer, proj: p, input, output: out, scope: g.scopePath });
      return delta ? add(out, delta) : out;
    });
  const q = mul(project('q', rows), 1 / Math.sqrt(hd));
  const k = project('k', rows);
  const v = project('v', rows);
  const qh = transpose(reshape(q, [-1, T, heads, hd]), [0, 2, 1, 3]); // [B, H, T, d]
  const kt = transpose(reshape(k, [-1, T, heads, hd]), [0, 2, 3, 1]); // [B, H, d, T]
  const vh = transpose(reshape(v, [-1, T, heads, hd]), [0, 2, 1, 3]); // [B, H, T, d]
  let scores = matmul(qh, kt); // [B, H, T, T]
  if (mask) scores = add(scores, mask);
  const ctx = matmul(softmax(scores, -1), vh); // [B, H, T, d]
  const merged = reshape(transpose(ctx, [0, 2, 1, 3]), [-1, width]); // [B·T, w]
  return reshape(project('out', merged), [-1, T, width]);
}

/**
 * One pre-LN residual block (see the module doc) with the weights `<prefix>.layer_norm1.weight` ... of the
 * canonical layout. x: [B, T, w] → [B, T, w]. `mask` is added to the attention scores (null: none).
 */
export function residualBlock(g: Graph, W: WeightSource, prefix: string, x: Tensor, spec: BlockSpec, layer: number, mask: Tensor | null, hooks: ClipHooks | undefined): Tensor {
  return g.scope(`block${layer}`, () => {
    const scope = g.scopePath;
    const attnOut = g.scope('attn', () => {
      const h = layerNorm(x, W(`${prefix}.layer_norm1.weight`), W(`${prefix}.layer_norm1.bias`), spec.eps);
      return selfAttention(g, W, prefix, h, spec, layer, mask, hooks);
    });
    const x1 = add(x, attnOut);
    const extra = hooks?.block ? g.scope('hook', () => hooks.block!({ g, tower: spec.tower, layer, x: x1, scope })) : null;
    const mlpOut = g.scope('mlp', () => {
      const T = x1.shape[1]!;
      const h = reshape(layerNorm(x1, W(`${prefix}.layer_norm2.weight`), W(`${prefix}.layer_norm2.bias`), spec.eps), [-1, spec.width]);
      const a = activation(linear(h, W(`${prefix}.mlp.fc1.weight`), W(`${prefix}.mlp.fc1.bias`)), spec.act);
      return reshape(linear(a, W(`${prefix}.mlp.fc2.weight`), W(`${prefix}.mlp.fc2.bias`)), [-1, T, spec.width]);
    });
    const y = add(x1, mlpOut);
    return extra ? add(y, extra) : y;
  });
}

/**
 * The image tower. `pixels` [B, 3, S, S] (normalised, float32 or float64) → projected, unnormalised embeddings
 * [B, e]. Patch embedding is a matrix product over unfolded patches (identical to a stride-p convolution).
 */
export function imageEncoder(g: Graph, W: WeightSource, cfg: ClipConfig, pixels: Tensor, hooks?: ClipHooks): Tensor {
  const v = cfg.vision;
  const S = v.imageSize;
  const p = v.patchSize;
  const G = S / p;
  const width = v.width;
  const [B, C, H, Wd] = pixels.shape;
  if (pixels.shape.length !== 4 || C !== 3 || H !== S || Wd !== S) {
    throw new Error(`imageEncoder: pixels must be [B,3,${S},${S}], got ${pixels.name} [${pixels.shape.join(',')}]`);
  }
  return g.scope('image', () => {
    const x = g.scope('embed', () => {
      // [B,3,G,p,G,p] → [B,G,G,3,p,p] → [B·G², 3p²]: one row per patch, features in (channel, ky, kx) order
      const unfolded = reshape(transpose(reshape(pixels, [0, 3, G, p, G, p]), [0, 2, 4, 1, 3, 5]), [-1, 3 * p * p]);
      const wPatch = reshape(W('vision_model.embeddings.patch_embedding.weight'), [width, 3 * p * p]);
      const patches = reshape(linear(unfolded, wPatch), [-1, G * G, width]);
      const cls = expand(reshape(W('vision_model.embeddings.class_embedding'), [1, 1, width]), [B!, 1, width]);
      const tokens = concat([cls, patches], 1); // [B, G²+1, w]
      const pos = W('vision_model.embeddings.position_embedding.weight');
      return layerNorm(add(tokens, pos), W('vision_model.pre_layrnorm.weight'), W('vision_model.pre_layrnorm.bias'), v.lnEps);
    });
    const spec: BlockSpec = { tower: 'image', width, heads: v.heads, act: v.act, eps: v.lnEps };
    let h = x;
    for (let l = 0; l < v.layers; l++) h = residualBlock(g, W, `vision_model.encoder.layers.${l}`, h, spec, l, null, hooks);
    hooks?.final?.({ g, tower: 'image', hidden: h });
    return g.scope('head', () => {
      const clsTok = gather(h, g.constant(0, 'int64'), 1); // [B, w]
      const pooled = layerNorm(clsTok, W('vision_model.post_layernorm.weight'), W('vision_model.post_layernorm.bias'), v.lnEps);
      return linear(pooled, W('visual_projection.weight'));
    });
  });
}

/** Position ids 0..T−1 of a [B, T] id tensor (static or symbolic T), int64 [T]. */
function positionIds(g: Graph, ids: Tensor): Tensor {
  const T = ids.shape[1]!;
  const limit = typeof T === 'number' ? g.constant(T, 'int64') : gather(shapeOf(ids), g.constant(1, 'int64'));
  return g.addNode('Range', [g.constant(0, 'int64'), limit, g.constant(1, 'int64')], [{ dtype: 'int64', shape: [T] }])[0]!;
}

/**
 * The text tower. `ids` [B, T] int64 (T ≤ contextLength; zero padded after EOT) → projected, unnormalised
 * embeddings [B, e], pooled at the position of each row's highest id (the EOT token). The float type follows the
 * weights (`dtype`, default float32).
 */
export function textEncoder(g: Graph, W: WeightSource, cfg: ClipConfig, ids: Tensor, hooks?: ClipHooks): Tensor {
  const t = cfg.text;
  const width = t.width;
  if (ids.shape.length !== 2 || ids.dtype !== 'int64') throw new Error(`textEncoder: ids must be int64 [B,T], got ${ids.name} ${ids.dtype}[${ids.shape.join(',')}]`);
  const T = ids.shape[1]!;
  if (typeof T === 'number' && T > t.contextLength) throw new Error(`textEncoder: ${T} tokens exceed the context length ${t.contextLength}`);
  return g.scope('text', () => {
    const tokEmb = W('text_model.embeddings.token_embedding.weight');
    const dtype = tokEmb.dtype;
    const pos = positionIds(g, ids);
    const { x, mask } = g.scope('embed', () => {
      const x = add(gather(tokEmb, ids, 0), gather(W('text_model.embeddings.position_embedding.weight'), pos, 0)); // [B, T, w]
      // causal mask [T, T]: MASKED where key position j > query position i
      const later = greater(unsqueeze(pos, 0), unsqueeze(pos, 1));
      const mask = where(later, g.constant(MASKED, dtype), g.constant(0, dtype));
      return { x, mask };
    });
    const spec: BlockSpec = { tower: 'text', width, heads: t.heads, act: t.act, eps: t.lnEps };
    let h = x;
    for (let l = 0; l < t.layers; l++) h = residualBlock(g, W, `text_model.encoder.layers.${l}`, h, spec, l, mask, hooks);
    return g.scope('head', () => {
      const hidden = layerNorm(h, W('text_model.final_layer_norm.weight'), W('text_model.final_layer_norm.bias'), t.lnEps);
      hooks?.final?.({ g, tower: 'text', hidden });
      // EOT pooling as a one-hot row selection: sel[b, t] = (t == argmax ids[b]); pooled = sel · hidden
      const eot = argMax(cast(ids, 'int32'), -1, true); // [B, 1]
      const sel = cast(equal(unsqueeze(pos, 0), eot), dtype); // [B, T]
      const pooled = reshape(matmul(unsqueeze(sel, 1), hidden), [-1, width]); // [B, w]
      return linear(pooled, W('text_projection.weight'));
    });
  });
}

/** Every canonical weight name a tower uses (`image`: vision_model.* + visual_projection; `text`: the rest but logit_scale). */
export function towerWeightNames(cfg: ClipConfig, tower: Tower): string[] {
  return [...clipWeightShapes(cfg).keys()].filter((n) =>
    tower === 'image' ? n.startsWith('vision_model.') || n === 'visual_projection.weight' : n.startsWith('text_model.') || n === 'text_projection.weight',
  );
}
