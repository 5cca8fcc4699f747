/** Run folders, CSV files and results tables. */
export * from './run-folder.ts';
export * from './csv.ts';
export * from './table.ts';
export * from './describe-stream.ts';
