/**
 * MoE adapters (MoE-Adapters4CL): experts, routers, the layout/freeze bookkeeping and the CLIP hooks that put the
 * branch into the towers; CM-MoE subnets, clustering/merging and shift detection.
 */
export * from './dropout.ts';
export * from './experts.ts';
export * from './router.ts';
export * from './layout.ts';
export * from './hooks.ts';
export * from './ddas.ts';
export * from './subnets.ts';
export * from './merge.ts';
export * from './shift.ts';
