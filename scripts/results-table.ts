/**
 * The results tables (markdown) from docs/results/<benchmark>/<label>/: `summary.json` (several seeds, written by
 * `npm run results`; cells are mean ± sample std over the seeds, `n` the number of seeds) or, for older rows,
 * `metrics.json` + `cost.json` of one run:
 *   npx tsx scripts/results-table.ts [RESULTS_DIR] > /tmp/tables.md
 * Columns: A_auc / A_last / F_last (class-incremental numbers: pooled over every exposed class), Transfer /
 * Average / Last (MTIL numbers from the task-protocol accuracy matrix; Transfer and Average need evalFutureTasks),
 * online (prequential), trainable parameters, experts per block at the end, seconds per 1000 stream samples,
 * DDAS routing accuracy, merge time as a share of the stream time, seeds.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { seedStat } from '../src/run/seeds.ts';

const ORDER = ['zeroshot-clip', 'cm-moe', 'cm-moe-taskfree', 'cm-moe-taskfree-ddas', 'cm-moe-usage-average', 'cm-moe-finetune-experts', 'cm-moe-unbounded', 'moe-adapters', 'moe-adapters-ddas-relative', 'adapter-clip', 'lora-clip', 'finetune', 'er', 'lwf', 'ewc'];
const json = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;

/** mean, std (null for one seed) and n of one number, from a summary or a single run. */
interface Cell {
  mean: number | null;
  std: number | null;
}

/** A row's numbers by name: metrics and the cost numbers the table shows. */
interface RowData {
  metric: (k: string) => Cell;
  cost: (k: string) => Cell;
  seeds: number;
}

function fromSummary(dir: string): RowData {
  const s = json(join(dir, 'summary.json')) as { seeds: number[]; metrics: Record<string, Cell>; cost: Record<string, Cell> };
  const get = (o: Record<string, Cell>, k: string): Cell => o[k] ?? { mean: null, std: null };
  return { metric: (k) => get(s.metrics, k), cost: (k) => get(s.cost, k), seeds: s.seeds.length };
}

function fromRun(dir: string): RowData {
  const met = json(join(dir, 'metrics.json'));
  const cost = json(join(dir, 'cost.json'));
  const extra = (cost['extra'] ?? {}) as Record<string, unknown>;
  const num = (v: unknown): Cell => ({ mean: typeof v === 'number' ? v : null, std: null });
  const total = ((cost['timingsMs'] ?? {}) as Record<string, unknown>)['total'];
  return {
    metric: (k) => num(met[k]),
    cost: (k) => (k === 'seconds' ? num(typeof total === 'number' ? total / 1000 : null) : k.startsWith('extra.') ? num(extra[k.slice(6)]) : num(cost[k])),
    seeds: 1,
  };
}

/** A row from its folder: the seed summary when there is one, else the single run's files. */
const rowData = (dir: string): RowData => (existsSync(join(dir, 'summary.json')) ? fromSummary(dir) : fromRun(dir));

const fmt = (c: Cell, scale: number, digits: number) => {
  if (c.mean === null) return '—';
  const m = (scale * c.mean).toFixed(digits);
  return c.std === null ? m : `${m} ± ${(scale * c.std).toFixed(digits)}`;
};

/** The markdown tables of every benchmark under `root`. */
export function resultsTables(root: string): string {
  const out: string[] = [];
  if (!existsSync(root)) return '\n';
  for (const bench of readdirSync(root).filter((d) => !d.includes('.') && d !== 'bench' && d !== 'cnn').sort()) {
    const dir = join(root, bench);
    const labels = readdirSync(dir).filter((m) => existsSync(join(dir, m, 'summary.json')) || existsSync(join(dir, m, 'metrics.json')));
    labels.sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
    if (labels.length === 0) continue;
    const head = ['A_auc', 'A_last', 'F_last', 'Transfer', 'Average', 'Last'];
    const keys = ['A_auc', 'A_last', 'F_last', 'transfer', 'average', 'last'];
    out.push(
      `### ${bench}`,
      '',
      `| method | ${head.join(' | ')} | online | trainable params | experts / block | s / 1000 samples | DDAS routing | merge share | seeds |`,
      `|---|${head.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|---:|---:|`,
    );
    for (const m of labels) {
      const d = rowData(join(dir, m));
      const vals = keys.map((k) => fmt(d.metric(k), 100, 2));
      const params = d.cost('trainableParams').mean;
      const epb = d.cost('extra.expertsPerBlock');
      const seconds = d.cost('seconds').mean;
      const merge = d.cost('extra.mergeMs').mean;
      const share: Cell = { mean: merge !== null && seconds ? merge / 1000 / seconds : null, std: null };
      out.push(
        `| ${m} | ${vals.join(' | ')} | ${fmt(d.metric('online'), 100, 2)} | ${params === null ? '—' : Math.round(params).toLocaleString('en-US')} | ${fmt(epb, 1, 0)} | ${fmt(d.cost('msPerSample'), 1, 1)} | ${fmt(d.cost('extra.ddasRoutingAcc'), 100, 2)} | ${fmt(share, 100, 2)} | ${d.seeds} |`,
      );
    }
    out.push('');
    // task-free rows: boundary detection against the true task starts (scored by the runner)
    const free = labels.map((m) => [m, rowData(join(dir, m))] as const).filter(([, d]) => d.cost('extra.boundaries').mean !== null);
    if (free.length > 0) {
      out.push('| task-free run | boundaries found | missed | false | mean delay (batches) | by labels | by DDAS | seeds |', '|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const [m, d] of free) {
        out.push(
          `| ${m} | ${fmt(d.cost('extra.boundariesFound'), 1, 1)} / ${fmt(d.cost('extra.boundaries'), 1, 0)} | ${fmt(d.cost('extra.boundariesMissed'), 1, 1)} | ${fmt(d.cost('extra.falseBoundaries'), 1, 1)} | ${fmt(d.cost('extra.boundaryDelayBatches'), 1, 2)} | ${fmt(d.cost('extra.detectedByLabels'), 1, 1)} | ${fmt(d.cost('extra.detectedByDdas'), 1, 1)} | ${d.seeds} |`,
        );
      }
      out.push('');
    }
  }
  return `${out.join('\n')}\n${cnnTables(join(root, 'cnn'))}`;
}

const CNN_ORDER = ['cnn-subnets', 'cnn-subnets-train3', 'cnn-prune', 'cnn-replay', 'cnn-finetune'];

/** The run folders of a results row: its `seed-<s>/` folders (seed order), or the row itself for one older run. */
function seedRuns(dir: string): string[] {
  const seeds = readdirSync(dir)
    .map((d) => /^seed-(\d+)$/.exec(d))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(dir, m[0], 'metrics.json')))
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => join(dir, m[0]));
  return seeds.length > 0 ? seeds : existsSync(join(dir, 'metrics.json')) ? [dir] : [];
}

/** mean and sample std (null for one value) of the numbers among `values` (the seed summary's rule). */
const cellOf = (values: ReadonlyArray<number | undefined>): Cell => seedStat(values.map((v) => v ?? null));

/**
 * The CNN track's tables from docs/results/cnn/<stream>/<method>/ (per seed `seed-<s>/` with metrics.json,
 * cost.json and online.csv, or those files of one older run): final running online accuracy, pooled and
 * task-protocol accuracy at the end, total and training time, merges, FLOPs and free capacity (mean ± std over the
 * seeds), then per set of the first seed the online accuracy, seconds and free capacity (the identified task in
 * brackets).
 */
export function cnnTables(root: string): string {
  if (!existsSync(root)) return '';
  const out: string[] = [];
  for (const bench of readdirSync(root).filter((d) => !d.includes('.')).sort()) {
    const dir = join(root, bench);
    const labels = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && seedRuns(join(dir, d.name)).length > 0).map((d) => d.name);
    labels.sort((a, b) => (CNN_ORDER.indexOf(a) + 1 || 99) - (CNN_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
    if (labels.length === 0) continue;
    out.push(`### ${bench} (CNN track)`, '', '| method | online | A_last | Last | total s | train s | merges (s) | training FLOPs | free capacity at end | seeds |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const perSet: string[] = [];
    for (const m of labels) {
      const runs = seedRuns(join(dir, m));
      const met = runs.map((r) => json(join(r, 'metrics.json')));
      const costs = runs.map((r) => json(join(r, 'cost.json')));
      const extras = costs.map((c) => (c['extra'] ?? {}) as Record<string, number>);
      const times = costs.map((c) => (c['timingsMs'] ?? {}) as Record<string, number>);
      const metric = (k: string) => cellOf(met.map((x) => x[k] as number | undefined));
      const extra = (k: string) => cellOf(extras.map((x) => x[k]));
      const flops = cellOf(extras.map((x) => (x['flopsTraining'] !== undefined ? x['flopsTraining'] + (x['flopsRetraining'] ?? 0) : undefined)));
      const merges = cellOf(extras.map((x) => x['merges'] ?? 0));
      const mergeS = cellOf(extras.map((x) => (x['mergeMs'] ?? 0) / 1000));
      const sci = (c: Cell) => (c.mean === null ? '—' : c.mean.toExponential(2));
      out.push(
        `| ${m} | ${fmt(metric('online'), 100, 2)} | ${fmt(metric('A_last'), 100, 2)} | ${fmt(metric('last'), 100, 2)} | ${fmt(cellOf(times.map((t) => (t['total'] ?? 0) / 1000)), 1, 0)} | ${fmt(cellOf(times.map((t) => (t['train'] ?? 0) / 1000)), 1, 0)} | ${fmt(merges, 1, 1)} (${fmt(mergeS, 1, 0)}) | ${sci(flops)} | ${fmt(extra('freeCapacity'), 100, 2)} | ${runs.length} |`,
      );
      const online = join(runs[0]!, 'online.csv');
      if (!existsSync(online)) continue;
      const first = extras[0]!;
      const acc = new Map<number, [number, number]>();
      for (const line of readFileSync(online, 'utf8').trim().split('\n').slice(1)) {
        const [, task, n, correct] = line.split(',').map(Number);
        const a = acc.get(task!) ?? [0, 0];
        acc.set(task!, [a[0] + correct!, a[1] + n!]);
      }
      const sets = [...acc.keys()].sort((a, b) => a - b);
      const cell = (k: number) => {
        const [c, n] = acc.get(k)!;
        const task = first[`setTask:${k}`];
        const sec = first[`setSeconds:${k}`];
        const free = first[`setFreeCapacity:${k}`];
        return `${(100 * c / n).toFixed(1)}${task !== undefined ? ` [${task}]` : ''}${sec !== undefined ? ` / ${sec.toFixed(0)} s` : ''}${free !== undefined ? ` / ${(100 * free).toFixed(0)} %` : ''}`;
      };
      if (perSet.length === 0) perSet.push('', `Per set (first seed): online accuracy % [identified task] / seconds / free capacity %:`, '', `| method | ${sets.map((k) => `set ${k}`).join(' | ')} |`, `|---|${sets.map(() => '---:').join('|')}|`);
      perSet.push(`| ${m} | ${sets.map(cell).join(' | ')} |`);
    }
    out.push(...perSet, '');
  }
  return `${out.join('\n')}\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.stdout.write(resultsTables(resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'docs', 'results'))));
}
