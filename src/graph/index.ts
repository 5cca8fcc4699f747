/**
 * The graph engine: build ONNX graphs in TypeScript with tracked shapes, differentiate them in-graph, and
 * assemble training-step graphs (forward + backward + optimiser) for onnxruntime-node.
 */
export * from './tensor.ts';
export * from './builder.ts';
export * from './ops.ts';
export * from './autodiff.ts';
export * from './vjp/index.ts';
export * from './optim.ts';
export * from './train.ts';
