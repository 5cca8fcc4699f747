/** The trained learner as an artifact: the learner folder's format, export from a run folder, loading and prediction. */
export * from './format.ts';
export * from './export.ts';
export * from './load.ts';
export { predictDetailed, type Detailed } from './predict.ts';
