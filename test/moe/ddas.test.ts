/**
 * DDAS: routing on synthetic clusters on the unit sphere (calibrated and constant thresholds, reference tasks,
 * merging), errors() against a plain-JS float64 forward, the training step against hand-computed torch Adam with
 * L2 weight decay, the prequential calibration window, and the exact JSON round trip.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/runtime/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { DDAS_REFERENCE_THRESHOLD, Ddas, type DdasWeights } from '../../src/moe/ddas.ts';

const D = 32;
const H = 8;
const BATCH = 16;

let engine: Engine;
before(async () => {
  engine = await Engine.create({ worker: false, threads: 1 });
});
after(async () => {
  await engine.close();
});

function unit(v: ArrayLike<number>): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! ** 2;
  const n = Math.sqrt(s);
  return Float32Array.from(v, (x) => x / n);
}

/** Gaussian clusters on the unit sphere: normalise(center + σ·noise), centers uniform on the sphere. */
class Clusters {
  readonly centers: Float32Array[];
  constructor(
    private readonly rng: Rng,
    count: number,
    private readonly sigma: number,
  ) {
    this.centers = Array.from({ length: count }, () => this.uniform());
  }
  uniform(): Float32Array {
    return unit(Array.from({ length: D }, () => this.rng.normal()));
  }
  sample(c: number): Float32Array {
    return unit(Array.from(this.centers[c]!, (x) => x + this.sigma * this.rng.normal()));
  }
  batch(c: number, n = BATCH): Float32Array[] {
    return Array.from({ length: n }, () => this.sample(c));
  }
  uniforms(n: number): Float32Array[] {
    return Array.from({ length: n }, () => this.uniform());
  }
}

/** Trains tasks 0..k-1 on clusters 0..k-1, interleaved, `steps` batches each. */
async function trainClusters(dd: Ddas, cl: Clusters, k: number, steps: number): Promise<void> {
  for (let s = 0; s < steps; s++) for (let c = 0; c < k; c++) await dd.train(c, cl.batch(c));
}

function fraction(r: Int32Array, want: number): number {
  return r.filter((v) => v === want).length / r.length;
}

/** numpy's default (linear) quantile, written from its definition. */
function npQuantile(xs: ArrayLike<number>, q: number): number {
  const s = Array.from(xs).sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const f = Math.floor(h);
  return f + 1 < s.length ? s[f]! * (1 - (h - f)) + s[f + 1]! * (h - f) : s[f]!;
}

/** The transforms, written independently of the library. */
function transform(x: ArrayLike<number>, kind: 'standardize' | 'sigmoid' | 'none'): number[] {
  const v = Array.from(x);
  if (kind === 'sigmoid') return v.map((a) => 1 / (1 + Math.exp(-a)));
  if (kind === 'none') return v;
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
  return v.map((a) => (a - m) / sd);
}

interface Ae {
  w1: number[][]; // [H][D]
  b1: number[];
  w2: number[][]; // [D][H]
  b2: number[];
}

function toAe(w: DdasWeights): Ae {
  const rows = (t: DdasWeights['enc/w']): number[][] =>
    Array.from({ length: t.dims[0]! }, (_, i) => Array.from(t.data.subarray(i * t.dims[1]!, (i + 1) * t.dims[1]!) as Float32Array));
  return { w1: rows(w['enc/w']), b1: Array.from(w['enc/b'].data as Float32Array), w2: rows(w['dec/w']), b2: Array.from(w['dec/b'].data as Float32Array) };
}

/** Float64 forward of one AE on a transformed input: hidden pre-activations, output pre-activations, output. */
function forward(ae: Ae, t: number[], sigmoidOut: boolean): { a: number[]; z: number[]; y: number[] } {
  const a = ae.w1.map((row, i) => row.reduce((s, w, j) => s + w * t[j]!, ae.b1[i]!));
  const h = a.map((v) => Math.max(0, v));
  const z = ae.w2.map((row, i) => row.reduce((s, w, j) => s + w * h[j]!, ae.b2[i]!));
  const y = sigmoidOut ? z.map((v) => 1 / (1 + Math.exp(-v))) : z;
  return { a, z, y };
}

function mseOf(ae: Ae, t: number[], sigmoidOut: boolean): number {
  const { y } = forward(ae, t, sigmoidOut);
  return y.reduce((s, v, j) => s + (v - t[j]!) ** 2, 0) / t.length;
}

function relClose(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(Math.abs(b), 1e-30), `${what}: ${a} vs ${b}`);
}

test('held-out samples route to their own task, a far cluster and uniform vectors to zero-shot (calibrated defaults)', async () => {
  const rng = new Rng(11);
  const cl = new Clusters(rng, 4, 0.08);
  const dd = await Ddas.create(engine, D, { hidden: H }, rng);
  assert.deepEqual(dd.options.threshold, { kind: 'calibrated', quantile: 0.99, scale: 1.1, window: 256 });
  assert.equal(dd.options.inputTransform, 'standardize');
  for (let k = 0; k < 3; k++) dd.addTask(k);
  await trainClusters(dd, cl, 3, 60);
  for (let k = 0; k < 3; k++) {
    const r = await dd.route(cl.batch(k, 300));
    assert.ok(fraction(r, k) >= 0.95, `cluster ${k}: ${fraction(r, k)} routed to task ${k}`);
    // the bounded window holds the 256 most recent of 960 prequential errors; threshold = q99 × 1.1
    const w = dd.calibration(k);
    assert.equal(w.length, 256);
    relClose(dd.threshold(k), npQuantile(w, 0.99) * 1.1, 1e-12, `threshold(${k})`);
  }
  const far = await dd.route(cl.batch(3, 300));
  assert.ok(fraction(far, -1) >= 0.95, `far cluster: ${fraction(far, -1)} to zero-shot`);
  const uni = await dd.route(cl.uniforms(300));
  assert.ok(fraction(uni, -1) >= 0.95, `uniform: ${fraction(uni, -1)} to zero-shot`);
});

test('the default scale 1.1 keeps unseen samples out on broad clusters, where scale 1.5 lets many in', async () => {
  const rates: Record<string, { own: number; unseen: number }> = {};
  for (const scale of [1.1, 1.5]) {
    // same seed: the training is identical, only the threshold differs
    const rng = new Rng(2);
    const cl = new Clusters(rng, 4, 0.15);
    const dd = await Ddas.create(engine, D, { hidden: H, threshold: { kind: 'calibrated', scale } }, rng);
    for (let k = 0; k < 3; k++) dd.addTask(k);
    await trainClusters(dd, cl, 3, 60);
    let own = 0;
    for (let k = 0; k < 3; k++) own += fraction(await dd.route(cl.batch(k, 200)), k) / 3;
    const unseen = (fraction(await dd.route(cl.uniforms(200)), -1) + fraction(await dd.route(cl.batch(3, 200)), -1)) / 2;
    rates[scale] = { own, unseen };
  }
  assert.ok(rates[1.1]!.own >= 0.95 && rates[1.1]!.unseen >= 0.95, JSON.stringify(rates));
  assert.ok(rates[1.5]!.unseen < 0.9, JSON.stringify(rates));
});

test('the calibration window holds prequential errors: those of each batch before the step on it', async () => {
  const rng = new Rng(5);
  const cl = new Clusters(rng, 1, 0.08);
  const dd = await Ddas.create(engine, D, { hidden: H, threshold: { kind: 'calibrated', window: 40 } }, rng);
  dd.addTask(0);
  assert.ok(Number.isNaN(dd.threshold(0)), 'untrained: no threshold yet');
  for (let s = 0; s < 4; s++) {
    const b = cl.batch(0, 12);
    const before = await dd.errors(b);
    const loss = await dd.train(0, b);
    const after = await dd.errors(b);
    const w = dd.calibration(0);
    assert.equal(w.length, Math.min(40, 12 * (s + 1)));
    const tail = w.subarray(w.length - 12);
    let mean = 0;
    for (let i = 0; i < 12; i++) {
      relClose(tail[i]!, before[i]!, 1e-5, `step ${s} window[${i}]`);
      mean += before[i]! / 12;
    }
    relClose(loss, mean, 1e-5, `step ${s} loss = mean error before the step`);
    assert.ok(after.some((e, i) => Math.abs(e - tail[i]!) > 1e-3 * tail[i]!), 'the window holds the errors before the step, not after');
  }
});

test('constant threshold: routing follows its number (argmin among trained tasks, −1 above the value)', async () => {
  const rng = new Rng(3);
  const cl = new Clusters(rng, 4, 0.08);
  const dflt = await Ddas.create(engine, D, { hidden: H, threshold: { kind: 'constant' } }, rng);
  assert.deepEqual(dflt.options.threshold, { kind: 'constant', value: DDAS_REFERENCE_THRESHOLD });
  assert.equal(DDAS_REFERENCE_THRESHOLD, 0.0655);
  const value = 0.5;
  const dd = await Ddas.create(engine, D, { hidden: H, threshold: { kind: 'constant', value } }, rng);
  for (let k = 0; k < 3; k++) dd.addTask(k);
  dd.addTask(7); // never trained: never a winner
  await trainClusters(dd, cl, 3, 40);
  for (const id of [0, 1, 2, 7]) assert.equal(dd.threshold(id), value);
  assert.equal(dd.calibration(0).length, 0, 'constant mode keeps no window');
  const xs = [...cl.batch(0, 50), ...cl.batch(1, 50), ...cl.batch(2, 50), ...cl.batch(3, 50), ...cl.uniforms(50)];
  const E = await dd.errors(xs);
  const r = await dd.route(xs);
  for (let i = 0; i < xs.length; i++) {
    let k = 0;
    for (let j = 1; j < 3; j++) if (E[i * 4 + j]! < E[i * 4 + k]!) k = j;
    assert.equal(r[i], E[i * 4 + k]! > value ? -1 : k, `sample ${i}`);
  }
  // with 0.5 between in- and out-of-distribution errors the rule separates them
  assert.ok(fraction(r.subarray(0, 50), 0) >= 0.95 && fraction(r.subarray(50, 100), 1) >= 0.95 && fraction(r.subarray(100, 150), 2) >= 0.95);
  assert.ok(fraction(r.subarray(150), -1) >= 0.95);
  // a huge value never falls back; zero always does
  const big = await Ddas.fromJSON(engine, { ...dd.toJSON(), options: { ...dd.options, threshold: { kind: 'constant', value: 1e9 } } });
  assert.ok((await big.route(cl.uniforms(50))).every((v) => v >= 0 && v <= 2));
  const zero = await Ddas.fromJSON(engine, { ...dd.toJSON(), options: { ...dd.options, threshold: { kind: 'constant', value: 0 } } });
  assert.ok((await zero.route(cl.batch(0, 20))).every((v) => v === -1));
});

test("routing 'relative': least error ÷ own threshold wins, −1 above the winner's threshold; with a constant threshold it is the raw argmin", async () => {
  const rng = new Rng(5);
  const cl = new Clusters(rng, 4, 0.08);
  const dd = await Ddas.create(engine, D, { hidden: H }, rng);
  assert.equal(dd.options.routing, 'error', 'the reference rule is the default');
  for (let k = 0; k < 3; k++) dd.addTask(k);
  await trainClusters(dd, cl, 3, 60);
  const xs = [...cl.batch(0, 40), ...cl.batch(1, 40), ...cl.batch(2, 40), ...cl.uniforms(40)];
  /** The rule written out from errors() and threshold(): argmin of score, −1 when the winner's error is above its threshold. */
  const expected = (E: Float32Array, thr: number[], relative: boolean): number[] =>
    xs.map((_, i) => {
      let k = 0;
      for (let j = 1; j < 3; j++) if ((relative ? E[i * 3 + j]! / thr[j]! : E[i * 3 + j]!) < (relative ? E[i * 3 + k]! / thr[k]! : E[i * 3 + k]!)) k = j;
      return E[i * 3 + k]! > thr[k]! ? -1 : k;
    });
  // task 0's calibration errors ×1000: a task whose own errors are large (a broad distribution) claims, relative
  // to that level, the samples the others reconstruct best
  const json = dd.toJSON();
  const inflated = { ...json, tasks: json.tasks.map((t) => (t.id === 0 ? { ...t, members: t.members.map((m) => ({ ...m, window: m.window.map((e) => e * 1000) })) } : t)) };
  const byError = await Ddas.fromJSON(engine, inflated);
  const byRatio = await Ddas.fromJSON(engine, { ...inflated, options: { ...inflated.options, routing: 'relative' } });
  assert.equal(byRatio.options.routing, 'relative');
  const E = await byRatio.errors(xs);
  const thr = [0, 1, 2].map((k) => byRatio.threshold(k));
  const rErr = Array.from(await byError.route(xs));
  const rRel = Array.from(await byRatio.route(xs));
  assert.deepEqual(rErr, expected(E, thr, false));
  assert.deepEqual(rRel, expected(E, thr, true));
  assert.ok(fraction(Int32Array.from(rErr.slice(40, 80)), 1) >= 0.95, 'raw argmin: cluster 1 stays with task 1');
  assert.ok(fraction(Int32Array.from(rRel.slice(40, 80)), 0) >= 0.95, 'relative: the inflated task 0 takes cluster 1');
  // untouched calibration: own clusters still route home under 'relative'
  const plain = await Ddas.fromJSON(engine, { ...json, options: { ...json.options, routing: 'relative' } });
  const own = await plain.route(xs.slice(0, 120));
  for (let k = 0; k < 3; k++) assert.ok(fraction(own.subarray(40 * k, 40 * (k + 1)), k) >= 0.95, `cluster ${k} under 'relative'`);
  // constant threshold: the two rules are one
  const constant = structuredClone({ ...json, options: { ...json.options, threshold: { kind: 'constant' as const, value: 0.5 } } });
  for (const t of constant.tasks) for (const m of t.members) m.window = [];
  const cErr = await Ddas.fromJSON(engine, constant);
  const cRel = await Ddas.fromJSON(engine, { ...constant, options: { ...constant.options, routing: 'relative' } });
  assert.deepEqual(Array.from(await cRel.route(xs)), Array.from(await cErr.route(xs)));
  await assert.rejects(Ddas.fromJSON(engine, { ...json, options: { ...json.options, routing: 'nearest' } }, 'ckpt.json'), /ckpt\.json\.options\.routing: must be one of error, relative/);
});

for (const inputTransform of ['standardize', 'sigmoid', 'none'] as const) {
  test(`errors() equals a plain-JS float64 forward of every AE, in one graph run (${inputTransform})`, async () => {
    const rng = new Rng(8);
    const cl = new Clusters(rng, 3, 0.1);
    const dd = await Ddas.create(engine, D, { hidden: H, inputTransform }, rng);
    dd.addTask(4);
    dd.addTask(2);
    dd.addTask(9);
    for (let s = 0; s < 5; s++) {
      await dd.train(4, cl.batch(0));
      await dd.train(2, cl.batch(1));
    }
    assert.deepEqual(dd.describe(), { tasks: [4, 2, 9], trained: [4, 2], aes: 3, params: 3 * (2 * H * D + H + D) });
    const xs = [...cl.batch(0, 5), ...cl.batch(1, 5), ...cl.uniforms(5)];
    const runs = engine.stats().runs;
    const E = await dd.errors(xs);
    assert.equal(engine.stats().runs, runs + 1);
    assert.equal(E.length, xs.length * 3);
    [4, 2, 9].forEach((id, k) => {
      const ae = toAe(dd.weights(id)[0]!);
      xs.forEach((x, i) => relClose(E[i * 3 + k]!, mseOf(ae, transform(x, inputTransform), inputTransform === 'sigmoid'), 1e-5, `task ${id} sample ${i}`));
    });
  });
}

test('one training session and one errors session serve every AE; keys differ by dims and hidden', async () => {
  const rng = new Rng(1);
  const cl = new Clusters(rng, 2, 0.1);
  const a = await Ddas.create(engine, D, { hidden: H }, rng);
  const built = engine.stats().built;
  for (let k = 0; k < 5; k++) a.addTask(k);
  for (let k = 0; k < 5; k++) await a.train(k, cl.batch(k % 2));
  await a.route(cl.batch(0));
  assert.equal(engine.stats().built, built);
  const b = await Ddas.create(engine, D, { hidden: H + 1 }, rng);
  const c = await Ddas.create(engine, D + 1, { hidden: H }, rng);
  const keys = [a, b, c].flatMap((x) => [x.sessionKeys.train, x.sessionKeys.errors]);
  assert.equal(new Set(keys).size, 6);
  for (const k of keys) assert.ok(engine.has(k), k);
});

/** Hand-written backprop of the batch MSE of one AE on a transformed batch. */
function refGrad(ae: Ae, batch: number[][], sigmoidOut: boolean): { loss: number; g: Ae } {
  const n = batch.length;
  const Dm = batch[0]!.length;
  const Hm = ae.b1.length;
  const g: Ae = { w1: ae.w1.map((r) => r.map(() => 0)), b1: ae.b1.map(() => 0), w2: ae.w2.map((r) => r.map(() => 0)), b2: ae.b2.map(() => 0) };
  let loss = 0;
  for (const t of batch) {
    const { a, y } = forward(ae, t, sigmoidOut);
    const h = a.map((v) => Math.max(0, v));
    const dz = y.map((v, j) => {
      const r = v - t[j]!;
      loss += (r * r) / (n * Dm);
      const dy = (2 * r) / (n * Dm);
      return sigmoidOut ? dy * v * (1 - v) : dy;
    });
    const dh = new Array<number>(Hm).fill(0);
    for (let j = 0; j < Dm; j++) {
      g.b2[j]! += dz[j]!;
      for (let i = 0; i < Hm; i++) {
        g.w2[j]![i]! += dz[j]! * h[i]!;
        dh[i]! += ae.w2[j]![i]! * dz[j]!;
      }
    }
    for (let i = 0; i < Hm; i++) {
      const da = a[i]! > 0 ? dh[i]! : 0;
      g.b1[i]! += da;
      for (let j = 0; j < Dm; j++) g.w1[i]![j]! += da * t[j]!;
    }
  }
  return { loss, g };
}

/** torch.optim.Adam (β 0.9/0.999, ε 1e-8) with L2 weight decay: g ← g + wd·p, then the Adam update, in place. */
function refAdam(ae: Ae, g: Ae, slots: Map<string, { m: number[]; v: number[] }>, step: number, lr: number, wd: number): void {
  const b1 = 0.9;
  const b2 = 0.999;
  const eps = 1e-8;
  const update = (name: string, p: number[], gr: number[]): void => {
    const s = slots.get(name) ?? { m: p.map(() => 0), v: p.map(() => 0) };
    slots.set(name, s);
    for (let i = 0; i < p.length; i++) {
      const gi = gr[i]! + wd * p[i]!;
      s.m[i] = b1 * s.m[i]! + (1 - b1) * gi;
      s.v[i] = b2 * s.v[i]! + (1 - b2) * gi * gi;
      const mh = s.m[i]! / (1 - b1 ** step);
      const vh = s.v[i]! / (1 - b2 ** step);
      p[i] = p[i]! - (lr * mh) / (Math.sqrt(vh) + eps);
    }
  };
  ae.w1.forEach((r, i) => update(`w1.${i}`, r, g.w1[i]!));
  update('b1', ae.b1, g.b1);
  ae.w2.forEach((r, i) => update(`w2.${i}`, r, g.w2[i]!));
  update('b2', ae.b2, g.b2);
}

for (const inputTransform of ['none', 'sigmoid'] as const) {
  test(`a training step equals hand-computed torch Adam with L2 weight decay on a 2-dim toy (${inputTransform}, float64)`, async () => {
    const rng = new Rng(21);
    const lr = 0.05;
    const wd = 0.1;
    const sigmoidOut = inputTransform === 'sigmoid';
    const dd = await Ddas.create(engine, 2, { hidden: 2, dtype: 'float64', lr, weightDecay: wd, inputTransform }, rng);
    dd.addTask(0);
    const w0 = dd.weights(0)[0]!;
    assert.equal(w0['enc/w'].dtype, 'float64');
    const ae = toAe(w0);
    // the JS gradient is checked against central differences of the JS loss first
    const probe = [
      [0.8, -0.3],
      [-0.5, 1.2],
    ].map((x) => transform(x, inputTransform));
    const { g } = refGrad(ae, probe, sigmoidOut);
    const h = 1e-6;
    for (const [k, i, j] of [['w1', 0, 1], ['w1', 1, 0], ['w2', 1, 1], ['b1', 0, -1], ['b2', 1, -1]] as const) {
      const at = (delta: number): number => {
        const c = JSON.parse(JSON.stringify(ae)) as Ae;
        if (j < 0) (c[k] as number[])[i]! += delta;
        else (c[k] as number[][])[i]![j]! += delta;
        return refGrad(c, probe, sigmoidOut).loss;
      };
      const an = j < 0 ? (g[k] as number[])[i]! : (g[k] as number[][])[i]![j]!;
      assert.ok(Math.abs(an - (at(h) - at(-h)) / (2 * h)) < 1e-8, `JS gradient ${k}[${i}][${j}] vs finite differences`);
    }
    const slots = new Map<string, { m: number[]; v: number[] }>();
    const batches = [
      [[0.8, -0.3], [-0.5, 1.2], [0.1, 0.4]],
      [[1.5, 0.2], [-0.7, -0.9]],
      [[0.3, 0.3], [0.9, -1.1], [-0.2, 0.6], [1.0, 0.0]],
    ];
    for (let s = 0; s < batches.length; s++) {
      const raw = batches[s]!;
      const { loss: want, g: grads } = refGrad(ae, raw.map((x) => transform(x, inputTransform)), sigmoidOut);
      refAdam(ae, grads, slots, s + 1, lr, wd);
      const got = await dd.train(0, raw.map((x) => Float64Array.from(x)));
      relClose(got, want, 1e-12, `step ${s + 1} loss`);
      const w = toAe(dd.weights(0)[0]!);
      for (const k of ['w1', 'w2'] as const) w[k].forEach((r, i) => r.forEach((v, j) => relClose(v, ae[k][i]![j]!, 1e-10, `step ${s + 1} ${k}[${i}][${j}]`)));
      for (const k of ['b1', 'b2'] as const) w[k].forEach((v, i) => relClose(v, ae[k][i]!, 1e-10, `step ${s + 1} ${k}[${i}]`));
    }
    assert.equal(dd.steps(0), 3);
  });
}

test('a reference task that wins sends the sample to zero-shot', async () => {
  const rng = new Rng(4);
  const cl = new Clusters(rng, 2, 0.08);
  const dd = await Ddas.create(engine, D, { hidden: H }, rng);
  dd.addTask(0, { reference: true });
  dd.addTask(1);
  await trainClusters(dd, cl, 2, 40);
  const xs = cl.batch(0, 100);
  const E = await dd.errors(xs);
  let wins = 0;
  for (let i = 0; i < xs.length; i++) if (E[i * 2]! < E[i * 2 + 1]! && E[i * 2]! <= dd.threshold(0)) wins++;
  assert.ok(wins >= 95, `the reference AE wins under its threshold (${wins}/100)`);
  assert.ok((await dd.route(xs)).every((v) => v === -1));
  assert.ok(fraction(await dd.route(cl.batch(1, 100)), 1) >= 0.95);
});

test('untrained AEs never win; with no trained task everything goes to zero-shot', async () => {
  const rng = new Rng(6);
  const cl = new Clusters(rng, 2, 0.08);
  const dd = await Ddas.create(engine, D, { hidden: H, threshold: { kind: 'constant', value: 1e9 } }, rng);
  dd.addTask(0);
  dd.addTask(1);
  assert.ok((await dd.route(cl.batch(0, 20))).every((v) => v === -1));
  for (let s = 0; s < 10; s++) await dd.train(0, cl.batch(0));
  // cluster 1 is reconstructed badly by AE 0, yet the untrained AE 1 is never chosen
  const xs = [...cl.batch(1, 50), ...cl.uniforms(50)];
  assert.ok((await dd.route(xs)).every((v) => v === 0));
  assert.equal((await dd.errors(xs)).length, 200, 'errors() still reports the untrained AE');
});

test('mergeTasks keeps the routing of both merged tasks, now to `into`, with pooled calibration', async () => {
  const rng = new Rng(9);
  const cl = new Clusters(rng, 4, 0.08);
  const dd = await Ddas.create(engine, D, { hidden: H }, rng);
  for (let k = 0; k < 3; k++) dd.addTask(k);
  await trainClusters(dd, cl, 3, 60);
  const xs = [...cl.batch(0, 100), ...cl.batch(1, 100), ...cl.batch(2, 100)];
  const E3 = await dd.errors(xs);
  const pooled = [...dd.calibration(2), ...dd.calibration(1)];
  const w1 = dd.weights(1)[0]!;
  const w2 = dd.weights(2)[0]!;

  await dd.mergeTasks([2], 1);
  assert.deepEqual(dd.describe(), { tasks: [0, 1], trained: [0, 1], aes: 3, params: 3 * (2 * H * D + H + D) });
  assert.throws(() => dd.threshold(2), /no task 2/);
  relClose(dd.threshold(1), npQuantile(pooled, 0.99) * 1.1, 1e-12, 'pooled threshold');
  const E2 = await dd.errors(xs);
  for (let i = 0; i < xs.length; i++) {
    relClose(E2[i * 2]!, E3[i * 3]!, 1e-6, `sample ${i} task 0`);
    relClose(E2[i * 2 + 1]!, Math.min(E3[i * 3 + 1]!, E3[i * 3 + 2]!), 1e-6, `sample ${i} merged task`);
  }
  const r0 = await dd.route(cl.batch(0, 200));
  const r1 = await dd.route(cl.batch(1, 200));
  const r2 = await dd.route(cl.batch(2, 200));
  assert.ok(fraction(r0, 0) >= 0.95 && fraction(r1, 1) >= 0.95 && fraction(r2, 1) >= 0.95, `${fraction(r0, 0)} ${fraction(r1, 1)} ${fraction(r2, 1)}`);
  assert.ok(fraction(await dd.route(cl.uniforms(200)), -1) >= 0.95);
  assert.ok(fraction(await dd.route(cl.batch(3, 200)), -1) >= 0.95);

  // a batch of cluster 2 trains the member that came from task 2 only
  await dd.train(1, cl.batch(2));
  const [m1, m2] = dd.weights(1);
  assert.deepEqual(m1!['enc/w'].data, w1['enc/w'].data);
  assert.notDeepEqual(m2!['enc/w'].data, w2['enc/w'].data);

  // rule violations name the task
  dd.addTask(5, { reference: true });
  await assert.rejects(dd.mergeTasks([5], 0), /task 5 is a reference task/);
  await assert.rejects(dd.mergeTasks([8], 0), /no task 8/);
});

test('JSON round trip is exact and the copy continues bit-identically (adds, trains, routes)', async () => {
  const rng = new Rng(13);
  const cl = new Clusters(rng, 3, 0.08);
  const dd = await Ddas.create(engine, D, { hidden: H, threshold: { kind: 'calibrated', window: 50 } }, rng);
  dd.addTask(0, { reference: true });
  dd.addTask(1);
  dd.addTask(2);
  await trainClusters(dd, cl, 3, 8);
  await dd.mergeTasks([2, 1], 2);
  const json = JSON.parse(JSON.stringify(dd)) as unknown;
  const copy = await Ddas.fromJSON(engine, json);
  assert.deepEqual(copy.toJSON(), dd.toJSON());
  assert.deepEqual(copy.options, dd.options);
  const xs = [...cl.batch(0, 10), ...cl.batch(1, 10), ...cl.uniforms(10)];
  assert.deepEqual(await copy.errors(xs), await dd.errors(xs));
  assert.deepEqual(await copy.route(xs), await dd.route(xs));
  for (const d of [dd, copy]) d.addTask(3); // same init draws from the saved generator state
  const b = cl.batch(1);
  const c = cl.batch(2);
  for (const d of [dd, copy]) {
    await d.train(3, b);
    await d.train(2, c);
  }
  assert.deepEqual(copy.toJSON(), dd.toJSON());
  assert.equal(dd.threshold(2), copy.threshold(2));

  // malformed checkpoints are refused with the field named
  const bad = JSON.parse(JSON.stringify(dd)) as { tasks: Array<{ members: Array<{ state: { tensors: Record<string, { dims: number[] }> }; window: unknown }> }> };
  bad.tasks[0]!.members[0]!.window = [1, 'x'];
  await assert.rejects(Ddas.fromJSON(engine, bad, 'ckpt.json'), /ckpt\.json\.tasks\[0\]\.members\[0\]\.window/);
  const bad2 = JSON.parse(JSON.stringify(dd)) as typeof bad;
  bad2.tasks[1]!.members[0]!.state.tensors['enc/b']!.dims = [H + 1];
  await assert.rejects(Ddas.fromJSON(engine, bad2, 'ckpt.json'), /ckpt\.json\.tasks\[1\]\.members\[0\]\.state/);
  await assert.rejects(Ddas.fromJSON(engine, { ...dd.toJSON(), format: 'x' }), /ddas\.format/);
  await dd.dispose();
  await assert.rejects(dd.route(xs), /dispose/);
});

test('calls issued without awaiting run one at a time in call order', async () => {
  const rng = new Rng(17);
  const cl = new Clusters(rng, 2, 0.08);
  const a = await Ddas.create(engine, D, { hidden: H }, rng);
  a.addTask(0);
  a.addTask(1);
  const b = await Ddas.fromJSON(engine, a.toJSON());
  const batches = [cl.batch(0), cl.batch(1), cl.batch(0)];
  const probe = cl.batch(1, 4);
  const seq: unknown[] = [];
  seq.push(await b.train(0, batches[0]!), await b.errors(probe), await b.train(1, batches[1]!), await b.train(0, batches[2]!), await b.route(probe));
  const par = await Promise.all([a.train(0, batches[0]!), a.errors(probe), a.train(1, batches[1]!), a.train(0, batches[2]!), a.route(probe)]);
  assert.deepEqual(par, seq);
  assert.deepEqual(a.toJSON(), b.toJSON());
});

test('options and features are validated, errors naming the field', async () => {
  const rng = new Rng(0);
  await assert.rejects(Ddas.create(engine, D, { hidden: 0 }, rng), /options\.hidden/);
  await assert.rejects(Ddas.create(engine, D, { threshold: { kind: 'calibrated', quantile: 2 } }, rng), /options\.threshold\.quantile/);
  await assert.rejects(Ddas.create(engine, D, { inputTransform: 'tanh' as 'none' }, rng), /options\.inputTransform/);
  await assert.rejects(Ddas.create(engine, 0, {}, rng), /dim/);
  const dd = await Ddas.create(engine, D, { hidden: H }, rng);
  dd.addTask(0);
  assert.throws(() => dd.addTask(0), /task 0 already exists/);
  assert.throws(() => dd.addTask(-1), /id must be a non-negative integer/);
  await assert.rejects(dd.train(0, [new Float32Array(D), new Float32Array(D - 1)]), /features\[1\]: has length 31, expected 32/);
  await assert.rejects(dd.train(3, [new Float32Array(D)]), /no task 3/);
  const nan = new Float32Array(D);
  nan[4] = NaN;
  await assert.rejects(dd.errors([nan]), /features\[0\]\[4\]/);
  await assert.rejects(dd.train(0, [new Float32Array(D)], { lr: -1 }), /opts\.lr/);
});
