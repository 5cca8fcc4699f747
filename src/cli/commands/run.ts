/**
 * `moeclip run CONFIG [--set key.path=value]... [--out DIR] [--overwrite] [--seeds 1,2,3] [--checkpoint-every N]
 * [--threads N]` and `moeclip run --resume RUN_DIR`
 *
 * Runs one online continual-learning experiment from a YAML/JSON config and writes a run folder (or one per
 * seed and a summary). Progress goes to stderr (a progress bar on a TTY, plain periodic lines otherwise); the
 * results table and the run folder path go to stdout at the end. Ctrl-C (SIGINT, or SIGTERM) finishes the
 * current batch, writes a checkpoint and says how to continue; a second one exits at once.
 */
import { resolve } from 'node:path';
import { loadRunConfigForCli, parseCliWithPositionals, parseThreads } from '../args.ts';
import type { CliIO, Command } from '../command.ts';
import { UsageError } from '../command.ts';
import { taskLabel, timestamp } from '../format.ts';
import { runProgressReporter } from '../progress.ts';
import { resumeExperiment, runExperiment, RunStoppedError, type ExperimentResult } from '../../run/experiment.ts';
import { runFolderStatus } from '../../run/checkpoint.ts';
import { resumeSeeds, runSeeds, type SeedStart, type SeedSummary } from '../../run/seeds.ts';
import type { RunControlEvent, RunEvent } from '../../run/events.ts';
import { formatResultsTable, metricsRow, RUN_COLUMNS, type ResultRow } from '../../report/table.ts';
import type { RunMetrics } from '../../eval/metrics.ts';

const USAGE = `usage: moeclip run CONFIG [--method METHOD.yaml] [--set key.path=value]... [--out DIR] [--overwrite]
                    [--seeds S1,S2,...] [--checkpoint-every N] [--threads N]
       moeclip run --resume RUN_DIR [--checkpoint-every N] [--threads N]

Runs the online continual-learning experiment described by CONFIG (YAML or JSON; see presets/) and writes a
run folder (config.resolved.json, events.jsonl, acc_matrix.csv, anytime.csv, metrics.json, cost.json, ...).

options:
  --method FILE          replace the config's method section with a method preset (presets/methods/*.yaml)
  --set key.path=value   override a config value (value parsed as YAML), repeatable
  --out DIR              run folder (default: the config's 'out', else runs/<name>-<timestamp>)
  --overwrite            allow writing into a folder that already holds a run
  --seeds S1,S2,...      one run per seed (it sets the run seed and the stream seed) into DIR/seed-<s>/, then
                         DIR/summary.json and DIR/summary.csv (mean, sample std, n per metric); 'seeds: [..]'
                         in CONFIG does the same
  --checkpoint-every N   write a checkpoint into the run folder's checkpoint/ every N stream samples
  --resume RUN_DIR       continue an interrupted run from its checkpoint (a multi-seed folder: keep finished
                         seeds, resume checkpointed ones, rerun the others)
  --threads N            ONNX Runtime threads (default: all cores; a resumed run keeps the count it had)

Ctrl-C finishes the current batch, writes a checkpoint and prints how to resume; press it again to exit at once.
Relative paths in CONFIG are resolved against CONFIG's folder; those given with --set or --out against the
current directory.`;

/** Parses `--seeds 1,2,3` (distinct integers ≥ 0). */
function parseSeeds(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',').map((x) => x.trim());
  const seeds = parts.map(Number);
  if (parts.some((p) => p === '') || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new UsageError(`--seeds must be a comma-separated list of integers ≥ 0, got '${v}'`);
  if (new Set(seeds).size !== seeds.length) throw new UsageError(`--seeds lists a seed twice: '${v}'`);
  return seeds;
}

/** Parses `--checkpoint-every N` (an integer ≥ 1). */
function parseEvery(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--checkpoint-every must be a positive integer (stream samples), got '${v}'`);
  return n;
}

/** Ctrl-C / SIGTERM: the first asks the run to stop at the next batch end, the second exits at once. */
function stopOnSignals(io: CliIO): { requested: () => boolean; release: () => void } {
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      io.stderr(`\n${sig} again: exiting at once (the last checkpoint, if any, is kept)\n`);
      process.exit(130);
    }
    io.stderr(`\n${sig}: finishing the current batch and writing a checkpoint (press Ctrl-C again to exit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested: () => signals > 0,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** What a stopped run printed: what was kept and how to continue. */
function reportStop(io: CliIO, e: RunStoppedError, runDir: string, resumeDir: string): void {
  io.stderr(`interrupted after ${e.samplesSeen}/${e.trainSamples} stream samples (${taskLabel(Math.min(e.task, e.tasks - 1), e.tasks)}).\n`);
  if (e.checkpoint) {
    io.stderr(
      `kept: ${e.checkpoint} (method state, replay memory, generator states, stream position, metric log and events so far) ` +
        `and ${runDir}/config.resolved.json\n` +
        `continue with: moeclip run --resume ${resumeDir}\n`,
    );
  } else {
    io.stderr(`the method cannot save its state, so there is nothing to resume from; kept ${runDir}/config.resolved.json and the partial events (.events.jsonl.part); run it again with --overwrite\n`);
  }
}

function resultRow(name: string, r: ExperimentResult['result']): ResultRow {
  return metricsRow(name, r.metrics, {
    time_s: (r.timings['total'] ?? 0) / 1000,
    ms_per_sample: r.samplesSeen > 0 ? (r.timings['total'] ?? 0) / r.samplesSeen : null,
  });
}

function summaryRows(s: SeedSummary): ResultRow[] {
  const pick = (f: 'mean' | 'std' | number) => {
    const m: Record<string, number | null> = {};
    for (const [k, st] of Object.entries(s.metrics)) m[k] = typeof f === 'number' ? (st.values[f] ?? null) : st[f];
    return m as unknown as RunMetrics;
  };
  const cost = (k: string, f: 'mean' | 'std' | number) => {
    const st = s.cost[k];
    return st ? (typeof f === 'number' ? (st.values[f] ?? null) : st[f]) : null;
  };
  const row = (name: string, f: 'mean' | 'std' | number) => metricsRow(name, pick(f), { time_s: cost('seconds', f), ms_per_sample: cost('msPerSample', f) });
  return [...s.seeds.map((seed, i) => row(`seed ${seed}`, i)), row('mean', 'mean'), row('std', 'std')];
}

const run: Command = {
  summary: 'Run an online continual-learning experiment from a config and write a run folder',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parseCliWithPositionals(argv, {
      set: { type: 'string', multiple: true, default: [] },
      method: { type: 'string' },
      out: { type: 'string' },
      overwrite: { type: 'boolean', default: false },
      seeds: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      resume: { type: 'string' },
      threads: { type: 'string' },
    });
    const threads = parseThreads(values.threads);
    const every = parseEvery(values['checkpoint-every']);
    const common = { ...(threads !== undefined ? { threads } : {}), ...(every !== undefined ? { checkpointEvery: every } : {}) };

    if (values.resume !== undefined) {
      if (positionals.length > 0) throw new UsageError(`--resume continues a run folder: give no CONFIG (got ${positionals.join(' ')})\n\n${USAGE}`);
      for (const f of ['method', 'out', 'seeds'] as const) if (values[f] !== undefined) throw new UsageError(`--resume takes its config from the run folder: drop --${f}`);
      if (values.set.length > 0 || values.overwrite) throw new UsageError(`--resume takes its config from the run folder: drop --${values.overwrite ? 'overwrite' : 'set'}`);
      const dir = resolve(values.resume);
      const status = runFolderStatus(dir);
      if (status.kind === 'finished') throw new UsageError(`${dir}: the run has finished (metrics.json exists); nothing to resume`);
      if (status.kind === 'interrupted') throw new UsageError(`${dir}: the run was interrupted before any checkpoint; run its config again with --overwrite`);
      if (status.kind === 'none') throw new UsageError(`${dir}: not a run folder (no checkpoint/, seeds.json or config.resolved.json)`);
      if (status.kind === 'seeds') return runSeedsCommand(io, dir, { kind: 'resume' }, common);
      return runOne(io, dir, { kind: 'resume' }, common);
    }

    if (positionals.length !== 1) throw new UsageError(`expected exactly one CONFIG file, got ${positionals.length}\n\n${USAGE}`);
    const loaded = await loadRunConfigForCli(positionals[0]!, values.set, values.method);
    const seeds = parseSeeds(values.seeds) ?? loaded.config.seeds;
    const outDir = values.out
      ? resolve(values.out)
      : loaded.config.out
        ? loaded.config.out
        : resolve('runs', `${loaded.runName}${seeds ? '-seeds' : ''}-${timestamp()}`);
    if (!values.overwrite) {
      const st = runFolderStatus(outDir);
      if (st.kind === 'finished') throw new UsageError(`run folder ${outDir} already holds a run; choose another output folder (--out DIR) or pass --overwrite to replace it`);
      if (st.kind === 'checkpointed') throw new UsageError(`run folder ${outDir} holds an interrupted run; continue it with \`moeclip run --resume ${outDir}\` or pass --overwrite to start again`);
      if (st.kind === 'seeds') throw new UsageError(`${outDir} already holds a multi-seed run; continue it with \`moeclip run --resume ${outDir}\`, choose another output folder (--out DIR) or pass --overwrite`);
    }
    if (seeds) return runSeedsCommand(io, outDir, { kind: 'fresh', loaded, seeds, overwrite: values.overwrite }, common);
    return runOne(io, outDir, { kind: 'fresh', loaded, overwrite: values.overwrite }, common);
  },
};

type Common = { threads?: number; checkpointEvery?: number };

async function runOne(
  io: CliIO,
  dir: string,
  how: { kind: 'resume' } | { kind: 'fresh'; loaded: Awaited<ReturnType<typeof loadRunConfigForCli>>; overwrite: boolean },
  common: Common,
): Promise<number> {
  const progress = runProgressReporter(io);
  const signals = stopOnSignals(io);
  let res: ExperimentResult;
  try {
    const opts = { ...common, onEvent: progress.onEvent, onControl: progress.onEvent, shouldStop: signals.requested };
    res = how.kind === 'resume' ? await resumeExperiment(dir, opts) : await runExperiment(how.loaded, { ...opts, outDir: dir, overwrite: how.overwrite });
  } catch (e) {
    progress.stop();
    if (e instanceof RunStoppedError) {
      reportStop(io, e, dir, dir);
      return 130;
    }
    throw e;
  } finally {
    progress.stop();
    signals.release();
  }
  const name = (res.resolved['method'] as { name: string }).name;
  io.stdout(formatResultsTable([resultRow(name, res.result)], RUN_COLUMNS));
  io.stdout(`run folder: ${dir}\n`);
  return 0;
}

async function runSeedsCommand(
  io: CliIO,
  dir: string,
  how: { kind: 'resume' } | { kind: 'fresh'; loaded: Awaited<ReturnType<typeof loadRunConfigForCli>>; seeds: number[]; overwrite: boolean },
  common: Common,
): Promise<number> {
  const signals = stopOnSignals(io);
  let progress = runProgressReporter(io);
  let current = dir;
  const onSeed = (s: SeedStart) => {
    progress.stop();
    current = s.dir;
    progress = runProgressReporter(io, { prefix: `[seed ${s.seed}] ` });
    const what = s.action === 'skip' ? 'finished, kept' : s.action === 'resume' ? 'resuming from its checkpoint' : 'running';
    io.stderr(`seed ${s.seed} (${s.index + 1}/${s.count}): ${what} → ${s.dir}\n`);
  };
  let summary: SeedSummary;
  try {
    const onEvent = (e: RunEvent | RunControlEvent) => progress.onEvent(e);
    const opts = { ...common, onEvent, onControl: onEvent, shouldStop: signals.requested, onSeed };
    summary = how.kind === 'resume' ? await resumeSeeds(dir, opts) : await runSeeds(how.loaded, dir, how.seeds, { ...opts, overwrite: how.overwrite });
  } catch (e) {
    progress.stop();
    if (e instanceof RunStoppedError) {
      reportStop(io, e, current, dir);
      return 130;
    }
    throw e;
  } finally {
    progress.stop();
    signals.release();
  }
  io.stdout(formatResultsTable(summaryRows(summary), RUN_COLUMNS));
  io.stdout(`summary: ${dir}/summary.json, ${dir}/summary.csv\nrun folders: ${summary.seeds.map((s) => `${dir}/seed-${s}`).join(', ')}\n`);
  return 0;
}

export default run;
