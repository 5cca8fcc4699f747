/**
 * Test helper: a graph with the loss of the masked ResNet + a linear head and its gradients with respect to every
 * conv weight and the head (`grad.<weight>`, `grad.head.w`, `grad.head.b`) — not the train step, so tests can
 * check the step and the finite differences against it.
 */
import * as G from '../../src/graph/index.ts';
import type { Engine, SessionHandle } from '../../src/runtime/engine.ts';
import type { TensorData } from '../../src/runtime/types.ts';
import { buildResNet, layoutKey, type ResNetLayout } from '../../src/cnn/resnet.ts';

export function gradSession(engine: Engine, L: ResNetLayout, K: number): Promise<SessionHandle> {
  const S = L.config.imageSize;
  return engine.session({ kind: 'test-cnn-grad', net: layoutKey(L), K }, () => {
    const g = new G.Graph({ name: 'cnn_grad' });
    const xi = g.input('x', 'float32', ['batch', L.config.inChannels, S, S]);
    const yi = g.input('labels', 'int64', ['batch']);
    const mi = L.groups.map((gr, i) => g.input(`mask.${i}`, 'float32', [gr.channels]));
    const wi = L.convs.map((c) => g.input(c.weight, 'float32', [c.outChannels, c.inChannels, c.kernel, c.kernel]));
    const out = buildResNet(L, xi, { weight: (c) => wi[L.convs.indexOf(c)]!, mask: (i) => mi[i]! });
    const hw = g.input('head.w', 'float32', [K, L.features]);
    const hb = g.input('head.b', 'float32', [K]);
    const loss = G.crossEntropy(G.add(G.matmul(out.features, G.transpose(hw, [1, 0])), hb), yi);
    g.output(loss, 'loss');
    const grads = G.grad(loss, [...wi, hw, hb]);
    L.convs.forEach((c, i) => g.output(grads[i]!, `grad.${c.weight}`));
    g.output(grads[wi.length]!, 'grad.head.w');
    g.output(grads[wi.length + 1]!, 'grad.head.b');
    return g.toBytes();
  });
}

/** Feeds of {@link gradSession}. */
export function gradFeeds(L: ResNetLayout, x: Float32Array, labels: ArrayLike<number>, w: Record<string, Float32Array>, head: { w: Float32Array; b: Float32Array }, masks: readonly Float32Array[]): Record<string, TensorData> {
  const S = L.config.imageSize;
  const B = labels.length;
  const K = head.b.length;
  const f: Record<string, TensorData> = {
    x: { dtype: 'float32', dims: [B, L.config.inChannels, S, S], data: x },
    labels: { dtype: 'int64', dims: [B], data: BigInt64Array.from(Array.from(labels), (v) => BigInt(v)) },
    'head.w': { dtype: 'float32', dims: [K, L.features], data: head.w },
    'head.b': { dtype: 'float32', dims: [K], data: head.b },
  };
  masks.forEach((m, i) => (f[`mask.${i}`] = { dtype: 'float32', dims: [m.length], data: m }));
  for (const c of L.convs) f[c.weight] = { dtype: 'float32', dims: [c.outChannels, c.inChannels, c.kernel, c.kernel], data: w[c.weight]! };
  return f;
}
