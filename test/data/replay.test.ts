import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createReplay, itemRef, streamItemResolver, type ReplayItemRef } from '../../src/data/replay.ts';
import type { StreamItem, StreamTask } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { memoryDataset } from './fixtures.ts';

const ds = memoryDataset('toy', 'train', [400, 400, 400, 400]);

function items(labels: number[], task = 0): StreamItem[] {
  return labels.map((label, index) => ({ dataset: ds, index, label, task }));
}

function resolverFor(list: StreamItem[]): (ref: ReplayItemRef) => StreamItem {
  const task: StreamTask = {
    id: 0, train: list, test: [], classes: [], trainTransform: (i) => i, testTransform: (i) => i, name: 't',
  };
  return streamItemResolver([task]);
}

describe('reservoir', () => {
  it('keeps every item with probability capacity/N (binomial tolerance)', () => {
    const N = 200;
    const cap = 20;
    const R = 2000;
    const stream = items(Array.from({ length: N }, (_, i) => i % 4));
    const hits = new Array<number>(N).fill(0);
    const rng = new Rng(123);
    for (let r = 0; r < R; r++) {
      const mem = createReplay({ kind: 'reservoir', capacity: cap });
      for (const it of stream) mem.add(it, rng);
      assert.equal(mem.size, cap);
      for (const it of mem.items()) hits[it.index]!++;
    }
    const p = cap / N;
    const mean = R * p;
    const sd = Math.sqrt(R * p * (1 - p));
    for (let i = 0; i < N; i++) assert.ok(Math.abs(hits[i]! - mean) < 5 * sd, `item ${i}: ${hits[i]} vs ${mean} ± ${sd}`);
    // early and late halves are kept equally often (sum of 100 counts; sd ≤ √100 · sd)
    const early = hits.slice(0, N / 2).reduce((a, b) => a + b, 0);
    const late = hits.slice(N / 2).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(early - late) < 5 * Math.sqrt(2 * (N / 2)) * sd, `early ${early} late ${late}`);
  });

  it('appends while below capacity, counts seen items, never exceeds capacity', () => {
    const mem = createReplay({ kind: 'reservoir', capacity: 5 });
    const rng = new Rng(1);
    const s = items([0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
    s.slice(0, 3).forEach((it) => mem.add(it, rng));
    assert.deepEqual(mem.items(), s.slice(0, 3));
    s.slice(3).forEach((it) => mem.add(it, rng));
    assert.equal(mem.size, 5);
    assert.equal(mem.seen, 10);
    assert.equal(mem.capacity, 5);
    const zero = createReplay({ kind: 'reservoir', capacity: 0 });
    s.forEach((it) => zero.add(it, rng));
    assert.equal(zero.size, 0);
  });
});

describe('per-class reservoir', () => {
  it('perClass bounds every class; capacity grows with the classes', () => {
    const mem = createReplay({ kind: 'per-class-reservoir', capacity: 0, perClass: 3 });
    const rng = new Rng(2);
    items(Array.from({ length: 100 }, (_, i) => i % 4)).forEach((it) => mem.add(it, rng));
    assert.deepEqual([...mem.classCounts().entries()].sort(), [[0, 3], [1, 3], [2, 3], [3, 3]]);
    assert.equal(mem.capacity, 12);
  });

  it('a shared capacity is split equally and older classes shrink when a class arrives', () => {
    const mem = createReplay({ kind: 'per-class-reservoir', capacity: 12 });
    const rng = new Rng(3);
    let idx = 0;
    const feed = (label: number, n: number) => {
      for (let k = 0; k < n; k++) mem.add({ dataset: ds, index: idx++, label, task: 0 }, rng);
    };
    feed(0, 20);
    assert.deepEqual([...mem.classCounts()], [[0, 12]]);
    feed(1, 20);
    assert.deepEqual([...mem.classCounts()].sort(), [[0, 6], [1, 6]]);
    feed(2, 20);
    assert.deepEqual([...mem.classCounts()].sort(), [[0, 4], [1, 4], [2, 4]]);
    feed(3, 2);
    assert.deepEqual([...mem.classCounts()].sort(), [[0, 3], [1, 3], [2, 3], [3, 2]]);
    assert.ok(mem.size <= 12);
  });

  it('within a class, inclusion is uniform (binomial tolerance)', () => {
    const hits = new Array<number>(40).fill(0);
    const rng = new Rng(4);
    const R = 1500;
    for (let r = 0; r < R; r++) {
      const mem = createReplay({ kind: 'per-class-reservoir', capacity: 0, perClass: 8 });
      for (let i = 0; i < 40; i++) mem.add({ dataset: ds, index: i, label: 0, task: 0 }, rng);
      for (const it of mem.items()) hits[it.index]!++;
    }
    const p = 8 / 40;
    const sd = Math.sqrt(R * p * (1 - p));
    for (const h of hits) assert.ok(Math.abs(h - R * p) < 5 * sd, `${h}`);
  });

  it('groupBy task-label keeps (task, label) pairs apart', () => {
    const mem = createReplay({ kind: 'per-class-reservoir', capacity: 0, perClass: 2, groupBy: 'task-label' });
    const rng = new Rng(5);
    for (const task of [0, 1]) items([0, 0, 0, 1, 1, 1], task).forEach((it, k) => mem.add({ ...it, index: k + 10 * task }, rng));
    assert.equal(mem.size, 8);
    assert.equal(mem.classCounts().size, 4);
  });
});

describe('class-balanced (CBRS)', () => {
  it('when full, a new class evicts from the largest class', () => {
    const mem = createReplay({ kind: 'class-balanced', capacity: 4 });
    const rng = new Rng(12);
    const s = items([0, 0, 0, 0, 1, 1, 2]);
    s.slice(0, 4).forEach((it) => mem.add(it, rng));
    mem.add(s[4]!, rng);
    assert.deepEqual([...mem.classCounts()].sort(), [[0, 3], [1, 1]]);
    mem.add(s[5]!, rng);
    assert.deepEqual([...mem.classCounts()].sort(), [[0, 2], [1, 2]]);
    mem.add(s[6]!, rng); // classes 0 and 1 tie as largest: one of them gives a slot
    const c = mem.classCounts();
    assert.equal(c.get(2), 1);
    assert.deepEqual([c.get(0), c.get(1)].sort(), [1, 2]);
    assert.equal(mem.size, 4);
  });

  it('a minority class keeps all its items; majority classes share the rest', () => {
    const labels = [...new Array<number>(100).fill(0), ...new Array<number>(10).fill(1), ...new Array<number>(30).fill(2)];
    new Rng(6).shuffle(labels);
    const mem = createReplay({ kind: 'class-balanced', capacity: 30 });
    const rng = new Rng(7);
    items(labels).forEach((it) => mem.add(it, rng));
    const counts = mem.classCounts();
    assert.equal(mem.size, 30);
    assert.equal(counts.get(1), 10);
    assert.ok(Math.abs(counts.get(0)! - counts.get(2)!) <= 1, JSON.stringify([...counts]));
  });
});

describe('sampling, features and state', () => {
  it('sample returns distinct stored items and honours the filter', () => {
    const mem = createReplay({ kind: 'reservoir', capacity: 10 });
    const rng = new Rng(8);
    const s = items([0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
    s.forEach((it) => mem.add(it, rng));
    const got = mem.sample(6, rng);
    assert.equal(new Set(got).size, 6);
    for (const g of got) assert.ok(mem.has(g));
    assert.equal(mem.sample(50, rng).length, 10);
    const ones = mem.sample(10, rng, (it) => it.label === 1);
    assert.equal(ones.length, 3);
    assert.ok(ones.every((it) => it.label === 1));
  });

  it('features stick to stored items and vanish when the item is replaced', () => {
    const mem = createReplay({ kind: 'reservoir', capacity: 2 });
    const rng = new Rng(9);
    const s = items(new Array<number>(50).fill(0));
    mem.add(s[0]!, rng);
    mem.add(s[1]!, rng);
    mem.setFeature(s[0]!, Float32Array.from([1, 2, 3]));
    assert.deepEqual([...mem.getFeature(s[0]!)!], [1, 2, 3]);
    mem.setFeature(s[5]!, Float32Array.from([9])); // not stored: ignored
    assert.equal(mem.getFeature(s[5]!), undefined);
    for (const it of s.slice(2)) mem.add(it, rng);
    if (!mem.has(s[0]!)) assert.equal(mem.getFeature(s[0]!), undefined);
  });

  for (const spec of [
    { kind: 'reservoir', capacity: 7 },
    { kind: 'per-class-reservoir', capacity: 9 },
    { kind: 'class-balanced', capacity: 6 },
  ] as const) {
    it(`${spec.kind}: state() survives JSON and continues identically`, () => {
      const stream = items(Array.from({ length: 80 }, (_, i) => (i * 7) % 4));
      const a = createReplay(spec);
      const rng = new Rng(10);
      stream.slice(0, 40).forEach((it) => a.add(it, rng));
      a.setFeature(a.items()[0]!, Float32Array.from([0.5, -1.25, 3e-8]));
      const saved = JSON.parse(JSON.stringify(a.state()));
      const b = createReplay(spec);
      b.restore(saved, resolverFor(stream));
      assert.deepEqual(b.items().map(itemRef), a.items().map(itemRef));
      assert.equal(b.seen, a.seen);
      assert.deepEqual([...b.getFeature(b.items()[0]!)!], [...Float32Array.from([0.5, -1.25, 3e-8])]);
      const rngB = new Rng(rng.getState());
      stream.slice(40).forEach((it) => a.add(it, rng));
      stream.slice(40).forEach((it) => b.add(it, rngB));
      assert.deepEqual(b.items().map(itemRef), a.items().map(itemRef));
      assert.throws(() => createReplay({ kind: 'reservoir', capacity: 3 }).restore(saved, resolverFor(stream)), /saved for/);
    });
  }

  it('bad specs are rejected', () => {
    assert.throws(() => createReplay({ kind: 'reservoir', capacity: -1 }), /capacity/);
    assert.throws(() => createReplay({ kind: 'per-class-reservoir', capacity: 0 }), /perClass or a capacity/);
    assert.throws(() => createReplay({ kind: 'fifo' as never, capacity: 3 }), /unknown replay kind/);
  });
});
