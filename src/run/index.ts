/** The online runner (one pass over a stream) and whole experiments (config → stream → method → run folder). */
export * from './runner.ts';
export * from './experiment.ts';
export * from './events.ts';
export * from './evaluator.ts';
export * from './checkpoint.ts';
export * from './seeds.ts';
