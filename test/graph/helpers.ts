/**
 * Test helpers for the graph engine: run graphs in onnxruntime-node, random data, and a central finite-difference
 * gradient checker.
 */
import * as ort from 'onnxruntime-node';
import {
  type DType,
  type Dim,
  type Tensor,
  Graph,
  grad,
  mul,
  reduceSum,
} from '../../src/graph/index.ts';
import { Rng } from '../../src/util/rng.ts';

export type Feed = { dtype: DType; data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array; shape: number[] };

/** Creates a session at optimisation level 'basic' (exact float64, see engine notes pitfall 5). */
export async function session(g: Graph): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(g.toBytes(), { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
}

function toOrt(f: Feed): ort.Tensor {
  const type = f.dtype === 'float64' ? 'float64' : f.dtype;
  return new ort.Tensor(type as 'float32', f.data as Float32Array, f.shape);
}

/** Runs `s` on `feeds`, returning outputs as plain number arrays with dims. */
export async function run(
  s: ort.InferenceSession,
  feeds: Record<string, Feed>,
  fetch?: string[],
): Promise<Record<string, { data: number[]; dims: number[] }>> {
  const input: Record<string, ort.Tensor> = {};
  for (const [k, f] of Object.entries(feeds)) input[k] = toOrt(f);
  const out = fetch ? await s.run(input, fetch) : await s.run(input);
  const res: Record<string, { data: number[]; dims: number[] }> = {};
  for (const [k, t] of Object.entries(out)) {
    res[k] = { data: Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)), dims: [...t.dims] };
  }
  return res;
}

/** Builds, runs once and returns named outputs. */
export async function evalGraph(g: Graph, feeds: Record<string, Feed> = {}): Promise<Record<string, { data: number[]; dims: number[] }>> {
  return run(await session(g), feeds);
}

export type Gen = 'normal' | 'positive' | 'away' | 'distinct' | ((rng: Rng, i: number) => number);

/** n random values: normal; positive in [0.5, 2); `away` from zero (|x| in [0.3, 1.5)); `distinct` (gaps ≥ 0.1). */
export function randValues(rng: Rng, n: number, gen: Gen = 'normal'): number[] {
  if (typeof gen === 'function') return Array.from({ length: n }, (_, i) => gen(rng, i));
  switch (gen) {
    case 'normal':
      return Array.from({ length: n }, () => rng.normal());
    case 'positive':
      return Array.from({ length: n }, () => rng.uniform(0.5, 2));
    case 'away':
      return Array.from({ length: n }, () => (rng.float() < 0.5 ? -1 : 1) * rng.uniform(0.3, 1.5));
    case 'distinct': {
      const p = rng.permutation(n);
      return p.map((k) => (k - n / 2) * 0.25 + rng.uniform(-0.05, 0.05));
    }
  }
}

export function typed(dtype: DType, values: readonly number[]): Feed['data'] {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(v)));
    case 'int32':
      return Int32Array.from(values);
    default:
      return Uint8Array.from(values);
  }
}

/** Evaluates a declared shape under concrete values of its symbolic dims (products allowed). */
export function resolveShape(shape: readonly Dim[], dims: Record<string, number>): number[] {
  return shape.map((d) => {
    if (typeof d === 'number') return d;
    return d.split('*').reduce((acc, f) => {
      const v = /^\d+$/.test(f) ? Number(f) : dims[f];
      if (v === undefined) throw new Error(`resolveShape: unknown symbol '${f}' in ${d}`);
      return acc * v;
    }, 1);
  });
}

/** One input of a gradient-check case. */
export interface CaseInput {
  name: string;
  /** Concrete shape fed at run time. */
  shape: number[];
  /** Declared shape (symbolic dims allowed); defaults to `shape`. */
  decl?: Dim[];
  dtype?: DType;
  gen?: Gen;
  /** Fixed values (for indices, conditions). */
  values?: number[];
  /** Constant initializer instead of a graph input (for indices/conditions/frozen weights). */
  constant?: boolean;
  /** Differentiate with respect to it (default: float inputs that are not constant). */
  diff?: boolean;
}

/** A gradient-check case: `build` returns the output whose VJP is checked via loss = Σ out ⊙ R. */
export interface GradCase {
  /** Op type(s) whose VJP rule the case exercises. */
  ops: string[];
  name: string;
  inputs: CaseInput[];
  /** Concrete values of symbolic dims. */
  dims?: Record<string, number>;
  build: (xs: Tensor[], g: Graph) => Tensor;
  /** Concrete output shape, needed when the output has fresh (unnamed) symbolic dims. */
  outShape?: number[];
  /** Override the default tolerance (1e-6 relative). */
  tol?: number;
  opset?: number;
}

export interface GradCheckResult {
  /** Worst relative error per differentiated input: max|analytic − fd| / max|fd|. */
  relErr: Record<string, number>;
  nodes: string[];
}

/**
 * float64 central finite-difference check: loss = Σ out ⊙ R (R fixed random), analytic gradient from `grad`
 * run in ORT, numeric gradient (L(x+ε) − L(x−ε))/2ε with ε = 1e-6 per element.
 */
export async function gradCheck(c: GradCase, seed = 7): Promise<GradCheckResult> {
  const rng = new Rng(seed);
  const g = new Graph({ name: c.name, opset: c.opset });
  const feeds: Record<string, Feed> = {};
  const xs: Tensor[] = [];
  const diffIdx: number[] = [];
  c.inputs.forEach((inp, i) => {
    const dtype = inp.dtype ?? 'float64';
    const n = inp.shape.reduce((a, b) => a * b, 1);
    const values = inp.values ?? randValues(rng, n, inp.gen);
    if (values.length !== n) throw new Error(`case ${c.name}: input ${inp.name} needs ${n} values`);
    if (inp.constant) {
      xs.push(g.constant(typed(dtype, values) as Float64Array, dtype, inp.shape));
    } else {
      xs.push(g.input(inp.name, dtype, inp.decl ?? inp.shape));
      feeds[inp.name] = { dtype, data: typed(dtype, values), shape: inp.shape };
      if (inp.diff ?? (dtype === 'float64' || dtype === 'float32')) diffIdx.push(i);
    }
  });
  const out = c.build(xs, g);
  if (out.dtype !== 'float64') throw new Error(`case ${c.name}: output must be float64, got ${out.dtype}`);
  const rShape = c.outShape ?? resolveShape(out.shape, c.dims ?? {});
  const R = g.input('R', 'float64', [...out.shape]);
  feeds['R'] = { dtype: 'float64', data: Float64Array.from(randValues(rng, rShape.reduce((a, b) => a * b, 1))), shape: rShape };
  const loss = reduceSum(mul(out, R));
  g.output(loss, 'loss');
  const grads = grad(
    loss,
    diffIdx.map((i) => xs[i]!),
  );
  grads.forEach((gr, k) => g.output(gr, `grad_${c.inputs[diffIdx[k]!]!.name}`));
  const s = await session(g);
  const res = await run(s, feeds);
  const relErr: Record<string, number> = {};
  const eps = 1e-6;
  for (const i of diffIdx) {
    const name = c.inputs[i]!.name;
    const an = res[`grad_${name}`]!;
    const data = feeds[name]!.data as Float64Array;
    let maxDiff = 0;
    let maxFd = 0;
    for (let j = 0; j < data.length; j++) {
      const orig = data[j]!;
      data[j] = orig + eps;
      const lp = (await run(s, feeds, ['loss']))['loss']!.data[0]!;
      data[j] = orig - eps;
      const lm = (await run(s, feeds, ['loss']))['loss']!.data[0]!;
      data[j] = orig;
      const fd = (lp - lm) / (2 * eps);
      maxDiff = Math.max(maxDiff, Math.abs(fd - an.data[j]!));
      maxFd = Math.max(maxFd, Math.abs(fd));
    }
    if (an.data.length !== data.length) throw new Error(`case ${c.name}: gradient of ${name} has ${an.data.length} values, want ${data.length}`);
    relErr[name] = maxDiff / Math.max(maxFd, 1e-8);
  }
  return { relErr, nodes: g.nodes.map((n) => n.opType) };
}

/** Max |a − b| / max(max |b|, floor). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths ${a.length} vs ${b.length}`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(m, floor);
}

export { Rng };
export { grad };

/** A linear least-squares problem shared by the training-step tests: X [4, 3], targets Y. */
export const LSQ_X = [
  [1, 2, 0.5],
  [-1, 0.5, 2],
  [0.3, -0.7, 1.1],
  [2, 1, -1],
];
export const LSQ_Y = [1, -2, 0.5, 3];

/** loss = mean((X·w + b − y)²) and its analytic gradients. */
export function lsqLossGrad(w: number[], b: number): { loss: number; gw: number[]; gb: number } {
  const n = LSQ_X.length;
  let loss = 0;
  const gw = [0, 0, 0];
  let gb = 0;
  LSQ_X.forEach((x, i) => {
    const r = x.reduce((s, v, j) => s + v * w[j]!, b) - LSQ_Y[i]!;
    loss += (r * r) / n;
    x.forEach((v, j) => (gw[j]! += (2 * r * v) / n));
    gb += (2 * r) / n;
  });
  return { loss, gw, gb };
}
