/**
 * The graph builder: records ONNX nodes with tracked shapes and serialises them to an ONNX `ModelProto`.
 *
 * A `Graph` owns graph inputs (batch data, trainable tensors, optimiser state), initializers (frozen weights and
 * constants), nodes (in creation order, which is a topological order) and named outputs. Op functions in
 * `ops/*.ts` call `Graph.addNode` with the output dtypes and shapes they computed, so shape mistakes throw in
 * TypeScript with a stack instead of at `InferenceSession.create`.
 *
 * Node names are `<scope path>/<OpType>_<counter>`, e.g. `visual/block3/attn/MatMul_12`; a node's (first) output
 * tensor has the node's name, further outputs get `:1`, `:2`, ... suffixes.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxNs } from 'onnx-proto';
import {
  type DType,
  type Dim,
  type Tensor,
  type ArrayData,
  ONNX_DTYPE,
  allocData,
  canonicalDim,
  dataAt,
  dtypeOfArray,
  describe,
  formatShape,
  staticSize,
  toData,
} from './tensor.ts';

const { onnx } = onnxProto;

/** An attribute value of a node (tagged so ints and floats stay distinct in the proto). */
export type AttrValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'tensor'; readonly value: { dtype: DType; shape: readonly number[]; data: ArrayData } };

/** Constructors for attribute values. */
export const attr = {
  int: (value: number): AttrValue => {
    if (!Number.isInteger(value)) throw new Error(`int attribute needs an integer, got ${value}`);
    return { kind: 'int', value };
  },
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: readonly number[]): AttrValue => {
    if (!value.every(Number.isInteger)) throw new Error(`ints attribute needs integers, got ${JSON.stringify(value)}`);
    return { kind: 'ints', value: [...value] };
  },
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value: [...value] }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (dtype: DType, shape: readonly number[], data: ArrayData): AttrValue => ({
    kind: 'tensor',
    value: { dtype, shape: [...shape], data },
  }),
};

/** A recorded node. `inputs[i] === null` marks an omitted optional input. */
export interface GraphNode {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

/** An initializer: a frozen weight (`param`) or a constant. */
export interface Initializer {
  readonly tensor: Tensor;
  readonly data: ArrayData;
  readonly kind: 'param' | 'constant';
}

/** A named graph output. */
export interface GraphOutput {
  readonly name: string;
  readonly tensor: Tensor;
}

/** The dtype and shape an op computed for one output. */
export interface OutputSpec {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

class TensorImpl implements Tensor {
  readonly shape: readonly Dim[];
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    shape: readonly Dim[],
  ) {
    for (const d of shape) {
      if (typeof d === 'number' ? !Number.isInteger(d) || d < 0 : d.length === 0) {
        throw new Error(`tensor '${name}': invalid dim ${JSON.stringify(d)} in ${formatShape(shape)}`);
      }
    }
    this.shape = Object.freeze(shape.map(canonicalDim));
  }
  toString(): string {
    return describe(this);
  }
}

/** Largest scalar constant array cached by value (avoids one initializer per literal). */
const CACHE_MAX_ELEMENTS = 16;

export class Graph {
  readonly name: string;
  readonly opset: number;

  private readonly _nodes: GraphNode[] = [];
  private readonly _inputs: Tensor[] = [];
  private readonly _outputs: GraphOutput[] = [];
  private readonly _inits = new Map<string, Initializer>();
  private readonly _producers = new Map<string, { node: GraphNode; index: number }>();
  private readonly _names = new Set<string>();
  private readonly _symbols = new Map<string, { tensor: Tensor; axis: number }>();
  private readonly _constCache = new Map<string, Tensor>();
  private readonly _domains = new Map<string, number>();
  private _scope: string[] = [];
  private _counter = 0;

  /** `opset` (default 17, supported 13..21) selects how ops are lowered (axes as inputs or attributes, ...). */
  constructor(opts: { name?: string; opset?: number } = {}) {
    this.name = opts.name ?? 'graph';
    this.opset = opts.opset ?? 17;
    if (!Number.isInteger(this.opset) || this.opset < 13 || this.opset > 21) {
      throw new Error(`Graph: opset ${this.opset} not supported (13..21)`);
    }
  }

  /** Nodes in creation (topological) order. */
  get nodes(): readonly GraphNode[] {
    return this._nodes;
  }
  /** Graph inputs in declaration order. */
  get inputs(): readonly Tensor[] {
    return this._inputs;
  }
  /** Named outputs in declaration order. */
  get outputs(): readonly GraphOutput[] {
    return this._outputs;
  }
  /** Initializers (frozen weights and constants) in creation order. */
  get initializers(): readonly Initializer[] {
    return [...this._inits.values()];
  }
  /** The current scope path, e.g. `'visual/block3/'` (empty at top level). */
  get scopePath(): string {
    return this._scope.length ? this._scope.join('/') + '/' : '';
  }

  /** Declares a graph input (batch data, trainable tensor, optimiser moment, scalar lr/step). */
  input(name: string, dtype: DType, shape: readonly Dim[]): Tensor {
    this.claimName(name, 'input');
    const t = new TensorImpl(this, name, dtype, shape);
    this._inputs.push(t);
    this.noteSymbols(t);
    return t;
  }

  /** A frozen weight stored as an initializer (the dtype comes from the array; `Uint8Array` is `uint8`). */
  param(name: string, data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array, shape: readonly number[]): Tensor {
    const n = staticSize(shape);
    if (n !== data.length) {
      throw new Error(`param '${name}': data has ${data.length} elements but shape ${formatShape(shape)} needs ${n}`);
    }
    this.claimName(name, 'param');
    const t = new TensorImpl(this, name, dtypeOfArray(data), shape);
    this._inits.set(name, { tensor: t, data, kind: 'param' });
    return t;
  }

  /**
   * A constant initializer. A number gives a scalar (or, with `shape`, a filled tensor); an array gives a 1-D
   * tensor unless `shape` says otherwise. Small constants are shared by value.
   */
  constant(
    value: number | readonly number[] | Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array,
    dtype: DType,
    shape?: readonly number[],
  ): Tensor {
    let data: ArrayData;
    let dims: number[];
    if (typeof value === 'number') {
      dims = shape ? [...shape] : [];
      const n = staticSize(dims)!;
      data = toData(new Array<number>(n).fill(value), dtype);
    } else {
      if (ArrayBuffer.isView(value)) {
        const arr = value as ArrayData;
        const src = dtypeOfArray(arr);
        const compatible = src === dtype || (src === 'uint8' && dtype === 'bool');
        data = compatible ? arr : toData(Array.from(arr as ArrayLike<number | bigint>, (v) => Number(v)), dtype);
      } else {
        data = toData(value as readonly number[], dtype);
      }
      dims = shape ? [...shape] : [data.length];
      const n = staticSize(dims);
      if (n !== data.length) {
        throw new Error(`constant: ${data.length} values do not fill shape ${formatShape(dims)}`);
      }
    }
    const key = data.length <= CACHE_MAX_ELEMENTS ? `${dtype}|${dims.join(',')}|${Array.from(data as ArrayLike<number | bigint>).join(',')}` : '';
    const hit = key ? this._constCache.get(key) : undefined;
    if (hit) return hit;
    const name = this.uniqueName(`${this.scopePath}Const`);
    this._names.add(name);
    const t = new TensorImpl(this, name, dtype, dims);
    this._inits.set(name, { tensor: t, data, kind: 'constant' });
    if (key) this._constCache.set(key, t);
    return t;
  }

  /**
   * Declares `t` as the graph output `name`. If `t` is not already a node output named `name`, an Identity node
   * produces `name` from it.
   */
  output(t: Tensor, name: string): void {
    this.own(t, 'output');
    if (this._outputs.some((o) => o.name === name)) throw new Error(`output '${name}' declared twice`);
    const producer = this._producers.get(t.name);
    if (t.name === name && producer) {
      this._outputs.push({ name, tensor: t });
      return;
    }
    this.claimName(name, 'output');
    this._names.delete(name);
    const [out] = this.addNode('Identity', [t], [{ dtype: t.dtype, shape: t.shape }], {}, { outputNames: [name] });
    this._outputs.push({ name, tensor: out! });
  }

  /** Runs `fn` with `prefix` appended to the node-name scope (`scope('visual', () => scope('block3', ...))`). */
  scope<T>(prefix: string, fn: () => T): T {
    if (!prefix || prefix.includes('/')) {
      return this.withScopePath([...this._scope, ...prefix.split('/').filter(Boolean)], fn);
    }
    return this.withScopePath([...this._scope, prefix], fn);
  }

  /** Runs `fn` with an absolute scope path (used by autodiff to put backward nodes under `grad/<node>`). */
  withScopePath<T>(path: readonly string[], fn: () => T): T {
    const saved = this._scope;
    this._scope = [...path];
    try {
      return fn();
    } finally {
      this._scope = saved;
    }
  }

  /**
   * Low-level node creation used by the op functions. `outputs` gives each output's dtype and shape (computed
   * by the op); returns the output tensors. `opts.outputNames` forces output names (must be unused).
   */
  addNode(
    opType: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly OutputSpec[],
    attrs: Record<string, AttrValue> = {},
    opts: { domain?: string; domainVersion?: number; outputNames?: readonly string[] } = {},
  ): Tensor[] {
    for (const x of inputs) if (x) this.own(x, opType);
    const domain = opts.domain ?? '';
    if (domain) this._domains.set(domain, opts.domainVersion ?? this._domains.get(domain) ?? 1);
    const name = this.uniqueName(`${this.scopePath}${opType}`);
    this._names.add(name);
    const outs: Tensor[] = outputs.map((spec, i) => {
      let outName = opts.outputNames?.[i];
      if (outName !== undefined) this.claimName(outName, `${opType} output`);
      else {
        outName = i === 0 ? name : `${name}:${i}`;
        if (i > 0) this.claimName(outName, `${opType} output`);
      }
      return new TensorImpl(this, outName, spec.dtype, spec.shape);
    });
    const node: GraphNode = Object.freeze({
      name,
      opType,
      domain,
      inputs: Object.freeze([...inputs]),
      outputs: Object.freeze(outs),
      attrs: Object.freeze({ ...attrs }),
    });
    this._nodes.push(node);
    outs.forEach((t, index) => {
      this._producers.set(t.name, { node, index });
      this.noteSymbols(t);
    });
    return outs;
  }

  /** The node (and output index) that produces `t`, or undefined for inputs and initializers. */
  producerOf(t: Tensor): { node: GraphNode; index: number } | undefined {
    return this._producers.get(t.name);
  }

  /** The initializer record of `t`, if `t` is a param or constant. */
  initializerOf(t: Tensor): Initializer | undefined {
    return this._inits.get(t.name);
  }

  /** True if `t` is a declared graph input. */
  isInput(t: Tensor): boolean {
    return this._inputs.includes(t);
  }

  /** The data of a constant or param tensor (through Identity nodes), or undefined if not known at build time. */
  constData(t: Tensor): ArrayData | undefined {
    const init = this._inits.get(t.name);
    if (init) return init.data;
    const p = this._producers.get(t.name);
    if (p && p.node.opType === 'Identity' && p.node.inputs[0]) return this.constData(p.node.inputs[0]);
    return undefined;
  }

  /** The values of a constant tensor as numbers, or undefined if not constant. */
  constValues(t: Tensor): number[] | undefined {
    const d = this.constData(t);
    if (!d) return undefined;
    return Array.from({ length: d.length }, (_, i) => dataAt(d, i));
  }

  /** A tensor and axis that carry the symbolic dim `dim` (the first one created), for building runtime shapes. */
  symbolSource(dim: string): { tensor: Tensor; axis: number } | undefined {
    return this._symbols.get(String(canonicalDim(dim)));
  }

  /** A fresh name `<base>_<n>` not used yet in this graph. */
  uniqueName(base: string): string {
    let name: string;
    do name = `${base}_${this._counter++}`;
    while (this._names.has(name));
    return name;
  }

  /** Builds the ONNX ModelProto (irVersion 8). Nodes not needed for any output are pruned when `prune` is set. */
  toModelProto(opts: { prune?: boolean; producerName?: string; docString?: string } = {}): OnnxNs.ModelProto {
    if (this._outputs.length === 0) throw new Error(`graph '${this.name}': no outputs declared`);
    const prune = opts.prune ?? true;
    let nodes: readonly GraphNode[] = this._nodes;
    if (prune) {
      const needed = new Set<string>(this._outputs.map((o) => o.tensor.name));
      const keep: GraphNode[] = [];
      for (let i = this._nodes.length - 1; i >= 0; i--) {
        const n = this._nodes[i]!;
        if (!n.outputs.some((o) => needed.has(o.name))) continue;
        keep.push(n);
        for (const x of n.inputs) if (x) needed.add(x.name);
      }
      nodes = keep.reverse();
    }
    const used = new Set<string>();
    for (const n of nodes) for (const x of n.inputs) if (x) used.add(x.name);
    for (const o of this._outputs) used.add(o.tensor.name);
    const inits = [...this._inits.values()].filter((i) => !prune || used.has(i.tensor.name));

    const domains = new Set<string>();
    for (const n of nodes) if (n.domain) domains.add(n.domain);
    const opsetImport = [{ domain: '', version: this.opset }];
    for (const d of domains) opsetImport.push({ domain: d, version: this._domains.get(d) ?? 1 });

    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producerName ?? 'moeclip',
      docString: opts.docString ?? '',
      opsetImport,
      graph: {
        name: this.name,
        node: nodes.map((n) => ({
          name: n.name,
          opType: n.opType,
          domain: n.domain,
          input: n.inputs.map((x) => (x ? x.name : '')),
          output: n.outputs.map((x) => x.name),
          attribute: Object.entries(n.attrs).map(([k, v]) => attrProto(k, v)),
        })),
        initializer: inits.map((i) => tensorProto(i.tensor.name, i.tensor.dtype, i.tensor.shape as number[], i.data)),
        input: this._inputs.map((t) => valueInfo(t.name, t)),
        output: this._outputs.map((o) => valueInfo(o.name, o.tensor)),
      },
    });
  }

  /** Serialised ONNX model bytes, ready for `InferenceSession.create`. */
  toBytes(opts: { prune?: boolean } = {}): Uint8Array {
    return onnx.ModelProto.encode(this.toModelProto(opts)).finish();
  }

  // ----------------------------------------------------------------------------------------------------------

  private own(t: Tensor, what: string): void {
    if (t.graph !== this) throw new Error(`${what}: tensor ${describe(t)} belongs to another graph`);
  }

  private claimName(name: string, what: string): void {
    if (!name) throw new Error(`${what}: empty name`);
    if (this._names.has(name)) throw new Error(`${what}: name '${name}' is already used in graph '${this.name}'`);
    this._names.add(name);
  }

  private noteSymbols(t: Tensor): void {
    t.shape.forEach((d, axis) => {
      if (typeof d === 'string' && !this._symbols.has(d)) this._symbols.set(d, { tensor: t, axis });
    });
  }
}

function attrProto(name: string, v: AttrValue): OnnxNs.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (v.kind) {
    case 'int':
      return { name, type: T.INT, i: v.value };
    case 'float':
      return { name, type: T.FLOAT, f: v.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...v.value] };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...v.value] };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(v.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto('', v.value.dtype, v.value.shape, v.value.data) };
  }
}

function tensorProto(name: string, dtype: DType, dims: readonly number[], data: ArrayData): OnnxNs.ITensorProto {
  let bytes: Uint8Array;
  if (dtype === 'bool' && !(data instanceof Uint8Array)) {
    const u = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) u[i] = dataAt(data, i) ? 1 : 0;
    bytes = u;
  } else {
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  return { name, dataType: ONNX_DTYPE[dtype], dims: [...dims], rawData: bytes };
}

function valueInfo(name: string, t: Tensor): OnnxNs.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[t.dtype],
        shape: { dim: t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Zero-filled data for `dtype` (re-exported helper for tests and ops). */
export function zerosData(dtype: DType, n: number): ArrayData {
  return allocData(dtype, n);
}
