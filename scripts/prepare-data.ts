/**
 * Puts the real datasets where the registry looks for them (`.data/`, git-ignored):
 *
 *   npx tsx scripts/prepare-data.ts [mnist|cifar10|tiny-imagenet|fashion-mnist|digits|wordnet|all]... [--warm-cache]
 *
 * - mnist: symlink `.data/mnist` → `../shared/datasets/mnist` (the official idx .gz files).
 * - cifar10, tiny-imagenet: unpack `../shared/datasets/<name>.tar.gz` into `.data/` with the system `tar`,
 *   once (a `.prepared` marker records a finished unpack).
 * - fashion-mnist: `apt-get download dataset-fashion-mnist` + `dpkg-deb -x`, idx files → `.data/fashion-mnist/`.
 * - digits: `apt-get download python3-sklearn` + `dpkg-deb -x`, `digits.csv.gz` → `.data/digits/`.
 * - wordnet: `apt-get download wordnet-base` + `dpkg-deb -x`, WordNet 3.0's `data.noun`, `index.noun` and the
 *   license → `.data/wordnet/` (read by src/data/wordnet.ts for pretraining captions and text pairs).
 * (`apt-get update` runs first when a download fails.) Every step is skipped when its result is present.
 * `--warm-cache` then loads each prepared dataset's splits once, which decodes JPEGs into the pixel cache
 * (Tiny ImageNet's train split takes minutes the first time).
 * Options: `--shared DIR` (default ../shared/datasets), `--data DIR` (default .data).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { loadDataset, DATASETS } from '../src/data/registry.ts';
import { labelHistogram } from '../src/data/dataset.ts';
import { scanImageFolder } from '../src/data/loaders/imagefolder.ts';
import { WordNet } from '../src/data/wordnet.ts';

const NAMES = ['mnist', 'cifar10', 'tiny-imagenet', 'fashion-mnist', 'digits', 'wordnet'] as const;
type Name = (typeof NAMES)[number];

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

function run(cmd: string, args: string[], cwd: string): boolean {
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  return r.status === 0;
}

function must(cmd: string, args: string[], cwd: string): void {
  if (!run(cmd, args, cwd)) throw new Error(`command failed: ${cmd} ${args.join(' ')} (in ${cwd})`);
}

/** `.data/mnist` → the shared idx folder (a symlink; nothing is copied). */
function prepareMnist(shared: string, data: string): void {
  const src = join(shared, 'mnist');
  const dst = join(data, 'mnist');
  if (!existsSync(join(src, 't10k-images-idx3-ubyte.gz'))) throw new Error(`${src}: MNIST idx files not found`);
  if (existsSync(join(dst, 't10k-images-idx3-ubyte.gz'))) {
    log(`mnist: already present at ${dst}`);
    return;
  }
  if (existsSync(dst) || isBrokenLink(dst)) rmSync(dst, { recursive: true, force: true });
  mkdirSync(data, { recursive: true });
  symlinkSync(src, dst, 'dir');
  log(`mnist: linked ${dst} → ${src}`);
}

function isBrokenLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink() && !existsSync(p);
  } catch {
    return false;
  }
}

/** Unpacks `<shared>/<archive>` into `data` once; `folder` is the archive's top folder. */
function unpack(shared: string, data: string, archive: string, folder: string, label: string): void {
  const tarball = join(shared, archive);
  const dst = join(data, folder);
  const marker = join(dst, '.prepared');
  if (existsSync(marker)) {
    log(`${label}: already unpacked at ${dst}`);
    return;
  }
  if (!existsSync(tarball)) throw new Error(`${tarball}: archive not found`);
  mkdirSync(data, { recursive: true });
  log(`${label}: unpacking ${tarball} into ${data} …`);
  const t0 = Date.now();
  must('tar', ['-xzf', tarball, '-C', data], data);
  if (!existsSync(dst)) throw new Error(`${tarball}: did not contain ${folder}/`);
  writeFileAtomic(marker, `unpacked from ${tarball} at ${new Date().toISOString()}\n`);
  log(`${label}: unpacked in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Downloads a Debian package into a scratch folder and extracts it; returns the extraction root. */
function debExtract(pkg: string, scratch: string): string {
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  log(`apt-get download ${pkg} …`);
  if (!run('apt-get', ['download', pkg], scratch)) {
    log('download failed; running apt-get update and retrying');
    must('apt-get', ['update'], scratch);
    must('apt-get', ['download', pkg], scratch);
  }
  const deb = readdirSync(scratch).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb in ${scratch}`);
  const root = join(scratch, 'root');
  must('dpkg-deb', ['-x', deb, root], scratch);
  return root;
}

function prepareFashion(data: string): void {
  const dst = join(data, 'fashion-mnist');
  const files = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
  if (files.every((f) => existsSync(join(dst, f)))) {
    log(`fashion-mnist: already present at ${dst}`);
    return;
  }
  const scratch = join(data, '.apt-fashion');
  const root = debExtract('dataset-fashion-mnist', scratch);
  const src = join(root, 'usr', 'share', 'datasets', 'fashion-mnist');
  mkdirSync(dst, { recursive: true });
  for (const f of files) copyFileSync(join(src, f), join(dst, f));
  rmSync(scratch, { recursive: true, force: true });
  log(`fashion-mnist: copied ${files.length} idx files to ${dst}`);
}

function prepareDigits(data: string): void {
  const dst = join(data, 'digits', 'digits.csv.gz');
  if (existsSync(dst)) {
    log(`digits: already present at ${dst}`);
    return;
  }
  const scratch = join(data, '.apt-sklearn');
  const root = debExtract('python3-sklearn', scratch);
  const src = join(root, 'usr', 'lib', 'python3', 'dist-packages', 'sklearn', 'datasets', 'data', 'digits.csv.gz');
  if (!existsSync(src)) throw new Error(`${src}: not in the python3-sklearn package`);
  mkdirSync(dirname(dst), { recursive: true });
  copyFileSync(src, dst);
  rmSync(scratch, { recursive: true, force: true });
  log(`digits: copied digits.csv.gz to ${dst}`);
}

const WORDNET_FILES = ['data.noun', 'index.noun'];

function prepareWordnet(data: string): void {
  const dst = join(data, 'wordnet');
  if (WORDNET_FILES.every((f) => existsSync(join(dst, f)))) {
    log(`wordnet: already present at ${dst}`);
    return;
  }
  const scratch = join(data, '.apt-wordnet');
  const root = debExtract('wordnet-base', scratch);
  const src = join(root, 'usr', 'share', 'wordnet');
  mkdirSync(dst, { recursive: true });
  for (const f of WORDNET_FILES) {
    if (!existsSync(join(src, f))) throw new Error(`${join(src, f)}: not in the wordnet-base package`);
    copyFileSync(join(src, f), join(dst, f));
  }
  const license = join(root, 'usr', 'share', 'doc', 'wordnet-base', 'copyright');
  if (existsSync(license)) copyFileSync(license, join(dst, 'LICENSE'));
  rmSync(scratch, { recursive: true, force: true });
  log(`wordnet: copied ${WORDNET_FILES.join(', ')} to ${dst}`);
}

/** Prints what the registry now sees (idx/csv datasets are loaded; image folders are only listed). */
async function summarise(name: Name, data: string, warm: boolean): Promise<void> {
  if (name === 'wordnet') {
    const t0 = Date.now();
    const wn = WordNet.load(join(data, 'wordnet'));
    log(`  wordnet: ${wn.size} noun synsets, read in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return;
  }
  const info = DATASETS[name]!;
  for (const split of info.splits.filter((s) => s !== 'all')) {
    const root = name === 'mnist' ? join(data, 'mnist') : join(data, info.defaultRoot!.replace(/^\.data\//, ''));
    if ((name === 'cifar10' || name === 'tiny-imagenet') && !warm) {
      const n =
        name === 'cifar10'
          ? scanImageFolder(join(root, split)).list.files.length
          : split === 'train'
            ? readdirSync(join(root, 'train')).reduce((a, id) => a + readdirSync(join(root, 'train', id, 'images')).length, 0)
            : readdirSync(join(root, 'val', 'images')).length;
      log(`  ${name}/${split}: ${n} image files`);
      continue;
    }
    const t0 = Date.now();
    let last = 0;
    const ds = await loadDataset({
      name,
      root,
      split,
      onProgress: (done, total) => {
        if (done - last >= 10000 || done === total) {
          last = done;
          process.stderr.write(`  decoding ${name}/${split}: ${done}/${total}\n`);
        }
      },
      onWarning: (m) => process.stderr.write(`  warning: ${m}\n`),
    });
    const hist = labelHistogram(ds.labels, ds.classNames.length);
    log(
      `  ${name}/${split}: ${ds.length} samples, ${ds.classNames.length} classes (min ${Math.min(...hist)}, max ${Math.max(...hist)} per class), loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      shared: { type: 'string' },
      data: { type: 'string' },
      'warm-cache': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    log('usage: npx tsx scripts/prepare-data.ts [mnist|cifar10|tiny-imagenet|fashion-mnist|digits|wordnet|all]... [--warm-cache] [--shared DIR] [--data DIR]');
    return;
  }
  const shared = resolve(values.shared ?? join(repoRoot, '..', 'shared', 'datasets'));
  const data = resolve(values.data ?? join(repoRoot, '.data'));
  const asked = positionals.length === 0 ? ['all'] : positionals;
  const bad = asked.filter((a) => a !== 'all' && !(NAMES as readonly string[]).includes(a));
  if (bad.length) throw new Error(`unknown dataset(s) ${bad.join(', ')}; choose from ${NAMES.join(', ')}, all`);
  const todo: Name[] = asked.includes('all') ? [...NAMES] : (asked as Name[]);
  // registry default roots are relative to the working directory: run from the repo root
  process.chdir(repoRoot);
  for (const name of todo) {
    if (name === 'mnist') prepareMnist(shared, data);
    if (name === 'cifar10') unpack(shared, data, 'cifar10-jpg.tar.gz', 'cifar10-jpg', name);
    if (name === 'tiny-imagenet') unpack(shared, data, 'tiny-imagenet-200.tar.gz', 'tiny-imagenet-200', name);
    if (name === 'fashion-mnist') prepareFashion(data);
    if (name === 'digits') prepareDigits(data);
    if (name === 'wordnet') prepareWordnet(data);
    await summarise(name, data, values['warm-cache']);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`prepare-data: ${(e as Error).message}\n`);
  process.exit(1);
});
