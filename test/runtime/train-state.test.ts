import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, TrainState, warmupCosineLr, type TensorData } from '../../src/runtime/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { linregTrainModel, oddScalarsModel, refState, refStep } from './onnx-fixtures.ts';

const N = 6;
const D = 3;

/** A deterministic regression batch for step `i`. */
function batch(i: number): { x: number[]; y: number[] } {
  const rng = new Rng(1000 + i);
  const x = Array.from({ length: N * D }, () => rng.normal());
  const y = Array.from({ length: N }, () => rng.normal());
  return { x, y };
}

function feedsOf(b: { x: number[]; y: number[] }, dtype: 'float32' | 'float64'): Record<string, TensorData> {
  const A = dtype === 'float32' ? Float32Array : Float64Array;
  return {
    x: { dtype, dims: [N, D], data: A.from(b.x) },
    y: { dtype, dims: [N], data: A.from(b.y) },
  };
}

const W0 = [0.5, -0.25, 1.0];
const B0 = [0.1];

function initParams(dtype: 'float32' | 'float64'): Record<string, TensorData> {
  const A = dtype === 'float32' ? Float32Array : Float64Array;
  return { w: { dtype, dims: [D], data: A.from(W0) }, b: { dtype, dims: [1], data: A.from(B0) } };
}

function assertClose(actual: ArrayLike<number | bigint>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: ${a} vs ${e}`);
  }
}

const CASES = [
  { optimizer: 'adamw', momentum: false, slots: ['m', 'v'] },
  { optimizer: 'sgd', momentum: true, slots: ['buf'] },
  { optimizer: 'sgd', momentum: false, slots: [] },
] as const;

for (const { optimizer, momentum, slots } of CASES) {
  for (const dtype of ['float64', 'float32'] as const) {
    const label = `${optimizer}${momentum ? '+momentum' : ''} ${dtype}`;
    test(`TrainState over 3 steps of the hand-written graph matches the JS reference (${label})`, async () => {
      const engine = await Engine.create({ worker: false, threads: 1 });
      try {
        // float64 at level `basic` (engine-notes pitfall 5); float32 at the default
        const h = await engine.session(`linreg/${label}`, () => linregTrainModel(N, D, dtype, optimizer, momentum), {
          optimizationLevel: dtype === 'float64' ? 'basic' : 'all',
        });
        const state = new TrainState(initParams(dtype), { optimizer, momentum });
        assert.deepEqual(state.names, ['w', 'b']);
        assert.deepEqual(state.stateNames, ['w', ...slots.map((s) => `w.${s}`), 'b', ...slots.map((s) => `b.${s}`)]);
        const ref = refState(W0, B0, optimizer, momentum);
        const schedule = warmupCosineLr({ lr: 0.05, warmupSteps: 2, totalSteps: 4 });
        const tol = dtype === 'float64' ? 1e-12 : 2e-5;
        for (let t = 0; t < 3; t++) {
          const lr = schedule(t);
          const b = batch(t);
          const out = await state.trainStep(engine, h, feedsOf(b, dtype), lr);
          // the float32 reference sees the same rounded inputs and lr
          const round = dtype === 'float32' ? Math.fround : (v: number): number => v;
          const r = refStep(ref, b.x.map(round), b.y.map(round), round(lr), optimizer, momentum);
          assert.deepEqual(Object.keys(out).sort(), ['loss', 'pred'], 'only non-state outputs are returned');
          assertClose(out.loss!.data, [r.loss], tol, `step ${t + 1} loss`);
          assertClose(out.pred!.data, r.pred, tol, `step ${t + 1} pred`);
          assert.equal(state.step, t + 1);
          assertClose(state.get('w').data, ref.w, tol, `step ${t + 1} w`);
          assertClose(state.get('b').data, ref.b, tol, `step ${t + 1} b`);
          for (const [name, v] of Object.entries(ref.slots)) assertClose(state.get(name).data, v, tol, `step ${t + 1} ${name}`);
          assert.equal(state.get('w').dtype, dtype);
        }
      } finally {
        await engine.close();
      }
    });
  }
}

test('feeds: state tensors, lr and a 1-based step in the params float type', () => {
  const state = new TrainState(initParams('float32'), { optimizer: 'adamw' });
  const f = state.feeds(0.125);
  assert.deepEqual(Object.keys(f), ['w', 'w.m', 'w.v', 'b', 'b.m', 'b.v', 'lr', 'step']);
  assert.deepEqual(f.lr, { dtype: 'float32', dims: [], data: Float32Array.of(0.125) });
  assert.deepEqual(f.step, { dtype: 'float32', dims: [], data: Float32Array.of(1) });
  assert.deepEqual([...f['w.m']!.data], [0, 0, 0]);
  assert.throws(() => state.feeds(NaN), /lr must be a finite number/);
  // update swaps in .next tensors and counts the step
  const next: Record<string, TensorData> = {};
  for (const n of state.stateNames) next[`${n}.next`] = { ...state.get(n), data: Float32Array.from(state.get(n).data as Float32Array, (v) => v + 1) };
  state.update(next);
  assert.equal(state.step, 1);
  assert.deepEqual([...state.get('w.v').data], [1, 1, 1]);
  assert.deepEqual(state.feeds(0.1).step!.data, Float32Array.of(2));
});

test('update is all-or-nothing and checks dtypes and dims', () => {
  const state = new TrainState(initParams('float64'), { optimizer: 'sgd', momentum: true });
  const before = state.snapshot();
  const outputs: Record<string, TensorData> = {
    'w.next': { dtype: 'float64', dims: [D], data: new Float64Array(D) },
    'w.buf.next': { dtype: 'float64', dims: [D], data: new Float64Array(D) },
    'b.next': { dtype: 'float64', dims: [1], data: new Float64Array(1) },
  };
  assert.throws(() => state.update(outputs), /output 'b.buf.next' is missing/);
  assert.deepEqual(state.snapshot(), before, 'nothing changed');
  assert.throws(
    () => state.update({ ...outputs, 'b.buf.next': { dtype: 'float32', dims: [1], data: new Float32Array(1) } }),
    /'b.buf.next' is float32 \[1\], expected float64 \[1\]/,
  );
  assert.equal(state.step, 0);
});

test('set/get validate shapes; set copies', () => {
  const state = new TrainState(initParams('float64'), { optimizer: 'adamw' });
  const w = Float64Array.from([1, 2, 3]);
  state.set('w', { dtype: 'float64', dims: [D], data: w });
  w[0] = 100;
  assert.deepEqual([...state.get('w').data], [1, 2, 3]);
  assert.throws(() => state.set('w', { dtype: 'float64', dims: [1, D], data: new Float64Array(D) }), /expected float64 \[3\], got float64 \[1, 3\]/);
  assert.throws(() => state.get('u'), /no tensor 'u' \(have: w, w.m, w.v, b, b.m, b.v\)/);
  assert.deepEqual(state.slotNames('b'), ['b.m', 'b.v']);
  assert.equal(state.size, D + 1);
});

test('constructor rejects mixed or integer dtypes and reserved or clashing names; copies params', () => {
  const p = initParams('float32');
  const state = new TrainState(p, { optimizer: 'sgd' });
  (p.w!.data as Float32Array)[0] = 42;
  assert.equal(state.get('w').data[0], 0.5);
  assert.throws(
    () => new TrainState({ w: p.w!, b: { dtype: 'float64', dims: [1], data: new Float64Array(1) } }, { optimizer: 'adamw' }),
    /param 'b': is float64 but other params are float32/,
  );
  assert.throws(() => new TrainState({ k: { dtype: 'int32', dims: [1], data: new Int32Array(1) } }, { optimizer: 'sgd' }), /must be float32 or float64/);
  assert.throws(() => new TrainState({ lr: p.w! }, { optimizer: 'sgd' }), /'lr' is reserved/);
  assert.throws(() => new TrainState({ w: p.w!, 'w.m': p.w! }, { optimizer: 'adamw' }), /'w.m' is both a parameter and an optimizer slot/);
  assert.throws(() => new TrainState({}, { optimizer: 'sgd' }), /no trainable tensors/);
  assert.throws(() => new TrainState(p, { optimizer: 'adam' as never }), /optimizer must be 'adamw' or 'sgd'/);
});

test('snapshot/restore and JSON round trips continue training bit-identically (worker engine)', async () => {
  const engine = await Engine.create({ threads: 1 });
  try {
    const h = await engine.session('linreg/adamw/f32', () => linregTrainModel(N, D, 'float32', 'adamw'));
    const state = new TrainState(initParams('float32'), { optimizer: 'adamw' });
    await state.trainStep(engine, h, feedsOf(batch(0), 'float32'), 0.01);
    await state.trainStep(engine, h, feedsOf(batch(1), 'float32'), 0.02);
    const snap = state.snapshot();
    const json = JSON.parse(JSON.stringify(state));
    assert.equal(json.format, 'moeclip.train-state');
    assert.equal(json.step, 2);

    const out3 = await state.trainStep(engine, h, feedsOf(batch(2), 'float32'), 0.03);
    const after3 = state.snapshot();
    assert.equal(after3.step, 3);
    assert.notDeepEqual(after3.tensors.w, snap.tensors.w);

    // restore in place and redo step 3
    state.restore(snap);
    assert.equal(state.step, 2);
    const again = await state.trainStep(engine, h, feedsOf(batch(2), 'float32'), 0.03);
    assert.deepEqual(state.snapshot(), after3);
    assert.deepEqual(again.loss, out3.loss);

    // a fresh state from JSON (as a checkpoint would be loaded) redoes step 3 identically
    const loaded = TrainState.fromJSON(json, 'ckpt/state.json');
    assert.equal(loaded.step, 2);
    assert.deepEqual(loaded.names, ['w', 'b']);
    await loaded.trainStep(engine, h, feedsOf(batch(2), 'float32'), 0.03);
    assert.deepEqual(loaded.snapshot(), after3);

    // the snapshot is a deep copy: training did not touch it
    assert.deepEqual([...TrainState.fromSnapshot(snap).get('w').data], [...snap.tensors.w!.data]);

    // clear errors for damaged checkpoints
    assert.throws(() => TrainState.fromJSON({ ...json, format: 'x' }, 'ckpt/state.json'), /ckpt\/state.json.format: expected 'moeclip.train-state'/);
    const badTensors = { ...json.tensors, 'w.v': { ...json.tensors['w.v'], dims: [2] } };
    assert.throws(() => TrainState.fromJSON({ ...json, tensors: badTensors }, 'ckpt/state.json'), /ckpt\/state.json.tensors\['w.v'\]/);
    const noSlot = { ...json.tensors };
    delete noSlot['b.m'];
    assert.throws(() => TrainState.fromJSON({ ...json, tensors: noSlot }, 'ckpt/state.json'), /ckpt\/state.json.tensors: 'b.m' is missing/);
    assert.throws(() => state.restore({ ...snap, optimizer: 'sgd' }), /optimizer sgd does not match adamw/);
  } finally {
    await engine.close();
  }
});

test('trainStep: a mismatched trainable set or a feed collision is reported and the state survives', async () => {
  const engine = await Engine.create({ worker: false, threads: 1 });
  try {
    const h = await engine.session('linreg/sgd', () => linregTrainModel(N, D, 'float64', 'sgd'));
    assert.ok(!h.inputNames.includes('step'), 'plain SGD graph takes no step');
    // a state with an extra trainable tensor the graph does not know
    const extra = new TrainState({ ...initParams('float64'), u: { dtype: 'float64', dims: [1], data: new Float64Array(1) } }, { optimizer: 'sgd' });
    await assert.rejects(extra.trainStep(engine, h, feedsOf(batch(0), 'float64'), 0.1), /session 'linreg\/sgd' has no input 'u'/);
    // a state without `b`: the graph's input 'b' is missing
    const partial = new TrainState({ w: initParams('float64').w! }, { optimizer: 'sgd' });
    await assert.rejects(partial.trainStep(engine, h, feedsOf(batch(0), 'float64'), 0.1), /session 'linreg\/sgd': run failed: missing feeds: b/);
    assert.equal(partial.step, 0);
    const state = new TrainState(initParams('float64'), { optimizer: 'sgd' });
    await assert.rejects(
      state.trainStep(engine, h, { ...feedsOf(batch(0), 'float64'), w: initParams('float64').w! }, 0.1),
      /batch feed 'w' collides with a state input/,
    );
    await state.trainStep(engine, h, feedsOf(batch(0), 'float64'), 0.1);
    assert.equal(state.step, 1);
  } finally {
    await engine.close();
  }
});

test('trainStep fits lr/step to the shapes and types the graph declares ([1] float32 lr, int64 step)', async () => {
  const engine = await Engine.create({ worker: false, threads: 1 });
  try {
    const h = await engine.session('odd-scalars', oddScalarsModel);
    const state = new TrainState({ w: { dtype: 'float32', dims: [2], data: Float32Array.of(10, 20) } }, { optimizer: 'sgd' });
    const losses: number[] = [];
    for (let t = 0; t < 3; t++) losses.push(Number((await state.trainStep(engine, h, {}, 0.5)).loss!.data[0]));
    // w.next = w - lr * step with step = 1, 2, 3: w falls by 0.5 + 1 + 1.5 = 3
    assert.deepEqual([...state.get('w').data], [7, 17]);
    assert.deepEqual(losses, [30, 29, 27]);
  } finally {
    await engine.close();
  }
});
