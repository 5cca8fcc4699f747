/**
 * Prints the results tables (markdown) from docs/results/<benchmark>/<method>/{metrics,cost,command}.json, as
 * written by scripts/results-d.sh:
 *   npx tsx scripts/results-table.ts > /tmp/tables.md
 * Columns: A_auc / A_last / F_last (class-incremental numbers: pooled over every exposed class), Transfer /
 * Average / Last (MTIL numbers from the task-protocol accuracy matrix; Transfer and Average need evalFutureTasks),
 * online (prequential), trainable parameters, experts per block at the end, seconds per 1000 stream samples,
 * DDAS routing accuracy, merge time as a share of the stream time.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', 'docs', 'results');
const ORDER = ['zeroshot-clip', 'cm-moe', 'cm-moe-taskfree', 'cm-moe-unbounded', 'moe-adapters', 'adapter-clip', 'lora-clip', 'finetune', 'er', 'lwf', 'ewc'];
const pct = (v: unknown) => (typeof v === 'number' ? (100 * v).toFixed(2) : '—');
const json = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;

const out: string[] = [];
for (const bench of readdirSync(ROOT).filter((d) => existsSync(join(ROOT, d)) && !d.includes('.')).sort()) {
  const dir = join(ROOT, bench);
  const methods = readdirSync(dir).filter((m) => existsSync(join(dir, m, 'metrics.json')));
  methods.sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
  if (methods.length === 0) continue;
  const head = ['A_auc', 'A_last', 'F_last', 'Transfer', 'Average', 'Last'];
  out.push(`### ${bench}`, '', `| method | ${head.join(' | ')} | online | trainable params | experts / block | s / 1000 samples | DDAS routing | merge share |`, `|---|${head.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|---:|`);
  for (const m of methods) {
    const met = json(join(dir, m, 'metrics.json'));
    const cost = json(join(dir, m, 'cost.json'));
    const extra = (cost['extra'] ?? {}) as Record<string, number>;
    const vals = [met['A_auc'], met['A_last'], met['F_last'], met['transfer'], met['average'], met['last']];
    const spk = typeof cost['msPerSample'] === 'number' ? (cost['msPerSample'] as number).toFixed(1) : '—';
    const ddas = typeof extra['ddasRoutingAcc'] === 'number' ? pct(extra['ddasRoutingAcc']) : '—';
    const total = ((cost['timingsMs'] ?? {}) as Record<string, number>)['total'];
    const merge = typeof extra['mergeMs'] === 'number' && total ? pct(extra['mergeMs'] / total) : '—';
    const epb = typeof extra['expertsPerBlock'] === 'number' ? String(extra['expertsPerBlock']) : '—';
    out.push(`| ${m} | ${vals.map(pct).join(' | ')} | ${pct(met['online'])} | ${Number(cost['trainableParams']).toLocaleString('en-US')} | ${epb} | ${spk} | ${ddas} | ${merge} |`);
  }
  out.push('');
}
process.stdout.write(`${out.join('\n')}\n`);
