/**
 * Multi-seed runs: one run per seed into `OUT/seed-<s>/` (the seed sets the run seed — method init, router noise,
 * dropout, replay, augmentation — and the stream seed — class order and sample order), then `OUT/summary.json`
 * and `OUT/summary.csv`: per metric of metrics.json and per headline number of cost.json the mean, the sample
 * standard deviation (n − 1; null for one value) and n over the seeds that have a value.
 *
 * `OUT/seeds.json` records the seeds and the config, so `resumeSeeds(OUT)` continues: finished seed folders are
 * kept, checkpointed ones resumed, the others run from the start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { parseConfig, type LoadedConfig } from '../config/load.ts';
import type { RunConfig } from '../config/schema.ts';
import { SEEDS_FILE, runFolderStatus } from './checkpoint.ts';
import { resumeExperiment, runExperiment, type ExperimentOptions } from './experiment.ts';

/** The folder of seed `seed` in a multi-seed output folder. */
export function seedDir(outDir: string, seed: number): string {
  return join(outDir, `seed-${seed}`);
}

/** The config of one seed: run seed and stream seed set to `seed`, no seed list. */
export function withSeed(loaded: LoadedConfig, seed: number): LoadedConfig {
  const config = structuredClone(loaded.config);
  config.seed = seed;
  (config.stream as { seed: number }).seed = seed;
  delete config.seeds;
  return { ...loaded, config };
}

/** Mean, sample standard deviation and count of the non-null values (and the values, in seed order). */
export interface SeedStat {
  mean: number | null;
  std: number | null;
  n: number;
  values: Array<number | null>;
}

/** {@link SeedStat} of `values` (nulls skipped; std needs two values). */
export function seedStat(values: ReadonlyArray<number | null>): SeedStat {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const n = xs.length;
  // equal values give exactly that value and std 0 (not a rounding residue of the sum)
  const mean = n === 0 ? null : xs.every((x) => x === xs[0]) ? xs[0]! : xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean!) ** 2, 0) / (n - 1)) : null;
  return { mean, std, n, values: [...values] };
}

/** summary.json. */
export interface SeedSummary {
  format: 'moeclip.seed-summary';
  version: 1;
  seeds: number[];
  /** Every scalar of metrics.json. */
  metrics: Record<string, SeedStat>;
  /** cost.json's headline numbers (see {@link costHeadline}). */
  cost: Record<string, SeedStat>;
}

/**
 * The headline numbers of a cost.json: parameter counts, peak RSS, samples, steps, time per sample / batch, the
 * stream loop's seconds, and the method's scalar extras (`extra.<name>`; per-item entries such as
 * `ddasRoute:a->b` are left out).
 */
export function costHeadline(cost: Record<string, unknown>): Record<string, number | null> {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const out: Record<string, number | null> = {};
  for (const k of ['trainableParams', 'totalParams', 'peakRssBytes', 'samplesSeen', 'steps', 'msPerSample', 'trainMsPerSample', 'msPerBatch']) out[k] = num(cost[k]);
  const total = num((cost['timingsMs'] as Record<string, unknown> | undefined)?.['total']);
  out['seconds'] = total === null ? null : total / 1000;
  for (const [k, v] of Object.entries((cost['extra'] ?? {}) as Record<string, unknown>)) if (!k.includes(':')) out[`extra.${k}`] = num(v);
  return out;
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
}

/** The summary of the finished seed folders `OUT/seed-<s>/` for `seeds`. */
export function summarizeSeeds(outDir: string, seeds: readonly number[]): SeedSummary {
  const metrics = seeds.map((s) => readJson(join(seedDir(outDir, s), 'metrics.json')));
  const costs = seeds.map((s) => costHeadline(readJson(join(seedDir(outDir, s), 'cost.json'))));
  const stats = (rows: Array<Record<string, unknown>>): Record<string, SeedStat> => {
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => r[k] === null || typeof r[k] === 'number')))];
    return Object.fromEntries(keys.map((k) => [k, seedStat(rows.map((r) => (typeof r[k] === 'number' ? (r[k] as number) : null)))]));
  };
  return { format: 'moeclip.seed-summary', version: 1, seeds: [...seeds], metrics: stats(metrics), cost: stats(costs) };
}

/** Writes summary.json and summary.csv (`group,metric,mean,std,n,seed-<s>...`; empty cell = null). */
export function writeSeedSummary(outDir: string, summary: SeedSummary): void {
  writeJsonAtomic(join(outDir, 'summary.json'), summary);
  const cell = (v: number | null) => (v === null ? '' : String(v));
  const lines = [['group', 'metric', 'mean', 'std', 'n', ...summary.seeds.map((s) => `seed-${s}`)].join(',')];
  for (const group of ['metrics', 'cost'] as const) {
    for (const [k, st] of Object.entries(summary[group])) lines.push([group, k, cell(st.mean), cell(st.std), String(st.n), ...st.values.map(cell)].join(','));
  }
  writeFileAtomic(join(outDir, 'summary.csv'), lines.join('\n') + '\n');
}

/** seeds.json. */
export interface SeedsManifest {
  format: 'moeclip.seeds';
  version: 1;
  seeds: number[];
  /** The validated config (without `seeds`), the folder its paths resolved against, the run name. */
  config: RunConfig;
  baseDir: string;
  runName: string;
  checkpointEvery: number;
  threads: number | null;
}

/** What happens to one seed. */
export interface SeedStart {
  seed: number;
  index: number;
  count: number;
  dir: string;
  action: 'skip' | 'resume' | 'run';
}

export interface SeedsOptions extends Omit<ExperimentOptions, 'outDir' | 'stream'> {
  /** Keep finished seed folders, resume checkpointed ones, rerun the others (else: refuse a used folder). */
  resume?: boolean;
  /** Told before each seed. */
  onSeed?: (s: SeedStart) => void;
}

/** Runs every seed into `outDir/seed-<s>/` and writes the summary (see the module doc). */
export async function runSeeds(loaded: LoadedConfig, outDir: string, seeds: readonly number[], opts: SeedsOptions = {}): Promise<SeedSummary> {
  if (seeds.length === 0) throw new Error('seeds: expected at least one seed');
  if (new Set(seeds).size !== seeds.length) throw new Error(`seeds: a seed is listed twice (${seeds.join(', ')})`);
  const statuses = seeds.map((s) => runFolderStatus(seedDir(outDir, s)));
  if (!opts.resume && !opts.overwrite) {
    const used = seeds.filter((_, i) => statuses[i]!.kind !== 'none');
    if (used.length > 0 || existsSync(join(outDir, SEEDS_FILE))) {
      throw new Error(`${outDir} already holds a multi-seed run (seed folders ${used.map((s) => `seed-${s}`).join(', ') || 'none yet'}); resume it or overwrite it`);
    }
  }
  if (!opts.resume || !existsSync(join(outDir, SEEDS_FILE))) {
    const { seeds: _drop, ...config } = loaded.config;
    const manifest: SeedsManifest = {
      format: 'moeclip.seeds',
      version: 1,
      seeds: [...seeds],
      config: config as RunConfig,
      baseDir: loaded.baseDir,
      runName: loaded.runName,
      checkpointEvery: opts.checkpointEvery ?? 0,
      threads: opts.threads ?? null,
    };
    writeJsonAtomic(join(outDir, SEEDS_FILE), manifest);
  }
  const { resume, onSeed, ...exp } = opts;
  for (let i = 0; i < seeds.length; i++) {
    const seed = seeds[i]!;
    const dir = seedDir(outDir, seed);
    const st = statuses[i]!;
    const action: SeedStart['action'] = resume && st.kind === 'finished' ? 'skip' : resume && st.kind === 'checkpointed' ? 'resume' : 'run';
    onSeed?.({ seed, index: i, count: seeds.length, dir, action });
    if (action === 'skip') continue;
    if (action === 'resume') await resumeExperiment(dir, exp);
    else await runExperiment(withSeed(loaded, seed), { ...exp, outDir: dir, overwrite: true });
  }
  const summary = summarizeSeeds(outDir, seeds);
  writeSeedSummary(outDir, summary);
  return summary;
}

/** Continues the multi-seed run in `outDir` (from its seeds.json). */
export async function resumeSeeds(outDir: string, opts: Omit<SeedsOptions, 'resume'> = {}): Promise<SeedSummary> {
  const m = readJson(join(outDir, SEEDS_FILE)) as unknown as SeedsManifest;
  if (m.format !== 'moeclip.seeds') throw new Error(`${join(outDir, SEEDS_FILE)}: format: expected 'moeclip.seeds', got ${JSON.stringify(m.format)}`);
  const loaded = await parseConfig(m.config, { baseDir: m.baseDir, source: join(outDir, SEEDS_FILE) });
  loaded.runName = m.runName;
  const threads = opts.threads ?? m.threads ?? undefined;
  return runSeeds(loaded, outDir, m.seeds, {
    checkpointEvery: m.checkpointEvery,
    ...opts,
    ...(threads !== undefined ? { threads } : {}),
    resume: true,
  });
}
