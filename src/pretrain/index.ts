/**
 * Contrastive pretraining of the project's own small CLIP (`moeclip pretrain`): config, class split, captions,
 * WordNet text pairs and compact vocabulary, augmentation, batch stream, loss graph, checkpoints, export and zero-shot evaluation.
 */
export * from './config.ts';
export * from './classes.ts';
export * from './vocab.ts';
export * from './captions.ts';
export * from './text-pairs.ts';
export * from './grounding.ts';
export * from './augment.ts';
export * from './sampler.ts';
export * from './loss.ts';
export * from './checkpoint.ts';
export * from './init.ts';
export * from './export.ts';
export * from './zeroshot-eval.ts';
export * from './train.ts';
