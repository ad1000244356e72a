/**
 * The report's charts: Vega-Lite specs built from validated results (pure functions, one per
 * chart kind), rendered ahead of time to static SVG with Vega's headless View, so the page
 * needs neither scripts nor a network connection to show them.
 *
 * Steps are shown 1-based ("after task 3"), while results store 0-based task indices.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ReportResults } from './loadResults.js';

/** A run as the charts see it: results plus the unique label used in legends and panels. */
export interface ChartRun {
  label: string;
  results: ReportResults;
}

export type ChartKind = 'accuracy' | 'matrix' | 'ece' | 'reliability' | 'novelty' | 'roc';

export interface ChartSpec {
  kind: ChartKind;
  title: string;
  /** One or two sentences saying what the chart shows and how to read it. */
  caption: string;
  spec: TopLevelSpec;
}

export interface RenderedChart extends ChartSpec {
  svg: string;
}

type Row = Record<string, string | number>;

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

/** Shared look: readable fonts, no chart border, long run labels not cut short. */
const CONFIG = {
  font: FONT,
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 },
  header: { labelFontSize: 12, titleFontSize: 12, labelLimit: 320 },
  view: { stroke: '#ddd' },
  range: { category: { scheme: 'tableau10' } },
} as const;

/**
 * Unique, readable labels: "method · seed N", plus the directory name when two runs would
 * share a label, plus a counter as the last resort (same directory name in different parents).
 */
export function runLabels(runs: readonly { dir: string; results: ReportResults }[]): string[] {
  const base = runs.map((r) => `${r.results.method} · seed ${r.results.seed ?? '?'}`);
  const clash = (labels: string[], i: number): boolean => labels.filter((l) => l === labels[i]).length > 1;
  const withDir = base.map((l, i) => (clash(base, i) ? `${l} (${runs[i]!.dir.split(/[\\/]/).filter(Boolean).at(-1) ?? runs[i]!.dir})` : l));
  return withDir.map((l, i) => (clash(withDir, i) ? `${l} #${i + 1}` : l));
}

/** Panels per row in faceted charts. */
function columnsFor(panels: number): number {
  return Math.max(1, Math.min(3, panels));
}

const stepAxis = { title: 'after task', labelAngle: 0 } as const;

/** acc_t per step, one line per run. */
export function accuracySpec(runs: readonly ChartRun[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) => r.results.stepAccuracies.map((acc, t) => ({ run: r.label, step: t + 1, accuracy: acc })));
  return {
    config: CONFIG,
    width: 560,
    height: 300,
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'step', type: 'ordinal', axis: stepAxis },
      // Zoomed to the data (not from 0): the differences between methods are a few points.
      y: { field: 'accuracy', type: 'quantitative', title: 'accuracy on seen classes (acc_t)', axis: { format: '.0%' }, scale: { zero: false, nice: true } },
      color: { field: 'run', type: 'nominal', title: 'run' },
    },
  };
}

/** A[t][k] as a heat map per run with the values written in the cells (when they fit). */
export function matrixSpec(runs: readonly ChartRun[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) =>
    r.results.accuracyMatrix.flatMap((row, t) => row.map((acc, k) => ({ run: r.label, step: t + 1, task: k + 1, accuracy: acc, pct: acc * 100 }))),
  );
  const maxTasks = Math.max(...runs.map((r) => r.results.accuracyMatrix.length));
  const side = Math.max(180, Math.min(340, 36 * maxTasks));
  const cells = {
    mark: { type: 'rect' as const },
    encoding: {
      color: { field: 'accuracy', type: 'quantitative' as const, title: 'accuracy', scale: { scheme: 'viridis', domain: [0, 1] }, legend: { format: '.0%' } },
    },
  };
  // Numbers in cells only while they stay legible.
  const labels = {
    mark: { type: 'text' as const, fontSize: maxTasks <= 6 ? 12 : 10 },
    encoding: {
      text: { field: 'pct', type: 'quantitative' as const, format: '.0f' },
      // viridis is dark below ~0.6: white text there, black on the light greens and yellows.
      color: { condition: { test: 'datum.accuracy < 0.6', value: 'white' }, value: 'black' },
    },
  };
  return {
    config: CONFIG,
    data: { values },
    columns: columnsFor(runs.length),
    facet: { field: 'run', type: 'nominal', title: null },
    spec: {
      width: side,
      height: side,
      encoding: {
        x: { field: 'task', type: 'ordinal', title: 'accuracy on the classes of task', axis: { labelAngle: 0, orient: 'top' } },
        y: { field: 'step', type: 'ordinal', title: 'after training task' },
      },
      layer: maxTasks <= 12 ? [cells, labels] : [cells],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

/** Dataset-level and per-batch-mean ECE per step: colour = run, dash = kind. */
export function eceSpec(runs: readonly ChartRun[]): TopLevelSpec {
  const values: Row[] = runs.flatMap((r) =>
    r.results.ece.dataset.flatMap((d, t) => [
      { run: r.label, step: t + 1, kind: 'whole test set', ece: d },
      { run: r.label, step: t + 1, kind: 'mean over batches', ece: r.results.ece.perBatchMean[t]! },
    ]),
  );
  return {
    config: CONFIG,
    width: 560,
    height: 260,
    data: { values },
    // No point markers: with them the legend shows dots instead of the dash patterns.
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 'step', type: 'ordinal', axis: stepAxis },
      y: { field: 'ece', type: 'quantitative', title: 'ECE (15 bins)', axis: { format: '.3f' } },
      color: { field: 'run', type: 'nominal', title: 'run' },
      strokeDash: { field: 'kind', type: 'nominal', title: 'ECE over', sort: ['whole test set', 'mean over batches'] },
      detail: { field: 'kind', type: 'nominal' },
    },
  };
}

/** Last step of a per-step record list, or null when the list is empty. */
function lastStep(steps: readonly { step: number }[]): number | null {
  return steps.length === 0 ? null : Math.max(...steps.map((s) => s.step));
}

/** Accuracy per confidence bin (non-empty bins) at each run's last recorded step, with the diagonal. */
export function reliabilitySpec(runs: readonly ChartRun[]): TopLevelSpec | null {
  const values: Row[] = [];
  for (const r of runs) {
    const step = lastStep(r.results.reliability);
    if (step === null) continue;
    const panel = `${r.label} — after task ${step + 1}`;
    const rec = r.results.reliability.filter((x) => x.step === step).at(-1)!;
    for (const b of rec.bins) {
      if (b.count > 0) values.push({ panel, kind: 'bin', lower: b.lower, upper: b.upper, accuracy: b.accuracy, confidence: b.meanConfidence, count: b.count });
    }
    values.push({ panel, kind: 'diagonal', lower: 0, upper: 1, accuracy: 0, confidence: 1 });
  }
  if (values.length === 0) return null;
  const panels = new Set(values.map((v) => v['panel'])).size;
  return {
    config: CONFIG,
    data: { values },
    columns: columnsFor(panels),
    facet: { field: 'panel', type: 'nominal', title: null },
    spec: {
      width: 240,
      height: 240,
      layer: [
        {
          transform: [{ filter: { field: 'kind', equal: 'bin' } }],
          mark: { type: 'rect', stroke: 'white', strokeWidth: 1, color: '#4c78a8' },
          encoding: {
            x: { field: 'lower', type: 'quantitative', title: 'confidence', scale: { domain: [0, 1] } },
            x2: { field: 'upper' },
            y: { field: 'accuracy', type: 'quantitative', title: 'accuracy in bin', scale: { domain: [0, 1] } },
            y2: { datum: 0 },
          },
        },
        {
          transform: [{ filter: { field: 'kind', equal: 'diagonal' } }],
          mark: { type: 'rule', color: '#d62728', strokeDash: [5, 4], strokeWidth: 1.5 },
          encoding: {
            x: { field: 'lower', type: 'quantitative' },
            x2: { field: 'upper' },
            y: { field: 'accuracy', type: 'quantitative' },
            y2: { field: 'confidence' },
          },
        },
      ],
    },
  };
}

/** AUROC per step, one line per score, one panel per run (runs without novelty data omitted). */
export function noveltySpec(runs: readonly ChartRun[]): TopLevelSpec | null {
  const values: Row[] = [];
  for (const r of runs) {
    if (r.results.novelty.length === 0) continue;
    for (const n of r.results.novelty) values.push({ run: r.label, kind: 'score', step: n.step + 1, score: n.score, auroc: n.auroc });
    values.push({ run: r.label, kind: 'chance', auroc: 0.5 });
  }
  if (values.length === 0) return null;
  const panels = new Set(values.map((v) => v['run'])).size;
  return {
    config: CONFIG,
    data: { values },
    columns: columnsFor(panels),
    facet: { field: 'run', type: 'nominal', title: null },
    spec: {
      width: 260,
      height: 220,
      layer: [
        {
          transform: [{ filter: { field: 'kind', equal: 'chance' } }],
          mark: { type: 'rule', color: '#999', strokeDash: [4, 4] },
          encoding: { y: { field: 'auroc', type: 'quantitative' } },
        },
        {
          transform: [{ filter: { field: 'kind', equal: 'score' } }],
          mark: { type: 'line', point: true, strokeWidth: 2 },
          encoding: {
            x: { field: 'step', type: 'ordinal', axis: stepAxis },
            y: { field: 'auroc', type: 'quantitative', title: 'AUROC (known vs novel)', scale: { domain: [0, 1] } },
            color: { field: 'score', type: 'nominal', title: 'score' },
          },
        },
      ],
    },
  };
}

/**
 * Drops ROC points closer than `minStep` (L1) to the last kept one: curves from thousands of
 * test samples would otherwise put thousands of points per curve into the page. The first and
 * last points are always kept, so the curve's ends stay exact.
 */
export function thinCurve(fpr: readonly number[], tpr: readonly number[], minStep = 0.01): { fpr: number[]; tpr: number[] } {
  const outF = [fpr[0]!];
  const outT = [tpr[0]!];
  for (let i = 1; i < fpr.length; i++) {
    const last = i === fpr.length - 1;
    if (last || Math.abs(fpr[i]! - outF.at(-1)!) + Math.abs(tpr[i]! - outT.at(-1)!) >= minStep) {
      outF.push(fpr[i]!);
      outT.push(tpr[i]!);
    }
  }
  return { fpr: outF, tpr: outT };
}

/** ROC curves per score at each run's last step with recorded curves, with the chance diagonal. */
export function rocSpec(runs: readonly ChartRun[]): TopLevelSpec | null {
  const values: Row[] = [];
  for (const r of runs) {
    const withRoc = r.results.novelty.filter((n) => n.roc !== undefined);
    const step = lastStep(withRoc);
    if (step === null) continue;
    const panel = `${r.label} — after task ${step + 1}`;
    for (const n of withRoc.filter((x) => x.step === step)) {
      const curve = thinCurve(n.roc!.fpr, n.roc!.tpr);
      curve.fpr.forEach((f, i) => values.push({ panel, kind: 'curve', score: n.score, i, fpr: f, tpr: curve.tpr[i]! }));
    }
    values.push({ panel, kind: 'chance', fpr: 0, tpr: 0, fpr2: 1, tpr2: 1 });
  }
  if (values.length === 0) return null;
  const panels = new Set(values.map((v) => v['panel'])).size;
  return {
    config: CONFIG,
    data: { values },
    columns: columnsFor(panels),
    facet: { field: 'panel', type: 'nominal', title: null },
    spec: {
      width: 240,
      height: 240,
      layer: [
        {
          transform: [{ filter: { field: 'kind', equal: 'chance' } }],
          mark: { type: 'rule', color: '#999', strokeDash: [4, 4] },
          encoding: { x: { field: 'fpr', type: 'quantitative' }, y: { field: 'tpr', type: 'quantitative' }, x2: { field: 'fpr2' }, y2: { field: 'tpr2' } },
        },
        {
          transform: [{ filter: { field: 'kind', equal: 'curve' } }],
          mark: { type: 'line', strokeWidth: 2 },
          encoding: {
            x: { field: 'fpr', type: 'quantitative', title: 'false-positive rate (novel kept as known)', scale: { domain: [0, 1] } },
            y: { field: 'tpr', type: 'quantitative', title: 'true-positive rate (known)', scale: { domain: [0, 1] } },
            color: { field: 'score', type: 'nominal', title: 'score' },
            order: { field: 'i', type: 'quantitative' },
          },
        },
      ],
    },
  };
}

/** All charts the runs have data for, in reading order, with titles and captions. */
export function chartSpecs(runs: readonly ChartRun[]): ChartSpec[] {
  const charts: ChartSpec[] = [
    {
      kind: 'accuracy',
      title: 'Accuracy per step',
      caption:
        'Accuracy on all classes seen so far after each task (acc_t, the mean of row t of the accuracy matrix), one line per run. Higher is better; the average of a line is the average accuracy of the table.',
      spec: accuracySpec(runs),
    },
    {
      kind: 'matrix',
      title: 'Accuracy matrix',
      caption:
        'A[t][k] in %: accuracy on the classes of task k (columns) after training task t (rows), one panel per run. The diagonal is the task just learned; reading down a column shows how that task is forgotten.',
      spec: matrixSpec(runs),
    },
    {
      kind: 'ece',
      title: 'Calibration error per step',
      caption:
        'Expected calibration error (15 confidence bins) after each task. Solid: computed over the whole test set at once; dashed: the mean over test batches, as the reference reports it. Lower is better.',
      spec: eceSpec(runs),
    },
  ];
  const rel = reliabilitySpec(runs);
  if (rel) {
    charts.push({
      kind: 'reliability',
      title: 'Reliability diagram',
      caption:
        'Accuracy of the test predictions in each confidence bin after the last task with reliability data (empty bins left out). The dashed diagonal is perfect calibration: bars below it are over-confident, above it under-confident.',
      spec: rel,
    });
  }
  const nov = noveltySpec(runs);
  if (nov) {
    charts.push({
      kind: 'novelty',
      title: 'Novel-data detection (AUROC)',
      caption:
        'How well each score separates test images of the tasks seen so far (known) from those of later tasks (novel), after every task but the last; one line per score, one panel per run. 0.5 (dashed) is chance, 1 is perfect.',
      spec: nov,
    });
  }
  const roc = rocSpec(runs);
  if (roc) {
    charts.push({
      kind: 'roc',
      title: 'Novel-data detection (ROC curves)',
      caption:
        'ROC curves at the last step with recorded curves: fraction of known images kept as known (true-positive rate) against fraction of novel images taken for known (false-positive rate), per score. The dashed diagonal is chance.',
      spec: roc,
    });
  }
  return charts;
}

/**
 * Renders a Vega-Lite spec to an SVG string without a browser or network. Vega numbers clip
 * paths from 1 in every SVG, so ids are prefixed to stay unique when several SVGs share a page.
 */
export async function renderSvg(spec: TopLevelSpec, idPrefix: string): Promise<string> {
  const vgSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    return svg
      .replace(/\bid="([^"]+)"/g, `id="${idPrefix}-$1"`)
      .replace(/url\(#([^)]+)\)/g, `url(#${idPrefix}-$1)`)
      .replace(/href="#([^"]+)"/g, `href="#${idPrefix}-$1"`);
  } finally {
    view.finalize();
  }
}

/** Builds and renders every chart the runs have data for. */
export async function renderCharts(runs: readonly ChartRun[]): Promise<RenderedChart[]> {
  const out: RenderedChart[] = [];
  for (const chart of chartSpecs(runs)) out.push({ ...chart, svg: await renderSvg(chart.spec, `c-${chart.kind}`) });
  return out;
}
