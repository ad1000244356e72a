/**
 * Renders report.html in headless Chromium (Debian's `chromium` package) and checks the charts
 * are in the rendered DOM: the page must work in a real browser with no scripts and no network.
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
    `--user-data-dir=${profile}`,
  ];
}

/** A small results.json: `tasks` tasks of 10 classes; with `uncertainty`, reliability, novelty and ROC. */
function fixture(method: string, seed: number, tasks: number, uncertainty: boolean): Record<string, unknown> {
  const A = Array.from({ length: tasks }, (_, t) => Array.from({ length: t + 1 }, (_, k) => 0.88 - 0.05 * (t - k) - 0.01 * ((seed + k) % 3)));
  const acc = A.map((r) => r.reduce((a, b) => a + b, 0) / r.length);
  const r: Record<string, unknown> = {
    config: { method, seed, data: 'synthetic' },
    synthetic: true,
    classOrder: Array.from({ length: tasks * 10 }, (_, i) => i),
    tasks: Array.from({ length: tasks }, (_, i) => ({ index: i, classStart: 10 * i, classEnd: 10 * (i + 1) })),
    accuracyMatrix: A,
    averageAccuracy: acc.reduce((a, b) => a + b, 0) / tasks,
    lastAccuracy: acc[tasks - 1],
    backwardTransfer: -0.05,
    forgetting: 0.06,
    ece: { perBatchMean: acc.map((a) => 0.2 * (1 - a)), dataset: acc.map((a) => 0.15 * (1 - a)) },
    timing: acc.map(() => 2.5),
  };
  if (uncertainty) {
    r['reliability'] = [{ step: tasks - 1, bins: Array.from({ length: 15 }, (_, b) => ({ lower: b / 15, upper: (b + 1) / 15, count: b < 4 ? 0 : 10 + b, meanConfidence: (b + 0.5) / 15, accuracy: Math.max(0, (b + 0.5) / 15 - 0.08) })) }];
    r['novelty'] = acc.slice(0, tasks - 1).flatMap((_, s) =>
      ['energy', 'msp'].map((score, j) => {
        const fpr = Array.from({ length: 21 }, (_, i) => i / 20);
        return { step: s, score, auroc: 0.7 + 0.05 * j, aupr: 0.72, fpr95: 0.6, roc: { fpr, tpr: fpr.map((f) => Math.pow(f, 0.4 + 0.2 * j)) } };
      }),
    );
  }
  return r;
}

test('report.html renders in headless Chromium with every chart', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`, timeout: 180_000 }, async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'clap4clip-chromium-'));
  try {
    const dirs: string[] = [];
    for (const [name, r] of [['clap', fixture('clap', 0, 5, true)], ['zeroshot', fixture('zeroshot', 0, 5, false)]] as const) {
      const dir = path.join(root, 'runs', name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'results.json'), JSON.stringify(r));
      dirs.push(dir);
    }
    const { file } = await writeReport(dirs, path.join(root, 'report.html'));
    const profile = path.join(root, 'profile');
    await mkdir(profile);
    const { stdout } = await execFileP(CHROMIUM, [...chromiumArgs(profile), '--dump-dom', pathToFileURL(file).href], {
      timeout: 150_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    // The DOM Chromium built, not the file: the page parsed into one <svg> root per chart.
    assert.equal(stdout.match(/<svg[\s>]/g)?.length, 6, 'one rendered <svg> per chart kind');
    for (const kind of ['accuracy', 'matrix', 'ece', 'reliability', 'novelty', 'roc']) {
      assert.match(stdout, new RegExp(`<figure class="chart" id="chart-${kind}"[^>]*>.*?<svg`, 's'), `chart ${kind} in the DOM`);
    }
    assert.match(stdout, /<h3>Accuracy matrix<\/h3>/);
    // Text inside the SVGs survived parsing (axis titles drawn by Vega).
    assert.match(stdout, /<text[^>]*>after task<\/text>/);
    assert.match(stdout, /Synthetic data\./);
    assert.doesNotMatch(stdout, /<script/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
