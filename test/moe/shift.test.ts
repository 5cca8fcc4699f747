/**
 * ShiftDetector: the z-rule at its hand-computed threshold; synthetic streams of Gaussian AE errors whose mean
 * jumps ×3 at batches 100, 230 and 400 (the last re-entering the first regime) are segmented within
 * window + patience − 1 batches with no false boundary, over many seeds; a stationary stream with a learning
 * curve raises nothing; thresholds override the calibration; the JSON state round trips mid-stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelShift, ShiftDetector, type ShiftDecision } from '../../src/moe/shift.ts';
import { Rng } from '../../src/util/rng.ts';

const none = (d: ShiftDecision) => d.kind === 'none';

test('the rule at its threshold: z = (m − μ)/(σ/√n) with the warm-up sample statistics', () => {
  // warm-up [1, 1.2]: μ = 1.1, σ = √0.02; window 1, patience 1, no ratio/σ floor → report iff e > 1.1 + 4·√0.02
  const thr = 1.1 + 4 * Math.sqrt(0.02);
  const make = () => {
    const d = new ShiftDetector({ warmup: 2, window: 1, patience: 1, z: 4, minRatio: 1, minRelStd: 0 });
    d.reset(0);
    assert.ok(none(d.observe({ current: 1, others: new Map() })));
    assert.ok(none(d.observe({ current: 1.2, others: new Map() })));
    return d;
  };
  assert.deepEqual(make().observe({ current: thr - 1e-9, others: new Map() }), { kind: 'none' });
  assert.deepEqual(make().observe({ current: thr + 1e-9, others: new Map() }), { kind: 'new' });
  // minRatio also has to hold: the same rise is ignored under minRatio 2
  const r = new ShiftDetector({ warmup: 2, window: 1, patience: 1, z: 4, minRatio: 2, minRelStd: 0 });
  r.reset(0);
  r.observe({ current: 1, others: new Map() });
  r.observe({ current: 1.2, others: new Map() });
  assert.deepEqual(r.observe({ current: 2.1, others: new Map() }), { kind: 'none' });
  assert.deepEqual(r.observe({ current: 2.3, others: new Map() }), { kind: 'new' });
  const c = make();
  assert.ok(Math.abs(c.calibration(0)!.mean - 1.1) < 1e-15 && Math.abs(c.calibration(0)!.std - Math.sqrt(0.02)) < 1e-15);
});

test('errors: observe before reset or after a report, bad options and inputs', () => {
  const d = new ShiftDetector({ warmup: 2, window: 1, patience: 1 });
  assert.throws(() => d.observe({ current: 1, others: new Map() }), /call reset\(subnet\)/);
  d.reset(0);
  assert.throws(() => d.observe({ current: NaN, others: new Map() }), /current is NaN/);
  assert.throws(() => d.observe({ current: 1, others: new Map([[1, Infinity]]) }), /others\.get\(1\) is Infinity/);
  d.observe({ current: 1, others: new Map() });
  d.observe({ current: 1.1, others: new Map() });
  assert.equal(d.observe({ current: 50, others: new Map() }).kind, 'new');
  assert.throws(() => d.observe({ current: 1, others: new Map() }), /a change was reported/);
  assert.throws(() => new ShiftDetector({ warmup: 1 }), /warmup must be an integer >= 2/);
  assert.throws(() => new ShiftDetector({ minRatio: 0.5 }), /minRatio must be a number >= 1/);
  assert.throws(() => new ShiftDetector({ zz: 1 } as never), /unknown option 'zz'/);
});

/**
 * A stream of regimes (distribution ids) and AEs: the AE of subnet s learned distribution dist[s]; its batch
 * error on a batch of distribution r is N(level·(1 + 2·e^(−age/4)), (0.1·mean)²) when r is its own (age: batches
 * it has trained, learning curve of the current AE), and 3× its level (CV 10 %) otherwise.
 */
function simulate(seed: number, boundaries: number[], regimes: number[], total: number, det: ShiftDetector) {
  const rng = new Rng(seed);
  const level = [1.0, 0.7, 1.4, 0.9];
  const owner: number[] = []; // subnet → distribution
  const age: number[] = [];
  let current = 0;
  owner[0] = regimes[0]!;
  age[0] = 0;
  det.reset(0);
  const reports: { at: number; decision: ShiftDecision }[] = [];
  const regimeAt = (i: number) => regimes[boundaries.filter((b) => b <= i).length]!;
  const error = (s: number, r: number) => {
    const own = owner[s] === r;
    const mean = own ? level[r]! * (s === current ? 1 + 2 * Math.exp(-age[s]! / 4) : 1) : 3 * level[owner[s]!]!;
    return mean * (1 + 0.1 * rng.normal());
  };
  for (let i = 0; i < total; i++) {
    const r = regimeAt(i);
    const cur = error(current, r);
    const others = new Map<number, number>();
    for (let s = 0; s < owner.length; s++) if (s !== current) others.set(s, error(s, r));
    if (owner[current] === r) age[current]!++;
    const d = det.observe({ current: cur, others });
    if (d.kind === 'none') continue;
    reports.push({ at: i, decision: d });
    if (d.kind === 'new') {
      current = owner.length;
      owner.push(r);
      age.push(0);
    } else {
      current = d.subnet;
    }
    det.reset(current);
  }
  return reports;
}

test('×3 jumps at 100, 230, 400 (re-entering the first regime): segmented within window + patience − 1, no false boundary', (t) => {
  const boundaries = [100, 230, 400];
  const regimes = [0, 1, 2, 0];
  const opts = { warmup: 20, window: 5, patience: 3 };
  const bound = opts.window + opts.patience - 1;
  const delays: number[] = [];
  for (let seed = 0; seed < 40; seed++) {
    const reports = simulate(seed, boundaries, regimes, 520, new ShiftDetector(opts));
    assert.equal(reports.length, 3, `seed ${seed}: reports ${JSON.stringify(reports)}`);
    reports.forEach((r, k) => {
      // delay: batches from the first new batch to the report, both counted
      const delay = r.at - boundaries[k]! + 1;
      assert.ok(delay >= 1 && delay <= bound, `seed ${seed}: boundary ${boundaries[k]} reported at ${r.at}`);
      delays.push(delay);
    });
    assert.deepEqual(
      reports.map((r) => r.decision),
      [{ kind: 'new' }, { kind: 'new' }, { kind: 'reenter', subnet: 0 }],
      `seed ${seed}`,
    );
  }
  const hist = new Map<number, number>();
  for (const d of delays) hist.set(d, (hist.get(d) ?? 0) + 1);
  t.diagnostic(`delays over ${delays.length} boundaries: ${[...hist].sort((a, b) => a[0] - b[0]).map(([d, n]) => `${d}: ${n}`).join(', ')} (bound ${bound})`);
});

test('a stationary stream with a learning curve raises nothing', () => {
  for (let seed = 100; seed < 110; seed++) assert.deepEqual(simulate(seed, [], [0], 2000, new ShiftDetector()), [], `seed ${seed}`);
});

test('thresholds override the calibration; uncalibrated subnets without one are never re-entered', () => {
  const run = (threshold: number | null): ShiftDecision => {
    const d = new ShiftDetector({ warmup: 5, window: 3, patience: 2 });
    const rng = new Rng(3);
    const noisy = (m: number) => m * (1 + 0.05 * rng.normal());
    d.reset(7);
    for (let i = 0; i < 30; i++) assert.ok(none(d.observe({ current: noisy(1), others: new Map([[2, noisy(3)], [5, noisy(0.8)]]) })));
    // the new distribution: subnet 2's AE now fits (error ≈ 1), subnet 5's even better, but 5 has no calibration or threshold
    const thresholds = threshold === null ? undefined : new Map([[2, threshold]]);
    for (let i = 0; i < 10; i++) {
      const out = d.observe({ current: noisy(3), others: new Map([[2, noisy(1)], [5, noisy(0.2)]]), ...(thresholds ? { thresholds } : {}) });
      if (out.kind !== 'none') return out;
    }
    return { kind: 'none' };
  };
  assert.deepEqual(run(1.5), { kind: 'reenter', subnet: 2 });
  assert.deepEqual(run(0.5), { kind: 'new' });
  assert.deepEqual(run(null), { kind: 'new' });
});

test('JSON round trip mid-stream: the restored detector continues identically', () => {
  const a = new ShiftDetector({ warmup: 10, window: 4, patience: 2 });
  const rng = new Rng(9);
  const stream = Array.from({ length: 300 }, (_, i) => ({ current: (i >= 150 && i < 200 ? 3 : 1) * (1 + 0.1 * rng.normal()), others: new Map([[1, 1 + 0.1 * rng.normal()]]) }));
  a.reset(0);
  let b: ShiftDetector | null = null;
  const da: ShiftDecision[] = [];
  const db: ShiftDecision[] = [];
  stream.forEach((obs, i) => {
    if (i === 120) b = ShiftDetector.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    for (const [det, log] of [[a, da], [b, db]] as const) {
      if (!det) continue;
      const r = det.observe(obs);
      if (i >= 120) log.push(r);
      if (r.kind !== 'none') det.reset(r.kind === 'reenter' ? r.subnet : 5);
    }
  });
  assert.deepEqual(db, da);
  assert.ok(da.some((r) => r.kind !== 'none'), 'the stream has a change after the snapshot');
  assert.deepEqual(b!.toJSON(), a.toJSON());
  const j = a.toJSON();
  assert.throws(() => ShiftDetector.fromJSON({ ...j, window: [1, 2, 3, 4, 5, 6] }), /shift detector\.window/);
  assert.throws(() => ShiftDetector.fromJSON({ ...j, options: { ...j.options, z: -1 } }), /shift detector\.options: .*z must be a positive number/);
  assert.throws(() => ShiftDetector.fromJSON({ ...j, phase: 'x' }), /shift detector\.phase/);
});

test('labelShift: armed only after a batch of mostly known labels; new vs re-entry by label ownership', () => {
  const o = { novelShare: 0.75, armShare: 0.25 };
  const cur = new Set([0, 1, 2]);
  const others = new Map([[1, new Set([5, 6])], [2, new Set([5, 6, 7])]]);
  // 3 of 4 samples new to the current subnet: share 0.75 ≥ novelShare
  assert.deepEqual(labelShift([0, 5, 6, 7], cur, others, 0, o), { decision: { kind: 'reenter', subnet: 2 }, share: 0.75 });
  // not armed: the previous batch was itself mostly new (or there was none)
  assert.deepEqual(labelShift([0, 5, 6, 7], cur, others, 0.5, o).decision, { kind: 'none' });
  assert.deepEqual(labelShift([0, 5, 6, 7], cur, others, null, o).decision, { kind: 'none' });
  // below novelShare: nothing
  assert.deepEqual(labelShift([0, 1, 6, 7], cur, others, 0, o), { decision: { kind: 'none' }, share: 0.5 });
  // new labels nobody owns → new; a subnet owning only half of them is not enough
  assert.deepEqual(labelShift([8, 9, 8, 9], cur, others, 0.25, o).decision, { kind: 'new' });
  assert.deepEqual(labelShift([5, 9, 5, 9], cur, others, 0.25, o).decision, { kind: 'new' });
  // ties between owners go to the lower id
  assert.deepEqual(labelShift([5, 6, 5, 6], cur, others, 0, o).decision, { kind: 'reenter', subnet: 1 });
});

test('labelShift on simulated class-incremental streams: every boundary at its first batch, nothing false', () => {
  const o = { novelShare: 0.75, armShare: 0.25 };
  for (const C of [10, 20]) {
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Rng(seed);
      const tasks = 6;
      const batches = 25;
      const subnets: Set<number>[] = [];
      let current = -1;
      let prev: number | null = null;
      const found: number[] = [];
      for (let t = 0; t < tasks; t++) {
        for (let b = 0; b < batches; b++) {
          const labels = Array.from({ length: 16 }, () => t * C + rng.int(C));
          if (current < 0) {
            subnets.push(new Set());
            current = 0;
          } else {
            const others = new Map(subnets.map((s, i) => [i, s] as const).filter(([i]) => i !== current));
            const d = labelShift(labels, subnets[current]!, others, prev, o).decision;
            assert.notEqual(d.kind, 'reenter', 'no task recurs');
            if (d.kind === 'new') {
              found.push(t * batches + b);
              subnets.push(new Set());
              current = subnets.length - 1;
            }
          }
          const seen = subnets[current]!;
          prev = labels.filter((l) => !seen.has(l)).length / labels.length;
          for (const l of labels) seen.add(l);
        }
      }
      assert.deepEqual(found, [1, 2, 3, 4, 5].map((t) => t * batches), `C ${C}, seed ${seed}`);
    }
  }
});
