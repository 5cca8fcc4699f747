/**
 * A plain-JS float64 CLIP forward written with straightforward loops, used as independent truth for the ONNX graph
 * builders in src/clip/model.ts. Weights are the canonical (Hugging Face-named) tensors; linear weights are
 * [out, in]. Nothing here shares code with the library beyond the weight names.
 */
import type { ClipConfig, ClipAct } from '../../src/clip/config.ts';
import type { ClipWeights } from '../../src/clip/weights.ts';

type Mat = Float64Array[]; // rows

function w(W: ClipWeights, name: string): Float64Array {
  const t = W.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return Float64Array.from(t.data);
}

/** erf to ~1e-15: Maclaurin series for |x| < 2.5, continued fraction for erfc beyond. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), evaluated backwards
  let f = 0;
  for (let n = 120; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return x > 0 ? 1 - erfc : erfc - 1;
}

function act(x: number, a: ClipAct): number {
  if (a === 'quick_gelu') return x / (1 + Math.exp(-1.702 * x));
  if (a === 'gelu') return 0.5 * x * (1 + erf(x / Math.SQRT2));
  const c = Math.sqrt(2 / Math.PI);
  return 0.5 * x * (1 + Math.tanh(c * (x + 0.044715 * x * x * x)));
}

function layerNorm(x: Float64Array, g: Float64Array, b: Float64Array, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mean) ** 2;
  v /= n;
  const inv = 1 / Math.sqrt(v + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i]! - mean) * inv * g[i]! + b[i]!;
  return y;
}

/** y = W x + b with W [out, in]. */
function linear(x: Float64Array, Wt: Float64Array, b: Float64Array | null, out: number): Float64Array {
  const inp = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < inp; i++) s += Wt[o * inp + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/** Optional per-block residual adapter: returns a vector added to the block output for each token. */
export type RefHook = (tower: 'image' | 'text', layer: number, x: Float64Array) => Float64Array | null;

function block(X: Mat, W: ClipWeights, prefix: string, width: number, heads: number, mlp: number, a: ClipAct, eps: number, causal: boolean, hook: (x: Float64Array) => Float64Array | null): Mat {
  const T = X.length;
  const hd = width / heads;
  const g1 = w(W, `${prefix}.layer_norm1.weight`);
  const b1 = w(W, `${prefix}.layer_norm1.bias`);
  const P = (p: string) => [w(W, `${prefix}.self_attn.${p}.weight`), w(W, `${prefix}.self_attn.${p}.bias`)] as const;
  const [wq, bq] = P('q_proj');
  const [wk, bk] = P('k_proj');
  const [wv, bv] = P('v_proj');
  const [wo, bo] = P('out_proj');
  const H = X.map((x) => layerNorm(x, g1, b1, eps));
  const Q = H.map((h) => linear(h, wq, bq, width));
  const K = H.map((h) => linear(h, wk, bk, width));
  const V = H.map((h) => linear(h, wv, bv, width));
  const X1: Mat = [];
  for (let t = 0; t < T; t++) {
    const ctx = new Float64Array(width);
    for (let h = 0; h < heads; h++) {
      const scores: number[] = [];
      for (let s = 0; s < T; s++) {
        if (causal && s > t) {
          scores.push(-Infinity);
          continue;
        }
        let d = 0;
        for (let i = 0; i < hd; i++) d += Q[t]![h * hd + i]! * K[s]![h * hd + i]!;
        scores.push(d / Math.sqrt(hd));
      }
      const mx = Math.max(...scores);
      const e = scores.map((z) => Math.exp(z - mx));
      const sum = e.reduce((p, q) => p + q, 0);
      for (let s = 0; s < T; s++) {
        const p = e[s]! / sum;
        for (let i = 0; i < hd; i++) ctx[h * hd + i]! += p * V[s]![h * hd + i]!;
      }
    }
    const o = linear(ctx, wo, bo, width);
    const x1 = new Float64Array(width);
    for (let i = 0; i < width; i++) x1[i] = X[t]![i]! + o[i]!;
    X1.push(x1);
  }
  const g2 = w(W, `${prefix}.layer_norm2.weight`);
  const b2 = w(W, `${prefix}.layer_norm2.bias`);
  const w1 = w(W, `${prefix}.mlp.fc1.weight`);
  const c1 = w(W, `${prefix}.mlp.fc1.bias`);
  const w2 = w(W, `${prefix}.mlp.fc2.weight`);
  const c2 = w(W, `${prefix}.mlp.fc2.bias`);
  return X1.map((x) => {
    const h = linear(layerNorm(x, g2, b2, eps), w1, c1, mlp).map((z) => act(z, a));
    const m = linear(h, w2, c2, width);
    const extra = hook(x);
    const y = new Float64Array(width);
    for (let i = 0; i < width; i++) y[i] = x[i]! + m[i]! + (extra ? extra[i]! : 0);
    return y;
  });
}

/** Image tower: pixels [B,3,H,W] (row-major) → projected embeddings [B][embed]. */
export function refImageEmbeds(W: ClipWeights, cfg: ClipConfig, pixels: Float64Array, B: number, hook?: RefHook): Float64Array[] {
  const v = cfg.vision;
  const S = v.imageSize;
  const p = v.patchSize;
  const G = S / p;
  const width = v.width;
  const conv = w(W, 'vision_model.embeddings.patch_embedding.weight');
  const cls = w(W, 'vision_model.embeddings.class_embedding');
  const pos = w(W, 'vision_model.embeddings.position_embedding.weight');
  const out: Float64Array[] = [];
  for (let b = 0; b < B; b++) {
    let X: Mat = [];
    X.push(Float64Array.from(cls, (c, i) => c + pos[i]!));
    for (let gy = 0; gy < G; gy++) {
      for (let gx = 0; gx < G; gx++) {
        const tok = new Float64Array(width);
        const ti = 1 + gy * G + gx;
        for (let o = 0; o < width; o++) {
          let s = 0;
          for (let c = 0; c < 3; c++) {
            for (let ky = 0; ky < p; ky++) {
              for (let kx = 0; kx < p; kx++) {
                s += conv[((o * 3 + c) * p + ky) * p + kx]! * pixels[((b * 3 + c) * S + gy * p + ky) * S + gx * p + kx]!;
              }
            }
          }
          tok[o] = s + pos[ti * width + o]!;
        }
        X.push(tok);
      }
    }
    const gpre = w(W, 'vision_model.pre_layrnorm.weight');
    const bpre = w(W, 'vision_model.pre_layrnorm.bias');
    X = X.map((x) => layerNorm(x, gpre, bpre, v.lnEps));
    for (let l = 0; l < v.layers; l++) {
      X = block(X, W, `vision_model.encoder.layers.${l}`, width, v.heads, v.mlpDim, v.act, v.lnEps, false, (x) => (hook ? hook('image', l, x) : null));
    }
    const pooled = layerNorm(X[0]!, w(W, 'vision_model.post_layernorm.weight'), w(W, 'vision_model.post_layernorm.bias'), v.lnEps);
    out.push(linear(pooled, w(W, 'visual_projection.weight'), null, cfg.embedDim));
  }
  return out;
}

/** Text tower: token ids [B][T] → hidden states after final LN [B][T][width] and projected EOT embeddings. */
export function refTextForward(W: ClipWeights, cfg: ClipConfig, ids: number[][], hook?: RefHook): { hidden: Mat[]; embeds: Float64Array[] } {
  const t = cfg.text;
  const width = t.width;
  const tok = w(W, 'text_model.embeddings.token_embedding.weight');
  const pos = w(W, 'text_model.embeddings.position_embedding.weight');
  const hidden: Mat[] = [];
  const embeds: Float64Array[] = [];
  for (const row of ids) {
    let X: Mat = row.map((id, i) => Float64Array.from({ length: width }, (_, j) => tok[id * width + j]! + pos[i * width + j]!));
    for (let l = 0; l < t.layers; l++) {
      X = block(X, W, `text_model.encoder.layers.${l}`, width, t.heads, t.mlpDim, t.act, t.lnEps, true, (x) => (hook ? hook('text', l, x) : null));
    }
    const g = w(W, 'text_model.final_layer_norm.weight');
    const bb = w(W, 'text_model.final_layer_norm.bias');
    X = X.map((x) => layerNorm(x, g, bb, t.lnEps));
    hidden.push(X);
    let eot = 0;
    for (let i = 1; i < row.length; i++) if (row[i]! > row[eot]!) eot = i;
    embeds.push(linear(X[eot]!, w(W, 'text_projection.weight'), null, cfg.embedDim));
  }
  return { hidden, embeds };
}
