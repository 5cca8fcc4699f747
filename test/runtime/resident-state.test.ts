/**
 * Resident tensor stores of the Engine (put/get/delete, runs reading from stores and updating one) in both
 * engine modes, and ResidentTrainState: bit-identity with TrainState, the AdamW formula, growing, shrinking,
 * training a subset, snapshot/restore and the exact traffic of a resident step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as G from '../../src/graph/index.ts';
import { Engine, EngineError, ResidentTrainState, TrainState, type StoreHandle, type TensorData } from '../../src/runtime/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { MiniGraph, matmulAddModel } from './onnx-fixtures.ts';

async function withEngine<T>(worker: boolean, fn: (e: Engine) => Promise<T>): Promise<T> {
  const engine = await Engine.create({ worker, threads: 1 });
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

function f64(dims: number[], values: number[]): TensorData {
  return { dtype: 'float64', dims, data: Float64Array.from(values) };
}

function f32(dims: number[], values: number[]): TensorData {
  return { dtype: 'float32', dims, data: Float32Array.from(values) };
}

function bytesOf(t: TensorData): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Same dtype, dims and bytes. */
function assertSameBits(actual: TensorData | undefined, expected: TensorData | undefined, what: string): void {
  assert.ok(actual, `${what}: missing`);
  assert.ok(expected, `${what}: no expected value`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual(actual.dims, expected.dims, `${what}: dims`);
  assert.ok(bytesOf(actual).equals(bytesOf(expected)), `${what}: ${Array.from(actual.data as ArrayLike<number>)} vs ${Array.from(expected.data as ArrayLike<number>)}`);
}

function copy(t: TensorData): TensorData {
  const data = t.data.slice();
  return { dtype: t.dtype, dims: [...t.dims], data };
}

function sumBytes(ts: Record<string, TensorData>): number {
  return Object.values(ts).reduce((n, t) => n + t.data.byteLength, 0);
}

// ------------------------------------------------------------------------------------------------ stores

/** One tensor of each dtype, with bit patterns a decimal round trip would lose. */
function everyDtype(): Record<string, TensorData> {
  const f32bits = new Float32Array(4);
  new Uint32Array(f32bits.buffer).set([0x7fc00001, 0x80000000, 0x00000001, 0x3f800000]); // NaN payload, −0, subnormal, 1
  return {
    f32: { dtype: 'float32', dims: [2, 2], data: f32bits },
    f64: { dtype: 'float64', dims: [3], data: Float64Array.of(Math.PI, -0, 5e-324) },
    i64: { dtype: 'int64', dims: [2], data: BigInt64Array.of(-(2n ** 63n), 2n ** 62n + 7n) },
    i32: { dtype: 'int32', dims: [], data: Int32Array.of(-123456789) },
    bool: { dtype: 'bool', dims: [3], data: Uint8Array.of(1, 0, 1) },
    u8: { dtype: 'uint8', dims: [1, 2], data: Uint8Array.of(0, 255) },
  };
}

for (const worker of [true, false]) {
  const mode = worker ? 'worker' : 'in-process';

  test(`stores (${mode}): put/get round trip is bit-exact, copies stay independent, replace/delete/errors`, async () => {
    await withEngine(worker, async (engine) => {
      const s = engine.createStore('st');
      assert.equal(s.name, 'st');
      const given = everyDtype();
      const expected = Object.fromEntries(Object.entries(given).map(([k, t]) => [k, copy(t)]));
      const before = engine.stats();
      const put = engine.putTensors(s, given);
      // the mirror is in sync at once
      assert.deepEqual([...engine.storeInfo(s).keys()], Object.keys(given));
      assert.deepEqual(engine.storeInfo(s).get('f32'), { dtype: 'float32', dims: [2, 2] });
      await put;
      (given.f64!.data as Float64Array)[0] = 99; // the store holds its own copy
      const got = await engine.getTensors(s);
      assert.deepEqual(Object.keys(got), Object.keys(expected));
      for (const k of Object.keys(expected)) assertSameBits(got[k], expected[k], k);
      const after = engine.stats();
      assert.equal(after.bytesToHost - before.bytesToHost, sumBytes(expected));
      assert.equal(after.bytesFromHost - before.bytesFromHost, sumBytes(expected));
      assert.equal(after.stores, 1);
      (got.f64!.data as Float64Array)[1] = 42; // and hands out copies
      assertSameBits((await engine.getTensors(s, ['f64'])).f64, expected.f64, 'f64 after mutating a copy');

      // replace with other dims, delete
      await engine.putTensors(s, { f32: f32([3], [1, 2, 3]) });
      assert.deepEqual(engine.storeInfo(s).get('f32'), { dtype: 'float32', dims: [3] });
      assertSameBits((await engine.getTensors(s, ['f32'])).f32, f32([3], [1, 2, 3]), 'replaced f32');
      await engine.deleteTensors(s, ['i32', 'bool']);
      assert.deepEqual([...engine.storeInfo(s).keys()].sort(), ['f32', 'f64', 'i64', 'u8']);
      await assert.rejects(engine.getTensors(s, ['i32', 'f64']), /getTensors: store 'st' has no tensors 'i32'/);
      await assert.rejects(engine.deleteTensors(s, ['f64', 'nope', 'nada']), /store 'st' has no tensors 'nope', 'nada'/);
      assert.ok(engine.storeInfo(s).has('f64'), 'a failed delete deletes nothing');
      await assert.rejects(
        engine.putTensors(s, { ok: f32([1], [1]), bad: { dtype: 'float32', dims: [2], data: Float64Array.of(1, 2) } }),
        /store 'st' tensor 'bad': dtype float32 needs a Float32Array/,
      );
      assert.equal(engine.storeInfo(s).has('ok'), false, 'a failed put puts nothing');

      // transfer moves the caller's arrays in both modes
      const moved = f32([4], [1, 2, 3, 4]);
      await engine.putTensors(s, { moved }, { transfer: true });
      assert.equal(moved.data.length, 0, 'transferred array is detached');
      assertSameBits((await engine.getTensors(s, ['moved'])).moved, f32([4], [1, 2, 3, 4]), 'moved');

      // a view into a pooled Buffer is copied, never detached
      const pool = Buffer.from([9, 8, 7, 6, 5]);
      const view = new Uint8Array(pool.buffer, pool.byteOffset + 1, 3);
      await engine.putTensors(s, { view: { dtype: 'uint8', dims: [3], data: view } }, { transfer: true });
      assert.equal(view.length, 3);
      assert.deepEqual([...(await engine.getTensors(s, ['view'])).view!.data], [8, 7, 6]);

      // released stores and foreign handles
      const other = await Engine.create({ worker: false, threads: 1 });
      try {
        const foreign = other.createStore('foreign');
        await assert.rejects(engine.putTensors(foreign, {}), /putTensors: store "foreign" does not belong to this engine/);
      } finally {
        await other.close();
      }
      await engine.releaseStore(s);
      await engine.releaseStore(s); // idempotent
      assert.equal(engine.stats().stores, 0);
      await assert.rejects(engine.putTensors(s, { a: f32([1], [1]) }), /putTensors: store 'st' was released/);
      await assert.rejects(engine.getTensors(s), /getTensors: store 'st' was released/);
      assert.throws(() => engine.storeInfo(s), /storeInfo: store 'st' was released/);
    });
  });

  test(`run with stores (${mode}): missing inputs come from the first store holding them, feeds win, errors name the stores`, async () => {
    await withEngine(worker, async (engine) => {
      const K = 3;
      const M = 2;
      const h = await engine.session('matmul-add', () => matmulAddModel(K, M));
      const rng = new Rng(5);
      const r = (n: number): number[] => Array.from({ length: n }, () => rng.normal());
      const x = f32([4, K], r(4 * K));
      const W = f32([K, M], r(K * M));
      const b = f32([M], r(M));
      const b2 = f32([M], r(M));
      const weights = engine.createStore('weights');
      const other = engine.createStore('other');
      await engine.putTensors(weights, { W, b });
      await engine.putTensors(other, { b: b2, unrelated: f32([1], [0]) });

      const direct = await engine.run(h, { x, W, b });
      const before = engine.stats();
      const viaStore = await engine.run(h, { x }, undefined, { stores: [weights] });
      const after = engine.stats();
      assertSameBits(viaStore.y, direct.y, 'y from store weights');
      assert.equal(after.bytesToHost - before.bytesToHost, x.data.byteLength, 'only the batch is sent');
      assert.equal(after.bytesFromHost - before.bytesFromHost, direct.y!.data.byteLength, 'only y comes back');

      assertSameBits((await engine.run(h, { x }, undefined, { stores: [other, weights] })).y, (await engine.run(h, { x, W, b: b2 })).y, 'first store wins');
      assertSameBits((await engine.run(h, { x, b: b2 }, undefined, { stores: [weights] })).y, (await engine.run(h, { x, W, b: b2 })).y, 'feeds win');

      await assert.rejects(
        engine.run(h, { x }, undefined, { stores: [other] }),
        (e: unknown) => e instanceof EngineError && /missing feeds: W \(not in feeds nor in stores 'other'\)/.test(e.message),
      );
      const bad = engine.createStore('bad');
      await engine.putTensors(bad, { W: f32([2, 2], [1, 2, 3, 4]), b });
      await assert.rejects(
        engine.run(h, { x }, undefined, { stores: [bad] }),
        /session 'matmul-add': run failed: tensor 'W' of store 'bad' has dims \[2, 2\] but the graph expects \[3, 2\]/,
      );
      await engine.releaseStore(bad);
      await assert.rejects(engine.run(h, { x }, undefined, { stores: [bad] }), /run: stores: store 'bad' was released/);
    });
  });

  test(`run with update (${mode}): .next outputs replace tensors of the update store only, all or none, after success`, async () => {
    await withEngine(worker, async (engine) => {
      // acc.next = acc + inc, cnt.next = cnt + 1, seen = acc (shapes unchecked by the graph: ORT decides)
      const g = new MiniGraph('float64');
      const acc = g.input('acc', ['N']);
      const inc = g.input('inc', ['M']);
      const cnt = g.input('cnt', []);
      g.op('Add', [acc, inc], {}, 'acc.next');
      g.op('Add', [cnt, g.const(1)], {}, 'cnt.next');
      g.op('Identity', [acc], {}, 'seen');
      // cnt.next comes first, so an all-or-none violation would show on cnt when acc.next is rejected
      g.output('cnt.next', []);
      g.output('acc.next', ['K']);
      g.output('seen', ['N']);
      const h = await engine.session('accumulate', () => g.encode());

      const src = engine.createStore('src');
      const dst = engine.createStore('dst');
      await engine.putTensors(src, { acc: f64([3], [1, 2, 3]), cnt: f64([], [0]) });
      await engine.putTensors(dst, { acc: f64([3], [10, 20, 30]), cnt: f64([], [5]) });
      const inc3 = f64([3], [0.5, 0.5, 0.5]);

      // inputs from src, updates into dst; without fetch only the non-replacement output comes back
      const out = await engine.run(h, { inc: inc3 }, undefined, { stores: [src], update: dst });
      assert.deepEqual(Object.keys(out), ['seen']);
      assert.deepEqual([...out.seen!.data], [1, 2, 3]);
      const d1 = await engine.getTensors(dst);
      assert.deepEqual([...d1.acc!.data], [1.5, 2.5, 3.5]);
      assert.deepEqual([...d1.cnt!.data], [1]);
      const s1 = await engine.getTensors(src);
      assert.deepEqual([...s1.acc!.data], [1, 2, 3], 'the source store is not updated');
      assert.deepEqual([...s1.cnt!.data], [0]);

      // reading from and updating the same store accumulates; a fetched replacement is a copy
      const fetched = await engine.run(h, { inc: inc3 }, ['acc.next'], { stores: [dst], update: dst });
      assert.deepEqual(Object.keys(fetched), ['acc.next']);
      assert.deepEqual([...fetched['acc.next']!.data], [2, 3, 4]);
      (fetched['acc.next']!.data as Float64Array).fill(-1);
      const d2 = await engine.getTensors(dst);
      assert.deepEqual([...d2.acc!.data], [2, 3, 4]);
      assert.deepEqual([...d2.cnt!.data], [2]);

      // a run that fails inside ORT (shapes [3] + [2] do not broadcast) leaves the store intact
      await assert.rejects(engine.run(h, { inc: f64([2], [1, 1]) }, undefined, { stores: [dst], update: dst }), EngineError);
      for (const [k, t] of Object.entries(await engine.getTensors(dst))) assertSameBits(t, d2[k], `dst ${k} after a failed run`);

      // a replacement of other dims fails the run naming the tensor; the valid cnt.next is not applied either
      await engine.putTensors(dst, { acc: f64([1], [7]) });
      const d3 = await engine.getTensors(dst);
      await assert.rejects(
        engine.run(h, { inc: inc3 }, undefined, { stores: [dst], update: dst }),
        /output 'acc\.next' is float64 \[3\] but store 'dst' holds 'acc' as float64 \[1\]/,
      );
      for (const [k, t] of Object.entries(await engine.getTensors(dst))) assertSameBits(t, d3[k], `dst ${k} after a rejected update`);
    });
  });
}

// ----------------------------------------------------------------------------------- ResidentTrainState

const N = 5;
const D = 3;

/** A deterministic regression batch for step `i`. */
function batch(i: number): { x: number[]; y: number[] } {
  const rng = new Rng(100 + i);
  return { x: Array.from({ length: N * D }, () => rng.normal()), y: Array.from({ length: N }, () => rng.normal()) };
}

function batchFeeds(i: number): Record<string, TensorData> {
  const b = batch(i);
  return { x: f64([N, D], b.x), y: f64([N], b.y) };
}

interface RegGraph {
  /** Trained params (a subset of w, b, c). */
  train: readonly string[];
  /** Whether the model uses c: pred = x·w + b + 2c. */
  withC?: boolean;
  stepPerParam?: boolean;
  optimizer?: 'adamw' | 'sgd';
}

/** Linear regression in float64, loss = mean((pred − y)²); params w [3], b [1], optional c [1]. */
function regGraph(o: RegGraph): Uint8Array {
  const g = new G.Graph({ name: 'reg' });
  const x = g.input('x', 'float64', ['batch', D]);
  const y = g.input('y', 'float64', ['batch']);
  const ps: Record<string, G.Tensor> = { w: g.input('w', 'float64', [D]), b: g.input('b', 'float64', [1]) };
  let pred = G.add(G.matmul(x, ps.w!), ps.b!);
  if (o.withC) {
    ps.c = g.input('c', 'float64', [1]);
    pred = G.add(pred, G.mul(ps.c, 2));
  }
  const r = G.sub(pred, y);
  G.buildTrainStep(g, {
    loss: G.reduceMean(G.mul(r, r)),
    params: o.train.map((n) => ps[n]!),
    optimizer: o.optimizer === 'sgd' ? { kind: 'sgd', momentum: 0.9, weightDecay: 0.01 } : { kind: 'adamw' },
    stepPerParam: o.stepPerParam === true,
    extraOutputs: { pred },
  });
  return g.toBytes();
}

function regSession(engine: Engine, o: RegGraph) {
  const key = `reg/${o.optimizer ?? 'adamw'}/${o.train.join(',')}/${o.withC ? 'c' : ''}/${o.stepPerParam ? 'per-param' : 'shared'}`;
  return engine.session(key, () => regGraph(o), { optimizationLevel: 'basic' });
}

const W0 = [0.5, -0.25, 1.0];
const B0 = [0.1];
const C0 = [-0.3];

function init(names: readonly string[]): Record<string, TensorData> {
  const all: Record<string, TensorData> = { w: f64([D], W0), b: f64([1], B0), c: f64([1], C0) };
  return Object.fromEntries(names.map((n) => [n, all[n]!]));
}

/** Plain-JS AdamW (PyTorch formula, β 0.9/0.999, ε 1e-8, weight decay 0.01) on the regression without c. */
function jsAdamwSteps(steps: number, lrs: number[]): { w: number[]; b: number[]; loss: number[] } {
  const p = { w: [...W0], b: [...B0] };
  const m = { w: [0, 0, 0], b: [0] };
  const v = { w: [0, 0, 0], b: [0] };
  const losses: number[] = [];
  for (let t = 1; t <= steps; t++) {
    const { x, y } = batch(t - 1);
    const gw = [0, 0, 0];
    let gb = 0;
    let loss = 0;
    for (let i = 0; i < N; i++) {
      let pred = p.b[0]!;
      for (let j = 0; j < D; j++) pred += x[i * D + j]! * p.w[j]!;
      const r = pred - y[i]!;
      loss += (r * r) / N;
      for (let j = 0; j < D; j++) gw[j]! += (2 * r * x[i * D + j]!) / N;
      gb += (2 * r) / N;
    }
    losses.push(loss);
    const lr = lrs[t - 1]!;
    const upd = (ps: number[], ms: number[], vs: number[], gs: number[]): void => {
      for (let k = 0; k < ps.length; k++) {
        ps[k]! -= lr * 0.01 * ps[k]!;
        ms[k] = 0.9 * ms[k]! + 0.1 * gs[k]!;
        vs[k] = 0.999 * vs[k]! + 0.001 * gs[k]! * gs[k]!;
        ps[k]! -= (lr / (1 - 0.9 ** t)) * (ms[k]! / (Math.sqrt(vs[k]!) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
      }
    };
    upd(p.w, m.w, v.w, gw);
    upd(p.b, m.b, v.b, [gb]);
  }
  return { ...p, loss: losses };
}

function assertClose(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

const LRS = [0.05, 0.03, 0.02, 0.01, 0.01];

for (const worker of [true, false]) {
  test(`ResidentTrainState equals TrainState bit for bit over 3 AdamW and SGD steps, shared or per-param step (${worker ? 'worker' : 'in-process'})`, async () => {
    await withEngine(worker, async (engine) => {
      for (const optimizer of ['adamw', 'sgd'] as const) {
        const shared = await regSession(engine, { train: ['w', 'b'], optimizer });
        const perParam = await regSession(engine, { train: ['w', 'b'], optimizer, stepPerParam: true });
        const ref = new TrainState(init(['w', 'b']), { optimizer, momentum: true });
        const viaShared = new ResidentTrainState(engine, { optimizer, momentum: true, name: 'shared' });
        const viaPerParam = new ResidentTrainState(engine, { optimizer, momentum: true, name: 'per-param' });
        await viaShared.add(init(['w', 'b']));
        await viaPerParam.add(init(['w', 'b']));
        const slots = optimizer === 'adamw' ? ['m', 'v'] : ['buf'];
        assert.deepEqual(viaShared.stateNames, ['w', 'b'].flatMap((p) => [p, ...slots.map((x) => `${p}.${x}`), `${p}.t`]));
        const js = jsAdamwSteps(3, LRS);
        for (let t = 0; t < 3; t++) {
          const r = await ref.trainStep(engine, shared, batchFeeds(t), LRS[t]!);
          const a = await viaShared.trainStep(shared, batchFeeds(t), { lr: LRS[t]! });
          const b = await viaPerParam.trainStep(perParam, batchFeeds(t), { lr: LRS[t]! });
          assert.deepEqual(Object.keys(a), ['loss']);
          assertSameBits(a.loss, r.loss, `${optimizer} step ${t + 1} loss (shared)`);
          assertSameBits(b.loss, r.loss, `${optimizer} step ${t + 1} loss (per-param)`);
          if (optimizer === 'adamw') assertClose(a.loss!.data as Float64Array, [js.loss[t]!], 1e-12, `step ${t + 1} loss vs formula`);
        }
        const ga = await viaShared.get(viaShared.stateNames);
        const gb = await viaPerParam.get(viaPerParam.stateNames);
        for (const n of ref.stateNames) {
          assertSameBits(ga[n], ref.get(n), `${optimizer} ${n} (shared)`);
          assertSameBits(gb[n], ref.get(n), `${optimizer} ${n} (per-param)`);
        }
        for (const p of ['w', 'b']) {
          assertSameBits(ga[`${p}.t`], f32([], [3]), `${p}.t (shared step: counted by the state)`);
          assertSameBits(gb[`${p}.t`], f32([], [3]), `${p}.t (per-param: counted by the graph)`);
          assert.equal(viaPerParam.updates(p), 3);
        }
        if (optimizer === 'adamw') {
          assertClose(ga.w!.data as Float64Array, js.w, 1e-12, 'w vs the AdamW formula');
          assertClose(ga.b!.data as Float64Array, js.b, 1e-12, 'b vs the AdamW formula');
        }
        await viaShared.dispose();
        await viaPerParam.dispose();
      }
    });
  });
}

test('add a param after 2 steps: the others continue exactly, the new one starts its bias correction at t = 1', async () => {
  await withEngine(true, async (engine) => {
    const wb = await regSession(engine, { train: ['w', 'b'], stepPerParam: true });
    const wbc = await regSession(engine, { train: ['w', 'b', 'c'], withC: true, stepPerParam: true });
    const grown = new ResidentTrainState(engine, { optimizer: 'adamw', name: 'grown' });
    const plain = new ResidentTrainState(engine, { optimizer: 'adamw', name: 'plain' });
    await grown.add(init(['w', 'b']));
    await plain.add(init(['w', 'b']));
    for (let t = 0; t < 2; t++) {
      await grown.trainStep(wb, batchFeeds(t), { lr: LRS[t]! });
      await plain.trainStep(wb, batchFeeds(t), { lr: LRS[t]! });
    }
    await grown.add(init(['c']));
    assert.deepEqual(grown.names, ['w', 'b', 'c']);
    assert.equal(grown.paramCount, 5);
    assert.equal(grown.updates('c'), 0);
    // step 3 trains w, b only: identical to the state that never had c, and c is untouched
    const l3 = await grown.trainStep(wb, batchFeeds(2), { lr: LRS[2]! });
    const p3 = await plain.trainStep(wb, batchFeeds(2), { lr: LRS[2]! });
    assertSameBits(l3.loss, p3.loss, 'step 3 loss');
    const g3 = await grown.get(grown.stateNames);
    const q3 = await plain.get(plain.stateNames);
    for (const n of plain.stateNames) assertSameBits(g3[n], q3[n], `step 3 ${n}`);
    assertSameBits(g3.c, f64([1], C0), 'c untouched');
    assertSameBits(g3['c.m'], f64([1], [0]), 'c.m untouched');
    assertSameBits(g3['c.t'], f32([], [0]), 'c.t untouched');

    // step 4 trains all three: c's update equals that of a fresh state holding the same values (its t = 0)
    const fresh = new ResidentTrainState(engine, { optimizer: 'adamw', name: 'fresh' });
    await fresh.add({ w: g3.w!, b: g3.b!, c: g3.c! });
    await grown.trainStep(wbc, batchFeeds(3), { lr: LRS[3]! });
    await fresh.trainStep(wbc, batchFeeds(3), { lr: LRS[3]! });
    const g4 = await grown.get(grown.stateNames);
    const f4 = await fresh.get(fresh.stateNames);
    for (const n of ['c', 'c.m', 'c.v', 'c.t']) assertSameBits(g4[n], f4[n], `step 4 ${n}`);
    assertSameBits(g4['w.t'], f32([], [4]), 'w.t continues');
    assertSameBits(g4['c.t'], f32([], [1]), 'c.t starts at 1');
    assert.notDeepEqual([...g4.w!.data], [...f4.w!.data], 'w uses its own moments and t = 4, not a fresh start');

    // a shared-step graph cannot serve params with different counts
    const sharedWbc = await regSession(engine, { train: ['w', 'b', 'c'], withC: true });
    await assert.rejects(
      grown.trainStep(sharedWbc, batchFeeds(4), { lr: 0.01 }),
      /one shared 'step' but its params have made different numbers of updates \(w: 4, b: 4, c: 1\); build it with stepPerParam/,
    );
    // that refusal changed nothing
    for (const [n, t] of Object.entries(await grown.get(grown.stateNames))) assertSameBits(t, g4[n], `after a refused step ${n}`);
  });
});

test('remove a param: the others continue exactly as without removal', async () => {
  await withEngine(false, async (engine) => {
    const wbc = await regSession(engine, { train: ['w', 'b', 'c'], withC: true, stepPerParam: true });
    const wb = await regSession(engine, { train: ['w', 'b'], stepPerParam: true });
    const shrunk = new ResidentTrainState(engine, { optimizer: 'adamw', name: 'shrunk' });
    const kept = new ResidentTrainState(engine, { optimizer: 'adamw', name: 'kept' });
    await shrunk.add(init(['w', 'b', 'c']));
    await kept.add(init(['w', 'b', 'c']));
    for (let t = 0; t < 2; t++) {
      await shrunk.trainStep(wbc, batchFeeds(t), { lr: LRS[t]! });
      await kept.trainStep(wbc, batchFeeds(t), { lr: LRS[t]! });
    }
    await shrunk.remove(['c']);
    assert.deepEqual(shrunk.names, ['w', 'b']);
    assert.deepEqual([...engine.storeInfo(shrunk.store).keys()].sort(), ['b', 'b.m', 'b.t', 'b.v', 'w', 'w.m', 'w.t', 'w.v']);
    await shrunk.trainStep(wb, batchFeeds(2), { lr: LRS[2]! });
    await kept.trainStep(wb, batchFeeds(2), { lr: LRS[2]! });
    const s = await shrunk.get(shrunk.stateNames);
    const k = await kept.get(shrunk.stateNames);
    for (const n of shrunk.stateNames) assertSameBits(s[n], k[n], n);
    await assert.rejects(shrunk.remove(['c', 'zz']), /remove: no trainable tensors 'c', 'zz'/);
    await assert.rejects(shrunk.get(['c']), /get: no state tensors 'c'/);
  });
});

test('a session training a subset leaves the other params, slots and counts bit-identical', async () => {
  await withEngine(true, async (engine) => {
    const all = await regSession(engine, { train: ['w', 'b', 'c'], withC: true, stepPerParam: true });
    const onlyW = await regSession(engine, { train: ['w'], withC: true, stepPerParam: true });
    const state = new ResidentTrainState(engine, { optimizer: 'adamw' });
    await state.add(init(['w', 'b', 'c']));
    await state.trainStep(all, batchFeeds(0), { lr: 0.05 }); // non-zero moments everywhere
    const before = await state.get(state.stateNames);
    const out = await state.trainStep(onlyW, batchFeeds(1), { lr: 0.05, fetch: ['loss', 'pred'] });
    assert.deepEqual(Object.keys(out).sort(), ['loss', 'pred']);
    const after = await state.get(state.stateNames);
    for (const n of ['b', 'b.m', 'b.v', 'b.t', 'c', 'c.m', 'c.v', 'c.t']) assertSameBits(after[n], before[n], `${n} (not trained)`);
    assertSameBits(after['w.t'], f32([], [2]), 'w.t counts the step');
    assert.notDeepEqual([...after.w!.data], [...before.w!.data], 'w moved');
    assert.deepEqual([state.updates('w'), state.updates('b'), state.updates('c')], [2, 1, 1]);
  });
});

test('snapshot/restore round trip continues bit-identically, also into another state with other params', async () => {
  await withEngine(true, async (engine) => {
    const wbc = await regSession(engine, { train: ['w', 'b', 'c'], withC: true, stepPerParam: true });
    const wb = await regSession(engine, { train: ['w', 'b'], stepPerParam: true });
    const state = new ResidentTrainState(engine, { optimizer: 'adamw' });
    await state.add(init(['w', 'b']));
    await state.trainStep(wb, batchFeeds(0), { lr: 0.05 });
    await state.add(init(['c']));
    await state.trainStep(wbc, batchFeeds(1), { lr: 0.05 });
    const snap = await state.snapshot();
    assert.deepEqual(snap.t, { w: 2, b: 2, c: 1 });
    assert.deepEqual(Object.keys(snap.tensors).sort(), ['b', 'b.m', 'b.v', 'c', 'c.m', 'c.v', 'w', 'w.m', 'w.v']);
    const run2 = async (s: ResidentTrainState): Promise<Record<string, TensorData>> => {
      await s.trainStep(wbc, batchFeeds(2), { lr: 0.02 });
      await s.trainStep(wb, batchFeeds(3), { lr: 0.01 });
      return s.get(s.stateNames);
    };
    const first = await run2(state);
    await state.restore(snap);
    assert.deepEqual([state.updates('w'), state.updates('c')], [2, 1]);
    const again = await run2(state);
    for (const n of state.stateNames) assertSameBits(again[n], first[n], `restored ${n}`);

    // a state that holds something else becomes the snapshot
    const other = new ResidentTrainState(engine, { optimizer: 'adamw', name: 'other' });
    await other.add({ z: f64([2], [1, 2]) });
    await other.restore(snap);
    assert.deepEqual(other.names, ['w', 'b', 'c']);
    assert.equal(engine.storeInfo(other.store).has('z'), false);
    const third = await run2(other);
    for (const n of state.stateNames) assertSameBits(third[n], first[n], `restored elsewhere ${n}`);

    // restore checks everything first
    const broken = { ...snap, tensors: { ...snap.tensors } };
    delete broken.tensors['c.v'];
    await assert.rejects(other.restore(broken, 'ckpt'), /ckpt\.tensors: 'c\.v' is missing/);
    await assert.rejects(other.restore({ ...snap, optimizer: 'sgd' }), /optimizer sgd does not match adamw/);
    assert.deepEqual(other.names, ['w', 'b', 'c']);
  });
});

for (const worker of [true, false]) {
  test(`a resident step sends the batch and lr and receives the fetched outputs, nothing else (${worker ? 'worker' : 'in-process'})`, async () => {
    await withEngine(worker, async (engine) => {
      const h = await regSession(engine, { train: ['w', 'b'], stepPerParam: true });
      const state = new ResidentTrainState(engine, { optimizer: 'adamw' });
      await state.add(init(['w', 'b']));
      for (let t = 0; t < 3; t++) {
        const feeds = batchFeeds(t);
        const before = engine.stats();
        const out = await state.trainStep(h, feeds, { lr: 0.01, fetch: t === 2 ? ['loss', 'pred'] : undefined });
        const after = engine.stats();
        const lrBytes = 8; // a float64 scalar
        assert.equal(after.bytesToHost - before.bytesToHost, sumBytes(feeds) + lrBytes, `step ${t + 1} bytes to host`);
        assert.equal(after.bytesFromHost - before.bytesFromHost, sumBytes(out), `step ${t + 1} bytes from host`);
        assert.equal(sumBytes(out), t === 2 ? 8 + N * 8 : 8);
        assert.equal(after.runs - before.runs, 1);
      }
    });
  });
}

test('trainStep and mutations report misuse and leave the state intact', async () => {
  await withEngine(false, async (engine) => {
    const wb = await regSession(engine, { train: ['w', 'b'], stepPerParam: true });
    const state = new ResidentTrainState(engine, { optimizer: 'adamw' });
    await assert.rejects(state.trainStep(wb, batchFeeds(0), { lr: 0.1 }), /trains none of the state's tensors/);
    await state.add(init(['w', 'b']));
    const before = await state.get(state.stateNames);
    await assert.rejects(state.add({ w: f64([3], [0, 0, 0]) }), /'w' is already a trainable tensor/);
    await assert.rejects(state.add({ lr: f64([1], [0]) }), /'lr' is reserved/);
    await assert.rejects(state.add({ i: { dtype: 'int32', dims: [1], data: Int32Array.of(1) } }), /param 'i' must be float32 or float64/);
    await assert.rejects(state.trainStep(wb, { ...batchFeeds(0), 'w.m': f64([3], [0, 0, 0]) }, { lr: 0.1 }), /batch feed 'w\.m' collides with a state tensor/);
    await assert.rejects(state.trainStep(wb, batchFeeds(0), { lr: Number.NaN }), /lr must be a finite number/);
    await assert.rejects(state.trainStep(wb, { x: batchFeeds(0).x! }, { lr: 0.1 }), /missing feeds: y \(not in feeds nor in stores 'train'\)/);
    await assert.rejects(state.set('w', f64([2], [1, 2])), /set\('w'\): expected float64 \[3\], got float64 \[2\]/);
    for (const [n, t] of Object.entries(await state.get(state.stateNames))) assertSameBits(t, before[n], `${n} after refused calls`);

    // one step at a time; mutations wait for it
    const running = state.trainStep(wb, batchFeeds(0), { lr: 0.1 });
    await assert.rejects(state.trainStep(wb, batchFeeds(1), { lr: 0.1 }), /a trainStep is running; await it first/);
    await assert.rejects(state.remove(['b']), /remove: a trainStep is running/);
    const during = await state.get(['w.t']); // waits for the step
    await running;
    assertSameBits(during['w.t'], f32([], [1]), 'get waits for the running step');

    // set keeps the moments and the count
    const m = (await state.get(['w.m']))['w.m']!;
    await state.set('w', f64([3], [1, 2, 3]));
    const now = await state.get(['w', 'w.m', 'w.t']);
    assertSameBits(now.w, f64([3], [1, 2, 3]), 'w set');
    assertSameBits(now['w.m'], m, 'w.m kept');
    assertSameBits(now['w.t'], f32([], [1]), 'w.t kept');

    // an SGD state cannot use an AdamW graph
    const sgd = new ResidentTrainState(engine, { optimizer: 'sgd', momentum: true, name: 'sgd' });
    await sgd.add(init(['w', 'b']));
    await assert.rejects(sgd.trainStep(wb, batchFeeds(0), { lr: 0.1 }), /trains 'w' but has no input 'w\.buf' \(optimizer mismatch\?\)/);

    await state.dispose();
    await state.dispose();
    await assert.rejects(state.get(), /the state was disposed/);
    assert.equal(engine.stats().stores, 1);
  });
});

test('stores shared by sessions: frozen weights in one store feed two graphs, trainable ones in another', async () => {
  await withEngine(true, async (engine) => {
    // the same regression, but w is frozen and read from a backbone store; only b and c train
    const trainBC = await regSession(engine, { train: ['b', 'c'], withC: true, stepPerParam: true });
    const trainB = await regSession(engine, { train: ['b'], withC: true, stepPerParam: true });
    const backbone: StoreHandle = engine.createStore('backbone');
    await engine.putTensors(backbone, init(['w']));
    const state = new ResidentTrainState(engine, { optimizer: 'adamw' });
    await state.add(init(['b', 'c']));
    await state.trainStep(trainBC, batchFeeds(0), { lr: 0.05, stores: [backbone] });
    await state.trainStep(trainB, batchFeeds(1), { lr: 0.05, stores: [backbone] });
    assert.deepEqual([state.updates('b'), state.updates('c')], [2, 1]);
    assertSameBits((await engine.getTensors(backbone)).w, f64([D], W0), 'the backbone store is never updated');
    // the same two steps with w as a state param that the graphs do not train give the same b and c
    const ref = new ResidentTrainState(engine, { optimizer: 'adamw', name: 'ref' });
    await ref.add(init(['w', 'b', 'c']));
    await ref.trainStep(trainBC, batchFeeds(0), { lr: 0.05 });
    await ref.trainStep(trainB, batchFeeds(1), { lr: 0.05 });
    const a = await state.get(state.stateNames);
    const r = await ref.get(state.stateNames);
    for (const n of state.stateNames) assertSameBits(a[n], r[n], n);
  });
});
