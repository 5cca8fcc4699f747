import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, EngineError, type SessionHandle, type TensorData } from '../../src/runtime/index.ts';
import { Rng } from '../../src/util/rng.ts';
import { addModel, badOpModel, identityModel, matmulAddModel } from './onnx-fixtures.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function randn(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.normal());
}

function f32(dims: number[], values: number[]): TensorData {
  return { dtype: 'float32', dims, data: Float32Array.from(values) };
}

/** Reference y = x·W + b in float64. */
function refMatmulAdd(x: number[], W: number[], b: number[], N: number, K: number, M: number): number[] {
  const y: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      let acc = b[m]!;
      for (let k = 0; k < K; k++) acc += x[n * K + k]! * W[k * M + m]!;
      y.push(acc);
    }
  }
  return y;
}

async function withEngine<T>(worker: boolean, fn: (e: Engine) => Promise<T>): Promise<T> {
  const engine = await Engine.create({ worker, threads: 1 });
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

test('worker-backed and in-process engines give identical MatMul+Add outputs, matching a JS reference', async () => {
  const K = 7;
  const M = 3;
  const rng = new Rng(11);
  const W = randn(rng, K * M);
  const b = randn(rng, M);
  const results: Record<string, Float32Array[]> = {};
  for (const worker of [true, false]) {
    await withEngine(worker, async (engine) => {
      assert.equal(engine.inWorker, worker);
      const h = await engine.session('matmul-add/f32', () => matmulAddModel(K, M));
      assert.deepEqual(h.inputNames, ['x', 'W', 'b']);
      assert.deepEqual(h.outputNames, ['y']);
      assert.deepEqual(h.inputMetadata[0], { name: 'x', isTensor: true, type: 'float32', shape: ['N', K] });
      const outs: Float32Array[] = [];
      // the batch dim is symbolic: one session serves N = 5 and N = 1
      for (const N of [5, 1]) {
        const x = randn(new Rng(100 + N), N * K);
        const out = await engine.run(h, { x: f32([N, K], x), W: f32([K, M], W), b: f32([M], b) });
        const y = out.y!;
        assert.equal(y.dtype, 'float32');
        assert.deepEqual(y.dims, [N, M]);
        const ref = refMatmulAdd(x.map(Math.fround), W.map(Math.fround), b.map(Math.fround), N, K, M);
        ref.forEach((v, i) => assert.ok(Math.abs(y.data[i] as number - v) < 1e-5, `y[${i}] ${y.data[i]} vs ${v}`));
        outs.push(y.data as Float32Array);
      }
      results[String(worker)] = outs;
    });
  }
  const [wk, local] = [results.true!, results.false!];
  for (let i = 0; i < wk.length; i++) assert.deepEqual(wk[i], local[i], 'bit-identical between worker and in-process');
});

test('float64 graph: results match the float64 reference to rounding', async () => {
  const [N, K, M] = [4, 5, 2];
  const rng = new Rng(3);
  const [x, W, b] = [randn(rng, N * K), randn(rng, K * M), randn(rng, M)];
  await withEngine(true, async (engine) => {
    const h = await engine.session('matmul-add/f64', () => matmulAddModel(K, M, 'float64'), { optimizationLevel: 'basic' });
    const f64 = (dims: number[], v: number[]): TensorData => ({ dtype: 'float64', dims, data: Float64Array.from(v) });
    const y = (await engine.run(h, { x: f64([N, K], x), W: f64([K, M], W), b: f64([M], b) })).y!;
    const ref = refMatmulAdd(x, W, b, N, K, M);
    ref.forEach((v, i) => assert.ok(Math.abs((y.data[i] as number) - v) < 1e-13, `${y.data[i]} vs ${v}`));
  });
});

test('the session cache builds once per key; release forgets; failed builds are not cached', async () => {
  await withEngine(true, async (engine) => {
    let builds = 0;
    const build = (): Uint8Array => {
      builds++;
      return matmulAddModel(2, 2);
    };
    const [h1, h2] = await Promise.all([engine.session('k1', build), engine.session('k1', build)]);
    const h3 = await engine.session('k1', build);
    assert.equal(builds, 1);
    assert.equal(h1, h2);
    assert.equal(h1, h3);
    assert.equal(engine.has('k1'), true);
    assert.equal(engine.has('k2'), false);
    const h4 = await engine.session('k2', build);
    assert.equal(builds, 2);
    assert.notEqual(h4.id, h1.id);
    assert.deepEqual(engine.keys.sort(), ['k1', 'k2']);
    // the two model uploads are the only traffic so far
    const modelBytes = matmulAddModel(2, 2).byteLength;
    assert.deepEqual(engine.stats(), { sessions: 2, built: 2, runs: 0, evicted: 0, stores: 0, bytesToHost: 2 * modelBytes, bytesFromHost: 0 });

    await assert.rejects(engine.session('k1', build, { optimizationLevel: 'basic' }), /'k1' is cached with options/);

    await engine.release('k1');
    assert.equal(engine.has('k1'), false);
    await engine.release('never-created'); // no-op
    const feeds = { x: f32([1, 2], [1, 2]), W: f32([2, 2], [1, 0, 0, 1]), b: f32([2], [0, 0]) };
    await assert.rejects(engine.run(h1, feeds), (e: unknown) => e instanceof EngineError && /session 'k1'.*released/.test(e.message));
    const h5 = await engine.session('k1', build);
    assert.equal(builds, 3);
    assert.deepEqual([...(await engine.run(h5, feeds)).y!.data], [1, 2]);
    assert.equal(engine.stats().runs, 1);

    // a build that throws is reported with the key and not cached
    await assert.rejects(
      engine.session('k3', () => {
        throw new Error('shape mismatch in block 3');
      }),
      (e: unknown) => e instanceof EngineError && e.phase === 'build' && e.message === "session 'k3': build failed: shape mismatch in block 3",
    );
    assert.equal(engine.has('k3'), false);
    await engine.session('k3', build);
    assert.equal(engine.has('k3'), true);
  });
});

test('ORT errors at create and run come back naming the key, for both engine kinds', async () => {
  for (const worker of [true, false]) {
    await withEngine(worker, async (engine) => {
      await assert.rejects(engine.session('garbage/v1', () => new Uint8Array([8, 1, 2, 3, 4])), (e: unknown) => {
        assert.ok(e instanceof EngineError);
        assert.equal(e.key, 'garbage/v1');
        assert.equal(e.phase, 'create');
        assert.match(e.message, /^session 'garbage\/v1': create failed: .*protobuf parsing failed/);
        return true;
      });
      await assert.rejects(engine.session('badop/v1', badOpModel), /session 'badop\/v1': create failed: .*NoSuchOperator/);
      assert.equal(engine.has('badop/v1'), false);

      const h = await engine.session('add/v1', addModel);
      await assert.rejects(engine.run(h, { a: f32([3], [1, 2, 3]), b: f32([2], [1, 2]) }), (e: unknown) => {
        assert.ok(e instanceof EngineError);
        assert.equal(e.phase, 'run');
        assert.match(e.message, /^session 'add\/v1': run failed: .*Add.*broadcast/s);
        return true;
      });
      // the engine stays usable after errors
      const ok = await engine.run(h, { a: f32([2], [1, 2]), b: f32([2], [10, 20]) });
      assert.deepEqual([...ok.c!.data], [11, 22]);
    });
  }
});

test('feeds and fetches are checked against the graph before ORT sees them', async () => {
  await withEngine(false, async (engine) => {
    const h = await engine.session('mm', () => matmulAddModel(2, 3));
    const good = { x: f32([1, 2], [1, 1]), W: f32([2, 3], [1, 2, 3, 4, 5, 6]), b: f32([3], [0, 0, 0]) };
    await assert.rejects(engine.run(h, { x: good.x, W: good.W }), /session 'mm': run failed: missing feeds: b/);
    await assert.rejects(engine.run(h, { ...good, z: good.b }), /'z' is not an input of the graph \(inputs: x, W, b\)/);
    await assert.rejects(
      engine.run(h, { ...good, b: { dtype: 'float64', dims: [3], data: new Float64Array(3) } }),
      /feed 'b' is float64 but the graph expects float32/,
    );
    await assert.rejects(engine.run(h, { ...good, W: f32([3, 2], [1, 2, 3, 4, 5, 6]) }), /feed 'W' has dims \[3, 2\] but the graph expects \[2, 3\]/);
    await assert.rejects(engine.run(h, { ...good, x: f32([1, 2], [1]) }), /feed 'x': dims \[1, 2\] hold 2 elements but data has 1/);
    await assert.rejects(engine.run(h, good, ['nope']), /unknown outputs to fetch: nope/);
    const out = await engine.run(h, good, ['y']);
    assert.deepEqual(Object.keys(out), ['y']);
    assert.deepEqual([...out.y!.data], [5, 7, 9]);
    // session options reach ORT (a model given as a view at an offset inside a larger buffer, pitfall 9)
    const bytes = matmulAddModel(2, 3);
    const padded = new Uint8Array(bytes.byteLength + 10);
    padded.set(bytes, 7);
    const h2 = await engine.session('mm/noprepack', () => padded.subarray(7, 7 + bytes.byteLength), {
      optimizationLevel: 'disabled',
      disablePrepacking: true,
    });
    assert.deepEqual(h2.options, { optimizationLevel: 'disabled', disablePrepacking: true });
    assert.deepEqual(h.options, { optimizationLevel: 'all', disablePrepacking: false });
    assert.deepEqual([...(await engine.run(h2, good)).y!.data], [5, 7, 9]);
    await assert.rejects(engine.session('mm/x', () => bytes, { optimizationLevel: 'max' as never }), /optimizationLevel must be one of/);
  });
});

test('worker transfers: views into larger buffers are sliced, callers keep their arrays unless they transfer', async () => {
  await withEngine(true, async (engine) => {
    const h = await engine.session('mm', () => matmulAddModel(2, 2));
    // x is a view in the middle of a larger array; W lives in Node's shared Buffer pool
    const backing = Float32Array.from([99, 99, 1, 2, 3, 4, 99]);
    const x: TensorData = { dtype: 'float32', dims: [2, 2], data: backing.subarray(2, 6) };
    const pooled = Buffer.from(new Uint8Array(Float32Array.from([1, 10, 100, 1000]).buffer));
    assert.ok(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.byteLength, 'Buffer.from uses the pool');
    const W: TensorData = { dtype: 'float32', dims: [2, 2], data: new Float32Array(pooled.buffer, pooled.byteOffset, 4) };
    const b = f32([2], [0.5, 0.25]);
    const expected = [1 + 2 * 100 + 0.5, 10 + 2 * 1000 + 0.25, 3 + 4 * 100 + 0.5, 30 + 4 * 1000 + 0.25];
    // the model itself arrives as a view inside a larger buffer
    const bytes = matmulAddModel(2, 2);
    const padded = new Uint8Array(bytes.byteLength + 9);
    padded.set(bytes, 5);
    const hv = await engine.session('mm/view', () => padded.subarray(5, 5 + bytes.byteLength));
    assert.deepEqual([...(await engine.run(hv, { x, W, b })).y!.data], [1 + 2 * 100 + 0.5, 10 + 2 * 1000 + 0.25, 3 + 4 * 100 + 0.5, 30 + 4 * 1000 + 0.25]);
    assert.equal(padded.length, bytes.byteLength + 9, 'the caller keeps its model bytes');
    const y1 = (await engine.run(h, { x, W, b })).y!;
    assert.deepEqual([...y1.data], expected);
    assert.equal(backing.length, 7);
    assert.equal(b.data.length, 2, 'not transferred by default');
    // with transfer: arrays that own their buffer are handed over (detached here), views are copied
    const y2 = (await engine.run(h, { x, W, b }, undefined, { transfer: true })).y!;
    assert.deepEqual([...y2.data], expected);
    assert.equal(b.data.length, 0, 'b was transferred');
    assert.deepEqual([...x.data], [1, 2, 3, 4], 'the view was copied, not detached');
    assert.equal(pooled.length, 16);
  });
});

test('every dtype passes through a worker unchanged', async () => {
  const feeds: Record<string, TensorData> = {
    float32: { dtype: 'float32', dims: [2], data: Float32Array.from([0.1, -2]) },
    float64: { dtype: 'float64', dims: [2], data: Float64Array.from([Math.PI, -1e-300]) },
    int64: { dtype: 'int64', dims: [2], data: BigInt64Array.from([2n ** 60n, -5n]) },
    int32: { dtype: 'int32', dims: [2], data: Int32Array.from([-(2 ** 31), 7]) },
    bool: { dtype: 'bool', dims: [2], data: Uint8Array.from([1, 0]) },
    uint8: { dtype: 'uint8', dims: [2], data: Uint8Array.from([255, 3]) },
  };
  for (const worker of [true, false]) {
    await withEngine(worker, async (engine) => {
      const h = await engine.session('id', () => identityModel(['float32', 'float64', 'int64', 'int32', 'bool', 'uint8']));
      const out = await engine.run(h, feeds);
      for (const [name, t] of Object.entries(feeds)) {
        const o = out[`${name}.out`]!;
        assert.equal(o.dtype, t.dtype);
        assert.deepEqual(o.dims, [2]);
        assert.deepEqual([...o.data], [...t.data]);
      }
    });
  }
});

test('many runs in flight are paired with their own results; release waits for queued runs', async () => {
  await withEngine(true, async (engine) => {
    const h: SessionHandle = await engine.session('add', addModel);
    const runs = Array.from({ length: 20 }, (_, i) => engine.run(h, { a: f32([3], [i, i, i]), b: f32([3], [0, 1, 2]) }));
    const outs = await Promise.all(runs);
    outs.forEach((o, i) => assert.deepEqual([...o.c!.data], [i, i + 1, i + 2]));
    const pending = engine.run(h, { a: f32([1], [1]), b: f32([1], [2]) });
    await engine.release('add');
    assert.deepEqual([...(await pending).c!.data], [3]);
  });
});

test('a closed engine refuses work; close is idempotent', async () => {
  for (const worker of [true, false]) {
    const engine = await Engine.create({ worker, threads: 1 });
    const h = await engine.session('add', addModel);
    await engine.close();
    await engine.close();
    assert.equal(engine.closed, true);
    await assert.rejects(engine.run(h, { a: f32([1], [1]), b: f32([1], [1]) }), /Engine is closed/);
    await assert.rejects(engine.session('add2', addModel), /Engine is closed/);
  }
});

test('processes using a worker engine exit on their own, with or without close (tsx via --import and via register())', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-engine-'));
  try {
    const runtimeUrl = new URL('../../src/runtime/index.ts', import.meta.url).href;
    const fixturesUrl = new URL('./onnx-fixtures.ts', import.meta.url).href;
    const body = (close: boolean): string => `
      const { Engine } = await import(${JSON.stringify(runtimeUrl)});
      const { addModel } = await import(${JSON.stringify(fixturesUrl)});
      const engine = await Engine.create({ threads: 1 });
      const h = await engine.session('add', addModel);
      const out = await engine.run(h, {
        a: { dtype: 'float32', dims: [2], data: Float32Array.of(1, 2) },
        b: { dtype: 'float32', dims: [2], data: Float32Array.of(3, 4) },
      });
      ${close ? 'await engine.close();' : ''}
      console.log('result', Array.from(out.c.data).join(','));
    `;
    const scripts = {
      // started like `node --import tsx`
      withClose: { file: 'with-close.mts', code: body(true), args: ['--import', 'tsx'] },
      noClose: { file: 'no-close.mts', code: body(false), args: ['--import', 'tsx'] },
      // started like bin/moeclip.js: tsx registered programmatically in the main thread only
      register: {
        file: 'register.mjs',
        code: `const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}); register();\n${body(true)}`,
        args: [],
      },
    };
    for (const [name, s] of Object.entries(scripts)) {
      const file = join(dir, s.file);
      writeFileSync(file, s.code);
      const r = spawnSync(process.execPath, [...s.args, file], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.signal, null, `${name}: killed after the timeout (hanging worker?) stderr: ${r.stderr}`);
      assert.equal(r.status, 0, `${name}: exit status ${r.status}, stderr: ${r.stderr}`);
      assert.match(r.stdout, /result 4,6/, name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('session() leaves Node Buffer model bytes intact (Buffer.slice is a view)', async () => {
  const engine = await Engine.create({ threads: 1, worker: true });
  try {
    const bytes = Buffer.from(matmulAddModel(3, 2));
    const before = bytes.byteLength;
    await engine.session('buffer-bytes', () => bytes);
    assert.equal(bytes.byteLength, before);
  } finally {
    await engine.close();
  }
});
