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

export type ChartKind = 'accuracy' | 'matrix' | 'ece' | 'reliability' | 'loss' | 'novelty' | 'roc';

export interface ChartSpec {
  kind: ChartKind;
  title: string;
  /** One or two sentences saying what the chart shows and how to read it. */
  caption: string;
  /** The chart drawn for a layout. */
  spec: (layout: Layout) => TopLevelSpec;
}

/** A chart drawn for every layout (`LAYOUTS`, same order). */
export interface RenderedChart extends Omit<ChartSpec, 'spec'> {
  svgs: { layout: Layout; svg: string }[];
}

export type Row = Record<string, string | number>;

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

/** Shared look: readable fonts, no chart border, long run labels not cut short. */
export const CONFIG = {
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

/** The page width a chart is drawn for: `wide` on large screens, `narrow` below 1000 px (CSS picks one). */
export interface Layout {
  name: 'wide' | 'narrow';
  /** Width of the whole SVG in px (axes, legends and titles included). */
  width: number;
}
export const LAYOUTS: readonly Layout[] = [
  { name: 'wide', width: 1120 },
  { name: 'narrow', width: 720 },
];

/**
 * Columns and plot width of facet panels that fit `layout`: `extra` is what a panel needs beside
 * its plot (axes, labels, spacing), `legend` the width of a legend on the right.
 */
export function panelGrid(layout: Layout, panels: number, extra: number, maxPlot: number, minPlot = 160, legend = 0): { columns: number; plot: number } {
  const room = layout.width - legend;
  const columns = Math.max(1, Math.min(panels, Math.floor(room / (minPlot + extra))));
  return { columns, plot: Math.max(80, Math.min(maxPlot, Math.floor(room / columns) - extra)) };
}

/** Header labels of panels: wrapped at " — " and limited to the panel's width (never cut by the SVG's edge). */
export function headerConfig(plot: number) {
  return { labelFontSize: 12, labelLimit: plot, labelExpr: "split(datum.label, ' — ')" };
}

/** A single view drawn exactly `layout.width` wide, legend included (Vega-Lite's `fit`). */
function fitted(layout: Layout, height: number) {
  return { width: layout.width, height, autosize: { type: 'fit' as const, contains: 'padding' as const } };
}

/** Legends right of the plot when wide, under it when narrow; symbols opaque (a band's opacity must not fade them). */
const legendAt = (layout: Layout) => ({ symbolOpacity: 1, ...(layout.name === 'wide' ? {} : { orient: 'bottom' as const, direction: 'vertical' as const }) });

/**
 * Runs of the same method on the same data are one series: its line is the mean over the runs
 * with a band of ± one sample standard deviation (no band for a single run).
 */
export interface Series {
  label: string;
  runs: ChartRun[];
}

export function seriesOf(runs: readonly ChartRun[]): Series[] {
  const groups = new Map<string, ChartRun[]>();
  for (const r of runs) {
    const key = JSON.stringify([r.results.method, r.results.data]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const methods = new Map<string, number>();
  for (const g of groups.values()) methods.set(g[0]!.results.method, (methods.get(g[0]!.results.method) ?? 0) + 1);
  return [...groups.values()].map((g) => {
    if (g.length === 1) return { label: g[0]!.label, runs: g };
    const r = g[0]!.results;
    const data = methods.get(r.method)! > 1 ? ` · ${r.data}` : '';
    return { label: `${r.method}${data} · mean of ${g.length} runs`, runs: g };
  });
}

/** Mean and ± std bounds over the runs of a series at each step (steps that some run lacks use the runs that have it). */
export function seriesBand(series: Series, value: (r: ReportResults) => readonly number[]): { step: number; mean: number; lo: number; hi: number }[] {
  const steps = Math.max(...series.runs.map((r) => value(r.results).length));
  const out = [];
  for (let t = 0; t < steps; t++) {
    const xs = series.runs.map((r) => value(r.results)[t]).filter((x): x is number => x !== undefined);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
    out.push({ step: t + 1, mean, lo: mean - std, hi: mean + std });
  }
  return out;
}

const stepAxis = { title: 'after task', labelAngle: 0 } as const;

/** acc_t per step: one line per series (mean over its runs) with a ± std band. */
export function accuracySpec(runs: readonly ChartRun[], layout: Layout = LAYOUTS[0]!): TopLevelSpec {
  const values: Row[] = seriesOf(runs).flatMap((s) => seriesBand(s, (r) => r.stepAccuracies).map((b) => ({ series: s.label, ...b })));
  const x = { field: 'step', type: 'ordinal' as const, axis: stepAxis };
  const color = { field: 'series', type: 'nominal' as const, title: 'method', legend: legendAt(layout) };
  return {
    config: CONFIG,
    ...fitted(layout, 300),
    data: { values },
    layer: [
      { mark: { type: 'area', opacity: 0.18 }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color } },
      {
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: {
          x,
          // Zoomed to the data (not from 0): the differences between methods are a few points.
          y: { field: 'mean', type: 'quantitative', title: 'acc_t, all seen classes', axis: { format: '.0%' }, scale: { zero: false, nice: true } },
          color,
        },
      },
    ],
  };
}

/** A[t][k] as a heat map per series (mean over its runs), values written in the cells while legible; no grid through them. */
export function matrixSpec(runs: readonly ChartRun[], layout: Layout = LAYOUTS[0]!): TopLevelSpec {
  const series = seriesOf(runs);
  const values: Row[] = series.flatMap((s) => {
    const rows = Math.max(...s.runs.map((r) => r.results.accuracyMatrix.length));
    return Array.from({ length: rows }, (_, t) => Array.from({ length: t + 1 }, (_, k) => {
      const xs = s.runs.map((r) => r.results.accuracyMatrix[t]?.[k]).filter((x): x is number => x !== undefined);
      const acc = xs.reduce((a, b) => a + b, 0) / xs.length;
      return { series: s.label, step: t + 1, task: k + 1, accuracy: acc, pct: acc * 100 };
    })).flat();
  });
  const maxTasks = Math.max(...runs.map((r) => r.results.accuracyMatrix.length));
  const grid = panelGrid(layout, series.length, 70, 340, 200);
  const side = Math.max(120, Math.min(grid.plot, 36 * maxTasks));
  const cells = {
    mark: { type: 'rect' as const },
    encoding: {
      color: { field: 'accuracy', type: 'quantitative' as const, title: 'accuracy', scale: { scheme: 'viridis', domain: [0, 1] }, legend: { format: '.0%', orient: 'bottom' as const, direction: 'horizontal' as const } },
    },
  };
  // Numbers in cells only while they stay legible.
  const labels = {
    mark: { type: 'text' as const, fontSize: side / maxTasks >= 30 ? 12 : 10 },
    encoding: {
      text: { field: 'pct', type: 'quantitative' as const, format: '.0f' },
      // viridis is dark below ~0.6: white text there, black on the light greens and yellows.
      color: { condition: { test: 'datum.accuracy < 0.6', value: 'white' }, value: 'black' },
    },
  };
  const axis = { labelAngle: 0, grid: false, domain: false, ticks: false };
  return {
    config: { ...CONFIG, header: headerConfig(side) },
    data: { values },
    columns: grid.columns,
    facet: { field: 'series', type: 'nominal', title: null, sort: series.map((s) => s.label) },
    spec: {
      width: side,
      height: side,
      encoding: {
        x: { field: 'task', type: 'ordinal', title: 'accuracy on the classes of task', axis: { ...axis, orient: 'top' } },
        y: { field: 'step', type: 'ordinal', title: 'after training task', axis },
      },
      layer: side / maxTasks >= 16 ? [cells, labels] : [cells],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

/** ECE per step for each series (mean over runs): raw over the whole test set and over batches, and calibrated when recorded. */
export function eceSpec(runs: readonly ChartRun[], layout: Layout = LAYOUTS[0]!): TopLevelSpec {
  const kinds = ['raw, whole test set', 'raw, mean over batches', 'calibrated, whole test set'];
  const values: Row[] = seriesOf(runs).flatMap((s) => {
    const rows: Row[] = [];
    for (const b of seriesBand(s, (r) => r.ece.dataset)) rows.push({ series: s.label, step: b.step, kind: kinds[0]!, ece: b.mean });
    for (const b of seriesBand(s, (r) => r.ece.perBatchMean)) rows.push({ series: s.label, step: b.step, kind: kinds[1]!, ece: b.mean });
    if (s.runs.every((r) => (r.results.calibration?.steps.length ?? 0) > 0)) {
      const cal = seriesBand(s, (r) => calibratedEce(r));
      for (const b of cal) if (Number.isFinite(b.mean)) rows.push({ series: s.label, step: b.step, kind: kinds[2]!, ece: b.mean });
    }
    return rows;
  });
  return {
    config: CONFIG,
    ...fitted(layout, 280),
    data: { values },
    // No point markers: with them the legend shows dots instead of the dash patterns.
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 'step', type: 'ordinal', axis: stepAxis },
      y: { field: 'ece', type: 'quantitative', title: 'ECE (15 bins)', axis: { format: '.3f' } },
      color: { field: 'series', type: 'nominal', title: 'method', legend: legendAt(layout) },
      strokeDash: { field: 'kind', type: 'nominal', title: 'ECE', sort: kinds, scale: { domain: kinds, range: [[1, 0], [6, 4], [2, 2]] }, legend: legendAt(layout) },
      detail: { field: 'kind', type: 'nominal' },
    },
  };
}

/** Dataset-level calibrated ECE per step (NaN where a step was not calibrated). */
export function calibratedEce(r: ReportResults): number[] {
  const byStep = new Map((r.calibration?.steps ?? []).map((c) => [c.step, c.calibrated.eceDataset]));
  return r.ece.dataset.map((_, t) => byStep.get(t) ?? NaN);
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
