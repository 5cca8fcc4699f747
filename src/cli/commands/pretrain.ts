/**
 * `moeclip pretrain CONFIG [--set key.path=value]... [--init DIR] [--out DIR] [--resume] [--max-steps N] ...`
 *
 * Contrastive pretraining of a CLIP from a YAML/JSON config (src/pretrain/), from scratch or from the weights of
 * an existing model folder (`init` / `--init`, a new run: see src/pretrain/init.ts). Progress goes to stderr: a progress
 * bar on a TTY (step, images/s, loss, lr, ETA), plain periodic lines otherwise. Ctrl-C / SIGTERM finish the
 * current step and write a checkpoint before exiting (a second Ctrl-C exits at once). The final summary
 * (JSON) goes to stdout.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { asUsageError, parseConfigCli, parsePositiveInt, parseThreads } from '../args.ts';
import type { CliIO, Command } from '../command.ts';
import { UsageError } from '../command.ts';
import { pct } from '../format.ts';
import { EtaEstimator, formatDuration, ProgressBar } from '../progress.ts';
import { ClipTokenizer } from '../../clip/tokenizer.ts';
import { loadPretrainConfig, PretrainConfigError, type PretrainConfig } from '../../pretrain/config.ts';
import { pretrain, type PretrainEvent } from '../../pretrain/train.ts';

const DEFAULT_BPE = '../shared/clip/bpe_simple_vocab_16e6.txt.gz';

const USAGE = `usage: moeclip pretrain CONFIG [--set key.path=value]... [--init DIR] [--out DIR] [--resume] [--max-steps N]
                        [--checkpoint-dir DIR] [--threads N] [--tokenizer PATH]

Trains a CLIP with a contrastive image-text loss on a labelled image dataset (captions are the class names, or
their synonyms, in prompt templates), from scratch or from an existing model's weights (--init), and writes a
Hugging Face CLIPModel folder (config.json, model.safetensors, vocab.json, merges.txt, preprocessor_config.json,
pretrain.json). See presets/pretrain/moeclip-tiny.yaml for a commented config.

options:
  --set key.path=value   override a config value (value parsed as YAML), repeatable
  --init DIR             start from the weights of this model folder (Hugging Face or open_clip layout)
                         instead of the random init; same as --set init=DIR. The config's model block may be
                         left out (the init model's architecture is used); if given, it must match. This is a
                         new run: AdamW moments start at zero, the step at 0, the learning-rate schedule from
                         its start, logit_scale at the init model's value; token rows no caption uses are
                         exported unchanged
  --out DIR              model folder written at the end (default: the config's 'out', else
                         runs/pretrain/<name>/model; the shipped models/moeclip-tiny is only replaced when
                         named here or in the config)
  --checkpoint-dir DIR   checkpoint folder (default: the config's 'checkpointDir', else
                         runs/pretrain/<name>/checkpoints)
  --resume               continue from the checkpoint in the checkpoint folder (the config, init included,
                         must be the one the checkpoint was made with)
  --max-steps N          stop (with a checkpoint) once the run has made N steps in total; the learning-rate
                         schedule still spans the whole run, so '--resume' continues it exactly
  --threads N            ONNX Runtime threads (default: the config's 'threads', else all cores)
  --tokenizer PATH       CLIP BPE file (bpe_simple_vocab_16e6.txt.gz) or a folder with vocab.json + merges.txt
                         (default: the config's 'tokenizer', else the init model's, else
                         ${DEFAULT_BPE}, else the shipped model's)

Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits; resume with --resume.`;

/**
 * Finds the tokenizer: an explicit path (a BPE .gz file or a folder with vocab.json + merges.txt), else CLIP's BPE
 * file in ../shared/clip (relative to the working directory, then to the repository), else the shipped model's.
 */
export function resolveTokenizer(explicit: string | undefined, cwd: string): ClipTokenizer {
  const load = (p: string): ClipTokenizer => (statSync(p).isDirectory() ? ClipTokenizer.fromModelDir(p) : ClipTokenizer.fromBpeGz(p));
  if (explicit !== undefined) {
    const p = resolve(cwd, explicit);
    if (!existsSync(p)) throw new UsageError(`tokenizer ${p} does not exist`);
    return load(p);
  }
  const candidates = [
    resolve(cwd, DEFAULT_BPE),
    fileURLToPath(new URL('../../../../shared/clip/bpe_simple_vocab_16e6.txt.gz', import.meta.url)),
    fileURLToPath(new URL('../../../models/moeclip-tiny', import.meta.url)),
  ];
  for (const c of candidates) {
    if (existsSync(c) && (c.endsWith('.gz') || existsSync(join(c, 'vocab.json')))) return load(c);
  }
  throw new UsageError(`no CLIP tokenizer found (looked for ${candidates.join(', ')}); pass --tokenizer PATH`);
}

/**
 * The model and checkpoint folders of a run: `--out` / `--checkpoint-dir` (resolved against `cwd`), else the
 * config's `out` / `checkpointDir`, else `runs/pretrain/<name>/model` and `…/checkpoints` under `cwd`.
 */
export function pretrainDirs(cfg: PretrainConfig, flags: { out?: string | undefined; checkpointDir?: string | undefined }, cwd: string): { outDir: string; checkpointDir: string } {
  const name = cfg.name ?? 'run';
  return {
    outDir: flags.out !== undefined ? resolve(cwd, flags.out) : (cfg.out ?? resolve(cwd, 'runs', 'pretrain', name, 'model')),
    checkpointDir: flags.checkpointDir !== undefined ? resolve(cwd, flags.checkpointDir) : (cfg.checkpointDir ?? resolve(cwd, 'runs', 'pretrain', name, 'checkpoints')),
  };
}

/** Turns training events into a progress bar (TTY) or periodic lines on stderr. */
function reporter(io: CliIO): { onEvent: (e: PretrainEvent) => void; stop: () => void } {
  let bar: ProgressBar | null = null;
  let eta: EtaEstimator | null = null;
  let total = 0;
  let startStep = 0;
  let every = 1;
  let lastLine = 0;
  let ema = 0;
  let emaLoss = 0;
  let lastDataLine = 0;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const line = (s: string) => {
    if (bar) bar.log(s);
    else io.stderr(s + '\n');
  };
  const onEvent = (e: PretrainEvent) => {
    switch (e.type) {
      case 'log':
        line(e.message);
        break;
      case 'data':
        if (e.done === e.total || Date.now() - lastDataLine > 5000) {
          lastDataLine = Date.now();
          line(`decoding ${e.split}: ${e.done}/${e.total} images`);
        }
        break;
      case 'start':
        total = e.stopAt;
        startStep = e.startStep;
        every = Math.max(1, Math.round(e.steps / 200));
        io.stderr(
          `pretraining: ${e.samples} images of ${e.classes} classes, batch ${e.batchSize}, ${e.steps} steps` +
            `${e.stopAt < e.steps ? ` (stopping at ${e.stopAt})` : ''}, ${(e.params / 1e6).toFixed(2)} M trainable parameters, ` +
            `${e.vocab} caption tokens${e.init !== null ? `, initialised from ${e.init}` : ''}` +
            `${e.pairSynsets !== null ? `; text pairs over ${e.pairSynsets} WordNet synsets` : ''}` +
            `${e.startStep > 0 ? `; resuming at step ${e.startStep}` : ''}\n`,
        );
        // a smoothed ETA (src/cli/progress.ts): none before a few steps, the first (session-building) step left out
        eta = new EtaEstimator(total);
        eta.update(startStep, performance.now());
        if (io.isTTY) {
          bar = new ProgressBar(io.stderr, {
            total,
            render: (b, f) => `step ${b.value}/${b.total} |${b.bar}| ${f['ips'] ?? '—'} img/s | loss ${f['loss'] ?? '—'} | lr ${f['lr'] ?? '—'} | acc ${f['acc'] ?? '—'} | ETA ${b.eta}`,
          });
          bar.update(startStep);
        }
        break;
      case 'step': {
        ema = ema === 0 ? e.imagesPerSec : 0.9 * ema + 0.1 * e.imagesPerSec;
        emaLoss = emaLoss === 0 ? e.loss : 0.95 * emaLoss + 0.05 * e.loss;
        eta?.update(e.step, performance.now());
        if (bar) {
          bar.update(e.step, { ips: ema.toFixed(1), loss: emaLoss.toFixed(4), lr: e.lr.toExponential(2), acc: pct(e.batchAccuracy) });
        } else if (e.step % every === 0 || e.step === total || Date.now() - lastLine > 60_000) {
          lastLine = Date.now();
          io.stderr(
            `step ${e.step}/${e.steps}: loss ${e.loss.toFixed(4)} (avg ${emaLoss.toFixed(4)}), batch acc ${pct(e.batchAccuracy)}, ` +
              (e.lossTT !== null ? `text-text ${e.lossTT.toFixed(4)} (acc ${pct(e.pairAccuracy ?? 0)}), ` : '') +
              `lr ${e.lr.toExponential(2)}, scale ${e.logitScale.toFixed(1)}${e.gradNorm !== null ? `, |g| ${e.gradNorm.toFixed(2)}` : ''}, ` +
              `${ema.toFixed(1)} img/s, ETA ${formatDuration(eta?.seconds() ?? null)}\n`,
          );
        }
        break;
      }
      case 'eval':
        line(
          `eval at step ${e.step}: zero-shot ${pct(e.seen.accuracy)} on ${e.seen.n} images of the ${e.seen.classes} training classes` +
            (e.unseen ? `, ${pct(e.unseen.accuracy)} on ${e.unseen.n} images of ${e.unseen.classes} held-out classes` : '') +
            e.extra.map((x) => `, ${x.dataset}/${x.split} ${pct(x.accuracy)} (${x.n} images, ${x.classes} classes)`).join('') +
            ` (${(e.ms / 1000).toFixed(1)}s)`,
        );
        break;
      case 'checkpoint':
        line(`checkpoint at step ${e.step}: ${e.path}`);
        break;
      case 'export':
        line(`model written to ${e.dir}`);
        break;
    }
  };
  return { onEvent, stop };
}

const pretrainCommand: Command = {
  summary: 'Pretrain a CLIP contrastively on a labelled image dataset and write a model folder',
  usage: USAGE,
  async run(argv, io) {
    const { values, config } = parseConfigCli(
      argv,
      {
        set: { type: 'string', multiple: true, default: [] },
        init: { type: 'string' },
        out: { type: 'string' },
        'checkpoint-dir': { type: 'string' },
        resume: { type: 'boolean', default: false },
        'max-steps': { type: 'string' },
        threads: { type: 'string' },
        tokenizer: { type: 'string' },
      },
      USAGE,
    );
    const maxSteps = parsePositiveInt('--max-steps', values['max-steps']);
    const threads = parseThreads(values.threads);
    const cwd = process.cwd();
    // --init DIR is `--set init=DIR` applied last (the path as a YAML string, resolved against the working directory)
    const sets = values.init !== undefined ? [...values.set, `init=${JSON.stringify(resolve(cwd, values.init))}`] : values.set;
    const cfg = await asUsageError(() => loadPretrainConfig(config, { sets, cwd }), { when: (e) => e instanceof PretrainConfigError });
    if (threads !== undefined) cfg.threads = threads;
    const { outDir, checkpointDir } = pretrainDirs(cfg, { out: values.out, checkpointDir: values['checkpoint-dir'] }, cwd);
    // the token ids must be the init model's: its tokenizer is the default when initialising from a model
    const tokenizer = resolveTokenizer(values.tokenizer ?? cfg.tokenizer ?? cfg.init, cwd);

    const controller = new AbortController();
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        io.stderr(`\n${sig} again: exiting without a checkpoint\n`);
        process.exit(130);
      }
      io.stderr(`\n${sig}: finishing the current step and writing a checkpoint (press Ctrl-C again to exit at once)\n`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const progress = reporter(io);
    let result;
    try {
      result = await pretrain(cfg, {
        tokenizer,
        outDir,
        checkpointDir,
        resume: values.resume,
        ...(maxSteps !== undefined ? { maxSteps } : {}),
        signal: controller.signal,
        onEvent: progress.onEvent,
      });
    } finally {
      progress.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const summary = {
      step: result.step,
      steps: result.steps,
      finished: result.finished,
      out: result.outDir,
      checkpoint: result.checkpointPath,
      seconds: Math.round(result.elapsedMs / 100) / 10,
      eval: result.eval
        ? { step: result.eval.step, seen: result.eval.seen, unseen: result.eval.unseen, extra: result.eval.extra }
        : null,
    };
    io.stderr(
      result.finished
        ? `done: ${result.step} steps; model in ${result.outDir ?? '(not exported)'}\n`
        : `stopped at step ${result.step}/${result.steps}; continue with --resume (checkpoint ${result.checkpointPath})\n`,
    );
    io.stdout(JSON.stringify(summary) + '\n');
    return controller.signal.aborted ? 130 : 0;
  },
};

export default pretrainCommand;
