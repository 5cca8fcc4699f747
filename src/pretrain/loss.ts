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
  loss: Tensor;
}

/**
 * The contrastive loss of a CLIP whose weights `W` (canonical names; the token embedding may be a compact
 * table) are all trainable graph inputs. `dtype` float64 is for gradient checks.
 */
export function contrastiveLossGraph(cfg: ClipConfig, W: ClipWeights, opts: { dtype?: 'float32' | 'float64'; name?: string } = {}): ContrastiveGraph {
  const dtype = opts.dtype ?? 'float32';
  const g = new Graph({ name: opts.name ?? 'pretrain' });
  const src = clipWeightSource(g, W, { dtype, trainable: () => true });
  const S = cfg.vision.imageSize;
  const pixels = g.input('pixels', dtype, ['batch', 3, S, S]);
  const ids = g.input('ids', 'int64', ['texts', 'tokens']);
  const targets = g.input('targets', dtype, ['batch', 'texts']);
  const imageEmbeds = normalize(imageEncoder(g, src, cfg, pixels));
  const textEmbeds = normalize(textEncoder(g, src, cfg, ids));
  return g.scope('loss', () => {
    const scale = exp(src('logit_scale'));
    const logits = mul(matmul(imageEmbeds, transpose(textEmbeds, [1, 0])), scale); // [B, K]
    // image → text: cross-entropy against the one-hot rows of Y
    const lossI2T = neg(reduceMean(reduceSum(mul(targets, logSoftmax(logits, 1)), 1)));
    // text → image: soft targets Q = Y / column sums
    const q = div(targets, reduceSum(targets, 0, true));
    const lossT2I = neg(reduceMean(reduceSum(mul(q, logSoftmax(logits, 0)), 0)));
    const loss = mul(add(lossI2T, lossT2I), 0.5);
    return { g, src, pixels, ids, targets, imageEmbeds, textEmbeds, logits, lossI2T, lossT2I, loss };
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
 * AdamW, one graph. Extra outputs: `loss_i2t`, `loss_t2i`, `logits` ([B, K], for batch accuracy) and
 * `grad_norm` when clipping.
 */
export function buildPretrainStep(cfg: ClipConfig, W: ClipWeights, optim: PretrainOptim): PretrainStep {
  const c = contrastiveLossGraph(cfg, W);
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
    extraOutputs: { loss_i2t: c.lossI2T, loss_t2i: c.lossT2I, logits: c.logits },
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
