/**
 * The report's calibration, configuration and provenance panels, loss curves, mean ± band over
 * repeated runs and chart sizes, on fixtures shaped like the current results.json.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DataError } from '../util/errors.js';
import { chartSpecs } from './chartList.js';
import { LAYOUTS, renderSvg, runLabels, type ChartRun } from './charts.js';
import { renderReport } from './html.js';
import { validateResults } from './loadResults.js';
import { fullResults } from './testFixtures.js';

const asRun = (dir: string, r: unknown) => ({ dir, results: validateResults(r, `${dir}/results.json`) });
const chartRuns = (runs: { dir: string; results: ReturnType<typeof validateResults> }[]): ChartRun[] => runs.map((r, i) => ({ label: runLabels(runs)[i]!, results: r.results }));

describe('optional parts of results.json', () => {
  test('calibration, loss curves, schedules and provenance are read; older files without them load with none', () => {
    const r = validateResults(fullResults({ method: 'clap', seed: 0, tasks: 3 }), 'x/results.json');
    assert.equal(r.calibration!.source, 'holdout');
    assert.equal(r.calibration!.steps.length, 3);
    assert.equal(r.calibration!.steps[2]!.temperature, 1.7);
    assert.equal(r.calibration!.steps[0]!.calibrated.bins.length, 15);
    assert.deepEqual(r.lossCurves.map((c) => [c.task, c.phase]), [[0, 'train'], [1, 'train'], [1, 'finetune'], [2, 'train'], [2, 'finetune']]);
    assert.deepEqual(r.schedules, { train: { epochs: 5, lr: 0.0016 }, finetune: { epochs: 2, lr: 0.00016 } });
    assert.equal(r.provenance!.version, '0.1.0');
    const old = fullResults({ method: 'clap', seed: 0, tasks: 3 });
    for (const k of ['calibration', 'schedules', 'provenance', 'createdAt', 'steps']) delete old[k];
    const o = validateResults(old, 'old/results.json');
    assert.deepEqual([o.calibration, o.lossCurves, o.schedules, o.provenance, o.createdAt], [null, [], null, null, null]);
  });

  test('a bad calibration record names the file and key', () => {
    const bad = fullResults({ method: 'clap', seed: 0, tasks: 2 });
    (bad['calibration'] as { steps: { temperature: number }[] }).steps[1]!.temperature = -1;
    assert.throws(() => validateResults(bad, 'runs/x/results.json'), (e: unknown) => e instanceof DataError && /runs\/x\/results\.json/.test(e.message) && /calibration\.steps\[1\]\.temperature/.test(e.message));
    const worse = fullResults({ method: 'clap', seed: 0, tasks: 2 });
    (worse['steps'] as { lossCurve: { train: { loss: unknown[] } } }[])[0]!.lossCurve.train.loss = [1];
    assert.throws(() => validateResults(worse, 'y.json'), /steps\[0\]\.lossCurve\.train\.loss/);
  });
});

describe('report panels', () => {
  const runs = [asRun('r/zs', fullResults({ method: 'zeroshot', seed: 0, tasks: 4, sgd: false })), asRun('r/clap', fullResults({ method: 'clap', seed: 0, tasks: 4 }))];

  test('summary shows raw and calibrated ECE side by side with T; a calibration table per run', async () => {
    const html = await renderReport(runs);
    const head = /<thead><tr><th>Method<\/th>.*?<\/tr><\/thead>/s.exec(html)![0];
    assert.match(head, /<th>ECE raw<\/th><th>ECE calibrated<\/th><th>T<\/th>/);
    const clap = /<tr><td><strong>clap<\/strong>.*?<\/tr>/s.exec(html)![0];
    const final = runs[1]!.results.calibration!.steps[3]!;
    assert.ok(clap.includes(`<td class="num">${runs[1]!.results.ece.dataset[3]!.toFixed(4)}</td><td class="num">${final.calibrated.eceDataset.toFixed(4)}</td><td class="num">${final.temperature.toPrecision(3)}</td>`));
    assert.match(html, /<section id="calibration"><h2>Calibration<\/h2>/);
    assert.match(html, /clap · seed 0: T fitted on 10 held-out training samples per class/);
    assert.ok(html.includes(`<td class="num">4</td><td class="num">${final.temperature.toPrecision(3)}</td><td class="num">400</td>`), 'step 4: T and the samples it was fitted on');
  });

  test('configuration and provenance: schedule as run, memory, T, batch, selector, version, commit, date', async () => {
    const html = await renderReport(runs);
    const panel = /<section id="configuration">.*?<\/section>/s.exec(html)![0];
    for (const [label, zs, clap] of [
      ['Epochs (task / finetuning)', 'none / none', '5 / 2'],
      ['Learning rate (task / finetuning)', 'none / none', '0.0016 / 0.00016'],
      ['Batch size', '32', '32'], ['Memory', '1000 (total)', '1000 (total)'], ['Exemplar selector', 'random', 'random'],
      ['Monte-Carlo samples T', '20', '20'], ['clap4clip version', '0.1.0', '0.1.0'], ['Commit', 'f2396cf01234', 'f2396cf01234'], ['Date', '2026-12-06 04:00:00 UTC', '2026-12-06 04:00:00 UTC'],
    ]) {
      assert.ok(panel.includes(`<th scope="row">${label}</th><td>${zs}</td><td>${clap}</td>`), label);
    }
  });

  test('loss curves: a chart for runs that trained, none when no run did', () => {
    const kinds = chartSpecs(chartRuns(runs)).map((c) => c.kind);
    assert.deepEqual(kinds, ['accuracy', 'matrix', 'ece', 'reliability', 'loss']);
    const loss = chartSpecs(chartRuns(runs)).find((c) => c.kind === 'loss')!.spec(LAYOUTS[0]!) as { data: { values: Record<string, unknown>[] } };
    assert.deepEqual([...new Set(loss.data.values.map((v) => v['run']))], ['clap · seed 0']);
    // Tasks one after another: task 2's curve starts after task 1's 40 iterations.
    const task2 = loss.data.values.filter((v) => v['task'] === 2 && v['phase'] === 'learning the task');
    assert.equal(task2[0]!['iteration'], 44);
    assert.ok(!chartSpecs(chartRuns(runs.slice(0, 1))).some((c) => c.kind === 'loss'));
  });

  test('--runs 3: one mean line with a ± std band per method, not a line per run', () => {
    const three = [0, 1, 2].map((seed) => asRun(`r/run-${seed}`, fullResults({ method: 'clap', seed, tasks: 3 })));
    const acc = chartSpecs(chartRuns(three))[0]!.spec(LAYOUTS[0]!) as { data: { values: Record<string, number | string>[] } };
    const values = acc.data.values;
    assert.deepEqual([...new Set(values.map((v) => v['series']))], ['clap · mean of 3 runs']);
    assert.equal(values.length, 3);
    const step1 = three.map((r) => r.results.stepAccuracies[0]!);
    const mean = step1.reduce((a, b) => a + b, 0) / 3;
    const std = Math.sqrt(step1.reduce((a, b) => a + (b - mean) ** 2, 0) / 2);
    assert.ok(Math.abs((values[0]!['mean'] as number) - mean) < 1e-12);
    assert.ok(Math.abs((values[0]!['hi'] as number) - (mean + std)) < 1e-12 && std > 0);
  });

  test('reliability: raw and calibrated panels with the bin counts; the matrix draws no grid through its numbers', () => {
    const specs = chartSpecs(chartRuns(runs));
    const rel = JSON.stringify(specs.find((c) => c.kind === 'reliability')!.spec(LAYOUTS[0]!));
    assert.match(rel, /after task 4, raw/);
    assert.match(rel, /calibrated, T = 1\.80/);
    assert.match(rel, /"text":\{"field":"count"/);
    const matrix = specs.find((c) => c.kind === 'matrix')!.spec(LAYOUTS[0]!) as { spec: { encoding: { x: { axis: { grid: boolean } }; y: { axis: { grid: boolean } } } } };
    assert.equal(matrix.spec.encoding.x.axis.grid, false);
    assert.equal(matrix.spec.encoding.y.axis.grid, false);
  });

  test('every chart fits its layout: SVG width <= the layout width, for 1 to 9 runs', async () => {
    const many = ['zeroshot', 'clip-adapter', 'clap'].flatMap((method) => [0, 1, 2].map((seed) => asRun(`r/${method}-${seed}`, fullResults({ method, seed, tasks: 10, sgd: method !== 'zeroshot' }))));
    for (const set of [many.slice(0, 1), many.slice(0, 3), many, [0, 3, 6].map((i) => many[i]!)]) {
      for (const chart of chartSpecs(chartRuns(set))) {
        for (const layout of LAYOUTS) {
          const svg = await renderSvg(chart.spec(layout), 't');
          const width = Number(/<svg[^>]*\bwidth="([\d.]+)"/.exec(svg)![1]);
          assert.ok(width <= layout.width + 1, `${chart.kind} (${set.length} runs) is ${width} px wide in the ${layout.name} layout of ${layout.width} px`);
        }
      }
    }
  });
});
