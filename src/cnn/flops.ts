/**
 * FLOPs of the CNN track, counted as the reference does: a forward pass costs 2 · MACs of the convolutions and
 * the head over the channels that take part (masked channels cost nothing), a training step 3 × its forward
 * (forward + backward ≈ 2 × forward). BN, ReLU, pooling and biases are not counted.
 *
 * The plain form ({@link convNetFlops}) takes a list of conv layers with optional active-channel counts; the
 * layout form ({@link forwardFlops}) derives those counts from channel ownership.
 */

/** One conv layer: a `kernel`×`kernel` conv producing `outH`×`outW` maps. Active counts default to the full ones. */
export interface ConvLayerFlops {
  kernel: number;
  inChannels: number;
  outChannels: number;
  outH: number;
  outW: number;
  /** Input channels that take part (masked ones cost nothing). */
  activeIn?: number;
  /** Output channels that take part. */
  activeOut?: number;
}

/** A linear head `inFeatures → outFeatures` (weights only). */
export interface LinearFlops {
  inFeatures: number;
  outFeatures: number;
  /** Input features that take part. */
  activeIn?: number;
}

function count(v: number, where: string, max?: number): number {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${where}: expected a non-negative integer, got ${v}`);
  if (max !== undefined && v > max) throw new Error(`${where}: ${v} exceeds ${max}`);
  return v;
}

/** Forward FLOPs of one conv layer for one image: 2 · outH · outW · k² · activeIn · activeOut. */
export function convLayerFlops(l: ConvLayerFlops, where = 'conv'): number {
  const k = count(l.kernel, `${where}.kernel`);
  const inC = count(l.inChannels, `${where}.inChannels`);
  const outC = count(l.outChannels, `${where}.outChannels`);
  const h = count(l.outH, `${where}.outH`);
  const w = count(l.outW, `${where}.outW`);
  const ai = count(l.activeIn ?? inC, `${where}.activeIn`, inC);
  const ao = count(l.activeOut ?? outC, `${where}.activeOut`, outC);
  return 2 * h * w * k * k * ai * ao;
}

/** Forward FLOPs of a linear head for one input: 2 · activeIn · outFeatures. */
export function linearFlops(l: LinearFlops, where = 'head'): number {
  const inF = count(l.inFeatures, `${where}.inFeatures`);
  const out = count(l.outFeatures, `${where}.outFeatures`);
  return 2 * count(l.activeIn ?? inF, `${where}.activeIn`, inF) * out;
}

/** Forward FLOPs of one image through `layers` and an optional head. */
export function convNetFlops(layers: readonly ConvLayerFlops[], head?: LinearFlops): number {
  let f = 0;
  layers.forEach((l, i) => (f += convLayerFlops(l, `layers[${i}]`)));
  if (head) f += linearFlops(head);
  return f;
}

/** Training FLOPs of one image: 3 × forward (the reference's rule). */
export function trainingFlops(forward: number): number {
  return 3 * forward;
}

/** The structure {@link forwardFlops} reads from a network layout (`resnet.ts`'s `ResNetLayout` fits). */
export interface FlopsLayout {
  groups: ReadonlyArray<{ channels: number }>;
  /** `inGroup` −1 = the image (all `inChannels` take part). */
  convs: ReadonlyArray<{ kernel: number; inChannels: number; outChannels: number; outSize: number; inGroup: number; outGroup: number }>;
  featureGroup: number;
}

/** Forward FLOPs of one image through the channels of `subnets` (all channels when `owners` is null) and a K-class head. */
export function forwardFlops(layout: FlopsLayout, owners: readonly ArrayLike<number>[] | null, subnets: ReadonlySet<number> | null, K: number): number {
  const active = (g: number): number => {
    if (!owners || !subnets) return layout.groups[g]!.channels;
    const o = owners[g]!;
    let n = 0;
    for (let i = 0; i < o.length; i++) if (subnets.has(o[i]!)) n++;
    return n;
  };
  const layers = layout.convs.map((c) => ({
    kernel: c.kernel,
    inChannels: c.inChannels,
    outChannels: c.outChannels,
    outH: c.outSize,
    outW: c.outSize,
    activeIn: c.inGroup < 0 ? c.inChannels : active(c.inGroup),
    activeOut: active(c.outGroup),
  }));
  const F = layout.groups[layout.featureGroup]!.channels;
  return convNetFlops(layers, { inFeatures: F, outFeatures: K, activeIn: active(layout.featureGroup) });
}

/** The JSON form of a {@link FlopCounter}. */
export interface FlopCounts {
  inference: number;
  training: number;
  retraining: number;
}

/** Running totals of a run: inference, online training and offline retraining (fine-tuning, merges). */
export class FlopCounter {
  inference = 0;
  training = 0;
  retraining = 0;
  /** `images` through a forward costing `perImage` each. */
  infer(perImage: number, images: number): void {
    this.inference += this.amount(perImage, images, 'infer');
  }
  /** `images` through training steps (3 × forward); `offline` counts them as retraining. */
  train(perImage: number, images: number, offline = false): void {
    const f = trainingFlops(this.amount(perImage, images, 'train'));
    if (offline) this.retraining += f;
    else this.training += f;
  }
  get total(): number {
    return this.inference + this.training + this.retraining;
  }
  toJSON(): FlopCounts {
    return { inference: this.inference, training: this.training, retraining: this.retraining };
  }
  static fromJSON(c: FlopCounts, where = 'flops'): FlopCounter {
    const f = new FlopCounter();
    for (const k of ['inference', 'training', 'retraining'] as const) {
      const v = c?.[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${where}.${k}: expected a non-negative number, got ${v}`);
      f[k] = v;
    }
    return f;
  }
  private amount(perImage: number, images: number, where: string): number {
    if (!Number.isFinite(perImage) || perImage < 0) throw new Error(`${where}.perImage: expected a non-negative number, got ${perImage}`);
    count(images, `${where}.images`);
    return perImage * images;
  }
}
