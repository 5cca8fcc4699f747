/**
 * All op functions of the graph builder (one free function per op; shapes are checked in TypeScript).
 * See the files under `ops/` for the groups: elementwise, reduce, shape, linalg, nn, broadcast.
 */
export * from './ops/elementwise.ts';
export * from './ops/reduce.ts';
export * from './ops/shape.ts';
export * from './ops/linalg.ts';
export * from './ops/nn.ts';
export * from './ops/broadcast.ts';
export { type Operand, dimsTensor, shapeOf, i64 } from './ops/core.ts';
