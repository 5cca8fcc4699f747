/**
 * Small ONNX models for the runtime tests, written directly with onnx-proto (irVersion 8, opset 17), independent
 * of src/graph. Includes hand-written "training step" graphs (linear regression + AdamW / SGD) that follow the
 * TrainState naming convention, and plain-JS references of the same updates.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;

export type Elem = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

const ELEM: Record<Elem, number> = {
  float32: DT.FLOAT,
  float64: DT.DOUBLE,
  int64: DT.INT64,
  int32: DT.INT32,
  bool: DT.BOOL,
  uint8: DT.UINT8,
};

type Dim = number | string;

function valueInfo(name: string, elem: Elem, dims: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** A minimal graph builder: inputs, float constants, nodes, outputs. */
export class MiniGraph {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly inits: OnnxTypes.ITensorProto[] = [];
  private readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  private readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private counter = 0;

  /** `float` is the element type of constants made by {@link const}. */
  constructor(readonly float: 'float32' | 'float64' = 'float32') {}

  input(name: string, dims: Dim[], elem: Elem = this.float): string {
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** Declares `name` a graph output (element type defaults to the graph's float type). */
  output(name: string, dims: Dim[], elem: Elem = this.float): void {
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** A float initializer with the given values and dims (`[]` for a scalar). */
  const(values: number | number[], dims: number[] = []): string {
    const name = `c${this.counter++}`;
    const vals = typeof values === 'number' ? [values] : values;
    const t: OnnxTypes.ITensorProto = { name, dims, dataType: ELEM[this.float] };
    if (this.float === 'float32') t.floatData = vals;
    else t.doubleData = vals;
    this.inits.push(t);
    return name;
  }

  /** Adds a node; returns its (first) output name, `out` or a fresh one. */
  op(opType: string, inputs: string[], attrs: Record<string, number> = {}, out?: string): string {
    const o = out ?? `t${this.counter++}`;
    this.nodes.push({
      name: `${opType}_${this.counter++}`,
      opType,
      input: inputs,
      output: [o],
      attribute: Object.entries(attrs).map(([name, i]) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i })),
    });
    return o;
  }

  /** Serializes the model. */
  encode(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      producerName: 'moeclip-test',
      graph: { name: 'g', node: this.nodes, initializer: this.inits, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** `y = x · W + b` with x `[N, K]` (N symbolic) and W, b graph inputs. */
export function matmulAddModel(K: number, M: number, float: 'float32' | 'float64' = 'float32'): Uint8Array {
  const g = new MiniGraph(float);
  const x = g.input('x', ['N', K]);
  const W = g.input('W', [K, M]);
  const b = g.input('b', [M]);
  g.op('Add', [g.op('MatMul', [x, W]), b], {}, 'y');
  g.output('y', ['N', M]);
  return g.encode();
}

/** `c = a + b` over symbolic 1-D shapes `['N']` and `['M']`: feeding different lengths fails inside ORT. */
export function addModel(): Uint8Array {
  const g = new MiniGraph('float32');
  g.op('Add', [g.input('a', ['N']), g.input('b', ['M'])], {}, 'c');
  g.output('c', ['N']);
  return g.encode();
}

/** Identity outputs `<name>.out` for inputs of every listed element type (shape `['N']`). */
export function identityModel(elems: Elem[]): Uint8Array {
  const g = new MiniGraph('float32');
  for (const e of elems) {
    g.op('Identity', [g.input(e, ['N'], e)], {}, `${e}.out`);
    g.output(`${e}.out`, ['N'], e);
  }
  return g.encode();
}

/** A graph using an operator that does not exist (ORT rejects it at session creation). */
export function badOpModel(): Uint8Array {
  const g = new MiniGraph('float32');
  g.op('NoSuchOperator', [g.input('a', ['N'])], {}, 'c');
  g.output('c', ['N']);
  return g.encode();
}

export interface AdamHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAM: AdamHyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
export const MOMENTUM = 0.9;

/**
 * Training-step graph for linear regression `pred = x·w + b`, `loss = mean((pred − y)²)` with x `[N, D]`,
 * y `[N]`, params w `[D]` and b `[1]`, gradients written out by hand:
 *   r = pred − y,  ∂L/∂w = (2/N) rᵀx,  ∂L/∂b = [mean(2r)].
 * Then the optimizer update, following the TrainState naming convention:
 * - adamw: m' = β1 m + (1−β1) g;  v' = β2 v + (1−β2) g²;  m̂ = m'/(1−β1^step);  v̂ = v'/(1−β2^step);
 *          p' = p − lr (m̂ / (√v̂ + ε) + λ p)
 * - sgd+momentum: buf' = μ buf + g;  p' = p − lr buf'
 * - sgd: p' = p − lr g  (no `step` input)
 * Outputs: `loss`, `pred`, `<p>.next` and the slots' `.next`.
 */
export function linregTrainModel(
  N: number,
  D: number,
  float: 'float32' | 'float64',
  optimizer: 'adamw' | 'sgd',
  momentum = false,
): Uint8Array {
  const g = new MiniGraph(float);
  const x = g.input('x', [N, D]);
  const y = g.input('y', [N]);
  const w = g.input('w', [D]);
  const b = g.input('b', [1]);
  const params = { w: { name: w, dims: [D] }, b: { name: b, dims: [1] } };
  for (const p of Object.values(params)) {
    if (optimizer === 'adamw') {
      g.input(`${p.name}.m`, p.dims);
      g.input(`${p.name}.v`, p.dims);
    } else if (momentum) {
      g.input(`${p.name}.buf`, p.dims);
    }
  }
  const lr = g.input('lr', []);
  const step = optimizer === 'adamw' ? g.input('step', []) : '';

  const pred = g.op('Add', [g.op('MatMul', [x, w]), b], {}, 'pred');
  const r = g.op('Sub', [pred, y]);
  g.op('ReduceMean', [g.op('Mul', [r, r])], { keepdims: 0 }, 'loss');
  const grads: Record<string, string> = {
    w: g.op('Mul', [g.op('MatMul', [r, x]), g.const(2 / N)]),
    b: g.op('ReduceMean', [g.op('Mul', [r, g.const(2)])], { keepdims: 1 }),
  };

  for (const [pn, p] of Object.entries(params)) {
    const grad = grads[pn]!;
    if (optimizer === 'adamw') {
      const { beta1, beta2, eps, weightDecay } = ADAM;
      const one = g.const(1);
      const m2 = g.op('Add', [g.op('Mul', [g.const(beta1), `${pn}.m`]), g.op('Mul', [g.const(1 - beta1), grad])], {}, `${pn}.m.next`);
      const v2 = g.op(
        'Add',
        [g.op('Mul', [g.const(beta2), `${pn}.v`]), g.op('Mul', [g.const(1 - beta2), g.op('Mul', [grad, grad])])],
        {},
        `${pn}.v.next`,
      );
      const bc1 = g.op('Sub', [one, g.op('Pow', [g.const(beta1), step])]);
      const bc2 = g.op('Sub', [one, g.op('Pow', [g.const(beta2), step])]);
      const mhat = g.op('Div', [m2, bc1]);
      const vhat = g.op('Div', [v2, bc2]);
      const upd = g.op('Add', [g.op('Div', [mhat, g.op('Add', [g.op('Sqrt', [vhat]), g.const(eps)])]), g.op('Mul', [g.const(weightDecay), p.name])]);
      g.op('Sub', [p.name, g.op('Mul', [lr, upd])], {}, `${pn}.next`);
      g.output(`${pn}.m.next`, p.dims);
      g.output(`${pn}.v.next`, p.dims);
    } else if (momentum) {
      const buf2 = g.op('Add', [g.op('Mul', [g.const(MOMENTUM), `${pn}.buf`]), grad], {}, `${pn}.buf.next`);
      g.op('Sub', [p.name, g.op('Mul', [lr, buf2])], {}, `${pn}.next`);
      g.output(`${pn}.buf.next`, p.dims);
    } else {
      g.op('Sub', [p.name, g.op('Mul', [lr, grad])], {}, `${pn}.next`);
    }
    g.output(`${pn}.next`, p.dims);
  }
  g.output('loss', []);
  g.output('pred', [N]);
  return g.encode();
}

/** Plain-JS state of the linear-regression reference (float64 throughout). */
export interface RefState {
  w: number[];
  b: number[];
  slots: Record<string, number[]>;
  step: number;
}

/** Fresh reference state with zero slots for the optimizer. */
export function refState(w: number[], b: number[], optimizer: 'adamw' | 'sgd', momentum = false): RefState {
  const slots: Record<string, number[]> = {};
  for (const [pn, p] of [['w', w], ['b', b]] as const) {
    if (optimizer === 'adamw') {
      slots[`${pn}.m`] = p.map(() => 0);
      slots[`${pn}.v`] = p.map(() => 0);
    } else if (momentum) {
      slots[`${pn}.buf`] = p.map(() => 0);
    }
  }
  return { w: [...w], b: [...b], slots, step: 0 };
}

/**
 * One reference step of the same math as {@link linregTrainModel}, in float64. `x` is row-major `[N, D]`.
 * Mutates `s`, returns the loss (computed before the update) and the predictions.
 */
export function refStep(
  s: RefState,
  x: number[],
  y: number[],
  lr: number,
  optimizer: 'adamw' | 'sgd',
  momentum = false,
): { loss: number; pred: number[] } {
  const N = y.length;
  const D = s.w.length;
  const pred = y.map((_, n) => s.b[0]! + s.w.reduce((acc, wd, d) => acc + x[n * D + d]! * wd, 0));
  const r = pred.map((p, n) => p - y[n]!);
  const loss = r.reduce((a, v) => a + v * v, 0) / N;
  const grads: Record<string, number[]> = {
    w: s.w.map((_, d) => (2 / N) * r.reduce((a, rn, n) => a + rn * x[n * D + d]!, 0)),
    b: [r.reduce((a, rn) => a + 2 * rn, 0) / N],
  };
  const t = s.step + 1;
  for (const pn of ['w', 'b'] as const) {
    const p = s[pn];
    const gr = grads[pn]!;
    for (let i = 0; i < p.length; i++) {
      const gi = gr[i]!;
      if (optimizer === 'adamw') {
        const { beta1, beta2, eps, weightDecay } = ADAM;
        const m = s.slots[`${pn}.m`]!;
        const v = s.slots[`${pn}.v`]!;
        m[i] = beta1 * m[i]! + (1 - beta1) * gi;
        v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi;
        const mhat = m[i]! / (1 - beta1 ** t);
        const vhat = v[i]! / (1 - beta2 ** t);
        p[i] = p[i]! - lr * (mhat / (Math.sqrt(vhat) + eps) + weightDecay * p[i]!);
      } else if (momentum) {
        const buf = s.slots[`${pn}.buf`]!;
        buf[i] = MOMENTUM * buf[i]! + gi;
        p[i] = p[i]! - lr * buf[i]!;
      } else {
        p[i] = p[i]! - lr * gi;
      }
    }
  }
  s.step = t;
  return { loss, pred };
}

/**
 * A graph whose scalars are declared differently from TrainState's defaults: `lr` float32 `[1]`, `step` int64 `[]`.
 * `w.next = w − lr · float(step)`, `loss = sum(w)` (float32, w `[2]`, plain SGD naming).
 */
export function oddScalarsModel(): Uint8Array {
  const g = new MiniGraph('float32');
  const w = g.input('w', [2]);
  const lr = g.input('lr', [1]);
  const step = g.input('step', [], 'int64');
  const stepF = g.op('Cast', [step], { to: DT.FLOAT });
  g.op('Sub', [w, g.op('Mul', [lr, stepF])], {}, 'w.next');
  g.op('ReduceSum', [w], { keepdims: 0 }, 'loss');
  g.output('w.next', [2]);
  g.output('loss', []);
  return g.encode();
}
