/**
 * `moeclip run CONFIG [--set key.path=value]... [--out DIR] [--overwrite]`
 *
 * Runs one online continual-learning experiment from a YAML/JSON config and writes a run folder. Progress goes
 * to stderr (a progress bar on a TTY, plain periodic lines otherwise); the results table and the run folder
 * path go to stdout at the end.
 */
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { loadRunConfigForCli, parseConfigCli } from '../args.ts';
import type { CliIO, Command } from '../command.ts';
import { pct, timestamp } from '../format.ts';
import { runExperiment } from '../../run/experiment.ts';
import type { RunEvent } from '../../run/events.ts';
import { formatResultsTable, metricsRow, RUN_COLUMNS } from '../../report/table.ts';

const USAGE = `usage: moeclip run CONFIG [--method METHOD.yaml] [--set key.path=value]... [--out DIR] [--overwrite]

Runs the online continual-learning experiment described by CONFIG (YAML or JSON; see presets/) and writes a
run folder (config.resolved.json, events.jsonl, acc_matrix.csv, anytime.csv, metrics.json, cost.json, ...).

options:
  --method FILE          replace the config's method section with a method preset (presets/methods/*.yaml)
  --set key.path=value   override a config value (value parsed as YAML), repeatable
  --out DIR              run folder (default: the config's 'out', else runs/<name>-<timestamp>)
  --overwrite            allow writing into a folder that already holds a run

Relative paths in CONFIG are resolved against CONFIG's folder; those given with --set or --out against the
current directory.`;

/** Turns runner events into progress output on stderr. */
function progressReporter(io: CliIO): { onEvent: (e: RunEvent) => void; stop: () => void } {
  let total = 0;
  let tasks = 0;
  let correct = 0;
  let seen = 0;
  let lastPrinted = 0;
  let bar: cliProgress.SingleBar | null = null;
  const taskLines: string[] = [];
  const t0 = Date.now();
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const onEvent = (e: RunEvent) => {
    switch (e.type) {
      case 'run_start':
        total = e.trainSamples;
        tasks = e.tasks;
        io.stderr(`stream: ${e.kind}, ${e.tasks} tasks, ${e.trainSamples} training samples, ${e.classes} classes\n`);
        if (io.isTTY) {
          const stream = { isTTY: true, columns: 100, write: (s: string) => (io.stderr(s), true) };
          bar = new cliProgress.SingleBar(
            {
              stream: stream as unknown as NodeJS.WritableStream,
              format: 'task {task}/{tasks} |{bar}| {value}/{total} samples | online {online} | task-end acc {acc} | ETA {eta_formatted}',
              hideCursor: true,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, 0, { task: 1, tasks, online: '—', acc: '—' });
        }
        break;
      case 'task_start':
        if (!bar) io.stderr(`task ${e.task + 1}/${tasks} (${e.name}): ${e.size} samples, ${e.classes.length} classes\n`);
        break;
      case 'batch':
        correct += e.correct;
        seen += e.n;
        if (bar) bar.update(e.samplesSeen, { task: e.task + 1, online: pct(correct / seen) });
        else if (e.samplesSeen - lastPrinted >= Math.max(1, Math.floor(total / 20))) {
          lastPrinted = e.samplesSeen;
          const s = ((Date.now() - t0) / 1000).toFixed(1);
          io.stderr(`  ${e.samplesSeen}/${total} samples, online acc ${pct(correct / seen)}, ${s}s\n`);
        }
        break;
      case 'task_end': {
        const line = `end of task ${e.task + 1}/${tasks}: accuracy on exposed classes ${pct(e.accuracy)} (${e.n} test samples)\n`;
        if (bar) {
          // no lines while the bar is drawn: the result goes into the bar and is printed after it
          taskLines.push(line);
          bar.update(e.samplesSeen, { acc: pct(e.accuracy) });
        } else io.stderr(line);
        break;
      }
      case 'phase':
        if (!bar && e.ms > 1000) io.stderr(`  phase ${e.name}: ${(e.ms / 1000).toFixed(1)}s\n`);
        break;
      case 'run_end':
        stop();
        for (const l of taskLines) io.stderr(l);
        taskLines.length = 0;
        io.stderr(`done: ${e.samplesSeen} samples in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
        break;
      default:
        break;
    }
  };
  return { onEvent, stop };
}

const run: Command = {
  summary: 'Run an online continual-learning experiment from a config and write a run folder',
  usage: USAGE,
  async run(argv, io) {
    const { values, config } = parseConfigCli(
      argv,
      {
        set: { type: 'string', multiple: true, default: [] },
        method: { type: 'string' },
        out: { type: 'string' },
        overwrite: { type: 'boolean', default: false },
      },
      USAGE,
    );
    const loaded = await loadRunConfigForCli(config, values.set, values.method);
    const outDir = values.out
      ? resolve(values.out)
      : loaded.config.out
        ? loaded.config.out
        : resolve('runs', `${loaded.runName}-${timestamp()}`);
    const progress = progressReporter(io);
    let res;
    try {
      res = await runExperiment(loaded, { outDir, overwrite: values.overwrite, onEvent: progress.onEvent });
    } finally {
      progress.stop();
    }
    const { result } = res;
    const row = metricsRow(loaded.config.method.name, result.metrics, {
      time_s: (result.timings['total'] ?? 0) / 1000,
      ms_per_sample: result.samplesSeen > 0 ? (result.timings['total'] ?? 0) / result.samplesSeen : null,
    });
    io.stdout(formatResultsTable([row], RUN_COLUMNS));
    io.stdout(`run folder: ${outDir}\n`);
    return 0;
  },
};
export default run;
