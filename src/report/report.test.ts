import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseReportArgs, reportCommand, runReport } from '../cli/commands/report.js';
import { DataError } from '../util/errors.js';
import { runLabels, type ChartRun } from './charts.js';
import { chartSpecs } from './chartList.js';
import { thinCurve } from './detailCharts.js';
import { escapeHtml, formatMeanStd, renderReport } from './html.js';
import { findRunDirs, loadRuns, meanStd, parseResults, validateResults } from './loadResults.js';
import { writeReport } from './writeReport.js';

/** Deterministic pseudo-random numbers in [0, 1) for fixtures. */
function lcg(seed: number): () => number {
  let s = (seed * 2654435761 + 1) >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

interface FixtureOptions {
  method: string;
  seed: number;
  tasks: number;
  synthetic?: boolean;
  /** Adds reliability, novelty (two scores) and ROC curves. */
  uncertainty?: boolean;
  data?: string;
}

/** A realistic results.json: CIFAR-like ragged accuracy matrix that forgets, ECE, timing. */
function makeResults(o: FixtureOptions): Record<string, unknown> {
  const rnd = lcg(o.seed + o.method.length * 31);
  const perTask = 10;
  const A = Array.from({ length: o.tasks }, (_, t) =>
    Array.from({ length: t + 1 }, (_, k) => Math.round(1e4 * Math.max(0, Math.min(1, 0.9 - 0.04 * (t - k) - 0.1 * rnd()))) / 1e4),
  );
  const step = A.map((r) => r.reduce((a, b) => a + b, 0) / r.length);
  const T = o.tasks;
  const last = A[T - 1]!;
  const bwt = T < 2 ? null : A.slice(0, T - 1).reduce((s, _, k) => s + last[k]! - A[k]![k]!, 0) / (T - 1);
  const fgt = T < 2 ? null : A.slice(0, T - 1).reduce((s, _, k) => s + Math.max(...A.slice(0, T - 1).filter((r) => r.length > k).map((r) => r[k]!)) - last[k]!, 0) / (T - 1);
  const results: Record<string, unknown> = {
    format: 'clap4clip-results',
    version: 1,
    config: { method: o.method, seed: o.seed, data: o.data ?? 'synthetic', syntheticPreset: 'tiny', evalBatching: 'mixed', epochs: 5 },
    synthetic: o.synthetic ?? true,
    classOrder: Array.from({ length: T * perTask }, (_, i) => (i * 7) % (T * perTask)),
    tasks: Array.from({ length: T }, (_, i) => ({ index: i, classStart: i * perTask, classEnd: (i + 1) * perTask })),
    accuracyMatrix: A,
    stepAccuracies: step,
    averageAccuracy: step.reduce((a, b) => a + b, 0) / T,
    lastAccuracy: step[T - 1],
    backwardTransfer: bwt,
    forgetting: fgt,
    ece: { perBatchMean: step.map(() => 0.02 + 0.1 * rnd()), dataset: step.map(() => 0.01 + 0.08 * rnd()) },
    timing: step.map(() => 3 + 2 * rnd()),
    evalBatching: 'mixed',
  };
  if (o.uncertainty) {
    results['reliability'] = step.map((_, s) => ({
      step: s,
      bins: Array.from({ length: 15 }, (_, b) => {
        const count = b < 5 ? 0 : Math.round(40 * rnd()) + 1;
        const conf = (b + 0.5) / 15;
        return { lower: b / 15, upper: (b + 1) / 15, count, meanConfidence: count ? conf : 0, accuracy: count ? Math.max(0, conf - 0.1 * rnd()) : 0 };
      }),
    }));
    results['novelty'] = step.slice(0, T - 1).flatMap((_, s) =>
      ['energy', 'variance'].map((score) => {
        const pts = 50;
        const fpr = Array.from({ length: pts }, (_, i) => i / (pts - 1));
        const tpr = fpr.map((f) => Math.min(1, Math.sqrt(f) * (0.9 + 0.1 * rnd())));
        tpr[pts - 1] = 1;
        return { step: s, score, auroc: 0.6 + 0.3 * rnd(), aupr: 0.6 + 0.3 * rnd(), fpr95: 0.3 + 0.5 * rnd(), roc: { fpr, tpr } };
      }),
    );
  }
  return results;
}

const clapA = { ...makeResults({ method: 'clap', seed: 0, tasks: 4, uncertainty: true }), averageAccuracy: 0.7, lastAccuracy: 0.6 };
const clapB = { ...makeResults({ method: 'clap', seed: 1, tasks: 4, uncertainty: true }), averageAccuracy: 0.74, lastAccuracy: 0.65 };
const zeroshot = makeResults({ method: 'zeroshot', seed: 0, tasks: 4 });
const adapter = makeResults({ method: 'clip-adapter', seed: 0, tasks: 3, synthetic: false, data: '/data/cifar100-vitb16' });

const asRun = (dir: string, r: unknown) => ({ dir, results: validateResults(r, path.join(dir, 'results.json')) });
const clone = (x: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(x)) as Record<string, unknown>;

describe('loadResults: validation', () => {
  test('accepts the fixtures and fills the report view', () => {
    const r = validateResults(clapA, 'a/results.json');
    assert.equal(r.method, 'clap');
    assert.equal(r.seed, 0);
    assert.equal(r.data, 'synthetic (tiny)');
    assert.equal(r.novelty.length, 6);
    assert.equal(r.reliability.length, 4);
    assert.equal(r.evalBatching, 'mixed');
    assert.deepEqual(r.repeatedRuns, []);
  });

  test('accepts older spellings and computes acc_t when absent', () => {
    const x = clone(zeroshot);
    const cfg = x['config'] as Record<string, unknown>;
    x['method'] = cfg['method'];
    delete cfg['method'];
    x['stepAccuracy'] = x['stepAccuracies'];
    delete x['stepAccuracies'];
    const r = validateResults(x, 'z/results.json');
    assert.equal(r.method, 'zeroshot');
    assert.deepEqual(r.stepAccuracies, zeroshot['stepAccuracies']);
    delete x['stepAccuracy'];
    const A = zeroshot['accuracyMatrix'] as number[][];
    assert.ok(Math.abs(validateResults(x, 'z').stepAccuracies[2]! - (A[2]![0]! + A[2]![1]! + A[2]![2]!) / 3) < 1e-12);
  });

  test('truncated JSON names the file and says it is truncated', () => {
    const text = JSON.stringify(clapA);
    assert.throws(() => parseResults(text.slice(0, text.length / 2), 'runs/x/results.json'), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /^runs\/x\/results\.json: truncated JSON/);
      return true;
    });
    assert.throws(() => parseResults('', 'r.json'), /r\.json: file is empty/);
    assert.throws(() => parseResults('{"a": tru}', 'r.json'), /r\.json: not valid JSON/);
  });

  const cases: [string, (x: Record<string, unknown>) => void, RegExp][] = [
    ['missing accuracyMatrix', (x) => delete x['accuracyMatrix'], /missing key "accuracyMatrix"/],
    ['missing ece.dataset', (x) => delete (x['ece'] as Record<string, unknown>)['dataset'], /missing key "ece\.dataset"/],
    ['missing method', (x) => delete (x['config'] as Record<string, unknown>)['method'], /missing key "config\.method"/],
    ['accuracy above 1', (x) => ((x['accuracyMatrix'] as number[][])[2]![1] = 1.5), /key "accuracyMatrix\[2\]\[1\]": expected a number in \[0, 1\], got 1\.5/],
    ['ragged row of the wrong length', (x) => (x['accuracyMatrix'] as number[][])[1]!.push(0.5), /key "accuracyMatrix\[1\]": expected 2 entries, got 3/],
    ['ece of the wrong length', (x) => (x['ece'] as { dataset: number[] }).dataset.pop(), /key "ece\.dataset": expected 4 entries, got 3/],
    ['synthetic not boolean', (x) => (x['synthetic'] = 'yes'), /key "synthetic": expected true or false, got "yes"/],
    ['novelty auroc a string', (x) => ((x['novelty'] as Record<string, unknown>[])[0]!['auroc'] = 'high'), /key "novelty\[0\]\.auroc": expected a finite number, got "high"/],
    ['novelty step past the end', (x) => ((x['novelty'] as Record<string, unknown>[])[1]!['step'] = 9), /key "novelty\[1\]\.step": expected a number in \[0, 3\], got 9/],
    ['roc of unequal lengths', (x) => (x['novelty'] as { roc: { tpr: number[] } }[])[0]!.roc.tpr.pop(), /key "novelty\[0\]\.roc\.tpr": expected 50 entries, got 49/],
    ['reliability bin count negative', (x) => ((x['reliability'] as { bins: { count: number }[] }[])[3]!.bins[7]!.count = -1), /key "reliability\[3\]\.bins\[7\]\.count"/],
    ['task index out of order', (x) => ((x['tasks'] as { index: number }[])[2]!.index = 5), /key "tasks\[2\]\.index"/],
    ['more matrix rows than tasks', (x) => (x['tasks'] as unknown[]).pop(), /key "accuracyMatrix": has 4 rows but the run has 3 tasks/],
    ['timing null', (x) => ((x['timing'] as unknown[])[0] = null), /key "timing\[0\]": expected a finite number, got null/],
  ];
  for (const [name, mutate, expected] of cases) {
    test(`rejects ${name}, naming the file and key`, () => {
      const x = clone(clapA);
      mutate(x);
      assert.throws(() => validateResults(x, 'runs/clap/results.json'), (e: unknown) => {
        assert.ok(e instanceof DataError, String(e));
        assert.equal(e.file, 'runs/clap/results.json');
        assert.match(e.message, /^runs\/clap\/results\.json: /);
        assert.match(e.message, expected);
        return true;
      });
    });
  }

  test('a repeated-runs summary is read when present', () => {
    const x = { ...clone(zeroshot), runs: { n: 3, metrics: { averageAccuracy: { mean: 0.71, std: 0.012 }, lastAccuracy: { mean: 0.6, std: null } } } };
    assert.deepEqual(validateResults(x, 'f').repeatedRuns, [
      { metric: 'metrics.averageAccuracy', mean: 0.71, std: 0.012 },
      { metric: 'metrics.lastAccuracy', mean: 0.6, std: null },
    ]);
    const arr = { ...clone(zeroshot), runs: [{ seed: 0, averageAccuracy: 0.7 }, { seed: 1, averageAccuracy: 0.74 }] };
    const got = validateResults(arr, 'f').repeatedRuns.find((e) => e.metric === 'averageAccuracy')!;
    assert.ok(Math.abs(got.mean - 0.72) < 1e-12 && Math.abs(got.std! - Math.SQRT2 * 0.02) < 1e-12);
  });
});

describe('summary statistics', () => {
  test('mean and sample std (n - 1) by hand', () => {
    // 0.70 and 0.74: mean 0.72, deviations ±0.02, std = sqrt((0.0004 + 0.0004) / 1) = 0.028284...
    const { mean, std } = meanStd([0.7, 0.74]);
    assert.ok(Math.abs(mean - 0.72) < 1e-12);
    assert.ok(Math.abs(std! - 0.0282842712) < 1e-9);
    assert.equal(formatMeanStd([0.7, 0.74], (x) => (100 * x).toFixed(2)), '72.00 ± 2.83');
    assert.equal(formatMeanStd([0.5], (x) => x.toFixed(2)), '0.50', 'a single value: the mean alone, no "± —"');
    assert.equal(formatMeanStd([null, null], (x) => x.toFixed(2)), '—');
  });
});

describe('charts', () => {
  const runs = [asRun('r/clap-0', clapA), asRun('r/zs', zeroshot)];
  const chartRuns: ChartRun[] = runs.map((r, i) => ({ label: runLabels(runs)[i]!, results: r.results }));

  test('one spec per kind with data; runs without novelty get no novelty charts', () => {
    assert.deepEqual(chartSpecs(chartRuns).map((c) => c.kind), ['accuracy', 'matrix', 'ece', 'reliability', 'novelty', 'roc']);
    assert.deepEqual(chartSpecs(chartRuns.slice(1)).map((c) => c.kind), ['accuracy', 'matrix', 'ece']);
  });

  test('labels are unique even for the same method and seed', () => {
    const twins = [asRun('a/run', zeroshot), asRun('b/other', zeroshot), asRun('c/run', zeroshot)];
    assert.deepEqual(runLabels(twins), ['zeroshot · seed 0 (run) #1', 'zeroshot · seed 0 (other)', 'zeroshot · seed 0 (run) #3']);
  });

  test('thinCurve keeps both ends and drops near-duplicates', () => {
    const fpr = Array.from({ length: 1001 }, (_, i) => i / 1000);
    const thin = thinCurve(fpr, fpr);
    assert.ok(thin.fpr.length < 300);
    assert.deepEqual([thin.fpr[0], thin.fpr.at(-1), thin.tpr.at(-1)], [0, 1, 1]);
  });
});

describe('renderReport', () => {
  let html = '';
  before(async () => {
    html = await renderReport([asRun('runs/clap-0', clapA), asRun('runs/clap-1', clapB), asRun('runs/zs', zeroshot), asRun('runs/ad', adapter)]);
  });

  test('every chart kind is present as inline SVG', () => {
    for (const kind of ['accuracy', 'matrix', 'ece', 'reliability', 'novelty', 'roc']) {
      const m = new RegExp(`<figure class="chart" id="chart-${kind}"[^>]*>.*?<svg[^>]*class="marks"`, 's').exec(html);
      assert.ok(m, `chart ${kind} missing`);
    }
    assert.equal(html.match(/<svg /g)?.length, 12, 'each chart drawn for the wide and the narrow layout');
  });

  test('SVG ids are unique across the page', () => {
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('the summary table has mean ± std per method (hand-computed for two clap runs)', () => {
    const row = /<tr><td><strong>clap<\/strong>.*?<\/tr>/s.exec(html)?.[0] ?? '';
    assert.match(row, /<td class="num">2<\/td>/);
    assert.match(row, /<td>0, 1<\/td>/);
    assert.match(row, /72\.00 ± 2\.83/); // average accuracy 0.70, 0.74
    assert.match(row, /62\.50 ± 3\.54/); // last accuracy 0.60, 0.65: std 0.05 / sqrt 2
    const zs = /<tr><td><strong>zeroshot<\/strong>.*?<\/tr>/s.exec(html)?.[0] ?? '';
    assert.match(zs, new RegExp(`${(100 * (zeroshot['averageAccuracy'] as number)).toFixed(2)}</td>`));
    assert.doesNotMatch(zs, /±/, 'a single run shows no "± —"');
    assert.match(html, /<td>\/data\/cifar100-vitb16<\/td>/);
  });

  test('the synthetic banner names the synthetic runs when some are real', () => {
    assert.match(html, /class="banner"[^>]*><strong>Synthetic data\.<\/strong> 3 of 4 runs/);
  });

  test('no scripts and no external resources', () => {
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|\bsrc=|@import|href="http/i);
    assert.match(html, /Content-Security-Policy/);
  });

  test('no banner when every run is on real features', async () => {
    const page = await renderReport([asRun('runs/ad', adapter)]);
    assert.doesNotMatch(page, /class="banner"/);
    assert.equal(page.match(/<svg /g)?.length, 6);
  });

  test('text from the files is escaped (method, data and directory names)', async () => {
    const evil = '<script>alert("x")</script><img src=x onerror=alert(1)>';
    const x = clone(clapA);
    (x['config'] as Record<string, unknown>)['method'] = evil;
    (x['config'] as Record<string, unknown>)['data'] = `</td>${evil}`;
    ((x['novelty'] as Record<string, unknown>[])[0]!)['score'] = evil;
    const page = await renderReport([asRun(`runs/${evil}`, x)]);
    assert.doesNotMatch(page, /<script|<img|onerror=alert\(1\)>/);
    assert.ok(page.includes(escapeHtml(evil)));
    assert.ok(page.includes('&lt;script&gt;alert('), 'escaped name shown');
  });

  test('edge cases render: one task (BWT null), all-empty reliability bins, 20 tasks', async () => {
    const one = clone(makeResults({ method: 'clap', seed: 3, tasks: 1 }));
    one['reliability'] = [{ step: 0, bins: [{ lower: 0, upper: 1, count: 0, meanConfidence: null, accuracy: null }] }];
    const many = makeResults({ method: 'zeroshot', seed: 0, tasks: 20 });
    const page = await renderReport([asRun('one', one), asRun('many', many)]);
    assert.equal(page.match(/<svg /g)?.length, 8);
    assert.match(/<tr><td><strong>clap<\/strong>.*?<\/tr>/s.exec(page)![0], /<td class="num">—<\/td>/);
  });

  test('a repeated-runs summary gets its own table', async () => {
    const page = await renderReport([asRun('r', { ...clone(zeroshot), runs: { averageAccuracy: { mean: 0.71, std: 0.01 } } })]);
    assert.match(page, /Repeated-runs summaries.*<td>averageAccuracy<\/td><td class="num">0\.71<\/td><td class="num">0\.01<\/td>/s);
  });
});

describe('writeReport and the report command', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'clap4clip-report-'));
    for (const [name, r] of [['compare/clap', clapA], ['compare/zeroshot', zeroshot], ['single', clapB]] as const) {
      await mkdir(path.join(root, name), { recursive: true });
      await writeFile(path.join(root, name, 'results.json'), JSON.stringify(r));
    }
    await mkdir(path.join(root, 'broken'));
    await writeFile(path.join(root, 'broken', 'results.json'), JSON.stringify(clapA).slice(0, 100));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  test('one directory: report.html inside it', async () => {
    const { file, runs } = await writeReport([path.join(root, 'single')]);
    assert.equal(file, path.join(root, 'single', 'report.html'));
    assert.equal(runs, 1);
    assert.match(await readFile(file, 'utf8'), /^<!doctype html>/);
  });

  test('a comparison folder expands to its run subdirectories', async () => {
    const found = await findRunDirs(path.join(root, 'compare'));
    assert.deepEqual(found.map((f) => path.basename(f.dir)), ['clap', 'zeroshot']);
    const { file, runs } = await writeReport([path.join(root, 'compare')]);
    assert.equal(runs, 2);
    assert.equal(file, path.join(root, 'compare', 'report.html'));
  });

  test('several directories need --out; the CLI writes there', async () => {
    await assert.rejects(writeReport([path.join(root, 'single'), path.join(root, 'compare')]), /--out FILE/);
    const out = path.join(root, 'all.html');
    const lines: string[] = [];
    const io = { stdout: { write: (s: string) => lines.push(s) } };
    assert.equal(await runReport([path.join(root, 'single'), path.join(root, 'compare'), '--out', out], io), 0);
    assert.match(lines.join(''), /report of 3 runs -> .*all\.html/);
    assert.equal((await readFile(out, 'utf8')).match(/<svg /g)?.length, 12);
  });

  test('errors name the directory or file', async () => {
    await assert.rejects(loadRuns([path.join(root, 'nope')]), /nope: no such run directory/);
    await assert.rejects(loadRuns([path.join(root, 'broken')]), /broken[\\/]results\.json: truncated JSON/);
    const empty = path.join(root, 'empty');
    await mkdir(empty);
    await assert.rejects(loadRuns([empty]), /empty: no results\.json here or in its subdirectories/);
  });

  test('argument parsing', () => {
    assert.deepEqual(parseReportArgs(['a', '--out=x.html', 'b']), { help: false, dirs: ['a', 'b'], out: 'x.html', json: false, quiet: false });
    assert.deepEqual(parseReportArgs(['--', '--weird-dir']).dirs, ['--weird-dir']);
    assert.throws(() => parseReportArgs(['a', '--output', 'x']), /unknown option --output \(did you mean --out\?\)/);
    assert.throws(() => parseReportArgs(['a', '--out']), /--out needs a value/);
  });

  test('no directory is an error', async () => {
    await assert.rejects(reportCommand.run([]), /give at least one run directory/);
  });
});
