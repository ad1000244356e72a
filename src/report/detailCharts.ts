/**
 * The report's per-run detail charts, one panel per series (runs of one method on one data) or
 * per run: reliability diagrams with bin counts (raw and, when recorded, temperature-scaled),
 * training loss curves, novelty AUROC per step and ROC curves. Pure functions from validated
 * results and a layout to Vega-Lite specs; null when no run has the data.
 */
import type { TopLevelSpec } from 'vega-lite';
import { CONFIG, headerConfig, panelGrid, seriesOf, type ChartRun, type Layout, type Row } from './charts.js';
import type { ReliabilityBinRecord } from './loadResults.js';

const stepAxis = { title: 'after task', labelAngle: 0 } as const;

/** Last step of a per-step record list, or null when the list is empty. */
function lastStep(steps: readonly { step: number }[]): number | null {
  return steps.length === 0 ? null : Math.max(...steps.map((s) => s.step));
}

/** Bins of several runs merged: counts add, confidence and accuracy are count-weighted means. */
export function mergeBins(sets: readonly (readonly ReliabilityBinRecord[])[]): ReliabilityBinRecord[] {
  const first = sets[0] ?? [];
  return first.map((b, j) => {
    let count = 0;
    let conf = 0;
    let acc = 0;
    for (const set of sets) {
      const x = set[j];
      if (!x || x.count === 0) continue;
      count += x.count;
      conf += x.count * x.meanConfidence;
      acc += x.count * x.accuracy;
    }
    return { lower: b.lower, upper: b.upper, count, meanConfidence: count ? conf / count : 0, accuracy: count ? acc / count : 0 };
  });
}

/** One reliability panel: bars of accuracy per bin over the diagonal, and the bin counts below. */
function reliabilityPanel(title: string, bins: readonly ReliabilityBinRecord[], plot: number): Record<string, unknown> {
  const values: Row[] = bins.filter((b) => b.count > 0).map((b) => ({ lower: b.lower, upper: b.upper, mid: (b.lower + b.upper) / 2, accuracy: b.accuracy, count: b.count }));
  const maxCount = Math.max(1, ...values.map((v) => v['count'] as number));
  const x = { field: 'lower', type: 'quantitative' as const, scale: { domain: [0, 1] } };
  return {
    title: { text: title.split(' — '), fontSize: 12, fontWeight: 'normal', limit: plot + 80 },
    vconcat: [
      {
        width: plot,
        height: plot,
        data: { values: [...values, { diagonal: 1 }] },
        layer: [
          {
            transform: [{ filter: 'isValid(datum.count)' }],
            mark: { type: 'rect', stroke: 'white', strokeWidth: 1, color: '#4c78a8' },
            encoding: { x: { ...x, title: null, axis: { labels: false } }, x2: { field: 'upper' }, y: { field: 'accuracy', type: 'quantitative', title: 'accuracy in bin', scale: { domain: [0, 1] } }, y2: { datum: 0 } },
          },
          {
            transform: [{ filter: 'isValid(datum.diagonal)' }],
            mark: { type: 'rule', color: '#d62728', strokeDash: [5, 4], strokeWidth: 1.5 },
            encoding: { x: { datum: 0, type: 'quantitative' }, x2: { datum: 1 }, y: { datum: 0, type: 'quantitative' }, y2: { datum: 1 } },
          },
        ],
      },
      {
        width: plot,
        height: 64,
        data: { values },
        layer: [
          {
            mark: { type: 'rect', color: '#9aa5b1', stroke: 'white', strokeWidth: 1 },
            encoding: { x: { ...x, title: 'confidence' }, x2: { field: 'upper' }, y: { field: 'count', type: 'quantitative', title: 'samples', scale: { domain: [0, maxCount * 1.9] }, axis: { tickCount: 2, grid: false } }, y2: { datum: 0 } },
          },
          {
            // The count of each bin, written upward from the top of its bar.
            mark: { type: 'text', angle: 270, align: 'left', baseline: 'middle', dx: 3, fontSize: 9, color: '#1d232b' },
            encoding: { x: { field: 'mid', type: 'quantitative', scale: { domain: [0, 1] } }, y: { field: 'count', type: 'quantitative' }, text: { field: 'count', type: 'quantitative', format: 'd' } },
          },
        ],
      },
    ],
    spacing: 4,
  };
}

/**
 * Reliability diagrams at each series' last step with reliability data: raw, and calibrated
 * (temperature-scaled, with T in the title) where the runs recorded it; bins merged over a
 * series' runs, with the number of test samples per bin under each diagram.
 */
export function reliabilitySpec(runs: readonly ChartRun[], layout: Layout): TopLevelSpec | null {
  const panels: { title: string; bins: ReliabilityBinRecord[] }[] = [];
  for (const s of seriesOf(runs)) {
    const steps = s.runs.map((r) => lastStep(r.results.reliability));
    if (steps.some((x) => x === null)) continue;
    const step = Math.min(...(steps as number[]));
    const raw = s.runs.map((r) => r.results.reliability.filter((x) => x.step === step).at(-1)!.bins);
    panels.push({ title: `${s.label} — after task ${step + 1}, raw`, bins: mergeBins(raw) });
    const cal = s.runs.map((r) => r.results.calibration?.steps.find((c) => c.step === step) ?? null);
    if (cal.every((c) => c !== null)) {
      const T = cal.map((c) => c!.temperature);
      const t = T.length === 1 ? `T = ${T[0]!.toPrecision(3)}` : `T = ${Math.min(...T).toPrecision(3)}–${Math.max(...T).toPrecision(3)}`;
      panels.push({ title: `${s.label} — calibrated, ${t}`, bins: mergeBins(cal.map((c) => c!.calibrated.bins)) });
    }
  }
  if (panels.length === 0) return null;
  const grid = panelGrid(layout, panels.length, 90, 240, 170);
  return {
    config: { ...CONFIG, axis: { ...CONFIG.axis, grid: true } },
    columns: grid.columns,
    concat: panels.map((p) => reliabilityPanel(p.title, p.bins, grid.plot)),
    spacing: 24,
  } as unknown as TopLevelSpec;
}

/**
 * Training loss over the iterations of each run, tasks one after another (train, then
 * finetuning from the second task on), one panel per run; runs without SGD have no curve.
 */
export function lossSpec(runs: readonly ChartRun[], layout: Layout): TopLevelSpec | null {
  const values: Row[] = [];
  for (const r of runs) {
    let offset = 0;
    const curves = [...r.results.lossCurves].sort((a, b) => a.task - b.task || (a.phase === 'train' ? -1 : 1));
    for (const c of curves) {
      c.iteration.forEach((it, i) => values.push({ run: r.label, task: c.task + 1, phase: c.phase === 'train' ? 'learning the task' : 'finetuning on the memory', iteration: offset + it, loss: c.loss[i]! }));
      offset += c.iteration.at(-1)!;
    }
  }
  if (values.length === 0) return null;
  const panels = new Set(values.map((v) => v['run'])).size;
  const grid = panelGrid(layout, panels, 80, 520, 240);
  return {
    config: { ...CONFIG, header: headerConfig(grid.plot) },
    data: { values },
    columns: grid.columns,
    facet: { field: 'run', type: 'nominal', title: null },
    spec: {
      width: grid.plot,
      height: 200,
      mark: { type: 'line', strokeWidth: 1.5 },
      encoding: {
        x: { field: 'iteration', type: 'quantitative', title: 'iteration (tasks in order)' },
        y: { field: 'loss', type: 'quantitative', title: 'training loss', scale: { zero: false } },
        color: { field: 'phase', type: 'nominal', title: 'phase', legend: { orient: 'bottom', direction: 'horizontal' } },
        detail: { field: 'task', type: 'ordinal' },
      },
    },
    resolve: { scale: { y: 'independent', x: 'independent' } },
  };
}

/** AUROC per step, one line per score, one panel per run (runs without novelty data omitted). */
export function noveltySpec(runs: readonly ChartRun[], layout: Layout): TopLevelSpec | null {
  const values: Row[] = [];
  for (const r of runs) {
    if (r.results.novelty.length === 0) continue;
    for (const n of r.results.novelty) values.push({ run: r.label, kind: 'score', step: n.step + 1, score: n.score, auroc: n.auroc });
    values.push({ run: r.label, kind: 'chance', auroc: 0.5 });
  }
  if (values.length === 0) return null;
  const panels = new Set(values.map((v) => v['run'])).size;
  const grid = panelGrid(layout, panels, 90, 300, 180, 130);
  return {
    config: { ...CONFIG, header: headerConfig(grid.plot) },
    data: { values },
    columns: grid.columns,
    facet: { field: 'run', type: 'nominal', title: null },
    spec: {
      width: grid.plot,
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
export function rocSpec(runs: readonly ChartRun[], layout: Layout): TopLevelSpec | null {
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
  const grid = panelGrid(layout, panels, 90, 260, 180, 130);
  return {
    config: { ...CONFIG, header: headerConfig(grid.plot) },
    data: { values },
    columns: grid.columns,
    facet: { field: 'panel', type: 'nominal', title: null },
    spec: {
      width: grid.plot,
      height: grid.plot,
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
            x: { field: 'fpr', type: 'quantitative', title: 'false-positive rate', scale: { domain: [0, 1] } },
            y: { field: 'tpr', type: 'quantitative', title: 'true-positive rate', scale: { domain: [0, 1] } },
            color: { field: 'score', type: 'nominal', title: 'score' },
            order: { field: 'i', type: 'quantitative' },
          },
        },
      ],
    },
  };
}
