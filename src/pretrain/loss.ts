/**
 * The contrastive image–text loss of pretraining and the training-step graph around it.
 *
 * Per step: B images and the K captions of the distinct classes of the batch (sampler.ts). With
 * u_b = normalise(image_b), t_k = normalise(text_k), s = exp(logit_scale) and targets Y [B, K] (Y[b,k] = 1 iff
 * image b shows the class of text k):
 *
 *   logits   z[b,k] = s · u_b · t_k
 *   image→text   L_i = −(1/B) Σ_b Σ_k Y[b,k] · log softmax_k(z[b,·])[k]            (one positive per image)
 *   text→image   L_t = −(1/K) Σ_k Σ_b Q[b,k] · log softmax_b(z[·,k])[b],  Q[b,k] = Y[b,k] / Σ_b' Y[b',k]
 *                (multi-positive: the target of a text is uniform over the images of its class, so two images
 *                of one class are never pushed apart as "negatives")
 *   loss = (L_i + L_t) / 2
 *
 * This reduces to CLIP's symmetric InfoNCE when every image of the batch has its own class. `logit_scale` is
 * learned (init ln(1/0.07)); the trainer clamps the stored value to [0, ln 100] after every step (open_clip).
 *
 * Optional text–text term (`textText`): N pairs of texts (a_i, b_i) — a WordNet synset's name caption and a
 * description of it (text-pairs.ts) — through the same text tower, rows a_1..a_N then b_1..b_N of `tt_ids`.
 * With targets Y [N, N] (Y[i,j] = 1 when pair j is interchangeable with pair i: i = j or equal texts),
 * P = Y / row sums, Q = Y / column sums and z[i,j] = s · a_i · b_j (the same learned scale):
 *
 *   L_tt = −(1/2N) [ Σ_i Σ_j P[i,j] · log softmax_j(z[i,·])[j] + Σ_j Σ_i Q[i,j] · log softmax_i(z[·,j])[i] ]
 *   loss = (L_i + L_t) / 2 + w · L_tt
 *
 * Every CLIP weight is a trainable graph input (both towers, projections, logit_scale); the token embedding is
 * the compact table of the ids the captions can use (vocab.ts). AdamW runs in the same graph
 * (`buildTrainStep`), so one `session.run` is one step.
 */
import {
  Graph,
  type Tensor,
  buildTrainStep,
  div,
  exp,
  logSoftmax,
  matmul,
  mul,
  neg,
  normalize,
  reduceMean,
  reduceSum,
  add,
  slice,
  transpose,
  type TrainStepSpec,
} from '../graph/index.ts';
import type { ClipConfig } from '../clip/config.ts';
import { clipWeightSource, imageEncoder, textEncoder, type ClipWeightSource } from '../clip/model.ts';
import type { ClipWeights } from '../clip/weights.ts';

/** Name of the token embedding (the compact table in training graphs). */
export const TOKEN_EMBEDDING = 'text_model.embeddings.token_embedding.weight';

/** The graph inputs and tensors of the contrastive loss. */
export interface ContrastiveGraph {
  g: Graph;
  src: ClipWeightSource;
  /** pixels [batch, 3, S, S] */
  pixels: Tensor;
  /** compact ids [texts, tokens] int64 */
  ids: Tensor;
  /** targets [batch, texts] */
  targets: Tensor;
  /** normalised embeddings [batch, e] and [texts, e] */
  imageEmbeds: Tensor;
  textEmbeds: Tensor;
  logits: Tensor;
  lossI2T: Tensor;
  lossT2I: Tensor;
  /** The text–text term, when the graph has one. */
  textText: TextTextGraph | null;
  loss: Tensor;
}

/** The inputs and tensors of the text–text term. */
export interface TextTextGraph {
  /** compact ids [2N, tokens] int64: the N `a` texts, then the N `b` texts */
  ids: Tensor;
  /** targets [N, N] */
  targets: Tensor;
  /** normalised embeddings [N, e] of the `a` and `b` texts */
  a: Tensor;
  b: Tensor;
  /** z [N, N] */
  logits: Tensor;
  loss: Tensor;
}

/** Shape of the text–text term: N pairs per step, weight w in the total loss. */
export interface TextTextTerm {
  pairs: number;
  weight: number;
}

/**
 * The contrastive loss of a CLIP whose weights `W` (canonical names; the token embedding may be a compact
 * table) are all trainable graph inputs. `dtype` float64 is for gradient checks.
 */
export function contrastiveLossGraph(
  cfg: ClipConfig,
  W: ClipWeights,
  opts: { dtype?: 'float32' | 'float64'; name?: string; textText?: TextTextTerm } = {},
): ContrastiveGraph {
  const dtype = opts.dtype ?? 'float32';
  const g = new Graph({ name: opts.name ?? 'pretrain' });
  const src = clipWeightSource(g, W, { dtype, trainable: () => true });
  const S = cfg.vision.imageSize;
  const pixels = g.input('pixels', dtype, ['batch', 3, S, S]);
  const ids = g.input('ids', 'int64', ['texts', 'tokens']);
  const targets = g.input('targets', dtype, ['batch', 'texts']);
  const tt = opts.textText;
  if (tt && (!Number.isInteger(tt.pairs) || tt.pairs < 2)) throw new Error(`textText.batchSize: expected an integer ≥ 2, got ${tt.pairs}`);
  const ttIds = tt ? g.input('tt_ids', 'int64', [2 * tt.pairs, 'tt_tokens']) : null;
  const ttTargets = tt ? g.input('tt_targets', dtype, [tt.pairs, tt.pairs]) : null;
  const imageEmbeds = normalize(imageEncoder(g, src, cfg, pixels));
  const textEmbeds = normalize(textEncoder(g, src, cfg, ids));
  const ttEmbeds = ttIds ? normalize(textEncoder(g, src, cfg, ttIds)) : null;
  return g.scope('loss', () => {
    const scale = exp(src('logit_scale'));
    const logits = mul(matmul(imageEmbeds, transpose(textEmbeds, [1, 0])), scale); // [B, K]
    // image → text: cross-entropy against the one-hot rows of Y
    const lossI2T = neg(reduceMean(reduceSum(mul(targets, logSoftmax(logits, 1)), 1)));
    // text → image: soft targets Q = Y / column sums
    const q = div(targets, reduceSum(targets, 0, true));
    const lossT2I = neg(reduceMean(reduceSum(mul(q, logSoftmax(logits, 0)), 0)));
    const imageText = mul(add(lossI2T, lossT2I), 0.5);
    let textText: TextTextGraph | null = null;
    let loss = imageText;
    if (tt && ttIds && ttTargets && ttEmbeds) {
      const N = tt.pairs;
      const a = slice(ttEmbeds, [0], [N], [0]);
      const b = slice(ttEmbeds, [N], [2 * N], [0]);
      const z = mul(matmul(a, transpose(b, [1, 0])), scale); // [N, N]
      const p = div(ttTargets, reduceSum(ttTargets, 1, true));
      const q = div(ttTargets, reduceSum(ttTargets, 0, true));
      const rows = reduceSum(mul(p, logSoftmax(z, 1)), 1);
      const cols = reduceSum(mul(q, logSoftmax(z, 0)), 0);
      const ttLoss = mul(add(reduceMean(rows), reduceMean(cols)), -0.5);
      textText = { ids: ttIds, targets: ttTargets, a, b, logits: z, loss: ttLoss };
      loss = add(imageText, mul(ttLoss, tt.weight));
    }
    return { g, src, pixels, ids, targets, imageEmbeds, textEmbeds, logits, lossI2T, lossT2I, textText, loss };
  });
}

/**
 * Whether AdamW decays a weight: not LayerNorm weights/biases, biases, embeddings (token, position, class)
 * or `logit_scale`; yes for every matrix (attention, MLP, projections, the patch embedding).
 */
export function decays(name: string): boolean {
  if (name === 'logit_scale' || name.endsWith('.bias')) return false;
  if (/layer_norm|layrnorm|layernorm/.test(name)) return false;
  if (name.endsWith('token_embedding.weight') || name.endsWith('position_embedding.weight') || name.endsWith('class_embedding')) return false;
  return true;
}

/** Optimiser settings of the training step. */
export interface PretrainOptim {
  weightDecay: number;
  betas: readonly [number, number];
  eps: number;
  clipNorm?: number | undefined;
}

/** A built training step: the model bytes and the names (see `buildTrainStep`). */
export interface PretrainStep {
  bytes: Uint8Array;
  spec: TrainStepSpec;
}

/**
 * The training-step graph: contrastive loss, gradients of every weight, optional global-norm clipping and
 * AdamW, one graph. Extra outputs: `loss_i2t`, `loss_t2i`, `logits` ([B, K], for batch accuracy), with a
 * text–text term `loss_tt` and `tt_logits` ([N, N]), and `grad_norm` when clipping.
 */
export function buildPretrainStep(cfg: ClipConfig, W: ClipWeights, optim: PretrainOptim, textText?: TextTextTerm): PretrainStep {
  const c = contrastiveLossGraph(cfg, W, textText ? { textText } : {});
  const params = [...c.src.trainable.values()];
  const spec = buildTrainStep(c.g, {
    loss: c.loss,
    params,
    optimizer: {
      kind: 'adamw',
      beta1: optim.betas[0],
      beta2: optim.betas[1],
      eps: optim.eps,
      weightDecay: (name) => (decays(name) ? optim.weightDecay : 0),
    },
    ...(optim.clipNorm !== undefined ? { clipNorm: optim.clipNorm } : {}),
    extraOutputs: {
      loss_i2t: c.lossI2T,
      loss_t2i: c.lossT2I,
      logits: c.logits,
      ...(c.textText ? { loss_tt: c.textText.loss, tt_logits: c.textText.logits } : {}),
    },
  });
  return { bytes: c.g.toBytes(), spec };
}

/**
 * Plain-JS float64 reference of the loss (see the module doc) from unnormalised or normalised embeddings:
 * `img` [B][e], `txt` [K][e], `textOfImage[b]` = the text index of image b, `logitScale` = ln s.
 */
export function contrastiveLossReference(img: ArrayLike<number>[], txt: ArrayLike<number>[], textOfImage: readonly number[], logitScale: number): { loss: number; i2t: number; t2i: number } {
  const unit = (v: ArrayLike<number>) => {
    const n = Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
    return Array.from(v, (x) => x / Math.max(n, 1e-12));
  };
  const u = img.map(unit);
  const t = txt.map(unit);
  const s = Math.exp(logitScale);
  const B = u.length;
  const K = t.length;
  const z = u.map((ub) => t.map((tk) => s * ub.reduce((acc, x, i) => acc + x * tk[i]!, 0)));
  const lse = (xs: number[]) => {
    const m = Math.max(...xs);
    return m + Math.log(xs.reduce((acc, x) => acc + Math.exp(x - m), 0));
  };
  let i2t = 0;
  for (let b = 0; b < B; b++) i2t -= z[b]![textOfImage[b]!]! - lse(z[b]!);
  i2t /= B;
  let t2i = 0;
  for (let k = 0; k < K; k++) {
    const col = z.map((row) => row[k]!);
    const l = lse(col);
    const pos = textOfImage.map((tk, b) => (tk === k ? b : -1)).filter((b) => b >= 0);
    for (const b of pos) t2i -= (col[b]! - l) / pos.length;
  }
  t2i /= K;
  return { loss: (i2t + t2i) / 2, i2t, t2i };
}

/**
 * Plain-JS float64 reference of the text–text term (see the module doc): `a` [N][e], `b` [N][e] (normalised
 * here), `targets` [N][N] with a positive diagonal, `logitScale` = ln s.
 */
export function textTextLossReference(a: ArrayLike<number>[], b: ArrayLike<number>[], targets: readonly (readonly number[])[], logitScale: number): number {
  const unit = (v: ArrayLike<number>) => {
    const n = Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
    return Array.from(v, (x) => x / Math.max(n, 1e-12));
  };
  const u = a.map(unit);
  const t = b.map(unit);
  const s = Math.exp(logitScale);
  const N = u.length;
  const z = u.map((ui) => t.map((tj) => s * ui.reduce((acc, x, k) => acc + x * tj[k]!, 0)));
  const lse = (xs: number[]) => {
    const m = Math.max(...xs);
    return m + Math.log(xs.reduce((acc, x) => acc + Math.exp(x - m), 0));
  };
  let rows = 0;
  for (let i = 0; i < N; i++) {
    const l = lse(z[i]!);
    const tot = targets[i]!.reduce((x, y) => x + y, 0);
    for (let j = 0; j < N; j++) if (targets[i]![j]) rows += (targets[i]![j]! / tot) * (z[i]![j]! - l);
  }
  let cols = 0;
  for (let j = 0; j < N; j++) {
    const col = z.map((r) => r[j]!);
    const l = lse(col);
    const tot = targets.reduce((x, r) => x + r[j]!, 0);
    for (let i = 0; i < N; i++) if (targets[i]![j]) cols += (targets[i]![j]! / tot) * (col[i]! - l);
  }
  return -(rows / N + cols / N) / 2;
}
