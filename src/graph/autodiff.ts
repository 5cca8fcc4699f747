/**
 * Reverse-mode automatic differentiation over a recorded `Graph`.
 *
 * `grad(loss, wrt)` appends backward nodes to the same graph:
 *  1. forward pass over the nodes (creation order is topological): a float tensor is *active* if it depends on
 *     some `wrt` tensor through differentiable inputs of differentiable ops;
 *  2. backward pass from `loss`: the nodes on a path wrt → loss are those with an active output that `loss`
 *     needs; only they get backward nodes, and only for inputs that are themselves on such a path (so frozen
 *     weights get no dW);
 *  3. in reverse order each path node's VJP rule turns its output gradients into input gradients; gradients
 *     reaching one tensor from several consumers are summed.
 * Backward nodes are named `grad/<forward node name>/<Op>_<n>`.
 */
import type { GraphNode } from './builder.ts';
import { type Tensor, describe, dimCompatible, isFloat, shapeEq, formatShape } from './tensor.ts';
import { add } from './ops/elementwise.ts';
import { onesLike, zerosLike } from './ops/shape.ts';
import { getVjp, isNonDifferentiable, makeVjpContext } from './vjp/registry.ts';
import './vjp/index.ts';

/** Options of `grad`. */
export interface GradOptions {
  /** dL/d(loss); defaults to 1 for a scalar loss and to ones for a tensor loss (i.e. the gradient of its sum). */
  seed?: Tensor;
}

/** Input indices of `node` through which gradient may flow. */
function diffInputs(node: GraphNode): number[] {
  const entry = getVjp(node.opType);
  const all = node.inputs.map((_, i) => i);
  if (!entry || entry.inputs === 'all') return all;
  return [...entry.inputs];
}

/** Output indices of `node` that carry gradient (float outputs, restricted by the rule). */
function diffOutputs(node: GraphNode): number[] {
  const entry = getVjp(node.opType);
  return node.outputs
    .map((o, i) => (isFloat(o.dtype) && (!entry || entry.outputs === 'all' || entry.outputs.includes(i)) ? i : -1))
    .filter((i) => i >= 0);
}

/**
 * Gradients of `loss` with respect to each tensor of `wrt` (same order and shapes), as new graph tensors.
 * A `wrt` tensor that `loss` does not depend on gets zeros. Throws if a node on a path has no VJP rule.
 */
export function grad(loss: Tensor, wrt: readonly Tensor[], opts: GradOptions = {}): Tensor[] {
  const g = loss.graph;
  if (!isFloat(loss.dtype)) throw new Error(`grad: loss must be float, got ${describe(loss)}`);
  for (const w of wrt) {
    if (w.graph !== g) throw new Error(`grad: ${describe(w)} belongs to another graph`);
    if (!isFloat(w.dtype)) throw new Error(`grad: cannot differentiate with respect to ${describe(w)}`);
  }
  const seed = opts.seed;
  if (seed && (seed.dtype !== loss.dtype || !shapeEq(seed.shape, loss.shape))) {
    throw new Error(`grad: seed ${describe(seed)} does not match loss ${describe(loss)}`);
  }

  // 1. forward activity
  const active = new Set<string>(wrt.map((w) => w.name));
  const activeNodes: GraphNode[] = [];
  for (const node of g.nodes) {
    if (isNonDifferentiable(node.opType)) continue;
    const touches = diffInputs(node).some((i) => {
      const x = node.inputs[i];
      return x !== null && x !== undefined && active.has(x.name);
    });
    if (!touches) continue;
    const outs = diffOutputs(node);
    if (outs.length === 0) continue;
    for (const i of outs) active.add(node.outputs[i]!.name);
    activeNodes.push(node);
  }

  const contributions = new Map<string, Tensor[]>();
  const sumOf = (name: string): Tensor | null => {
    const list = contributions.get(name);
    if (!list || list.length === 0) return null;
    let acc = list[0]!;
    for (let i = 1; i < list.length; i++) acc = add(acc, list[i]!);
    contributions.set(name, [acc]);
    return acc;
  };

  return g.withScopePath(['grad'], () => {
    if (active.has(loss.name)) {
      // 2. nodes on a path wrt → loss (reverse topological order)
      const needed = new Set<string>([loss.name]);
      const pathNodes: GraphNode[] = [];
      for (let k = activeNodes.length - 1; k >= 0; k--) {
        const node = activeNodes[k]!;
        if (!diffOutputs(node).some((i) => needed.has(node.outputs[i]!.name))) continue;
        pathNodes.push(node);
        for (const i of diffInputs(node)) {
          const x = node.inputs[i];
          if (x && active.has(x.name)) needed.add(x.name);
        }
      }
      const missing = [...new Set(pathNodes.filter((n) => !getVjp(n.opType)).map((n) => `${n.opType} ('${n.name}')`))];
      if (missing.length) throw new Error(`grad: no VJP rule for ${missing.join(', ')}`);

      // 3. backward
      contributions.set(loss.name, [seed ?? (loss.shape.length === 0 ? g.constant(1, loss.dtype) : onesLike(loss))]);
      for (const node of pathNodes) {
        const outs = new Set(diffOutputs(node));
        const gradOutputs = node.outputs.map((o, i) => (outs.has(i) ? sumOf(o.name) : null));
        if (gradOutputs.every((x) => x === null)) continue;
        const dIn = new Set(diffInputs(node));
        const needsGrad = node.inputs.map((x, i) => x !== null && dIn.has(i) && active.has(x.name) && needed.has(x.name));
        const entry = getVjp(node.opType)!;
        const results = g.withScopePath(['grad', ...node.name.split('/')], () =>
          entry.rule(makeVjpContext(g, node, gradOutputs, needsGrad)),
        );
        node.inputs.forEach((x, i) => {
          if (!x || !needsGrad[i]) return;
          const r = results[i];
          if (!r) return;
          if (r.dtype !== x.dtype || r.shape.length !== x.shape.length || !r.shape.every((d, k) => dimCompatible(d, x.shape[k]!))) {
            throw new Error(
              `grad: VJP of ${node.opType} '${node.name}' returned ${r.dtype}${formatShape(r.shape)} for input ${i} ${describe(x)}`,
            );
          }
          // symbolic dims matched to numbers by broadcasting get the input's labels back
          const rr = shapeEq(r.shape, x.shape) ? r : g.addNode('Identity', [r], [{ dtype: x.dtype, shape: x.shape }])[0]!;
          const list = contributions.get(x.name);
          if (list) list.push(rr);
          else contributions.set(x.name, [rr]);
        });
      }
    }
    return wrt.map((w) => sumOf(w.name) ?? zerosLike(w));
  });
}
