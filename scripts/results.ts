/**
 * `npm run results` — regenerates docs/results/ and docs/results.md from the benchmark presets: every
 * (benchmark, method) of the plan below runs with 3 seeds (`moeclip run --seeds`, run folders under
 * runs/results/<benchmark>/<label>/), its summary and per-seed metrics.json / cost.json are copied to
 * docs/results/<benchmark>/<label>/ with the command (command.json), and docs/results.md is rebuilt from
 * docs/results.head.md and the tables (mean ± std over the seeds, scripts/results-table.ts).
 *
 * Resumable: a row whose summary is in docs/results/ with the same seeds is skipped; an interrupted row continues
 * from its checkpoints (`moeclip run --resume`: finished seeds kept, checkpointed seeds resumed). Ctrl-C stops
 * the running row at its next batch with a checkpoint; running the command again continues.
 *
 *   npm run results -- [--bench NAME]... [--method LABEL]... [--seeds 1,2,3] [--checkpoint-every N] [--threads N]
 *                      [--bench-dir DIR] [--root DIR] [--runs DIR] [--doc FILE] [--doc-only] [--dry-run]
 *
 * --bench / --method select rows (default: all; `--bench cnn` is the CNN track's four methods on
 * presets/cnn/omtp-reduced.yaml, into docs/results/cnn/omtp-reduced/); --bench-dir, --root, --runs and --doc move
 * the presets, the results, the run folders and the document (e.g. to try the script on a small benchmark
 * elsewhere).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { resultsTables } from './results-table.ts';

const REPO = resolve(import.meta.dirname, '..');

/** A row of the results: a benchmark preset, a label, and the arguments that choose and configure the method. */
interface Row {
  /** The results folder under docs/results/ (and runs/results/): a benchmark name, or cnn/<stream>. */
  bench: string;
  label: string;
  args: string[];
  /** The stream preset; default presets/bench/<bench>.yaml (under --bench-dir). */
  preset?: string;
}

/** The methods of issue D on each benchmark (a method preset when there is one, else the method's defaults). */
const D_METHODS = ['zeroshot-clip', 'moe-adapters', 'cm-moe', 'adapter-clip', 'finetune', 'lwf', 'er', 'ewc', 'lora-clip'];
const D_BENCHES = ['split-tinyimagenet-heldout', 'mtil-mini', 'si-blurry-tinyimagenet-heldout'];
/** The unbounded form of cm-moe: merging off, a subnet per task (growing as MoE-Adapters does). */
const UNBOUNDED_ARGS = ['--set', 'method.name=cm-moe', '--set', 'method.merge=false', '--set', 'method.maxSubnets=100', '--set', 'method.numClusters=1'];
/** Issue E's runs on long-shift. */
const E_ROWS: Row[] = [
  { bench: 'long-shift', label: 'cm-moe', args: ['--set', 'method.name=cm-moe'] },
  { bench: 'long-shift', label: 'cm-moe-unbounded', args: UNBOUNDED_ARGS },
  { bench: 'long-shift', label: 'moe-adapters', args: ['--set', 'method.name=moe-adapters'] },
  { bench: 'long-shift', label: 'zeroshot-clip', args: ['--set', 'method.name=zeroshot-clip'] },
  { bench: 'long-shift', label: 'cm-moe-taskfree', args: ['--set', 'method.name=cm-moe', '--set', 'run.taskBoundaries=false'] },
  // the statistic alone: DDAS reconstruction errors, label novelty off
  { bench: 'long-shift', label: 'cm-moe-taskfree-ddas', args: ['--set', 'method.name=cm-moe', '--set', 'run.taskBoundaries=false', '--set', 'method.shift.labels=false'] },
  // attempts at closing the A_last gap to the unbounded learner: the second merge rule, experts fine-tuned too
  { bench: 'long-shift', label: 'cm-moe-usage-average', args: ['--set', 'method.name=cm-moe', '--set', 'method.mergeRule=usage-average'] },
  { bench: 'long-shift', label: 'cm-moe-finetune-experts', args: ['--set', 'method.name=cm-moe', '--set', 'method.finetuneExperts=true'] },
  // a larger budget still within half the unbounded learner's experts ((7 + 1) · 4 = 32 ≤ 68 / 2)
  { bench: 'long-shift', label: 'cm-moe-max7', args: ['--set', 'method.name=cm-moe', '--set', 'method.maxSubnets=7'] },
  { bench: 'long-shift', label: 'cm-moe-max7-k5', args: ['--set', 'method.name=cm-moe', '--set', 'method.maxSubnets=7', '--set', 'method.numClusters=5'] },
];
/** DDAS routing by error ÷ own threshold, the threshold the 0.9 quantile of a task's own errors with no margin. */
const DDAS_Q90 = ['--set', 'method.ddas.routing=relative', '--set', 'method.ddas.quantile=0.9', '--set', 'method.ddas.scale=1.0'];
/** Variants beside issue D's methods on one benchmark (label, method, extra arguments). */
const D_VARIANTS: Record<string, Array<{ label: string; method: string; args: string[] }>> = {
  // DDAS routing by error ÷ own threshold (src/moe/ddas.ts), against the reference's least error
  'mtil-mini': [
    { label: 'moe-adapters-ddas-relative', method: 'moe-adapters', args: ['--set', 'method.ddas.routing=relative'] },
    // relative routing with a tighter threshold (DDAS_Q90)
    { label: 'moe-adapters-ddas-relative-q90', method: 'moe-adapters', args: DDAS_Q90 },
    { label: 'cm-moe-ddas-relative-q90', method: 'cm-moe', args: DDAS_Q90 },
  ],
  // the only issue-D benchmark where cm-moe merges (10 tasks > maxSubnets 5); on mtil-mini and si-blurry it never
  // merges, so its run there is its unbounded form's
  'split-tinyimagenet-heldout': [{ label: 'cm-moe-unbounded', method: 'cm-moe', args: UNBOUNDED_ARGS.slice(2) }],
};

/** The CNN track's rows (issue F): its four methods on the reduced stream. */
const CNN_STREAM = 'omtp-reduced';
const CNN_METHODS = ['cnn-subnets', 'cnn-prune', 'cnn-replay', 'cnn-finetune'];
const CNN_ROWS: Row[] = CNN_METHODS.map((m) => ({
  bench: `cnn/${CNN_STREAM}`,
  label: m,
  args: ['--set', `method.name=${m}`],
  preset: join('presets', 'cnn', `${CNN_STREAM}.yaml`),
}));
// the merge retraining of the preset before it took the reference's 10 epochs
CNN_ROWS.push({ bench: `cnn/${CNN_STREAM}`, label: 'cnn-subnets-train3', args: ['--set', 'method.name=cnn-subnets', '--set', 'method.trainEpochs=3'], preset: join('presets', 'cnn', `${CNN_STREAM}.yaml`) });

function methodArgs(method: string): string[] {
  const preset = join(REPO, 'presets', 'methods', `${method}.yaml`);
  return existsSync(preset) ? ['--method', relative(REPO, preset)] : ['--set', `method.name=${method}`];
}

function plan(benches: string[]): Row[] {
  const rows: Row[] = [];
  for (const b of benches) {
    if (b === 'long-shift') {
      rows.push(...E_ROWS);
      // issue E compares CM-MoE with the issue-D baselines on every benchmark, long-shift included
      for (const m of D_METHODS.filter((m) => !E_ROWS.some((r) => r.label === m))) rows.push({ bench: b, label: m, args: methodArgs(m) });
    }
    else if (b === 'cnn' || b === `cnn/${CNN_STREAM}`) rows.push(...CNN_ROWS);
    else {
      for (const m of D_METHODS) rows.push({ bench: b, label: m, args: methodArgs(m) });
      for (const v of D_VARIANTS[b] ?? []) rows.push({ bench: b, label: v.label, args: [...methodArgs(v.method), ...v.args] });
    }
  }
  return rows;
}

const { values } = parseArgs({
  options: {
    bench: { type: 'string', multiple: true, default: [] },
    method: { type: 'string', multiple: true, default: [] },
    seeds: { type: 'string', default: '1,2,3' },
    'checkpoint-every': { type: 'string', default: '2000' },
    threads: { type: 'string' },
    'bench-dir': { type: 'string', default: join(REPO, 'presets', 'bench') },
    root: { type: 'string', default: join(REPO, 'docs', 'results') },
    runs: { type: 'string', default: join(REPO, 'runs', 'results') },
    doc: { type: 'string', default: join(REPO, 'docs', 'results.md') },
    'doc-only': { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
  },
});
const seeds = values.seeds.split(',').map((s) => Number(s.trim()));
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds: expected integers, got '${values.seeds}'`);
const benchDir = resolve(values['bench-dir']);
const root = resolve(values.root);
const runsRoot = resolve(values.runs);
const docFile = resolve(values.doc);

const benches = values.bench.length > 0 ? values.bench : [...D_BENCHES, 'long-shift', 'cnn'];
const rows = plan(benches).filter((r) => values.method.length === 0 || values.method.includes(r.label));

/** Whether docs/results/<bench>/<label> holds the summary of exactly these seeds. */
function done(r: Row): boolean {
  const f = join(root, r.bench, r.label, 'summary.json');
  if (!existsSync(f)) return false;
  try {
    const s = JSON.parse(readFileSync(f, 'utf8')) as { seeds?: number[] };
    return JSON.stringify(s.seeds) === JSON.stringify(seeds);
  } catch {
    return false;
  }
}

let stopping = false;
let child: ReturnType<typeof spawn> | null = null;
process.on('SIGINT', () => {
  if (stopping) process.exit(130);
  stopping = true;
  process.stderr.write('\nresults: stopping after the running row writes its checkpoint (Ctrl-C again to exit at once)\n');
  child?.kill('SIGINT');
});

/** Runs the CLI for a row; its stderr goes to `log`, the seed and stop lines to the console too. */
function runCli(args: string[], log: string): Promise<number> {
  mkdirSync(dirname(log), { recursive: true });
  const out = createWriteStream(log);
  return new Promise((ok, fail) => {
    // its own process group: a terminal's Ctrl-C reaches this script only, which passes one SIGINT on
    child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'cli', 'main.ts'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let pending = '';
    child.stdout!.pipe(out, { end: false });
    child.stderr!.on('data', (d: Buffer) => {
      out.write(d);
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) if (/^(seed \d+ \(|\[seed \d+\] (done|resuming)|interrupted|kept:|continue with|moeclip run:)/.test(l)) process.stderr.write(`    ${l}\n`);
    });
    child.on('error', fail);
    child.on('exit', (code) => {
      child = null;
      out.end();
      ok(code ?? 1);
    });
  });
}

async function runRow(r: Row, i: number, n: number): Promise<'done' | 'ran' | 'failed' | 'stopped'> {
  const tag = `[${i + 1}/${n}] ${r.bench} / ${r.label}`;
  if (done(r)) {
    process.stderr.write(`${tag}: done (summary of seeds ${seeds.join(',')} in ${relative(REPO, join(root, r.bench, r.label))})\n`);
    return 'done';
  }
  const runDir = join(runsRoot, r.bench, r.label);
  const config = r.preset !== undefined ? join(REPO, r.preset) : join(benchDir, `${r.bench}.yaml`);
  const resuming = existsSync(join(runDir, 'seeds.json'));
  const threads = values.threads !== undefined ? ['--threads', values.threads] : [];
  const args = resuming
    ? ['run', '--resume', runDir, ...threads]
    : ['run', config, ...r.args, '--seeds', seeds.join(','), '--out', runDir, '--checkpoint-every', values['checkpoint-every'], '--overwrite', ...threads];
  const command = ['run', relative(REPO, config), ...r.args, '--seeds', seeds.join(','), '--out', relative(REPO, runDir)].join(' ');
  process.stderr.write(`${tag}: ${resuming ? 'resuming' : 'running'} moeclip ${resuming ? args.join(' ') : command}\n`);
  if (values['dry-run']) return 'done';
  const log = join(runsRoot, 'logs', `${r.bench.replaceAll('/', '-')}-${r.label}.log`);
  const t0 = Date.now();
  const code = await runCli(args, log);
  if (code === 130) return 'stopped';
  if (code !== 0) {
    process.stderr.write(`    failed (exit ${code}): see ${relative(process.cwd(), log)}\n`);
    return 'failed';
  }
  const dest = join(root, r.bench, r.label);
  mkdirSync(dest, { recursive: true });
  for (const f of ['summary.json', 'summary.csv']) copyFileSync(join(runDir, f), join(dest, f));
  for (const s of seeds) {
    mkdirSync(join(dest, `seed-${s}`), { recursive: true });
    for (const f of ['metrics.json', 'cost.json']) copyFileSync(join(runDir, `seed-${s}`, f), join(dest, `seed-${s}`, f));
    // the CNN learners' per-batch online accuracy, for the per-set table
    if (existsSync(join(runDir, `seed-${s}`, 'online.csv'))) copyFileSync(join(runDir, `seed-${s}`, 'online.csv'), join(dest, `seed-${s}`, 'online.csv'));
  }
  writeFileSync(join(dest, 'command.json'), JSON.stringify({ command: `moeclip ${command}`, seeds, wallSeconds: Math.round((Date.now() - t0) / 1000) }) + '\n');
  process.stderr.write(`    done in ${Math.round((Date.now() - t0) / 1000)} s → ${relative(REPO, dest)}\n`);
  return 'ran';
}

function writeDoc(): void {
  const head = readFileSync(join(REPO, 'docs', 'results.head.md'), 'utf8');
  mkdirSync(dirname(docFile), { recursive: true });
  writeFileSync(docFile, `${head}\n${resultsTables(root)}`);
  process.stderr.write(`results: wrote ${relative(process.cwd(), docFile)}\n`);
}

if (!values['doc-only']) {
  let failed = 0;
  for (let i = 0; i < rows.length; i++) {
    if (stopping) break;
    const r = await runRow(rows[i]!, i, rows.length);
    if (r === 'failed') failed++;
    if (r === 'stopped') {
      process.stderr.write('results: stopped; run the same command again to continue\n');
      process.exit(130);
    }
  }
  if (failed > 0) process.stderr.write(`results: ${failed} row(s) failed (see their logs); the others are in the tables\n`);
}
if (!values['dry-run']) writeDoc();
