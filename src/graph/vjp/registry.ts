/**
 * The one registry of vector-Jacobian product (VJP) rules, keyed by ONNX op type (like tfjs's gradient
 * registry). A rule receives the forward node and the gradients of its outputs and emits graph ops that compute
 * the gradients of its inputs. Ops without a gradient (comparisons, Shape, ArgMax, ...) are declared
 * non-differentiable so autodiff stops there instead of failing.
 */
import type { AttrValue, Graph, GraphNode } from '../builder.ts';
import { type Tensor, describe } from '../tensor.ts';
import { zerosLike } from '../ops/shape.ts';

/** What a rule sees: the forward node, its tensors, the incoming gradients and which inputs need one. */
export interface VjpContext {
  readonly graph: Graph;
  readonly node: GraphNode;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  /** dL/d(output i), or null where no gradient flows into that output (treat as zero). */
  readonly gradOutputs: readonly (Tensor | null)[];
  /** needsGrad[i]: the caller wants dL/d(input i); rules may skip work for the others. */
  readonly needsGrad: readonly boolean[];
  /** Input i (throws if the optional input is absent). */
  input(i: number): Tensor;
  /** gradOutputs[i], or zeros shaped like output i. */
  gradOrZeros(i: number): Tensor;
  /** An attribute value with a default. */
  attrInt(name: string, def: number): number;
  attrFloat(name: string, def: number): number;
  attrInts(name: string, def?: readonly number[]): number[] | undefined;
  attrString(name: string, def: string): string;
  /** The values of a constant input (axes, shapes, bounds), or undefined if it is absent; throws if not constant. */
  constInts(i: number): number[] | undefined;
}

/** A VJP rule: returns one gradient (or null/undefined for none) per forward input. */
export type VjpRule = (ctx: VjpContext) => readonly (Tensor | null | undefined)[];

/** A registered rule plus which inputs it differentiates and which outputs carry gradient. */
export interface VjpEntry {
  readonly opType: string;
  readonly rule: VjpRule;
  /** Input indices gradients flow into (others, e.g. indices/axes/conditions, are non-differentiable). */
  readonly inputs: readonly number[] | 'all';
  /** Output indices gradients flow from (e.g. TopK: values only). */
  readonly outputs: readonly number[] | 'all';
}

const rules = new Map<string, VjpEntry>();
const nonDifferentiable = new Set<string>();

/** Registers the VJP rule of `opType` (replacing a previous one). */
export function registerVjp(
  opType: string,
  rule: VjpRule,
  opts: { inputs?: readonly number[]; outputs?: readonly number[] } = {},
): void {
  rules.set(opType, { opType, rule, inputs: opts.inputs ?? 'all', outputs: opts.outputs ?? 'all' });
  nonDifferentiable.delete(opType);
}

/** Declares ops through which no gradient flows (their outputs are treated as constants). */
export function registerNonDifferentiable(...opTypes: string[]): void {
  for (const op of opTypes) {
    if (rules.has(op)) throw new Error(`registerNonDifferentiable: ${op} already has a VJP rule`);
    nonDifferentiable.add(op);
  }
}

/** The rule registered for `opType`, if any. */
export function getVjp(opType: string): VjpEntry | undefined {
  return rules.get(opType);
}

/** True if `opType` was declared non-differentiable. */
export function isNonDifferentiable(opType: string): boolean {
  return nonDifferentiable.has(opType);
}

/** All op types with a VJP rule (sorted). */
export function registeredVjps(): string[] {
  return [...rules.keys()].sort();
}

/** All op types declared non-differentiable (sorted). */
export function registeredNonDifferentiable(): string[] {
  return [...nonDifferentiable].sort();
}

/** Builds the context object handed to a rule. */
export function makeVjpContext(
  graph: Graph,
  node: GraphNode,
  gradOutputs: readonly (Tensor | null)[],
  needsGrad: readonly boolean[],
): VjpContext {
  const getAttr = (name: string): AttrValue | undefined => node.attrs[name];
  return {
    graph,
    node,
    inputs: node.inputs,
    outputs: node.outputs,
    gradOutputs,
    needsGrad,
    input(i) {
      const x = node.inputs[i];
      if (!x) throw new Error(`VJP of ${node.opType} '${node.name}': input ${i} is absent`);
      return x;
    },
    gradOrZeros(i) {
      return gradOutputs[i] ?? zerosLike(node.outputs[i]!);
    },
    attrInt(name, def) {
      const a = getAttr(name);
      return a && a.kind === 'int' ? a.value : def;
    },
    attrFloat(name, def) {
      const a = getAttr(name);
      return a && a.kind === 'float' ? a.value : def;
    },
    attrInts(name, def) {
      const a = getAttr(name);
      return a && a.kind === 'ints' ? [...a.value] : def ? [...def] : undefined;
    },
    attrString(name, def) {
      const a = getAttr(name);
      return a && a.kind === 'string' ? a.value : def;
    },
    constInts(i) {
      const x = node.inputs[i];
      if (!x) return undefined;
      const v = graph.constValues(x);
      if (!v) throw new Error(`VJP of ${node.opType} '${node.name}': input ${i} ${describe(x)} must be a constant`);
      return v;
    },
  };
}
