/**
 * The report page in a real browser: Debian's headless Chromium driven by playwright-core opens the page from
 * file:// and every chart must have drawn marks, with no console error, no page error and no request that is not
 * the file itself. `.ci/run` installs Chromium (`apt-get install chromium`); without it this test fails and says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { writeReport } from '../../src/report/html.ts';
import { writeFixtureRun } from './fixture.ts';
import { markItems } from './svg-marks.ts';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'];

/** What the page script reports for each `figure.chart`. */
interface FigureInfo {
  key: string;
  svgs: number;
  width: number;
  height: number;
  /** Mark items: `role="graphics-symbol"` children of Vega's mark groups. */
  marks: number;
  /** Mark items whose bounding box has a size. */
  drawn: number;
  /** `url(#id)` references that do not resolve to an element of the same figure. */
  unresolved: string[];
  /** Computed fill of each rect-mark item. */
  fills: string[];
}

/** Runs in the page (plain JavaScript: the test's TypeScript has no DOM types). */
const INSPECT_FIGURES = `[...document.querySelectorAll('figure.chart')].map((f) => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
  const marks = [...f.querySelectorAll('g.role-mark > [role="graphics-symbol"]')];
  const drawn = marks.filter((m) => { const r = m.getBBox(); return r.width > 0 || r.height > 0; });
  const refs = [...f.querySelectorAll('[fill^="url(#"], [clip-path^="url(#"]')]
    .map((e) => (/url\\(#([^)]+)\\)/.exec(e.getAttribute('fill') || e.getAttribute('clip-path') || '') || [])[1] || '');
  return {
    key: f.getAttribute('data-chart') || '',
    svgs: f.querySelectorAll('svg').length,
    width: box.width,
    height: box.height,
    marks: marks.length,
    drawn: drawn.length,
    unresolved: refs.filter((id) => { const el = document.getElementById(id); return !el || el.closest('figure') !== f; }),
    fills: [...f.querySelectorAll('g.mark-rect.role-mark > path')].map((p) => getComputedStyle(p).fill),
  };
})`;

function findChromium(): string {
  const fromEnv = process.env['CHROMIUM_PATH'];
  if (fromEnv) {
    assert.ok(existsSync(fromEnv), `CHROMIUM_PATH=${fromEnv} does not exist`);
    return fromEnv;
  }
  const found = CANDIDATES.find((p) => existsSync(p));
  assert.ok(
    found,
    `headless Chromium not found (looked for ${CANDIDATES.join(', ')}). Install Debian's package: ` +
      '`apt-get install -y chromium` (as root; .ci/run does this), or set CHROMIUM_PATH to a Chromium binary.',
  );
  return found;
}

test('the report renders in headless Chromium from file://: every chart has marks, no errors, no requests', { timeout: 60_000 }, async () => {
  const executablePath = findChromium();
  const dir = mkdtempSync(join(tmpdir(), 'moeclip-browser-'));
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const a = writeFixtureRun(join(dir, 'cm'), { batchMs: true, costEvents: true });
    const b = writeFixtureRun(join(dir, 'moe'), { method: 'moe-adapters', matrix: '0.5,\n0.25,0.75\n' });
    const report = await writeReport([a, b], join(dir, 'report.html'));
    const url = pathToFileURL(report.out).href;

    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(url, { waitUntil: 'load' });

    const figs = (await page.evaluate(INSPECT_FIGURES)) as FigureInfo[];
    assert.deepEqual(problems, [], 'no console or page errors');
    assert.deepEqual(requests, [url], 'the page loads nothing but itself');
    assert.deepEqual(figs.map((f) => f.key), report.charts, 'every chart of the report is in the page');
    assert.ok(figs.length >= 15);

    const figureSvg = new Map([...report.html.matchAll(/<figure class="chart" data-chart="([^"]+)" id="[^"]+">\n([\s\S]*?)\n<\/figure>/g)].map((m) => [m[1]!, m[2]!]));
    for (const f of figs) {
      assert.equal(f.svgs, 1, `${f.key}: one svg`);
      assert.ok(f.width > 50 && f.height > 50, `${f.key}: laid out (${f.width}×${f.height})`);
      assert.ok(f.marks > 0, `${f.key}: has marks`);
      assert.ok(f.drawn > 0, `${f.key}: marks drawn with a size`);
      assert.deepEqual(f.unresolved, [], `${f.key}: references resolve inside the figure`);
      // the browser sees exactly the marks the SVG holds
      const svg = figureSvg.get(f.key)!;
      const expected = ['rect', 'line', 'symbol', 'text', 'rule', 'area'].reduce((s, t) => s + markItems(svg, t).length, 0);
      assert.equal(f.marks, expected, `${f.key}: mark count`);
    }
    const matrix = figs.find((f) => f.key === 'cm/acc-matrix')!;
    assert.equal(matrix.fills.length, 4, '2×2 accuracy matrix: 4 cells');
    const attrFills = markItems(figureSvg.get('cm/acc-matrix')!, 'rect').map((r) => r.attrs['fill']);
    assert.deepEqual(matrix.fills, attrFills, 'cells painted with their fills, in order');
    assert.equal(figs.find((f) => f.key === 'moe/acc-matrix')!.fills.length, 3, 'lower-triangular 2×2: 3 cells');
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
