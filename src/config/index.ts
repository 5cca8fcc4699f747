/** Run configuration: zod schema, YAML/JSON loading, `--set` overrides, path resolution. */
export * from './schema.ts';
export * from './load.ts';
export * from './overrides.ts';
export * from './paths.ts';
