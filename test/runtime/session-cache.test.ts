/**
 * The bounded session cache (LRU eviction, evicted handles, busy sessions kept) and structured session keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Engine, EngineError, SESSION_KEY_MAX, sessionKey, type TensorData } from '../../src/runtime/index.ts';
import { matmulAddModel } from './onnx-fixtures.ts';

function f32(dims: number[], values: number[]): TensorData {
  return { dtype: 'float32', dims, data: Float32Array.from(values) };
}

const FEEDS = { x: f32([1, 2], [1, 2]), W: f32([2, 2], [1, 0, 0, 1]), b: f32([2], [0.5, 0.5]) };

for (const worker of [true, false]) {
  test(`LRU (${worker ? 'worker' : 'in-process'}): with maxSessions 2 a third session evicts the least recently used`, async () => {
    const engine = await Engine.create({ worker, threads: 1, maxSessions: 2 });
    try {
      const builds: string[] = [];
      const build = (k: string) => () => {
        builds.push(k);
        return matmulAddModel(2, 2);
      };
      const a = await engine.session('a', build('a'));
      const b = await engine.session('b', build('b'));
      assert.deepEqual(engine.keys, ['a', 'b']);
      await engine.run(a, FEEDS); // a is now the most recently used
      assert.deepEqual(engine.keys, ['b', 'a']);
      const c = await engine.session('c', build('c'));
      assert.deepEqual(engine.keys, ['a', 'c'], 'b was evicted');
      assert.equal(engine.has('b'), false);
      assert.deepEqual(
        { sessions: engine.stats().sessions, built: engine.stats().built, evicted: engine.stats().evicted },
        { sessions: 2, built: 3, evicted: 1 },
      );
      await assert.rejects(
        engine.run(b, FEEDS),
        (e: unknown) => e instanceof EngineError && /^session 'b': run failed: the session was evicted from the cache; ask engine\.session again/.test(e.message),
      );
      // a and c still work; a hit refreshes the order too
      assert.deepEqual([...(await engine.run(c, FEEDS)).y!.data], [1.5, 2.5]);
      assert.equal(await engine.session('a', build('a')), a);
      assert.deepEqual(engine.keys, ['c', 'a']);
      // asking again rebuilds b (evicting c)
      const b2 = await engine.session('b', build('b'));
      assert.notEqual(b2.id, b.id);
      assert.deepEqual(builds, ['a', 'b', 'c', 'b']);
      assert.deepEqual(engine.keys, ['a', 'b']);
      assert.deepEqual([...(await engine.run(b2, FEEDS)).y!.data], [1.5, 2.5]);
      await assert.rejects(engine.run(c, FEEDS), /'c': run failed: the session was evicted/);
      assert.equal(engine.stats().evicted, 2);
    } finally {
      await engine.close();
    }
  });
}

test('LRU: a session that is running or being created is not evicted; the bound is restored when it is idle', async () => {
  const engine = await Engine.create({ worker: true, threads: 1, maxSessions: 1 });
  try {
    const a = await engine.session('a', () => matmulAddModel(2, 2));
    const running = engine.run(a, FEEDS); // dispatched now: a is busy until it settles
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pendingB = engine.session('b', async () => {
      await gate;
      return matmulAddModel(2, 2);
    });
    assert.deepEqual(engine.keys, ['a', 'b'], 'both kept: a runs, b is being created');
    assert.deepEqual([...(await running).y!.data], [1.5, 2.5], 'the run of a completes');
    // a became idle and is not the most recently used (b is): it goes
    assert.deepEqual(engine.keys, ['b']);
    assert.equal(engine.stats().evicted, 1);
    release();
    const b = await pendingB;
    assert.deepEqual([...(await engine.run(b, FEEDS)).y!.data], [1.5, 2.5]);
    await assert.rejects(engine.run(a, FEEDS), /was evicted from the cache/);
  } finally {
    await engine.close();
  }
});

test('maxSessions is validated; the default bound is 24', async () => {
  await assert.rejects(Engine.create({ worker: false, maxSessions: 0 }), /maxSessions must be a positive integer or Infinity, got 0/);
  await assert.rejects(Engine.create({ worker: false, maxSessions: 1.5 }), /maxSessions/);
  const engine = await Engine.create({ worker: false, threads: 1 });
  try {
    assert.equal(engine.maxSessions, 24);
  } finally {
    await engine.close();
  }
});

test('sessionKey: sorted keys, arrays in order, nested objects sorted, unambiguous', () => {
  const k = sessionKey({ tower: 'image', kind: 'moe-train', experts: 4, trainable: ['router', 'e0'], cfg: { b: 1, a: [true, null] } });
  assert.equal(k, 'cfg={"a":[true,null],"b":1}|experts=4|kind=moe-train|tower=image|trainable=["router","e0"]');
  assert.equal(sessionKey({ trainable: ['router', 'e0'], experts: 4, kind: 'moe-train', tower: 'image', cfg: { a: [true, null], b: 1 } }), k);
  assert.notEqual(sessionKey({ trainable: ['e0', 'router'] }), sessionKey({ trainable: ['router', 'e0'] }));
  assert.equal(sessionKey({ a: 1, skipped: undefined }), 'a=1');
  // separators inside values cannot forge other parts
  assert.notEqual(sessionKey({ a: 'x|b=y' }), sessionKey({ a: 'x', b: 'y' }));
  assert.equal(sessionKey({ a: 'x|b=y%' }), 'a=x%7Cb%3Dy%25');
  assert.throws(() => sessionKey({ build: () => 1 }), /'build' is a function/);
  assert.throws(() => sessionKey({ w: new Float32Array(2) }), /'w' is a typed array/);
  assert.throws(() => sessionKey({ nested: { when: new Date(0) } }), /'nested\.when' is a Date/);
  assert.throws(() => sessionKey({}), /at least one defined value/);
});

test('sessionKey: a long key keeps a readable prefix and a SHA-256 of the whole key', () => {
  const parts = { kind: 'moe-train', trainable: Array.from({ length: 40 }, (_, i) => `block${i}/adapter`) };
  const full = `kind=moe-train|trainable=${JSON.stringify(parts.trainable)}`;
  assert.ok(full.length > SESSION_KEY_MAX);
  const k = sessionKey(parts);
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 16);
  assert.equal(k, `${full.slice(0, 120)}…#${hash}`);
  assert.ok(k.length <= SESSION_KEY_MAX);
  const other = sessionKey({ ...parts, trainable: [...parts.trainable.slice(0, 39), 'block39/other'] });
  assert.equal(other.slice(0, 120), k.slice(0, 120), 'same readable prefix');
  assert.notEqual(other, k, 'different hash');
});

test('engine.session accepts key parts', async () => {
  const engine = await Engine.create({ worker: false, threads: 1 });
  try {
    let builds = 0;
    const build = () => {
      builds++;
      return matmulAddModel(2, 2);
    };
    const h = await engine.session({ kind: 'mm', k: 2 }, build);
    assert.equal(h.key, 'k=2|kind=mm');
    assert.equal(await engine.session({ k: 2, kind: 'mm' }, build), h);
    assert.equal(await engine.session('k=2|kind=mm', build), h);
    assert.equal(builds, 1);
    assert.equal(engine.has({ kind: 'mm', k: 2 }), true);
    await engine.release({ k: 2, kind: 'mm' });
    assert.equal(engine.has('k=2|kind=mm'), false);
  } finally {
    await engine.close();
  }
});
