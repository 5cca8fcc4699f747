/**
 * Method registry: name → { zod option schema, factory }. Built-in methods load lazily (a method that needs
 * ONNX Runtime does not slow down one that does not); more can be added at run time with {@link registerMethod}.
 *
 * Adding a built-in method: write `src/methods/<name>.ts` exporting a {@link MethodDefinition}, and add one line
 * to `BUILTIN` below.
 */
import { z } from 'zod';
import type { Method, MethodEnv } from './method.ts';

/** A method's option schema and factory. `create` receives the options already parsed by `schema`. */
export interface MethodDefinition<S extends z.ZodType = z.ZodType> {
  /** One line for listings. */
  summary: string;
  /** Validates the method's options (everything in the config's `method:` block except `name`). */
  schema: S;
  create(options: z.output<S>, env: MethodEnv): Promise<Method>;
}

/** Built-in methods, loaded on first use. */
const BUILTIN: Record<string, () => Promise<MethodDefinition>> = {
  ncm: async () => (await import('./ncm.ts')).ncmMethod as unknown as MethodDefinition,
  'ncm-clip': async () => (await import('./ncm-clip.ts')).ncmClipMethod as unknown as MethodDefinition,
  'zeroshot-clip': async () => (await import('./zeroshot-clip.ts')).zeroShotClipMethod as unknown as MethodDefinition,
  'adapter-clip': async () => (await import('./adapter-clip.ts')).adapterClipMethod as unknown as MethodDefinition,
  'lora-clip': async () => (await import('./lora-clip.ts')).loraClipMethod as unknown as MethodDefinition,
  finetune: async () => (await import('./finetune.ts')).finetuneMethod as unknown as MethodDefinition,
  er: async () => (await import('./er.ts')).erMethod as unknown as MethodDefinition,
  lwf: async () => (await import('./lwf.ts')).lwfMethod as unknown as MethodDefinition,
  ewc: async () => (await import('./ewc.ts')).ewcMethod as unknown as MethodDefinition,
  'cm-moe': async () => (await import('./cm-moe.ts')).cmMoeMethod as unknown as MethodDefinition,
  'moe-adapters': async () => (await import('./moe-adapters.ts')).moeAdaptersMethod as unknown as MethodDefinition,
  'cnn-subnets': async () => (await import('./cnn-subnets.ts')).cnnSubnetsMethod as unknown as MethodDefinition,
  'cnn-prune': async () => (await import('./cnn-prune.ts')).cnnPruneMethod as unknown as MethodDefinition,
  'cnn-replay': async () => (await import('./cnn-replay.ts')).cnnReplayMethod as unknown as MethodDefinition,
  'cnn-finetune': async () => (await import('./cnn-finetune.ts')).cnnFinetuneMethod as unknown as MethodDefinition,
};

const registered = new Map<string, MethodDefinition>();

/** Registers (or replaces) a method under `name`. */
export function registerMethod<S extends z.ZodType>(name: string, def: MethodDefinition<S>): void {
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(name)) {
    throw new Error(`method name '${name}' must be lower-case letters, digits, '-', '_' or '.'`);
  }
  registered.set(name, def as unknown as MethodDefinition);
}

/** Names of all known methods (registered and built-in), sorted. */
export function listMethods(): string[] {
  return [...new Set([...Object.keys(BUILTIN), ...registered.keys()])].sort();
}

/** The definition of `name`; throws an error listing the known methods when there is none. */
export async function getMethod(name: string): Promise<MethodDefinition> {
  const own = registered.get(name);
  if (own) return own;
  const load = Object.hasOwn(BUILTIN, name) ? BUILTIN[name] : undefined;
  if (!load) throw new Error(`unknown method '${name}'; known methods: ${listMethods().join(', ')}`);
  return load();
}

/** Formats zod issues as `prefix.path: message` lines. */
export function formatIssues(error: z.ZodError, prefix: string): string {
  return error.issues
    .map((i) => {
      const path = [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.');
      return `${path || '(root)'}: ${i.message}`;
    })
    .join('\n');
}

/**
 * Validates `options` against the method's schema; on failure throws an error whose lines name the field path
 * (prefixed with `pathPrefix`, e.g. `method.size: expected a positive integer`).
 */
export async function parseMethodOptions(name: string, options: unknown, pathPrefix = 'method'): Promise<unknown> {
  const def = await getMethod(name);
  const r = def.schema.safeParse(options ?? {});
  if (!r.success) throw new Error(formatIssues(r.error, pathPrefix));
  return r.data;
}

/** Validates the options and creates the method. */
export async function createMethod(name: string, options: unknown, env: MethodEnv): Promise<Method> {
  const def = await getMethod(name);
  const r = def.schema.safeParse(options ?? {});
  if (!r.success) throw new Error(formatIssues(r.error, 'method'));
  return def.create(r.data, env);
}
