/**
 * The CNN track's network on the engine, tiny width: training one subnet leaves another's filters, momentum and
 * outputs bit-identical; after zeroForeignIncoming the union forward computes each subnet exactly; SGD steps
 * equal Nesterov SGD computed on the host from the graph's own gradients; running BN statistics against a
 * direct float64 computation; forward logits and input errors.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import { Engine } from '../../src/runtime/engine.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { resnetLayout, type ResNetLayout } from '../../src/cnn/resnet.ts';
import { gradFeeds, gradSession } from './grad-graph.ts';
import { CnnNet, headLogits, type Head } from '../../src/cnn/net.ts';
import { allocate, freeOwners, groupMasks, prune, trainableRows, zeroForeignIncoming, type Weights } from '../../src/cnn/masks.ts';

const engine = await Engine.create({ threads: 1 });
after(() => engine.close());

const S = 8;
const layout = resnetLayout({ width: 0.0625, imageSize: S });
const B = 6;
const rng = new Rng(11);
const x = Float32Array.from({ length: B * 3 * S * S }, () => rng.normal());
const x2 = Float32Array.from({ length: B * 3 * S * S }, () => rng.normal());
const labels = Int32Array.from({ length: B }, (_, i) => i % 3);
const F = layout.features;
const newHead = (K: number, r: Rng): Head => ({ w: Float32Array.from({ length: K * F }, () => r.normal() * 0.1), b: new Float32Array(K) });

const bitSame = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

test('training subnet 1 leaves subnet 0’s filters, momentum and own-mask outputs bit-identical; the union forward computes each subnet exactly', async () => {
  const net = await CnnNet.create(engine, layout, new Rng(3), { evalBatch: 64 });
  const owners = freeOwners(layout);
  allocate(owners, 0);
  const w0 = await net.getWeights();
  prune(layout, owners, w0, 0, 0.5);
  zeroForeignIncoming(layout, owners, w0);
  await net.setWeights(w0);
  const m0 = groupMasks(owners, [0]);
  const h0 = newHead(3, new Rng(1));
  for (const xb of [x, x2]) await net.trainStep(xb, labels, m0, trainableRows(layout, owners, 0), h0, 0.05);
  const before = await net.getWeights();
  const mom0 = await net.getMomentum();
  assert.ok(Object.values(mom0).some((m) => m.some((v) => v !== 0)), 'subnet 0 has momentum');
  const feat0 = await net.features(x, m0);

  allocate(owners, 1);
  const w1 = await net.getWeights();
  zeroForeignIncoming(layout, owners, w1);
  await net.setWeights(w1);
  const afterZero = await net.getWeights();
  for (const c of layout.convs) {
    const own = owners[c.outGroup]!;
    const n = c.inChannels * c.kernel * c.kernel;
    for (let o = 0; o < c.outChannels; o++) if (own[o] === 0) assert.ok(bitSame(afterZero[c.weight]!.subarray(o * n, (o + 1) * n), before[c.weight]!.subarray(o * n, (o + 1) * n)));
  }
  const m1 = groupMasks(owners, [1]);
  const h1 = newHead(3, new Rng(2));
  const rows1 = trainableRows(layout, owners, 1);
  for (const xb of [x, x2, x]) assert.ok(Number.isFinite(await net.trainStep(xb, labels, m1, rows1, h1, 0.1)));
  const afterTrain = await net.getWeights();
  const mom1 = await net.getMomentum();
  let moved = 0;
  for (const c of layout.convs) {
    const own = owners[c.outGroup]!;
    const n = c.inChannels * c.kernel * c.kernel;
    for (let o = 0; o < c.outChannels; o++) {
      const sl = (a: Weights) => a[c.weight]!.subarray(o * n, (o + 1) * n);
      if (own[o] !== 1) {
        assert.ok(bitSame(sl(afterTrain), sl(afterZero)), `${c.name} filter ${o} (owner ${own[o]}) changed`);
        assert.ok(bitSame(sl(mom1), sl(mom0)), `${c.name} filter ${o} (owner ${own[o]}): momentum changed`);
      } else if (!bitSame(sl(afterTrain), sl(afterZero))) moved++;
    }
  }
  assert.ok(moved > 0, 'subnet 1 trained');
  assert.ok(bitSame(await net.features(x, m0), feat0), 'subnet 0’s features unchanged bit for bit');
  const acts0 = await net.activations(x, m0);

  // union forward = own forwards on the owned channels, in every group (BN statistics are per channel)
  const all = groupMasks(owners, [0, 1]);
  const au = await net.activations(x, all);
  const a1 = await net.activations(x, m1);
  layout.groups.forEach((gr, gi) => {
    const own = owners[gi]!;
    for (let i = 0; i < B; i++) {
      for (let c = 0; c < gr.channels; c++) {
        const k = i * gr.channels + c;
        const want = own[c] === 0 ? acts0[gi]![k]! : own[c] === 1 ? a1[gi]![k]! : 0;
        assert.ok(Object.is(au[gi]![k], want), `${gr.name} sample ${i} channel ${c}: ${au[gi]![k]} vs ${want}`);
      }
    }
  });
  const fu = await net.features(x, all);
  assert.ok(bitSame(fu, au[layout.featureGroup]!), 'features are the pooled last group');
  await net.dispose();
});

/** The loss's gradients of every conv weight and the head (a separate graph, not the train step). */
async function gradients(L: ResNetLayout, w: Weights, head: Head, xb: Float32Array, yb: Int32Array, masks: Float32Array[]) {
  const h = await gradSession(engine, L, head.b.length);
  const r = await engine.run(h, gradFeeds(L, xb, yb, w, head, masks));
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(r)) out[k] = v.data as Float32Array;
  return out;
}

test('trainStep = Nesterov SGD (momentum 0.9, no weight decay) on the graph’s own gradients, emulated on the host in float32; frozen rows untouched', async () => {
  const K = 3;
  const net = await CnnNet.create(engine, layout, new Rng(4));
  const owners = freeOwners(layout);
  allocate(owners, 0);
  // subnet 0 trains the first half of each group's channels; the rest is another (frozen) subnet
  for (const a of owners) for (let i = Math.ceil(a.length / 2); i < a.length; i++) a[i] = 1;
  const masks = groupMasks(owners, [0, 1]);
  const rows = trainableRows(layout, owners, 0);
  const head = newHead(K, new Rng(5));
  const w = await net.getWeights();
  const hw = { w: head.w.slice(), b: head.b.slice() };
  const buf: Record<string, Float32Array> = Object.fromEntries([...layout.convs.map((c) => [c.weight, new Float32Array(w[c.weight]!.length)]), ['head.w', new Float32Array(K * F)], ['head.b', new Float32Array(K)]]);
  const f = Math.fround;
  const mu = f(0.9);
  const lrs = [0.05, 0.1, 0.02];
  const batches = [x, x2, x];
  let maxRel = 0;
  for (let s = 0; s < lrs.length; s++) {
    const lr = f(lrs[s]!);
    const gr = await gradients(layout, w, hw, batches[s]!, labels, masks);
    const loss = await net.trainStep(batches[s]!, labels, masks, rows, head, lrs[s]!);
    assert.ok(Object.is(loss, gr['loss']![0]), `step ${s}: loss ${loss} vs ${gr['loss']![0]}`);
    // PyTorch SGD: buf ← μ·buf + g; d ← g + μ·buf; p ← p − lr·d (each op rounded to float32, as the graph)
    const update = (p: Float32Array, b: Float32Array, g: Float32Array, on: (i: number) => boolean) => {
      for (let i = 0; i < p.length; i++) {
        if (!on(i)) continue;
        b[i] = f(f(b[i]! * mu) + g[i]!);
        p[i] = f(p[i]! - f(lr * f(g[i]! + f(b[i]! * mu))));
      }
    };
    layout.convs.forEach((c, ci) => {
      const n = c.inChannels * c.kernel * c.kernel;
      update(w[c.weight]!, buf[c.weight]!, gr[`grad.${c.weight}`]!, (i) => rows[ci]![Math.floor(i / n)] === 1);
    });
    update(hw.w, buf['head.w']!, gr['grad.head.w']!, () => true);
    update(hw.b, buf['head.b']!, gr['grad.head.b']!, () => true);
    const got = await net.getWeights();
    const mom = await net.getMomentum();
    layout.convs.forEach((c, ci) => {
      const n = c.inChannels * c.kernel * c.kernel;
      const a = got[c.weight]!;
      const e = w[c.weight]!;
      for (let i = 0; i < a.length; i++) {
        if (rows[ci]![Math.floor(i / n)] !== 1) {
          assert.ok(Object.is(a[i], e[i]) && mom[c.weight]![i] === 0, `${c.name}[${i}] is frozen`);
          continue;
        }
        maxRel = Math.max(maxRel, Math.abs(a[i]! - e[i]!) / (Math.abs(e[i]!) + 1e-3));
        maxRel = Math.max(maxRel, Math.abs(mom[c.weight]![i]! - buf[c.weight]![i]!) / (Math.abs(buf[c.weight]![i]!) + 1e-3));
      }
    });
    for (const [a, e] of [[head.w, hw.w], [head.b, hw.b]] as const) for (let i = 0; i < a.length; i++) maxRel = Math.max(maxRel, Math.abs(a[i]! - e[i]!) / (Math.abs(e[i]!) + 1e-3));
    // carry on from the network's own weights so that float32 rounding differences do not accumulate
    for (const c of layout.convs) w[c.weight] = got[c.weight]!, (buf[c.weight] = mom[c.weight]!);
    hw.w.set(head.w), hw.b.set(head.b);
  }
  assert.ok(maxRel < 1e-5, `max relative difference ${maxRel}`);
  // resetMomentum zeroes every buffer
  await net.resetMomentum();
  assert.ok(Object.values(await net.getMomentum()).every((m) => m.every((v) => v === 0)));
  await net.dispose();
});

test('runningStats: one step sets running mean/var by the direct formula (float64) for training filters only; eval uses them, batch mode does not', async () => {
  const L = resnetLayout({ width: 0.0625, imageSize: S, runningStats: true });
  const net = await CnnNet.create(engine, L, new Rng(6));
  const plain = await CnnNet.create(engine, resnetLayout({ width: 0.0625, imageSize: S }), new Rng(6));
  const owners = freeOwners(L);
  allocate(owners, 0);
  owners[0]![1] = 1; // stem channel 1 belongs to a frozen subnet: its statistics stay put
  const w = (await net.getWeights())['cnn.stem.w']!;
  const masks = groupMasks(owners, [0, 1]);
  const batchFeat = await net.features(x, masks, { mode: 'batch' });
  assert.ok(bitSame(batchFeat, await plain.features(x, masks)), 'batch mode = the network without running statistics');
  await net.trainStep(x, labels, masks, trainableRows(L, owners, 0), newHead(3, new Rng(7)), 0);
  const stem = L.convs[0]!;
  const run = (await net.runningStats())['stem']!;
  const n = B * S * S;
  for (let o = 0; o < stem.outChannels; o++) {
    const vals: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let yy = 0; yy < S; yy++) {
        for (let xx = 0; xx < S; xx++) {
          let v = 0;
          for (let c = 0; c < 3; c++) {
            for (let ky = 0; ky < 3; ky++) {
              for (let kx = 0; kx < 3; kx++) {
                const iy = yy + ky - 1;
                const ix = xx + kx - 1;
                if (iy < 0 || ix < 0 || iy >= S || ix >= S) continue;
                v += w[((o * 3 + c) * 3 + ky) * 3 + kx]! * x[((b * 3 + c) * S + iy) * S + ix]!;
              }
            }
          }
          vals.push(v);
        }
      }
    }
    const mean = vals.reduce((s, v) => s + v, 0) / n;
    const unbiased = vals.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
    const wantMean = o === 1 ? 0 : 0.1 * mean;
    const wantVar = o === 1 ? 1 : 0.9 + 0.1 * unbiased;
    assert.ok(Math.abs(run.mean[o]! - wantMean) < 1e-5, `channel ${o} mean: ${run.mean[o]} vs ${wantMean}`);
    assert.ok(Math.abs(run.variance[o]! - wantVar) < 1e-5 * Math.max(1, wantVar), `channel ${o} var: ${run.variance[o]} vs ${wantVar}`);
  }
  const evalFeat = await net.features(x, masks);
  assert.ok(evalFeat.every(Number.isFinite));
  assert.ok(!bitSame(evalFeat, batchFeat), 'eval mode normalises with the running statistics');
  assert.ok(bitSame(await net.features(x, masks, { mode: 'batch' }), batchFeat), 'lr 0: weights unchanged');
  await assert.rejects(plain.runningStats(), /runningStats: false/);
  await net.dispose();
  await plain.dispose();
});

test('forward: logits = head on the masked features; bad inputs name the field', async () => {
  const net = await CnnNet.create(engine, layout, new Rng(8));
  const owners = freeOwners(layout);
  allocate(owners, 0);
  const m = groupMasks(owners, [0]);
  const head = newHead(4, new Rng(9));
  const r = await net.forward(x, m, head);
  assert.deepEqual(r.logits, headLogits(r.features, head, F));
  for (let i = 0; i < B; i++) {
    for (let k = 0; k < 4; k++) {
      let s = 0;
      for (let d = 0; d < F; d++) s += r.features[i * F + d]! * head.w[k * F + d]!;
      assert.ok(Math.abs(r.logits[i * 4 + k]! - s) < 1e-5);
    }
  }
  const rows = trainableRows(layout, owners, 0);
  await assert.rejects(net.forward(x.subarray(1), m, head), /CnnNet.forward: x must be/);
  await assert.rejects(net.features(x, m.slice(1)), /groupMasks must hold 17/);
  await assert.rejects(net.trainStep(x, labels.subarray(1), m, rows, head, 0.1), /labels must be an Int32Array of 6/);
  await assert.rejects(net.trainStep(x, Int32Array.of(0, 1, 2, 3, 4, 5), m, rows, head, 0.1), /label 4 outside the head's 4 classes|label 5/);
  await assert.rejects(net.trainStep(x, labels, m, rows.slice(1), head, 0.1), /trainableFilters must hold 25/);
  await assert.rejects(net.trainStep(x, labels, m, rows, { w: head.w.subarray(1), b: head.b }, 0.1), /head.w must be/);
  await assert.rejects(net.trainStep(x, labels, m, rows, head, NaN), /lr must be/);
  await assert.rejects(net.setWeights({ nope: new Float32Array(1) }), /'nope' is not a conv weight/);
  await net.dispose();
});
