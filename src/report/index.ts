/** Run folders, CSV files and results tables. */
export * from './run-folder.ts';
export * from './csv.ts';
export * from './table.ts';
export * from './describe-stream.ts';
export * from './plots.ts';
export * from './html.ts';
export { RunFolderError, readRunData, expandRunDirs, runLabels, isRunFolder, type RunData } from './charts/run-data.ts';
