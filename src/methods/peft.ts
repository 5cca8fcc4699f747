/**
 * The baselines' adaptations of CLIP, as {@link Peft}s for the shared trainer:
 *
 * - `adapterPeft`: one bottleneck adapter per chosen block, parallel to the MLP (the MoE-Adapters expert with a
 *   single expert and gate 1: Linear d→r, ReLU, dropout, Linear r→d, ×0.1; up projection zero-initialised).
 *   Tensors `moe.<tower>.<layer>.e0.{down,up}.{weight,bias}`.
 * - `loraPeft`: LoRA on attention projections (Hu et al. 2021): Δ = (α/r)·B·A·x with A [r, w] kaiming-uniform
 *   (PyTorch Linear init) and B [w, r] zero, on q and v by default. Tensors `lora.<tower>.<layer>.<proj>.{A,B}`.
 * - `finetunePeft`: the backbone's own weights of the chosen blocks train (copies live in the train state and
 *   shadow the backbone store); no hooks.
 */
import { type Tensor, linear, mul } from '../graph/index.ts';
import type { ClipConfig } from '../clip/config.ts';
import type { Tower } from '../clip/model.ts';
import { towerWeightNames } from '../clip/model.ts';
import type { ClipWeights } from '../clip/weights.ts';
import type { TensorData } from '../runtime/types.ts';
import { Rng, type RngSnapshot } from '../util/rng.ts';
import { jsonObject } from './state.ts';
import { expertForward } from '../moe/experts.ts';
import { DROPOUT_SEED_INPUT, siteSalt } from '../moe/hooks.ts';
import { MoeLayout, expertTensorName, siteKey, type BlockSelection, type ExpertPart } from '../moe/layout.ts';
import type { Peft, PeftGraphContext, PeftMode } from './clip-trainer.ts';

/** Number of floats in a set of tensors. */
export function countParams(tensors: Iterable<TensorData>): number {
  let n = 0;
  for (const t of tensors) n += t.data.length;
  return n;
}

/** Every canonical backbone weight of the chosen blocks (all: the whole tower, embeddings and projection too). */
export function blockWeightNames(cfg: ClipConfig, tower: Tower, layers: readonly number[] | 'all'): string[] {
  const all = towerWeightNames(cfg, tower);
  if (layers === 'all') return all;
  const prefix = tower === 'image' ? 'vision_model.encoder.layers.' : 'text_model.encoder.layers.';
  const want = new Set(layers);
  return all.filter((n) => n.startsWith(prefix) && want.has(Number(n.slice(prefix.length).split('.')[0])));
}

export interface AdapterPeftOptions {
  towers: Tower[];
  blocks: BlockSelection;
  bottleneck: number;
  dropout: number;
}

/**
 * Dense adapters (see the module doc): a one-expert MoE layout (so tensor names and init are the experts' own:
 * `moe.<tower>.<layer>.e0.*`) applied with gate 1 by {@link expertForward}.
 */
export function adapterPeft(cfg: ClipConfig, opts: AdapterPeftOptions, rng: Rng): { peft: Peft; init: Record<string, TensorData> } {
  const layout = MoeLayout.forClip({ vision: cfg.vision, text: cfg.text }, { towers: opts.towers, blocks: opts.blocks, experts: 1, routers: 0, bottleneck: opts.bottleneck });
  const init = layout.initTensors(rng);
  const trainable = Object.keys(init);
  const count = countParams(Object.values(init));
  const sites = new Map(layout.sites.map((s) => [s.key, s]));
  const peft: Peft = {
    structureKey: (mode: PeftMode) => `adapter|${[...sites.keys()].join(',')}|bn${opts.bottleneck}|p${mode.kind === 'train' ? opts.dropout : 0}`,
    build(ctx: PeftGraphContext) {
      const seed = ctx.mode.kind === 'train' && opts.dropout > 0 ? ctx.g.input(DROPOUT_SEED_INPUT, 'int64', []) : null;
      return {
        hooks: {
          block: ({ tower, layer, x }) => {
            const site = sites.get(siteKey(tower, layer));
            if (!site) return null;
            const t = (part: ExpertPart) => ctx.source(expertTensorName(site, 0, part));
            const e = { downWeight: t('down.weight'), downBias: t('down.bias'), upWeight: t('up.weight'), upBias: t('up.bias') };
            return expertForward(x, e, seed ? { seed, salt: siteSalt(site), p: opts.dropout } : null);
          },
        },
      };
    },
    trainableNames: () => trainable,
    feeds(mode): Record<string, TensorData> {
      if (mode.kind !== 'train' || opts.dropout <= 0) return {};
      return { [DROPOUT_SEED_INPUT]: { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(rng.int(2 ** 31))) } };
    },
    paramCount: () => count,
    // the generator of the dropout seeds
    saveState: () => ({ rng: rng.snapshot() }),
    loadState: (j, where) => rng.restore(jsonObject(j, where)['rng'] as RngSnapshot, `${where}.rng`),
  };
  return { peft, init };
}

export interface LoraPeftOptions {
  towers: Tower[];
  blocks: BlockSelection;
  rank: number;
  alpha: number;
  projections: Array<'q' | 'k' | 'v' | 'out'>;
}

/** LoRA (see the module doc). */
export function loraPeft(cfg: ClipConfig, opts: LoraPeftOptions, rng: Rng): { peft: Peft; init: Record<string, TensorData> } {
  const sites = MoeLayout.forClip({ vision: cfg.vision, text: cfg.text }, { towers: opts.towers, blocks: opts.blocks }).sites;
  const init: Record<string, TensorData> = {};
  const chosen = new Set<string>();
  for (const s of sites) {
    for (const p of opts.projections) {
      const base = `lora.${s.tower}.${s.layer}.${p}`;
      chosen.add(`${s.tower}.${s.layer}.${p}`);
      const bound = 1 / Math.sqrt(s.width);
      init[`${base}.A`] = { dtype: 'float32', dims: [opts.rank, s.width], data: Float32Array.from({ length: opts.rank * s.width }, () => rng.uniform(-bound, bound)) };
      init[`${base}.B`] = { dtype: 'float32', dims: [s.width, opts.rank], data: new Float32Array(s.width * opts.rank) };
    }
  }
  const trainable = Object.keys(init);
  const count = countParams(Object.values(init));
  const scale = opts.alpha / opts.rank;
  const peft: Peft = {
    structureKey: () => `lora|${[...chosen].join(',')}|r${opts.rank}|a${opts.alpha}`,
    build(ctx: PeftGraphContext) {
      return {
        hooks: {
          attn: ({ tower, layer, proj, input }): Tensor | null => {
            if (!chosen.has(`${tower}.${layer}.${proj}`)) return null;
            const base = `lora.${tower}.${layer}.${proj}`;
            return mul(linear(linear(input, ctx.source(`${base}.A`)), ctx.source(`${base}.B`)), scale);
          },
        },
      };
    },
    trainableNames: () => trainable,
    feeds: () => ({}),
    paramCount: () => count,
  };
  return { peft, init };
}

/** Full fine-tuning of the chosen blocks (see the module doc). */
export function finetunePeft(cfg: ClipConfig, weights: ClipWeights, towers: Tower[], layers: (tower: Tower) => readonly number[] | 'all'): { peft: Peft; init: Record<string, TensorData> } {
  const init: Record<string, TensorData> = {};
  for (const tower of towers) {
    for (const n of blockWeightNames(cfg, tower, layers(tower))) {
      const w = weights.get(n)!;
      init[n] = { dtype: 'float32', dims: [...w.shape], data: w.data.slice() };
    }
  }
  const trainable = Object.keys(init);
  const peft: Peft = {
    structureKey: () => `finetune|${towers.map((t) => `${t}:${JSON.stringify(layers(t))}`).join(',')}`,
    build: () => ({ hooks: {} }),
    trainableNames: () => trainable,
    feeds: () => ({}),
    // the trained copies replace backbone weights: no parameters beyond the backbone's
    paramCount: () => 0,
  };
  return { peft, init };
}
