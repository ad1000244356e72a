/**
 * Renders report.html in headless Chromium (Debian's `chromium` package): the page must work in a
 * real browser with no scripts and no network, show every chart and panel, and fit the window at
 * 1400 px and at 800 px (no horizontal overflow of the page or of any chart; the chart drawn for
 * that width is the one shown). Layout is measured by a harness page that loads the report in an
 * iframe of the given width (the report itself runs no scripts). With CLAP4CLIP_REPORT_SHOTS=DIR
 * the test also writes full-page screenshots at both widths into DIR for a person to look at.
 * Skipped only when /usr/bin/chromium is absent (CI installs it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { fullResults } from './testFixtures.js';
import { writeReport } from './writeReport.js';

const CHROMIUM = '/usr/bin/chromium';
const execFileP = promisify(execFile);

/** Flags for a quiet, isolated, offline-friendly headless run (root in containers needs --no-sandbox). */
function chromiumArgs(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
  ];
}

/** The current writer's results.json; with `novelty`, detection records and ROC curves of two scores. */
function fixture(method: string, seed: number, tasks: number, novelty: boolean): Record<string, unknown> {
  const r = fullResults({ method, seed, tasks, sgd: method !== 'zeroshot' });
  if (novelty) {
    r['novelty'] = Array.from({ length: tasks - 1 }, (_, s) =>
      ['energy', 'msp'].map((score, j) => {
        const fpr = Array.from({ length: 21 }, (_, i) => i / 20);
        return { step: s, score, auroc: 0.7 + 0.05 * j, aupr: 0.72, fpr95: 0.6, roc: { fpr, tpr: fpr.map((f) => Math.pow(f, 0.4 + 0.2 * j)) } };
      }),
    ).flat();
  }
  return r;
}

/** Measures the report in an iframe `width` px wide; returns what the harness wrote. */
const HARNESS = `<!doctype html><html><body style="margin:0">
<iframe id="f" src="report.html" style="width:WIDTHpx;height:1500px;border:0"></iframe><pre id="out">pending</pre>
<script>
document.getElementById('f').addEventListener('load', () => {
  try {
    const d = document.getElementById('f').contentDocument;
    const out = { page: { scroll: d.documentElement.scrollWidth, client: d.documentElement.clientWidth }, figures: [], sections: [...d.querySelectorAll('section[id]')].map((s) => s.id) };
    for (const fig of d.querySelectorAll('figure.chart')) {
      const shown = [...fig.querySelectorAll('.svg')].filter((e) => getComputedStyle(e).display !== 'none');
      out.figures.push({ kind: fig.dataset.chart, figure: { scroll: fig.scrollWidth, client: fig.clientWidth }, shown: shown.map((e) => ({ layout: e.className, svg: e.querySelector('svg').getBoundingClientRect().width, intrinsic: Number(e.querySelector('svg').getAttribute('width')), box: e.clientWidth })) });
    }
    document.getElementById('out').textContent = JSON.stringify(out);
  } catch (err) { document.getElementById('out').textContent = 'error ' + err; }
});
</script></body></html>`;

interface Measured {
  page: { scroll: number; client: number };
  sections: string[];
  figures: { kind: string; figure: { scroll: number; client: number }; shown: { layout: string; svg: number; intrinsic: number; box: number }[] }[];
}

test('report.html in headless Chromium: every chart and panel, nothing overflows at 1400 px and 800 px', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`, timeout: 300_000 }, async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'clap4clip-chromium-'));
  try {
    const dirs: string[] = [];
    const runs = [['clap-0', fixture('clap', 0, 10, true)], ['clap-1', fixture('clap', 1, 10, true)], ['clip-adapter', fixture('clip-adapter', 0, 10, true)], ['zeroshot', fixture('zeroshot', 0, 10, false)]] as const;
    for (const [name, r] of runs) {
      const dir = path.join(root, 'runs', name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'results.json'), JSON.stringify(r));
      dirs.push(dir);
    }
    const { file } = await writeReport(dirs, path.join(root, 'report.html'));
    const profile = path.join(root, 'profile');
    await mkdir(profile);
    const chromium = (args: string[]) => execFileP(CHROMIUM, [...chromiumArgs(profile), ...args], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });

    // The DOM Chromium built, not the file: one <svg> root per chart and layout.
    const { stdout } = await chromium(['--dump-dom', pathToFileURL(file).href]);
    const kinds = ['accuracy', 'matrix', 'ece', 'reliability', 'loss', 'novelty', 'roc'];
    assert.equal(stdout.match(/<svg[\s>]/g)?.length, 2 * kinds.length, 'one rendered <svg> per chart kind and layout');
    for (const kind of kinds) assert.match(stdout, new RegExp(`<figure class="chart" id="chart-${kind}"[^>]*>.*?<svg`, 's'), `chart ${kind} in the DOM`);
    assert.match(stdout, /<section id="configuration">\s*<h2>Configuration and provenance<\/h2>/);
    assert.match(stdout, /<th scope="row">Commit<\/th><td>f2396cf01234<\/td>/);
    assert.match(stdout, /<section id="calibration"><h2>Calibration<\/h2>/);
    assert.match(stdout, /<th>ECE raw<\/th><th>ECE calibrated<\/th><th>T<\/th>/);
    assert.match(stdout, /<text[^>]*>after task<\/text>/, 'text inside the SVGs survived parsing');
    assert.match(stdout, /clap · mean of 2 runs/, 'two runs of a method are one series');
    assert.match(stdout, /Synthetic data\./);
    assert.doesNotMatch(stdout, /<script/);

    for (const width of [1400, 800]) {
      const harness = path.join(root, `harness-${width}.html`);
      await writeFile(harness, HARNESS.replace('WIDTH', String(width)));
      const out = await chromium(['--allow-file-access-from-files', '--virtual-time-budget=15000', '--dump-dom', pathToFileURL(harness).href]);
      const text = /<pre id="out">(.*?)<\/pre>/s.exec(out.stdout)?.[1] ?? 'missing';
      assert.ok(text.startsWith('{'), `harness at ${width} px: ${text.slice(0, 200)}`);
      const m = JSON.parse(text.replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as Measured;
      assert.ok(m.page.scroll <= m.page.client, `page overflows at ${width} px: ${m.page.scroll} > ${m.page.client}`);
      assert.deepEqual(m.sections, ['configuration', 'calibration']);
      assert.deepEqual(m.figures.map((f) => f.kind), kinds);
      const layout = width >= 1000 ? 'layout-wide' : 'layout-narrow';
      for (const f of m.figures) {
        assert.equal(f.shown.length, 1, `${f.kind}: one drawing shown at ${width} px`);
        const s = f.shown[0]!;
        assert.ok(s.layout.includes(layout), `${f.kind} at ${width} px shows ${s.layout}`);
        assert.ok(f.figure.scroll <= f.figure.client, `${f.kind} overflows its figure at ${width} px`);
        assert.ok(s.intrinsic <= s.box, `${f.kind} at ${width} px: drawn ${s.intrinsic} px wide for a ${s.box} px box (would be shrunk)`);
        // Charts use the width they have: at least half of it.
        assert.ok(s.svg >= 0.5 * s.box, `${f.kind} at ${width} px uses ${s.svg} of ${s.box} px`);
      }
    }

    const shots = process.env['CLAP4CLIP_REPORT_SHOTS'];
    if (shots) {
      await mkdir(shots, { recursive: true });
      for (const width of [1400, 800]) await chromium([`--window-size=${width},7000`, `--screenshot=${path.join(shots, `report-${width}.png`)}`, pathToFileURL(file).href]);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
