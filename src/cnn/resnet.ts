/**
 * The CNN track's network: the reference's CIFAR ResNet-18 variant ("modresnet18"), as a layout description
 * and a graph builder.
 *
 * - 3×3 stride-1 stem conv → BN → ReLU; 4 stages × 2 basic blocks with [64, 128, 256, 512]·width channels
 *   (rounded, at least 1), stride 2 at the first block of stages 2–4; global average pool; F = 512·width features.
 * - EVERY block's residual is a 1×1 conv (stride as the block) + BN, even where the shapes match.
 * - Convolutions have no bias; BN has no affine parameters and, by default, no running statistics: it always
 *   normalises with the statistics of the batch it sees (PyTorch `affine=False, track_running_stats=False`).
 *   The builder returns each BN's batch mean and biased variance; with `runningStats` src/cnn/net.ts keeps running
 *   statistics from them (momentum 0.1, unbiased variance, as PyTorch) and evaluates with them ({@link ResNetInputs.stats}).
 * - Channel GROUPS are the feature maps whose channels subnets own: the stem's output, each block's inner map
 *   and each block's output. A block's conv2 and its skip conv write the same output group, so the skip conv
 *   follows the ownership of the conv it adds to. Every group's post-ReLU activations are multiplied by a
 *   float mask [C] (1 = the channel takes part in this forward).
 * Heads (one linear layer per task) live outside the backbone (src/cnn/net.ts).
 */
import * as G from '../graph/index.ts';
import type { Tensor } from '../graph/index.ts';

export interface ResNetConfig {
  /** Channel multiplier of [64, 128, 256, 512] (1 = the reference network). */
  width: number;
  /** Image side (square inputs, NCHW). */
  imageSize: number;
  /** Input channels (3: RGB). */
  inChannels: number;
  /** Keep BN running statistics for evaluation (default false: batch statistics always). */
  runningStats: boolean;
}

/** One channel group (a feature map subnets own channels of). */
export interface GroupSpec {
  name: string;
  channels: number;
  /** Spatial side of the map. */
  size: number;
}

/** One convolution (always followed by BN). */
export interface ConvSpec {
  name: string;
  /** Weight tensor name, [outC, inC, k, k]. */
  weight: string;
  /** Group its input reads (−1: the image). */
  inGroup: number;
  /** Group its output writes. */
  outGroup: number;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  /** Output spatial side. */
  outSize: number;
  /** `main` convs own their output filters; a `skip` conv follows the main conv writing the same group. */
  role: 'main' | 'skip';
}

export interface ResNetLayout {
  config: ResNetConfig;
  groups: GroupSpec[];
  convs: ConvSpec[];
  /** Group the pooled features come from (the last block's output). */
  featureGroup: number;
  /** Feature dimension F. */
  features: number;
}

const BASE = [64, 128, 256, 512];

/** Checks a config and fills defaults. */
export function resnetConfig(c: Partial<ResNetConfig> = {}): ResNetConfig {
  const cfg: ResNetConfig = { width: c.width ?? 1, imageSize: c.imageSize ?? 32, inChannels: c.inChannels ?? 3, runningStats: c.runningStats ?? false };
  if (!(cfg.width > 0 && cfg.width <= 4)) throw new Error(`resnet: width must be in (0, 4], got ${cfg.width}`);
  if (!Number.isInteger(cfg.imageSize) || cfg.imageSize < 8) throw new Error(`resnet: imageSize must be an integer ≥ 8, got ${cfg.imageSize}`);
  if (!Number.isInteger(cfg.inChannels) || cfg.inChannels < 1) throw new Error(`resnet: inChannels must be a positive integer, got ${cfg.inChannels}`);
  return cfg;
}

/** The layout (groups and convs) of the network for `cfg`. */
export function resnetLayout(config: Partial<ResNetConfig> = {}): ResNetLayout {
  const cfg = resnetConfig(config);
  const ch = BASE.map((c) => Math.max(1, Math.round(c * cfg.width)));
  const groups: GroupSpec[] = [];
  const convs: ConvSpec[] = [];
  const outSize = (s: number, stride: number, k: number) => Math.floor((s + 2 * Math.floor(k / 2) - k) / stride) + 1;
  let size = cfg.imageSize;
  groups.push({ name: 'stem', channels: ch[0]!, size });
  convs.push({ name: 'stem', weight: 'cnn.stem.w', inGroup: -1, outGroup: 0, inChannels: cfg.inChannels, outChannels: ch[0]!, kernel: 3, stride: 1, outSize: size, role: 'main' });
  let prev = 0;
  let block = 0;
  for (let s = 0; s < 4; s++) {
    for (let b = 0; b < 2; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const inC = groups[prev]!.channels;
      const outC = ch[s]!;
      const next = outSize(size, stride, 3);
      const inner = groups.push({ name: `b${block}.inner`, channels: outC, size: next }) - 1;
      const out = groups.push({ name: `b${block}.out`, channels: outC, size: next }) - 1;
      const n = `b${block}`;
      convs.push({ name: `${n}.conv1`, weight: `cnn.${n}.conv1.w`, inGroup: prev, outGroup: inner, inChannels: inC, outChannels: outC, kernel: 3, stride, outSize: next, role: 'main' });
      convs.push({ name: `${n}.conv2`, weight: `cnn.${n}.conv2.w`, inGroup: inner, outGroup: out, inChannels: outC, outChannels: outC, kernel: 3, stride: 1, outSize: next, role: 'main' });
      convs.push({ name: `${n}.skip`, weight: `cnn.${n}.skip.w`, inGroup: prev, outGroup: out, inChannels: inC, outChannels: outC, kernel: 1, stride, outSize: next, role: 'skip' });
      size = next;
      prev = out;
      block++;
    }
  }
  return { config: cfg, groups, convs, featureGroup: prev, features: groups[prev]!.channels };
}

/** Consecutive (parent → child) group pairs in forward order (the hooked ReLU outputs), for connectivity. */
export function groupPairs(layout: ResNetLayout): Array<[number, number]> {
  return layout.groups.slice(1).map((_, i) => [i, i + 1] as [number, number]);
}

/** Stable key of a layout (for session caches). */
export function layoutKey(layout: ResNetLayout): string {
  const c = layout.config;
  return `resnet18m|w${c.width}|s${c.imageSize}|c${c.inChannels}|rs${c.runningStats}`;
}

/** What {@link buildResNet} reads: a tensor per conv weight, a mask per group, optional running stats per conv. */
export interface ResNetInputs {
  weight(conv: ConvSpec): Tensor;
  /** Float mask [C] of a group. */
  mask(group: number): Tensor;
  /** Running statistics of a conv's BN (evaluation with `runningStats`); absent: batch statistics. */
  stats?(conv: ConvSpec): { mean: Tensor; variance: Tensor };
}

export interface ResNetOutputs {
  /** Pooled features [B, F] (masked). */
  features: Tensor;
  /** Per group: post-ReLU masked activations [B, C, H, W]. */
  acts: Tensor[];
  /** Per conv: its BN's batch mean and biased variance [C]. */
  stats: Record<string, { mean: Tensor; variance: Tensor }>;
}

/** Builds the forward pass of `layout` on `x` [B, inC, S, S]. */
export function buildResNet(layout: ResNetLayout, x: Tensor, inputs: ResNetInputs): ResNetOutputs {
  const g = x.graph;
  const acts: Tensor[] = new Array(layout.groups.length);
  const stats: ResNetOutputs['stats'] = {};
  const byName = new Map(layout.convs.map((c) => [c.name, c]));
  const convBn = (c: ConvSpec, input: Tensor): Tensor =>
    g.scope(c.name, () => {
      const pad = Math.floor(c.kernel / 2);
      const y = G.conv(input, inputs.weight(c), null, { strides: [c.stride, c.stride], pads: [pad, pad, pad, pad] });
      const run = inputs.stats?.(c);
      const bn = G.batchNorm(y, run ? { stats: run } : {});
      stats[c.name] = { mean: bn.mean, variance: bn.variance };
      return bn.y;
    });
  const masked = (t: Tensor, group: number): Tensor => G.mul(t, G.unsqueeze(inputs.mask(group), [1, 2]));
  acts[0] = masked(G.relu(convBn(byName.get('stem')!, x)), 0);
  const blocks = (layout.groups.length - 1) / 2;
  let h = acts[0];
  for (let b = 0; b < blocks; b++) {
    const c1 = byName.get(`b${b}.conv1`)!;
    const c2 = byName.get(`b${b}.conv2`)!;
    const sk = byName.get(`b${b}.skip`)!;
    const inner = masked(G.relu(convBn(c1, h)), c1.outGroup);
    acts[c1.outGroup] = inner;
    const out = masked(G.relu(G.add(convBn(c2, inner), convBn(sk, h))), c2.outGroup);
    acts[c2.outGroup] = out;
    h = out;
  }
  const features = G.reduceMean(h, [2, 3]);
  return { features, acts, stats };
}
