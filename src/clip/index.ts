/** CLIP: configs, weights and their layouts, random models, model-folder writing, the graph towers, loading, and the runnable model. */
export * from './config.ts';
export * from './weights.ts';
export * from './random.ts';
export * from './save.ts';
export * from './model.ts';
export * from './load.ts';
export * from './clip.ts';
