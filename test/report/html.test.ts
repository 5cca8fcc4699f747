import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/command.ts';
import { buildReport, escapeHtml, writeReport } from '../../src/report/html.ts';
import { runColor } from '../../src/report/charts/specs.ts';
import { writeFixtureRun } from './fixture.ts';
import { markItems } from './svg-marks.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'moeclip-report-'));

function captureIO(): CliIO & { out: string; err: string } {
  const io = { out: '', err: '', isTTY: false, env: {}, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

/** The figures of a report page: data-chart key → inner SVG. */
function figures(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/<figure class="chart" data-chart="([^"]+)" id="[^"]+">\n([\s\S]*?)\n<\/figure>/g)) out.set(m[1]!, m[2]!);
  return out;
}

test('the report page is self-contained: inline SVG only, no script, no external reference, unique ids', async () => {
  const dir = tmp();
  try {
    const a = writeFixtureRun(join(dir, 'cm'), { batchMs: true });
    const b = writeFixtureRun(join(dir, 'moe'), { method: 'moe-adapters', matrix: '0.5,\n0.25,0.75\n' });
    const r = await buildReport([a, b]);
    assert.deepEqual(r.runs, [a, b]);
    assert.deepEqual(r.warnings, []);
    const html = r.html;
    assert.match(html, /^<!doctype html>\n<html lang="en">/);
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|\bsrc=|@import/i);
    // the only URLs are the SVG namespace names, which are never fetched
    assert.doesNotMatch(html.replace(/xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]+"/g, ''), /https?:|file:|\/\/[a-z]/i);

    const figs = figures(html);
    assert.deepEqual([...figs.keys()], r.charts);
    assert.deepEqual(r.charts, [
      'compare/anytime',
      'compare/task-acc',
      'compare/online',
      'compare/class-acc',
      'compare/params',
      'compare/experts',
      'compare/time',
      'cm/acc-matrix',
      'cm/accuracy',
      'cm/time',
      'cm/ddas-routing',
      'moe/acc-matrix',
      'moe/accuracy',
      'moe/time',
      'moe/ddas-routing',
    ]);
    for (const [key, svg] of figs) {
      assert.equal(svg.match(/<svg /g)?.length, 1, `${key}: one svg`);
      const n = ['rect', 'line', 'symbol', 'text', 'rule'].reduce((s, t) => s + markItems(svg, t).length, 0);
      assert.ok(n > 0, `${key}: has marks`);
    }
    assert.equal(markItems(figs.get('cm/acc-matrix')!, 'rect').length, 4);
    assert.equal(markItems(figs.get('moe/acc-matrix')!, 'rect').length, 3);

    // ids are unique in the page, and each figure's references resolve inside that figure
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(new Set(ids).size, ids.length, 'unique ids');
    for (const [key, svg] of figs) {
      const own = new Set([...svg.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]!));
      for (const m of svg.matchAll(/url\(#([^)]+)\)|href="#([^"]+)"/g)) assert.ok(own.has(m[1] ?? m[2]!), `${key}: #${m[1] ?? m[2]} resolves in the figure`);
    }

    // tables: one row per run with its colour; metrics in percent
    assert.equal(html.match(/<span class="swatch" style="background:#4c78a8"><\/span>cm<\/td>/g)?.length, 3, 'runs, metrics and cost rows of run 1');
    assert.ok(html.includes(`background:${runColor(1)}"></span>moe</td>`));
    assert.match(html, /<table class="metrics">[\s\S]*<th>A_last \[%\]<\/th>[\s\S]*<td class="num">70\.00<\/td>/);
    assert.doesNotMatch(html, /<th>transfer/, 'a metric null in every run has no column');
    assert.match(html, /<table class="cost">[\s\S]*<th>trainable params<\/th>[\s\S]*<td class="num">100<\/td><td class="num">1000<\/td><td class="num">10\.00<\/td>/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeReport writes the page atomically; text from the run folder is escaped', async () => {
  const dir = tmp();
  try {
    const a = writeFixtureRun(join(dir, 'run'), { method: '<b>x&y</b>' });
    const out = join(dir, 'out', 'report.html');
    const r = await writeReport([a], out, { title: 'T <1>' });
    assert.equal(r.out, out);
    const html = readFileSync(out, 'utf8');
    assert.equal(html, r.html);
    assert.deepEqual(readdirSync(join(dir, 'out')), ['report.html']);
    assert.match(html, /<title>T &lt;1&gt;<\/title>/);
    assert.ok(html.includes('<td>&lt;b&gt;x&amp;y&lt;/b&gt;</td>'));
    assert.ok(!html.includes('<b>x&y</b>'));
    assert.equal(escapeHtml(`a<b>&"'`), 'a&lt;b&gt;&amp;&quot;&#39;');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('moeclip report: writes the page, --plots writes each run folder plots, bad folders are named', async () => {
  const dir = tmp();
  try {
    const a = writeFixtureRun(join(dir, 'a'));
    const multi = join(dir, 'multi');
    writeFixtureRun(join(multi, 'seed-1'), { seed: 1 });
    writeFixtureRun(join(multi, 'seed-2'), { seed: 2 });
    const out = join(dir, 'r.html');
    let io = captureIO();
    assert.equal(await main(['report', a, multi, '--out', out, '--plots', '--json'], io), 0, io.err);
    const res = JSON.parse(io.out);
    assert.equal(res.out, out);
    assert.deepEqual(res.runs, [a, join(multi, 'seed-1'), join(multi, 'seed-2')]);
    assert.ok(existsSync(out));
    assert.equal(res.plots.length, 3 * 7);
    for (const p of res.plots) assert.ok(existsSync(p), p);
    assert.ok(res.charts.includes('seed-2/acc-matrix'));

    io = captureIO();
    assert.equal(await main(['report', a, '--out', out], io), 0, io.err);
    assert.equal(io.out, `${out}: 1 run(s), 11 charts\n`);

    const empty = join(dir, 'empty');
    mkdirSync(empty);
    io = captureIO();
    assert.equal(await main(['report', a, empty, '--out', out], io), 2);
    assert.equal(io.err, `moeclip report: ${empty}: not a run folder (no metrics.json or config.resolved.json, and no seed-<s> run folders)\n`);

    const part = join(dir, 'part');
    mkdirSync(part);
    writeFileSync(join(part, 'config.resolved.json'), '{}');
    io = captureIO();
    assert.equal(await main(['report', part], io), 2);
    assert.match(io.err, new RegExp(`^moeclip report: ${part}: the run is incomplete \\(no metrics\\.json`));

    io = captureIO();
    assert.equal(await main(['report'], io), 2);
    assert.match(io.err, /give at least one RUN_DIR/);
    io = captureIO();
    assert.equal(await main(['report', a, '--bogus'], io), 2);
    assert.match(io.err, /--bogus/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
