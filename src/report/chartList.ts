/**
 * Every chart the runs have data for, in reading order, with titles and captions, and their
 * rendering to static SVG for each layout (the page shows the one that fits the screen).
 */
import { accuracySpec, eceSpec, LAYOUTS, matrixSpec, renderSvg, type ChartRun, type ChartSpec, type Layout, type RenderedChart } from './charts.js';
import { lossSpec, noveltySpec, reliabilitySpec, rocSpec } from './detailCharts.js';
import type { TopLevelSpec } from 'vega-lite';

/** A chart kind that may have no data: present when `build` gives a spec for the first layout. */
function optional(runs: readonly ChartRun[], build: (runs: readonly ChartRun[], layout: Layout) => TopLevelSpec | null): ((layout: Layout) => TopLevelSpec) | null {
  if (build(runs, LAYOUTS[0]!) === null) return null;
  return (layout) => build(runs, layout)!;
}

export function chartSpecs(runs: readonly ChartRun[]): ChartSpec[] {
  const charts: ChartSpec[] = [
    {
      kind: 'accuracy',
      title: 'Accuracy per step',
      caption:
        'Accuracy on all classes seen so far after each task (acc_t, the mean of row t of the accuracy matrix). One line per method; with several runs of a method the line is their mean and the shaded band ± one standard deviation. Higher is better; the average of a line is the average accuracy of the table.',
      spec: (layout) => accuracySpec(runs, layout),
    },
    {
      kind: 'matrix',
      title: 'Accuracy matrix',
      caption:
        'A[t][k] in %: accuracy on the classes of task k (columns) after training task t (rows), one panel per method (the mean over its runs). The diagonal is the task just learned; reading down a column shows how that task is forgotten.',
      spec: (layout) => matrixSpec(runs, layout),
    },
    {
      kind: 'ece',
      title: 'Calibration error per step',
      caption:
        'Expected calibration error (15 confidence bins) after each task. Solid: the raw probabilities over the whole test set; dashed: their mean over test batches, as the reference reports it; dotted: after temperature scaling (fitted on held-out samples, see Calibration). Lower is better.',
      spec: (layout) => eceSpec(runs, layout),
    },
  ];
  const more: [ChartSpec['kind'], string, string, (runs: readonly ChartRun[], layout: Layout) => TopLevelSpec | null][] = [
    ['reliability', 'Reliability diagrams',
      'Accuracy of the test predictions in each confidence bin at the last step, raw and after temperature scaling (T in the title); under each diagram the number of test samples in each bin (empty bins left out). The dashed diagonal is perfect calibration: bars below it are over-confident, above it under-confident.',
      reliabilitySpec],
    ['loss', 'Training loss',
      'Training loss over the iterations of the run, task after task: learning each task (mean over windows of iterations), then finetuning on the memory from the second task on. One panel per run; methods without training have none.',
      lossSpec],
    ['novelty', 'Novel-data detection (AUROC)',
      'How well each score separates test images of the tasks seen so far (known) from those of later tasks (novel), after every task but the last; one line per score, one panel per run. 0.5 (dashed) is chance, 1 is perfect.',
      noveltySpec],
    ['roc', 'Novel-data detection (ROC curves)',
      'ROC curves at the last step with recorded curves: the fraction of known images kept as known (true-positive rate) against the fraction of novel images taken for known (false-positive rate), per score. The dashed diagonal is chance.',
      rocSpec],
  ];
  for (const [kind, title, caption, build] of more) {
    const spec = optional(runs, build);
    if (spec) charts.push({ kind, title, caption, spec });
  }
  return charts;
}

/** Builds and renders every chart the runs have data for, once per layout. */
export async function renderCharts(runs: readonly ChartRun[]): Promise<RenderedChart[]> {
  const out: RenderedChart[] = [];
  for (const chart of chartSpecs(runs)) {
    const svgs = [];
    for (const layout of LAYOUTS) svgs.push({ layout, svg: await renderSvg(chart.spec(layout), `c-${chart.kind}-${layout.name}`) });
    out.push({ kind: chart.kind, title: chart.title, caption: chart.caption, svgs });
  }
  return out;
}
