import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildStream, siBlurryClassCounts, taskSizes, StreamSpecSchema, type StreamSpecInput } from '../../src/data/streams.ts';
import { materialize } from '../../src/data/batch.ts';
import { rotate, gaussianBlur } from '../../src/data/image-ops.ts';
import type { DatasetSpec } from '../../src/data/registry.ts';
import type { Dataset, Stream, StreamItem } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { memoryDataset } from './fixtures.ts';

// 10 classes with uneven sizes; test split has 3 per class
const TRAIN_SIZES = [30, 25, 40, 35, 20, 30, 45, 25, 30, 20];
const data: Record<string, Dataset> = {
  'toy/train': memoryDataset('toy', 'train', TRAIN_SIZES),
  'toy/test': memoryDataset('toy', 'test', TRAIN_SIZES.map(() => 3)),
  'five/train': memoryDataset('five', 'train', [8, 8, 8, 8, 8], ['five {}']),
  'five/test': memoryDataset('five', 'test', [2, 2, 2, 2, 2], ['five {}']),
};
const loads: DatasetSpec[] = [];
const opts = {
  loadDataset: async (spec: DatasetSpec): Promise<Dataset> => {
    loads.push(spec);
    const ds = data[`${spec.name}/${spec.split}`];
    if (!ds) throw new Error(`no fixture ${spec.name}/${spec.split}`);
    if (spec.limitPerClass === undefined) return ds;
    const { SubsetDataset, selectPerClass } = await import('../../src/data/dataset.ts');
    return new SubsetDataset(ds, selectPerClass(ds.labels, spec.limitPerClass));
  },
};

function key(it: StreamItem): string {
  return `${it.dataset.name}/${it.dataset.split}#${it.index}`;
}

/** Every training index of `ds` whose class is in `classes` appears exactly once over all tasks. */
function assertExactlyOnce(s: Stream, ds: Dataset, classes: Set<number>): void {
  const seen = new Map<number, number>();
  for (const t of s.tasks) for (const it of t.train) seen.set(it.index, (seen.get(it.index) ?? 0) + 1);
  for (let i = 0; i < ds.length; i++) {
    const want = classes.has(ds.labels[i]!) ? 1 : 0;
    assert.equal(seen.get(i) ?? 0, want, `sample ${i} (class ${ds.labels[i]}) appears ${seen.get(i) ?? 0}×`);
  }
}

/** Labels are consistent: the stream's class name of each item is its dataset class name. */
function assertLabelsConsistent(s: Stream): void {
  for (const t of s.tasks) {
    for (const it of [...t.train, ...t.test]) {
      assert.equal(it.task, t.id);
      assert.equal(s.classNames[it.label], it.dataset.classNames[it.dataset.labels[it.index]!]);
    }
  }
}

function assertJson(s: Stream): Record<string, unknown> {
  const d = s.describe();
  assert.deepEqual(JSON.parse(JSON.stringify(d)), d);
  return d;
}

describe('class-incremental streams', () => {
  it('tasks are disjoint, each sample appears once, test items are the tasks\' classes', async () => {
    const s = await buildStream({ kind: 'class-incremental', dataset: 'toy', increment: 3, initialIncrement: 4, seed: 7 }, opts);
    assert.equal(s.kind, 'class-incremental');
    assert.deepEqual(s.tasks.map((t) => t.classes.length), [4, 3, 3]);
    assertExactlyOnce(s, data['toy/train']!, new Set(TRAIN_SIZES.map((_, c) => c)));
    assertLabelsConsistent(s);
    const owner = new Map<number, number>();
    s.tasks.forEach((t) => {
      for (const c of t.classes) {
        assert.ok(!owner.has(c), `class ${c} in two tasks`);
        owner.set(c, t.id);
      }
      assert.deepEqual(t.newClasses, t.classes);
      assert.equal(t.test.length, 3 * t.classes.length);
      for (const it of t.test) assert.ok(t.classes.includes(it.label));
    });
    // global labels are positions in the class order: task 0 holds 0..3
    assert.deepEqual(s.tasks[0]!.classes, [0, 1, 2, 3]);
    const d = assertJson(s);
    assert.equal((d.spec as { seed: number }).seed, 7);
    assert.equal(d.totalTrain, TRAIN_SIZES.reduce((a, b) => a + b, 0));
    assert.equal(s.templatesFor(5)[0], 'a photo of a {}.');
  });

  it('same seed → same stream, another seed → another', async () => {
    const spec: StreamSpecInput = { kind: 'class-incremental', dataset: 'toy', tasks: 5, seed: 3 };
    const a = await buildStream(spec, opts);
    const b = await buildStream(spec, opts);
    const c = await buildStream({ ...spec, seed: 4 }, opts);
    const order = (s: Stream) => s.tasks.flatMap((t) => t.train.map(key));
    assert.deepEqual(order(a), order(b));
    assert.notDeepEqual(order(a), order(c));
    assert.deepEqual(a.describe(), b.describe());
  });

  it('explicit class order and tasks, limits per class', async () => {
    const s = await buildStream(
      { kind: 'class-incremental', dataset: 'toy', classOrder: [9, 8, 7, 6], tasks: 2, limitPerClass: 5, testLimitPerClass: 1 },
      opts,
    );
    assert.deepEqual(s.classNames, ['toy-class9', 'toy-class8', 'toy-class7', 'toy-class6']);
    assert.deepEqual(s.tasks.map((t) => t.train.length), [10, 10]);
    assert.deepEqual(s.tasks.map((t) => t.test.length), [2, 2]);
    assertLabelsConsistent(s);
  });

  it('task sizes: increments, remainders, equal split', () => {
    assert.deepEqual(taskSizes(10, { increment: 3 }), [3, 3, 3, 1]);
    assert.deepEqual(taskSizes(100, { increment: 10, initialIncrement: 50 }), [50, 10, 10, 10, 10, 10]);
    assert.deepEqual(taskSizes(10, { tasks: 3 }), [4, 3, 3]);
    assert.throws(() => taskSizes(10, { increment: 5, tasks: 3 }), /disagrees/);
  });
});

describe('Si-Blurry streams', () => {
  it('class counts: floor(C·N/100) and the rest rounded down to multiples of T', () => {
    assert.deepEqual(siBlurryClassCounts(10, 3, 50), { disjoint: 3, blurry: 6 });
    assert.deepEqual(siBlurryClassCounts(100, 5, 50), { disjoint: 50, blurry: 50 });
    assert.deepEqual(siBlurryClassCounts(200, 5, 0), { disjoint: 0, blurry: 200 });
    assert.deepEqual(siBlurryClassCounts(10, 4, 100), { disjoint: 8, blurry: 0 });
  });

  for (const randomNM of [false, true]) {
    it(`${randomNM ? 'stochastic' : 'fixed'} N/M: coverage, dropped classes, disjoint classes in one task`, async () => {
      const s = await buildStream({ kind: 'si-blurry', dataset: 'toy', tasks: 3, n: 50, m: 30, randomNM, seed: 5 }, opts);
      const d = assertJson(s) as {
        classOrder: number[];
        droppedClasses: number[];
        disjointClasses: number[][];
        blurryClasses: number[][];
        blurredSamples: number;
        blurredPerTask: number[];
      };
      assert.equal(d.classOrder.length, 9);
      assert.equal(d.droppedClasses.length, 1);
      assert.equal(s.classNames.length, 9);
      assertExactlyOnce(s, data['toy/train']!, new Set(d.classOrder));
      assertLabelsConsistent(s);
      // disjoint classes only ever occur in their own task
      d.disjointClasses.forEach((group, t) => {
        for (const c of group) {
          for (const task of s.tasks) assert.equal(task.classes.includes(c), task.id === t, `disjoint class ${c}`);
        }
      });
      // test items: every used class exactly once over the tasks, in the task where it first appears
      const testClasses = s.tasks.flatMap((t) => [...new Set(t.test.map((i) => i.label))]);
      assert.deepEqual([...testClasses].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
      assert.equal(d.blurredPerTask.reduce((a, b) => a + b, 0), d.blurredSamples);
      if (!randomNM) {
        assert.deepEqual(d.disjointClasses.map((g) => g.length), [1, 1, 1]);
        assert.deepEqual(d.blurryClasses.map((g) => g.length), [2, 2, 2]);
      }
    });
  }

  it('fixed N/M: the blurred share is M% of each task\'s blurry samples (within rounding)', async () => {
    const m = 30;
    const s = await buildStream({ kind: 'si-blurry', dataset: 'toy', tasks: 3, n: 50, m, randomNM: false, seed: 11 }, opts);
    const d = s.describe() as { classOrder: number[]; blurryClasses: number[][]; blurredSamples: number };
    const sizes = d.blurryClasses.map((g) => g.reduce((a, label) => a + TRAIN_SIZES[d.classOrder[label]!]!, 0));
    const expected = sizes.reduce((a, b) => a + Math.floor((b * m) / 100), 0);
    assert.equal(d.blurredSamples, expected);
    const total = sizes.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(d.blurredSamples / total - m / 100) <= 3 / total);
    // blurry samples really travel: some items of a blurry class are outside its home task
    const home = new Map<number, number>();
    d.blurryClasses.forEach((g, t) => g.forEach((c) => home.set(c, t)));
    const moved = s.tasks.reduce((a, t) => a + t.train.filter((it) => home.has(it.label) && home.get(it.label) !== t.id).length, 0);
    // each pooled sample lands in another task with probability (T−1)/T: expect ≈ 2/3 of the pool
    assert.ok(moved > 0.4 * expected && moved < 0.9 * expected, `moved ${moved} of ${expected}`);
  });

  it('stochastic N/M: blurred samples at most ⌊B·M/100⌋; same seed same stream; N=100 means no blurry classes', async () => {
    const spec: StreamSpecInput = { kind: 'si-blurry', dataset: 'toy', tasks: 4, n: 20, m: 40, seed: 2 };
    const a = await buildStream(spec, opts);
    const b = await buildStream(spec, opts);
    const c = await buildStream({ ...spec, seed: 9 }, opts);
    const order = (s: Stream) => s.tasks.map((t) => t.train.map(key));
    assert.deepEqual(order(a), order(b));
    assert.notDeepEqual(order(a), order(c));
    const d = a.describe() as { classOrder: number[]; blurryClasses: number[][]; blurredSamples: number };
    const B = d.blurryClasses.flat().reduce((acc, label) => acc + TRAIN_SIZES[d.classOrder[label]!]!, 0);
    assert.ok(d.blurredSamples <= Math.floor((B * 40) / 100));
    const pure = await buildStream({ kind: 'si-blurry', dataset: 'toy', tasks: 5, n: 100, m: 10, randomNM: false, seed: 1 }, opts);
    assert.deepEqual(pure.tasks.map((t) => t.classes.length), [2, 2, 2, 2, 2]);
    assert.equal((pure.describe() as { blurredSamples: number }).blurredSamples, 0);
  });
});

describe('domain and multi-dataset streams', () => {
  it('domain: shared labels, each task\'s test transform applied to its test items', async () => {
    const s = await buildStream(
      {
        kind: 'domain',
        tasks: [
          { dataset: 'five', transform: [{ rotate: 0 }] },
          { dataset: 'five', transform: [{ rotate: 90 }] },
          { dataset: 'five', name: 'blurred', testTransform: [{ blur: { kernel: 3, sigma: 1 } }] },
        ],
        seed: 1,
      },
      opts,
    );
    assert.equal(s.kind, 'domain');
    assert.deepEqual(s.classNames, data['five/train']!.classNames);
    assert.deepEqual(s.tasks.map((t) => t.name), ['five', 'five', 'blurred']);
    for (const t of s.tasks) {
      assert.equal(t.train.length, 40);
      assert.equal(t.test.length, 10);
      assert.deepEqual(t.classes, [0, 1, 2, 3, 4]);
    }
    assert.deepEqual(s.tasks[1]!.newClasses, []);
    const rng = new Rng(0);
    const t1 = s.tasks[1]!.test.slice(0, 3);
    const got = materialize(t1, s.tasks, false, rng);
    t1.forEach((it, k) => assert.deepEqual(got[k]!.pixels, rotate(it.dataset.image(it.index), 90).pixels));
    const t0 = s.tasks[0]!.test.slice(0, 2);
    materialize(t0, s.tasks, false, rng).forEach((im, k) => assert.deepEqual(im.pixels, t0[k]!.dataset.image(t0[k]!.index).pixels));
    const t2 = s.tasks[2]!.test.slice(0, 2);
    materialize(t2, s.tasks, false, rng).forEach((im, k) =>
      assert.deepEqual(im.pixels, gaussianBlur(t2[k]!.dataset.image(t2[k]!.index), 3, 1).pixels),
    );
    assertJson(s);
  });

  it('domain: rotate shortcut and parts split every class into contiguous chunks', async () => {
    const s = await buildStream(
      { kind: 'domain', tasks: [0, 1, 2, 3].map((k) => ({ dataset: 'five', rotate: 45 * k, part: { index: k, of: 4 } })) },
      opts,
    );
    // 8 train samples per class → 2 per part; 2 test per class → chunks [0,0], [0,1), [1,1), [1,2): sizes 0,1,0,1
    assert.deepEqual(s.tasks.map((t) => t.train.length), [10, 10, 10, 10]);
    assert.deepEqual(s.tasks.map((t) => t.test.length), [0, 5, 0, 5]);
    const all = s.tasks.flatMap((t) => t.train.map((i) => i.index)).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 40 }, (_, i) => i));
    const d = s.describe() as { testTransforms: unknown[] };
    assert.deepEqual(d.testTransforms[1], [{ rotate: { deg: 45, crop: true } }]);
    assert.equal(s.tasks[2]!.name, 'five rot=90 part=2/4');
  });

  it('domain: datasets with different class counts are rejected', async () => {
    await assert.rejects(buildStream({ kind: 'domain', tasks: ['five', 'toy'] }, opts), /share one label space/);
  });

  it('multi-dataset: labels offset by earlier class counts, templates per label', async () => {
    const s = await buildStream({ kind: 'multi-dataset', datasets: ['five', 'toy', 'five'], seed: 4 }, opts);
    assert.equal(s.classNames.length, 20);
    assert.deepEqual(s.tasks.map((t) => t.newClasses), [
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
      [15, 16, 17, 18, 19],
    ]);
    assert.equal(s.classNames[5], 'toy-class0');
    assert.equal(s.classNames[15], 'five-class0');
    assert.equal(s.templatesFor(2)[0], 'five {}');
    assert.equal(s.templatesFor(7)[0], 'a photo of a {}.');
    for (const t of s.tasks) for (const it of [...t.train, ...t.test]) assert.ok(t.newClasses!.includes(it.label));
    assert.deepEqual((s.describe() as { labelOffsets: number[] }).labelOffsets, [0, 5, 15]);
    assertLabelsConsistent(s);
  });

  it('class subsets: `classes: odd` / a list keeps only those classes, relabelled by position', async () => {
    // toy has 10 classes named toy-class0..9; sorted ids are the names, so odd = labels 1, 3, 5, 7, 9
    const m = await buildStream({ kind: 'multi-dataset', datasets: ['five', { dataset: 'toy', classes: 'odd' }], seed: 4 }, opts);
    assert.deepEqual(m.classNames.slice(5), ['toy-class1', 'toy-class3', 'toy-class5', 'toy-class7', 'toy-class9']);
    assert.deepEqual(m.tasks[1]!.newClasses, [5, 6, 7, 8, 9]);
    for (const it of [...m.tasks[1]!.train, ...m.tasks[1]!.test]) assert.equal(it.dataset.labels[it.index]! % 2, 1);
    assertLabelsConsistent(m);
    const ci = await buildStream({ kind: 'class-incremental', dataset: 'toy', classes: [2, 4, 6, 8], tasks: 2, seed: 3 }, opts);
    const used = new Set(ci.tasks.flatMap((t) => t.train.map((it) => it.dataset.labels[it.index]!)));
    assert.deepEqual([...used].sort(), [2, 4, 6, 8]);
    assertLabelsConsistent(ci);
    const sb = await buildStream({ kind: 'si-blurry', dataset: 'toy', classes: 'even', tasks: 2, n: 50, m: 10, seed: 3 }, opts);
    assert.equal(sb.classNames.length, 4); // 5 even classes: 2 disjoint + 2 blurry (multiples of T), 1 dropped
    assert.ok(sb.classNames.every((n) => Number(n.replace('toy-class', '')) % 2 === 0));
    await assert.rejects(buildStream({ kind: 'multi-dataset', datasets: [{ dataset: 'toy', classes: [3, 12] }] }, opts), /classes 12 are out of range/);
  });

  it('datasets are loaded once per build (memoised)', async () => {
    loads.length = 0;
    await buildStream({ kind: 'domain', tasks: ['five', 'five', 'five'] }, opts);
    assert.equal(loads.length, 2);
  });
});

describe('stream spec validation', () => {
  it('rejects unknown kinds, bad fields and bad transforms with paths', async () => {
    await assert.rejects(buildStream({ kind: 'blurry' } as never, opts), /invalid stream spec/);
    await assert.rejects(buildStream({ kind: 'class-incremental', dataset: 'toy' } as never, opts), /needs `tasks` or `increment`/);
    await assert.rejects(
      buildStream({ kind: 'si-blurry', dataset: 'toy', m: 120 } as never, opts),
      /invalid stream spec: m:/,
    );
    await assert.rejects(
      buildStream({ kind: 'domain', tasks: [{ dataset: 'five', transform: [{ spin: 3 }] }] } as never, opts),
      /tasks\.0\.transform\.0: a transform step/,
    );
    const parsed = StreamSpecSchema.parse({ kind: 'si-blurry', dataset: 'cifar100' });
    assert.deepEqual(parsed, { kind: 'si-blurry', dataset: 'cifar100', tasks: 5, n: 50, m: 10, randomNM: true, seed: 0 });
  });
});
